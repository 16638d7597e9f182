"""Porosity and pore size against depth below the reference surface."""

from __future__ import annotations

import numpy as np
import pandas as pd

PROFILE_COLUMNS = (
    "depth_um", "depth_lo_um", "depth_hi_um", "porosity", "pore_size_um", "pore_size_median_um",
    "pore_size_p10_um", "pore_size_p90_um", "n_pixels", "n_pore_pixels", "edge_pore_fraction",
    "reliable", "at_resolution_limit",
)

#: A bin whose mean pore size is below this multiple of the segmentation's resolution limit is
#: ``at_resolution_limit`` (its true pores may be smaller than measured; see
#: :data:`pipeline.segment.RESOLUTION_LIMIT_PX`). The structure stage flags a minimum layer by the
#: same rule.
RESOLUTION_MARGIN = 1.25


def default_bin_width_um(span_um: float, pixel_size_um: float) -> float:
    """Depth-bin width (µm) for a visible depth span.

    About 40 bins over the span, never thinner than 2 px (a bin must hold whole pixel rows
    even on a tilted membrane) and rounded to a 1-2-5 series so tables of a series line up.
    """
    raw = max(span_um / 40.0, 2.0 * pixel_size_um)
    exponent = np.floor(np.log10(raw))
    for step in (1.0, 2.0, 5.0, 10.0):
        width = step * 10.0**exponent
        if width >= raw * 0.999:
            return float(width)
    return float(raw)  # pragma: no cover


_CHUNK = 1 << 22  # elements per chunk of the per-pixel passes (bounded temporaries)


def _exact_radius2(size_px: np.ndarray) -> np.ndarray | None:
    """Squared radii as int32 when every diameter is 2*sqrt(integer) (exact local thickness).

    Checked and converted in chunks, so no full-length float64 copy is made.
    """
    out = np.empty(size_px.size, np.int32)
    for start in range(0, size_px.size, _CHUNK):
        v = size_px[start:start + _CHUNK].astype(np.float64)
        k = np.rint(np.square(v / 2.0))
        if k.size and (k.max() > 2**31 - 1
                       or not np.allclose(2.0 * np.sqrt(k), v, rtol=0, atol=1e-3)):
            return None
        out[start:start + _CHUNK] = k
    return out


def _chunked_bincount(index: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    """``np.bincount(index, weights, minlength=n)`` in chunks (bincount makes float64 weights)."""
    total = np.zeros(n, np.float64 if weights is not None else np.int64)
    for start in range(0, index.size, _CHUNK):
        w = None if weights is None else weights[start:start + _CHUNK]
        total += np.bincount(index[start:start + _CHUNK], w, minlength=n)
    return total


def grouped_quantiles(
    group: np.ndarray, values: np.ndarray, n_groups: int, qs: tuple[float, ...]
) -> np.ndarray:
    """Quantiles (numpy's default linear interpolation) of ``values`` within each group.

    Parameters
    ----------
    group : ndarray of int, shape (n,)
        Group index in [0, n_groups) of each value.
    values : ndarray of float, shape (n,)
    n_groups : int
    qs : tuple of float
        Quantile levels in [0, 1].

    Returns
    -------
    ndarray of float64, shape (n_groups, len(qs))
        NaN for empty groups.

    Notes
    -----
    Local-thickness diameters are 2*sqrt(k) for integer k. Then the order statistics come from a
    (group, k) histogram in O(n + n_groups * k_max) with no sort and no float64 copy of the data;
    other values fall back to one sort by (group, value).
    """
    out = np.full((n_groups, len(qs)), np.nan)
    if values.size == 0:
        return out
    k = _exact_radius2(values)
    if k is not None and (k_max := int(k.max()) + 1) * n_groups <= 50_000_000:
        counts = np.zeros(n_groups * k_max, np.int64)
        for start in range(0, k.size, _CHUNK):
            cell = group[start:start + _CHUNK].astype(np.int64) * k_max + k[start:start + _CHUNK]
            counts += np.bincount(cell, minlength=n_groups * k_max)
        del k
        counts = counts.reshape(n_groups, k_max)
        levels = 2.0 * np.sqrt(np.arange(k_max, dtype=np.float64))
        cum = np.cumsum(counts, axis=1)
        for g in range(n_groups):
            n = int(cum[g, -1])
            if n == 0:
                continue
            for j, q in enumerate(qs):
                h = (n - 1) * q
                lo = int(np.floor(h))
                hi = min(lo + 1, n - 1)
                v_lo = levels[np.searchsorted(cum[g], lo, side="right")]
                v_hi = levels[np.searchsorted(cum[g], hi, side="right")]
                out[g, j] = v_lo + (h - lo) * (v_hi - v_lo)
        return out
    order = np.lexsort((values, group))
    sorted_values = values[order]
    sorted_group = group[order]
    starts = np.searchsorted(sorted_group, np.arange(n_groups), side="left")
    stops = np.searchsorted(sorted_group, np.arange(n_groups), side="right")
    for g in range(n_groups):
        if stops[g] > starts[g]:
            out[g] = np.quantile(sorted_values[starts[g]:stops[g]], qs)
    return out


def depth_profile(
    pore_mask: np.ndarray,
    membrane_mask: np.ndarray,
    depth_px: np.ndarray,
    local_thickness_px: np.ndarray,
    pixel_size_um: float,
    *,
    bin_width_um: float | None = None,
    min_pore_pixels: int = 50,
    edge_pores: np.ndarray | None = None,
    max_depth_um: float | None = None,
    resolution_limit_px: float | None = None,
) -> pd.DataFrame:
    """Porosity and local pore-size statistics in depth bins.

    Parameters
    ----------
    pore_mask : ndarray of bool, shape (rows, cols)
    membrane_mask : ndarray of bool, shape (rows, cols)
    depth_px : ndarray of float, shape (rows, cols)
        Distance from the reference surface in px (NaN outside the membrane).
    local_thickness_px : ndarray of float, shape (rows, cols)
        Local pore diameter in px (0 outside pores).
    pixel_size_um : float
    bin_width_um : float, optional
        Bin width in µm (default :func:`default_bin_width_um`).
    min_pore_pixels : int
        Bins with fewer pore pixels get NaN pore-size statistics and ``reliable = False``;
        their porosity is still reported.
    edge_pores : ndarray of bool, optional
        Pore pixels of pores cut by the image frame; their share per bin is reported.
    max_depth_um : float, optional
        Deepest bin edge (default: the deepest membrane pixel).
    resolution_limit_px : float, optional
        Smallest pore diameter (px) the segmentation resolves (the method's
        ``details["resolution_limit_px"]``). A reliable bin whose mean pore size is below
        ``RESOLUTION_MARGIN`` times it is ``at_resolution_limit``: measured sizes there are
        floored, the true pores may be smaller. None (a mask of unknown origin): the column is
        missing data (``pd.NA``), not False.

    Returns
    -------
    pandas.DataFrame
        One row per bin, columns :data:`PROFILE_COLUMNS`. Depths are bin centres in µm;
        pore sizes are diameters in µm. ``attrs["bin_width_um"]`` holds the bin width,
        ``attrs["resolution_limit_um"]`` the resolution limit (None when not given).
    """
    depth_px = np.asarray(depth_px)
    px = float(pixel_size_um)
    membrane = np.asarray(membrane_mask, bool) & np.isfinite(depth_px)
    if max_depth_um is not None:
        membrane &= depth_px <= np.float32(max_depth_um / px)
    if not membrane.any():
        return pd.DataFrame({c: [] for c in PROFILE_COLUMNS})
    d_px = depth_px[membrane].astype(np.float32, copy=False)  # 1-D, membrane pixels only
    deepest = float(d_px.max()) * px if max_depth_um is None else float(max_depth_um)
    width = bin_width_um or default_bin_width_um(deepest, px)
    n_bins = max(1, int(np.ceil(deepest / width - 1e-9)))
    edges = np.arange(n_bins + 1) * width
    np.multiply(d_px, np.float32(px / width), out=d_px)
    idx = np.minimum(d_px.astype(np.int32), n_bins - 1)
    del d_px
    pores = np.asarray(pore_mask, bool)
    is_pore = pores[membrane]
    pore_sel = membrane & pores

    n_pixels = np.bincount(idx, minlength=n_bins)
    pore_idx = idx[is_pore]
    del idx, is_pore
    n_pore = np.bincount(pore_idx, minlength=n_bins)
    size_px = np.asarray(local_thickness_px)[pore_sel].astype(np.float32, copy=False)
    sums_px = _chunked_bincount(pore_idx, size_px, n_bins)
    if edge_pores is not None:
        edge = np.asarray(edge_pores, bool)[pore_sel]
        n_edge = np.bincount(pore_idx[edge], minlength=n_bins)
    else:
        n_edge = np.zeros(n_bins)
    quantiles = grouped_quantiles(pore_idx, size_px, n_bins, (0.5, 0.1, 0.9)) * px

    reliable = n_pore >= min_pore_pixels
    with np.errstate(invalid="ignore", divide="ignore"):
        porosity = np.where(n_pixels > 0, n_pore / np.maximum(n_pixels, 1), np.nan)
        mean = np.where(reliable, sums_px * px / np.maximum(n_pore, 1), np.nan)
        edge_fraction = np.where(n_pore > 0, n_edge / np.maximum(n_pore, 1), np.nan)
    quantiles[~reliable] = np.nan
    table = pd.DataFrame({
        "depth_um": (edges[:-1] + edges[1:]) / 2,
        "depth_lo_um": edges[:-1],
        "depth_hi_um": edges[1:],
        "porosity": porosity,
        "pore_size_um": mean,
        "pore_size_median_um": quantiles[:, 0],
        "pore_size_p10_um": quantiles[:, 1],
        "pore_size_p90_um": quantiles[:, 2],
        "n_pixels": n_pixels.astype(np.int64),
        "n_pore_pixels": n_pore.astype(np.int64),
        "edge_pore_fraction": edge_fraction,
        "reliable": reliable,
        "at_resolution_limit": _at_limit(mean, reliable, resolution_limit_px, px),
    })
    table = table[table["n_pixels"] > 0].reset_index(drop=True)
    table.attrs["bin_width_um"] = width
    table.attrs["resolution_limit_um"] = (float(resolution_limit_px) * px
                                          if resolution_limit_px else None)
    return table


def _at_limit(mean_um: np.ndarray, reliable: np.ndarray, limit_px: float | None, px: float
              ) -> pd.Series:
    """Per-bin ``at_resolution_limit`` (nullable bool): NA where unknown or unreliable."""
    flag = pd.array(np.zeros(mean_um.size, bool), dtype="boolean")
    if not limit_px:
        flag[:] = pd.NA
        return pd.Series(flag)
    with np.errstate(invalid="ignore"):
        flag[:] = mean_um < RESOLUTION_MARGIN * float(limit_px) * px
    flag[~reliable] = pd.NA
    return pd.Series(flag)


def resolution_limited_ranges_um(profile: pd.DataFrame) -> list[tuple[float, float]]:
    """Depth ranges (µm) of consecutive bins flagged ``at_resolution_limit``.

    Returns
    -------
    list of (top_um, bottom_um)
        Bin edges of each run of flagged bins, shallowest first; empty when none is flagged or
        the profile has no such column.
    """
    if "at_resolution_limit" not in profile or profile.empty:
        return []
    lo = profile["depth_lo_um"].to_numpy(float)
    hi = profile["depth_hi_um"].to_numpy(float)
    return [(float(lo[a]), float(hi[b])) for a, b in
            true_runs(profile["at_resolution_limit"].fillna(False).to_numpy(bool))]


def true_runs(flag: np.ndarray) -> list[tuple[int, int]]:
    """First and last index of each run of consecutive True values of a 1-D bool array."""
    idx = np.flatnonzero(flag)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return [(int(r[0]), int(r[-1])) for r in runs if r.size]


# ------------------------------------------------------------------------------------------------
# the dense skin at a surface, at pixel resolution

#: A skin is reported from this thickness on (px): thinner is within the surface line's own error
#: (on phantoms with pores open at the surface the porosity reaches half its interior value
#: 0-1.7 px below the found line).
MIN_SKIN_PX = 3.0
#: The skin ends where the porosity first reaches this fraction of the interior porosity.
SKIN_POROSITY_FRACTION = 0.5


def surface_layer_porosity(pore_mask: np.ndarray, membrane_mask: np.ndarray, line_px: np.ndarray,
                           *, horizontal: bool = True, below: bool = True,
                           max_depth_px: float = 64.0, chunk: int = 512) -> np.ndarray:
    """Porosity of the 1-px layers of depth under a surface line, to ``max_depth_px``.

    Depth is measured perpendicular to the line (its vertical distance times the cosine of its
    local slope), so a tilted surface gives the same layers; only the pixels within
    ``max_depth_px`` of the line are read, chunk by chunk of columns.

    Parameters
    ----------
    pore_mask, membrane_mask : ndarray of bool, shape (rows, cols)
    line_px : ndarray of float
        The surface: its row for every column (``horizontal``), else its column for every row.
    horizontal : bool
    below : bool
        The membrane lies below (at larger rows / columns than) the line.
    max_depth_px : float

    Returns
    -------
    ndarray of float, shape (ceil(max_depth_px),)
        Porosity of layer k (depth k..k+1 px; NaN for a layer without membrane pixels).
    """
    return surface_layer_mean(np.asarray(pore_mask, bool), membrane_mask, line_px,
                              horizontal=horizontal, below=below, max_depth_px=max_depth_px,
                              chunk=chunk)


def surface_layer_mean(values: np.ndarray, region_mask: np.ndarray, line_px: np.ndarray, *,
                       horizontal: bool = True, below: bool = True, max_depth_px: float = 64.0,
                       chunk: int = 512) -> np.ndarray:
    """Mean of ``values`` over the ``region_mask`` pixels of each 1-px layer beside a line.

    The layers of :func:`surface_layer_porosity` (which is this with the pore mask as values),
    for any per-pixel quantity, e.g. grey levels; with ``below`` False and the background as
    the region, the layers outside a surface line.

    Parameters
    ----------
    values : ndarray, shape (rows, cols)
        Bool or numeric.
    region_mask : ndarray of bool, shape (rows, cols)
    line_px : ndarray of float
        Row per column (``horizontal``), else column per row.
    horizontal, below : bool
        As in :func:`surface_layer_porosity`: the layers lie at larger rows / columns than the
        line when ``below``.
    max_depth_px : float
    chunk : int
        Columns read at a time.

    Returns
    -------
    ndarray of float, shape (ceil(max_depth_px),)
        Mean of layer k (distance k..k+1 px from the line; NaN for a layer without region pixels).
    """
    vals = np.asarray(values)
    region = np.asarray(region_mask, bool)
    if not horizontal:
        vals, region = vals.T, region.T
    line = np.asarray(line_px, np.float64)
    rows, cols = region.shape
    n_layers = int(np.ceil(max_depth_px))
    n_pix = np.zeros(n_layers)
    total = np.zeros(n_layers)
    cos = 1.0 / np.sqrt(1.0 + np.gradient(np.nan_to_num(line, nan=np.nanmedian(line))) ** 2)
    for c0 in range(0, cols, chunk):
        c1 = min(cols, c0 + chunk)
        seg, cs = line[c0:c1], cos[c0:c1]
        ok = np.isfinite(seg)
        if not ok.any():
            continue
        reach = max_depth_px / float(cs[ok].min()) + 1
        lo = int(max(0, np.floor(np.nanmin(seg) - (reach if not below else 1))))
        hi = int(min(rows, np.ceil(np.nanmax(seg) + (reach if below else 1)) + 1))
        r = np.arange(lo, hi, dtype=np.float64)[:, None]
        depth = ((r - seg[None, :]) if below else (seg[None, :] - r)) * cs[None, :]
        layer = np.floor(depth).astype(np.int64)
        keep = region[lo:hi, c0:c1] & (layer >= 0) & (layer < n_layers) & ok[None, :]
        n_pix += np.bincount(layer[keep], minlength=n_layers)
        total += np.bincount(layer[keep], weights=vals[lo:hi, c0:c1][keep].astype(np.float64),
                             minlength=n_layers)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pix > 0, total / n_pix, np.nan)


#: The porosity must stay at or above the skin's threshold over this many layers: the first
#: pixel or two under a surface against a dark background blur into it and read as pore.
SKIN_RUN_PX = 3


def skin_thickness_px(layer_porosity: np.ndarray, interior_porosity: float, *,
                      fraction: float = SKIN_POROSITY_FRACTION,
                      min_px: float = MIN_SKIN_PX, run: int = SKIN_RUN_PX) -> float | None:
    """Thickness (px) of the dense layer at a surface: the depth from which the porosity of the
    1-px layers (:func:`surface_layer_porosity`) stays at or above ``fraction`` of the interior
    porosity for ``run`` layers, interpolated between layer centres; 0.0 when that is less than
    ``min_px`` (no skin resolved); None when it never does within the layers given or there is
    no interior."""
    p = np.asarray(layer_porosity, np.float64)
    target = fraction * float(interior_porosity)
    if not np.isfinite(target) or target <= 0:
        return None
    above = np.nan_to_num(p, nan=-1.0) >= target
    run = max(1, min(int(run), above.size))
    stays = np.ones(above.size - run + 1, bool)
    for k in range(run):
        stays &= above[k:above.size - run + 1 + k]
    reached = np.nonzero(stays)[0]
    if reached.size == 0:
        return None
    i = int(reached[0])
    if i == 0:
        return 0.0
    prev = p[i - 1] if np.isfinite(p[i - 1]) else 0.0
    depth = (i - 0.5) + (target - prev) / max(p[i] - prev, 1e-12)
    return float(depth) if depth >= min_px else 0.0
