"""pipeline.macrovoids: voids much wider than the pore matrix around them (NIPS fingers).

Truth: pipeline.synthetic's ``fingers`` morphology records the macrovoids it draws (axis column,
top depth, length, widest width; ``Phantom.truth["macrovoids"]``); the definition is checked on
the true masks against that design, and the pipeline against the same definition on the true
masks. Membranes without macrovoids (sponges, closed cells, spheres; uniform, 1:10 gradients,
internal minima) must show none.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline import analyze, synthetic
from pipeline.macrovoids import MACROVOID_COLUMNS, find_macrovoids, matrix_pore_size_px

from _accuracy import synthetic_phantom


def _span_px(ph) -> float:
    return (ph.truth.get("thickness_um") or ph.truth["visible_span_um"]) / ph.pixel_size_um


def _truth_table(ph) -> pd.DataFrame:
    table, _ = find_macrovoids(ph.pore_mask, ph.membrane().depth_px, ph.local_thickness_px,
                               ph.pixel_size_um, span_px=_span_px(ph))
    return table


def _pipeline_table(a) -> pd.DataFrame:
    return a.macrovoids()[0]


def test_matrix_size_is_the_small_pore_population():
    """Two populations of local thickness at every depth: 4 px pores and 20 px voids. The
    matrix size is 4 px whether the voids hold 30 % or 80 % of the pore pixels; a single
    population gives its median."""
    rng = np.random.default_rng(0)
    rows, cols = 400, 300
    depth = np.repeat(np.arange(rows, dtype=np.float32)[:, None], cols, axis=1)
    for share in (0.3, 0.8):
        lt = np.where(rng.uniform(size=(rows, cols)) < share, 20.0,
                      rng.uniform(3.0, 5.0, (rows, cols))).astype(np.float32)
        _, size = matrix_pore_size_px(lt, depth, float(rows))
        assert np.all(np.abs(size - 4.0) < 0.3), size
    lt = rng.uniform(6.0, 10.0, (rows, cols)).astype(np.float32)
    _, size = matrix_pore_size_px(lt, depth, float(rows))
    assert np.all(np.abs(size - 8.0) < 0.4), size


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_designed_fingers_are_found_on_the_true_mask(seed):
    """Of the fingers pipeline.synthetic drew, all but two at most are found (a macrovoid around
    each one's axis; two neighbours may join), none is invented, and each found finger ends
    within 8 % of the span of its designed bottom (measured: within 6 %), its widest inscribed
    disk 1.0-1.4 times the designed width (the sponge pores opening onto a finger widen it in
    the mask: measured 1.00-1.38, median 1.09)."""
    ph = synthetic_phantom("fingers-dark-top-tilt", seed)
    designed = ph.truth["macrovoids"]
    table = _truth_table(ph)
    span = _span_px(ph) * ph.pixel_size_um
    matched, ratios = set(), []
    for v in designed:
        near = table[np.abs(table.col_px - v["col_px"]) < 0.6 * v["width_um"] / ph.pixel_size_um
                     + 3]
        if len(near) != 1:
            continue
        row = near.iloc[0]
        bottom = v["top_depth_um"] + v["length_um"]
        assert abs(row.bottom_depth_um - bottom) <= 0.08 * span, (row.bottom_depth_um, bottom)
        ratios.append(row.width_um / v["width_um"])
        matched.add(int(row.macrovoid))
    assert min(ratios) >= 0.97 and max(ratios) <= 1.4 and np.median(ratios) <= 1.15, ratios
    assert len(matched) >= len(designed) - 2, (len(matched), len(designed))
    assert len(table) == len(matched)  # nothing else
    assert table.finger_like.mean() >= 0.9 and (table.angle_to_normal_deg < 10).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_pipeline_macrovoids_match_the_true_masks(seed, tmp_path):
    """Through pipeline.analyze (dark rendering, FEI TIFF): as many macrovoids as the true
    masks give (within one), median length and width within 12 %, and the result files:
    macrovoids.csv, result.json's block, summary.csv's columns, orange outlines in the
    overlay."""
    from pipeline.batch import run

    ph = synthetic_phantom("fingers-dark-top-tilt", seed)
    truth = _truth_table(ph)
    path = tmp_path / "fingers.tif"
    ph.save(path)
    a = analyze(path)
    found = _pipeline_table(a)
    assert abs(len(found) - len(truth)) <= 1, (len(found), len(truth))
    for key in ("length_um", "width_um"):
        assert abs(found[key].median() / truth[key].median() - 1) <= 0.12, key
    if seed:
        return
    outcome = run([path], tmp_path / "out", workers=1)
    assert outcome.n_ok == 1
    folder = tmp_path / "out" / "fingers"
    table = pd.read_csv(folder / "macrovoids.csv")
    assert tuple(table.columns) == MACROVOID_COLUMNS and len(table) == len(found)
    block = json.loads((folder / "result.json").read_text())["macrovoids"]
    assert block["n_macrovoids"] == len(found)
    assert block["median_length_um"] == pytest.approx(
        found[~found.cut].length_um.median(), rel=1e-6)
    assert 0 < block["first_top_depth_um"] < block["median_top_depth_um"]
    assert block["matrix_pore_size_um"] == pytest.approx(0.8, rel=0.2)  # the sponge: 8 px
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.n_macrovoids.iloc[0] == len(found)
    import cv2

    overlay = cv2.imread(str(folder / "overlay.png"))[..., ::-1]
    assert (overlay == (255, 140, 0)).all(axis=-1).sum() > 100


@pytest.mark.parametrize(("profile", "sizes"), [
    ("uniform", None), ("gradient_increasing", (0.4, 4.0)), ("gradient_decreasing", (0.3, 3.0)),
    ("internal_minimum", (0.3, 2.4))])
@pytest.mark.parametrize("morphology", ["sponge", "cells", "spheres"])
def test_no_macrovoids_without_them(profile, sizes, morphology):
    """True masks of membranes without macrovoids, gradients of 1:10 included: none."""
    ph = synthetic.make_membrane_phantom(
        (768, 1024), pixel_size_um=0.05, profile=profile, pore_size_um=1.0,
        pore_size_range_um=sizes, morphology=morphology, surfaces="both", seed=3)
    assert len(_truth_table(ph)) == 0


def test_no_macrovoids_through_the_pipeline_without_them():
    for kind in ("sponge-dark-uniform-both", "cells-dark-gradient-top-debris",
                 "spheres-dark-minimum-both-bend"):
        ph = synthetic_phantom(kind, 0)
        a = analyze(ph.grey.astype(np.float32), pixel_size_um=ph.pixel_size_um)
        assert len(_pipeline_table(a)) == 0, kind


def test_without_a_surface_there_is_no_macrovoid_block(tmp_path):
    from pipeline.settings import Settings

    ph = synthetic.make_membrane_phantom((256, 384), surfaces="none", databar=False, seed=4)
    a = analyze(ph.grey.astype(np.float32), pixel_size_um=0.1,
                settings=Settings().replace(geometry={"surface": "none"}))
    assert a.profile is None and a.macrovoids() is None and a.macrovoid_labels() is None
    a.save(tmp_path / "out")
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["macrovoids"] is None and result["macrovoids_reason"]
    assert not (tmp_path / "out" / "macrovoids.csv").exists()


@pytest.mark.slow
@pytest.mark.xfail(reason="topographic renderings of fingers in an 8 px sponge: the sponge is "
                          "below the method's resolution limit, merges into large pores, the "
                          "matrix reads too large and 0-1 of the 8-12 macrovoids of the true "
                          "masks are found (measured 2026-12-07)", strict=False)
def test_slow_topographic_fingers():
    ph = synthetic_phantom("fingers-topo-both", 0)
    a = analyze(ph.grey.astype(np.float32), pixel_size_um=ph.pixel_size_um)
    assert abs(len(_pipeline_table(a)) - len(_truth_table(ph))) <= 2


def test_no_macrovoids_from_slivers_under_a_surface():
    """Fingers about as wide as their 16 px sponge (no macrovoid by the definition: the true
    masks give none) on a dark background: the pixel-thin slivers of "pore" that edge blur
    leaves under each surface once pulled the matrix size there to 0.3 µm and made 9 false
    macrovoids at the surface; they no longer count for the matrix size."""
    ph = synthetic.make_membrane_phantom((512, 768), pixel_size_um=0.1, morphology="fingers",
                                         rendering="dark", surfaces="both", pore_size_um=1.6,
                                         seed=5)
    assert len(_truth_table(ph)) == 0
    a = analyze(ph.grey.astype(np.float32), pixel_size_um=0.1)
    assert len(_pipeline_table(a)) == 0
