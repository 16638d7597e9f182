"""Property-based tests (hypothesis) of the loaders and stage functions: whatever the input,
the output has the promised type, shape and range, or a clear error is raised."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline.geometry import Membrane, MembraneNotFound, find_membrane, membrane_from_surfaces
from pipeline.io import InputError, detect_databar, load_micrograph, to_grey
from pipeline.profile import depth_profile
from pipeline.segment import segment_pores
from pipeline.size import distance_transform, local_thickness

from _phantoms import simple_membrane

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

dtypes = st.sampled_from([np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64,
                          np.bool_])


@st.composite
def images(draw, min_side=1, max_side=40, channels=True):
    dtype = draw(dtypes)
    rows = draw(st.integers(min_side, max_side))
    cols = draw(st.integers(min_side, max_side))
    shape = (rows, cols)
    if channels and draw(st.booleans()):
        shape = shape + (draw(st.sampled_from([3, 4])),)
    elements = None
    if np.dtype(dtype).kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@FAST
@given(images())
def test_to_grey_is_float32_in_unit_range(array):
    grey = to_grey(array)
    assert grey.dtype == np.float32 and grey.shape == array.shape[:2]
    assert np.isfinite(grey).all() and grey.min() >= 0 and grey.max() <= 1


@FAST
@given(images(min_side=1, max_side=80, channels=False))
def test_detect_databar_is_bounded(array):
    grey = to_grey(array)
    rows = detect_databar(grey)
    assert 0 <= rows <= 0.3 * grey.shape[0]


@FAST
@given(st.binary(min_size=0, max_size=600), st.sampled_from([".tif", ".png", ".jpg", ".bmp"]))
def test_loader_raises_only_input_error_on_bytes(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"x{suffix}"
    path.write_bytes(data)
    try:
        m = load_micrograph(path, 0.1)
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert m.image.ndim == 2 and m.image.dtype == np.float32


@FAST
@given(hnp.arrays(np.bool_, st.tuples(st.integers(1, 30), st.integers(1, 30))))
def test_local_thickness_bounds(mask):
    lt = local_thickness(mask)
    assert lt.shape == mask.shape and lt.dtype == np.float32
    assert (lt[~mask] == 0).all()
    if mask.any() and not mask.all():
        dt = distance_transform(mask)
        # each pixel is covered at least by its own disk, at most by the largest disk
        assert (lt[mask] >= 2 * dt[mask] - 1e-4).all()
        assert lt.max() <= 2 * dt.max() + 1e-4


@st.composite
def band_membranes(draw):
    rows = draw(st.integers(8, 60))
    cols = draw(st.integers(8, 60))
    top = draw(hnp.arrays(np.float64, cols, elements=st.floats(0, rows / 2 - 1)))
    thick = draw(st.floats(2, rows / 2))
    bottom = np.minimum(top + thick, rows - 1)
    pores = draw(hnp.arrays(np.bool_, (rows, cols)))
    return rows, cols, top, bottom, pores


@FAST
@given(band_membranes(), st.floats(0.01, 5.0))
def test_membrane_and_profile_invariants(case, pixel_size_um):
    rows, cols, top, bottom, pores = case
    membrane = membrane_from_surfaces((rows, cols), top, bottom, reference_surface="top")
    assert membrane.mask.shape == (rows, cols)
    inside = membrane.depth_px[membrane.mask]
    assert np.isfinite(inside).all() and (inside >= 0).all()
    assert np.isnan(membrane.depth_px[~membrane.mask]).all()
    pores = pores & membrane.mask
    prof = depth_profile(pores, membrane.mask, membrane.depth_px, local_thickness(pores),
                         pixel_size_um, min_pore_pixels=1)
    assert prof["n_pixels"].sum() == membrane.mask.sum()
    assert prof["n_pore_pixels"].sum() == pores.sum()
    assert prof["porosity"].between(0, 1).all()
    sizes = prof["pore_size_um"].dropna()
    assert (sizes >= 0).all()


@FAST
@given(hnp.arrays(np.float32, st.tuples(st.integers(8, 48), st.integers(8, 48)),
                  elements=st.floats(0, 1, width=32)))
def test_segment_and_membrane_never_crash(image):
    try:
        membrane = find_membrane(image)
    except MembraneNotFound:
        membrane = None
    if membrane is not None:
        assert isinstance(membrane, Membrane) and membrane.mask.shape == image.shape
    region = membrane.mask if membrane is not None else None
    seg = segment_pores(image, region, 0.1)
    assert seg.mask.shape == image.shape and seg.mask.dtype == bool
    if region is not None:
        assert not (seg.mask & ~region).any()


def test_same_input_gives_byte_identical_result_json(tmp_path):
    """Determinism across processes; only the dedicated `run` field may differ."""
    from PIL import Image

    src = tmp_path / "m.png"
    Image.fromarray(simple_membrane(seed=5)).save(src)
    texts = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "analyze", str(src),
                               "--out", str(out), "--pixel-size", "0.1", "-q", "-j", "1"],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        result = json.loads((out / "m" / "result.json").read_text())
        assert set(result["run"]) >= {"created_utc", "timings_s"}
        result.pop("run")
        texts.append(json.dumps(result, sort_keys=True))
    assert texts[0] == texts[1]
    files = ["pores.png", "membrane.png", "local_thickness.tif", "profile.csv"]
    for name in files:
        assert (tmp_path / "out0" / "m" / name).read_bytes() == \
            (tmp_path / "out1" / "m" / name).read_bytes(), name


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_constant_images_give_a_clear_error(value):
    with pytest.raises(MembraneNotFound):
        find_membrane(np.full((64, 64), value, np.float32))
