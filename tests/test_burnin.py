"""pipeline.burnin: labels burned into the frame are found, filled and left out.

Labels are drawn by tests/heldout.py's :func:`burn_label` (Pillow's FreeType text or OpenCV's
stroke font, boxes black or white, bars with their text above, every corner, JPEG or not) on
phantoms of both renderings; the detector never saw them while it was written (its constants are
physical: flat neighbourhoods, straight sides, contrast against the picture).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import analyze
from pipeline.analysis import LABEL_NOTE
from pipeline.burnin import annotation_mask, detect_annotations, fill_annotations
from pipeline.io import load_micrograph, read_image
from pipeline.segment import edge_pore_mask
from pipeline.settings import Settings
from pipeline.synthetic import make_membrane_phantom, random_phantom

from heldout import HELDOUT_KINDS, burn_label, heldout_image

EXAMPLES = Path(__file__).resolve().parents[1] / "example_images"


def _phantom_u8(rendering: str, seed: int) -> tuple[object, np.ndarray]:
    ph = make_membrane_phantom((512, 768), rendering=rendering, seed=seed, databar=False)
    return ph, np.round(ph.grey * 255).astype(np.uint8)


def _covered(boxes, drawn: np.ndarray) -> float:
    """Share of the drawn pixels that the detected rectangles cover."""
    return float(annotation_mask(drawn.shape, boxes)[drawn].mean())


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


LABELS = [
    # rendering, seed, style, corner, scale, box level, font
    ("dark", 0, "box", "br", 1.0, 0, "pil"),
    ("dark", 1, "box", "tl", 2.0, 255, "hershey"),
    ("dark", 2, "bar", "bl", 0.7, 0, "pil"),
    ("dark", 3, "bar", "br", 1.5, 0, "hershey"),
    ("topographic", 0, "box", "tr", 1.0, 0, "hershey"),
    ("topographic", 1, "box", "br", 0.7, 255, "pil"),
    ("topographic", 2, "bar", "br", 1.0, 0, "pil"),
]


@pytest.mark.parametrize(("rendering", "seed", "style", "corner", "scale", "box_level", "font"),
                         LABELS)
def test_drawn_labels_are_found_whole(rendering, seed, style, corner, scale, box_level, font):
    _, grey = _phantom_u8(rendering, seed)
    labelled, drawn = burn_label(grey, np.random.default_rng(seed), style=style, corner=corner,
                                 scale=scale, box_level=box_level, font=font)
    boxes = detect_annotations(labelled.astype(np.float32) / 255)
    assert len(boxes) == 1, boxes
    found = annotation_mask(drawn.shape, boxes)
    if style == "bar" and rendering == "topographic":
        # white text is as bright as saturated rims: only the bar itself is certain; the text
        # changes the measured mask by little (module docstring)
        rows = np.nonzero(drawn.any(axis=1))[0]
        bar_rows = rows[-max(3, int(round(5 * scale))):]
        assert found[bar_rows][drawn[bar_rows]].all()
    else:
        assert found[drawn].all()
    # tight: at most the margin and the box's own padding beyond what was drawn
    r, c = np.nonzero(drawn)
    height, width = np.ptp(r) + 1, np.ptp(c) + 1
    assert found.sum() <= (height + 6) * (width + 6)


@pytest.mark.parametrize(("quality", "style"), [(90, "box"), (75, "box"), (90, "bar")])
def test_labels_survive_jpeg(quality, style):
    _, grey = _phantom_u8("dark", 4)
    labelled, drawn = burn_label(grey, np.random.default_rng(4), style=style, corner="br")
    boxes = detect_annotations(_jpeg(labelled, quality).astype(np.float32) / 255, lossy=True)
    assert _covered(boxes, drawn) > (0.99 if style == "box" else 0.9)


def test_micrographs_without_labels_give_none(tmp_path):
    """No false label on phantoms of every rendering, held-out renderings (JPEG included, with
    charging bands that clip to white) or the real micrographs of example_images/; and none on
    noise-free pictures, where a flat rectangle is no sign of a label."""
    for seed in range(20):
        assert detect_annotations(random_phantom(seed).grey) == [], seed
    files = []
    for kind in HELDOUT_KINDS:
        h = heldout_image(kind, 1)
        files.append(h.save(tmp_path)[0])
        # strongly compressed: smooth background flattened into codec blocks is no bar
        strong = _jpeg(h.image[: h.truth.pore_mask.shape[0]], 60)
        assert detect_annotations(strong.astype(np.float32) / 255, lossy=True) == [], kind
    for path in files + sorted(EXAMPLES.iterdir()):
        if path.suffix.lower() in (".tif", ".bmp", ".png", ".jpg"):
            m = load_micrograph(path, 0.1)
            lossy = read_image(path)[1].get("lossy", False)
            assert detect_annotations(m.image, lossy=lossy) == [], path.name
    toy = np.full((128, 160), 0.8, np.float32)
    toy[20:40, 30:90] = 0.1  # flat dark rectangles on a flat polymer: a drawing
    toy[60:70, 10:150] = 0.1
    toy[24:30, 40:50] = 1.0
    assert detect_annotations(toy) == []


def test_fill_mirrors_the_picture_beside_the_label():
    img = np.tile(np.arange(20, dtype=np.float32), (6, 1))
    out = fill_annotations(img, [(1, 4, 15, 20)])  # touching the right edge: from the left
    assert np.array_equal(out[1:4, 15:20], img[1:4, [14, 13, 12, 11, 10]])
    assert np.array_equal(out[0], img[0]) and np.array_equal(out[4:], img[4:])
    out = fill_annotations(img, [(0, 6, 6, 10)])  # inside: each half from its own side
    assert np.array_equal(out[0, 6:10], [5, 4, 11, 10])
    out = fill_annotations(img.T, [(6, 10, 0, 6)], along="columns")
    assert np.array_equal(out[6:10, 0], [5, 4, 11, 10])
    wide = fill_annotations(img, [(0, 6, 3, 20)])  # wider than the room beside it: reflected
    assert set(np.unique(wide[:, 3:])) <= set(range(3))
    with pytest.raises(ValueError):
        fill_annotations(img, [], along="diagonal")


def test_pores_running_into_a_label_are_cut():
    mask = np.zeros((40, 60), bool)
    mask[10:20, 30:45] = True  # runs into the label
    mask[25:30, 5:10] = True  # does not
    unknown = annotation_mask(mask.shape, [(5, 25, 45, 60)])
    edge = edge_pore_mask(mask, unknown=unknown)
    assert edge[10:20, 30:45].all() and not edge[25:30, 5:10].any()
    assert not edge_pore_mask(mask).any()


def _profile_change(a, ref) -> tuple[float, float]:
    n = min(len(a.profile), len(ref.profile))
    p, q = a.profile.iloc[:n], ref.profile.iloc[:n]
    ok = p.reliable.values & q.reliable.values
    d_por = np.abs(p.porosity.values - q.porosity.values)[ok].max()
    d_size = np.abs(p.pore_size_um.values / q.pore_size_um.values - 1)[ok].max()
    return float(d_por), float(d_size)


def _truth_errors(a, ph) -> tuple[float, float]:
    """Mean |porosity error| and mean |pore-size ratio - 1| of ``a``'s profile against the
    truth masks over the same pixels (the analysis' membrane, its depth map and bins)."""
    from pipeline.profile import depth_profile

    region = a.membrane.mask & ph.membrane_mask
    truth = depth_profile(ph.pore_mask & region, region, a.membrane.depth_px,
                          np.where(region, ph.local_thickness_px, 0), a.pixel_size_um)
    n = min(len(truth), len(a.profile))
    p, t = a.profile.iloc[:n], truth.iloc[:n]
    ok = p.reliable.values & t.reliable.values
    d_por = np.abs(p.porosity.values - t.porosity.values)[ok].mean()
    d_size = np.abs(p.pore_size_um.values / t.pore_size_um.values - 1)[ok].mean()
    return float(d_por), float(d_size)


@pytest.mark.parametrize("rendering", ["dark", "topographic"])
def test_a_black_label_box_does_not_change_the_profile(rendering):
    """A 1.5x black label box in the bottom corner of a one-surface phantom. Left out, the depth
    profile is as accurate against the truth (over the same pixels) as that of the same image
    without the label (porosity within 0.005, pore size within 2 points); measured as picture
    it reads as one huge pore (porosity +0.09, pore size +35 % or more in the bins under it:
    the test's control)."""
    ph, grey = _phantom_u8(rendering, 0)
    labelled, drawn = burn_label(grey, np.random.default_rng(0), style="box", corner="br",
                                 scale=1.5)
    px = ph.pixel_size_um
    ref = analyze(grey.astype(np.float32) / 255, pixel_size_um=px)
    a = analyze(labelled.astype(np.float32) / 255, pixel_size_um=px)
    assert len(a.micrograph.annotations_px) == 1
    assert not (a.membrane.mask & drawn).any() and not (a.pore_mask & drawn).any()
    assert any(n.startswith(LABEL_NOTE) for n in a.notes)
    ref_por, ref_size = _truth_errors(ref, ph)
    d_por, d_size = _truth_errors(a, ph)
    assert d_por <= ref_por + 0.005 and d_size <= ref_size + 0.02, (d_por, d_size, ref_por,
                                                                     ref_size)
    # Dice outside the label as without it
    keep = ph.membrane_mask & ~ndi_dilate(drawn, 3)

    def dice(found):
        f, t = found & keep, ph.pore_mask & keep
        return 2 * (f & t).sum() / (f.sum() + t.sum())

    assert dice(a.pore_mask) >= dice(ref.pore_mask) - 0.005
    off = Settings()
    off = dataclasses.replace(off, io=dataclasses.replace(off.io, detect_labels=False))
    b = analyze(labelled.astype(np.float32) / 255, pixel_size_um=px, settings=off)
    assert b.micrograph.annotations_px == []
    d_por_off, d_size_off = _profile_change(b, ref)
    assert d_por_off > 0.09 and d_size_off > 0.35, (d_por_off, d_size_off)


def ndi_dilate(mask: np.ndarray, px: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


def test_labelled_file_end_to_end(tmp_path):
    """A labelled FEI TIFF through the CLI's writer: result.json records the label, the
    membrane and pore masks leave it out, and the overlay frames it."""
    import json

    from pipeline.synthetic import write_fei_tiff

    ph = make_membrane_phantom((384, 512), rendering="dark", seed=5)
    rows = ph.image.shape[0] - ph.databar_rows
    image = ph.image.copy()
    image[:rows], drawn = burn_label(image[:rows], np.random.default_rng(5), style="bar",
                                     corner="br", scale=1.2)
    path = tmp_path / "labelled.tif"
    write_fei_tiff(path, image, ph.pixel_size_um, databar_rows=ph.databar_rows)
    info = load_micrograph(path).info()
    assert len(info["annotations_px"]) == 1
    a = analyze(path)
    a.save(tmp_path / "out")
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    (r0, r1, c0, c1), = result["image"]["annotations_px"]
    assert annotation_mask(drawn.shape, [(r0, r1, c0, c1)])[drawn].all()
    membrane = cv2.imread(str(tmp_path / "out" / "membrane.png"), cv2.IMREAD_GRAYSCALE)
    assert not membrane[r0:r1, c0:c1].any()
    overlay = cv2.imread(str(tmp_path / "out" / "overlay.png"))[..., ::-1]
    assert (overlay[r0, c0:c1] == (255, 60, 60)).all(axis=-1).mean() > 0.9
