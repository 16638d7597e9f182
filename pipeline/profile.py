"""Porosity and pore size against depth below the reference surface."""

from __future__ import annotations

import numpy as np
import pandas as pd

PROFILE_COLUMNS = (
    "depth_um", "depth_lo_um", "depth_hi_um", "porosity", "pore_size_um", "pore_size_median_um",
    "pore_size_p10_um", "pore_size_p90_um", "n_pixels", "n_pore_pixels", "edge_pore_fraction",
    "reliable",
)


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

    Returns
    -------
    pandas.DataFrame
        One row per bin, columns :data:`PROFILE_COLUMNS`. Depths are bin centres in µm;
        pore sizes are diameters in µm.
    """
    pore = np.asarray(pore_mask, bool)
    membrane = np.asarray(membrane_mask, bool) & np.isfinite(depth_px)
    depth_um = np.asarray(depth_px, np.float64) * pixel_size_um
    if not membrane.any():
        return pd.DataFrame({c: [] for c in PROFILE_COLUMNS})
    d = depth_um[membrane]
    deepest = float(d.max()) if max_depth_um is None else float(max_depth_um)
    width = bin_width_um or default_bin_width_um(deepest, pixel_size_um)
    n_bins = max(1, int(np.ceil(deepest / width - 1e-9)))
    edges = np.arange(n_bins + 1) * width
    idx = np.clip((d / width).astype(np.int64), 0, n_bins - 1)
    keep = d <= edges[-1] + 1e-9
    idx = idx[keep]
    is_pore = pore[membrane][keep]
    size_um = np.asarray(local_thickness_px, np.float64)[membrane][keep] * pixel_size_um
    edge = (np.asarray(edge_pores, bool)[membrane][keep] if edge_pores is not None
            else np.zeros(idx.size, bool))

    n_pixels = np.bincount(idx, minlength=n_bins)
    n_pore = np.bincount(idx, weights=is_pore, minlength=n_bins).astype(np.int64)
    n_edge = np.bincount(idx, weights=is_pore & edge, minlength=n_bins)
    sums = np.bincount(idx[is_pore], weights=size_um[is_pore], minlength=n_bins)

    # order statistics per bin from one sort of (bin, size)
    pidx = idx[is_pore]
    psize = size_um[is_pore]
    order = np.lexsort((psize, pidx))
    pidx, psize = pidx[order], psize[order]
    starts = np.searchsorted(pidx, np.arange(n_bins), side="left")
    stops = np.searchsorted(pidx, np.arange(n_bins), side="right")

    def quantile(q: float) -> np.ndarray:
        out = np.full(n_bins, np.nan)
        for b in range(n_bins):
            if stops[b] > starts[b]:
                out[b] = np.quantile(psize[starts[b]:stops[b]], q)
        return out

    reliable = n_pore >= min_pore_pixels
    with np.errstate(invalid="ignore", divide="ignore"):
        porosity = np.where(n_pixels > 0, n_pore / np.maximum(n_pixels, 1), np.nan)
        mean = np.where(reliable, sums / np.maximum(n_pore, 1), np.nan)
        edge_fraction = np.where(n_pore > 0, n_edge / np.maximum(n_pore, 1), np.nan)
    median, p10, p90 = quantile(0.5), quantile(0.1), quantile(0.9)
    for arr in (median, p10, p90):
        arr[~reliable] = np.nan
    table = pd.DataFrame({
        "depth_um": (edges[:-1] + edges[1:]) / 2,
        "depth_lo_um": edges[:-1],
        "depth_hi_um": edges[1:],
        "porosity": porosity,
        "pore_size_um": mean,
        "pore_size_median_um": median,
        "pore_size_p10_um": p10,
        "pore_size_p90_um": p90,
        "n_pixels": n_pixels.astype(np.int64),
        "n_pore_pixels": n_pore,
        "edge_pore_fraction": edge_fraction,
        "reliable": reliable,
    })
    table = table[table["n_pixels"] > 0].reset_index(drop=True)
    table.attrs["bin_width_um"] = width
    return table
