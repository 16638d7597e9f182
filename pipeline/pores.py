"""Pore by pore: the table ImageJ's "Analyze Particles" gives, in micrometres.

Labs that measured pores by hand report pore counts and equivalent-circle diameters; sempore's
depth profile reports local thickness. :func:`pore_table` gives both views of the same mask, one
row per pore (4-connected, so that a one-pixel wall line keeps two cells apart): area,
equivalent-circle diameter, the ellipse of equal second moments (major / minor axis, aspect ratio,
orientation in the contract's angle convention), the largest inscribed disk (the pore's own
local-thickness size) and the mean local thickness, the mean depth below the reference surface,
and whether the pore is cut by the frame or a label left out (then its measures are lower
bounds). :func:`pore_summary` condenses it for result.json.

Everything is computed with per-label sums and maxima over bands of rows (no per-pore Python
loop, no full-size float64 temporaries): 0.3 s for a 2048 x 1536 mask of 900 pores, 0.9 s for
4096 x 3072 and 3600 pores (about twice :func:`pipeline.size.local_thickness` on the same mask);
the moments are tested against :func:`skimage.measure.regionprops`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Columns of :func:`pore_table` (lengths in µm, areas in µm², positions in px of the analysed
#: image).
PORE_COLUMNS = (
    "pore", "row_px", "col_px", "depth_um", "area_um2", "equivalent_diameter_um",
    "major_axis_um", "minor_axis_um", "aspect_ratio", "orientation_deg",
    "orientation_to_surface_deg", "max_local_thickness_um", "mean_local_thickness_um", "cut",
)
#: Pores are 4-connected: diagonal neighbours across a one-pixel wall line stay apart.
PORE_CONNECTIVITY = 4
_BAND_ROWS = 1024


def _label_sums(labels: np.ndarray, n: int, values: list[np.ndarray | str | tuple],
                maxima: list[np.ndarray] = ()) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per label (0..n-1) sums of each of ``values`` and maxima of each of ``maxima`` over its
    pixels, in bands of rows. A value is an array of the labels' shape or one of ``"r"``,
    ``"c"``, ``"rr"``, ``"cc"``, ``"rc"`` (pixel row / column coordinates and their products);
    a value array's NaN pixels are left out of its sum (count them with ``isfinite`` of it:
    pass ``("finite", array)``)."""
    rows, cols = labels.shape
    sums = [np.zeros(n, np.float64) for _ in values]
    tops = [np.full(n, -np.inf) for _ in maxima]
    col = np.arange(cols, dtype=np.float64)
    for r0 in range(0, rows, _BAND_ROWS):
        r1 = min(r0 + _BAND_ROWS, rows)
        lab = labels[r0:r1]
        keep = lab > 0
        idx = lab[keep]
        rr, cc = np.nonzero(keep)
        r = (rr + r0).astype(np.float64)
        c = col[cc]
        for k, v in enumerate(values):
            if isinstance(v, str):
                w = {"r": r, "c": c, "rr": r * r, "cc": c * c, "rc": r * c}[v]
            elif isinstance(v, tuple):  # ("finite", array): count of the finite pixels
                w = np.isfinite(v[1][r0:r1][keep]).astype(np.float64)
            else:
                w = np.nan_to_num(np.asarray(v[r0:r1], np.float64)[keep], nan=0.0)
            sums[k] += np.bincount(idx, weights=w, minlength=n)
        for k, v in enumerate(maxima):
            np.maximum.at(tops[k], idx, np.asarray(v[r0:r1], np.float64)[keep])
    return sums, tops


def pore_table(
    mask: np.ndarray,
    pixel_size_um: float,
    *,
    local_thickness_px: np.ndarray | None = None,
    depth_px: np.ndarray | None = None,
    cut: np.ndarray | None = None,
    min_area_px: float = 0.0,
    surface_angle_deg: float | None = None,
) -> pd.DataFrame:
    """One row per pore of ``mask``, in µm.

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, cols)
        Pore mask.
    pixel_size_um : float
    local_thickness_px : ndarray of float, shape (rows, cols), optional
        :func:`pipeline.size.local_thickness` of ``mask`` (px); gives the max / mean local
        thickness columns (NaN without it).
    depth_px : ndarray of float, shape (rows, cols), optional
        Depth below the reference surface (px; NaN outside the membrane); gives ``depth_um``,
        the mean depth of the pore's pixels.
    cut : ndarray of bool, shape (rows, cols), optional
        Pixels of pores cut by the frame or a label left out
        (:attr:`pipeline.segment.Segmentation.edge_pores`); a pore holding one is ``cut``.
    min_area_px : float
        Components smaller than this are not listed (fragments: a pixel or two that touch a
        pore only diagonally, cut off by a wall line); ``table.attrs["n_fragments"]`` counts
        them. :meth:`pipeline.analysis.Analysis.pore_table` passes the segmentation's smallest
        pore.
    surface_angle_deg : float, optional
        Display angle of the reference surface (:func:`pipeline.isotropy.surface_angle_deg`);
        gives ``orientation_to_surface_deg`` (NaN without it).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PORE_COLUMNS`: ``pore`` (1..n, in raster order of the first pixel),
        centroid ``row_px`` / ``col_px``, ``depth_um``, ``area_um2``,
        ``equivalent_diameter_um`` (of the circle of the same area), ``major_axis_um`` /
        ``minor_axis_um`` (the ellipse of the same second moments, as
        :func:`skimage.measure.regionprops` defines them), ``aspect_ratio`` (major / minor;
        inf for a one-pixel-wide line), ``orientation_deg`` (the major axis, degrees in
        [0, 180) counter-clockwise from the image's +x axis as displayed;
        ``orientation_to_surface_deg`` the same from the surface line: 90 is a pore elongated
        across the membrane, like a finger-like macrovoid; both are noise for near-round pores,
        read them where ``aspect_ratio`` is well above 1), the largest and the mean local
        thickness, ``cut``.
    """
    import cv2

    mask = np.ascontiguousarray(np.asarray(mask, bool))
    px = float(pixel_size_um)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.view(np.uint8), connectivity=PORE_CONNECTIVITY, ltype=cv2.CV_32S)
    if n <= 1:
        empty = pd.DataFrame({c: pd.Series(dtype=bool if c == "cut" else float)
                              for c in PORE_COLUMNS})
        empty.attrs["n_fragments"] = 0
        return empty
    values: list[np.ndarray | str | tuple] = ["r", "c", "rr", "cc", "rc"]
    if depth_px is not None:
        depth = np.asarray(depth_px, np.float32)
        values += [depth, ("finite", depth)]
    maxima: list[np.ndarray] = []
    if local_thickness_px is not None:
        values.append(np.asarray(local_thickness_px, np.float32))
        maxima.append(np.asarray(local_thickness_px, np.float32))
    if cut is not None and np.any(cut):
        maxima.append(np.asarray(cut, np.uint8))
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    sums, tops = _label_sums(labels, n, values, maxima)
    sr, sc, srr, scc, src = sums[:5]
    a = area[1:]
    r_bar, c_bar = sr[1:] / a, sc[1:] / a
    mu_rr = srr[1:] / a - r_bar**2
    mu_cc = scc[1:] / a - c_bar**2
    mu_rc = src[1:] / a - r_bar * c_bar
    # ellipse of equal second moments (display axes x = col, y = -row)
    half_trace = (mu_rr + mu_cc) / 2
    root = np.sqrt(np.maximum(((mu_cc - mu_rr) / 2) ** 2 + mu_rc**2, 0))
    major = 4 * np.sqrt(np.maximum(half_trace + root, 0))
    minor = 4 * np.sqrt(np.maximum(half_trace - root, 0))
    angle = np.degrees(0.5 * np.arctan2(-2 * mu_rc, mu_cc - mu_rr)) % 180.0
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.where(minor > 0, major / np.where(minor > 0, minor, 1), np.inf)
    table = {
        "pore": np.arange(1, n),
        "row_px": r_bar,
        "col_px": c_bar,
        "depth_um": np.full(n - 1, np.nan),
        "area_um2": a * px * px,
        "equivalent_diameter_um": 2 * np.sqrt(a / math.pi) * px,
        "major_axis_um": major * px,
        "minor_axis_um": minor * px,
        "aspect_ratio": aspect,
        "orientation_deg": angle,
        "orientation_to_surface_deg": (np.full(n - 1, np.nan) if surface_angle_deg is None
                                       else (angle - float(surface_angle_deg)) % 180.0),
        "max_local_thickness_um": np.full(n - 1, np.nan),
        "mean_local_thickness_um": np.full(n - 1, np.nan),
        "cut": np.zeros(n - 1, bool),
    }
    k = 5
    if depth_px is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            table["depth_um"] = np.where(sums[k + 1][1:] > 0,
                                         sums[k][1:] / sums[k + 1][1:], np.nan) * px
        k += 2
    if local_thickness_px is not None:
        table["mean_local_thickness_um"] = sums[k][1:] / a * px
        table["max_local_thickness_um"] = tops[0][1:] * px
    if cut is not None and np.any(cut):
        table["cut"] = tops[-1][1:] > 0
    out = pd.DataFrame(table, columns=list(PORE_COLUMNS))
    small = a < min_area_px
    if small.any():
        out = out[~small].reset_index(drop=True)
        out["pore"] = np.arange(1, len(out) + 1)
    out.attrs["n_fragments"] = int(small.sum())
    return out


def pore_summary(table: pd.DataFrame, membrane_area_um2: float | None = None) -> dict:
    """result.json's ``pores`` block: counts, number density and the equivalent-diameter,
    largest-inscribed-disk and aspect-ratio statistics of the pores not cut by the frame or a
    label (cut pores are only counted: their sizes are lower bounds)."""
    whole = table[~table["cut"].astype(bool)]

    def stats(values: pd.Series) -> dict:
        v = values.to_numpy(np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return {"mean": None, "median": None, "p10": None, "p90": None}
        q = np.quantile(v, (0.5, 0.1, 0.9))
        return {"mean": float(v.mean()), "median": float(q[0]), "p10": float(q[1]),
                "p90": float(q[2])}

    n = int(len(table))
    return {
        "n_pores": n,
        "n_cut": int(n - len(whole)),
        "n_fragments": int(table.attrs.get("n_fragments", 0)),
        "connectivity": PORE_CONNECTIVITY,
        "number_per_um2": (n / membrane_area_um2 if membrane_area_um2 else None),
        "equivalent_diameter_um": stats(whole["equivalent_diameter_um"]),
        "max_local_thickness_um": stats(whole["max_local_thickness_um"]),
        "aspect_ratio": stats(whole["aspect_ratio"]),
        "area_um2_total": float(table["area_um2"].sum()),
        "definition": "4-connected pores of the pore mask (fragments smaller than the smallest "
                      "pore kept by the segmentation are counted apart); statistics over the pores "
                      "not cut by the frame or a label left out (pores.csv holds every pore)",
    }
