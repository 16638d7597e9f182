"""pipeline.combine: one depth profile from images of a membrane at several magnifications.

The phantom is one gradient membrane (pores 0.4 -> 4 µm, a ratio of 10, both surfaces) rendered
at 0.05 µm/px; the "high-magnification" image is a crop of its top part at that pixel size, the
"overview" the whole frame reduced four times (0.2 µm/px, area averaging), where the smallest
pores (2 px) are below the segmentation's resolution limit. Truth: the phantom's masks, profiled
with the same bins and zone definitions.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline import analyze, synthetic
from pipeline.cli import main
from pipeline.combine import (
    CombineError,
    ProfileSource,
    combine_profiles,
    combine_result_dirs,
    combined_criteria,
)
from pipeline.profile import depth_profile


@pytest.fixture(scope="module")
def membrane():
    ph = synthetic.make_membrane_phantom(
        (1024, 1536), pixel_size_um=0.05, profile="gradient_increasing",
        pore_size_range_um=(0.4, 4.0), surfaces="both", rendering="dark", databar=False, seed=1)
    grey = ph.grey.astype(np.float32)
    top = int(np.floor(ph.top_px.min())) - 20
    fine = grey[top:top + 480, :1024]
    overview = cv2.resize(grey, (grey.shape[1] // 4, grey.shape[0] // 4),
                          interpolation=cv2.INTER_AREA)
    a_fine = analyze(fine, pixel_size_um=0.05)
    a_overview = analyze(overview, pixel_size_um=0.2)
    truth = depth_profile(ph.pore_mask, ph.membrane_mask, ph.membrane().depth_px,
                          ph.local_thickness_px, 0.05, bin_width_um=1.0)
    truth_criteria = combined_criteria(truth.assign(at_resolution_limit=False),
                                       ph.truth["thickness_um"])
    return {"fine": a_fine, "overview": a_overview, "truth": truth,
            "truth_criteria": truth_criteria}


def _sources(m):
    return [ProfileSource.from_analysis(m["overview"], "overview"),
            ProfileSource.from_analysis(m["fine"], "fine")]


def test_each_depth_from_the_finest_image_that_resolves_it(membrane):
    """The overview alone floors the surface zone's pores (+40 % and more, its bins flagged at
    the resolution limit); combined with the high-magnification crop, the surface zone's pore
    size is within 12 % of the truth, the surface/interior and top/bottom ratios within 15 %."""
    m = membrane
    overview = m["overview"].profile
    assert overview["at_resolution_limit"].iloc[:3].all()  # the premise: floored near the top
    combined = combine_profiles(_sources(m))
    p = combined.profile
    assert list(p["depth_um"]) == sorted(p["depth_um"])
    fine_rows = p[p.source == "fine"]
    assert len(fine_rows) > 5 and not fine_rows.at_resolution_limit.any()
    assert (p[p.depth_um < 10].source == "fine").all()
    deep = p[p.depth_um > 0.8 * combined.criteria["d_um"]]
    assert len(deep) and (deep.source == "overview").all()  # beyond the crop's field of view
    t, c = m["truth_criteria"], combined.criteria
    alone = combined_criteria(overview, m["overview"].membrane.thickness_px * 0.2)
    for key, tol in [("surface_zone_pore_size_um", 0.12), ("surface_to_interior_ratio", 0.15),
                     ("top_to_bottom_pore_size_ratio", 0.15)]:
        assert abs(c[key] / t[key] - 1) <= tol, (key, c[key], t[key])
        assert alone[key] / t[key] - 1 > 0.4, (key, alone[key], t[key])  # the control
    assert not c["surface_zone_at_resolution_limit"] and alone["surface_zone_at_resolution_limit"]
    assert c["thickness_known"] and abs(c["d_um"] / (1024 * 0.62 * 0.05) - 1) < 0.03
    by_name = {s["name"]: s for s in combined.sources}
    assert by_name["fine"]["bins_used"] == len(fine_rows)


def test_agreement_where_both_resolve_and_a_wrong_calibration_is_noted(membrane):
    """Where both images resolve the pores their sizes agree within 20 %; a high-magnification
    image of another membrane (uniform 0.5 µm pores) disagrees, and the combination says so."""
    m = membrane
    combined = combine_profiles(_sources(m))
    pair, = combined.agreement
    assert pair["finer"] == "fine" and pair["coarser"] == "overview" and pair["n_bins"] >= 3
    assert pair["agree"] and 0.85 <= pair["pore_size_ratio"] <= 1.18
    assert abs(pair["porosity_difference"]) < 0.05
    assert not any("disagree" in n for n in combined.notes)
    other = synthetic.make_membrane_phantom((512, 1024), pixel_size_um=0.05, pore_size_um=0.5,
                                            surfaces="top", databar=False, seed=2)
    wrong = analyze(other.grey.astype(np.float32), pixel_size_um=0.05)
    bad = combine_profiles([ProfileSource.from_analysis(m["overview"], "overview"),
                            ProfileSource.from_analysis(wrong, "fine")])
    pair, = bad.agreement
    assert not pair["agree"]
    assert any(n.startswith("overview and fine disagree") for n in bad.notes)


def test_zone_means_weight_bins_by_pore_area_per_width():
    """Two bins in the surface zone from images of different pixel sizes and widths: the zone
    mean weights each by porosity x bin width, not by pixel counts."""
    p = pd.DataFrame({
        "depth_um": [0.25, 1.0, 10.0, 50.0], "depth_lo_um": [0.0, 0.5, 8.0, 48.0],
        "depth_hi_um": [0.5, 1.5, 12.0, 52.0], "porosity": [0.2, 0.6, 0.5, 0.5],
        "pore_size_um": [0.1, 0.3, 1.0, 2.0], "reliable": True,
        "at_resolution_limit": [False, False, False, True], "n_pixels": [10**6, 10, 10, 10]})
    c = combined_criteria(p, 32.0)  # surface zone 0..2 µm, opposite zone from 30 µm
    w = np.array([0.2 * 0.5, 0.6 * 1.0])
    assert c["surface_zone_pore_size_um"] == pytest.approx((0.1 * w[0] + 0.3 * w[1]) / w.sum())
    assert c["surface_zone_porosity"] == pytest.approx((0.2 * 0.5 + 0.6 * 1.0) / 1.5)
    assert c["opposite_zone_pore_size_um"] == 2.0  # depth >= d - d/16 (docs/structure.md)
    assert not c["surface_zone_at_resolution_limit"]
    open_ended = combined_criteria(p, None)
    assert not open_ended["thickness_known"] and open_ended["d_um"] == 52.0
    assert open_ended["top_to_bottom_pore_size_ratio"] is None


def test_cli_combines_result_folders(membrane, tmp_path, capsys):
    """Saved results combine like the analyses; the files are written once (no overwrite
    without --force); a folder without a profile is a one-line error."""
    m = membrane
    for name in ("fine", "overview"):
        m[name].save(tmp_path / "results" / name)
    dirs = [str(tmp_path / "results" / n) for n in ("fine", "overview")]
    out = tmp_path / "combined"
    assert main(["combine", *dirs, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "depth bins from 2 images" in err and "Traceback" not in err
    saved = pd.read_csv(out / "combined_profile.csv")
    direct = combine_result_dirs(dirs).profile
    np.testing.assert_allclose(saved["pore_size_um"], direct["pore_size_um"], rtol=1e-5)
    in_memory = combine_profiles(_sources(m)).profile
    np.testing.assert_allclose(saved["pore_size_um"], in_memory["pore_size_um"], rtol=1e-5)
    summary = json.loads((out / "combined.json").read_text())
    assert summary["criteria"]["surface_zone_pore_size_um"] > 0
    assert (out / "combined_profile.png").stat().st_size > 10_000
    assert main(["combine", *dirs, "--out", str(out)]) == 2
    assert "use --force" in capsys.readouterr().err
    assert main(["combine", *dirs, "--out", str(out), "--force", "-q"]) == 0

    flat = analyze(np.random.default_rng(0).normal(0.5, 0.1, (200, 300)), pixel_size_um=0.1,
                   settings=m["fine"].settings.replace(geometry={"surface": "none"}))
    flat.save(tmp_path / "results" / "field")
    with pytest.raises(CombineError, match="field: no depth profile"):
        combine_result_dirs([tmp_path / "results" / "field"])
    assert main(["combine", str(tmp_path / "results" / "field"), "--out",
                 str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sempore: error:") and "\n" not in err


def test_sources_of_the_same_name_stay_apart(membrane):
    a = ProfileSource.from_analysis(membrane["fine"], "scan")
    b = ProfileSource.from_analysis(membrane["overview"], "scan")
    combined = combine_profiles([a, b])
    assert sorted(s["name"] for s in combined.sources) == ["scan", "scan (2)"]
    assert a.name == b.name == "scan"  # the caller's sources are not changed


def test_broken_result_folders_are_one_line_errors(membrane, tmp_path):
    folder = tmp_path / "fine"
    membrane["fine"].save(folder)
    (folder / "profile.csv").write_text('depth_um,porosity\n1,"unterminated\n')
    with pytest.raises(CombineError, match="fine: ") as err:
        combine_result_dirs([folder])
    assert "\n" not in str(err.value)
    result = json.loads((folder / "result.json").read_text())
    del result["image"]["pixel_size_um"]
    (folder / "result.json").write_text(json.dumps(result))
    with pytest.raises(CombineError, match="result unreadable"):
        combine_result_dirs([folder])
    with pytest.raises(CombineError, match="no result.json"):
        combine_result_dirs([tmp_path / "nothing"])


def test_the_skin_comes_from_the_finest_image(membrane, tmp_path):
    """Each image's own skin measure travels with its profile (from an analysis or a saved
    result); the combined criteria take the finest image's."""
    m = membrane
    for name in ("fine", "overview"):
        m[name].save(tmp_path / name)
    combined = combine_result_dirs([tmp_path / "overview", tmp_path / "fine"])
    assert combined.criteria["skin_source"] == "fine"
    assert combined.criteria["skin_thickness_um"] == pytest.approx(
        m["fine"].criteria["skin_thickness_um"])
    sources = _sources(m)
    sources[1].skin_thickness_um = None  # the fine image measured none
    combined = combine_profiles(sources)
    assert combined.criteria["skin_source"] == "overview"
