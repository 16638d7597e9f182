"""Tests for pipeline.geometry: membrane band, surfaces, depth map, thickness.

Accuracy is checked against known truth on two independent kinds of phantom:
``pipeline.synthetic.make_membrane_phantom`` (dark / topographic renderings, dark / bright / grey
backgrounds, tilt, bends, debris, finger macrovoids) and small hand-built images made here with a
different recipe (macrovoids open at the surface, charging halo with strong scan-line noise, a
dense smooth skin, a surface leaving the frame). Real micrographs from ``tests/data`` (copies of
``../shared/real``) check the Hitachi cross-section and the no-surface fields.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from pipeline.geometry import (
    MembraneNotFound,
    depth_from_line,
    find_membrane,
    membrane_from_surfaces,
    perpendicular_distance,
    robust_surface_line,
    texture_map,
    whole_frame,
)

REAL = Path(__file__).parent / "data" / "real"
if not (REAL / "polymer_membrane_xsection_hitachi.bmp").exists():  # pragma: no cover
    REAL = Path(__file__).resolve().parents[2] / "shared" / "real"


def _real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real micrograph {name} not available")
    return path


# --------------------------------------------------------------------------------------------
# phantoms from pipeline.synthetic (generated once per session)

SHAPE = (320, 448)

#: (id, make_membrane_phantom keywords). Thickness truth needs both surfaces in view.
SYNTHETIC_CASES = [
    ("dark-bg-dark", dict(surfaces="both", background="dark", rendering="dark", seed=101)),
    ("bright-bg-topo-tilt+10", dict(surfaces="both", background="bright",
                                    rendering="topographic", morphology="cells", tilt_deg=10,
                                    seed=102)),
    ("grey-bg-topo-tilt-10", dict(surfaces="both", background="grey", rendering="topographic",
                                  tilt_deg=-10, seed=103)),
    ("top-only-bright-debris-bend", dict(surfaces="top", background="bright", rendering="dark",
                                         debris=True, bend_px=8, seed=104)),
    ("bottom-only-dark-topo", dict(surfaces="bottom", reference_surface="bottom",
                                   background="dark", rendering="topographic", tilt_deg=5,
                                   seed=105)),
    ("fingers-debris", dict(surfaces="both", background="dark", rendering="topographic",
                            morphology="fingers", debris=True, seed=106)),
    ("spheres-bright-bend-debris", dict(surfaces="both", background="bright", rendering="dark",
                                        morphology="spheres", bend_px=10, debris=True,
                                        tilt_deg=-4, seed=107)),
    ("grey-dark-scanline", dict(surfaces="both", background="grey", rendering="dark",
                                scanline_noise=0.04, shot_noise=0.08, tilt_deg=3, seed=108)),
]


@functools.cache
def _synthetic(case_id: str):
    from pipeline.synthetic import make_membrane_phantom

    kw = dict(SYNTHETIC_CASES)[case_id]
    phantom = make_membrane_phantom(SHAPE, pixel_size_um=0.1, pore_size_um=1.0, **kw)
    found = find_membrane(phantom.grey, phantom.pixel_size_um)
    return phantom, found


def _errors(found_line: np.ndarray, true_line: np.ndarray) -> tuple[float, float]:
    d = np.abs(np.asarray(found_line) - np.asarray(true_line))
    return float(np.median(d)), float(np.percentile(d, 95))


@pytest.mark.parametrize("case_id", [c[0] for c in SYNTHETIC_CASES])
def test_surfaces_on_synthetic_phantoms(case_id):
    phantom, found = _synthetic(case_id)
    assert found.orientation == "horizontal"
    assert set(found.surfaces_in_view) == set(phantom.surfaces_in_view)
    assert found.reference_surface == phantom.truth["reference_surface"]
    pore_px = phantom.truth["mean_pore_size_um"] / phantom.pixel_size_um
    for name in phantom.surfaces_in_view:
        true_line = phantom.top_px if name == "top" else phantom.bottom_px
        line = found.top_px if name == "top" else found.bottom_px
        med, p95 = _errors(line, true_line)
        # target: ~1 px + 1 % of the pore size; measured 0.1-1.3 px median on these
        assert med <= 1.5 + 0.01 * pore_px, f"{name}: median error {med:.2f} px"
        assert p95 <= 3.5 + 0.01 * pore_px, f"{name}: 95th percentile error {p95:.2f} px"


@pytest.mark.parametrize("case_id", [c[0] for c in SYNTHETIC_CASES
                                     if c[1]["surfaces"] == "both"])
def test_thickness_within_3_percent(case_id):
    phantom, found = _synthetic(case_id)
    truth = phantom.truth["thickness_um"]
    measured = found.thickness_px * phantom.pixel_size_um
    assert abs(measured / truth - 1) <= 0.03, (measured, truth)


def test_depth_map_matches_truth_membrane():
    phantom, found = _synthetic("bright-bg-topo-tilt+10")
    truth = phantom.membrane()
    both = found.mask & truth.mask
    assert both.sum() / truth.mask.sum() > 0.98
    diff = np.abs(found.depth_px[both] - truth.depth_px[both])
    assert np.median(diff) < 1.5
    assert found.visible_span_px == pytest.approx(found.thickness_px, rel=0.02)


def test_no_surface_phantom_is_whole_frame():
    from pipeline.synthetic import make_membrane_phantom

    phantom = make_membrane_phantom(SHAPE, pixel_size_um=0.1, pore_size_um=1.0,
                                    surfaces="none", background="dark",
                                    rendering="topographic", seed=109)
    found = find_membrane(phantom.grey, phantom.pixel_size_um)
    assert found.reference_surface == "none"
    assert found.depth_px is None
    assert found.mask.all()
    assert any("no membrane surface in view" in n for n in found.notes)


def test_vertical_membrane_left_right_and_auto():
    phantom, _ = _synthetic("bright-bg-topo-tilt+10")
    img = np.ascontiguousarray(phantom.grey.T)  # the membrane now runs vertically
    for surface in ("auto", "left", "right"):
        found = find_membrane(img, phantom.pixel_size_um, surface=surface)
        assert found.orientation == "vertical"
        assert found.mask.shape == img.shape
        assert found.reference_surface == ("left" if surface == "auto" else surface)
        assert set(found.surfaces_in_view) == {"left", "right"}
        assert _errors(found.top_px, phantom.top_px)[0] <= 1.5
        assert _errors(found.bottom_px, phantom.bottom_px)[0] <= 1.5
        assert np.mean(found.mask == phantom.membrane_mask.T) > 0.99
        truth_t = phantom.truth["thickness_um"] / phantom.pixel_size_um
        assert found.thickness_px == pytest.approx(truth_t, rel=0.03)
    # depth grows away from the chosen surface, along x
    found = find_membrane(img, phantom.pixel_size_um, surface="left")
    row = img.shape[0] // 2
    inside = np.nonzero(found.mask[row])[0]
    assert found.depth_px[row, inside[0]] < 2 and found.depth_px[row, inside[-1]] > 100


# --------------------------------------------------------------------------------------------
# hand-built phantoms (a different recipe from pipeline.synthetic)


def _sponge(shape, pore_px, porosity, rng):
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0),
                             pore_px / 2.5)
    return field > np.quantile(field, 1 - porosity)


def _finish(img, rng, blur=1.0, shot=0.03, scanline=0.0):
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), blur)
    img = img + shot * np.sqrt(np.clip(img, 0, None)) * rng.standard_normal(img.shape)
    if scanline:
        img = img + scanline * rng.standard_normal((img.shape[0], 1))
    return np.clip(img, 0, 1).astype(np.float32)


def _band(shape, top, bottom):
    rows = np.arange(shape[0])[:, None]
    return (rows >= top[None, :]) & (rows <= bottom[None, :])


def test_macrovoids_open_at_surface_do_not_pull_the_line():
    """Wide voids as dark as the vacuum, open at the surface over ~35 % of the width."""
    rng = np.random.default_rng(1)
    rows, cols = 400, 640
    x = np.arange(cols)
    top = 90 + np.tan(np.radians(3)) * (x - cols / 2)
    band = _band((rows, cols), top, np.full(cols, rows + 10.0))
    pores = _sponge((rows, cols), 6, 0.45, rng)
    depth = np.arange(rows)[:, None] - top[None, :]
    voids = np.zeros((rows, cols), bool)
    for c0 in (60, 230, 420, 560):
        width = 48
        voids |= (np.abs(x - c0)[None, :] < width / 2) & (depth < 140)
    img = np.where(band, np.where(pores, 0.25, 0.75), 0.04)
    img = np.where(band & voids, 0.04, img)  # the voids look like the background
    img = _finish(img, rng)
    found = find_membrane(img)
    assert found.surfaces_in_view == ("top",)
    walls = ~voids.any(axis=0)
    med, p95 = _errors(found.top_px, top)
    assert med <= 1.0 and p95 <= 2.5, (med, p95)
    assert _errors(found.top_px[~walls], top[~walls])[0] <= 1.5  # bridged over the voids


def test_charging_halo_and_scanline_noise():
    """A bright background that brightens towards the surface, heavy scan-line noise."""
    rng = np.random.default_rng(2)
    rows, cols = 420, 600
    x = np.arange(cols)
    top = 150 - np.tan(np.radians(6)) * (x - cols / 2) + 6 * np.sin(2 * np.pi * x / cols)
    rr = np.arange(rows)[:, None]
    band = rr >= top[None, :]
    pores = _sponge((rows, cols), 9, 0.5, rng)
    edge = cv2.morphologyEx(pores.astype(np.uint8), cv2.MORPH_GRADIENT,
                            np.ones((3, 3), np.uint8)).astype(bool)
    material = np.where(pores, 0.35, 0.5) + 0.35 * edge
    halo = 0.72 + 0.2 * np.exp(-np.clip(top[None, :] - rr, 0, None) / 25.0)
    img = np.where(band, material, halo)
    img = _finish(img, rng, shot=0.05, scanline=0.04)
    found = find_membrane(img)
    assert found.reference_surface == "top"
    med, p95 = _errors(found.top_px, top)
    assert med <= 1.5 and p95 <= 3.0, (med, p95)


@pytest.mark.parametrize("morphology, size_px, porosity", [
    ("sponge", 48, 0.5),  # top line was 12 px up, on bright scan lines in the vacuum
    ("cells", 24, 0.25),  # opposite line was 17 px down, on 5 bright rows under the membrane
])
def test_scan_lines_between_the_flood_and_the_surface(morphology, size_px, porosity):
    """Large smooth pores make the flood's texture scale coarse, so it stops up to ~40 rows
    short of the surface; bright scan lines in those rows must not pass for the surface
    (bench_scale's dark phantoms; before the row offsets were measured there too)."""
    from pipeline.synthetic import make_membrane_phantom

    ph = make_membrane_phantom((768, 1024), pixel_size_um=0.1, pore_size_um=size_px * 0.1,
                               porosity=porosity, morphology=morphology, rendering="dark",
                               surfaces="both", profile="uniform",
                               seed=int(size_px + 100 * porosity))
    found = find_membrane(ph.image[:768].astype(np.float32) / 255.0, 0.1)
    assert _errors(found.top_px, ph.top_px)[0] <= 1.0
    assert _errors(found.bottom_px, ph.bottom_px)[0] <= 1.0


@pytest.mark.parametrize("morphology, size_px, porosity, amplitude", [
    ("spheres", 96, 0.5, 0.1),  # 20.6 px above the surface before
    ("cells", 24, 0.25, 0.2),  # 11.3 px
    ("sponge", 48, 0.5, 0.2),  # 8.8 px
])
def test_a_halo_over_large_pores_is_not_the_surface(morphology, size_px, porosity, amplitude):
    """The background brightens towards the surface (a halo decaying over 25 px above it). With
    large smooth pores the flood stops tens of rows short of the surface, inside the halo, and
    the halo's slow departure from the level there passed for the surface; a surface must be a
    step over a few rows too."""
    from pipeline.synthetic import make_membrane_phantom

    ph = make_membrane_phantom((768, 1024), pixel_size_um=0.1, pore_size_um=size_px * 0.1,
                               porosity=porosity, morphology=morphology, rendering="dark",
                               surfaces="both", profile="uniform",
                               seed=int(size_px + 100 * porosity))
    img = ph.image[:768].astype(np.float32) / 255.0
    rr = np.arange(768)[:, None]
    above = rr < ph.top_px[None, :]
    halo = amplitude * np.exp(-np.clip(ph.top_px[None, :] - rr, 0, None) / 25.0) * above
    found = find_membrane(np.clip(img + halo, 0, 1), 0.1)
    med, p95 = _errors(found.top_px, ph.top_px)
    assert med <= 1.5 and p95 <= 2.0, (med, p95)


def test_saturated_background_dips_are_not_the_surface():
    """A white background clipped at the detector's top has no measurable noise spread (its MAD
    is 0) but dips a few grey levels below the clip: such dips passed for the lower surface, up
    to 19 px into the background (random phantom 80: closed cells, dark pores, bright
    background; median error 7.3 px before the largest departure above counted as noise)."""
    from pipeline.synthetic import random_phantom

    ph = random_phantom(80)
    rows = ph.pore_mask.shape[0]
    found = find_membrane(ph.image[:rows].astype(np.float32) / 255.0,
                          ph.pixel_size_um)
    med, p95 = _errors(found.bottom_px, ph.bottom_px)
    assert med <= 2.5 and p95 <= 6.0, (med, p95)


def test_fine_pores_under_the_surface_do_not_hide_it():
    """A closed-cell membrane on a white background whose layer of fine pores lies just under
    its top surface (random phantom 156): the strip under the line read only 66 % textured at
    the coarse texture scale, the top background was rejected, and depth was measured from the
    bottom surface. Beyond a clean background half a textured strip will do."""
    from pipeline.synthetic import random_phantom

    ph = random_phantom(156)
    rows = ph.pore_mask.shape[0]
    found = find_membrane(ph.image[:rows].astype(np.float32) / 255.0, ph.pixel_size_um)
    assert found.reference_surface == "top"
    assert set(found.surfaces_in_view) == {"top", "bottom"}
    assert _errors(found.top_px, ph.top_px)[0] <= 1.0
    assert _errors(found.bottom_px, ph.bottom_px)[0] <= 1.0


def test_vacuum_gap_under_a_charging_band():
    """A saturated charging band ends 10 rows above the membrane; the dark gap is vacuum."""
    rng = np.random.default_rng(11)
    rows, cols = 400, 560
    x = np.arange(cols)
    top = 160 + 0.08 * (x - cols / 2)
    rr = np.arange(rows)[:, None]
    band = rr >= top[None, :]
    pores = _sponge((rows, cols), 8, 0.5, rng)
    charging = (rr < top[None, :] - 10) & (rr >= top[None, :] - 140)
    img = np.where(band, np.where(pores, 0.15, 0.45), np.where(charging, 1.3, 0.03))
    img = _finish(img, rng, shot=0.04)
    found = find_membrane(img)
    assert found.reference_surface == "top"
    assert _errors(found.top_px, top)[0] <= 1.0



def _vacuum_over_charging_band(seed, tilt_deg, gap_px, edge_blur_px=0.0):
    """Vacuum at the frame's top, then a saturated charging band 100 rows tall, a vacuum gap of
    ``gap_px`` rows and a dark-pore membrane, tilted and slightly bowed (the held-out renderer's
    charging backgrounds in other combinations, where both failed); ``edge_blur_px``: the band's
    edges fade over a Gaussian of that sd (a detector's halo)."""
    rng = np.random.default_rng(seed)
    rows, cols = 520, 768
    x = np.arange(cols)
    top = (230 + np.tan(np.radians(tilt_deg)) * (x - cols / 2)
           + 6 * ((x / cols - 0.5) ** 2 * 4 - 1 / 3))
    rr = np.arange(rows)[:, None]
    band = rr >= top[None, :]
    pores = _sponge((rows, cols), 10, 0.45, rng)
    charging = ((rr < top[None, :] - gap_px) & (rr >= top[None, :] - gap_px - 100)).astype(float)
    if edge_blur_px > 0:
        charging = ndi.gaussian_filter(charging, edge_blur_px)
    img = np.where(band, np.where(pores, 0.12, 0.5), 0.03 + 1.27 * charging)
    return _finish(img, rng, shot=0.06), top


def test_vacuum_over_a_saturated_charging_band(monkeypatch):
    """Measured on 24 such images (seeds 0-3, tilt -5.5 / +5 degrees, gaps 0 / 10 / 20 rows):
    all within 0.41 px but one (2.8 px); before, 22 of 24 were lost (the surface at the band's
    top, 100-110 px high, or none). Two causes, each with its witness below:

    * the level-limited background took the cells straddling the band's upper edge for a
      layer of material across the frame (their bounding box, along the tilted edge, 28-39 grid
      rows tall; they are 2-3 rows thick): a layer must be thick in its columns
      (``_MIN_LAYER_ROWS``);
    * the flood by level dropped the whole band where the strip searched for the surface held
      the vacuum above it: the band, parted from the vacuum by its edge's step, was "cut off
      from the background above" and not at the vacuum's level. A saturated band is a
      background of its own (:func:`pipeline.geometry.saturated_background`).
    """
    from pipeline import geometry

    cases = [(0, -5.5, 0), (1, 5.0, 10), (2, -5.5, 10), (3, 5.0, 0)]
    images = [_vacuum_over_charging_band(*case) for case in cases]
    for case, (img, top) in zip(cases, images):
        found = find_membrane(img)
        assert found.reference_surface == "top", case
        assert _errors(found.top_px, top)[0] <= 1.0, case

    def worst(images):
        errors = []
        for img, top in images:
            found = find_membrane(img)
            errors.append(np.inf if found.top_px is None else _errors(found.top_px, top)[0])
        return max(errors)

    with monkeypatch.context() as m:
        # (a layer must also lie on the material, which these lines do not: both off)
        m.setattr(geometry, "_MIN_LAYER_ROWS", 0)
        m.setattr(geometry, "_MIN_LAYER_ON_MATERIAL", 0.0)
        assert worst(images) > 50
    with monkeypatch.context() as m:
        m.setattr(geometry, "saturated_background", lambda image: None)
        assert worst(images) > 50


@pytest.mark.parametrize("seed,tilt_deg", [(0, -9.0), (1, 9.0)])
def test_the_fading_edge_of_a_steep_charging_band_is_not_a_layer(monkeypatch, seed, tilt_deg):
    """A charging band tilted 9 degrees under the vacuum, whose edges fade over a few pixels
    (held-out combination nips-bse-charging-top-hitachi at -8 x 1.2 degrees: no surface, the
    whole frame taken for material). The ramp from the vacuum into the band is 4-5 grid rows
    thick in its columns, as thick as a fine-pored layer, and, like one, textured and beginning
    with a step; unlike one it lies on the band (a background), not on the membrane
    (``_MIN_LAYER_ON_MATERIAL``; witness: without it the surface is lost). Measured on such
    images (seeds 0-3, tilts -9 / 9 / -5 / 0, gaps 10-40 rows, fades of sd 2-3.5 px): every
    surface lost (228 px) with a fade of 3 px or more at a tilt before; within 0.75 px with
    gaps of 30-40 rows after. Left: with a 10-row gap the fade reaches the membrane and the
    surface is 5-6 px high; with fades of 3.5 px the gap is not recognised (30-40 px)."""
    from pipeline import geometry

    img, top = _vacuum_over_charging_band(seed, tilt_deg, 30, edge_blur_px=3.0)
    found = find_membrane(img)
    assert found.reference_surface == "top"
    assert _errors(found.top_px, top)[0] <= 1.0
    with monkeypatch.context() as m:
        m.setattr(geometry, "_MIN_LAYER_ON_MATERIAL", 0.0)
        lost = find_membrane(img)
        assert lost.top_px is None or _errors(lost.top_px, top)[0] > 50


@pytest.mark.parametrize("tilt_deg,gap_px", [(-5.0, 24), (4.0, 36)])
def test_a_wide_vacuum_gap_under_a_charging_band(monkeypatch, tilt_deg, gap_px):
    """A saturated charging band from the frame's top edge, a vacuum gap of 24-36 rows, then a
    dark-pore membrane. The gap is skipped (the surface is where the membrane begins), but it
    was searched for only as far as the edge search reaches (13 px here): wider gaps left the
    surface at the gap's top, 6-18 px high (12 such images, gaps 16-36 rows: all within
    0.33 px now; the held-out renderings with 20-row gaps 7-24 px -> 0.1-0.3 px)."""
    from pipeline import geometry

    rng = np.random.default_rng(0)
    rows, cols = 480, 768
    x = np.arange(cols)
    top = 200 + np.tan(np.radians(tilt_deg)) * (x - cols / 2)
    rr = np.arange(rows)[:, None]
    pores = _sponge((rows, cols), 10, 0.45, rng)
    img = np.where(rr >= top[None, :], np.where(pores, 0.12, 0.5),
                   np.where(rr < top[None, :] - gap_px, 1.3, 0.03))
    img = _finish(img, rng, shot=0.06)
    assert _errors(find_membrane(img).top_px, top)[0] <= 0.5
    monkeypatch.setattr(geometry, "VACUUM_GAP_MAX_REACHES", 1)
    assert _errors(find_membrane(img).top_px, top)[0] > 5

def test_dense_smooth_skin_is_part_of_the_membrane():
    """A 12 px pore-free skin, smooth but brighter than the background, over a sponge."""
    rng = np.random.default_rng(3)
    rows, cols = 400, 560
    x = np.arange(cols)
    top = np.full(cols, 120.0) + 0.05 * (x - cols / 2)
    bottom = top + 220
    rr = np.arange(rows)[:, None]
    band = (rr >= top[None, :]) & (rr <= bottom[None, :])
    skin = band & (rr < top[None, :] + 12)
    pores = _sponge((rows, cols), 7, 0.5, rng) & ~skin
    img = np.where(band, np.where(pores, 0.2, 0.65), 0.3)
    img = _finish(img, rng)
    found = find_membrane(img)
    assert set(found.surfaces_in_view) == {"top", "bottom"}
    assert _errors(found.top_px, top)[0] <= 1.0  # the skin's top, not its bottom
    assert _errors(found.bottom_px, bottom)[0] <= 1.0
    truth = perpendicular_distance(top, bottom)
    assert found.thickness_px == pytest.approx(float(np.median(truth)), rel=0.02)


@pytest.mark.parametrize("rendering,background,skin_um", [
    ("topographic", "dark", 2.0), ("dark", "bright", 2.0), ("topographic", "bright", 2.0),
    ("dark", "grey", 2.0), ("topographic", "bright", 4.0)])
def test_a_dense_skin_belongs_to_the_membrane(monkeypatch, rendering, background, skin_um):
    """A 2 µm dense skin (20 px of smooth polymer) over finger-like macrovoids: the surface is
    the skin's top. The flood from the background leaked into the skin's flat middle through
    gaps in its edge (or took a topographic skin under a charging band for the vacuum gap), and
    the surface was found at the skin's lower edge, 18-20 px deep, on these four (4 µm skins
    under a charging band: 33-40 px)."""
    from pipeline import geometry
    from pipeline.synthetic import make_membrane_phantom

    ph = make_membrane_phantom((768, 1024), pixel_size_um=0.1, pore_size_um=0.8, porosity=0.45,
                               morphology="fingers", skin_um=skin_um, rendering=rendering,
                               background=background, surfaces="both", profile="uniform", seed=2)
    img = ph.image[:ph.pore_mask.shape[0]].astype(np.float32) / 255
    true_top = ph.membrane().top_px
    found = find_membrane(img, ph.pixel_size_um)
    assert abs(float(np.median(found.top_px - true_top))) <= 1.5
    assert found.thickness_px == pytest.approx(ph.truth["thickness_um"] / ph.pixel_size_um,
                                               rel=0.01)
    monkeypatch.setattr(geometry, "FLOOD_BY_LEVEL", False)
    monkeypatch.setattr(geometry, "VACUUM_GAP_MAX_FRACTION", 1.0)
    # a 4 µm skin under a charging band is also a layer of its own level that begins with a
    # step: with the stages above off, the level-limited background now keeps it too
    monkeypatch.setattr(geometry, "WIDE_LAYER_STEP_FRACTION", np.inf)
    before = find_membrane(img, ph.pixel_size_um)
    assert float(np.median(before.top_px - true_top)) > 10


@pytest.mark.parametrize("morphology,size_px,seed", [("spheres", 48, 73), ("sponge", 96, 121)])
def test_smooth_polymer_between_sparse_pores_is_not_background(monkeypatch, morphology, size_px,
                                                               seed):
    """Few large pores (topographic, porosity 0.25) leave stretches of smooth polymer that touch
    the background; texture alone let the background run into them (thickness 22-36 % short, or
    the bottom surface rejected). Their grey level is the polymer's, not the vacuum's."""
    from pipeline import geometry
    from pipeline.synthetic import make_membrane_phantom

    ph = make_membrane_phantom((768, 1024), pixel_size_um=0.1, pore_size_um=0.1 * size_px,
                               porosity=0.25, morphology=morphology, rendering="topographic",
                               surfaces="both", profile="uniform", seed=seed)
    img = ph.image[:ph.pore_mask.shape[0]].astype(np.float32) / 255
    true_px = ph.truth["thickness_um"] / ph.pixel_size_um
    found = find_membrane(img, ph.pixel_size_um)
    assert set(found.surfaces_in_view) == {"top", "bottom"}
    assert found.thickness_px == pytest.approx(true_px, rel=0.01)
    monkeypatch.setattr(geometry, "LEVEL_LIMITED_BACKGROUND", False)
    monkeypatch.setattr(geometry, "FLOOD_BY_LEVEL", False)  # it catches some of these too
    before = find_membrane(img, ph.pixel_size_um)
    assert before.thickness_px is None or abs(before.thickness_px / true_px - 1) > 0.1


@pytest.mark.parametrize("morphology,size_px", [("spheres", 96), ("cells", 144)])
def test_smooth_polymer_joining_both_backgrounds_is_not_background(monkeypatch, morphology,
                                                                   size_px):
    """Isolated pores of 96-144 px at porosity 0.25 (topographic): the smooth polymer between
    them joins the vacuum above to the vacuum below in one smooth region, which was taken for
    the background beside a vertical membrane: no surface found, the whole frame analysed (and
    `auto` then read the vacuum as pores). Cut by grey level, both surfaces are found within
    1 px (measured at the median: top 0.8 / 0.6 px, bottom 0.9 / 0.7 px)."""
    from pipeline import geometry
    from pipeline.synthetic import make_membrane_phantom

    ph = make_membrane_phantom((768, 1024), pixel_size_um=0.1, pore_size_um=0.1 * size_px,
                               porosity=0.25, morphology=morphology, rendering="topographic",
                               surfaces="both", profile="uniform", seed=size_px + 25)
    img = ph.image[:ph.pore_mask.shape[0]].astype(np.float32) / 255
    true_px = ph.truth["thickness_um"] / ph.pixel_size_um
    rows = np.nonzero(ph.membrane_mask.any(axis=1))[0]
    found = find_membrane(img, ph.pixel_size_um)
    assert set(found.surfaces_in_view) == {"top", "bottom"}
    assert abs(np.median(found.top_px) - rows[0]) <= 1.5
    assert abs(np.median(found.bottom_px) - rows[-1]) <= 1.5
    assert found.thickness_px == pytest.approx(true_px, rel=0.01)
    monkeypatch.setattr(geometry, "LEVEL_LIMITED_BACKGROUND", False)
    assert find_membrane(img, ph.pixel_size_um).surfaces_in_view == ()


def test_spanning_material_by_level_keeps_a_vertical_background():
    """A smooth background beside a vertical membrane has one level from top to bottom: none
    of it is material; a grey stretch between dark top and bottom rows is."""
    from pipeline.geometry import _spanning_material_by_level

    textured = np.zeros((40, 60), bool)
    textured[:, 20:40] = True  # a vertical membrane
    level = np.where(textured, 0.6, 0.05) + np.random.default_rng(0).normal(0, 0.005, (40, 60))
    assert not _spanning_material_by_level(textured, level).any()
    # a horizontal band whose middle is smooth polymer joining the two dark backgrounds
    textured = np.zeros((40, 60), bool)
    textured[10:30, :25] = True
    level = np.full((40, 60), 0.05)
    level[10:30] = 0.6
    got = _spanning_material_by_level(textured, level)
    assert got[10:30, 25:].all() and not got[:10].any() and not got[30:].any()


def test_surface_leaving_the_frame_is_extrapolated():
    rng = np.random.default_rng(4)
    rows, cols = 360, 600
    x = np.arange(cols)
    top = 30 - np.tan(np.radians(10)) * (x - cols / 2)  # leaves the frame on the right
    band = _band((rows, cols), top, np.full(cols, rows + 10.0))
    pores = _sponge((rows, cols), 6, 0.5, rng)
    img = _finish(np.where(band, np.where(pores, 0.2, 0.7), 0.05), rng)
    found = find_membrane(img)
    assert found.reference_surface == "top"
    frac = found.surface_fraction_in_view["top"]
    assert 0.5 < frac < 0.9
    seen = top > 3
    assert _errors(found.top_px[seen], top[seen])[0] <= 1.0
    assert np.all(found.top_px >= 0)
    # depth is measured from the extrapolated line, not from the frame edge
    r, c = 200, cols - 20
    expected = (r - top[c]) * np.cos(np.radians(10))
    assert found.depth_px[r, c] == pytest.approx(expected, rel=0.015)


def test_find_membrane_speed_2048x1536():
    rng = np.random.default_rng(5)
    rows, cols = 1536, 2048
    x = np.arange(cols)
    top = 300 + np.tan(np.radians(4)) * (x - cols / 2)
    bottom = top + 900
    pores = _sponge((rows, cols), 10, 0.5, rng)
    img = _finish(np.where(_band((rows, cols), top, bottom), np.where(pores, 0.2, 0.7), 0.95),
                  rng)
    find_membrane(img[150:650, :600])  # warm caches
    t0, c0 = time.perf_counter(), time.process_time()
    found = find_membrane(img, 0.05)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert _errors(found.top_px, top)[0] <= 1.0
    assert _errors(found.bottom_px, bottom)[0] <= 1.0
    # budget 1 s; CPU time (all threads) is what a loaded shared machine cannot inflate
    assert min(wall, cpu) < 1.0, (wall, cpu)
    t0, c0 = time.perf_counter(), time.process_time()
    membrane_from_surfaces(img.shape, found.top_px, found.bottom_px)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert min(wall, cpu) < 0.3, (wall, cpu)


# --------------------------------------------------------------------------------------------
# real micrographs


def test_hitachi_cross_section_surface_near_row_110():
    from pipeline.io import load_micrograph

    micrograph = load_micrograph(_real("polymer_membrane_xsection_hitachi.bmp"))
    assert micrograph.image.shape == (896, 1280)
    found = find_membrane(micrograph.image, 0.2488)
    assert found.reference_surface == "top"
    # reference read off the image: steepest rise of the 128-column block profiles
    manual = [114.5, 114.5, 116.5, 117.5, 110.5, 107.5, 106.5, 108.5, 107.5, 108.5]
    blocks = [float(np.median(found.top_px[i:i + 128])) for i in range(0, 1280, 128)]
    assert np.max(np.abs(np.subtract(blocks, manual))) <= 4.0, blocks
    assert 100 <= np.median(found.top_px) <= 120
    # the cellular film continues to the data bar (its lower boundary, a bright charging
    # band at rows ~875-895, is cut by the bar): the band spans the film
    assert found.mask[125:].all()
    assert np.nanmax(found.depth_px) > 760


def test_hitachi_oblique_view_is_sensible():
    from pipeline.io import load_micrograph

    micrograph = load_micrograph(_real("polymer_membrane_tilted_hitachi.bmp"))
    found = find_membrane(micrograph.image)
    assert found.reference_surface == "top"
    # the skin edge runs from about row 170 (left) to row 154 (right)
    assert 165 <= found.top_px[:50].mean() <= 175
    assert 150 <= found.top_px[-50:].mean() <= 160
    assert np.all(np.abs(np.diff(found.top_px)) < 1.0)


@pytest.mark.parametrize("background,shot", [("bright", 0.25), ("bright", 0.3), ("grey", 0.25)])
def test_noisy_topographic_membrane_keeps_its_surface(background, shot):
    """Five to six times the benchmark's shot noise: the band's texture sinks toward the noise
    (log-energy contrast ~1.9 against a background of pure noise), and the background gate of
    2.0 took the whole frame for membrane (IoU 0.80) from shot noise 0.25 (bright) and 0.2 (grey).
    A background at the white-noise floor now needs 1.5. Measured: IoU 0.996-0.997, surface
    within 1.2-1.4 px (median)."""
    from pipeline import synthetic

    ph = synthetic.make_membrane_phantom(
        (512, 768), pixel_size_um=0.1, pore_size_um=1.6, rendering="topographic",
        background=background, surfaces="top", seed=2, databar=False, shot_noise=shot)
    found = find_membrane(ph.image, 0.1)
    assert found.surfaces_in_view == ("top",)
    iou = (found.mask & ph.membrane_mask).sum() / (found.mask | ph.membrane_mask).sum()
    assert iou > 0.99
    assert np.nanmedian(np.abs(found.top_px - ph.top_px)) < 2.0


@pytest.mark.parametrize("name", ["porous_aggregate_fei.tif", "nanoporous_gold_zeiss.tif"])
def test_fields_without_surface(name):
    from pipeline.io import load_micrograph

    micrograph = load_micrograph(_real(name))
    found = find_membrane(micrograph.image, micrograph.pixel_size_um)
    assert found.reference_surface == "none"
    assert found.mask.all() and found.depth_px is None


# --------------------------------------------------------------------------------------------
# bad input


def test_blank_image_raises_clear_error():
    with pytest.raises(MembraneNotFound, match="blank"):
        find_membrane(np.full((300, 400), 0.4, np.float32))


def test_pure_noise_raises():
    rng = np.random.default_rng(6)
    with pytest.raises(MembraneNotFound, match="no textured membrane"):
        find_membrane((0.5 + 0.05 * rng.standard_normal((300, 400))).astype(np.float32))


def test_tiny_image():
    with pytest.raises(MembraneNotFound, match="too small"):
        find_membrane(np.random.default_rng(7).random((12, 300)))
    assert find_membrane(np.zeros((12, 12)), surface="none").mask.all()


def test_small_membrane_image_works():
    rng = np.random.default_rng(8)
    rows, cols = 48, 64
    top = np.full(cols, 14.0)
    pores = _sponge((rows, cols), 3, 0.5, rng)
    img = _finish(np.where(_band((rows, cols), top, np.full(cols, 99.0)),
                           np.where(pores, 0.2, 0.7), 0.05), rng)
    found = find_membrane(img)
    assert found.reference_surface == "top"
    assert _errors(found.top_px, top)[0] <= 1.5


@pytest.mark.parametrize("image, message", [
    (np.zeros((4, 4, 3)), "2-D"),
    (np.array([[np.nan] * 40] * 40), "NaN"),
    (np.array([["a"] * 40] * 40), "numbers"),
])
def test_bad_arrays(image, message):
    with pytest.raises(ValueError, match=message):
        find_membrane(image)


def test_bad_arguments():
    img = np.zeros((64, 64), np.float32)
    with pytest.raises(ValueError, match="surface must be one of"):
        find_membrane(img, surface="middle")
    with pytest.raises(ValueError, match="surface_smoothing_fraction"):
        find_membrane(img, surface_smoothing_fraction=0)


# --------------------------------------------------------------------------------------------
# building blocks


def test_membrane_from_surfaces_tilted_band_exact():
    rows, cols = 300, 400
    x = np.arange(cols)
    slope = np.tan(np.radians(8))
    top = 60.3 + slope * x
    thickness = 120.0
    bottom = top + thickness / np.cos(np.radians(8))
    m = membrane_from_surfaces((rows, cols), top, bottom)
    assert m.surfaces_in_view == ("top", "bottom")
    assert m.thickness_px == pytest.approx(thickness, abs=0.05)
    rr, cc = np.nonzero(m.mask)
    # pixel centres between the lines, and only those
    assert np.all(rr >= top[cc] - 1e-9) and np.all(rr <= bottom[cc] + 1e-9)
    assert m.mask.sum() == np.sum(np.floor(bottom) - np.ceil(top) + 1)
    # depth = perpendicular distance to the line, also near the sides of the frame (the line
    # is continued beyond them); rasterised: +-0.75 px
    expected = (rr - top[cc]) * np.cos(np.radians(8))
    assert np.max(np.abs(m.depth_px[rr, cc] - expected)) < 0.75
    assert np.isnan(m.depth_px[~m.mask]).all()


def test_membrane_from_surfaces_reference_bottom_and_edges():
    rows, cols = 100, 120
    m = membrane_from_surfaces((rows, cols), np.zeros(cols), np.full(cols, 70.0),
                               reference_surface="bottom")
    assert m.surfaces_in_view == ("bottom",)
    assert m.thickness_px is None
    assert m.depth_px[70, 5] == 0 and m.depth_px[0, 5] == pytest.approx(70)
    with pytest.raises(ValueError, match="does not fit"):
        membrane_from_surfaces((rows, cols), np.zeros(cols), np.full(cols, 70.0),
                               reference_surface="left")
    with pytest.raises(ValueError, match="points"):
        membrane_from_surfaces((rows, cols), np.zeros(5), np.zeros(5))


def test_depth_from_line_outside_frame():
    d = depth_from_line((50, 60), np.full(60, -10.0))
    assert d[0, 30] == pytest.approx(10) and d[49, 0] == pytest.approx(59)


def test_whole_frame():
    m = whole_frame((20, 30))
    assert m.mask.all() and m.reference_surface == "none" and m.depth_px is None


def test_robust_surface_line_rejects_debris_and_pores():
    rng = np.random.default_rng(9)
    n = 800
    x = np.arange(n)
    truth = 200 + 0.12 * x + 8 * np.sin(2 * np.pi * x / n)
    edge = truth + 0.4 * rng.standard_normal(n)
    edge[100:300] -= 70  # debris over a quarter of the width, outwards
    pits = rng.random(n) < 0.25
    edge[pits] += rng.uniform(5, 40, pits.sum())  # pores open at the surface, inwards
    edge[:40] += 50  # a leak at the very end of the line
    edge[rng.random(n) < 0.05] = np.nan
    line, inlier = robust_surface_line(edge, 20)
    err = np.abs(line - truth)
    assert np.max(np.delete(err, np.s_[100:300])) < 1.0
    assert np.max(err[100:300]) < 2.0  # bridged straight across the bend under the debris
    assert not inlier[100:300].any()


def test_texture_map_ignores_brightness():
    rng = np.random.default_rng(10)
    img = np.full((200, 300), 0.1, np.float32)
    img[:, 150:] = 0.9  # two smooth backgrounds of very different brightness
    img[60:140, 40:110] = np.where(_sponge((80, 70), 5, 0.5, rng), 0.3, 0.6)
    img = _finish(img, rng)
    tex = texture_map(img, 4)
    assert tex.shape == img.shape
    assert np.median(tex[80:120, 60:90]) > 20 * max(np.median(tex[:, 170:280]),
                                                    np.median(tex[150:, 10:130]))


def test_siegel_slopes_equals_scipy():
    from scipy.stats import siegelslopes

    from pipeline.geometry import siegel_slopes

    rng = np.random.default_rng(1)
    for n in (5, 40, 151):
        x = np.sort(rng.choice(2000, n, replace=False)).astype(float)
        y = 0.1 * x + 3 * rng.standard_normal(n)
        y[: n // 5] += 50  # outliers
        want = siegelslopes(y, x)
        got = siegel_slopes(y, x)
        assert got[0] == pytest.approx(want.slope, abs=1e-12)
        assert got[1] == pytest.approx(want.intercept, abs=1e-9)


@pytest.mark.parametrize("tilt_deg", [0.0, 1.0, 6.0, -10.0])
def test_depth_from_a_straight_line_is_exact(tilt_deg):
    """No rasterisation bias: depth below a tilted straight surface is its perpendicular
    distance (the accuracy referee measured 0.47 px too shallow at 6 degrees before)."""
    from pipeline.geometry import depth_from_line

    rows, cols = 300, 400
    t = np.tan(np.deg2rad(tilt_deg))
    top = 120.3 + t * (np.arange(cols) - cols / 2)
    depth = depth_from_line((rows, cols), top)
    r, c = np.mgrid[:rows, :cols]
    exact = np.abs(r - top[None, :]) * np.cos(np.deg2rad(tilt_deg))
    below = r > top[None, :] + 1
    assert np.abs(depth - exact)[below].max() < 1e-3


@pytest.mark.parametrize("background,seed,tolerance_px", [
    ("grey", 0, 1.5), ("bright", 0, 1.5), ("bright", 1, 3.0)])
def test_fine_pored_layer_under_the_surface_is_membrane(monkeypatch, background, seed,
                                                        tolerance_px):
    """Closed cells of 2.5 px under the top surface (a gradient growing to 30 px with depth),
    topographic, on a grey or white background with an illumination drift: the fine layer reads
    as smooth, and as one layer across the frame it was taken for the fading edge of a charging
    band; the surface was found at its lower edge, 170 px deep. It begins with a step of grey
    level, which a fading band does not. On seed 1 the layer's level is nearer the white
    background's than the band's (0.83 against 1.0 and 0.65): found 2 px deep (the layer's
    first row of cells is as bright as the background)."""
    from pipeline import geometry
    from pipeline.synthetic import make_membrane_phantom

    ph = make_membrane_phantom((640, 896), pixel_size_um=0.1, profile="gradient_increasing",
                               pore_size_um=1.0, pore_size_range_um=(0.25, 3.0), surfaces="top",
                               reference_surface="top", rendering="topographic",
                               background=background, morphology="cells", porosity=0.65, seed=seed,
                               illumination_gradient=0.2)
    img = ph.image[:ph.pore_mask.shape[0]].astype(np.float32) / 255
    true_top = ph.membrane().top_px
    found = find_membrane(img, ph.pixel_size_um)
    assert abs(float(np.median(found.top_px - true_top))) <= tolerance_px
    monkeypatch.setattr(geometry, "WIDE_LAYER_STEP_FRACTION", np.inf)
    before = find_membrane(img, ph.pixel_size_um)
    assert float(np.median(before.top_px - true_top)) > 100


def _heldout_frame(kind, seed, spec, shape=(512, 768)):
    """One tests/heldout.py micrograph of ``spec``: the image without its data bar (float32,
    0-1) and the HeldOutImage (truth, pixel size)."""
    from heldout import heldout_image

    held = heldout_image(kind, seed, shape=shape, spec=spec)
    return held.image[:held.truth.pore_mask.shape[0]].astype(np.float32) / 255, held


def _top_error_px(top_px, held):
    """Median |found - true| top surface row (px) over the columns."""
    return float(np.median(np.abs(top_px - held.truth.top_px)))


def test_a_vertical_membrane_of_elongated_pores_is_not_read_sideways(monkeypatch):
    """A stretched film (pores elongated along the membrane; tests/heldout.py, secondary
    electrons, a charging band at its surface) turned to run vertically: along x it is full of
    structure, and the horizontal reading found a "top" surface over 24 % of the width, steep
    across the band. A surface seen over less than half the frame now makes ``auto`` read the
    image vertically too, and the vertical surface, seen over the whole height, wins (within
    2.2 px of the truth). On the other 37 charging combinations of
    benchmarks/bench_heldout_combinations.py turned vertical: all vertical, within 2.5 px."""
    from pipeline import geometry

    spec = dict(geometry="stretched", size_px=4.0, porosity=0.5, contrast="se",
                background="charging", surfaces="top", databar="hitachi", file_format="tif",
                tilt_deg=-5.0, bow_px=0.0, pixel_size_um=0.03, gap_px=0, gamma=1.0)
    frame, held = _heldout_frame("stretched-se-charging-top-hitachi", 86, spec)
    img = np.rot90(frame)  # the top edge to the left
    found = find_membrane(img, held.pixel_size_um)
    assert found.orientation == "vertical" and found.reference_surface == "left"
    assert _top_error_px(found.top_px[::-1], held) <= 3.0
    monkeypatch.setattr(geometry, "PARTIAL_SURFACE_FRACTION", 0.0)
    assert find_membrane(img, held.pixel_size_um).orientation == "horizontal"


def test_a_noisy_film_with_its_surface_in_view_is_a_membrane(monkeypatch):
    """A film of 4 px pores at a fifth of the held-out renderer's dose (2.2 x its shot noise;
    benchmarks/bench_heldout_combinations.py --dose 0.2, stretched-se-dark-top-zeiss): its
    surface against the vacuum is plain to the eye and was found, but the image was rejected
    as "no structure above its noise" (textured class 3.97 x the white-noise energy, needed 4).
    With a surface in view the film needs 2 (``MIN_EXCESS_WITH_SURFACE``); with none, 4 as
    before (pure noise: 1.0-1.3; noise blurred over 0.7 px: 3.6-3.9, no surface). Witness:
    with 4 it is rejected."""
    from pipeline import geometry

    spec = dict(geometry="stretched", size_px=4.0, porosity=0.5, contrast="se",
                background="dark", surfaces="top", databar="zeiss", file_format="tif",
                tilt_deg=-5.0, bow_px=6.0, pixel_size_um=0.03, gap_px=20, gamma=0.7, dose=0.2)
    img, held = _heldout_frame("stretched-se-dark-top-zeiss", 1333, spec)
    found = find_membrane(img, held.pixel_size_um)
    assert found.reference_surface == "top"
    assert _top_error_px(found.top_px, held) <= 2.0
    monkeypatch.setattr(geometry, "MIN_EXCESS_WITH_SURFACE", 4.0)
    with pytest.raises(MembraneNotFound, match="no structure above its noise"):
        find_membrane(img, held.pixel_size_um)


_SATURATED_BAND = dict(geometry="ellipses", size_px=(8.0, 20.0), porosity=0.45, contrast="bse",
                       background="charging", surfaces="top", gap_px=0, gamma=1.4)


@pytest.mark.parametrize("kind,seed,shape,spec", [
    ("ellipses-bse-charging-top-hitachi", 1928, (768, 768),
     dict(_SATURATED_BAND, databar="hitachi", file_format="png", tilt_deg=-10.0, bow_px=0.0,
          pixel_size_um=0.1, dose=1.0)),
    ("ellipses-bse-charging-top-zeiss", 1329, (512, 768),
     dict(_SATURATED_BAND, databar="zeiss", file_format="bmp", tilt_deg=3.0, bow_px=6.0,
          pixel_size_um=0.25, dose=0.2)),
], ids=["tilted-hitachi", "low-dose-zeiss"])
def test_a_saturated_band_on_the_membrane_is_not_a_layer(monkeypatch, kind, seed, shape, spec):
    """A charging band clipped at the detector's top, lying directly on the membrane under the
    vacuum (held-out combinations ellipses-bse-charging-top-*, gamma 1.4: at 768 x 768 and -10
    degrees, and at a fifth of the dose): its shot noise is texture against the vacuum's, it
    begins with a step and lies on the membrane, so the wide-layer rule took the whole band for
    a layer of fine pores and the surface was found at its top, 162-167 px high. Fine pores are
    never clipped: a layer lying mostly in saturated areas stays background
    (``SATURATED_LAYER_FRACTION``): 2.4 px (the band fades into the membrane: the known offset).
    Witness: without it, > 50 px."""
    from pipeline import geometry

    img, held = _heldout_frame(kind, seed, spec, shape)
    found = find_membrane(img, held.pixel_size_um)
    assert found.reference_surface == "top"
    assert _top_error_px(found.top_px, held) <= 3.0
    monkeypatch.setattr(geometry, "SATURATED_LAYER_FRACTION", np.inf)
    lost = find_membrane(img, held.pixel_size_um)
    assert lost.top_px is None or _top_error_px(lost.top_px, held) > 50
