"""Whole-pipeline accuracy against known truth (issue 2, "Done when").

Every test runs :func:`pipeline.analyze` on a FILE (FEI TIFF for pipeline.synthetic phantoms;
BMP + Hitachi sidecar, PNG, TIFF without metadata or JPEG for the held-out renderings of
``tests/heldout.py``), so loading, calibration and data-bar removal are part of what is scored.
The metrics and their targets are those of the issue (see ``tests/_accuracy.py``):

* pore Dice >= 0.90 inside the true membrane,
* thickness within 3 % when both surfaces are in view,
* porosity-profile mean absolute error <= 0.05 and pore-size-profile median relative error
  <= 10 % against the truth profile, over 5-95 % of the thickness (visible span with one surface),
* reference/opposite surface position: median error <= max(2 px, 1.5 % of the thickness).

Default run: one seed per kind (512 x 768). ``-m slow`` sweeps more seeds.

Kinds on which the pipeline currently misses a target are marked ``xfail(strict=False)`` with the
measured value in the reason, so they show in the report (``-ra``) instead of being hidden by a
loosened threshold; an XPASS means a stage has improved and the mark can go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline import analyze

from _accuracy import (
    SYNTHETIC_KINDS,
    TARGETS,
    dice_in_membrane,
    failures,
    score,
    size_error_sources,
    structure_agreement,
    synthetic_phantom,
    truth_from_phantom,
)
from heldout import HELDOUT_KINDS, heldout_image

REPO = Path(__file__).resolve().parents[1]
HITACHI = REPO / "example_images" / "polymer_membrane_xsection_hitachi.bmp"

#: (set, kind, metric) -> measured value and target, for the kinds that currently miss a target
#: (measured 2026-12-07 with seed 0, after the basin features were calibrated on windows too;
#: re-measure with ``python benchmarks/bench_accuracy.py --xfail``; that change brought the
#: porosity of fingers-topo seed 0 from 0.055 to within the target, and of held-out nips-se).
KNOWN_FAILURES: dict[tuple[str, str, str], str] = {
    ("synthetic", "sponge-topo-minimum-top-tilt", "dice"):
        "Dice 0.801; target >= 0.90"
        " (segment: ~20 % of basins misclassified, pores merged)",
    ("synthetic", "sponge-topo-minimum-top-tilt", "pore_size"):
        "pore-size median rel. error 15%; target <= 10 %"
        " (segment: ~20 % of basins misclassified, thin walls given to pores)",
    ("synthetic", "spheres-topo-gradient-top-debris", "dice"):
        "Dice 0.865; target >= 0.90"
        " (segment: basins misclassified, pores merged)",
    ("synthetic", "fingers-topo-both", "dice"):
        "Dice 0.765; target >= 0.90"
        " (segment: sponge polymer patches labelled pore, pores merged)",
    ("synthetic", "fingers-topo-both", "pore_size"):
        "pore-size median rel. error 19%; target <= 10 %"
        " (segment: sponge below the resolution limit, pores merged)",
    ("heldout", "foam-se-charging-both-hitachi", "dice"):
        "Dice 0.796; target >= 0.90"
        " (segment: boundary on the wall crest, shallow cells missed)",
    ("heldout", "stretched-se-jpeg-both-hitachi", "pore_size"):
        "pore-size median rel. error 14%; target <= 10 %"
        " (segment: boundary on the rim crest, pores merged)",
    ("heldout", "sponge-se-minimum-top-charging-zeiss", "dice"):
        "Dice 0.838; target >= 0.90"
        " (segment: boundary on the rim crest, pores merged)",
    ("heldout", "sponge-se-minimum-top-charging-zeiss", "porosity"):
        "porosity MAE 0.062; target <= 0.05"
        " (segment: boundary on the rim crest, pores merged)",
    ("heldout", "sponge-se-minimum-top-charging-zeiss", "pore_size"):
        "pore-size median rel. error 26%; target <= 10 %"
        " (segment: boundary on the rim crest, pores merged)",
    ("heldout", "nips-se-top-charging-zeiss", "dice"):
        "Dice 0.841; target >= 0.90"
        " (segment: boundary on the rim crest, pores merged)",
    ("heldout", "nips-se-top-charging-zeiss", "pore_size"):
        "pore-size median rel. error 31%; target <= 10 %"
        " (segment: boundary on the rim crest, pores merged)",
}

#: kinds that pass with seed 0 but whose slow sweep (seeds 1-4) is expected to miss a target
#: (none since the detector-direction translation of the topographic mask: cells-topo seeds 1-3
#: had Dice 0.895-0.900, now 0.913-0.917)
EXTRA_SWEEP_FAILURES: dict[tuple[str, str], str] = {}


def _sweep_reason(group: str, kind: str) -> str | None:
    known = [f"{metric}: {why}" for (g, k, metric), why in KNOWN_FAILURES.items()
             if (g, k) == (group, kind)]
    extra = EXTRA_SWEEP_FAILURES.get((group, kind))
    return "; ".join(known + ([extra] if extra else [])) or None

METRICS = ("dice", "thickness", "porosity", "pore_size", "surface", "opposite_surface")


def _applies(metric: str, surfaces: str) -> bool:
    return metric not in ("thickness", "opposite_surface") or surfaces == "both"


def _params(group: str, kinds: dict[str, dict[str, Any]]) -> list[Any]:
    out = []
    for kind, spec in kinds.items():
        for metric in METRICS:
            if not _applies(metric, spec["surfaces"]):
                continue
            reason = KNOWN_FAILURES.get((group, kind, metric))
            marks = [pytest.mark.xfail(strict=False, reason=reason)] if reason else []
            out.append(pytest.param(kind, metric, marks=marks, id=f"{kind}-{metric}"))
    return out


def check(metrics: dict[str, Any], metric: str) -> None:
    """Assert one metric against its target, with the measured value in the message."""
    if metric == "dice":
        assert metrics["dice"] >= TARGETS["dice"], f"Dice {metrics['dice']:.3f} < 0.90"
    elif metric == "thickness":
        err = metrics["thickness_rel_err"]
        assert err <= TARGETS["thickness_rel_err"], f"thickness error {err:.3%} > 3 %"
    elif metric == "porosity":
        mae = metrics["porosity_mae"]
        assert metrics["reference_ok"], f"reference surface {metrics['reference_surface']}"
        assert mae <= TARGETS["porosity_mae"], f"porosity-profile MAE {mae:.3f} > 0.05"
    elif metric == "pore_size":
        err = metrics["size_med_rel_err"]
        assert metrics["reference_ok"], f"reference surface {metrics['reference_surface']}"
        assert err <= TARGETS["size_med_rel_err"], (
            f"pore-size-profile median relative error {err:.1%} > 10 % "
            f"(median bias {metrics.get('size_bias', float('nan')):+.1%})")
    elif metric in ("surface", "opposite_surface"):
        key = "surface_err_px" if metric == "surface" else "opposite_err_px"
        err, target = metrics[key], metrics["surface_target_px"]
        assert err <= target, f"{metric} median error {err:.2f} px > {target:.2f} px"
    else:  # pragma: no cover
        raise ValueError(metric)


# ------------------------------------------------------------------------------------------------
# one analysis per (kind, seed), shared by the metric tests


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Any:
    cache: dict[tuple[str, str, int], dict[str, Any]] = {}
    workdir = tmp_path_factory.mktemp("end_to_end")

    def get(group: str, kind: str, seed: int = 0) -> dict[str, Any]:
        key = (group, kind, seed)
        if key not in cache:
            if group == "synthetic":
                ph = synthetic_phantom(kind, seed)
                path = workdir / f"{kind}-s{seed}.tif"
                ph.save(path)
                analysis = analyze(path)
                truth = truth_from_phantom(ph)
            else:
                held = heldout_image(kind, seed)
                path, pixel = held.save(workdir)
                analysis = analyze(path, pixel)
                truth = held.truth
            cache[key] = score(analysis, truth)
        return cache[key]

    return get


@pytest.mark.parametrize("kind, metric", _params("synthetic", SYNTHETIC_KINDS))
def test_synthetic_phantom(measured, kind, metric):
    check(measured("synthetic", kind), metric)


@pytest.mark.parametrize("kind, metric", _params("heldout", HELDOUT_KINDS))
def test_heldout_rendering(measured, kind, metric):
    check(measured("heldout", kind), metric)


def _sweep_params(group: str, kinds: dict[str, Any], seeds: range) -> list[Any]:
    out = []
    for kind in kinds:
        reason = _sweep_reason(group, kind)
        marks = [pytest.mark.xfail(strict=False, reason=reason)] if reason else []
        out += [pytest.param(kind, seed, marks=marks, id=f"{kind}-s{seed}") for seed in seeds]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind, seed", _sweep_params("synthetic", SYNTHETIC_KINDS, range(1, 5)))
def test_synthetic_sweep(measured, kind, seed):
    bad = failures(measured("synthetic", kind, seed))
    assert not bad, "; ".join(bad)


@pytest.mark.slow
@pytest.mark.parametrize("kind, seed", _sweep_params("heldout", HELDOUT_KINDS, range(1, 5)))
def test_heldout_sweep(measured, kind, seed):
    bad = failures(measured("heldout", kind, seed))
    assert not bad, "; ".join(bad)


# ------------------------------------------------------------------------------------------------
# the harness itself: truth scored against truth is perfect, and the held-out truth geometry
# agrees with the pipeline's membrane conventions


def test_scoring_truth_against_itself_is_perfect():
    ph = synthetic_phantom("spheres-dark-minimum-both-bend", 0, shape=(256, 384))
    truth = truth_from_phantom(ph)
    a = analyze(ph.grey, ph.pixel_size_um, membrane=ph.membrane(), pore_mask=ph.pore_mask)
    m = score(a, truth)
    assert m["dice"] == 1.0
    assert m["porosity_mae"] == 0.0 and m["size_med_rel_err"] == 0.0
    assert m["n_bins"] >= 20
    assert m["surface_err_px"] == 0.0 and m["opposite_err_px"] == 0.0
    assert m["thickness_rel_err"] < 1e-3
    assert not failures(m)
    agree = structure_agreement(a, truth)
    assert agree["kind_ok"] and agree["surface_ok"], agree
    assert agree["true_kind"] == "internal_minimum"  # the phantom's design
    assert agree["min_layer_depth_err_um"] < 1e-9
    # a segmentation shrunk by one pixel is caught
    from scipy import ndimage as ndi

    shrunk = ndi.binary_erosion(ph.pore_mask)
    m2 = score(analyze(ph.grey, ph.pixel_size_um, membrane=ph.membrane(), pore_mask=shrunk),
               truth)
    assert m2["dice"] < 0.95 and m2["porosity_mae"] > 0.05 and m2["size_med_rel_err"] > 0.10


def test_size_error_sources_split_boundary_from_labelling():
    """benchmarks/bench_size_bias.py's decomposition on known errors of the true mask."""
    from scipy import ndimage as ndi

    ph = synthetic_phantom("cells-dark-gradient-top-debris", 0, shape=(256, 384))
    truth = truth_from_phantom(ph)
    same = size_error_sources(ph.pore_mask, truth)
    assert same["size_ratio"] == pytest.approx(1.0)
    assert same["boundary_outside"] == 0.0 and same["thin_wall_as_pore"] == 0.0
    assert same["porosity_ratio"] == pytest.approx(1.0)
    # a boundary one pixel too far out: all of it is near false positives, none is labelling
    grown = ndi.binary_dilation(ph.pore_mask) & truth.membrane_mask
    g = size_error_sources(grown, truth)
    assert g["boundary_outside"] == 1.0 and g["near_fp_share"] == 1.0
    assert g["size_ratio"] == pytest.approx(g["ratio_truth_dilated_1px"])
    assert g["size_ratio"] > 1.1 and g["ratio_without_near_fp"] == pytest.approx(1.0)
    assert g["thin_wall_as_pore"] > 0.3  # closed cells: their thin walls are eaten first
    # a polymer region far from every pore labelled pore: labelling, not boundary
    far = ndi.distance_transform_edt(~ph.pore_mask) > 4
    blob = far & truth.membrane_mask
    lab, n = ndi.label(blob)
    assert n > 0
    biggest = lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:]))
    f = size_error_sources(ph.pore_mask | biggest, truth)
    assert f["near_fp_share"] == 0.0 and f["boundary_outside"] > 0.0


def test_heldout_truth_matches_pipeline_membrane_conventions():
    from pipeline.geometry import membrane_from_surfaces

    held = heldout_image("foam-bse-gradient-both-tilt-hitachi", 0)
    t = held.truth
    mem = membrane_from_surfaces(t.pore_mask.shape, t.top_px, t.bottom_px,
                                 reference_surface="top")
    assert np.array_equal(mem.mask, t.membrane_mask)
    assert mem.thickness_px == pytest.approx(t.thickness_px, abs=0.5)
    inside = t.membrane_mask
    # the pipeline rasterises the line (+-0.5 px); the held-out depth is exact
    assert np.nanmax(np.abs(mem.depth_px[inside] - t.depth_px[inside])) < 0.75
    a = analyze(held.image[: t.pore_mask.shape[0]], held.pixel_size_um, membrane=mem,
                pore_mask=t.pore_mask)
    m = score(a, t)
    assert m["dice"] == 1.0 and m["porosity_mae"] < 0.005 and m["size_med_rel_err"] < 0.005


# ------------------------------------------------------------------------------------------------
# the real Hitachi cross-section


def test_real_hitachi_surface_and_profile_span():
    a = analyze(HITACHI)
    assert a.micrograph.pixel_size_um == pytest.approx(0.2488, rel=1e-3)
    assert a.micrograph.databar_rows == 64
    mem = a.membrane
    assert mem.reference_surface == "top"
    row = float(np.nanmedian(mem.top_px))
    assert abs(row - 100) <= 10, f"surface at row {row:.1f}, expected 100 +- 10"
    # the film runs from the surface to the data bar (row 896): the profile must cover it
    rows = a.micrograph.image.shape[0]
    film_um = (rows - row) * a.pixel_size_um
    prof = a.profile
    reliable = prof[prof["reliable"]]
    assert reliable["depth_hi_um"].max() >= 0.9 * film_um
    inner = prof[(prof["depth_um"] >= 0.05 * film_um) & (prof["depth_um"] <= 0.9 * film_um)]
    assert inner["reliable"].all()


def test_real_hitachi_closed_cells_stay_separate():
    """Plausibility on the real closed-cell film (no pixel truth): the cells are closed by bright
    walls about 1 µm thick, so the 2-D porosity is well below 0.85 and no single connected pore
    holds most of the pore area. (main 2acac2d failed it: walls labelled pore, porosity
    0.84-0.94, one pore held 99.9 % of the pore area; 061c3ca: porosity 0.70-0.80, 1008 pores,
    the largest 1 %.)"""
    from scipy import ndimage as ndi

    a = analyze(HITACHI)
    prof = a.profile
    row = float(np.nanmedian(a.membrane.top_px))
    film_um = (a.micrograph.image.shape[0] - row) * a.pixel_size_um
    inner = prof[(prof["depth_um"] >= 0.05 * film_um) & (prof["depth_um"] <= 0.9 * film_um)]
    assert inner["porosity"].between(0.2, 0.85).all(), inner["porosity"].describe()
    lab, n = ndi.label(a.segmentation.mask)
    area = np.bincount(lab.ravel())[1:]
    assert n > 500 and area.max() < 0.5 * area.sum(), (
        f"{n} pores, largest holds {area.max() / area.sum():.1%} of the pore area")


#: (row, col) of cell centres on the real Hitachi film, marked by eye on three 200 x 200 px crops
#: (rows 120-320 / cols 300-500, rows 400-600 / cols 800-1000, rows 650-850 / cols 150-350):
#: 10-12 cells per crop whose bright rim visibly closes around them, each point well inside the
#: rim (picked before looking at any segmentation of these crops).
HITACHI_CELL_CENTRES = [
    (169, 391), (185, 415), (210, 475), (227, 447), (192, 331), (247, 355), (235, 411),
    (280, 450), (285, 370), (150, 350), (152, 447),
    (500, 910), (510, 837), (545, 856), (542, 917), (497, 970), (450, 932), (450, 887),
    (530, 975), (575, 875), (580, 915),
    (697, 222), (682, 192), (722, 235), (765, 239), (779, 220), (697, 257), (697, 325),
    (717, 280), (795, 260), (820, 180), (740, 320), (740, 265),
]


def test_real_hitachi_cells_marked_by_eye_are_pores():
    """The only pixel truth on a real membrane here: 33 cell centres marked by eye. A cell is
    found when a pore pixel lies within 1 px of its centre. Measured: 32/33 (8fe72df: 31/33; the
    misses are large cells with flat grey floors, which the basin classifier reads as polymer
    faces). Required: 30/33."""
    a = analyze(HITACHI)
    mask = a.segmentation.mask
    found = [bool(mask[r - 1:r + 2, c - 1:c + 2].any()) for r, c in HITACHI_CELL_CENTRES]
    missed = [p for p, f in zip(HITACHI_CELL_CENTRES, found) if not f]
    assert sum(found) >= 30, f"{sum(found)}/{len(found)} cells found; missed {missed}"


# ------------------------------------------------------------------------------------------------
# pipeline.synthetic.random_phantom: varied draws of every parameter (slow)

#: seed -> measured misses (re-measured 2026-12-05 after the detector-direction translation; before,
#: 2026-12-04, with the dark rim correction and the wall lines
#: from 0.25 crest contrasts; seeds 0, 1, 4, 6 (dark, bright rims) pass since), for random
#: phantoms that currently miss a target
KNOWN_RANDOM_FAILURES: dict[int, str] = {
    0: "sponge/dark: porosity MAE 0.052, on the target's edge (0.049 before 34e6720 drew pores "
       "open at the surface without a rim across their mouths; Dice 0.937, sizes 2 % off)",
    2: "fingers/topographic: Dice 0.840, size +33 % (segment: pores merged)",
    3: "spheres/topographic: Dice 0.841 (segment)",
    9: "cells/topographic: Dice 0.900, at the target (0.882 before the detector-direction "
       "translation; kept non-strict: it passes or misses by rounding)",
    11: "spheres/topographic: Dice 0.817 (segment: pores merged)",
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [
    pytest.param(s, marks=[pytest.mark.xfail(strict=False, reason=KNOWN_RANDOM_FAILURES[s])]
                 if s in KNOWN_RANDOM_FAILURES else [], id=f"random-s{s}")
    for s in range(12)])
def test_random_phantom(tmp_path, seed):
    from pipeline.synthetic import random_phantom

    ph = random_phantom(seed)
    path = tmp_path / "random.tif"
    ph.save(path)
    bad = failures(score(analyze(path), truth_from_phantom(ph)))
    assert not bad, f"{ph.truth['morphology']}/{ph.truth['rendering']}: " + "; ".join(bad)


def test_isolated_large_topographic_pores_end_to_end(tmp_path):
    """Isolated 96 px pores at porosity 0.25, topographic, from an FEI file with `auto`: before
    the geometry's level cut (0bc44d0) no surface was found and `auto` read the vacuum as pores
    (dark, Dice 0.42); before the coarse levels (a43561d) the pores came out 18-47 % small.
    Measured now: topographic, Dice 0.947, pore-size error 7.1 %, porosity MAE 0.015."""
    from pipeline.synthetic import make_membrane_phantom

    ph = make_membrane_phantom((768, 1024), pixel_size_um=0.1, pore_size_um=9.6, porosity=0.25,
                               morphology="spheres", rendering="topographic", surfaces="both",
                               profile="uniform", seed=121)
    path = tmp_path / "isolated96.tif"
    ph.save(path)
    a = analyze(path)
    assert a.segmentation.method == "topographic"
    assert set(a.membrane.surfaces_in_view) == {"top", "bottom"}
    assert not failures(score(a, truth_from_phantom(ph)))


@pytest.mark.parametrize("p_topographic,noted", [(0.58, True), (0.42, True), (0.9, False)])
def test_uncertain_auto_choice_is_noted(monkeypatch, p_topographic, noted):
    import pipeline.analysis as analysis_module
    from pipeline import synthetic

    real_segment = analysis_module.segment_pores

    def segment_with_p(*args, **kwargs):
        seg = real_segment(*args, **kwargs)
        seg.details["p_topographic"] = p_topographic
        return seg

    monkeypatch.setattr(analysis_module, "segment_pores", segment_with_p)
    ph = synthetic.make_membrane_phantom((256, 384), pixel_size_um=0.1, pore_size_um=1.0,
                                         surfaces="top", seed=3)
    a = analyze(ph.image[:-ph.databar_rows] if ph.databar_rows else ph.image, 0.1)
    hits = [n for n in a.notes if n.startswith("segmentation method uncertain")]
    assert bool(hits) == noted
    if noted:
        other = "dark" if a.segmentation.method == "topographic" else "topographic"
        assert f"--method {other}" in hits[0]


@pytest.mark.parametrize("p_topographic", [0.6, 0.95])
def test_overruled_auto_choice_is_noted(monkeypatch, p_topographic):
    """A topographic verdict withdrawn by auto's porosity cross-check is noted however sure the
    classifier was, with both porosities and the way back."""
    import pipeline.analysis as analysis_module
    from pipeline import synthetic

    real_segment = analysis_module.segment_pores

    def overruled(*args, **kwargs):
        seg = real_segment(*args, method="dark")
        seg.details.update(p_topographic=p_topographic, auto_porosity_check={
            "topographic_porosity": 0.62, "dark_porosity": 0.18})
        return seg

    monkeypatch.setattr(analysis_module, "segment_pores", overruled)
    ph = synthetic.make_membrane_phantom((256, 384), pixel_size_um=0.1, pore_size_um=1.0,
                                         surfaces="top", seed=3)
    a = analyze(ph.image[:-ph.databar_rows] if ph.databar_rows else ph.image, 0.1)
    hits = [n for n in a.notes if n.startswith("segmentation method uncertain")]
    assert len(hits) == 1
    assert "0.62" in hits[0] and "0.18" in hits[0] and "--method topographic" in hits[0]


def test_ambiguous_topographic_segmentation_is_noted_and_tracks_dice():
    """``details["ambiguous_fraction"]`` (the share of the membrane in basins the classifier calls
    with p in 0.25-0.75) is low where the topographic method segments well and high where it
    does not (8 px sponge pores, at its resolution limit), and only the latter gets the review
    note; an analysis of a mask handed in (napari's review) gets none. Measured: closed cells
    Dice 0.92, ambiguous 0.03-0.04; 8 px sponges Dice 0.68, ambiguous 0.63-0.76."""
    from pipeline import synthetic
    from pipeline.analysis import AMBIGUOUS_NOTE, REVIEW_AMBIGUOUS_FRACTION
    from pipeline.report import result_dict

    measured = {}
    for morphology, size_um, porosity in (("cells", 1.6, 0.65), ("sponge", 0.8, 0.5)):
        ph = synthetic.make_membrane_phantom(
            (320, 480), pixel_size_um=0.1, pore_size_um=size_um, porosity=porosity,
            morphology=morphology, rendering="topographic", background="dark", surfaces="top",
            seed=1, databar=False)
        a = analyze(ph.image, 0.1)
        assert a.segmentation.method == "topographic"
        ambiguous = a.segmentation.details["ambiguous_fraction"]
        measured[morphology] = (ambiguous, dice_in_membrane(a.segmentation.mask,
                                                            truth_from_phantom(ph)))
        noted = [n for n in a.notes if n.startswith(AMBIGUOUS_NOTE)]
        assert bool(noted) == (ambiguous > REVIEW_AMBIGUOUS_FRACTION), (morphology, ambiguous)
        if noted:
            assert f"{100 * ambiguous:.0f} %" in noted[0]
            reviewed = analyze(ph.image, 0.1, membrane=a.membrane, pore_mask=a.segmentation)
            assert not [n for n in reviewed.notes if n.startswith(AMBIGUOUS_NOTE)]
        # the same share per depth bin: profile.csv / result.json column, weighted mean = share
        prof = a.profile
        assert prof["ambiguous_fraction"].notna().all()
        assert np.average(prof["ambiguous_fraction"], weights=prof["n_pixels"]) == \
            pytest.approx(ambiguous, abs=1e-3)
        saved = result_dict(a)["profile"]["ambiguous_fraction"]
        assert saved == pytest.approx(prof["ambiguous_fraction"].tolist())
    (amb_cells, dice_cells), (amb_sponge, dice_sponge) = measured["cells"], measured["sponge"]
    assert amb_cells < 0.1 and dice_cells > 0.9, measured
    assert amb_sponge > 0.4 and dice_sponge < 0.8, measured


def test_dark_segmentation_has_no_ambiguous_share_per_depth():
    """The dark method makes no pore probabilities: the profile's ``ambiguous_fraction`` column
    is there (profile.csv keeps one layout) but missing data, and result.json holds nulls."""
    from pipeline import synthetic
    from pipeline.report import result_dict

    ph = synthetic.make_membrane_phantom((256, 384), pixel_size_um=0.1, pore_size_um=1.2,
                                         rendering="dark", surfaces="top", seed=2, databar=False)
    a = analyze(ph.image, 0.1)
    assert a.segmentation.method == "dark"
    assert "ambiguous_fraction" in a.profile and a.profile["ambiguous_fraction"].isna().all()
    assert set(result_dict(a)["profile"]["ambiguous_fraction"]) == {None}


def test_rims_outside_the_pore_edges_are_noted():
    """The dark method's rim-position check (tests/test_segment.py) reaches the result's notes;
    an image whose rims are centred on the edges gets no such note."""
    from pipeline.analysis import RIM_OUTSIDE_NOTE
    from pipeline.synthetic import pore_field

    from heldout import render_rim_position

    pore = pore_field((320, 448), 20, 0.7, morphology="cells", seed=0)
    for position, noted in (("outside", True), ("centred", False)):
        img = render_rim_position(pore, np.random.default_rng(0), position=position,
                                  rim_width_px=1.0)
        a = analyze(img, 0.1)
        hits = [n for n in a.notes if n.startswith(RIM_OUTSIDE_NOTE)]
        assert a.segmentation.method == "dark"
        assert bool(hits) == noted, (position, a.notes)
        if noted:
            assert f"{a.segmentation.details['rim_offset_px']:.1f} px outside" in hits[0]


def test_noisy_topographic_image_is_noted():
    """A topographic phantom at shot noise 0.3 (six times the benchmark's): its basins are cut
    after more smoothing (1.1-1.2 px), and the notes say so; at the benchmark's noise they do
    not."""
    from pipeline import synthetic

    for shot, noted in ((0.3, True), (0.05, False)):
        ph = synthetic.make_membrane_phantom(
            (320, 480), pixel_size_um=0.1, pore_size_um=1.6, rendering="topographic",
            background="dark", surfaces="top", seed=2, databar=False, shot_noise=shot)
        a = analyze(ph.image, 0.1)
        hits = [n for n in a.notes if n.startswith("noisy image")]
        assert a.segmentation.method == "topographic"
        assert bool(hits) == noted, (shot, a.segmentation.details.get("relative_noise"))
        if noted:
            assert f"{a.segmentation.details['smoothing_px']:.2f} px" in hits[0]


def test_profile_flags_depths_below_the_resolution_limit(tmp_path):
    """A graded topographic phantom (pores 4 -> 20 px): profile.csv and result.json say which
    depth bins hold pores below the method's resolution limit (floored sizes)."""
    import json

    import pandas as pd

    from pipeline import synthetic
    from pipeline.profile import RESOLUTION_MARGIN
    from pipeline.settings import Settings

    ph = synthetic.make_membrane_phantom(
        (384, 512), pixel_size_um=0.1, profile="gradient_increasing", pore_size_um=1.0,
        pore_size_range_um=(0.4, 2.0), surfaces="both", rendering="topographic", seed=4)
    path = tmp_path / "graded.tif"
    ph.save(path)
    a = analyze(path, settings=Settings().replace(segment={"method": "topographic"}))
    limit_px = a.segmentation.details["resolution_limit_px"]
    prof = a.profile
    ok = prof["reliable"].to_numpy()
    flag = prof["at_resolution_limit"]
    expect = prof["pore_size_um"].to_numpy()[ok] < RESOLUTION_MARGIN * limit_px * a.pixel_size_um
    np.testing.assert_array_equal(flag[ok].to_numpy(bool), expect)
    assert expect[:3].all() and not expect[-3:].any()  # small pores at the surface, large deep
    files = a.save(tmp_path / "out")
    saved = json.loads(files["result.json"].read_text())["profile"]
    assert saved["resolution_limit_um"] == pytest.approx(limit_px * a.pixel_size_um)
    assert saved["at_resolution_limit"] == [None if pd.isna(v) else bool(v) for v in flag]
    # the structure block names the floored depths
    from pipeline.profile import resolution_limited_ranges_um

    floored = a.structure["depths_at_resolution_limit_um"]
    assert floored == [list(r) for r in resolution_limited_ranges_um(prof)] and floored
    assert floored[0][0] == 0.0
    assert any("resolution limit" in n for n in a.structure["notes"])
    csv = pd.read_csv(files["profile.csv"])
    assert list(csv["at_resolution_limit"].dropna().astype(bool)) == list(flag.dropna())
