"""pipeline.size: exact local thickness against a brute-force evaluation of its definition.

tau(p) = 2 * max{dt(x) : x pore, |p - x| < dt(x)}, dt = Euclidean distance from x's centre to the
nearest non-pore pixel centre; pixels outside the array are not walls. The reference below works
in integer squared distances, so the strict inequality is decided exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from pipeline import size
from pipeline.size import distance_transform, local_thickness

EXACT_PX = 1e-4  # float32 rounding of 2*sqrt(integer) is far below this


def _squared_dt_brute(points: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """Squared distance (int64) from each point to its nearest wall pixel."""
    out = np.empty(len(points), np.int64)
    for start in range(0, len(points), 512):
        diff = points[start : start + 512, None, :] - walls[None, :, :]
        out[start : start + 512] = (diff**2).sum(-1).min(axis=1)
    return out


def _local_thickness_brute(mask: np.ndarray, at: np.ndarray | None = None,
                           unknown: np.ndarray | None = None) -> np.ndarray:
    """The definition, over all pore pixels x, at every pore pixel (or only at ``at``).

    Returns a float64 image (0 off the evaluated pixels) when ``at`` is None, else the values
    at the (row, col) rows of ``at``. ``unknown`` pixels are neither walls nor pores.
    """
    mask = np.asarray(mask, bool)
    unknown = np.zeros(mask.shape, bool) if unknown is None else unknown & ~mask
    pores = np.argwhere(mask).astype(np.int64)
    walls = np.argwhere(~mask & ~unknown).astype(np.int64)
    targets = pores if at is None else np.asarray(at, np.int64)
    if len(walls) == 0:
        values = np.full(len(targets), np.inf)
    else:
        a = _squared_dt_brute(pores, walls)
        best = np.zeros(len(targets), np.int64)
        for start in range(0, len(targets), 256):
            diff = targets[start : start + 256, None, :] - pores[None, :, :]
            inside = (diff**2).sum(-1) < a[None, :]
            best[start : start + 256] = np.where(inside, a[None, :], 0).max(axis=1)
        values = 2.0 * np.sqrt(best)
    if at is not None:
        return values
    out = np.zeros(mask.shape)
    out[tuple(pores.T)] = values
    return out


def _random_mask(shape, porosity, sigma, seed) -> np.ndarray:
    """Threshold of a smoothed random field: pores of many sizes, many touching the border."""
    rng = np.random.default_rng(seed)
    field = rng.random(shape)
    if sigma > 0:
        field = ndi.gaussian_filter(field, sigma, mode="wrap")
    return field < np.quantile(field, porosity)


def _assert_matches_definition(mask: np.ndarray) -> None:
    ours = local_thickness(mask)
    truth = _local_thickness_brute(mask)
    assert ours.dtype == np.float32 and ours.shape == mask.shape
    assert np.all(ours[~mask] == 0)
    if mask.any():
        diff = np.abs(ours[mask] - truth[mask])
        # issue 3's acceptance, then what this implementation actually guarantees: exactness
        assert np.mean(diff <= 1.0) >= 0.95 and diff.mean() <= 0.3
        assert diff.max() < EXACT_PX, f"max |diff| {diff.max()} px"


CASES = [
    # shape, porosity, sigma (smoothing of the random field), seed
    ((48, 64), 0.5, 2.0, 0),
    ((48, 64), 0.5, 0.0, 1),  # pixel noise: pores of one or a few pixels
    ((60, 45), 0.3, 1.5, 2),
    ((60, 45), 0.7, 3.0, 3),
    ((70, 70), 0.9, 5.0, 4),  # large pores, most of them cut by the border
    ((70, 70), 0.97, 6.0, 5),
    ((33, 90), 0.6, 2.5, 6),
    ((1, 120), 0.7, 2.0, 7),
    ((120, 1), 0.7, 2.0, 8),
    ((2, 75), 0.8, 3.0, 9),
]


@pytest.mark.parametrize(("shape", "porosity", "sigma", "seed"), CASES)
def test_random_masks_match_the_definition_exactly(shape, porosity, sigma, seed):
    _assert_matches_definition(_random_mask(shape, porosity, sigma, seed))


@pytest.mark.parametrize("seed", range(4))
def test_unknown_pixels_are_neither_walls_nor_disk_centres(seed):
    """A rectangle of unknown phase (a label burned into the micrograph) inside random masks:
    exact against the definition with those pixels taken out of both the walls and the pores."""
    mask = _random_mask((50, 70), 0.55, 2.0, seed)
    unknown = np.zeros(mask.shape, bool)
    unknown[30:50, 40:65] = True  # a corner label, touching the frame
    unknown[5:12, 5:20] = seed % 2 == 0  # and one inside the picture
    pore = mask & ~unknown
    ours = local_thickness(pore, unknown=unknown)
    truth = _local_thickness_brute(pore, unknown=unknown)
    assert np.all(ours[~pore] == 0)
    assert np.abs(ours[pore] - truth[pore]).max() < EXACT_PX
    # the unknown pixels are not walls: pores reaching the label are thicker than when it is
    # polymer, never thinner
    as_polymer = local_thickness(pore)
    assert np.all(ours[pore] >= as_polymer[pore] - EXACT_PX)
    assert (ours[pore] > as_polymer[pore] + 0.5).any()


def test_special_masks():
    assert np.all(local_thickness(np.zeros((5, 7), bool)) == 0)
    assert np.all(np.isinf(local_thickness(np.ones((5, 7), bool))))  # no wall anywhere
    assert np.all(np.isinf(local_thickness(np.ones((1, 1), bool))))
    assert local_thickness(np.zeros((1, 1), bool))[0, 0] == 0
    single = np.zeros((9, 9), bool)
    single[4, 4] = True  # dt = 1: the disk of radius 1 holds only the pixel itself
    lt = local_thickness(single)
    assert lt[4, 4] == pytest.approx(2.0) and np.count_nonzero(lt) == 1
    one_wall = np.ones((23, 31), bool)
    one_wall[5, 7] = False  # every disk is centred far from the only wall, across the border
    _assert_matches_definition(one_wall)
    row = np.ones((1, 40), bool)
    row[0, 10] = False  # 1 x N: walls only in the row itself
    _assert_matches_definition(row)


def test_disk_cut_by_the_border_keeps_its_size():
    """Outside the array is not wall: a half disk on the edge gets its full diameter."""
    rows, cols = np.mgrid[:40, :81]
    half_disk = (rows**2 + (cols - 40) ** 2) < 30**2
    lt = local_thickness(half_disk)
    _assert_matches_definition(half_disk)
    # the centre (0, 40) is 30 px from the nearest pixel outside the arc, (30, 40); were the
    # array's edge a wall it would be 1 px
    assert lt[0, 40] == pytest.approx(60.0)


def test_large_pores_use_the_long_vectors_exactly():
    """Radii above 32 px switch on the long containment vectors; check a sample of pixels."""
    rows, cols = np.mgrid[:120, :150]
    big = (rows - 70) ** 2 + (cols - 50) ** 2 < 60**2
    mask = big | ((rows - 15) ** 2 + (cols - 130) ** 2 < 40**2)
    mask &= _random_mask(mask.shape, 0.995, 0.0, 11)  # a few single-pixel walls inside
    ours = local_thickness(mask)
    rng = np.random.default_rng(12)
    pores = np.argwhere(mask)
    at = pores[rng.choice(len(pores), 400, replace=False)]
    truth = _local_thickness_brute(mask, at)
    assert np.abs(ours[tuple(at.T)] - truth).max() < EXACT_PX


def test_beyond_the_table_the_real_disk_test_stays_exact(monkeypatch):
    """Squared radii past the table fall back to a weaker but still exact pruning test."""
    monkeypatch.setattr(size, "_TABLE_SIZE_MAX", 30)
    for seed, (porosity, sigma) in enumerate([(0.6, 2.0), (0.9, 4.0), (0.5, 0.0)]):
        _assert_matches_definition(_random_mask((50, 60), porosity, sigma, 20 + seed))
    # a thin strip so long that squared radii pass the real table's 2**22 as well
    strip = np.ones((2, 2100), bool)
    strip[0, 0] = False
    rng = np.random.default_rng(13)
    pores = np.argwhere(strip)
    at = pores[rng.choice(len(pores), 300, replace=False)]
    monkeypatch.undo()
    ours = local_thickness(strip)
    assert np.abs(ours[tuple(at.T)] - _local_thickness_brute(strip, at)).max() < EXACT_PX


def test_threads_give_the_same_result():
    mask = _random_mask((760, 700), 0.5, 3.0, 14)  # above the one-thread size limit
    one = local_thickness(mask, threads=1)
    two = local_thickness(mask, threads=2)
    three = local_thickness(mask, threads=3)
    assert np.array_equal(one, two) and np.array_equal(one, three)
    assert np.array_equal(distance_transform(mask, threads=1), distance_transform(mask, threads=2))


def test_distance_transform_matches_scipy():
    for seed, shape in enumerate([(40, 55), (1, 30), (30, 1), (64, 64)]):
        mask = _random_mask(shape, 0.7, 2.0, 30 + seed)
        expected = ndi.distance_transform_edt(mask).astype(np.float32)
        np.testing.assert_allclose(distance_transform(mask), expected, rtol=1e-6)
    assert np.all(np.isinf(distance_transform(np.ones((3, 4), bool))))
    assert np.all(distance_transform(np.zeros((3, 4), bool)) == 0)


def test_input_checks_and_non_bool_masks():
    with pytest.raises(ValueError, match="2-D"):
        local_thickness(np.zeros((3, 4, 5), bool))
    with pytest.raises(ValueError, match="threads"):
        local_thickness(np.zeros((3, 4), bool), threads=0)
    mask = _random_mask((30, 40), 0.6, 2.0, 40)
    as_uint8 = np.where(mask, 255, 0).astype(np.uint8)
    assert np.array_equal(local_thickness(as_uint8), local_thickness(mask))
    fortran = np.asfortranarray(mask)
    assert np.array_equal(local_thickness(fortran), local_thickness(mask))


def test_against_porespy_integer_radii():
    """porespy inserts disks of INTEGER radius R <= dt(x) with |p - x| < R ('smooth').

    So 2 * R_porespy <= tau everywhere (its disk lies inside ours), and the gap is the radius
    rounding (below 2 px in diameter for most pixels) plus single-pixel protrusions from a wall,
    which a disk of radius floor(dt) no longer reaches (up to a whole disk diameter, rarely).
    Measured on this mask: median 0.65 px, 90th percentile 1.7 px, 99th 4.6 px.
    """
    porespy = pytest.importorskip("porespy")
    mask = _random_mask((200, 240), 0.5, 4.0, 0)
    ours = local_thickness(mask)
    radius = porespy.filters.local_thickness(mask, method="dt")  # integer radii, px
    gap = ours[mask] - 2 * radius[mask]
    assert gap.min() >= -EXACT_PX
    assert np.median(gap) <= 1.0
    assert np.percentile(gap, 90) <= 2.0
    assert gap.mean() <= 1.2
