"""The ``topographic`` (secondary-electron) method on a whole image: pore basins less wall lines,
the half-pixel shift toward the detector, tiles for large images and the coarse levels that fill
large pores (see :mod:`pipeline.segment`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
from scipy import ndimage as ndi

from ._basins import (
    BASIN_DYNAMICS_K,
    BASIN_SMOOTHING_PX,
    FEATURE_NAMES,
    _noise_q,
    basins_from_q,
    contrast_features,
)
from ._classifier import classify_basins
from ._common import (
    _bilinear_window,
    _check_inputs,
    _sample,
    _smoothed_window,
    _stitch,
    estimate_noise_sigma,
    level_grid,
    sample_windows,
    scan_line_offsets,
)
from ._dark import _joins_two_pores

# ------------------------------------------------------------------------------------------------
# topographic method: wall lines between closed cells


#: A crest between two pore basins is a cell wall (kept as a polymer line) when its lowest point
#: stands this fraction of the image's typical crest contrast above both basin cores; a neck
#: inside one pore has a low pass and stays open. 0 disables walls. 0.25 rather than 0.5
#: (2026-12-04, benchmarks/bench_size_bias.py): walls of at most 6 px were given to the pores on
#: 44-63 % of their area, which is most of the topographic size bias; at 0.25 the size error of
#: the 8 topographic accuracy kinds fell on all 8 (foam-se 0.22 -> 0.08, fingers 0.30 -> 0.21),
#: porosity MAE on 6, Dice moved -0.004 to +0.007; on 12 random topographic phantoms mean size
#: error 0.135 -> 0.096, porosity MAE 0.029 -> 0.021, Dice -0.004 (worst -0.010).
WALL_PASS_FRACTION = 0.25
#: Width of those wall lines: 1 (one side of the crest) or 2 px (both sides).
WALL_WIDTH_PX = 2
#: Between two basins both at least ``WALL_RIM_MIN_SIZE`` rim reaches deep (maximum distance to
#: their boundary), a crest is a wall only when it also rises above the higher of the two cores
#: by ``WALL_OF_RIM_FRACTION`` of the lower of the two basins' rim heights (the
#: ``WALL_RIM_QUANTILE`` length-weighted quantile of the crests each shares with its neighbours,
#: not the maximum: one bright junction or surface rim must not set it). A real wall stands about
#: as high as the cells' rims; a low crest between two large basins is shading or texture on the
#: floor of one larger pore, and a line there cut pores of 48-120 px into pieces (pore size
#: 13-57 % small at Dice 0.93-0.98). Smaller basins keep the rule above: near the resolution
#: limit rims merge and walls are as low as anything else. Measured 2026-12-05 (chosen among
#: fractions 0.25-0.65, quantiles 0.5-1, depths 0-1.5 on the sets below): 45 pipeline.synthetic
#: topographic phantoms of 24-120 px pores, mean pore-size error 0.186 -> 0.136 (29 better by more
#: than 0.02, 1 worse), Dice +0.004 (none lower), images missing a target 26 -> 20; the 24
#: topographic accuracy renderings of both families (3 seeds): Dice +0.0005, size error 0.144 ->
#: 0.141 (none worse by 0.02); 58 random topographic phantoms (seeds 12-119): Dice +0.0015 (worst
#: -0.0002), size error 0.105 -> 0.104 (6 worse, 8 better by more than 0.02).
WALL_OF_RIM_FRACTION = 0.5
WALL_RIM_QUANTILE = 0.9
WALL_RIM_MIN_SIZE = 1.5


def _basin_crest_quantile(a: np.ndarray, b: np.ndarray, crest: np.ndarray, length: np.ndarray,
                          n: int, q: float) -> np.ndarray:
    """Per basin (n), the length-weighted ``q`` quantile of the crests it shares with its
    neighbours (1.0: the highest); -inf for a basin without neighbours."""
    basin = np.concatenate([a, b]).astype(np.int64) - 1
    level = np.concatenate([crest, crest]).astype(np.float64)
    weight = np.concatenate([length, length]).astype(np.float64)
    out = np.full(n, -np.inf)
    if basin.size == 0:
        return out
    if q >= 1.0:
        np.maximum.at(out, basin, level)
        return out
    order = np.lexsort((level, basin))
    basin, level, weight = basin[order], level[order], weight[order]
    cum = np.cumsum(weight)
    start = np.searchsorted(basin, np.arange(n), side="left")
    end = np.searchsorted(basin, np.arange(n), side="right")
    has = end > start
    before = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
    total = cum[np.maximum(end - 1, 0)] - before
    target = before + q * total
    pos = np.searchsorted(cum, target, side="left")
    pos = np.clip(pos, start, np.maximum(end - 1, start))
    out[has] = level[pos[has]]
    return out


def _wall_lines(basins: dict, pore: np.ndarray, fraction: float) -> np.ndarray:
    """One-pixel polymer lines on the crests that separate two pore basins (closed-cell walls).

    Closed cells whose walls are thinner than the rim band show one bright crest between two
    cells; both cells' basins reach that crest, so without a line the two cells would merge into
    one pore (wrong pore count, connectivity and sizes). The line is drawn on the pixels of the
    crest's lower-numbered side that touch the other basin (one pixel wide, 4-connected cut).
    """
    labels = basins["labels"]
    pairs = basins["pairs"]
    lc = basins["core_level"]
    a, b = pairs["a"], pairs["b"]
    if a.size == 0:
        return np.zeros(labels.shape, bool)
    top = np.maximum(lc[a - 1], lc[b - 1])
    contrast = float(basins.get("crest_contrast", 0.0))
    height = pairs["crest"] - top
    wall = pore[a - 1] & pore[b - 1] & (height > fraction * contrast)
    if WALL_OF_RIM_FRACTION > 0:
        # a wall's crest stands about as high as the two cells' rims; a crest that rises to a
        # small part of that height is shading or texture on the floor of one larger pore
        rim_top = _basin_crest_quantile(a, b, pairs["crest"], pairs["length"], lc.size,
                                        WALL_RIM_QUANTILE)
        low = height <= WALL_OF_RIM_FRACTION * (np.minimum(rim_top[a - 1], rim_top[b - 1]) - top)
        if WALL_RIM_MIN_SIZE > 0:
            # max distance to the basin's boundary / rim reach
            size = np.exp(basins["features"][:, FEATURE_NAMES.index("log_size")]
                          .astype(np.float64))
            low &= np.minimum(size[a - 1], size[b - 1]) >= WALL_RIM_MIN_SIZE
        wall &= ~low
    if not wall.any():
        return np.zeros(labels.shape, bool)
    nmax = int(labels.max()) + 1
    wall_keys = np.unique(a[wall].astype(np.int64) * nmax + b[wall])
    pore_lut = np.zeros(nmax, bool)
    pore_lut[1:] = pore
    out = np.zeros(labels.shape, bool)
    for axis in (0, 1):
        l1 = labels[:-1] if axis == 0 else labels[:, :-1]
        l2 = labels[1:] if axis == 0 else labels[:, 1:]
        cand = (l1 != l2) & pore_lut[l1] & pore_lut[l2]
        r, c = np.nonzero(cand)
        v1, v2 = l1[r, c].astype(np.int64), l2[r, c].astype(np.int64)
        keys = np.minimum(v1, v2) * nmax + np.maximum(v1, v2)
        pos = np.minimum(np.searchsorted(wall_keys, keys), wall_keys.size - 1)
        hit = wall_keys[pos] == keys
        dr, dc = (1, 0) if axis == 0 else (0, 1)
        if WALL_WIDTH_PX >= 2:  # both pixels of every touching pair across the crest
            out[r[hit], c[hit]] = True
            out[r[hit] + dr, c[hit] + dc] = True
        else:  # the pixel that belongs to the lower label
            first = v1 < v2
            out[r[hit & first], c[hit & first]] = True
            out[r[hit & ~first] + dr, c[hit & ~first] + dc] = True
    return out





# ------------------------------------------------------------------------------------------------
# topographic method on the whole image, tile by tile


def _q_window(img: np.ndarray, offsets: np.ndarray, level: np.ndarray, f: int, sigma: float,
              r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """The flattened, smoothed image q = s / level on a window (equal to the whole image's)."""
    s = _smoothed_window(img, offsets, sigma, r0, r1, c0, c1)
    return s / _bilinear_window(level, f, r0, r1, c0, c1)


#: Side (px) of the windows on which :func:`local_pore_probability` calibrates the basin
#: features again. The classifier was trained on 384 px renderings, each calibrated on its own
#: basins; a whole membrane whose pores change size with depth has no single calibration that
#: fits all of it (its finest pores, normalised by the crest contrast and core levels of the
#: coarse ones, were read as polymer: random phantom 294, closed cells graded from 14 to 6 px,
#: porosity of the fine third 0.20 against 0.66 true). 256 px holds a few hundred basins of the
#: pore sizes the classifier knows. Measured 2026-12-07 (windows of 128-384 px; 58 random
#: topographic phantoms, seeds 12-119, and the accuracy kinds, 3 seeds): 192-384 px all helped,
#: 256 the most; see :func:`local_pore_probability` for the numbers.
LOCAL_CALIBRATION_PX = 256
#: A window is used only when it holds at least this many basins by area (the effective number
#: ``(sum a)**2 / sum a**2`` of basin areas ``a``: the calibration's quantiles are area-weighted,
#: and from fewer they are noise); basins no window covers keep the whole image's calibration.
#: Windows of 256 px held 7-50 on membranes of 48-144 px pores, whose mean pore size came out
#: 4 % smaller with them (sponge of 96 px: 0.91 -> 0.87 of the truth), 20-79 on the held-out
#: NIPS renderings (macrovoids in a sponge) and 57-450 on pores of 6-20 px (random phantom 294,
#: the accuracy kinds, the real Hitachi cross-section); so the windows also grow to hold this
#: many on average (:func:`local_window_px`): 96 px sponge 0.90, NIPS porosity MAE 0.056-0.066
#: -> 0.047-0.054 (0.056-0.063 with 256 px windows, most of them skipped).
LOCAL_CALIBRATION_MIN_BASINS = 50


def _window_starts(n: int, window: int) -> list[int]:
    """Starts of windows of ``window`` px at half-window steps covering ``0..n`` (the last one
    ends at ``n``)."""
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, max(1, window // 2)))
    if starts[-1] != n - window:
        starts.append(n - window)
    return starts


def _tent(n: int) -> np.ndarray:
    """Weights 1 at the centre of ``n`` pixels falling linearly toward (not to) 0 at both ends."""
    return 1.0 - np.abs(np.linspace(-1.0, 1.0, n + 2)[1:-1])


def _basins_by_area(area: np.ndarray) -> float:
    """Effective number of basins of areas ``area`` when each counts by its area:
    ``(sum a)**2 / sum a**2`` (n for equal areas, about 1 when one basin dominates)."""
    area = np.asarray(area, np.float64)
    squares = float(np.sum(area * area))
    return float(area.sum()) ** 2 / squares if squares > 0 else 0.0


def local_window_px(area: np.ndarray, min_basins: int | None = None,
                    window_px: int | None = None) -> int:
    """Side (px) of the calibration windows for an image whose basins have areas ``area`` (px):
    ``window_px`` (default :data:`LOCAL_CALIBRATION_PX`), or larger where that would hold fewer
    than ``min_basins`` (default :data:`LOCAL_CALIBRATION_MIN_BASINS`) basins by area on
    average (large pores): the side of the square that holds that many at the image's density
    of basins by area, ``(sum a)**2 / sum a**2`` per ``sum a``."""
    window_px = LOCAL_CALIBRATION_PX if window_px is None else int(window_px)
    min_basins = LOCAL_CALIBRATION_MIN_BASINS if min_basins is None else int(min_basins)
    total = float(np.sum(area))
    if total <= 0 or window_px <= 0:
        return window_px
    density = _basins_by_area(area) / total  # basins by area per px
    return int(max(window_px, round(math.sqrt(min_basins / density))))


def local_pore_probability(basins: dict, model: dict | None, region: np.ndarray, *,
                           dynamics_k: float = BASIN_DYNAMICS_K,
                           window_px: int | None = None,
                           min_basins: int | None = None,
                           origin: tuple[int, int] = (0, 0),
                           q_window: Callable[[int, int, int, int], np.ndarray] | None = None
                           ) -> np.ndarray:
    """Pore probability of every basin, its features calibrated on the windows around it.

    The basin features are contrasts and sizes normalised by an image-level calibration
    (typical crest contrast, median and spread of the core levels, rim reach). On a membrane
    whose pores change with depth that calibration is a mixture that fits none of its parts.
    Here the flattened image ``basins["q"]`` is cut into windows of ``window_px`` (half-window
    steps, so every pixel lies in up to four), each window's basins are found, calibrated on
    their own (crest contrast, core-level distribution; see below for what is kept) and
    classified; a basin's probability is the mean, over its pixels and the
    windows they lie in, of the window's probability for the pixel, weighted by a tent that
    falls toward each window's edge (where basins are cut). Windows are
    :data:`LOCAL_CALIBRATION_PX` wide, larger on an image of large pores (so that they hold on
    average ``min_basins`` basins by area, :func:`local_window_px`); a window holding fewer is
    skipped (see :data:`LOCAL_CALIBRATION_MIN_BASINS`), and a basin no window covers keeps its
    probability under the whole image's calibration.

    The windows keep the whole image's rim reach: with each window's own, the large basins of
    a dense skin's flat face, in the windows along the surface, read as pore (a 5 µm skin over
    topographic fingers measured 0.6 µm thick; ``tests/test_skin.py``). They keep its detector
    axis (the detector is one), and its dipole strength too when that is below
    ``DETECTOR_SHIFT_MIN_STRENGTH`` (no direction to speak of): on a few hundred basins of such
    an image the measured strength is sampling noise (the real Hitachi cross-section:
    0.005-0.012 on 384 px windows, 0.001 on the whole image), and with it the Hitachi
    cross-section lost 5 % porosity (3 of 33 cells marked by eye). Where the image has a
    direction, each window's own strength is used (on the random phantoms below: porosity
    target met on 54 of 58 images, 48 with the image's strength).

    Measured 2026-12-07 against the whole-image calibration (membrane from the pipeline, the
    shipped classifier): 58 random topographic phantoms (pipeline.synthetic.random_phantom
    seeds 12-119) Dice 0.862 -> 0.868 mean (16 better by more than 0.01, 6 worse), porosity
    MAE 0.036 -> 0.025 (within 0.05: 43 -> 52), pore-size error 0.105 -> 0.109, every target
    met 17 -> 21; random phantom 294 (graded closed cells) Dice 0.69 -> 0.78, porosity of the
    fine third 0.20 -> 0.55 (true 0.66); the topographic kinds of benchmarks/ACCURACY.md (3
    seeds each) Dice 0.899 -> 0.899 (4 better by more than 0.01, 3 worse by 0.016-0.023),
    porosity MAE 0.032 -> 0.029; the real Hitachi cross-section: porosity 0.775 -> 0.774, 33 of
    33 marked cells in a pore. With fixed 256 px windows (before they grew for large basins,
    which changes none of the random phantoms above) 68 more random phantoms (seeds 260-399):
    Dice 0.857 -> 0.861, porosity within 0.05: 55 -> 60, size error 0.088 -> 0.086. Windows of
    128, 192, 320 and 384 px (a first version that also took each window's own axis and reach)
    gave mean Dice within 0.005 of 256 px, 128 px fewer images within every target. The cost:
    about 4 times the classification and twice the watershed work (0.6-0.9 s more on the
    1280 x 960 Hitachi file).

    Parameters
    ----------
    basins : dict
        A partition with features (:func:`pipeline.segment._basins.basins_from_q`): ``labels``,
        ``n``, ``q``, ``noise_q``, ``calibration`` (the whole image's) and, for a model that reads
        them, ``image_features``.
    model : dict or None
        The trained basin classifier; None: the crest vote rule, which needs no calibration.
    region : ndarray of bool, shape (rows, cols)
        The membrane, on the whole frame the windows are laid on (the whole image).
    dynamics_k : float
        Basin merging, as for ``basins`` (noise sigmas).
    window_px, min_basins : int, optional
        See above; default :func:`local_window_px` of ``basins["area"]`` and
        :data:`LOCAL_CALIBRATION_MIN_BASINS` (read at call time); a tile passes the whole
        image's window. ``window_px`` 0: the whole image's calibration alone.
    origin : tuple of int
        Row and column in the frame of ``basins["labels"][0, 0]`` (a tile's corner): the windows
        are laid on the frame, so a tile's basins get the probabilities they get untiled.
    q_window : callable, optional
        ``q_window(r0, r1, c0, c1)``: the flattened image on that window of the frame (the
        tiles' :func:`_q_window`); default: cut from ``basins["q"]`` (``basins`` covering the
        whole frame).

    Returns
    -------
    ndarray of float, shape (n,)
        Pore probability of basins 1..n.
    """
    min_basins = LOCAL_CALIBRATION_MIN_BASINS if min_basins is None else int(min_basins)
    window_px = (local_window_px(basins["area"], min_basins) if window_px is None
                 else int(window_px))
    n = int(basins["n"])
    if model is None or n == 0 or window_px <= 0:
        return classify_basins(basins, model)
    labels = basins["labels"]
    if q_window is None:
        def q_window(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            return basins["q"][r0:r1, c0:c1]
    whole_cal = basins["calibration"]
    # the windows keep the image's rim reach and detector axis; its detector strength too when
    # the image has no direction to speak of (then a window's strength is sampling noise)
    strength = float(whole_cal["dipole_strength"])
    fixed = {"reach": whole_cal["reach"], "axis": whole_cal["axis"],
             "dipole_strength": strength if strength < DETECTOR_SHIFT_MIN_STRENGTH else None}
    rows, cols = region.shape
    o_r, o_c = int(origin[0]), int(origin[1])
    h, w = labels.shape
    wr, wc = min(window_px, rows), min(window_px, cols)
    tent = np.outer(_tent(wr), _tent(wc))
    num = np.zeros(n + 1)
    den = np.zeros(n + 1)
    for r0 in _window_starts(rows, wr):
        if r0 + wr <= o_r or r0 >= o_r + h:
            continue
        for c0 in _window_starts(cols, wc):
            if c0 + wc <= o_c or c0 >= o_c + w:
                continue
            b = basins_from_q(np.ascontiguousarray(q_window(r0, r0 + wr, c0, c0 + wc)),
                              np.ascontiguousarray(region[r0:r0 + wr, c0:c0 + wc]),
                              basins["noise_q"], dynamics_k=dynamics_k, fixed=fixed)
            if _basins_by_area(b["area"]) < min_basins:
                continue  # too few basins of weight for the area-weighted quantiles
            b["image_features"] = basins.get("image_features")
            p_lut = np.zeros(b["n"] + 1)
            p_lut[1:] = classify_basins(b, model)
            # the part of the window inside these basins' extent
            a0, a1 = max(r0, o_r), min(r0 + wr, o_r + h)
            b0, b1 = max(c0, o_c), min(c0 + wc, o_c + w)
            in_win = (slice(a0 - r0, a1 - r0), slice(b0 - c0, b1 - c0))
            window_labels = b["labels"][in_win]
            whole = labels[a0 - o_r:a1 - o_r, b0 - o_c:b1 - o_c]
            inside = (window_labels > 0) & (whole > 0)
            weight = tent[in_win][inside]
            num += np.bincount(whole[inside],
                               weights=weight * p_lut[window_labels[inside]], minlength=n + 1)
            den += np.bincount(whole[inside], weights=weight, minlength=n + 1)
    covered = den[1:] > 0
    local = num[1:] / np.maximum(den[1:], 1e-300)
    # basins no window covers (every window skipped): the whole image's calibration
    return local if covered.all() else np.where(covered, local, classify_basins(basins, model))


def _pores_of_basins(basins: dict, model: dict | None, det: dict | None = None,
                     probability: np.ndarray | None = None,
                     p: np.ndarray | None = None) -> np.ndarray:
    """Pore mask of a basin partition: the basins classified pore (``p``, their pore
    probabilities; default :func:`pipeline.segment._classifier.classify_basins`), less the wall
    lines. ``probability`` (float32, the labels' shape), when given, receives each pixel's basin
    pore probability (0 outside the basins)."""
    labels = basins["labels"]
    out = np.zeros(labels.shape, bool)
    if basins["n"] == 0:
        if probability is not None:
            probability[:] = 0.0
        return out
    if p is None:
        p = classify_basins(basins, model)
    plut = np.zeros(basins["n"] + 1)  # per label; 0 = outside the basins
    plut[1:] = p
    if probability is not None:
        probability[:] = plut[labels]
    pore = p > 0.5
    out = (plut > 0.5)[labels]
    if WALL_PASS_FRACTION > 0:
        walls = _wall_lines(basins, pore, WALL_PASS_FRACTION)
        out &= ~walls
        if det is not None:
            det["wall_line_pixels"] = det.get("wall_line_pixels", 0) + int(walls.sum())
    return out


#: How much more confident (area-weighted mean of ``|2 p - 1|``) the basin classifier must be
#: under the other sign of the detector axis for :func:`orient_detector_axis` to turn it.
DETECTOR_SIGN_MIN_GAIN = 0.01


def orient_detector_axis(basins: dict, model: dict | None) -> dict:
    """Choose the sign of the detector axis by the basin classifier's confidence.

    The calibration takes the detector axis from the basins' rim dipoles, and its sign from a
    vote (the rims of darker basins are brighter on the detector side); when the vote is wrong,
    the two dipole features point the other way and the classifier reads many pores as polymer
    (random phantom 45: Dice 0.53). The sign is a hidden variable of the image, so it is taken as
    the one under which the trained classifier is the more confident (area-weighted mean of
    ``|2 p - 1|``), and the axis and the basins' dipole features are turned over in place when
    that is the other sign. On 45 topographic renderings (21 random phantoms, 4 synthetic and 4
    held-out SE kinds x 3 seeds, true membrane masks; measured 2026-12-05) it turned the axis on
    two, both for the better (random 45: Dice 0.53 -> 0.87; held-out SE foam seed 2: +0.005);
    of the 43 it kept, the vote's sign was the better one on 41 (by 0.009-0.27 Dice) and the
    worse on two held-out foams with weak dipoles (strength 0.015-0.019; by 0.02 and 0.04).
    The other sign must be the more confident by at least ``DETECTOR_SIGN_MIN_GAIN``: where the
    dipoles are too weak to have a sign (strength 0.003 on a held-out sponge), the two
    confidences tie within 0.001-0.003 and removing one row of the region turned the axis, and
    with it a fifth of the basins (Dice 0.95 -> 0.83 against the truth). With the basin
    classifier of 2026-12-07 the gains on 99 topographic renderings (59 random phantoms, the 8
    topographic kinds of benchmarks/ACCURACY.md x 5 seeds) were 0.22 and 0.020 where it turned
    and below -0.002 elsewhere, so the margin changes none of them.

    Returns ``{"detector_axis_flipped": bool, "detector_sign_confidence": [kept, flipped]}``,
    empty without a model or basins.
    """
    cal = basins.get("calibration")
    if model is None or basins["n"] == 0 or not cal or cal.get("axis") is None:
        return {}
    cols = [FEATURE_NAMES.index("detector_dipole_rim"),
            FEATURE_NAMES.index("detector_dipole_floor")]
    weights = basins["area"]
    kept = float(np.average(np.abs(2.0 * classify_basins(basins, model) - 1.0), weights=weights))
    turned = basins["features"].copy()
    turned[:, cols] *= -1.0
    flipped = float(np.average(np.abs(2.0 * classify_basins({**basins, "features": turned},
                                                             model) - 1.0), weights=weights))
    flip = flipped > kept + DETECTOR_SIGN_MIN_GAIN
    if flip:
        basins["features"] = turned
        cal["axis"] = -np.asarray(cal["axis"])
    return {"detector_axis_flipped": bool(flip),
            "detector_sign_confidence": [round(kept, 4), round(flipped, 4)]}


#: Translation (px) of the topographic pore mask toward the side on which the image's pore rims
#: are brighter (the calibration's detector direction), applied when that direction is measured
#: (``detector_dipole_strength`` at least ``DETECTOR_SHIFT_MIN_STRENGTH``). The brighter rim and
#: the lit floor under it push the crest into the pore on that side and the shadowed side pushes
#: it out, so crest-bounded pores sit displaced away from the bright side. Both renderers here
#: show it (pipeline.synthetic and tests/heldout.py, written separately); on 45 topographic
#: renderings (21 random phantoms, 4 synthetic and 4 held-out SE kinds x 3 seeds; 2026-12-05) a
#: translation by 0.5 / 0.7 / 1.0 px changed Dice by +0.0055 / +0.0043 / +0.0026 on average on
#: the 41 with a measured direction (worst -0.008 / -0.038 / -0.038; closed cells +0.015 at 0.5
#: px, +0.03 at 1 px), porosity by -0.001; below 0.5 px no pixel moves. The two held-out foams
#: whose direction is too weak to trust (strength 0.010-0.015) are left alone by the threshold.
DETECTOR_SHIFT_PX = 0.5
DETECTOR_SHIFT_MIN_STRENGTH = 0.02


def translate_mask(mask: np.ndarray, dy: float, dx: float, band_rows: int = 1024) -> np.ndarray:
    """Translate a binary mask by a sub-pixel offset (rows ``dy``, columns ``dx``; |d| <= 2 px).

    The mask's signed distance (pixel centres, +0.5 px at the outermost inside pixels, -0.5 px
    at the first outside ones, so its zero is the pixel edge) is clipped to +-3 px, moved by
    bilinear interpolation and thresholded at 0 (> 0 is inside; a pixel landing exactly on 0
    takes the side it was not on, so a half-pixel shift along an axis moves that edge by one
    pixel and keeps the area); done in row bands with a halo, so memory stays a few bytes per
    pixel of one band.
    """
    rows, cols = mask.shape
    out = np.zeros((rows, cols), bool)
    halo = 8
    m_shift = np.float32([[1, 0, dx], [0, 1, dy]])
    for r0 in range(0, rows, band_rows):
        r1 = min(rows, r0 + band_rows)
        a0, a1 = max(0, r0 - halo), min(rows, r1 + halo)
        m8 = np.ascontiguousarray(mask[a0:a1], np.uint8)
        din = cv2.distanceTransform(m8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        dout = cv2.distanceTransform(1 - m8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        phi = np.clip(np.where(m8 > 0, din - 0.5, 0.5 - dout), -3.0, 3.0).astype(np.float32)
        del din, dout
        moved = cv2.warpAffine(phi, m_shift, (cols, a1 - a0), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)[r0 - a0:r1 - a0]
        # a crossing exactly half way (a shift of exactly half a pixel along an axis) moves the
        # edge: the pixel ahead joins, the one behind leaves, so the area is kept
        out[r0:r1] = (moved > 0) | ((moved == 0) & (phi[r0 - a0:r1 - a0] < 0))
    return out


def _shift_toward_detector(mask: np.ndarray, calibration: dict | None, details: dict) -> np.ndarray:
    """Translate a topographic pore mask by ``DETECTOR_SHIFT_PX`` toward the measured detector
    direction when it is measured (see :data:`DETECTOR_SHIFT_PX`); records the shift."""
    cal = calibration or {}
    axis = np.asarray(cal.get("axis", np.zeros(2)), np.float64)
    norm = float(np.hypot(*axis)) if axis.shape == (2,) else 0.0
    measured = norm > 0 and float(cal.get("dipole_strength", 0.0)) >= DETECTOR_SHIFT_MIN_STRENGTH
    details["detector_shift_px"] = DETECTOR_SHIFT_PX if measured else 0.0
    if not measured or DETECTOR_SHIFT_PX <= 0:
        return mask
    dy, dx = DETECTOR_SHIFT_PX * axis / norm
    moved = translate_mask(mask, dy, dx)
    # pixels that join must not join two pores (the 2-px wall lines between closed cells run in
    # every direction and a sub-pixel move thins some of them to nothing)
    return moved & ~_joins_two_pores(mask, moved, 3.0)


# ------------------------------------------------------------------------------------------------
# large topographic pores: coarse levels


#: Downsampling factors at which :func:`fill_large_pores` re-segments a topographic image.
LARGE_PORE_LEVELS = (2, 4, 8)
#: Inscribed diameter (coarse px) from which a pore found at a coarse level is used: inside the
#: range of pore sizes the basin classifier was trained on (4-48 px), and at the size (48 px at
#: level 2) from which the full-resolution partition starts to cut pores (bench_scale.py).
LARGE_PORE_MIN_DIAMETER_PX = 24.0
#: Only pixels at least this deep (coarse px) inside a coarse pore are filled: its boundary stays
#: the full-resolution one.
LARGE_PORE_MARGIN_PX = 1.5
#: Smallest side (px) of a coarse image worth segmenting.
LARGE_PORE_MIN_SIDE_PX = 128
#: A coarse level is segmented only when pores of at least ``LARGE_PORE_MIN_DIAMETER_PX``
#: inscribed diameter hold at least this share of the pore area found at the level before it (the
#: area their inscribed discs cover). Measured (topographic phantoms, 768 x 1024): 0.00-0.05 in
#: membranes of 12 px pores at porosity 0.15-0.25, whose polymer face, dotted with pores below the
#: coarse resolution, a coarse level read as one large pore (Dice 0.92 -> 0.46 on one); 0.20-0.26
#: with finger-like macrovoids in a 8 px sponge, 0.86-0.91 with 96-144 px pores.
LARGE_PORE_MIN_AREA_SHARE = 0.1
#: A coarse pore that lines the membrane's outline (next to the background, not the frame) over
#: more than this many times its inscribed diameter, and whose interior the full-resolution mask
#: calls pore on less than ``LARGE_PORE_SKIN_MAX_PORE_FRACTION``, is a layer along the surface (a
#: dense skin, flat like a pore floor), not a pore, and is not filled. Measured: 2-6 µm skins over
#: macrovoids 5.4-15.5 times, 0.17-0.20 pore (84-97 % of the skin was filled); pores of 48-288 px
#: lining the outline more than 4 times: 0.76-0.99 pore; pores at most 0.26 pore: 2.3 times.
LARGE_PORE_MAX_OUTLINE_CONTACT = 4.0
LARGE_PORE_SKIN_MAX_PORE_FRACTION = 0.5
#: Quantile of the grey levels on a coarse pore's boundary taken as the height of its rim.
LARGE_PORE_RIM_QUANTILE = 0.9


def _downsample(img: np.ndarray, region: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and region reduced ``f`` times by area averaging (the last rows and columns that do
    not fill an f x f block are dropped); a coarse pixel is in the region when most of its block
    is."""
    h, w = img.shape[0] // f, img.shape[1] // f
    small = cv2.resize(np.ascontiguousarray(img[:h * f, :w * f], np.float32), (w, h),
                       interpolation=cv2.INTER_AREA)
    sreg = cv2.resize(np.ascontiguousarray(region[:h * f, :w * f], np.float32), (w, h),
                      interpolation=cv2.INTER_AREA) > 0.5
    return small, sreg


def _distance_inside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px, float32) of each True pixel to the nearest False pixel, the
    image frame counting as False (a pore cut by the frame is no wider than what is seen)."""
    return cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2,
                                 cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def _wide_pore_share(mask: np.ndarray, min_diameter_px: float,
                     inside: np.ndarray | None = None) -> float:
    """Share of the pore pixels of ``mask`` covered by discs of diameter ``min_diameter_px`` that
    fit inside it (its opening by that disc): how much of the pore area lies in wide pores.
    ``inside``: ``_distance_inside(mask)`` when the caller has it already."""
    n_pore = int(np.count_nonzero(mask))
    if n_pore == 0:
        return 0.0
    radius = float(min_diameter_px) / 2.0
    centres = (_distance_inside(mask) if inside is None else inside) >= radius
    if not centres.any():
        return 0.0
    k = 2 * int(math.ceil(radius)) + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    covered = cv2.dilate(centres.astype(np.uint8), disc).astype(bool) & mask
    return float(np.count_nonzero(covered)) / n_pore


def _upsample(a: np.ndarray, f: int) -> np.ndarray:
    """Nearest-neighbour enlargement by the integer factor ``f``."""
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)


def _fill_one_pore(img: np.ndarray, region: np.ndarray, out: np.ndarray, inner: np.ndarray,
                   ring: np.ndarray, wall_fraction: float, sigma_px: float) -> int:
    """Fill, inside ``inner`` (one coarse pore's interior, full resolution, crop of ``out``),
    the polymer components of ``out`` whose median grey level (Gaussian ``sigma_px``) stays
    below ``floor + wall_fraction * (rim - floor)``: floor = median of the pore pixels of
    ``out`` in ``inner``, rim = ``LARGE_PORE_RIM_QUANTILE`` of ``ring`` (its boundary).
    Modifies ``out`` in place; returns the number of pixels filled."""
    sm = cv2.GaussianBlur(img, (0, 0), sigma_px)
    inner = inner & region
    on_floor = inner & out
    ring = ring & region
    if np.count_nonzero(on_floor) < 16 or np.count_nonzero(ring) < 16:
        return 0
    floor = float(np.median(sm[on_floor]))
    rim = float(np.quantile(sm[ring], LARGE_PORE_RIM_QUANTILE))
    if rim <= floor:
        return 0  # no bright rim: not a topographic pore, nothing to judge walls by
    cand = inner & ~out
    n, lab = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0
    level = ndi.median(sm, lab, np.arange(1, n))
    fill = np.zeros(n, bool)
    fill[1:] = np.asarray(level) < floor + wall_fraction * (rim - floor)
    add = fill[lab]
    out |= add
    return int(np.count_nonzero(add))


def fill_large_pores(image: np.ndarray, region: np.ndarray, mask: np.ndarray,
                     pixel_size_um: float | None = None, *,
                     levels: tuple[int, ...] = LARGE_PORE_LEVELS,
                     min_diameter_px: float = LARGE_PORE_MIN_DIAMETER_PX,
                     margin_px: float = LARGE_PORE_MARGIN_PX,
                     wall_fraction: float | None = None,
                     min_side_px: int = LARGE_PORE_MIN_SIDE_PX,
                     min_area_share: float = LARGE_PORE_MIN_AREA_SHARE
                     ) -> tuple[np.ndarray, dict]:
    """Fill the interiors of topographic pores too large for the full-resolution partition.

    The basin classifier was trained on pores of 4-48 px. In larger pores the shaded floor
    breaks into several basins; some of them, and the low crests between them (wall lines), are
    labelled polymer, which cuts the pore into pieces: at 96 px the mean local thickness came out
    18-47 % small at Dice 0.91-0.96 (``benchmarks/bench_scale.py``). The image is therefore
    segmented again (``method="topographic"``) reduced by each factor of ``levels`` (area
    averaging, pixel size times the factor), where such pores fall inside the trained range. For
    each coarse pore whose inscribed diameter is at least ``min_diameter_px`` coarse px, the
    polymer components of ``mask`` inside its interior (deeper than ``margin_px`` coarse px, so
    the boundary stays the full-resolution one) become pore unless they are bright like a wall:
    their median grey level (Gaussian 1 px) at least ``wall_fraction`` of the way from the pore's
    floor (median of its pore pixels) to its rim (``LARGE_PORE_RIM_QUANTILE`` of the grey levels
    on its boundary). A real wall between two pores that the coarse level merged is a crest as
    high as the rims and stays.

    Parameters
    ----------
    image : ndarray of float, shape (rows, cols)
    region : ndarray of bool, shape (rows, cols)
        The membrane (pores are only filled inside it).
    mask : ndarray of bool, shape (rows, cols)
        Full-resolution topographic pore mask.
    pixel_size_um : float, optional
        Passed on (times the factor) to the coarse segmentations.
    levels : tuple of int
        Downsampling factors, in increasing order. A level is skipped, with those after it, when
        its image side would fall below ``min_side_px`` or when, at the level before it
        (``mask`` for the first), pores of at least ``min_diameter_px`` of its own pixels
        inscribed diameter hold less than ``min_area_share`` of the pore area (so an image of
        small pores costs one distance transform, and a few wide pores among many small ones do
        not send a face dotted with pores below the coarse resolution to a level that reads it
        as one large pore).
    min_diameter_px, margin_px : float
        In coarse px, see above.
    wall_fraction : float, optional
        Default :data:`WALL_OF_RIM_FRACTION` (the same rule the full-resolution wall lines
        follow).
    min_side_px : int
    min_area_share : float
        See ``levels``; default :data:`LARGE_PORE_MIN_AREA_SHARE`.

    Returns
    -------
    mask : ndarray of bool
        ``mask`` with the filled pixels (a new array).
    info : dict
        Per level used: ``factor``, ``large_pores`` (coarse pores used), ``filled_px``.
    """
    from . import segment_pores  # the package's entry point; it imports this module
    wall_fraction = WALL_OF_RIM_FRACTION if wall_fraction is None else float(wall_fraction)
    img = np.asarray(image, np.float32)
    out = np.array(mask, bool)
    info: list[dict] = []
    # a level is segmented only when wide pores (min_diameter_px of the level before it, the
    # full-resolution mask first) hold a real share of the pore area: without them no larger
    # pores are there
    prev_share = _wide_pore_share(out, min_diameter_px)
    for f in (int(v) for v in levels):
        if min(img.shape) // f < min_side_px or prev_share < float(min_area_share):
            break
        small, sreg = _downsample(img, region, f)
        if not sreg.any():
            break
        coarse = segment_pores(small, sreg, None if pixel_size_um is None else pixel_size_um * f,
                               method="topographic", large_pores=False).mask
        dt = _distance_inside(coarse)
        n, lab = cv2.connectedComponents(coarse.astype(np.uint8), connectivity=4)
        if n <= 1:
            break
        inscribed = 2.0 * np.asarray(ndi.maximum(dt, lab, np.arange(n)))
        inscribed[0] = 0.0
        prev_share = _wide_pore_share(coarse, min_diameter_px, dt)
        large = inscribed >= float(min_diameter_px)
        filled = 0
        h, w = coarse.shape
        # pixels next to the outside of the membrane (not the frame)
        by_outline = cv2.dilate((~sreg).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        outline_contact = np.bincount(lab[by_outline & coarse], minlength=n)
        for k, sl in enumerate(ndi.find_objects(np.where(large[lab], lab, 0)), start=1):
            if sl is None:
                continue
            r0, r1 = max(0, sl[0].start - 1), min(h, sl[0].stop + 1)
            c0, c1 = max(0, sl[1].start - 1), min(w, sl[1].stop + 1)
            pore = lab[r0:r1, c0:c1] == k
            d = dt[r0:r1, c0:c1]
            inner = pore & (d >= float(margin_px))
            if outline_contact[k] > LARGE_PORE_MAX_OUTLINE_CONTACT * inscribed[k]:
                # a layer along the surface: a pore only if the full-resolution mask mostly
                # says so (a dense skin is flat like a pore floor and reads as one pore here)
                fine_inner = _upsample(inner, f) & region[r0 * f:r1 * f, c0 * f:c1 * f]
                fine_pore = out[r0 * f:r1 * f, c0 * f:c1 * f][fine_inner]
                if fine_pore.size == 0 or fine_pore.mean() < LARGE_PORE_SKIN_MAX_PORE_FRACTION:
                    continue
            ring = (cv2.dilate(pore.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                    & ~(pore & (d >= 1.5)))
            fr = slice(r0 * f, r1 * f)
            fc = slice(c0 * f, c1 * f)
            filled += _fill_one_pore(img[fr, fc], region[fr, fc], out[fr, fc],
                                     _upsample(inner, f), _upsample(ring, f), wall_fraction, 1.0)
        info.append({"factor": f, "large_pores": int(np.count_nonzero(large)),
                     "filled_px": filled})
    return out, {"levels": info}


#: Tiles: an image with more pixels than this is segmented in tiles (``max_untiled_px``).
MAX_UNTILED_PX = 12_000_000
#: Side of a tile's core (px); each tile is processed with an overlap on every side.
TILE_PX = 2048


def _tile_overlap_px(sample: dict, model: dict | None) -> int:
    """Overlap of the topographic tiles: three times the largest pore basin of the sample
    (equivalent-circle diameter), at least 32 px, at most 1024 px."""
    if sample["n"] == 0:
        return 32
    pore = classify_basins(sample, model) > 0.5
    area = sample["area"][pore] if pore.any() else sample["area"]
    largest = 2.0 * math.sqrt(float(area.max()) / math.pi)
    return int(np.clip(math.ceil(3.0 * largest), 32, 1024))


def _segment_topographic_full(img, reg, offsets, level, f, sigma, nq, dynamics_k, sample,
                              whole_sample, model, tile_px, overlap, out, det,
                              probability=None) -> int:
    """Classify the basins of every tile (overlap on every side; the core of each tile is taken
    from it) into ``out`` (and their pore probabilities into ``probability`` when given).
    Returns the number of tiles."""
    rows, cols = img.shape
    cal = sample["calibration"]
    window = local_window_px(sample["area"])
    det["local_calibration_px"] = int(window)
    if tile_px is None:
        if whole_sample:  # the sample is the whole image: its basins are the image's
            p = local_pore_probability(sample, model, reg, dynamics_k=dynamics_k,
                                       window_px=window)
            out[:] = _pores_of_basins(sample, model, det, probability, p)
            det["n_basins"] = int(sample["n"])
            return 1
        tile_px = max(rows, cols)
    n_tiles = 0
    n_basins = 0
    for r0 in range(0, rows, tile_px):
        r1 = min(rows, r0 + tile_px)
        for c0 in range(0, cols, tile_px):
            c1 = min(cols, c0 + tile_px)
            e0, e1 = max(0, r0 - overlap), min(rows, r1 + overlap)
            g0, g1 = max(0, c0 - overlap), min(cols, c1 + overlap)
            q = _q_window(img, offsets, level, f, sigma, e0, e1, g0, g1)
            b = basins_from_q(q, reg[e0:e1, g0:g1], nq, dynamics_k=dynamics_k, calibration=cal)
            b["image_features"] = sample.get("image_features")
            del q
            tile_p = None if probability is None else np.zeros((e1 - e0, g1 - g0), np.float32)
            p = local_pore_probability(
                b, model, reg, dynamics_k=dynamics_k, window_px=window, origin=(e0, g0),
                q_window=lambda r0, r1, c0, c1: _q_window(img, offsets, level, f, sigma,
                                                          r0, r1, c0, c1))
            pores = _pores_of_basins(b, model, det, tile_p, p)
            out[r0:r1, c0:c1] = pores[r0 - e0:r1 - e0, c0 - g0:c1 - g0]
            if probability is not None:
                probability[r0:r1, c0:c1] = tile_p[r0 - e0:r1 - e0, c0 - g0:c1 - g0]
            n_tiles += 1
            n_basins += int(b["n"])
            del b, pores
    det["n_basins"] = n_basins
    return n_tiles


def topographic_basins(image: np.ndarray, region: np.ndarray, *,
                       smoothing_px: float = BASIN_SMOOTHING_PX,
                       background_px: float | None = None,
                       dynamics_k: float = BASIN_DYNAMICS_K) -> dict:
    """Flatten, smooth, cut into crest-bounded basins and describe each basin (the whole image
    calibrates itself). Used by tools/train_segmenter.py and for diagnostics.

    Returns a dict with ``labels`` (int32, 0 outside), ``features`` (n x len(FEATURE_NAMES)),
    ``area`` (px), ``pairs``, ``q`` (the flattened image), ``calibration`` and diagnostics.
    Feature definitions are scale-free (contrasts are divided by the image's typical crest
    contrast, sizes by the measured rim reach).
    """
    img, reg = _check_inputs(image, region, None)
    prep = _prepare(img, reg, whole=True)
    basins = _sample_basins(img, reg, prep, smoothing_px, background_px, dynamics_k)
    basins.update(sample_region=prep["sample_reg"], sample_image=prep["sample_img"],
                  image_features=contrast_features(basins, prep["sample_reg"]))
    return basins


def _prepare(img: np.ndarray, reg: np.ndarray, whole: bool = False) -> dict:
    """Image-level pre-processing shared by both methods: scan-line offsets, the sample
    windows and the sample's scan-line corrected grey values and noise."""
    offsets = scan_line_offsets(img, reg)
    windows = [(0, img.shape[0], 0, img.shape[1])] if whole else sample_windows(reg)
    sample_img, sample_reg = _sample(img, reg, offsets, windows)
    noise = estimate_noise_sigma(sample_img, sample_reg)
    return {"offsets": offsets, "windows": windows, "sample_img": sample_img,
            "sample_reg": sample_reg, "noise": noise,
            "whole_sample": windows == [(0, img.shape[0], 0, img.shape[1])]}


def _sample_basins(img, reg, prep, smoothing_px, background_px, dynamics_k) -> dict:
    """Level grid, noise of q and the self-calibrated basins of the sample windows."""
    bg_px = background_px or max(img.shape) / 6
    level, f, med_level = level_grid(img, reg, prep["offsets"], bg_px)
    nq = _noise_q(prep["noise"], med_level, smoothing_px)
    parts = [_q_window(img, prep["offsets"], level, f, smoothing_px, *w)
             for w in prep["windows"]]
    q = _stitch(parts, 0.0)
    basins = basins_from_q(q, prep["sample_reg"], nq, dynamics_k=dynamics_k)
    basins.update(level=level, level_block_px=f, med_level=med_level, background_px=bg_px,
                  noise_sigma=prep["noise"], smoothing_px=smoothing_px)
    return basins
