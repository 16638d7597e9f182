"""Depth profile: binning, porosity, pore-size statistics, unreliable bins."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.geometry import membrane_from_surfaces
from pipeline.profile import default_bin_width_um, depth_profile
from pipeline.size import local_thickness


def _stripes_membrane(rows=200, cols=300, surface_row=20):
    """Membrane below row 20; horizontal pore stripes whose width grows with depth."""
    pores = np.zeros((rows, cols), bool)
    widths = []
    r = surface_row + 4
    w = 2
    while r + w < rows - 4:
        pores[r:r + w] = True
        widths.append((r, w))
        r += w + 6
        w += 1
    membrane = membrane_from_surfaces((rows, cols), np.full(cols, float(surface_row)),
                                      np.full(cols, rows - 1.0), reference_surface="top")
    return pores & membrane.mask, membrane, widths


def test_porosity_and_size_of_known_stripes():
    pores, membrane, widths = _stripes_membrane()
    lt = local_thickness(pores)
    px = 0.5
    prof = depth_profile(pores, membrane.mask, membrane.depth_px, lt, px, bin_width_um=0.5,
                         min_pore_pixels=1)
    # each 1-px bin (0.5 µm) is a single image row: porosity 0 or 1
    assert set(np.unique(prof["porosity"].round(6))) <= {0.0, 1.0}
    # the pore size in a stripe's rows = local thickness of an infinitely long band of width w:
    # w px (disk centres on the band's mid-line reach both edges)
    for r, w in widths:
        depth_um = (r - 20 + 0.5) * px  # depth of the row centre (distance from row 20)
        row = prof.iloc[(prof["depth_um"] - depth_um).abs().argmin()]
        assert row["porosity"] == 1.0
        assert row["pore_size_um"] == pytest.approx(lt[r, 150] * px, rel=1e-6)
        assert lt[r, 150] == pytest.approx(w, abs=1.0)


def test_bins_with_few_pore_pixels_are_nan_not_zero():
    pores, membrane, _ = _stripes_membrane()
    lt = local_thickness(pores)
    prof = depth_profile(pores, membrane.mask, membrane.depth_px, lt, 1.0, bin_width_um=1.0,
                         min_pore_pixels=50)
    empty = prof["n_pore_pixels"] < 50
    assert empty.any()
    assert prof.loc[empty, "pore_size_um"].isna().all()
    assert not prof.loc[empty, "reliable"].any()
    assert (prof.loc[empty, "porosity"] >= 0).all()  # porosity still reported
    assert prof.loc[~empty, "pore_size_um"].notna().all()


def test_counts_add_up_and_depth_is_monotone():
    rng = np.random.default_rng(3)
    pores = rng.random((120, 160)) < 0.4
    membrane = membrane_from_surfaces((120, 160), np.full(160, 10.0), np.full(160, 110.0),
                                      reference_surface="top")
    pores &= membrane.mask
    prof = depth_profile(pores, membrane.mask, membrane.depth_px, local_thickness(pores), 0.2)
    assert prof["n_pixels"].sum() == membrane.mask.sum()
    assert prof["n_pore_pixels"].sum() == pores.sum()
    assert np.all(np.diff(prof["depth_um"]) > 0)
    assert prof["porosity"].between(0, 1).all()
    ok = prof["reliable"]
    assert (prof.loc[ok, "pore_size_p10_um"] <= prof.loc[ok, "pore_size_median_um"]).all()
    assert (prof.loc[ok, "pore_size_median_um"] <= prof.loc[ok, "pore_size_p90_um"]).all()


def test_default_bin_width_adapts_to_span_and_pixel_size():
    assert default_bin_width_um(100.0, 0.1) == 5.0  # 100/40 = 2.5 -> 5 (1-2-5 series)
    assert default_bin_width_um(10.0, 0.1) == 0.5
    assert default_bin_width_um(1.0, 0.1) == 0.2  # never thinner than 2 px
    for span, px in [(37.0, 0.03), (250.0, 0.25), (3.0, 0.001)]:
        w = default_bin_width_um(span, px)
        assert w >= 2 * px and span / w <= 40.0 + 1e-9


def test_tilted_surface_uses_euclidean_depth():
    rows, cols = 300, 300
    slope = np.tan(np.deg2rad(10))
    top = 40 + slope * np.arange(cols)
    membrane = membrane_from_surfaces((rows, cols), top, np.full(cols, rows - 1.0),
                                      reference_surface="top")
    # a point 50 px below the line, measured perpendicular to it
    c = 150
    r = top[c] + 50 / np.cos(np.arctan(slope))
    assert membrane.depth_px[int(round(r)), c] == pytest.approx(50, abs=1.0)


@pytest.mark.parametrize("offset", [0.0, 0.1])
def test_grouped_quantiles_match_numpy(offset):
    from pipeline.profile import grouped_quantiles

    rng = np.random.default_rng(0)
    k = rng.integers(0, 500, 5000)
    # offset 0: exact local-thickness values 2*sqrt(k) (histogram path); 0.1: sort path
    values = (2 * np.sqrt(k) + offset).astype(np.float32)
    group = rng.integers(0, 7, 5000)
    got = grouped_quantiles(group, values, 8, (0.5, 0.1, 0.9))
    for g in range(7):
        want = np.quantile(values[group == g].astype(np.float64), (0.5, 0.1, 0.9))
        np.testing.assert_allclose(got[g], want, atol=1e-5)
    assert np.isnan(got[7]).all()  # empty group


def test_bins_below_the_resolution_limit_are_flagged():
    """``at_resolution_limit``: reliable bins whose mean pore size is below 1.25 x the limit."""
    pores, membrane, widths = _stripes_membrane()
    lt = local_thickness(pores)
    px = 0.5
    limit_px = 6.0
    prof = depth_profile(pores, membrane.mask, membrane.depth_px, lt, px, bin_width_um=0.5,
                         min_pore_pixels=1, resolution_limit_px=limit_px)
    assert prof.attrs["resolution_limit_um"] == pytest.approx(limit_px * px)
    flag = prof["at_resolution_limit"]
    ok = prof["reliable"].to_numpy()
    assert flag[~ok].isna().all()  # no pores: unknown, not False
    size_px = prof["pore_size_um"].to_numpy() / px
    expect = size_px[ok] < 1.25 * limit_px
    assert expect.any() and not expect.all()  # stripes 2 px .. wide: both sides present
    np.testing.assert_array_equal(flag[ok].to_numpy(bool), expect)
    # without a known limit the column is missing data, never a claim
    plain = depth_profile(pores, membrane.mask, membrane.depth_px, lt, px, bin_width_um=0.5,
                          min_pore_pixels=1)
    assert plain["at_resolution_limit"].isna().all()
    assert plain.attrs["resolution_limit_um"] is None
    # the other columns do not depend on the limit
    cols = [c for c in plain.columns if c != "at_resolution_limit"]
    assert plain[cols].equals(prof[cols])


def test_resolution_limited_ranges_are_runs_of_flagged_bins():
    import pandas as pd

    from pipeline.profile import resolution_limited_ranges_um

    prof = pd.DataFrame({
        "depth_lo_um": np.arange(6.0), "depth_hi_um": np.arange(1.0, 7.0),
        "at_resolution_limit": pd.array([True, True, pd.NA, False, True, True],
                                        dtype="boolean")})
    assert resolution_limited_ranges_um(prof) == [(0.0, 2.0), (4.0, 6.0)]
    assert resolution_limited_ranges_um(prof.drop(columns="at_resolution_limit")) == []
    prof["at_resolution_limit"] = pd.array([pd.NA] * 6, dtype="boolean")
    assert resolution_limited_ranges_um(prof) == []


def test_surface_layer_mean_reads_values_on_either_side_of_a_line():
    """The layers of surface_layer_porosity for any per-pixel value: with the row index as the
    value and a flat line at row 10, layer k below holds row 10 + k and layer k above row 10 - k;
    the region restricts the pixels read; on a bool mask it is the layer porosity."""
    from pipeline.profile import surface_layer_mean, surface_layer_porosity

    rows = np.repeat(np.arange(40, dtype=float)[:, None], 30, axis=1)
    line = np.full(30, 10.0)
    everywhere = np.ones(rows.shape, bool)
    below = surface_layer_mean(rows, everywhere, line, below=True, max_depth_px=5)
    above = surface_layer_mean(rows, everywhere, line, below=False, max_depth_px=5)
    np.testing.assert_allclose(below, [10, 11, 12, 13, 14])
    np.testing.assert_allclose(above, [10, 9, 8, 7, 6])
    region = rows >= 12  # no region pixels in the first two layers below
    part = surface_layer_mean(rows, region, line, below=True, max_depth_px=5)
    assert np.isnan(part[:2]).all() and np.allclose(part[2:], [12, 13, 14])
    pores = (rows.astype(int) + np.arange(30)[None, :]) % 3 == 0
    np.testing.assert_array_equal(
        surface_layer_mean(pores, everywhere, line, max_depth_px=8),
        surface_layer_porosity(pores, everywhere, line, max_depth_px=8))
