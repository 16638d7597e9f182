"""Asymmetry of a membrane: internal minimum-pore layers, pore-size gradients, criteria.

The depth profile of the mean local pore size is measured in thin depth bins and smoothed
(kernel regression); its uncertainty comes from a **strip bootstrap**: the membrane is cut into
``n_strips`` strips across the surface (column strips for a horizontal membrane) and strips are
resampled with replacement. Per-strip, per-bin sums are computed once; a bootstrap replicate is a
weighted sum of them (``weights @ sums``), so 200 replicates cost a few small matrix products.

``kind`` is decided by tests on that bootstrap (definitions in ``docs/structure.md``):

* **internal_minimum** -- a simultaneous (max-t) band of the log pore-size profile shows a depth
  whose upper band lies below the lower band at some shallower depth AND at some deeper depth,
  and the profile rises at least ``1 + tolerance`` times above the minimum on both sides (the
  minimum layer, as defined by the tolerance, is closed on both sides, so a skin at depth 0 is
  never an internal minimum).
* **gradient** -- the log-linear trend of the profile over the measured depth, or the mean pore
  size of the surface zone (depth 0 to d/16) against the rest of the membrane, changes with a
  bootstrap p-value below ``alpha`` and an effect at least as large as a log-linear gradient with
  an end-to-end ratio of ``min_gradient_ratio`` (1.5). The surface-zone ratio is compared with
  what pores cut by a surface give in a uniform membrane, measured on the membrane's own interior
  by cutting it artificially (see :func:`_cut_calibration`).
* **symmetric** otherwise.

Public functions take plain arrays with units: :func:`structure_and_criteria` (both blocks and
the band in one pass), :func:`classify_profile`, :func:`membrane_criteria`, :func:`strip_sums`,
:func:`bootstrap_weights`; :func:`analyze_structure` is the adapter
:func:`pipeline.analysis.analyze` calls. All statistics are written by hand over numpy/scipy
(vectorised over replicates); no library offers a strip bootstrap of ratio profiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.special import ndtri

from .profile import (
    RESOLUTION_MARGIN,
    resolution_limited_ranges_um,
    skin_thickness_px,
    surface_layer_porosity,
    true_runs,
)

if TYPE_CHECKING:  # pragma: no cover
    from .analysis import Analysis

KINDS = ("symmetric", "gradient", "internal_minimum")

#: Smallest fitted end-to-end pore-size ratio (deep end / surface end, or its inverse) that counts
#: as a gradient: the pore size must change by at least 50 % through the measured depth.
MIN_GRADIENT_RATIO = 1.5

#: Columns of the profile band copied (at most 200 rows) into ``structure["profile_band"]``.
BAND_JSON_COLUMNS = ("depth_um", "pore_size_um", "pore_size_lo_um", "pore_size_hi_um",
                     "pore_size_simultaneous_lo_um", "pore_size_simultaneous_hi_um")

#: Quantile of the local thickness of the pore pixels reported as the "maximum" pore size.
MAX_QUANTILE = 0.99

#: The surface zone is the depth range 0 .. d / ZONE_DIVISOR (d = thickness).
ZONE_DIVISOR = 16

#: Without an interior calibration of cut pores (no room for it) the surface-zone test of
#: ``kind`` needs a zone at least this many typical pore sizes thick (thinner zones hold mostly
#: pores cut by the surface, whose local size is biased low by 10-20 %).
MIN_ZONE_PORES = 2.0

#: Artificial cuts through the interior that calibrate the cut-pore bias of the surface zone.
CALIBRATION_CUTS = 3


class StructureError(ValueError):
    """The arrays given cannot be analysed (one-line reason)."""


# --------------------------------------------------------------------------------------------
# membrane pixels and per-strip sums


@dataclass
class StripSums:
    """Membrane pixel, pore pixel and local-size sums per strip and depth bin.

    Attributes
    ----------
    edges_um : ndarray, shape (n_bins + 1,)
        Depth-bin edges in µm (bin ``b`` is ``[edges[b], edges[b + 1])``).
    n_membrane, n_pore : ndarray of float64, shape (n_strips, n_bins)
        Pixel counts.
    size_sum_um : ndarray of float64, shape (n_strips, n_bins)
        Sum of the local pore size (diameter, µm) over the pore pixels.
    """

    edges_um: np.ndarray
    n_membrane: np.ndarray
    n_pore: np.ndarray
    size_sum_um: np.ndarray

    @property
    def depth_um(self) -> np.ndarray:
        """Bin centres in µm."""
        return 0.5 * (self.edges_um[:-1] + self.edges_um[1:])


@dataclass
class _Pixels:
    """Membrane pixels flattened: depth (µm), strip, pore flag; local size (µm) of the pores."""

    depth_um: np.ndarray
    strip: np.ndarray
    pore: np.ndarray
    pore_size_um: np.ndarray
    n_strips: int


def _check_inputs(pore_mask: np.ndarray, membrane_mask: np.ndarray, depth_px: np.ndarray,
                  local_thickness_px: np.ndarray, pixel_size_um: float) -> None:
    shapes = {np.shape(a) for a in (pore_mask, membrane_mask, depth_px, local_thickness_px)}
    if len(shapes) != 1:
        raise StructureError("pore_mask, membrane_mask, depth_px and local_thickness_px must "
                             f"have the same shape, got {sorted(shapes)}")
    if np.ndim(pore_mask) != 2:
        raise StructureError(f"expected 2-D arrays, got shape {np.shape(pore_mask)}")
    if not (isinstance(pixel_size_um, (int, float, np.floating)) and
            math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise StructureError(f"pixel_size_um must be a positive number, got {pixel_size_um!r}")


def _membrane_pixels(pore_mask: np.ndarray, membrane_mask: np.ndarray, depth_px: np.ndarray,
                     local_thickness_px: np.ndarray, pixel_size_um: float, n_strips: int,
                     along_axis: int) -> _Pixels:
    if along_axis not in (0, 1):
        raise StructureError(f"along_axis must be 0 or 1, got {along_axis}")
    depth_px = np.asarray(depth_px)
    inside = np.asarray(membrane_mask, bool) & np.isfinite(depth_px)
    if not inside.any():
        raise StructureError("no membrane pixel with a finite depth")
    n_along = inside.shape[along_axis]
    if not 2 <= n_strips <= n_along:
        raise StructureError(f"n_strips must be between 2 and {n_along} (the membrane length in "
                             f"px), got {n_strips}")
    strip_of = (np.arange(n_along) * n_strips // n_along).astype(np.int32)
    strip_map = (np.broadcast_to(strip_of[None, :], inside.shape) if along_axis == 1
                 else np.broadcast_to(strip_of[:, None], inside.shape))
    pore_2d = np.asarray(pore_mask, bool) & inside
    pore = pore_2d[inside]
    # float32 per-pixel arrays (sums are taken in float64): 4 bytes a pixel, not 8
    size = np.asarray(local_thickness_px)[pore_2d].astype(np.float32)
    if not np.all(np.isfinite(size)):
        raise StructureError("local_thickness_px is not finite inside the membrane (a pore mask "
                             "covering the whole frame has no finite pore size)")
    size *= np.float32(pixel_size_um)
    depth_um = depth_px[inside].astype(np.float32)
    depth_um *= np.float32(pixel_size_um)
    return _Pixels(depth_um=depth_um, strip=strip_map[inside], pore=pore, pore_size_um=size,
                   n_strips=n_strips)


def _strip_sums(pix: _Pixels, edges_um: np.ndarray) -> StripSums:
    n_bins = edges_um.size - 1
    width = float(edges_um[1] - edges_um[0])
    size = pix.n_strips * n_bins
    shape = (pix.n_strips, n_bins)
    index_type = np.int32 if size < 2**31 else np.int64
    # bin index in place of a float32 copy: no full-length int64 or float64 temporaries
    flat = (pix.depth_um / np.float32(width)).astype(index_type)
    np.minimum(flat, n_bins - 1, out=flat)
    flat += pix.strip.astype(index_type) * index_type(n_bins)
    n_membrane = np.bincount(flat, minlength=size).reshape(shape).astype(np.float64)
    pore_flat = flat[pix.pore]
    del flat
    n_pore = np.bincount(pore_flat, minlength=size).reshape(shape).astype(np.float64)
    sums = np.zeros(size, np.float64)
    chunk = 1 << 22  # bincount makes float64 weights: in chunks
    for start in range(0, pore_flat.size, chunk):
        sums += np.bincount(pore_flat[start:start + chunk],
                            weights=pix.pore_size_um[start:start + chunk], minlength=size)
    sums = sums.reshape(shape)
    return StripSums(edges_um=edges_um, n_membrane=n_membrane, n_pore=n_pore, size_sum_um=sums)


def strip_sums(
    pore_mask: np.ndarray,
    membrane_mask: np.ndarray,
    depth_px: np.ndarray,
    local_thickness_px: np.ndarray,
    pixel_size_um: float,
    *,
    bin_width_um: float,
    n_strips: int = 16,
    along_axis: int = 1,
    max_depth_um: float | None = None,
) -> StripSums:
    """Per-strip, per-depth-bin pixel counts and local-size sums.

    Parameters
    ----------
    pore_mask, membrane_mask : ndarray of bool, shape (rows, cols)
    depth_px : ndarray of float, shape (rows, cols)
        Distance below the reference surface in px, NaN outside the membrane.
    local_thickness_px : ndarray of float, shape (rows, cols)
        Local pore diameter in px (0 outside pores).
    pixel_size_um : float
    bin_width_um : float
    n_strips : int
        Number of strips the membrane is cut into along ``along_axis``.
    along_axis : int
        Image axis running along the membrane: 1 (columns) for a horizontal membrane, 0 for a
        vertical one.
    max_depth_um : float, optional
        Deepest bin edge (default: the deepest membrane pixel); deeper pixels join the last bin.

    Returns
    -------
    StripSums
    """
    _check_inputs(pore_mask, membrane_mask, depth_px, local_thickness_px, pixel_size_um)
    if not bin_width_um > 0:
        raise StructureError(f"bin_width_um must be > 0, got {bin_width_um}")
    pix = _membrane_pixels(pore_mask, membrane_mask, depth_px, local_thickness_px,
                           float(pixel_size_um), n_strips, along_axis)
    deepest = float(pix.depth_um.max()) if max_depth_um is None else float(max_depth_um)
    n_bins = max(1, int(math.ceil(deepest / bin_width_um - 1e-9)))
    return _strip_sums(pix, np.arange(n_bins + 1) * float(bin_width_um))


def bootstrap_weights(n_strips: int, n_bootstrap: int, seed: int = 0) -> np.ndarray:
    """Strip-resampling weights: row ``b`` counts how often each strip is drawn in replicate b.

    Returns
    -------
    ndarray of float64, shape (n_bootstrap, n_strips)
        Multinomial counts summing to ``n_strips`` per row.
    """
    if n_bootstrap < 20:
        raise StructureError(f"n_bootstrap must be at least 20, got {n_bootstrap}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_strips, np.full(n_strips, 1.0 / n_strips),
                           size=n_bootstrap).astype(np.float64)


# --------------------------------------------------------------------------------------------
# zones (surface zone 0..d/16, the rest, opposite zone)


@dataclass
class _Zones:
    """Per-strip sums over the surface zone, the rest (interior) and the opposite zone."""

    d_um: float
    zone_um: float
    n_membrane: np.ndarray  # (n_strips, 3): surface, interior, opposite
    n_pore: np.ndarray
    size_sum_um: np.ndarray
    opposite_in_view: bool


def _zone_sums(sums: StripSums, bins_per_zone: int, d_um: float, opposite_in_view: bool
               ) -> _Zones:
    """Zone sums from strip sums whose bin edges fall on d/16 (``bins_per_zone`` bins a zone).

    Surface zone: depth [0, d/16); interior: the rest (deeper pixels included); opposite zone:
    depth >= d - d/16 (pixels beyond d included), only when the opposite surface is in view.
    """
    k = bins_per_zone
    n_bins = sums.n_pore.shape[1]
    first_opp = min(n_bins - 1, (ZONE_DIVISOR - 1) * k)

    def split(a: np.ndarray) -> np.ndarray:
        opp = a[:, first_opp:].sum(1) if opposite_in_view else np.zeros(a.shape[0])
        return np.column_stack([a[:, :k].sum(1), a[:, k:].sum(1), opp])

    return _Zones(d_um=d_um, zone_um=d_um / ZONE_DIVISOR, n_membrane=split(sums.n_membrane),
                  n_pore=split(sums.n_pore), size_sum_um=split(sums.size_sum_um),
                  opposite_in_view=opposite_in_view)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _ci(values: np.ndarray, alpha: float) -> list[float] | None:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return [float(q) for q in np.quantile(v, [alpha / 2, 1 - alpha / 2])]


def _p_two_sided(values: np.ndarray) -> float:
    """Percentile-bootstrap two-sided p-value of 'the statistic is 0' (log scale)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1.0
    frac = float(np.mean(v > 0))
    return float(min(1.0, 2 * min(frac, 1 - frac) + 1.0 / (v.size + 1)))


def _zone_ratio_distribution(zones: _Zones, weights: np.ndarray
                             ) -> tuple[float, np.ndarray, float, np.ndarray]:
    """log(surface mean / interior mean) and its bootstrap replicates; same for porosity."""
    size = _ratio(zones.size_sum_um.sum(0), zones.n_pore.sum(0))
    size_b = _ratio(weights @ zones.size_sum_um, weights @ zones.n_pore)
    por = _ratio(zones.n_pore.sum(0), zones.n_membrane.sum(0))
    por_b = _ratio(weights @ zones.n_pore, weights @ zones.n_membrane)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (float(np.log(size[0] / size[1])), np.log(size_b[:, 0] / size_b[:, 1]),
                float(np.log(por[0] / por[1])), np.log(por_b[:, 0] / por_b[:, 1]))


@dataclass
class _CutCalibration:
    """Per-strip local-size sums over the pore pixels of a zone-thick band right below artificial
    cuts through the interior: after the cut (``cut``) and before it (``orig``)."""

    cut: np.ndarray  # (n_strips,)
    orig: np.ndarray  # (n_strips,)
    depths_um: list[float]

    @property
    def ratio(self) -> float:
        total = self.orig.sum()
        return float(self.cut.sum() / total) if total > 0 else 1.0


def _cut_calibration(pore_mask: np.ndarray, membrane_mask: np.ndarray, depth_px: np.ndarray,
                     local_thickness_px: np.ndarray, pixel_size_um: float, zone_um: float,
                     n_strips: int, along_axis: int, n_cuts: int = CALIBRATION_CUTS
                     ) -> _CutCalibration | None:
    """How much a surface lowers the mean local size of a zone: cut the interior artificially.

    A surface cuts the pores that straddle it, and a cut pore's local thickness is smaller, so
    even a uniform membrane has a smaller mean size in the surface zone than in the rest. This
    measures that on the membrane's own interior: at ``n_cuts`` depths, everything shallower
    than the cut becomes wall, the local thickness (:func:`pipeline.size.local_thickness`) is
    recomputed in a crop around the cut, and the mean over the pore pixels of a zone-thick band
    below the cut is compared with its value before the cut. None when the interior has no room
    (a zone, plus twice the largest pore size, below the surface zone and above the far end).
    """
    from .size import local_thickness

    depth = np.asarray(depth_px)
    inside = np.asarray(membrane_mask, bool) & np.isfinite(depth)
    pore = np.asarray(pore_mask, bool) & inside
    lt = np.asarray(local_thickness_px)
    sizes = lt[pore]
    if sizes.size == 0:
        return None
    reach = float(np.quantile(sizes, 0.999)) + 2.0
    zone_px = zone_um / pixel_size_um
    deepest = float(depth[inside].max())
    lo, hi = max(zone_px, reach), deepest - zone_px - 2 * reach
    if hi < lo:
        return None
    n_along = inside.shape[along_axis]
    strip_of = (np.arange(n_along) * n_strips // n_along).astype(np.int64)
    cut_sum = np.zeros(n_strips)
    orig_sum = np.zeros(n_strips)
    depths = []
    for k in range(n_cuts):
        z_cut = lo + (hi - lo) * (k + 0.5) / n_cuts
        band = inside & (depth >= z_cut - 1) & (depth <= z_cut + zone_px + reach)
        rows = np.nonzero(band.any(axis=1))[0]
        cols = np.nonzero(band.any(axis=0))[0]
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        d_box = depth[box]
        cut_pores = pore[box] & (d_box >= z_cut)  # NaN depth (outside) compares False
        lt_cut = local_thickness(cut_pores)
        zone = cut_pores & (d_box < z_cut + zone_px)
        rr, cc = np.nonzero(zone)
        strip = strip_of[(cc + cols[0]) if along_axis == 1 else (rr + rows[0])]
        cut_sum += np.bincount(strip, weights=lt_cut[rr, cc], minlength=n_strips)
        orig_sum += np.bincount(strip, weights=lt[box][rr, cc], minlength=n_strips)
        depths.append(z_cut * pixel_size_um)
    if orig_sum.sum() <= 0:
        return None
    return _CutCalibration(cut=cut_sum, orig=orig_sum, depths_um=depths)


def _corrected_zone_ratio(zones: _Zones, cut: _CutCalibration | None, weights: np.ndarray
                          ) -> tuple[float, np.ndarray, float, np.ndarray]:
    """log(surface / interior mean size / expected uniform ratio) and its bootstrap replicates.

    Returns (corrected, corrected replicates, log expected ratio, its replicates); the expected
    ratio is 1 (log 0) without a calibration.
    """
    log_zone, log_zone_b, _, _ = _zone_ratio_distribution(zones, weights)
    if cut is None:
        return log_zone, log_zone_b, 0.0, np.zeros_like(log_zone_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_b = math.log(cut.ratio)
        log_b_b = np.log((weights @ cut.cut) / (weights @ cut.orig))
    return log_zone - log_b, log_zone_b - log_b_b, log_b, log_b_b


def _equivalent_zone_ratio(end_ratio: float) -> float:
    """Surface-zone / rest mean pore size of a log-linear profile with this end-to-end ratio.

    For size(t) = R**t over t in [0, 1], the zone [0, 1/16] has mean ~ R**(1/32) and the rest
    ~ (R - R**(1/16)) / (ln R (1 - 1/16)); their ratio (>= 1 form) is the zone test's threshold.
    """
    r = float(end_ratio)
    lr = math.log(r)
    f = 1.0 / ZONE_DIVISOR
    zone = (r**f - 1) / (lr * f)
    rest = (r - r**f) / (lr * (1 - f))
    return rest / zone


# --------------------------------------------------------------------------------------------
# classification


@dataclass
class ProfileClassification:
    """Result of :func:`classify_profile`.

    Attributes
    ----------
    structure : dict
        The ``structure`` block of result.json (keys in ``docs/structure.md``).
    band : pandas.DataFrame
        Smoothed profile and its bootstrap bands per depth bin: ``depth_um``, ``pore_size_um``,
        ``pore_size_lo_um``, ``pore_size_hi_um`` (pointwise percentile band, level 1 - alpha),
        ``pore_size_simultaneous_lo_um``, ``pore_size_simultaneous_hi_um`` (simultaneous over
        the reliable bins, level 1 - alpha), ``n_pore_pixels``, ``reliable``.
    replicate_kinds : ndarray of str, shape (n_bootstrap,)
        The decision rules applied to each bootstrap replicate (``gradient:increasing`` etc.);
        ``confidence`` is the fraction agreeing with the decision.
    """

    structure: dict[str, Any]
    band: pd.DataFrame
    replicate_kinds: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))


def _typical_size_um(pix: _Pixels, pixel_size_um: float) -> float:
    """Median local size of the pore pixels (subsampled deterministically above 200k)."""
    sizes = pix.pore_size_um
    if sizes.size == 0:
        raise StructureError("no pore pixel inside the membrane")
    step = max(1, sizes.size // 200_000)
    return max(float(np.median(sizes[::step])), pixel_size_um)


def _nanstd_columns(a: np.ndarray) -> np.ndarray:
    """Sample standard deviation of each column ignoring NaN (NaN with fewer than 2 values)."""
    ok = np.isfinite(a)
    n = ok.sum(0)
    filled = np.where(ok, a, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(0) / n
        var = (np.where(ok, a - mean, 0.0) ** 2).sum(0) / (n - 1)
    return np.where(n >= 2, np.sqrt(var), np.nan)


#: The per-bin bootstrap standard error is pooled (root mean square) over a depth window of this
#: many typical pore sizes: with ~16 strips a single bin's standard error is itself uncertain by
#: ~20 %, and a test that looks for the most extreme bin would pick bins where it is too small.
SE_POOL_PORES = 2.0

#: The minimum's depth is located on replicate profiles smoothed further with this many times
#: the profile's smoothing sigma (about 0.8 typical pore sizes in all): the bottom of a layer is
#: often flat, and noise there would move the lowest bin far more than the layer itself.
LOCATE_SMOOTHING = 3.0


def _pooled_se(se: np.ndarray, window_bins: float) -> np.ndarray:
    """Root-mean-square of ``se`` over a centred window (NaN bins ignored, NaN kept NaN)."""
    if window_bins < 1.5:
        return se
    ok = np.isfinite(se)
    size = max(1, int(round(window_bins))) | 1
    num = ndi.uniform_filter1d(np.where(ok, se * se, 0.0), size, mode="constant")
    den = ndi.uniform_filter1d(ok.astype(np.float64), size, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, np.sqrt(num / den), np.nan)


def _nanquantile_columns(a: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Quantiles of each column ignoring NaN (linear interpolation); fast for many columns."""
    srt = np.sort(a, axis=0)  # NaN last
    n = np.isfinite(srt).sum(0)
    cols = np.arange(a.shape[1])
    out = np.full((len(qs), a.shape[1]), np.nan)
    for row, q in enumerate(qs):
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        val = srt[lo, cols] * (1 - frac) + srt[hi, cols] * frac
        out[row] = np.where(n > 0, val, np.nan)
    return out


def _prefix_max(a: np.ndarray) -> np.ndarray:
    """Max of the entries strictly before each position along the last axis (-inf first)."""
    out = np.full(a.shape, -np.inf)
    if a.shape[-1] > 1:
        out[..., 1:] = np.maximum.accumulate(a[..., :-1], axis=-1)
    return out


def _suffix_max(a: np.ndarray) -> np.ndarray:
    return _prefix_max(a[..., ::-1])[..., ::-1]


def _dips(L: np.ndarray, se: np.ndarray, c: float, log_tol: float) -> np.ndarray:
    """Bins that are significant, practically relevant dips (works on (..., n) arrays).

    Bin i is a dip when (1) the lower band ``L - c se`` somewhere shallower and somewhere deeper
    exceeds the upper band ``L_i + c se_i`` and (2) the profile somewhere shallower and somewhere
    deeper is at least ``log_tol`` above ``L_i``. NaN bins are never dips and never sides.
    """
    ok = np.isfinite(L)
    lower = np.where(ok, L - c * se, -np.inf)
    level = np.where(ok, L, -np.inf)
    upper = L + c * se
    with np.errstate(invalid="ignore"):
        return (ok & (_prefix_max(lower) > upper) & (_suffix_max(lower) > upper)
                & (_prefix_max(level) - L >= log_tol) & (_suffix_max(level) - L >= log_tol))


def _dip_statistic(L: np.ndarray, se: np.ndarray, log_tol: float) -> float:
    """Largest band multiplier c at which some bin is still a dip (see :func:`_dips`).

    For bin i the shallow side holds at c when ``c < (L_j - L_i) / (se_j + se_i)`` for some
    j < i (likewise deeper); the p-value of the dip test is the share of bootstrap max-t values
    at or above this statistic.
    """
    n = L.size
    stride = max(1, int(math.ceil(n / 1000)))
    Ls, ss = L[::stride], se[::stride]
    prac = ((_prefix_max(L)[::stride] - Ls >= log_tol) & (_suffix_max(L)[::stride] - Ls >= log_tol))
    if not prac.any():
        return -np.inf
    rows = np.nonzero(prac)[0]
    t = (Ls[None, :] - Ls[rows, None]) / (ss[None, :] + ss[rows, None])
    j = np.arange(Ls.size)
    shallow = np.where(j[None, :] < rows[:, None], t, -np.inf).max(axis=1)
    deep = np.where(j[None, :] > rows[:, None], t, -np.inf).max(axis=1)
    return float(np.minimum(shallow, deep).max())


def _locate_minimum(x: np.ndarray, L: np.ndarray, Lb: np.ndarray, j_s: int, j_d: int,
                    sigma_bins: float) -> np.ndarray:
    """Depth of the minimum in each bootstrap replicate (bagged location of the minimum).

    Each replicate's log profile (gaps filled with the full-sample value) is smoothed with a
    Gaussian of ``sigma_bins``; its lowest bin strictly between the full-sample side maxima
    ``j_s`` and ``j_d`` is refined by a 3-point parabola (sub-bin precision). The median over
    replicates is the reported depth, their percentiles its interval.
    """
    filled = np.where(np.isfinite(Lb), Lb, L[None, :])
    sm = ndi.gaussian_filter1d(filled, sigma_bins, axis=1, mode="nearest")
    valley = np.zeros(x.size, bool)
    valley[j_s + 1:j_d] = True
    i_b = np.argmin(np.where(valley[None, :], sm, np.inf), axis=1)
    rows = np.arange(sm.shape[0])
    inner = (i_b > 0) & (i_b < x.size - 1)
    lo = np.clip(i_b - 1, 0, x.size - 1)
    hi = np.clip(i_b + 1, 0, x.size - 1)
    y0, y1, y2 = sm[rows, lo], sm[rows, i_b], sm[rows, hi]
    curv = y0 - 2 * y1 + y2
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(inner & (curv > 0), 0.5 * (y0 - y2) / curv, 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    step = np.where(shift >= 0, x[hi] - x[i_b], x[i_b] - x[lo])
    return x[i_b] + shift * step


def _layer_extent(x: np.ndarray, y: np.ndarray, i: int, limit: float) -> tuple[float, float]:
    """Depth range around bin i where y stays <= limit (linear interpolation at crossings)."""
    lo = i
    while lo > 0 and y[lo - 1] <= limit:
        lo -= 1
    hi = i
    while hi < y.size - 1 and y[hi + 1] <= limit:
        hi += 1

    def cross(a: int, b: int) -> float:  # y[a] <= limit < y[b]
        t = (limit - y[a]) / (y[b] - y[a]) if y[b] != y[a] else 0.5
        return float(x[a] + t * (x[b] - x[a]))

    top = cross(lo, lo - 1) if lo > 0 else float(x[0])
    bottom = cross(hi, hi + 1) if hi < y.size - 1 else float(x[-1])
    return top, bottom


def _fit_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y against x along the last axis, ignoring NaN (vectorised)."""
    ok = np.isfinite(y)
    w = ok.astype(np.float64)
    y = np.where(ok, y, 0.0)
    x = np.broadcast_to(x, y.shape)
    sw = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (w * x).sum(-1) / sw
        my = (w * y).sum(-1) / sw
        dx = x - mx[..., None]
        return (w * dx * (y - my[..., None])).sum(-1) / (w * dx * dx).sum(-1)


def _surface_open_fraction(pore_mask: np.ndarray, depth_px: np.ndarray, zone_px: float
                           ) -> float | None:
    """Share of surface-zone pore pixels in pores that reach the reference surface (depth < 1.5
    px), counted on the pore mask cut to the zone (8-connectivity)."""
    zone = np.isfinite(depth_px) & (depth_px <= zone_px) & np.asarray(pore_mask, bool)
    if not zone.any():
        return None
    rows = np.nonzero(zone.any(axis=1))[0]
    cols = np.nonzero(zone.any(axis=0))[0]
    sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    sub = zone[sl]
    lab, n = ndi.label(sub, structure=np.ones((3, 3), bool))
    if n == 0:
        return None
    touching = np.unique(lab[sub & (depth_px[sl] < 1.5)])
    touching = touching[touching > 0]
    return float(np.isin(lab[sub], touching).mean())


def _binning(pix: _Pixels, pixel_size_um: float, d_um: float, bin_width_um: float | None,
             smoothing_um: float | None) -> tuple[float, float, int, float]:
    """(sigma, bin width, bins per surface zone, typical pore size), all in µm.

    The width is snapped down so that d/16 falls on a bin edge (zone sums come from the bins).
    """
    px = float(pixel_size_um)
    deepest = float(pix.depth_um.max())
    typical = _typical_size_um(pix, px)
    sigma = float(smoothing_um) if smoothing_um else max(px, 0.25 * typical)
    target = float(bin_width_um) if bin_width_um else max(px, 0.5 * sigma, deepest / 1000)
    zone = d_um / ZONE_DIVISOR
    k = max(1, int(math.ceil(zone / target - 1e-9)))
    return sigma, zone / k, k, typical


def _classify(pix: _Pixels, sums: StripSums, zones: _Zones, weights: np.ndarray,
              pixel_size_um: float, *, cut: _CutCalibration | None, sigma: float,
              typical: float, thickness_known: bool,
              alpha: float, tolerance: float, min_gradient_ratio: float,
              min_pore_pixels: int) -> ProfileClassification:
    n_strips = pix.n_strips
    depth = sums.depth_um
    width = float(sums.edges_um[1] - sums.edges_um[0])
    sigma_bins = sigma / width
    log_tol = math.log1p(tolerance)
    log_min_ratio = math.log(min_gradient_ratio)
    log_zone_ratio = math.log(_equivalent_zone_ratio(min_gradient_ratio))
    z_crit = float(ndtri(1 - alpha / 2))

    # kernel-smoothed per-strip sums (Nadaraya-Watson: numerator and denominator alike)
    def smooth(a: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter1d(a, sigma_bins, axis=-1, mode="constant", truncate=3.0)

    n_sm = smooth(sums.n_pore)
    s_sm = smooth(sums.size_sum_um)
    window = max(1, int(round(2 * sigma_bins))) | 1
    n_window = ndi.uniform_filter1d(sums.n_pore.sum(0), window, mode="constant") * window
    strips_window = (ndi.uniform_filter1d(sums.n_pore, window, axis=1, mode="constant")
                     > 0).sum(0)
    has_membrane = sums.n_membrane.sum(0) > 0
    reliable = ((n_window >= min_pore_pixels) & (strips_window >= math.ceil(n_strips / 2))
                & has_membrane)
    size = _ratio(s_sm.sum(0), n_sm.sum(0))
    reliable &= np.isfinite(size) & (size > 0)
    boot = _ratio(weights @ s_sm, weights @ n_sm)

    structure = _empty_structure()
    structure.update({"thickness_known": thickness_known, "d_um": zones.d_um,
                      "surface_zone_um": zones.zone_um, "smoothing_um": sigma,
                      "bin_width_um": width, "typical_pore_size_um": typical})
    notes: list[str] = []
    if not thickness_known:
        notes.append(f"thickness unknown (opposite surface not in view): the visible span "
                     f"{zones.d_um:.3g} µm is used as d")
    band = pd.DataFrame({
        "depth_um": depth, "pore_size_um": np.where(has_membrane, size, np.nan),
        "pore_size_lo_um": np.nan, "pore_size_hi_um": np.nan,
        "pore_size_simultaneous_lo_um": np.nan, "pore_size_simultaneous_hi_um": np.nan,
        "n_pore_pixels": sums.n_pore.sum(0).astype(np.int64), "reliable": reliable})
    if reliable.sum() < 3:
        structure["reason"] = "fewer than 3 reliable depth bins: structure not classified"
        structure["notes"] = [*notes, structure["reason"]]
        return ProfileClassification(structure=structure, band=band[has_membrane])

    with np.errstate(invalid="ignore", divide="ignore"):
        log_size = np.where(reliable, np.log(size), np.nan)
        log_boot = np.where(reliable[None, :] & (boot > 0), np.log(boot), np.nan)
    se = _nanstd_columns(log_boot)
    se = np.where(reliable & np.isfinite(se), np.maximum(se, 1e-6), np.nan)
    se = _pooled_se(se, SE_POOL_PORES * typical / width)
    with np.errstate(invalid="ignore"):
        dev = np.abs(log_boot - log_size) / se
    t_boot = np.nanmax(np.where(np.isfinite(dev), dev, -np.inf), axis=1)
    c = float(np.quantile(t_boot, 1 - alpha))
    pointwise = _nanquantile_columns(np.where(np.isfinite(log_boot), boot, np.nan),
                                     (alpha / 2, 1 - alpha / 2))
    band["pore_size_lo_um"] = np.where(reliable, pointwise[0], np.nan)
    band["pore_size_hi_um"] = np.where(reliable, pointwise[1], np.nan)
    band["pore_size_simultaneous_lo_um"] = np.exp(log_size - c * se)
    band["pore_size_simultaneous_hi_um"] = np.exp(log_size + c * se)

    # tests on the reliable bins only
    r = np.nonzero(reliable)[0]
    x, L, s_r, Lb = depth[r], log_size[r], se[r], log_boot[:, r]

    # internal minimum: simultaneous-band dip test
    dip = _dips(L, s_r, c, log_tol)
    t_dip = _dip_statistic(L, s_r, log_tol)
    p_dip = float(np.mean(t_boot >= t_dip)) if np.isfinite(t_dip) else 1.0
    dip_b = _dips(Lb, s_r[None, :], c, log_tol).any(axis=1)

    # gradient (a): log-linear trend over the measured depth
    extent = float(x[-1] - x[0])
    log_ratio = float(_fit_slope(x, L)) * extent
    log_ratio_b = _fit_slope(x, Lb) * extent
    sd_ratio = float(np.nanstd(log_ratio_b, ddof=1))
    p_trend = _p_two_sided(log_ratio_b)
    trend = abs(log_ratio) >= log_min_ratio and p_trend < alpha
    trend_b = (np.abs(log_ratio_b) >= log_min_ratio) & (np.abs(log_ratio_b) > z_crit * sd_ratio)

    # gradient (b): surface zone against the rest, relative to what cut pores alone give
    raw_zone, raw_zone_b, _, _ = _zone_ratio_distribution(zones, weights)
    log_zone, log_zone_b, log_expected, _ = _corrected_zone_ratio(zones, cut, weights)
    zone_pores = zones.n_pore.sum(0)
    zone_applies = cut is not None or zones.zone_um >= MIN_ZONE_PORES * typical
    dense_skin = (zone_pores[0] < min_pore_pixels and zone_pores[1] >= 10 * min_pore_pixels
                  and zones.n_membrane.sum(0)[0] >= 10 * min_pore_pixels)
    p_zone = _p_two_sided(log_zone_b) if np.isfinite(log_zone) else None
    zone = bool(zone_applies and np.isfinite(log_zone) and abs(log_zone) >= log_zone_ratio
                and p_zone is not None and p_zone < alpha)
    sd_zone = float(np.nanstd(log_zone_b, ddof=1)) if np.isfinite(log_zone) else np.nan
    with np.errstate(invalid="ignore"):
        zone_b = (zone_applies & (np.abs(log_zone_b) >= log_zone_ratio)
                  & (np.abs(log_zone_b) > z_crit * sd_zone))

    kinds_b = np.full(Lb.shape[0], "symmetric", dtype=object)
    zone_dir_b = np.where(zone_b, np.sign(-log_zone_b), 1 if dense_skin else 0)
    # a gradient (trend or zone) takes the trend's sign when the trend is significant
    trend_sig_b = np.abs(log_ratio_b) > z_crit * sd_ratio
    grad_dir_b = np.where(trend_b | (trend_sig_b & (zone_dir_b != 0)), np.sign(log_ratio_b),
                          zone_dir_b)
    kinds_b[grad_dir_b > 0] = "gradient:increasing"
    kinds_b[grad_dir_b < 0] = "gradient:decreasing"
    kinds_b[dip_b] = "internal_minimum"

    structure.update({
        "gradient_ratio": math.exp(log_ratio),
        "gradient_ratio_ci": [math.exp(v) for v in _ci(log_ratio_b, alpha) or [np.nan] * 2],
        "p_gradient": p_trend,
        "surface_zone_ratio": math.exp(raw_zone) if np.isfinite(raw_zone) else None,
        "surface_zone_ratio_expected_uniform": math.exp(log_expected),
        "surface_zone_ratio_corrected": math.exp(log_zone) if np.isfinite(log_zone) else None,
        "surface_zone_ratio_corrected_ci": ([math.exp(v) for v in _ci(log_zone_b, alpha)]
                                            if _ci(log_zone_b, alpha) else None),
        "calibration_cut_depths_um": cut.depths_um if cut is not None else None,
        "p_surface_zone": p_zone,
        "surface_zone_test_applies": bool(zone_applies),
        "p_internal_minimum": p_dip,
        "band_multiplier": c,
        "depth_range_um": [float(x[0]), float(x[-1])],
    })
    if cut is None:
        notes.append("no interior room to calibrate pores cut by the surface: the surface-zone "
                     "ratio is compared with 1")
    if not zone_applies:
        notes.append(f"surface zone ({zones.zone_um:.3g} µm) thinner than {MIN_ZONE_PORES:g} "
                     f"typical pore sizes ({typical:.3g} µm): surface-zone test not used")

    if dip.any():
        cand = np.nonzero(dip)[0]
        i = int(cand[np.argmin(L[cand])])
        kind, direction = "internal_minimum", None
        top, bottom = _layer_extent(x, L, i, L[i] + log_tol)
        j_s = int(np.argmax(L[:i]))
        j_d = i + 1 + int(np.argmax(L[i + 1:]))
        min_size = float(np.exp(L[i]))
        depth_b = _locate_minimum(x, L, Lb, j_s, j_d, LOCATE_SMOOTHING * sigma_bins)
        depth_min = float(np.median(depth_b))
        # bootstrap contrasts: each replicate's minimum inside the valley against its sides
        valley = np.zeros(x.size, bool)
        valley[j_s + 1:j_d] = True
        lb = np.where(valley[None, :] & np.isfinite(Lb), Lb, np.inf)
        i_b = np.argmin(lb, axis=1)
        lmin_b = lb[np.arange(lb.shape[0]), i_b]
        with np.errstate(invalid="ignore"):
            side_s = np.nanmax(np.where(np.arange(x.size)[None, :] < i_b[:, None], Lb, -np.inf),
                               axis=1)
            side_d = np.nanmax(np.where(np.arange(x.size)[None, :] > i_b[:, None], Lb, -np.inf),
                               axis=1)
        structure.update({
            "min_layer_depth_um": depth_min,
            "min_layer_depth_ci_um": _ci(depth_b, alpha),
            "min_layer_pore_size_um": min_size,
            "min_layer_thickness_um": bottom - top,
            "min_layer_top_um": top,
            "min_layer_bottom_um": bottom,
            "contrast_surface_side": float(np.exp(L[j_s] - L[i])),
            "contrast_deep_side": float(np.exp(L[j_d] - L[i])),
            "contrast_surface_side_ci": _ci(np.exp(side_s - lmin_b), alpha),
            "contrast_deep_side_ci": _ci(np.exp(side_d - lmin_b), alpha),
        })
        reason = (f"pore size {min_size:.3g} µm at {depth_min:.3g} µm depth is significantly "
                  f"below both sides (x{np.exp(L[j_s] - L[i]):.2f} toward the surface, "
                  f"x{np.exp(L[j_d] - L[i]):.2f} deeper; simultaneous band, p = {p_dip:.2g})")
    elif trend or zone or dense_skin:
        kind = "gradient"
        trend_significant = p_trend < alpha
        zone_direction = "increasing" if (dense_skin or log_zone < 0) else "decreasing"
        if trend_significant:
            direction = "increasing" if log_ratio > 0 else "decreasing"
            reason = (f"pore size {direction} with depth: fitted deep/surface ratio "
                      f"{math.exp(log_ratio):.2f} (p = {p_trend:.2g})")
            if not trend:
                reason += (f"; the surface zone differs from the rest (x{math.exp(raw_zone):.2f}, "
                           f"x{math.exp(log_zone):.2f} after the cut-pore correction, "
                           f"p = {p_zone:.2g})" if not dense_skin else
                           "; no pores resolved in the surface zone (dense skin)")
            if (zone or dense_skin) and zone_direction != direction:
                notes.append("the surface zone has smaller pores than the rest (a skin) while "
                             "pore size decreases over the whole depth: it grows below the "
                             "surface, then falls" if zone_direction == "increasing" else
                             "the surface zone has larger pores than the rest while pore size "
                             "increases over the whole depth")
        else:
            direction = zone_direction
            if dense_skin:
                reason = (f"no pores resolved in the surface zone (0-{zones.zone_um:.3g} µm) "
                          "over a porous interior: dense skin, pore size increasing with depth")
            else:
                reason = (f"surface zone (0-{zones.zone_um:.3g} µm) pore size x"
                          f"{math.exp(raw_zone):.2f} the rest, x{math.exp(log_zone):.2f} what "
                          f"pores cut by a surface give (p = {p_zone:.2g}): pore size "
                          f"{direction} with depth")
    else:
        kind, direction = "symmetric", None
        reason = (f"no significant internal minimum (p = {p_dip:.2g}); fitted deep/surface "
                  f"ratio {math.exp(log_ratio):.2f} (p = {p_trend:.2g})")
        if np.isfinite(log_zone):
            reason += (f"; surface zone / rest x{math.exp(raw_zone):.2f} (x{math.exp(log_zone):.2f}"
                       " after the cut-pore correction)")
        reason += f"; a gradient needs x{min_gradient_ratio:g} end to end"

    label = kind if kind != "gradient" else f"gradient:{direction}"
    structure.update({"kind": kind, "gradient_direction": direction,
                      "confidence": float(np.mean(kinds_b == label)), "reason": reason,
                      "notes": notes})
    return ProfileClassification(structure=structure, band=band[has_membrane].reset_index(
        drop=True), replicate_kinds=kinds_b)


def _empty_structure() -> dict[str, Any]:
    return {
        "kind": None, "gradient_direction": None, "confidence": None,
        "min_layer_depth_um": None, "min_layer_depth_ci_um": None,
        "min_layer_pore_size_um": None, "min_layer_thickness_um": None,
        "min_layer_top_um": None, "min_layer_bottom_um": None,
        "contrast_surface_side": None, "contrast_deep_side": None,
        "contrast_surface_side_ci": None, "contrast_deep_side_ci": None,
        "surface_pore_size_um": None, "opposite_pore_size_um": None,
        "gradient_ratio": None, "gradient_ratio_ci": None, "p_gradient": None,
        "surface_zone_ratio": None, "p_surface_zone": None,
        "surface_zone_ratio_expected_uniform": None, "surface_zone_ratio_corrected": None,
        "surface_zone_ratio_corrected_ci": None, "calibration_cut_depths_um": None,
        "surface_zone_test_applies": None, "p_internal_minimum": None, "band_multiplier": None,
        "surface_open_pore_fraction": None, "thickness_known": None, "d_um": None,
        "surface_zone_um": None, "smoothing_um": None, "bin_width_um": None,
        "typical_pore_size_um": None, "depth_range_um": None, "profile_band": None,
        "reason": None, "notes": [],
    }


# --------------------------------------------------------------------------------------------
# criteria


def _criteria(pix: _Pixels, zones: _Zones, weights: np.ndarray, *, cut: _CutCalibration | None,
              alpha: float, tolerance: float, min_pore_pixels: int) -> dict[str, Any]:
    n_mem = zones.n_membrane.sum(0)
    n_pore = zones.n_pore.sum(0)
    size = _ratio(zones.size_sum_um.sum(0), n_pore)
    porosity = _ratio(n_pore, n_mem)
    sizes = pix.pore_size_um
    mean_all = float(sizes.mean(dtype=np.float64)) if sizes.size else None
    if sizes.size:
        k = min(sizes.size - 1, int(round(MAX_QUANTILE * (sizes.size - 1))))
        p_max = float(np.partition(sizes, k)[k])
    else:
        p_max = None

    def val(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    surf = val(size[0]) if n_pore[0] >= min_pore_pixels else None
    inter = val(size[1]) if n_pore[1] >= min_pore_pixels else None
    opp = (val(size[2]) if zones.opposite_in_view and n_pore[2] >= min_pore_pixels else None)
    log_size, log_size_b, log_expected, _ = _corrected_zone_ratio(zones, cut, weights)
    log_tol = math.log1p(tolerance)
    ci = _ci(log_size_b, alpha)
    p = _p_two_sided(log_size_b) if np.isfinite(log_size) else None
    if surf is None and inter is not None and n_mem[0] > 0:
        verdict = "smaller"
        why = "no pores resolved in the surface zone (dense skin)"
    elif surf is None or inter is None or ci is None:
        verdict, why = None, "too few pore pixels in a zone"
    elif ci[0] > 0 and log_size >= log_tol:
        verdict, why = "larger", None
    elif ci[1] < 0 and log_size <= -log_tol:
        verdict, why = "smaller", None
    else:
        verdict, why = "equal", None
    return {
        "surface_zone_pore_size_um": surf,
        "interior_pore_size_um": inter,
        "opposite_zone_pore_size_um": opp,
        "surface_to_interior_ratio": (surf / inter if surf is not None and inter else None),
        "surface_to_interior_ratio_expected_uniform": math.exp(log_expected),
        "surface_to_interior_ratio_corrected": (math.exp(log_size) if np.isfinite(log_size)
                                                else None),
        "surface_to_interior_ratio_corrected_ci": [math.exp(v) for v in ci] if ci else None,
        "p_surface_vs_interior": p,
        "surface_vs_interior": verdict,
        "surface_vs_interior_note": why,
        "top_to_bottom_pore_size_ratio": (surf / opp if surf is not None and opp else None),
        "max_to_mean_pore_size_ratio": (p_max / mean_all if p_max is not None and mean_all
                                        else None),
        "max_pore_size_um": p_max,
        "mean_pore_size_um": mean_all,
        "max_pore_size_statistic": f"p{round(100 * MAX_QUANTILE)} of the local thickness "
                                   "(diameter) over all pore pixels of the membrane",
        "surface_zone_porosity": val(porosity[0]),
        "interior_porosity": val(porosity[1]),
        "opposite_zone_porosity": val(porosity[2]) if zones.opposite_in_view else None,
        "d_um": zones.d_um,
        "surface_zone_um": zones.zone_um,
        "thickness_known": None,
        "tolerance": tolerance,
    }


# --------------------------------------------------------------------------------------------
# public functions


def _setup(pore_mask, membrane_mask, depth_px, local_thickness_px, pixel_size_um, *,
           thickness_um, n_strips, n_bootstrap, along_axis, opposite_in_view, seed,
           profile: bool, bin_width_um=None, smoothing_um=None):
    """Pixels, strip sums (bins aligned on d/16), zone sums and bootstrap weights."""
    _check_inputs(pore_mask, membrane_mask, depth_px, local_thickness_px, pixel_size_um)
    px = float(pixel_size_um)
    if thickness_um is not None and not (math.isfinite(thickness_um) and thickness_um > 0):
        raise StructureError(f"thickness_um must be a positive number, got {thickness_um!r}")
    pix = _membrane_pixels(pore_mask, membrane_mask, depth_px, local_thickness_px, px,
                           n_strips, along_axis)
    deepest = float(pix.depth_um.max())
    d_um = float(thickness_um) if thickness_um is not None else deepest
    if opposite_in_view is None:
        opposite_in_view = thickness_um is not None
    if profile:
        sigma, width, k, typical = _binning(pix, px, d_um, bin_width_um, smoothing_um)
    else:
        sigma, width, k, typical = 0.0, d_um / ZONE_DIVISOR, 1, 0.0
    n_bins = max(3, int(math.ceil(deepest / width - 1e-9)), ZONE_DIVISOR * k)
    sums = _strip_sums(pix, np.arange(n_bins + 1) * width)
    zones = _zone_sums(sums, k, d_um, bool(opposite_in_view))
    weights = bootstrap_weights(n_strips, n_bootstrap, seed)
    cut = _cut_calibration(pore_mask, membrane_mask, depth_px, local_thickness_px, px,
                           zones.zone_um, n_strips, along_axis)
    return px, pix, sums, zones, weights, sigma, typical, cut


def _check_params(alpha: float, tolerance: float, min_gradient_ratio: float) -> None:
    if not 0 < alpha < 0.5:
        raise StructureError(f"alpha must be in (0, 0.5), got {alpha}")
    if not tolerance > 0:
        raise StructureError(f"tolerance must be > 0, got {tolerance}")
    if not min_gradient_ratio > 1:
        raise StructureError(f"min_gradient_ratio must be > 1, got {min_gradient_ratio}")


def structure_and_criteria(
    pore_mask: np.ndarray,
    membrane_mask: np.ndarray,
    depth_px: np.ndarray,
    local_thickness_px: np.ndarray,
    pixel_size_um: float,
    *,
    thickness_um: float | None = None,
    bin_width_um: float | None = None,
    smoothing_um: float | None = None,
    n_bootstrap: int = 200,
    n_strips: int = 16,
    alpha: float = 0.05,
    tolerance: float = 0.2,
    min_gradient_ratio: float = MIN_GRADIENT_RATIO,
    min_pore_pixels: int = 50,
    along_axis: int = 1,
    opposite_in_view: bool | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`classify_profile` and :func:`membrane_criteria` sharing one pass over the pixels.

    Parameters are those of :func:`classify_profile`.

    Returns
    -------
    dict
        ``{"structure": dict, "criteria": dict, "extras": {"profile_band": DataFrame}}``.
    """
    _check_params(alpha, tolerance, min_gradient_ratio)
    px, pix, sums, zones, weights, sigma, typical, cut = _setup(
        pore_mask, membrane_mask, depth_px, local_thickness_px, pixel_size_um,
        thickness_um=thickness_um, n_strips=n_strips, n_bootstrap=n_bootstrap,
        along_axis=along_axis, opposite_in_view=opposite_in_view, seed=seed, profile=True,
        bin_width_um=bin_width_um, smoothing_um=smoothing_um)
    result = _classify(pix, sums, zones, weights, px, cut=cut, sigma=sigma, typical=typical,
                       thickness_known=thickness_um is not None, alpha=alpha,
                       tolerance=tolerance, min_gradient_ratio=min_gradient_ratio,
                       min_pore_pixels=min_pore_pixels)
    criteria = _criteria(pix, zones, weights, cut=cut, alpha=alpha, tolerance=tolerance,
                         min_pore_pixels=min_pore_pixels)
    criteria["thickness_known"] = thickness_um is not None
    s = result.structure
    s["surface_pore_size_um"] = criteria["surface_zone_pore_size_um"]
    s["opposite_pore_size_um"] = criteria["opposite_zone_pore_size_um"]
    frac = _surface_open_fraction(pore_mask, np.asarray(depth_px), zones.zone_um / px)
    s["surface_open_pore_fraction"] = frac
    if frac is not None and frac > 0.5:
        s["notes"].append(f"{100 * frac:.0f} % of the surface-zone pore pixels belong to pores "
                          "open at the surface (cut by it): their local size is a lower bound")
    band = result.band
    reliable = band[band["reliable"]]
    step = max(1, int(math.ceil(len(reliable) / 200)))
    s["profile_band"] = {col: [float(v) for v in reliable[col].to_numpy()[::step]]
                         for col in BAND_JSON_COLUMNS}
    rng = s.get("depth_range_um")
    if rng and rng[0] > max(s["typical_pore_size_um"] or 0.0, 2 * s["bin_width_um"]):
        s["notes"].append(f"no reliable pore size above {rng[0]:.3g} µm depth (fewer than "
                          f"{min_pore_pixels} pore pixels: dense skin or no resolved pores)")
    return {"structure": s, "criteria": criteria, "extras": {"profile_band": band}}


def classify_profile(
    pore_mask: np.ndarray,
    membrane_mask: np.ndarray,
    depth_px: np.ndarray,
    local_thickness_px: np.ndarray,
    pixel_size_um: float,
    *,
    thickness_um: float | None = None,
    bin_width_um: float | None = None,
    smoothing_um: float | None = None,
    n_bootstrap: int = 200,
    n_strips: int = 16,
    alpha: float = 0.05,
    tolerance: float = 0.2,
    min_gradient_ratio: float = MIN_GRADIENT_RATIO,
    min_pore_pixels: int = 50,
    along_axis: int = 1,
    opposite_in_view: bool | None = None,
    seed: int = 0,
) -> ProfileClassification:
    """Classify the pore-size depth profile: symmetric, gradient or internal minimum.

    Parameters
    ----------
    pore_mask, membrane_mask : ndarray of bool, shape (rows, cols)
    depth_px : ndarray of float, shape (rows, cols)
        Distance below the reference surface in px, NaN outside the membrane.
    local_thickness_px : ndarray of float, shape (rows, cols)
        Local pore diameter in px (:func:`pipeline.size.local_thickness`), 0 outside pores.
    pixel_size_um : float
    thickness_um : float, optional
        Membrane thickness d (both surfaces in view). When None the visible span (the deepest
        membrane pixel) is used as d and the result says so (``thickness_known``: False).
    bin_width_um : float, optional
        Depth-bin width (default: half the smoothing scale, at least 1 px and span / 1000).
    smoothing_um : float, optional
        Gaussian smoothing sigma of the profile in depth (default: a quarter of the median local
        pore size, at least 1 px): the local thickness holds no structure finer than a pore.
    n_bootstrap : int
        Strip-bootstrap replicates.
    n_strips : int
        Strips the membrane is cut into along its length.
    alpha : float
        Significance level of every test; bands have level 1 - alpha.
    tolerance : float
        The minimum layer is the depth range where the smoothed pore size stays within
        ``(1 + tolerance)`` x the minimum; an internal minimum needs both sides to rise above it.
    min_gradient_ratio : float
        Smallest fitted end-to-end pore-size ratio that counts as a gradient (the surface-zone
        test uses the zone/rest ratio of a log-linear profile with this end-to-end ratio).
    min_pore_pixels : int
        A depth bin is reliable when its smoothing window (2 sigma) holds at least this many pore
        pixels and pores occur there in at least half of the strips.
    along_axis : int
        1 (strips of columns) for a horizontal membrane, 0 for a vertical one.
    opposite_in_view : bool, optional
        Whether the opposite surface is in view (default: ``thickness_um is not None``).
    seed : int
        Bootstrap seed (results are deterministic).

    Returns
    -------
    ProfileClassification
    """
    out = structure_and_criteria(
        pore_mask, membrane_mask, depth_px, local_thickness_px, pixel_size_um,
        thickness_um=thickness_um, bin_width_um=bin_width_um, smoothing_um=smoothing_um,
        n_bootstrap=n_bootstrap, n_strips=n_strips, alpha=alpha, tolerance=tolerance,
        min_gradient_ratio=min_gradient_ratio, min_pore_pixels=min_pore_pixels,
        along_axis=along_axis, opposite_in_view=opposite_in_view, seed=seed)
    return ProfileClassification(structure=out["structure"], band=out["extras"]["profile_band"])


def membrane_criteria(
    pore_mask: np.ndarray,
    membrane_mask: np.ndarray,
    depth_px: np.ndarray,
    local_thickness_px: np.ndarray,
    pixel_size_um: float,
    *,
    thickness_um: float | None = None,
    n_bootstrap: int = 200,
    n_strips: int = 16,
    alpha: float = 0.05,
    tolerance: float = 0.2,
    min_pore_pixels: int = 50,
    along_axis: int = 1,
    opposite_in_view: bool | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``criteria`` block: surface zone (depth 0..d/16) against the rest, and more.

    Parameters
    ----------
    pore_mask, membrane_mask, depth_px, local_thickness_px, pixel_size_um
        As in :func:`classify_profile`.
    thickness_um : float, optional
        d; None: the visible span is used (``thickness_known`` False).
    n_bootstrap, n_strips, alpha, seed
        Strip bootstrap of ``surface_vs_interior``.
    tolerance : float
        ``surface_vs_interior`` is ``larger``/``smaller`` only when the bootstrap interval of
        the ratio excludes 1 and the ratio is beyond ``1 + tolerance`` (or its inverse).
    min_pore_pixels : int
        A zone needs this many pore pixels for its pore size (else None).
    along_axis, opposite_in_view
        As in :func:`classify_profile`.

    Returns
    -------
    dict
        Keys and definitions in ``docs/structure.md``; lengths in µm, sizes are diameters.
    """
    _check_params(alpha, tolerance, MIN_GRADIENT_RATIO)
    _, pix, _, zones, weights, _, _, cut = _setup(
        pore_mask, membrane_mask, depth_px, local_thickness_px, pixel_size_um,
        thickness_um=thickness_um, n_strips=n_strips, n_bootstrap=n_bootstrap,
        along_axis=along_axis, opposite_in_view=opposite_in_view, seed=seed, profile=False)
    out = _criteria(pix, zones, weights, cut=cut, alpha=alpha, tolerance=tolerance,
                    min_pore_pixels=min_pore_pixels)
    out["thickness_known"] = thickness_um is not None
    return out


#: Scales (Gaussian sigma, px) of the texture-scale profile: geometric from TEXTURE_SIGMA_MIN_PX
#: to at least TEXTURE_SIGMA_MAX_PX, TEXTURE_SIGMA_STEPS of them.
TEXTURE_SIGMA_MIN_PX = 0.8
TEXTURE_SIGMA_MAX_PX = 8.0
TEXTURE_SIGMA_STEPS = 12


def texture_scale_profile(image: np.ndarray, membrane_mask: np.ndarray, depth_px: np.ndarray,
                          edges_um: np.ndarray, pixel_size_um: float, *,
                          max_sigma_px: float = TEXTURE_SIGMA_MAX_PX,
                          band_rows: int = 2048) -> np.ndarray:
    """Characteristic scale of the grey-level texture per depth bin (µm), no segmentation.

    For Gaussian scales sigma (``TEXTURE_SIGMA_STEPS`` of them, geometric from 0.8 px to
    ``max_sigma_px``) the scale-normalised Laplacian ``sigma**2 * LoG_sigma(image)`` is squared;
    a bin's scale is the energy-weighted geometric mean of sigma over its membrane pixels (those
    at least ``2 * max_sigma_px`` inside the membrane, so the surface edge does not count). The
    scale grows with the feature size (pores and walls alike) but is not a pore diameter and not
    proportional to one (noise and rims add fine-scale energy: x1.55 for pores 3x larger on
    phantoms); it is used only to locate a minimum, and it keeps falling where pores become too
    small to segment: on topographic phantoms whose minimum layer has 4 px pores its minimum lay
    within one bin of the designed depth while the measured pore size was flat at the resolution
    limit over a 15-20 µm range. Computed in row bands (with a halo), so memory stays bounded on
    montages.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Grey image (any numeric dtype), data bar removed.
    membrane_mask : ndarray of bool, shape (rows, cols)
    depth_px : ndarray of float, shape (rows, cols)
        Depth below the reference surface (px).
    edges_um : ndarray of float, shape (n_bins + 1,)
        Depth bin edges (µm).
    pixel_size_um : float
    max_sigma_px : float
        Largest scale (px).
    band_rows : int
        Rows per band (memory bound; the result does not depend on it).

    Returns
    -------
    ndarray of float, shape (n_bins,)
        Texture scale per bin (µm); NaN where a bin has fewer than 100 usable pixels.
    """
    import cv2

    mem = np.asarray(membrane_mask, bool)
    out = np.full(len(edges_um) - 1, np.nan)
    rows, cols = np.nonzero(mem.any(axis=1))[0], np.nonzero(mem.any(axis=0))[0]
    if rows.size == 0:
        return out
    halo = int(math.ceil(4 * max_sigma_px))
    erode_px = int(math.ceil(2 * max_sigma_px))
    r0, r1 = max(rows[0] - halo, 0), min(rows[-1] + halo + 1, mem.shape[0])
    c0, c1 = max(cols[0] - halo, 0), min(cols[-1] + halo + 1, mem.shape[1])
    scale = max(float(np.percentile(np.asarray(image)[r0:r1:4, c0:c1:4], 99)), 1e-6)
    sigmas = np.geomspace(TEXTURE_SIGMA_MIN_PX, max(max_sigma_px, 2 * TEXTURE_SIGMA_MIN_PX),
                          TEXTURE_SIGMA_STEPS)
    energy = np.zeros(out.size)
    log_sum = np.zeros(out.size)
    count = np.zeros(out.size)
    # row bands with a halo: bounded memory on montages, the same sums as one pass
    band_rows = max(int(band_rows), 1)
    for b0 in range(r0, r1, band_rows):
        b1 = min(b0 + band_rows, r1)
        h0, h1 = max(b0 - halo, 0), min(b1 + halo, mem.shape[0])
        img = np.asarray(image[h0:h1, c0:c1], np.float32) / scale
        inner = cv2.erode(mem[h0:h1, c0:c1].astype(np.uint8), np.ones((3, 3), np.uint8),
                          iterations=erode_px, borderType=cv2.BORDER_REPLICATE).astype(bool)
        inner[:b0 - h0] = False
        inner[b1 - h0:] = False
        depth_um = np.asarray(depth_px[h0:h1, c0:c1], np.float64) * pixel_size_um
        bin_of = np.searchsorted(edges_um, depth_um, side="right") - 1
        use = inner & np.isfinite(depth_um) & (bin_of >= 0) & (bin_of < out.size)
        if not use.any():
            continue
        idx = bin_of[use]
        count += np.bincount(idx, minlength=out.size)
        for sigma in sigmas:
            smooth = cv2.GaussianBlur(img, (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT)
            lap = cv2.Laplacian(smooth, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT)
            e = np.bincount(idx, weights=(sigma * sigma * lap[use]) ** 2, minlength=out.size)
            energy += e
            log_sum += e * math.log(sigma)
    ok = (count >= 100) & (energy > 0)
    out[ok] = np.exp(log_sum[ok] / energy[ok]) * pixel_size_um
    return out


def _floor_range_um(band: pd.DataFrame | None, depth_um: float, limit_um: float
                    ) -> tuple[float, float] | None:
    """Depth range around ``depth_um`` where the measured pore size stays below the flag level
    (``RESOLUTION_MARGIN * limit_um``): the part of the profile the segmentation cannot
    resolve."""
    if band is None or band.empty:
        return None
    x = band["depth_um"].to_numpy(float)
    below = np.nan_to_num(band["pore_size_um"].to_numpy(float), nan=np.inf) < (
        RESOLUTION_MARGIN * limit_um)
    i = int(np.argmin(np.abs(x - depth_um)))
    for lo, hi in true_runs(below):
        if lo <= i <= hi:
            return float(x[lo]), float(x[hi])
    return None


def _relocate_at_resolution_limit(structure: dict[str, Any], image: np.ndarray,
                                  membrane_mask: np.ndarray, depth_px: np.ndarray,
                                  pixel_size_um: float, band: pd.DataFrame | None = None
                                  ) -> None:
    """Take a resolution-limited minimum layer's depth from the texture-scale profile.

    The measured pore size is flat over the whole floor of such a layer, so its lowest point is
    noise; the texture scale keeps its shape there. Its minimum is searched between the ends of
    the floor: the layer's extent (``min_layer_top_um`` .. ``min_layer_bottom_um``) joined with
    the run of depths around it where the measured pore size is below the flag level, one bin
    added on each side; on the profile smoothed like the bagged location of the minimum
    (``LOCATE_SMOOTHING`` x the profile smoothing), refined by a 3-point parabola. The pore-size
    estimate is kept in ``min_layer_depth_pore_size_um``.
    """
    width = float(structure.get("bin_width_um") or 0.0)
    top, bottom = structure.get("min_layer_top_um"), structure.get("min_layer_bottom_um")
    if width <= 0 or top is None or bottom is None:
        return
    limit_um = structure.get("resolution_limit_um")
    floor = (_floor_range_um(band, float(structure["min_layer_depth_um"]), float(limit_um))
             if limit_um else None)
    if floor is not None:
        top, bottom = min(top, floor[0]), max(bottom, floor[1])
    d_um = float(structure.get("d_um") or bottom + width)
    edges = np.arange(0.0, d_um + width, width)
    if edges.size < 4:
        return
    scale = texture_scale_profile(image, membrane_mask, depth_px, edges, pixel_size_um)
    x = 0.5 * (edges[:-1] + edges[1:])
    ok = np.isfinite(scale)
    if ok.sum() < 3:
        return
    filled = np.interp(x, x[ok], np.log(scale[ok]))
    sigma_bins = LOCATE_SMOOTHING * float(structure.get("smoothing_um") or width) / width
    sm = ndi.gaussian_filter1d(filled, max(sigma_bins, 0.5), mode="nearest")
    window = ok & (x >= top - width) & (x <= bottom + width)
    if not window.any():
        return
    i = int(np.nonzero(window)[0][np.argmin(sm[window])])
    depth = float(x[i])
    if 0 < i < x.size - 1:
        curv = sm[i - 1] - 2 * sm[i] + sm[i + 1]
        if curv > 0:
            depth += float(np.clip(0.5 * (sm[i - 1] - sm[i + 1]) / curv, -0.5, 0.5)) * width
    structure["min_layer_depth_pore_size_um"] = structure["min_layer_depth_um"]
    structure["min_layer_depth_um"] = depth
    # the pore-size bootstrap interval is about the wandering lowest point of a flat floor: the
    # floor itself is what is known
    structure["min_layer_depth_ci_um"] = [float(top), float(bottom)]
    structure["min_layer_depth_source"] = "texture scale"
    structure.setdefault("notes", []).append(
        f"minimum-layer depth {depth:.3g} µm from the grey-level texture scale (the pore size "
        f"is at the resolution limit from {top:.3g} to {bottom:.3g} µm; its lowest "
        f"point was {structure['min_layer_depth_pore_size_um']:.3g} µm)")


def _flag_resolution_limit(structure: dict[str, Any], details: dict[str, Any],
                           method: str | None, pixel_size_um: float) -> None:
    """Flag a minimum layer whose pores are near the smallest size the segmentation resolves.

    Flagged when its pore size is below ``RESOLUTION_MARGIN`` x ``details["resolution_limit_px"]``
    (the rule of the profile's per-bin ``at_resolution_limit``). Below that limit (see
    :data:`pipeline.segment.RESOLUTION_LIMIT_PX`) a segmentation reports about that size
    whatever the true pores are, so the profile is flat across such a layer: its true pores may
    be smaller, its contrast larger and its depth (the lowest point of a flat floor) less
    certain than the bootstrap interval says.
    """
    limit_px = details.get("resolution_limit_px")
    structure["resolution_limit_um"] = (float(limit_px) * pixel_size_um if limit_px else None)
    structure["min_layer_at_resolution_limit"] = None
    size_um = structure.get("min_layer_pore_size_um")
    if structure.get("kind") != "internal_minimum" or not limit_px or size_um is None:
        return
    at_limit = size_um < RESOLUTION_MARGIN * float(limit_px) * pixel_size_um
    structure["min_layer_at_resolution_limit"] = bool(at_limit)
    if at_limit:
        structure.setdefault("notes", []).append(
            f"minimum-layer pore size {size_um:.3g} µm is within x{RESOLUTION_MARGIN:g} of the "
            f"smallest pore the {method or 'pore'} segmentation resolves "
            f"({float(limit_px):g} px = {float(limit_px) * pixel_size_um:.3g} µm): its pores may "
            "be smaller and its depth less certain than reported")


def _flag_surface_zone_at_limit(criteria: dict[str, Any] | None, limit_um: float | None
                                ) -> None:
    """Flag a surface zone whose pores are at the resolution limit, and what it implies.

    ``surface_zone_at_resolution_limit`` is true when the surface zone's mean pore size is below
    ``RESOLUTION_MARGIN`` times the limit. There the measured size is a floor: near its limit a
    segmentation overestimates pores, the more the smaller they are (topographic, measured: 8 px
    pores read 10.5 px, 12 px 12.8 px, 16 px 16.1 px), so the true surface/interior ratio is at
    most the measured one. When the interior is above the flag level and the bootstrap interval
    of the (cut-corrected) ratio lies below 1, the surface zone is ``smaller`` even if the
    measured ratio is within the tolerance (the tolerance guards against calling small
    differences, and the flooring can only have shrunk the difference); a note says so.
    """
    if criteria is None:
        return
    criteria["surface_zone_at_resolution_limit"] = None
    surf, inter = criteria.get("surface_zone_pore_size_um"), criteria.get("interior_pore_size_um")
    if not limit_um or surf is None:
        return
    level = RESOLUTION_MARGIN * float(limit_um)
    criteria["surface_zone_at_resolution_limit"] = bool(surf < level)
    ci = criteria.get("surface_to_interior_ratio_corrected_ci")
    if (surf < level and inter is not None and inter >= level and ci is not None and ci[1] < 1
            and criteria.get("surface_vs_interior") == "equal"):
        criteria["surface_vs_interior"] = "smaller"
        criteria["surface_vs_interior_note"] = (
            f"surface-zone pores ({surf:.3g} µm) are at the segmentation's resolution limit "
            f"({float(limit_um):.3g} µm), so their true size is at most the measured one; the "
            f"corrected surface/interior ratio's interval ({ci[0]:.2f}-{ci[1]:.2f}) lies below 1")


def _note_floored_depths(structure: dict[str, Any], profile: pd.DataFrame | None) -> None:
    """Record the depth ranges whose measured pore sizes are at the resolution limit.

    ``depths_at_resolution_limit_um`` lists the runs of profile bins flagged
    ``at_resolution_limit`` ([top, bottom] in µm; empty when none, None without a profile or a
    known limit). Structure hidden there (a minimum layer of pores smaller than the limit, the
    small end of a gradient) is flattened to the floor, so a note names those depths unless a
    flagged minimum layer already says it.
    """
    if profile is None or "at_resolution_limit" not in profile or not structure.get(
            "resolution_limit_um"):
        structure["depths_at_resolution_limit_um"] = None
        return
    ranges = resolution_limited_ranges_um(profile)
    structure["depths_at_resolution_limit_um"] = [[lo, hi] for lo, hi in ranges]
    if ranges and not structure.get("min_layer_at_resolution_limit"):
        where = ", ".join(f"{lo:.3g}-{hi:.3g} µm" for lo, hi in ranges[:4])
        more = f" and {len(ranges) - 4} more" if len(ranges) > 4 else ""
        structure.setdefault("notes", []).append(
            f"pore sizes at depths {where}{more} are at the segmentation's resolution limit "
            f"({structure['resolution_limit_um']:.3g} µm): structure of smaller pores there "
            "(a minimum layer, the small end of a gradient) would not be resolved")


def analyze_structure(analysis: Analysis) -> dict[str, Any]:
    """Structure, criteria and the profile band of an :class:`~pipeline.analysis.Analysis`.

    Thin adapter over :func:`structure_and_criteria`: takes the pore mask, membrane (mask,
    depth map, thickness or visible span, orientation, surfaces in view), local thickness and
    settings (``settings.structure``; ``settings.profile.min_pore_pixels``) from the analysis.

    Returns
    -------
    dict
        ``{"structure": {...}, "criteria": {...}, "extras": {"profile_band": DataFrame}}``;
        ``structure`` and ``criteria`` are None (with a ``structure_reason``) when there is no
        depth map.
    """
    membrane = analysis.membrane
    if membrane.depth_px is None:
        return {"structure": None, "criteria": None, "extras": {}}
    st = analysis.settings.structure
    px = analysis.pixel_size_um
    thickness_um = membrane.thickness_px * px if membrane.thickness_px else None
    opposite = len(membrane.surfaces_in_view) == 2
    min_pore_pixels = int(getattr(analysis.settings.profile, "min_pore_pixels", 50))
    out = structure_and_criteria(
        analysis.segmentation.mask, membrane.mask, membrane.depth_px,
        analysis.local_thickness_px, px, thickness_um=thickness_um,
        n_bootstrap=st.n_bootstrap, n_strips=min(st.n_strips, membrane.mask.shape[
            1 if membrane.orientation == "horizontal" else 0]),
        alpha=st.alpha, tolerance=st.min_layer_tolerance,
        min_gradient_ratio=float(getattr(st, "min_gradient_ratio", MIN_GRADIENT_RATIO)),
        min_pore_pixels=min_pore_pixels,
        along_axis=1 if membrane.orientation == "horizontal" else 0,
        opposite_in_view=opposite, seed=st.seed)
    s = out["structure"]
    s["reference_surface"] = membrane.reference_surface
    seg = analysis.segmentation
    _flag_resolution_limit(s, getattr(seg, "details", None) or {}, getattr(seg, "method", None),
                           px)
    _flag_surface_zone_at_limit(out["criteria"], s.get("resolution_limit_um"))
    _note_floored_depths(s, analysis.profile)
    s["min_layer_depth_source"] = "pore size" if s.get("kind") == "internal_minimum" else None
    micrograph = getattr(analysis, "micrograph", None)
    if s.get("min_layer_at_resolution_limit") and micrograph is not None:
        image = micrograph.image
        labels = getattr(micrograph, "annotations_px", None)
        if labels:  # burned-in labels: no drawn edges in the texture measure near them
            from .burnin import fill_annotations

            image = fill_annotations(image, labels, along="rows" if membrane.orientation ==
                                     "horizontal" else "columns")
        if image.shape == membrane.mask.shape:
            _relocate_at_resolution_limit(s, image, membrane.mask, membrane.depth_px, px,
                                          out["extras"].get("profile_band"))
    if not opposite:
        span = membrane.visible_span_px
        s["visible_span_um"] = span * px if span is not None else s["d_um"]
    out["criteria"].update(skin_criteria(analysis.segmentation.mask, membrane, px,
                                         out["criteria"].get("interior_porosity")))
    _surface_zone_in_skin(out["criteria"])
    return out


def _surface_zone_in_skin(criteria: dict[str, Any]) -> None:
    """A surface zone that lies inside the dense skin measured at the surface is ``smaller``.

    ``skin_thickness_um`` is where the porosity of thin layers under the surface line first
    reaches half the interior's; when it is at least ``surface_zone_um`` (d/16), every layer of
    the zone holds less than half the interior's porosity: the zone is the dense skin, whatever
    the size of the few pores found in it. Those are not a porous layer: on topographic
    renderings they are mostly the skin's flat face cut into noise basins and called pore, and
    their local thickness is large because the face is wide (a 5 µm skin over finger-like
    macrovoids read ``larger``, ratio 2.1, from such pores at porosity 0.09 against 0.52 in the
    interior). The verdict becomes ``smaller`` with a note; the measured sizes are kept.
    """
    skin, zone = criteria.get("skin_thickness_um"), criteria.get("surface_zone_um")
    if (skin is None or not zone or skin < zone
            or criteria.get("interior_pore_size_um") is None
            or criteria.get("surface_vs_interior") == "smaller"):
        return
    before = criteria.get("surface_vs_interior")
    criteria["surface_vs_interior"] = "smaller"
    criteria["surface_vs_interior_note"] = (
        f"the surface zone (0-{zone:.3g} µm) lies inside the dense skin measured at the surface "
        f"({skin:.3g} µm, porosity below half the interior's): dense skin"
        + (f"; the few pores found in it read {before} by their size" if before else ""))


SKIN_DEFINITION = ("depth below the surface line where the porosity of 1-px layers (measured "
                   "perpendicular to the line) first reaches half the interior porosity; 0 when "
                   "that is under 3 px (no skin resolved), null when it is not reached within a "
                   "quarter of the span")


def skin_criteria(pore_mask: np.ndarray, membrane: Any, pixel_size_um: float,
                  interior_porosity: float | None) -> dict[str, Any]:
    """``skin_thickness_um`` at the reference surface and ``opposite_skin_thickness_um`` (None
    when the opposite surface is not in view), by :func:`pipeline.profile.skin_thickness_px`
    (see :data:`SKIN_DEFINITION`)."""
    out: dict[str, Any] = {"skin_thickness_um": None, "opposite_skin_thickness_um": None,
                           "skin_definition": SKIN_DEFINITION}
    ref = membrane.reference_surface
    if interior_porosity is None or ref not in ("top", "bottom", "left", "right"):
        return out
    span = membrane.thickness_px or membrane.visible_span_px
    if not span:
        return out
    horizontal = membrane.orientation == "horizontal"
    first = ref in ("top", "left")  # the reference line is the upper / left one
    sides = [("skin_thickness_um", membrane.top_px if first else membrane.bottom_px, first)]
    if len(membrane.surfaces_in_view) == 2:
        sides.append(("opposite_skin_thickness_um",
                      membrane.bottom_px if first else membrane.top_px, not first))
    for key, line, below in sides:
        if line is None:
            continue
        layers = surface_layer_porosity(pore_mask, membrane.mask, line, horizontal=horizontal,
                                        below=below, max_depth_px=max(8.0, float(span) / 4))
        t = skin_thickness_px(layers, float(interior_porosity))
        out[key] = None if t is None else t * float(pixel_size_um)
    return out
