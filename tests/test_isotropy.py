"""Tests of pipeline.isotropy: fabric tensor, structure tensor, chords, topology, percolation,
breakthrough, the isotropy decision and the pipeline stage.

Truth comes from constructions with known geometry (ellipses, stripes, grids, honeycombs,
channels) and from phantoms of :mod:`pipeline.synthetic` whose elongation and angle are designed.
The >= 30-seed statistical checks of issue 5 are marked slow; a smaller version runs by default.
"""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline import isotropy as iso
from pipeline.geometry import membrane_from_surfaces
from pipeline.synthetic import make_membrane_phantom, network_phantom

REPO = Path(__file__).resolve().parents[1]


def _calibration_tool():
    spec = importlib.util.spec_from_file_location(
        "calibrate_isotropy", REPO / "tools" / "calibrate_isotropy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def angle_error(a: float, b: float) -> float:
    """Smallest difference of two axial angles, degrees."""
    return abs((a - b + 90.0) % 180.0 - 90.0)


def ellipses(shape, angle_deg, semi_major, semi_minor, n, seed=0):
    """Pores: random ellipses whose long axis points along display angle ``angle_deg``."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    rr, cc = np.mgrid[0:rows, 0:cols]
    x, y = cc.astype(float), -rr.astype(float)  # display frame
    a = math.radians(angle_deg)
    out = np.zeros(shape, bool)
    for _ in range(n):
        x0, y0 = rng.uniform(0, cols), -rng.uniform(0, rows)
        u = (x - x0) * math.cos(a) + (y - y0) * math.sin(a)
        v = -(x - x0) * math.sin(a) + (y - y0) * math.cos(a)
        out |= (u / semi_major) ** 2 + (v / semi_minor) ** 2 <= 1.0
    return out


# ---------------------------------------------------------------------------------------------
# conventions and the fabric tensor


def test_upper_right_elongation_has_angle_between_0_and_90():
    mask = ellipses((256, 256), 30.0, 14, 4, 60, seed=1)
    r = iso.measure_isotropy(mask, with_chords=False)
    assert 0 < r["orientation_deg"] < 90
    assert angle_error(r["orientation_deg"], 30.0) < 3.0
    assert r["is_isotropic"] is False
    # the structure tensor agrees on the direction
    assert angle_error(r["structure_tensor_orientation_deg"], 30.0) < 3.0
    mask2 = ellipses((256, 256), 150.0, 14, 4, 60, seed=1)
    r2 = iso.measure_isotropy(mask2, with_chords=False)
    assert 90 < r2["orientation_deg"] < 180
    assert angle_error(r2["orientation_deg"], 150.0) < 3.0


def test_display_angle_helper():
    assert iso.display_angle_deg(1.0, -1.0) == pytest.approx(45.0)  # up-right on screen
    assert iso.display_angle_deg(1.0, 1.0) == pytest.approx(135.0)
    assert iso.display_angle_deg(0.0, 1.0) == pytest.approx(90.0)


def test_fabric_ellipse_of_an_exact_ellipse():
    theta = np.arange(0, 180, 5.0)
    a, b, phi = 3.0, 1.5, math.radians(20.0)
    # polar radius of an ellipse with semi-axes a (along phi) and b
    t = np.radians(theta) - phi
    mil = 1.0 / np.sqrt((np.cos(t) / a) ** 2 + (np.sin(t) / b) ** 2)
    fab = iso.fabric_ellipse(theta, mil)
    assert fab["degree_of_anisotropy"] == pytest.approx(1 - (b / a) ** 2, abs=1e-9)
    assert fab["orientation_deg"] == pytest.approx(20.0, abs=1e-6)
    assert fab["mil_long_px"] == pytest.approx(a)
    assert fab["mil_short_px"] == pytest.approx(b)
    with pytest.raises(ValueError, match="at least 3"):
        iso.fabric_ellipse(theta[:2], mil[:2])


@pytest.mark.parametrize("morphology", ["sponge", "spheres"])
@pytest.mark.parametrize("aspect", [2.0, 3.0])
def test_da_of_a_stretched_isotropic_network_follows_bonej(aspect, morphology):
    """An isotropic structure stretched by k has an MIL ellipse of aspect k: DA = 1 - 1/k^2
    (sponge: a stretched Gaussian random field; spheres: a Boolean model of aligned ellipses)."""
    das = [iso.measure_isotropy(network_phantom((384, 384), 12, 0.5, morphology=morphology,
                                                anisotropy=aspect, angle_deg=20, seed=s),
                                with_chords=False)["degree_of_anisotropy"] for s in range(3)]
    assert np.mean(das) == pytest.approx(1 - 1 / aspect**2, abs=0.08)


def _crofton_mil(mask, directions):
    where = iso.measurement_region(np.ones(mask.shape, bool))
    gx, gy = iso.interface_gradient(mask)
    st = iso.interface_statistics(gx, gy, where)
    return iso.mean_intercept_length(st["normal_hist"][0], st["area_px"][0], directions)


def test_crofton_mil_on_known_geometry():
    # stripes of period 16 (8 pore rows, 8 polymer rows): MIL(theta) = 8 / |sin theta|
    rows = np.arange(400)[:, None]
    stripes = np.broadcast_to((rows // 8) % 2 == 0, (400, 400)).copy()
    mil = _crofton_mil(stripes, np.array([30.0, 60.0, 90.0]))
    assert np.allclose(mil, 8.0 / np.sin(np.radians([30.0, 60.0, 90.0])), rtol=0.005)
    # separate disks: MIL = pi A / (2 B) in every direction (B the total perimeter)
    rng = np.random.default_rng(0)
    radius, centres = 8, []
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    stamp = yy**2 + xx**2 <= radius**2
    disks = np.zeros((500, 500), bool)
    while len(centres) < 300:
        c = rng.integers(20, 480, 2)
        if all(np.hypot(*(c - q)) > 2 * radius + 3 for q in centres):
            centres.append(c)
            disks[c[0] - radius:c[0] + radius + 1, c[1] - radius:c[1] + radius + 1] |= stamp
    r_eq = math.sqrt(disks.sum() / len(centres) / math.pi)
    area = float(iso.measurement_region(np.ones(disks.shape, bool)).sum())
    expected = math.pi * area / (2 * len(centres) * 2 * math.pi * r_eq)
    mil = _crofton_mil(disks, np.arange(0, 180, 10.0))
    assert np.allclose(mil, expected, rtol=0.02)


def test_crofton_and_counted_test_lines_agree_on_direction():
    """Intercepts counted on rotated test lines (the pixel staircase adds crossings on oblique
    boundaries, which dilutes DA) point the same way as the Crofton MIL."""
    directions = np.arange(0, 180, 15.0)
    for mask in (network_phantom((300, 300), 12, 0.5, morphology="spheres", anisotropy=2.0,
                                 angle_deg=60, seed=4),
                 network_phantom((300, 300), 20, 0.5, morphology="cells", anisotropy=2.0,
                                 angle_deg=130, seed=4)):
        fa = iso.fabric_ellipse(directions, _crofton_mil(mask, directions))
        fb = iso.fabric_ellipse(directions, iso.mil_by_test_lines(mask, None, directions))
        assert fb["degree_of_anisotropy"] > 0.4 and fa["degree_of_anisotropy"] > 0.6
        assert angle_error(fa["orientation_deg"], fb["orientation_deg"]) < 5.0


def test_rotation_by_90_turns_orientation_and_keeps_da():
    das = []
    for seed in range(4):
        mask = network_phantom((256, 320), 9, 0.45, morphology="sponge", anisotropy=2.5,
                               angle_deg=25, seed=seed)
        a = iso.measure_isotropy(mask, with_chords=False)
        b = iso.measure_isotropy(np.rot90(mask), with_chords=False)  # CCW as displayed
        assert angle_error(b["orientation_deg"], a["orientation_deg"] + 90.0) < 0.5
        assert abs(b["degree_of_anisotropy"] - a["degree_of_anisotropy"]) < 1e-3
        das.append(a["degree_of_anisotropy"])
    assert np.std(das) > 1e-3  # the rotation difference is far inside the seed spread


def test_structure_tensor_coherency_of_stripes_and_isotropic_network():
    rows = np.arange(200)[:, None]
    stripes = np.broadcast_to((rows // 6) % 2 == 0, (200, 200)).copy()  # horizontal walls
    r = iso.measure_isotropy(stripes, with_chords=False)
    assert r["coherency"] > 0.95
    assert angle_error(r["structure_tensor_orientation_deg"], 0.0) < 1.0
    iso_r = iso.measure_isotropy(network_phantom((384, 384), 10, 0.5, seed=2),
                                 with_chords=False)
    assert iso_r["coherency"] < 0.05  # averaged tensor: no dominant direction
    h = iso_r["orientation_histogram"]
    assert len(h["angle_deg"]) == 36 and sum(h["weight"]) == pytest.approx(1.0)


def test_threshold_model():
    assert iso.da_threshold(100) == pytest.approx(max(iso.DA_FLOOR,
                                                      iso.DA_NOISE_COEFFICIENT / 10))
    assert iso.da_threshold(1e9) == pytest.approx(iso.DA_FLOOR)
    assert iso.da_threshold(0) == math.inf
    few = iso.measure_isotropy(ellipses((40, 40), 0, 6, 6, 2), with_chords=False)
    assert few["is_isotropic"] is None and "too few features" in few["is_isotropic_reason"]


# ---------------------------------------------------------------------------------------------
# the done-when statistics (small default version; >= 30 seeds under slow)


#: Isotropic/oriented phantom families of the rate tests: pipeline.synthetic's sponge, spheres
#: and cells, and Voronoi closed cells drawn by tools/calibrate_isotropy.py.
FAMILIES = ("sponge", "spheres", "voronoi", "cells")


def _isotropic_cases(n_per_family, seed):
    tool = _calibration_tool()
    rng = np.random.default_rng(seed)
    for morph in FAMILIES:
        for k in range(n_per_family):
            size = float(math.exp(rng.uniform(math.log(4.0), math.log(30.0))))
            por = float(rng.uniform(0.30, 0.75))
            yield morph, tool.phantom(morph, (384, 512), size, por, seed=seed * 1000 + k)


def _oriented_cases(n, seed):
    tool = _calibration_tool()
    rng = np.random.default_rng(seed)
    for k in range(n):
        morph = FAMILIES[k % len(FAMILIES)]
        angle = 180.0 * (k + rng.uniform()) / n
        size = float(math.exp(rng.uniform(math.log(4.0), math.log(30.0))))
        yield angle, tool.phantom(morph, (384, 512), size, float(rng.uniform(0.30, 0.75)),
                                  seed=seed * 1000 + k, anisotropy=float(rng.uniform(2.0, 3.0)),
                                  angle_deg=angle)


def _rates(n_iso, n_orient, seed):
    iso_ok = [iso.measure_isotropy(m, with_chords=False)["is_isotropic"] is True
              for _, m in _isotropic_cases(n_iso, seed)]
    orient = [(a, iso.measure_isotropy(m, with_chords=False)) for a, m in
              _oriented_cases(n_orient, seed)]
    not_iso = [r["is_isotropic"] is False for _, r in orient]
    errors = [angle_error(r["orientation_deg"], a) for a, r in orient]
    return np.mean(iso_ok), np.mean(not_iso), max(errors)


def test_isotropic_and_oriented_rates_small():
    """Default-run version: 9 isotropic and 9 oriented phantoms (one isotropic miss allowed:
    the threshold is a 99th percentile)."""
    iso_rate, not_iso_rate, max_err = _rates(n_iso=3, n_orient=9, seed=7)
    assert iso_rate >= 8 / 9
    assert not_iso_rate == 1.0
    assert max_err <= 5.0


@pytest.mark.slow
def test_isotropic_and_oriented_rates_30_seeds():
    """Issue 5: isotropic phantoms (sponge, spheres and Voronoi cells; porosity 30-75 %, pores
    4-30 px; 30 seeds each) are called isotropic >= 95 %; oriented ones (aspect 2-3, angles
    spread over 0-180, 60 phantoms) are not, >= 95 %, with orientation errors <= 5 degrees."""
    iso_rate, not_iso_rate, max_err = _rates(n_iso=30, n_orient=60, seed=11)
    assert iso_rate >= 0.95
    assert not_iso_rate >= 0.95
    assert max_err <= 5.0


@pytest.mark.slow
def test_rotation_by_90_over_30_seeds():
    tool = _calibration_tool()
    for seed in range(30):
        mask = tool.phantom(FAMILIES[seed % 3], (256, 256), 8, 0.5, seed=seed, anisotropy=2.0,
                            angle_deg=7 * seed)
        a = iso.measure_isotropy(mask, with_chords=False)
        b = iso.measure_isotropy(np.rot90(mask), with_chords=False)
        assert angle_error(b["orientation_deg"], a["orientation_deg"] + 90.0) < 0.5
        assert abs(b["degree_of_anisotropy"] - a["degree_of_anisotropy"]) < 1e-3


def test_synthetic_cells_are_isotropic():
    das = [iso.measure_isotropy(network_phantom((384, 512), 4, 0.6, morphology="cells", seed=s),
                                with_chords=False)["degree_of_anisotropy"] for s in range(3)]
    assert max(das) < iso.DA_FLOOR


# ---------------------------------------------------------------------------------------------
# chords


def test_chords_of_rectangles():
    mask = np.zeros((200, 300), bool)
    for r0 in range(10, 190, 30):
        for c0 in range(10, 290, 40):
            mask[r0:r0 + 12, c0:c0 + 25] = True  # 25 wide, 12 tall
    out = iso.chord_lengths(mask)
    assert np.all(out["parallel"]["length_px"] == 25)
    assert np.all(out["perpendicular"]["length_px"] == 12)
    block = iso.chord_block(out, 0.5, None)
    assert block["mean_chord_parallel_um"] == pytest.approx(12.5)
    assert block["mean_chord_perpendicular_um"] == pytest.approx(6.0)
    assert block["chord_ratio_perpendicular_to_parallel"] == pytest.approx(12 / 25)
    # chords cut by the frame are dropped; the Miles weight favours long chords
    cut = mask.copy()
    cut[:, :15] = True
    w = iso.chord_lengths(cut)["parallel"]
    assert np.all(w["length_px"] == 25)
    assert np.allclose(w["weight"], 300 / (300 - 25))


def test_chords_follow_the_surface_angle():
    """Chords parallel to a tilted surface are the long ones for pores elongated along it."""
    mask = ellipses((300, 300), 10.0, 16, 5, 40, seed=3)
    r = iso.measure_isotropy(mask, surface_angle_deg=10.0)
    assert r["mean_chord_parallel_um"] > 2.0 * r["mean_chord_perpendicular_um"]
    assert r["orientation_to_surface_deg"] is not None
    assert angle_error(r["orientation_to_surface_deg"], 0.0) < 3.0


# ---------------------------------------------------------------------------------------------
# topology


def test_euler_number_matches_scikit_image():
    from skimage.measure import euler_number

    rng = np.random.default_rng(0)
    for k in range(6):
        mask = network_phantom((90, 110), float(rng.uniform(3, 12)), float(rng.uniform(0.3, 0.7)),
                               morphology=("sponge", "spheres", "cells")[k % 3], seed=k)
        for m in (mask, ~mask):
            for conn in (1, 2):
                assert iso.euler_number(m, conn) == euler_number(m, connectivity=conn)
    with pytest.raises(ValueError, match="connectivity"):
        iso.euler_number(mask, 3)


def test_thin_equals_scikit_image_thin_and_is_fast_on_thick_pores():
    from skimage.morphology import thin

    rng = np.random.default_rng(1)
    for k in range(8):
        mask = network_phantom((100, 120), float(rng.uniform(3, 20)), float(rng.uniform(0.3, 0.7)),
                               morphology=("sponge", "spheres", "cells")[k % 3], seed=k)
        for m in (mask, ~mask):
            assert np.array_equal(iso.thin(m), thin(m))
    blob = np.zeros((400, 400), bool)
    blob[40:360, 60:340] = True
    iso.thin(blob[:20, :20])
    t0 = time.process_time()
    ours = iso.thin(blob)
    t_ours = time.process_time() - t0
    t0 = time.process_time()
    ref = thin(blob)
    t_ref = time.process_time() - t0
    assert np.array_equal(ours, ref)
    assert t_ours < t_ref / 3


def test_topology_of_a_square_grid():
    sk = np.zeros((201, 201), bool)
    for k in range(10, 200, 20):
        sk[k, :] = True
        sk[:, k] = True
    t = iso.skeleton_topology(sk, None, None, prune=False)
    assert t["n_junctions"] == 100
    assert np.all(t["junction_degrees"] == 4)
    assert np.allclose(t["branch_length_px"], 20.0)  # centre to centre
    assert t["n_truncated_branches"] == 40  # the stubs that run into the frame
    with pytest.raises(ValueError, match="phase_dt"):
        iso.skeleton_topology(sk, None, None, prune=True)


def test_topology_of_a_honeycomb():
    from scipy.spatial import cKDTree

    s, rows, cols = 24.0, 300, 400
    pts = np.array([(i * s * math.sqrt(3) / 2, j * s + (s / 2 if i % 2 else 0))
                    for i in range(-2, 18) for j in range(-2, 20)])
    rr, cc = np.mgrid[0:rows, 0:cols]
    lab = cKDTree(pts).query(np.column_stack([rr.ravel(), cc.ravel()]))[1].reshape(rows, cols)
    wall = np.zeros((rows, cols), bool)
    wall[:-1] |= lab[:-1] != lab[1:]
    wall[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    t = iso.skeleton_topology(iso.thin(wall), None, None, prune=False)
    assert np.all(t["junction_degrees"] == 3)
    density = t["n_junctions"] / (rows * cols)
    assert density == pytest.approx(2 / (s * s * math.sqrt(3) / 2), rel=0.03)
    assert np.mean(t["branch_length_px"]) == pytest.approx(s / math.sqrt(3), rel=0.08)


@pytest.mark.slow  # skan's first call compiles for about 10 s
def test_topology_agrees_with_skan():
    import skan

    for seed in range(2):
        m = network_phantom((250, 250), 12, 0.5, morphology="sponge", seed=seed)
        sk = iso.thin(~m)
        ours = iso.skeleton_topology(sk, None, None, prune=False)
        graph = skan.Skeleton(sk)
        df = skan.summarize(graph, separator="_")
        junction_px = int((np.asarray(graph.degrees) >= 3).sum())
        # skan counts junction pixels, we count clusters of them
        assert 0.85 * junction_px <= ours["n_junctions"] <= junction_px
        # skan also splits junction clusters into short pixel-to-pixel branches
        long_branches = df[df.branch_distance > 3]
        assert np.mean(ours["branch_weight"][ours["branch_weight"] > 3]) == pytest.approx(
            long_branches.branch_distance.mean(), rel=0.1)


def test_pruning_removes_boundary_spurs_but_keeps_branches():
    wall = np.zeros((60, 200), bool)
    wall[25:36, 10:190] = True  # an 11 px thick strut
    wall[22:25, 49:52] = wall[22:25, 99:102] = wall[36:39, 149:152] = True  # bumps on its faces
    raw = iso.skeleton_topology(iso.thin(wall), None, None, prune=False)
    pruned = iso.skeleton_topology(iso.thin(wall), None, iso._phase_dt(wall), prune=True)
    assert raw["n_junctions"] >= 3
    assert pruned["n_junctions"] == 0 and pruned["n_branches"] == 1
    assert pruned["branch_length_px"][0] == pytest.approx(180 - 11, abs=4)
    tee = wall.copy()
    tee[0:25, 120:126] = True  # a real side branch, 25 px long, 6 px wide
    t = iso.skeleton_topology(iso.thin(tee), None, iso._phase_dt(tee), prune=True)
    assert t["n_junctions"] == 1 and list(t["junction_degrees"]) == [3]


# ---------------------------------------------------------------------------------------------
# percolation and breakthrough


def _slab(shape=(80, 60)):
    pores = np.zeros(shape, bool)
    inlet = np.zeros(shape, bool)
    outlet = np.zeros(shape, bool)
    inlet[0] = True
    outlet[-1] = True
    return pores, inlet, outlet


def test_breakthrough_of_a_channel_with_a_neck():
    pores, inlet, outlet = _slab()
    pores[1:-1, 20:35] = True  # 15 px wide channel
    pores[40:45, 20:35] = False
    pores[40:45, 25:30] = True  # neck 5 px wide
    pores[10:20, 40:55] = True  # a dead-end pocket, not connected
    bt = iso.breakthrough(pores, inlet, outlet)
    assert bt["percolates"]
    assert bt["breakthrough_diameter_px"] == pytest.approx(6.0)  # 2 x dt at the neck centre
    channel = pores[1:-1, 20:35].sum()
    assert bt["connected_fraction"] == pytest.approx(channel / pores.sum())
    pores[42, 25:30] = False  # closed
    closed = iso.breakthrough(pores, inlet, outlet)
    assert not closed["percolates"] and closed["breakthrough_diameter_px"] is None
    assert closed["connected_fraction"] == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        iso.breakthrough(pores, np.zeros_like(inlet), outlet)


def test_breakthrough_matches_porespy_drainage():
    """porespy's porosimetry truncates the distance transform to integers: its entry radius at
    the outlet is the floor of ours."""
    import porespy as ps

    rng = np.random.default_rng(1)
    checked = 0
    for k in range(8):
        m = network_phantom((100, 90), float(rng.uniform(6, 16)), float(rng.uniform(0.6, 0.75)),
                            morphology=("sponge", "spheres")[k % 2], seed=k)
        m[0] = m[-1] = True
        inlet = np.zeros_like(m)
        inlet[0] = True
        outlet = np.zeros_like(m)
        outlet[-1] = True
        ours = iso.breakthrough(m, inlet, outlet)
        entry = ps.filters.porosimetry(m, inlets=inlet, method="dt")[outlet].max()
        if not ours["percolates"]:
            assert entry == 0
            continue
        assert math.floor(ours["breakthrough_diameter_px"] / 2 + 1e-9) == entry
        checked += 1
    assert checked >= 4


# ---------------------------------------------------------------------------------------------
# the pipeline stage


class _Seg:
    def __init__(self, mask):
        self.mask = mask


class _Analysis:
    """The attributes analyze_isotropy reads, without running the whole pipeline."""

    def __init__(self, pores, membrane, pixel_size_um=0.1, settings=None):
        from pipeline.settings import Settings
        from pipeline.size import local_thickness

        self.segmentation = _Seg(pores & membrane.mask)
        self.membrane = membrane
        self.local_thickness_px = local_thickness(pores & membrane.mask)
        self.pixel_size_um = pixel_size_um
        self.settings = settings or Settings()


def _phantom_analysis(surfaces="both", porosity=0.7, rotate=False, **kw):
    ph = make_membrane_phantom((320, 400), pixel_size_um=0.1, pore_size_um=0.8,
                               porosity=porosity, surfaces=surfaces, databar=False, seed=5, **kw)
    pores = ph.pore_mask
    if rotate:  # membrane turned 90 degrees counter-clockwise: the top surface is on the left
        pores = np.rot90(pores)
        mem = membrane_from_surfaces(pores.shape, ph.top_px[::-1].copy(),
                                     ph.bottom_px[::-1].copy(), reference_surface="left",
                                     orientation="vertical",
                                     surfaces_in_view=tuple({"top": "left", "bottom": "right"}[s]
                                                            for s in ph.surfaces_in_view))
    else:
        ref = "none" if surfaces == "none" else "top" if surfaces in ("top", "both") else "bottom"
        mem = membrane_from_surfaces(pores.shape, ph.top_px, ph.bottom_px,
                                     reference_surface=ref,
                                     surfaces_in_view=tuple(ph.surfaces_in_view))
    return _Analysis(np.ascontiguousarray(pores), mem)


def test_stage_blocks_with_both_surfaces():
    a = _phantom_analysis("both")
    out = iso.analyze_isotropy(a)
    i, n = out["isotropy"], out["network"]
    for key in ("is_isotropic", "degree_of_anisotropy", "orientation_deg",
                "orientation_to_surface_deg", "coherency", "method", "mean_chord_parallel_um",
                "mean_chord_perpendicular_um", "chord_ratio_perpendicular_to_parallel", "zones"):
        assert key in i
    assert i["is_isotropic"] is True
    assert set(i["zones"]) == {"surface", "interior", "opposite"}
    assert all(i["zones"][z]["degree_of_anisotropy"] is not None for z in i["zones"])
    assert i["method"]["n_directions"] == 36
    for key in ("euler_number", "branch_points_per_um2", "mean_branch_length_um",
                "node_degree_counts", "percolates_through_thickness", "breakthrough_pore_size_um",
                "breakthrough_to_mean_ratio", "connected_pore_fraction"):
        assert key in n
    assert n["percolates_through_thickness"] is True
    assert 0 < n["connected_pore_fraction"] <= 1
    assert n["breakthrough_to_mean_ratio"] == pytest.approx(
        n["breakthrough_pore_size_um"] / n["mean_pore_size_um"])
    assert "top surface to the bottom surface" in n["percolation_span"]
    assert out["extras"]["skeleton"].shape == a.segmentation.mask.shape
    assert out["extras"]["skeleton"].any()
    assert len(out["extras"]["orientation_histogram"]["weight"]) == 36


def test_stage_with_one_surface_and_without_surface():
    one = iso.analyze_isotropy(_phantom_analysis("top"))
    assert one["isotropy"]["zones"]["opposite"] is None
    assert one["isotropy"]["opposite_zone_reason"] == "opposite surface not in view"
    assert "edge of the visible span" in one["network"]["percolation_span"]
    assert one["network"]["percolates_through_thickness"] is True
    none = iso.analyze_isotropy(_phantom_analysis("none"))
    assert none["network"]["percolates_through_thickness"] is None
    assert "no surface" in none["network"]["percolation_reason"]
    assert none["network"]["breakthrough_pore_size_um"] is None
    assert none["isotropy"]["orientation_to_surface_deg"] is None
    assert none["isotropy"]["zones"] is None and none["isotropy"]["zones_reason"]
    assert none["isotropy"]["degree_of_anisotropy"] is not None


def test_closed_cells_do_not_percolate():
    out = iso.analyze_isotropy(_phantom_analysis("both", porosity=0.6, morphology="cells"))
    n = out["network"]
    assert n["percolates_through_thickness"] is False
    assert n["breakthrough_pore_size_um"] is None
    assert "does not connect" in n["breakthrough_reason"]
    assert n["node_degree_counts"]["3"] > n["node_degree_counts"]["4+"]


def test_orientation_to_surface_is_invariant_under_rotation():
    """Fingers perpendicular to the surface stay perpendicular when the membrane is turned."""
    kw = dict(anisotropy=3.0, angle_deg=90.0, porosity=0.5)
    flat_out = iso.analyze_isotropy(_phantom_analysis("both", **kw))
    turned_out = iso.analyze_isotropy(_phantom_analysis("both", rotate=True, **kw))
    flat, turned = flat_out["isotropy"], turned_out["isotropy"]
    # percolation and breakthrough do not depend on how the membrane lies in the frame
    for key in ("percolates_through_thickness", "breakthrough_pore_size_um",
                "connected_pore_fraction", "euler_number"):
        assert turned_out["network"][key] == pytest.approx(flat_out["network"][key])
    assert flat_out["network"]["percolates_through_thickness"] is True
    assert "left surface to the right surface" in turned_out["network"]["percolation_span"]
    assert angle_error(flat["orientation_to_surface_deg"], 90.0) < 5.0
    assert angle_error(turned["orientation_to_surface_deg"], 90.0) < 5.0
    assert angle_error(turned["orientation_deg"], 0.0) < 5.0
    assert flat["is_isotropic"] is False and turned["is_isotropic"] is False
    assert flat["chord_ratio_perpendicular_to_parallel"] > 1.5


def test_settings_threshold_and_breakthrough_switch():
    from pipeline.settings import Settings

    s = Settings().replace(isotropy={"da_threshold": 1e-6, "breakthrough": False,
                                     "n_directions": 12})
    a = _phantom_analysis("both")
    a.settings = s
    out = iso.analyze_isotropy(a)
    assert out["isotropy"]["is_isotropic"] is False  # any DA exceeds 1e-6
    assert out["isotropy"]["da_threshold"] == 1e-6
    assert out["isotropy"]["method"]["da_threshold_source"] == "settings.isotropy.da_threshold"
    assert out["isotropy"]["method"]["n_directions"] == 12
    assert out["network"]["breakthrough_pore_size_um"] is None
    assert "disabled" in out["network"]["breakthrough_reason"]


def test_bad_input_messages():
    with pytest.raises(ValueError, match="2-D"):
        iso.measure_isotropy(np.zeros((4, 4, 4), bool))
    with pytest.raises(ValueError, match="region has shape"):
        iso.measure_isotropy(np.zeros((20, 20), bool), np.ones((10, 10), bool))
    with pytest.raises(ValueError, match="n_directions"):
        iso.measure_isotropy(np.zeros((20, 20), bool), n_directions=2)
    empty = iso.measure_isotropy(np.zeros((50, 50), bool))
    assert empty["is_isotropic"] is None
    assert "no pore/polymer interface" in empty["is_isotropic_reason"]


@pytest.mark.slow
def test_stage_time_on_2048x1536():
    """Issue 5: the whole isotropy stage within 1.5 s (CPU time) on a 2048x1536 membrane."""
    ph = make_membrane_phantom((1536, 2048), pixel_size_um=0.05, pore_size_um=0.6,
                               porosity=0.7, surfaces="both", databar=False, seed=2)
    mem = membrane_from_surfaces(ph.pore_mask.shape, ph.top_px, ph.bottom_px,
                                 surfaces_in_view=tuple(ph.surfaces_in_view))
    a = _Analysis(ph.pore_mask, mem, pixel_size_um=0.05)
    iso.analyze_isotropy(a)  # compile
    t0 = time.process_time()
    out = iso.analyze_isotropy(a)
    elapsed = time.process_time() - t0
    assert out["network"]["percolates_through_thickness"] is True
    assert elapsed < 1.5
