"""Rectangles left out by hand (settings ``[io] exclude``, ``sempore analyze --exclude``).

For what the label detector cannot find (free-standing text, a logo, a scratch): the user gives
rectangles as numpy slices of the image above the data bar, and the analysis leaves them out
exactly as it leaves out a detected label (filled for the membrane finder and the segmentation,
unknown for local thickness, pores running into them cut).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tomllib
from PIL import Image
from test_burnin import _truth_errors

from pipeline import analyze
from pipeline.analysis import EXCLUDED_NOTE, LABEL_NOTE
from pipeline.burnin import region_boxes
from pipeline.cli import main
from pipeline.settings import Settings, default_toml, load_settings, parse_region
from pipeline.synthetic import make_membrane_phantom

from _phantoms import simple_membrane
from heldout import burn_label


@pytest.mark.parametrize(("spec", "rows", "cols"), [
    ("0:120,:", slice(0, 120), slice(None, None)),
    ("-60:,-250:", slice(-60, None), slice(-250, None)),
    (" 10 : 20 , 3:-3 ", slice(10, 20), slice(3, -3)),
])
def test_parse_region(spec, rows, cols):
    assert parse_region(spec) == (rows, cols)


@pytest.mark.parametrize("spec", ["0:10", "0:10,5", "a:b,0:4", "0:1.5,0:4", "0:4,0:4,0:4",
                                  "0:4:2,0:4"])
def test_bad_region_is_one_clear_error(spec):
    with pytest.raises(ValueError, match="region") as err:
        parse_region(spec)
    assert "\n" not in str(err.value)


def test_region_boxes_follow_python_slices():
    shape = (500, 800)
    specs = ["-60:,-250:", "0:120,:", "5:5,:", "10:2000,100:200", "600:,:"]
    assert region_boxes(specs, shape) == [(440, 500, 550, 800), (0, 120, 0, 800),
                                          (10, 500, 100, 200)]
    image = np.zeros(shape)
    for (r0, r1, c0, c1), spec in zip(region_boxes(specs[:2], shape), specs[:2], strict=True):
        rs, cs = parse_region(spec)
        assert image[rs, cs].shape == (r1 - r0, c1 - c0)


def test_settings_read_write_exclude(tmp_path):
    assert tomllib.loads(default_toml())["io"]["exclude"] == []
    path = tmp_path / "s.toml"
    path.write_text('[io]\nexclude = ["-60:,-250:", "0:10,0:10"]\n')
    s = load_settings(path)
    assert s.io.exclude == ("-60:,-250:", "0:10,0:10")
    assert s.digest() != Settings().digest()
    assert Settings().replace(io={"exclude": "0:4,0:4"}).io.exclude == ("0:4,0:4",)
    path.write_text('[io]\nexclude = ["0:10"]\n')
    with pytest.raises(ValueError, match=r"s\.toml: \[io\] exclude: region '0:10'"):
        load_settings(path)


def _box_spec(drawn: np.ndarray, margin: int = 2) -> str:
    """The drawn pixels' bounding box (plus a margin) as a spec counted from the far edges."""
    rows, cols = np.nonzero(drawn)
    h, w = drawn.shape
    r0, c0 = max(0, rows.min() - margin), max(0, cols.min() - margin)
    r1, c1 = min(h, rows.max() + 1 + margin), min(w, cols.max() + 1 + margin)
    return f"{r0 - h}:{r1 - h if r1 < h else ''},{c0 - w}:{c1 - w if c1 < w else ''}"


def test_excluded_box_is_measured_like_a_detected_label():
    """A black label box, detection off, the box given by hand: its pixels leave the membrane
    and the pore mask, and the depth profile is as accurate against the truth as with the
    detector (porosity within 0.005, pore size within 2 points); without the rectangle the
    same run is off by > 0.09 porosity (test_burnin's control)."""
    ph = make_membrane_phantom((512, 768), rendering="dark", seed=0, databar=False)
    grey = np.round(ph.grey * 255).astype(np.uint8)
    labelled, drawn = burn_label(grey, np.random.default_rng(0), style="box", corner="br",
                                 scale=1.5)
    image = labelled.astype(np.float32) / 255
    px = ph.pixel_size_um
    found = analyze(image, pixel_size_um=px)
    assert len(found.micrograph.annotations_px) == 1
    off = Settings()
    off = dataclasses.replace(off, io=dataclasses.replace(off.io, detect_labels=False))
    spec = _box_spec(drawn)
    by_hand = analyze(image, pixel_size_um=px, settings=off.replace(io={"exclude": [spec]}))
    m = by_hand.micrograph
    assert m.annotations_px == m.excluded_px == region_boxes([spec], grey.shape)
    assert not (by_hand.membrane.mask & drawn).any() and not (by_hand.pore_mask & drawn).any()
    assert any(n.startswith(EXCLUDED_NOTE) for n in by_hand.notes)
    assert not any(n.startswith(LABEL_NOTE) for n in by_hand.notes)
    ref_por, ref_size = _truth_errors(found, ph)
    d_por, d_size = _truth_errors(by_hand, ph)
    assert d_por <= ref_por + 0.005 and d_size <= ref_size + 0.02, (d_por, d_size, ref_por,
                                                                     ref_size)
    plain = analyze(image, pixel_size_um=px, settings=off)
    assert plain.micrograph.annotations_px == []
    assert plain.membrane.mask[drawn].mean() > 0.5  # the control does measure the box


def test_cli_exclude_reaches_the_result(tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(simple_membrane(seed=1)).save(src)
    rows, cols = np.asarray(Image.open(src)).shape
    out = tmp_path / "out"
    code = main(["analyze", str(src), "--out", str(out), "--pixel-size", "0.1", "-j", "1", "-q",
                 "--exclude=-40:,-60:", "--exclude", f"{rows + 5}:,:"])
    assert code == 0
    result = json.loads((out / "a" / "result.json").read_text())
    box = [rows - 40, rows, cols - 60, cols]
    assert result["image"]["excluded_px"] == [box]
    assert box in result["image"]["annotations_px"]
    notes = " ".join(result["notes"])
    assert f"exclude region '{rows + 5}:,:' holds no pixel" in notes
    membrane = np.asarray(Image.open(out / "a" / "membrane.png"))
    assert not membrane[rows - 40:, cols - 60:].any()

    code = main(["analyze", str(src), "--out", str(tmp_path / "o2"), "--pixel-size", "0.1",
                 "--exclude", "0:10"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sempore: error: [io] exclude: region '0:10'") and "\n" not in err
    assert not (tmp_path / "o2").exists()
