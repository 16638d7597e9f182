"""pipeline.pores: the per-pore table against scikit-image and against phantom truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse
from skimage.measure import label, regionprops

from pipeline import analyze
from pipeline.pores import PORE_COLUMNS, pore_summary, pore_table
from pipeline.segment import edge_pore_mask
from pipeline.size import local_thickness
from pipeline.synthetic import make_membrane_phantom


@pytest.mark.parametrize("seed", range(3))
def test_moments_match_regionprops(seed):
    """Area, centroid, ellipse axes and orientation of every 4-connected pore of a random mask
    equal scikit-image's regionprops (orientation converted to the contract's convention:
    counter-clockwise from +x as displayed, [0, 180))."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal((150, 180)), 3)
    mask = field > np.quantile(field, 0.6)
    table = pore_table(mask, 0.5)
    props = regionprops(label(mask, connectivity=1))
    assert len(table) == len(props) > 20
    for row, p in zip(table.itertuples(), props):
        assert row.area_um2 == pytest.approx(p.area * 0.25)
        assert (row.row_px, row.col_px) == pytest.approx(p.centroid)
        assert row.major_axis_um == pytest.approx(p.axis_major_length * 0.5, abs=1e-6)
        assert row.minor_axis_um == pytest.approx(p.axis_minor_length * 0.5, abs=1e-6)
        assert row.equivalent_diameter_um == pytest.approx(p.equivalent_diameter_area * 0.5)
        if p.axis_major_length - p.axis_minor_length > 1:  # orientation defined
            expected = (np.degrees(p.orientation) + 90) % 180
            diff = abs(row.orientation_deg - expected) % 180
            assert min(diff, 180 - diff) < 1e-6


def test_orientation_follows_the_contract():
    """An ellipse rising to the right at 30 degrees as displayed reads 30; vertical 90."""
    mask = np.zeros((120, 240), bool)
    for angle, centre in ((30, (60, 60)), (90, (60, 130)), (150, (60, 200))):
        rr, cc = ellipse(*centre, 6, 22, shape=mask.shape, rotation=np.radians(angle))
        mask[rr, cc] = True
    table = pore_table(mask, 1.0).sort_values("col_px")
    np.testing.assert_allclose(table["orientation_deg"], [30, 90, 150], atol=0.5)
    assert (table["aspect_ratio"] > 3).all()
    assert table["orientation_to_surface_deg"].isna().all()
    # a surface line rising 10 degrees: the angles counted from it
    tilted = pore_table(mask, 1.0, surface_angle_deg=10.0).sort_values("col_px")
    np.testing.assert_allclose(tilted["orientation_to_surface_deg"], [20, 80, 140], atol=0.5)


def test_analysis_counts_orientations_from_its_surface():
    """Analysis.pore_table measures orientations to the reference surface it found (a 6 degree
    tilt: the surface's display angle read back within 0.5 degrees)."""
    from pipeline.isotropy import surface_angle_deg

    ph = make_membrane_phantom((384, 512), morphology="cells", rendering="dark",
                               pore_size_um=2.0, tilt_deg=6.0, seed=2)
    a = analyze(ph.grey, pixel_size_um=ph.pixel_size_um)
    angle = surface_angle_deg(a.membrane.top_px)
    assert min(abs(angle - 6.0), abs(angle - 174.0)) < 0.5
    table = a.pore_table()
    expected = (table["orientation_deg"] - angle) % 180
    np.testing.assert_allclose(table["orientation_to_surface_deg"], expected, atol=1e-9)


def test_disks_of_known_size():
    """Disks of radius 6-20 px: equivalent diameter within 2 %, largest inscribed disk within
    1 px of 2R, aspect ratio near 1; a disk cut by the frame is flagged and counted apart."""
    radii = (6, 9, 14, 20)
    mask = np.zeros((100, 260), bool)
    for k, r in enumerate(radii):
        rr, cc = disk((50, 30 + 60 * k), r, shape=mask.shape)
        mask[rr, cc] = True
    rr, cc = disk((0, 130), 10, shape=mask.shape)  # cut by the top edge
    mask[rr, cc] = True
    lt = local_thickness(mask)
    depth = np.tile(np.arange(100, dtype=np.float32)[:, None], (1, 260))
    table = pore_table(mask, 0.2, local_thickness_px=lt, depth_px=depth,
                       cut=edge_pore_mask(mask))
    assert set(table.columns) == set(PORE_COLUMNS)
    whole = table[~table["cut"]].sort_values("col_px")
    assert len(whole) == 4 and table["cut"].sum() == 1
    truth = 2 * np.array(radii) * 0.2
    np.testing.assert_allclose(whole["equivalent_diameter_um"], truth, rtol=0.02)
    np.testing.assert_allclose(whole["max_local_thickness_um"], truth, atol=0.2)
    assert (whole["aspect_ratio"] < 1.1).all()
    np.testing.assert_allclose(whole["depth_um"], 50 * 0.2, atol=0.01)
    summary = pore_summary(table, membrane_area_um2=100 * 260 * 0.04)
    assert summary["n_pores"] == 5 and summary["n_cut"] == 1
    assert summary["equivalent_diameter_um"]["median"] == pytest.approx(
        np.median(whole["equivalent_diameter_um"]))


def test_fragments_are_counted_apart():
    """A pixel touching a pore only diagonally is its own 4-connected component: below the
    smallest pore it is a fragment, counted but not listed."""
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    mask[20, 20] = True  # diagonal to the square's corner
    assert len(pore_table(mask, 1.0)) == 2
    table = pore_table(mask, 1.0, min_area_px=np.pi)
    assert len(table) == 1 and table.attrs["n_fragments"] == 1
    assert table["pore"].tolist() == [1] and table["area_um2"].iloc[0] == 100
    assert pore_summary(table)["n_fragments"] == 1


def test_empty_mask_gives_an_empty_table():
    table = pore_table(np.zeros((20, 30), bool), 0.1)
    assert list(table.columns) == list(PORE_COLUMNS) and len(table) == 0
    summary = pore_summary(table)
    assert summary["n_pores"] == 0 and summary["equivalent_diameter_um"]["median"] is None


@pytest.mark.parametrize("rendering", ["dark", "topographic"])
def test_pore_counts_and_sizes_against_phantom_truth(rendering, tmp_path):
    """Closed cells of 2 µm (20 px): the pores found and their median equivalent diameter
    against the same table of the true mask (pores not cut by the frame; dark within 5 % /
    topographic within 10 %, count within 10 % / 15 %); pores.csv and result.json's pores
    block written with them."""
    ph = make_membrane_phantom((384, 512), rendering=rendering, morphology="cells",
                               pore_size_um=2.0, porosity=0.55, surfaces="both", seed=4)
    a = analyze(ph.grey, pixel_size_um=ph.pixel_size_um)
    found = a.pore_table()
    truth = pore_table(ph.pore_mask, ph.pixel_size_um, cut=edge_pore_mask(ph.pore_mask))
    f, t = found[~found["cut"]], truth[~truth["cut"]]
    tol_n, tol_d = (0.10, 0.05) if rendering == "dark" else (0.15, 0.10)
    assert len(f) == pytest.approx(len(t), rel=tol_n)
    assert f["equivalent_diameter_um"].median() == pytest.approx(
        t["equivalent_diameter_um"].median(), rel=tol_d)
    a.save(tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "pores.csv")
    assert list(csv.columns) == list(PORE_COLUMNS) and len(csv) == len(found)
    block = json.loads((tmp_path / "out" / "result.json").read_text())["pores"]
    assert block["n_pores"] == len(found) and block["n_cut"] == int(found["cut"].sum())
    assert (tmp_path / "out" / "size_distribution.png").stat().st_size > 10_000
