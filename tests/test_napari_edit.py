"""Recompute after hand edits (plugins.napari_sempore._edit): exact, and only what is needed.

Pure numpy functions used by the napari plugin; no viewer needed (they run without napari).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from pipeline import analyze
from pipeline.geometry import membrane_from_surfaces
from pipeline.io import from_array
from pipeline.profile import depth_profile
from pipeline.segment import edge_pore_mask
from pipeline.size import local_thickness
from plugins.napari_sempore._edit import (
    band_polygon,
    changed_box,
    line_from_polyline,
    membrane_with_line,
    polyline_from_line,
    recompute,
    update_local_thickness,
    update_profile,
)


def _random_mask(rng, shape, sigma, fraction):
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    return field > np.quantile(field, fraction)


def test_changed_box():
    a = np.zeros((10, 12), bool)
    assert changed_box(a, a) is None
    b = a.copy()
    b[3, 4] = b[6, 9] = True
    assert changed_box(a, b) == (3, 7, 4, 10)


@pytest.mark.parametrize("seed", range(2))
def test_windowed_local_thickness_equals_full(seed):
    """Random edits (add, erase, flip; some merge pores into one much larger than any before,
    forcing the window to grow): the windowed result equals the full computation exactly."""
    rng = np.random.default_rng(seed)
    n_window = 0
    for _ in range(12):
        shape = (int(rng.integers(60, 140)), int(rng.integers(60, 140)))
        mask = _random_mask(rng, shape, rng.uniform(1.5, 5), rng.uniform(0.3, 0.75))
        old = local_thickness(mask)
        new = mask.copy()
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        h, w = rng.integers(1, 30, 2)
        kind = rng.integers(0, 3)
        if kind == 0:
            new[r:r + h, c:c + w] = True
        elif kind == 1:
            new[r:r + h, c:c + w] = False
        else:
            new[r:r + h, c:c + w] = ~new[r:r + h, c:c + w]
        got, info = update_local_thickness(new, mask, old)
        np.testing.assert_array_equal(got, local_thickness(new))
        n_window += info["window"] is not None and not info["full"]
    assert n_window >= 1  # the window path ran, not only full recomputes


def test_windowed_local_thickness_merging_pores_grows_window():
    mask = np.zeros((200, 300), bool)
    mask[20:180, 20:148] = True
    mask[20:180, 152:280] = True  # two 128-px-wide pores behind a 4-px wall
    mask[::7, ::9] = False        # speckle keeps the old radii small
    old = local_thickness(mask)
    new = mask.copy()
    new[20:180, 140:160] = True   # erase the wall: a much wider pore
    new[::7, ::9] = mask[::7, ::9]
    got, info = update_local_thickness(new, mask, old)
    np.testing.assert_array_equal(got, local_thickness(new))


def test_windowed_local_thickness_is_local_and_fast():
    rng = np.random.default_rng(7)
    mask = _random_mask(rng, (768, 1024), 4, 0.6)
    old = local_thickness(mask)
    new = mask.copy()
    new[380:392, 500:530] = True
    t0 = time.perf_counter()
    full = local_thickness(new)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    got, info = update_local_thickness(new, mask, old)
    t_window = time.perf_counter() - t0
    np.testing.assert_array_equal(got, full)
    r0, r1, c0, c1 = info["window"]
    assert (r1 - r0) * (c1 - c0) < 0.1 * mask.size
    assert t_window < t_full


def test_polyline_round_trip_and_local_edit():
    cols = 640
    x = np.arange(cols, dtype=float)
    line = 80 + 12 * np.sin(x / 90) + 0.03 * x
    verts = polyline_from_line(line, horizontal=True)
    assert verts.shape[1] == 2 and 3 <= len(verts) <= 80
    # vertices are (row, col) on the line
    np.testing.assert_allclose(verts[:, 0], np.interp(verts[:, 1], x, line), atol=1e-9)
    same = line_from_polyline(verts, cols, 480, base_line_px=line, base_vertices=verts)
    np.testing.assert_allclose(same, line, atol=1e-9)
    # move one interior vertex down by 10 px: only the line between its neighbours moves
    k = len(verts) // 2
    moved = verts.copy()
    moved[k, 0] += 10
    new = line_from_polyline(moved, cols, 480, base_line_px=line, base_vertices=verts)
    lo, hi = verts[k - 1, 1], verts[k + 1, 1]
    outside = (x <= lo) | (x >= hi)
    np.testing.assert_allclose(new[outside], line[outside], atol=1e-9)
    assert new[int(verts[k, 1])] == pytest.approx(line[int(verts[k, 1])] + 10, abs=1e-6)
    # without a base, the polyline is within 1 px of the line it was made from
    plain = line_from_polyline(verts, cols, 480)
    assert np.abs(plain - line).max() <= 1.0 + 1e-9
    # vertical membranes: (row, col) swap roles
    vverts = polyline_from_line(line, horizontal=False)
    np.testing.assert_allclose(vverts[:, 1], np.interp(vverts[:, 0], x, line), atol=1e-9)


def test_membrane_with_line_moves_reference_and_keeps_order():
    shape = (200, 300)
    top = np.full(300, 40.0)
    bottom = np.full(300, 160.0)
    m = membrane_from_surfaces(shape, top, bottom, reference_surface="top")
    moved = membrane_with_line(m, "reference", top + 10)
    np.testing.assert_allclose(moved.top_px, top + 10)
    assert moved.thickness_px == pytest.approx(m.thickness_px - 10, abs=0.5)
    assert moved.mask.sum() == m.mask.sum() - 10 * 300
    assert np.nanmin(moved.depth_px) == 0
    # dragging the opposite surface above the reference cannot invert the band
    crossed = membrane_with_line(m, "opposite", np.full(300, 20.0))
    assert (crossed.bottom_px >= crossed.top_px).all()
    bottom_ref = membrane_from_surfaces(shape, top, bottom, reference_surface="bottom")
    up = membrane_with_line(bottom_ref, "reference", bottom - 15)
    np.testing.assert_allclose(up.bottom_px, bottom - 15)
    np.testing.assert_allclose(up.top_px, top)


def test_band_polygon_follows_surface_at_depth():
    line = np.linspace(50, 80, 400)  # tilted surface
    poly = band_polygon(line, 10, 20, horizontal=True, into_positive=True, n_points=50)
    assert poly.shape == (100, 2)
    # distance of each band vertex from the surface line equals its depth
    x = np.arange(400.0)
    pts = np.column_stack([x, line])
    for vertex, depth in ((poly[10], 10), (poly[-10], 20)):
        d = np.hypot(pts[:, 0] - vertex[1], pts[:, 1] - vertex[0]).min()
        assert d == pytest.approx(depth, abs=0.1)
        assert vertex[0] > np.interp(vertex[1], x, line)  # below the surface


@pytest.fixture(scope="module")
def membrane_analysis():
    """An analysis of a random two-phase image with a known membrane band (rows 40-279)."""
    rng = np.random.default_rng(11)
    rows, cols = 300, 400
    pores = _random_mask(rng, (rows, cols), 3, 0.55)
    img = np.where(pores, 0.25, 0.8).astype(np.float32)
    membrane = membrane_from_surfaces((rows, cols), np.full(cols, 40.0), np.full(cols, 279.0),
                                      reference_surface="top")
    return analyze(from_array(img, 0.1), membrane=membrane, pore_mask=pores)


@pytest.mark.parametrize("limit_px", [None, 10.0])
def test_update_profile_equals_full_profile(membrane_analysis, limit_px):
    a = membrane_analysis
    m = a.membrane
    px = a.pixel_size_um
    mask = a.segmentation.mask.copy()
    mask[150:165, 100:140] = True
    mask[60:64, :] = False
    mask &= m.mask
    lt = update_local_thickness(mask, a.segmentation.mask, a.local_thickness_px)[0]
    edge = edge_pore_mask(mask)
    before = depth_profile(a.segmentation.mask, m.mask, m.depth_px, a.local_thickness_px, px,
                           min_pore_pixels=a.settings.profile.min_pore_pixels,
                           edge_pores=a.segmentation.edge_pores, resolution_limit_px=limit_px)
    got, n_bins = update_profile(
        before, m, mask, lt, edge, px, old_mask=a.segmentation.mask,
        old_local_thickness_px=a.local_thickness_px, old_edge_pores=a.segmentation.edge_pores,
        min_pore_pixels=a.settings.profile.min_pore_pixels, resolution_limit_px=limit_px)
    full = depth_profile(mask, m.mask, m.depth_px, lt, px,
                         min_pore_pixels=a.settings.profile.min_pore_pixels, edge_pores=edge,
                         resolution_limit_px=limit_px)
    assert 0 < n_bins < len(full)
    pd.testing.assert_frame_equal(got, full)


def test_update_profile_keeps_the_segmentations_ambiguous_share(membrane_analysis):
    """The per-bin ``ambiguous_fraction`` belongs to the automatic segmentation's probabilities,
    which a mask edit does not change: the recomputed bins keep their values, the other columns
    equal a full recomputation."""
    from pipeline.analysis import with_ambiguity

    a = membrane_analysis
    m, px = a.membrane, a.pixel_size_um
    prob = np.random.default_rng(4).random(m.mask.shape).astype(np.float32)
    before = with_ambiguity(a.profile, prob, m, px)
    assert before["ambiguous_fraction"].between(0.3, 0.7).all()
    mask = a.segmentation.mask.copy()
    mask[150:165, 100:140] = True
    mask &= m.mask
    lt = update_local_thickness(mask, a.segmentation.mask, a.local_thickness_px)[0]
    edge = edge_pore_mask(mask)
    got, n_bins = update_profile(
        before, m, mask, lt, edge, px, old_mask=a.segmentation.mask,
        old_local_thickness_px=a.local_thickness_px, old_edge_pores=a.segmentation.edge_pores,
        min_pore_pixels=a.settings.profile.min_pore_pixels)
    assert 0 < n_bins < len(got)
    assert list(got.columns) == list(before.columns)
    np.testing.assert_array_equal(got["ambiguous_fraction"], before["ambiguous_fraction"])
    full = depth_profile(mask, m.mask, m.depth_px, lt, px,
                         min_pore_pixels=a.settings.profile.min_pore_pixels, edge_pores=edge)
    pd.testing.assert_frame_equal(got[list(full.columns)], full)


def test_recompute_equals_fresh_analysis(membrane_analysis):
    """recompute() after a mask and a surface edit gives what analyze() gives on the edited
    inputs (local thickness, profile)."""
    a = membrane_analysis
    mask = a.segmentation.mask.copy()
    mask[120:140, 200:260] = False
    b, timings = recompute(a, pore_mask=mask)
    fresh = analyze(a.micrograph, settings=a.settings, membrane=a.membrane, pore_mask=mask)
    np.testing.assert_array_equal(b.local_thickness_px, fresh.local_thickness_px)
    pd.testing.assert_frame_equal(b.profile, fresh.profile[b.profile.columns])
    assert b.structure is None and timings["local_thickness_full"] is False

    moved = membrane_with_line(a.membrane, "reference", a.membrane.top_px + 8)
    c, _ = recompute(b, membrane=moved)
    fresh = analyze(a.micrograph, settings=a.settings, membrane=moved, pore_mask=mask)
    np.testing.assert_array_equal(c.segmentation.mask, fresh.segmentation.mask)
    np.testing.assert_array_equal(c.local_thickness_px, fresh.local_thickness_px)
    pd.testing.assert_frame_equal(c.profile, fresh.profile[c.profile.columns])


@pytest.mark.slow
def test_recompute_2048x1536_under_one_second():
    """Brush edit and surface move on a 2048 x 1536 phantom: recompute <= 1 s, and the brush
    edit faster than recomputing local thickness and profile in full (ratio in one run)."""
    from pipeline.synthetic import make_membrane_phantom

    ph = make_membrane_phantom((1536, 2048), pixel_size_um=0.05, profile="internal_minimum",
                               pore_size_um=1.0, surfaces="both", seed=1)
    a = analyze(from_array(ph.grey, 0.05), membrane=ph.membrane(), pore_mask=ph.pore_mask)
    yy, xx = np.mgrid[:1536, :2048]
    brush = np.hypot(yy - (np.nanmedian(ph.top_px) + 300), xx - 1000) < 10
    mask = a.segmentation.mask.copy()
    mask[brush] = ~mask[brush]

    def best(fn, n=3):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    def full_path(membrane, m):
        m = m & membrane.mask
        lt = local_thickness(m)
        depth_profile(m, membrane.mask, membrane.depth_px, lt, 0.05,
                      edge_pores=edge_pore_mask(m))

    t_brush = best(lambda: recompute(a, pore_mask=mask))
    t_brush_full = best(lambda: full_path(a.membrane, mask))
    line = a.membrane.top_px + 20
    t_surface = best(lambda: recompute(a, membrane=membrane_with_line(
        a.membrane, "reference", line)))
    t_surface_full = best(lambda: full_path(membrane_with_line(a.membrane, "reference", line),
                                            a.segmentation.mask))
    print(f"brush {t_brush:.3f} s (full {t_brush_full:.3f} s), "
          f"surface {t_surface:.3f} s (full {t_surface_full:.3f} s)")
    assert t_brush <= 1.0 and t_surface <= 1.0
    assert t_brush < t_brush_full


@pytest.fixture(scope="module")
def labelled_analysis():
    """membrane_analysis' kind of image, with shot noise and a black label box burned into its
    bottom-right corner (tests/heldout.py burn_label): the label is found and left out."""
    from heldout import burn_label

    rng = np.random.default_rng(12)
    rows, cols = 300, 400
    pores = _random_mask(rng, (rows, cols), 3, 0.55)
    img = np.where(pores, 0.25, 0.8) + rng.normal(0, 0.04, (rows, cols))
    img8 = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    img8, drawn = burn_label(img8, rng, style="box", corner="br")
    membrane = membrane_from_surfaces((rows, cols), np.full(cols, 40.0), np.full(cols, 299.0),
                                      reference_surface="top")
    a = analyze(from_array(img8, 0.1), membrane=membrane, pore_mask=pores)
    assert len(a.micrograph.annotations_px) == 1 and not (a.membrane.mask & drawn).any()
    return a


def test_windowed_local_thickness_with_a_label_equals_full():
    """Pixels of unknown phase (a label) inside and at the side of the edit window: exact."""
    rng = np.random.default_rng(3)
    mask = _random_mask(rng, (120, 160), 3, 0.5)
    unknown = np.zeros(mask.shape, bool)
    unknown[80:120, 100:160] = True
    mask &= ~unknown
    old = local_thickness(mask, unknown=unknown)
    for box in [(70, 90, 80, 110), (10, 30, 10, 40), (60, 100, 90, 140)]:
        new = mask.copy()
        r0, r1, c0, c1 = box
        new[r0:r1, c0:c1] = ~new[r0:r1, c0:c1]
        new &= ~unknown
        got, _ = update_local_thickness(new, mask, old, unknown=unknown)
        np.testing.assert_array_equal(got, local_thickness(new, unknown=unknown))


def test_recompute_keeps_labels_out(labelled_analysis):
    """A mask edit next to the label and a surface move: the label stays out of the membrane
    and the result equals a fresh analysis of the edited inputs."""
    a = labelled_analysis
    (r0, r1, c0, c1), = a.micrograph.annotations_px
    mask = a.segmentation.mask.copy()
    mask[r0 - 12:r0, c0 - 20:c1] = True  # a pore running into the label
    b, _ = recompute(a, pore_mask=mask)
    fresh = analyze(a.micrograph, settings=a.settings, membrane=a.membrane, pore_mask=mask)
    np.testing.assert_array_equal(b.local_thickness_px, fresh.local_thickness_px)
    np.testing.assert_array_equal(b.segmentation.edge_pores, fresh.segmentation.edge_pores)
    assert b.segmentation.edge_pores[r0 - 5, c0 + 5]  # cut by the label
    pd.testing.assert_frame_equal(b.profile, fresh.profile[b.profile.columns])

    moved = membrane_with_line(a.membrane, "reference", a.membrane.top_px + 8)
    assert moved.mask[r0:r1, c0:c1].any()  # rebuilt from the lines: the label is back in ...
    c, _ = recompute(b, membrane=moved)
    assert not c.membrane.mask[r0:r1, c0:c1].any()  # ... and recompute takes it out again
    fresh = analyze(a.micrograph, settings=a.settings, membrane=moved, pore_mask=mask)
    np.testing.assert_array_equal(c.membrane.mask, fresh.membrane.mask)
    np.testing.assert_array_equal(c.local_thickness_px, fresh.local_thickness_px)
    pd.testing.assert_frame_equal(c.profile, fresh.profile[c.profile.columns])


def test_saved_labelled_result_reloads_the_same(labelled_analysis, tmp_path):
    """analysis_from_saved on a labelled result: the labels from result.json, the membrane
    without them, the same local thickness and edge flags."""
    import cv2

    from plugins.napari_sempore._edit import analysis_from_saved

    a = labelled_analysis
    image = np.round(a.micrograph.image * 255).astype(np.uint8)
    path = tmp_path / "labelled.png"
    cv2.imwrite(str(path), image)
    a = analyze(path, pixel_size_um=0.1, membrane=a.membrane,
                pore_mask=a.segmentation.mask)
    a.save(tmp_path / "out")
    b, _ = analysis_from_saved(tmp_path / "out")
    assert b.micrograph.annotations_px == a.micrograph.annotations_px
    np.testing.assert_array_equal(b.membrane.mask, a.membrane.mask)
    np.testing.assert_array_equal(b.local_thickness_px, a.local_thickness_px)
    np.testing.assert_array_equal(b.segmentation.edge_pores, a.segmentation.edge_pores)


def test_saved_result_keeps_regions_excluded_by_hand(labelled_analysis, tmp_path):
    """A rectangle given by hand ([io] exclude) beside the detected label: after a reload it is
    still left out and still known as given by hand (its note, result.json excluded_px)."""
    import cv2

    from pipeline.analysis import EXCLUDED_NOTE
    from plugins.napari_sempore._edit import analysis_from_saved

    a = labelled_analysis
    path = tmp_path / "labelled.png"
    cv2.imwrite(str(path), np.round(a.micrograph.image * 255).astype(np.uint8))
    settings = a.settings.replace(io={"exclude": ["100:140,50:90"]})
    a = analyze(path, pixel_size_um=0.1, settings=settings, membrane=a.membrane,
                pore_mask=a.segmentation.mask)
    assert a.micrograph.excluded_px == [(100, 140, 50, 90)]
    assert len(a.micrograph.annotations_px) == 2
    assert not a.membrane.mask[100:140, 50:90].any()
    a.save(tmp_path / "out")
    b, _ = analysis_from_saved(tmp_path / "out")
    assert b.micrograph.excluded_px == a.micrograph.excluded_px
    assert b.micrograph.annotations_px == a.micrograph.annotations_px
    np.testing.assert_array_equal(b.membrane.mask, a.membrane.mask)
    c, _ = recompute(b, pore_mask=b.segmentation.mask)
    assert sum(n.startswith(EXCLUDED_NOTE) for n in c.notes) == 1
    assert not c.membrane.mask[100:140, 50:90].any()
