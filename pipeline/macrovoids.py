"""Macrovoids: voids much wider than the pore matrix around them.

Membranes made by non-solvent induced phase separation (NIPS) often hold finger-like or
tear-drop macrovoids under a dense skin, in a sponge of much smaller pores; whether they are
there, how deep they start, how far into the membrane they reach and how wide they are is what
membrane makers report about them. In the pore mask a macrovoid joins the sponge pores around it
into one connected pore, so neither the pore table (:mod:`pipeline.pores`) nor the depth profile
shows it as one object; local thickness does: every pixel of a void of width w has a local
thickness of about w, every pixel of the sponge about the sponge's pore size.

Definition (:func:`find_macrovoids`):

- the **matrix pore size** at each depth is the typical local thickness of the pore pixels
  around that depth (a window of a tenth of the span): starting from their 10th percentile, the
  median of the pore pixels narrower than :data:`MATRIX_CLIP_FACTOR` (2) times the current value,
  repeated until it settles (the pores within 3 px of either surface left out: edge blur leaves
  pixel-thin slivers there). It lands on the small-pore population even where macrovoids hold
  most of the pore area, and on the plain median in a membrane without them;
- a macrovoid's **core** is a 4-connected region of pore pixels whose local thickness is at
  least :data:`MACROVOID_WIDTH_FACTOR` (2.5) times the matrix pore size at their depth, and at
  least twice the area of a disc of that width; the **macrovoid** is the 4-connected region of
  pore pixels at least :data:`MACROVOID_EXTEND_FACTOR` (1.5) matrix pores wide that holds the
  core (its narrowing neck, hysteresis-style; the sponge's own pores are narrower and mostly
  stay out). Where its neck under the skin is narrower than that it is not part of it, so
  ``top_depth_um`` is where it reaches 1.5 matrix pores across. Because the matrix size is
  taken locally, a smooth pore-size gradient (sizes changing by 26 % over a tenth of the span
  even at 1:10 across the whole membrane) holds none;
- ``cut`` when it touches the frame or a label left out (its length or width may be more).

Measured per macrovoid: top and bottom depth, length along the depth (bottom - top), width (its
largest inscribed disk), area, aspect ratio and the angle of its long axis to the surface
normal; finger-like = at least three times as long as wide, within 30 degrees of the normal.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: A macrovoid is at least this many matrix pore sizes wide (local thickness). A sponge's own
#: largest pores are about twice its typical one (the "maximum to mean of 2.0 or less" of an
#: isotropic percolation structure).
MACROVOID_WIDTH_FACTOR = 2.5
#: A macrovoid extends from its core (``MACROVOID_WIDTH_FACTOR``) over the connected pore
#: pixels at least this many matrix pore sizes wide: its narrowing neck, not the sponge around.
MACROVOID_EXTEND_FACTOR = 1.5
#: Largest number of pore pixels the matrix size is measured on (a regular subsample beyond).
MATRIX_SAMPLE_PIXELS = 4_000_000
#: Pore pixels within this many px of either surface do not count for the matrix size.
SURFACE_MARGIN_PX = 3.0
#: The matrix size is iterated over the pore pixels narrower than this many times it.
MATRIX_CLIP_FACTOR = 2.0
#: Depth window of the matrix pore size, as a fraction of the span (thickness or visible span).
MATRIX_WINDOW_FRACTION = 0.1
#: Finger-like: length / width at least this, long axis within ``FINGER_MAX_ANGLE_DEG`` of the
#: surface normal.
FINGER_MIN_ASPECT = 3.0
FINGER_MAX_ANGLE_DEG = 30.0
_BAND_ROWS = 1024
#: Columns of :func:`find_macrovoids`' table (µm, µm², degrees; centroid in px).
MACROVOID_COLUMNS = (
    "macrovoid", "row_px", "col_px", "top_depth_um", "bottom_depth_um", "length_um",
    "width_um", "area_um2", "aspect_ratio", "angle_to_normal_deg", "finger_like", "cut",
)


def matrix_pore_size_px(local_thickness_px: np.ndarray, depth_px: np.ndarray, span_px: float,
                        *, window_fraction: float = MATRIX_WINDOW_FRACTION,
                        clip: float = MATRIX_CLIP_FACTOR, n_depths: int = 41
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Matrix pore size (px) against depth: see the module docstring.

    Parameters
    ----------
    local_thickness_px : ndarray of float, shape (rows, cols)
        Local thickness of the pore mask (0 outside pores).
    depth_px : ndarray of float, shape (rows, cols)
        Depth below the reference surface (NaN outside the membrane).
    span_px : float
        Thickness or visible span (px): the depth range sampled, and the window's scale.

    Returns
    -------
    depths_px, size_px : ndarray of float, shape (n_depths,)
        Sample depths and the matrix pore size there (NaN where the window holds fewer than 50
        pore pixels).
    """
    lt = np.asarray(local_thickness_px, np.float32)
    depth = np.asarray(depth_px, np.float32)
    # quantiles need no more than a few million pixels: a regular subsample of large images
    step = max(1, math.ceil(math.sqrt(np.count_nonzero(lt) / MATRIX_SAMPLE_PIXELS)))
    lt, depth = lt[::step, ::step], depth[::step, ::step]
    # the first pixels under a surface line are left out: edge blur and the line's own error
    # leave pixel-thin slivers of "pore" there, which would pull the matrix size down
    with np.errstate(invalid="ignore"):
        pore = ((lt > 0) & (depth >= SURFACE_MARGIN_PX)
                & (depth <= float(span_px) - SURFACE_MARGIN_PX))
    d, v = depth[pore], lt[pore]
    order = np.argsort(d, kind="stable")
    d, v = d[order], v[order]
    half = max(window_fraction * float(span_px), 2.0) / 2
    depths = np.linspace(0.0, float(span_px), n_depths)
    sizes = np.full(n_depths, np.nan)
    for k, z in enumerate(depths):
        i0, i1 = np.searchsorted(d, [z - half, z + half])
        w = v[i0:i1]
        if w.size < 50:
            continue
        s = float(np.quantile(w, 0.1))
        for _ in range(20):
            narrow = w[w < clip * s]
            new = float(np.median(narrow)) if narrow.size else s
            if abs(new - s) <= 1e-3 * max(s, 1e-6):
                break
            s = new
        sizes[k] = s
    return depths, sizes


def find_macrovoids(
    pore_mask: np.ndarray,
    depth_px: np.ndarray,
    local_thickness_px: np.ndarray,
    pixel_size_um: float,
    *,
    span_px: float,
    unknown: np.ndarray | None = None,
    surface_angle_deg: float | None = None,
    factor: float = MACROVOID_WIDTH_FACTOR,
) -> tuple[pd.DataFrame, dict]:
    """The macrovoids of a pore mask (see the module docstring for the definition).

    Parameters
    ----------
    pore_mask : ndarray of bool, shape (rows, cols)
    depth_px : ndarray of float, shape (rows, cols)
        Depth below the reference surface (NaN outside the membrane).
    local_thickness_px : ndarray of float, shape (rows, cols)
        :func:`pipeline.size.local_thickness` of ``pore_mask``.
    pixel_size_um : float
    span_px : float
        Membrane thickness, or the visible span when one surface is in view (px).
    unknown : ndarray of bool, optional
        Pixels of unknown phase (labels left out): a macrovoid touching them is ``cut``.
    surface_angle_deg : float, optional
        Display angle of the reference surface (:func:`pipeline.isotropy.surface_angle_deg`);
        without it the surface is taken as horizontal.
    factor : float
        Smallest width of a macrovoid in matrix pore sizes.

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`MACROVOID_COLUMNS`, one row per macrovoid, deepest-reaching first.
    info : dict
        ``matrix_depth_um`` and ``matrix_pore_size_um`` (the matrix size against depth),
        ``factor``, and ``labels`` (uint16, or int32 beyond 65534 macrovoids; ``pore_mask``'s
        shape: 0 or the table's ``macrovoid`` number; None when there are none).
    """
    import cv2

    from .pores import pore_table

    px = float(pixel_size_um)
    mask = np.asarray(pore_mask, bool)
    lt = np.asarray(local_thickness_px, np.float32)
    depth = np.asarray(depth_px, np.float32)
    depths, sizes = matrix_pore_size_px(lt, depth, span_px)
    info: dict = {"factor": float(factor), "labels": None,
                  "matrix_depth_um": (depths * px).tolist(),
                  "matrix_pore_size_um": [None if not np.isfinite(v) else float(v * px)
                                          for v in sizes]}
    ok = np.isfinite(sizes)
    empty = pd.DataFrame({c: pd.Series(dtype=bool if c in ("finger_like", "cut") else float)
                          for c in MACROVOID_COLUMNS})
    if not ok.any():
        return empty, info

    def matrix_at(d: np.ndarray) -> np.ndarray:
        """Matrix pore size (px) at depths ``d`` (inf where the depth is NaN)."""
        out = np.full(d.shape, np.inf, np.float32)
        fin = np.isfinite(d)
        out[fin] = np.interp(d[fin], depths[ok], sizes[ok])
        return out

    # cores (wide enough) and where a macrovoid may extend, band by band (bounded memory)
    core = np.zeros(mask.shape, bool)
    extended = np.zeros(mask.shape, bool)
    for r0 in range(0, mask.shape[0], _BAND_ROWS):
        r1 = min(r0 + _BAND_ROWS, mask.shape[0])
        local = matrix_at(depth[r0:r1])
        band_lt, band_mask = lt[r0:r1], mask[r0:r1]
        core[r0:r1] = band_mask & (band_lt >= factor * local)
        extended[r0:r1] = band_mask & (band_lt >= MACROVOID_EXTEND_FACTOR * local)
    if not core.any():
        return empty, info
    # a core counts when it covers twice the area of a disc of the width it must reach (at its
    # mean depth): single sponge pores that happen to be wide do not
    cores = pore_table(core, 1.0, depth_px=depth)
    n_core, core_labels = cv2.connectedComponents(core.view(np.uint8), connectivity=4,
                                                  ltype=cv2.CV_32S)
    del core
    need = factor * matrix_at(cores["depth_um"].to_numpy(np.float32))
    big = np.zeros(n_core, bool)
    big[1:] = cores["area_um2"].to_numpy() >= 2 * math.pi * (need / 2) ** 2
    if not big.any():
        return empty, info
    n_ext, ext_labels = cv2.connectedComponents(extended.view(np.uint8), connectivity=4,
                                                ltype=cv2.CV_32S)
    del extended
    holds = np.zeros(n_ext, bool)
    holds[np.unique(ext_labels[big[core_labels]])] = True
    holds[0] = False
    del core_labels
    wide = holds[ext_labels]
    del ext_labels
    n, labels = cv2.connectedComponents(wide.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    table = pore_table(wide, px, local_thickness_px=lt, depth_px=depth,
                       surface_angle_deg=0.0 if surface_angle_deg is None
                       else surface_angle_deg)
    top, bottom = _label_depth_range(labels, n, depth)
    # cut: touching the frame or a label left out
    touching = np.zeros(n, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        touching[edge] = True
    if unknown is not None and np.any(unknown):
        near = cv2.dilate(np.ascontiguousarray(unknown, np.uint8), np.ones((3, 3), np.uint8))
        touching[labels[near.view(bool) & wide]] = True
    touching[0] = False
    angle = np.abs(90.0 - table["orientation_to_surface_deg"].to_numpy(float))
    length = (bottom[1:] - top[1:]) * px
    width = table["max_local_thickness_um"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        aspect = np.where(width > 0, length / width, np.nan)
    out = pd.DataFrame({
        "macrovoid": 0, "row_px": table["row_px"], "col_px": table["col_px"],
        "top_depth_um": top[1:] * px, "bottom_depth_um": bottom[1:] * px, "length_um": length,
        "width_um": width, "area_um2": table["area_um2"], "aspect_ratio": aspect,
        "angle_to_normal_deg": angle,
        "finger_like": (aspect >= FINGER_MIN_ASPECT) & (angle <= FINGER_MAX_ANGLE_DEG),
        "cut": touching[1:],
    }, columns=list(MACROVOID_COLUMNS))
    out = out.sort_values("bottom_depth_um", ascending=False, kind="stable")
    # component label -> table number (uint16 unless there are very many: kept with the result)
    number = np.zeros(n, np.uint16 if n < 65535 else np.int32)
    number[out.index.to_numpy() + 1] = np.arange(1, len(out) + 1)
    info["labels"] = number[labels]
    out = out.reset_index(drop=True)
    out["macrovoid"] = np.arange(1, len(out) + 1)
    return out, info


def _label_depth_range(labels: np.ndarray, n: int, depth: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per label (0..n-1) the smallest and largest finite depth of its pixels (NaN when it has
    none), band by band."""
    top = np.full(n, np.inf)
    bottom = np.full(n, -np.inf)
    for r0 in range(0, labels.shape[0], _BAND_ROWS):
        lab = labels[r0:r0 + _BAND_ROWS]
        d = depth[r0:r0 + _BAND_ROWS]
        keep = (lab > 0) & np.isfinite(d)
        np.minimum.at(top, lab[keep], d[keep])
        np.maximum.at(bottom, lab[keep], d[keep])
    top[~np.isfinite(top)] = np.nan
    bottom[~np.isfinite(bottom)] = np.nan
    return top, bottom


def macrovoid_summary(table: pd.DataFrame, info: dict, *, span_um: float,
                      membrane_area_um2: float, thickness_known: bool) -> dict:
    """result.json's ``macrovoids`` block: counts, what they take of the membrane, where they
    start and how far they reach (statistics over the macrovoids not cut, lengths also as a
    share of the span), and the matrix pore size they were measured against."""
    whole = table[~table["cut"].astype(bool)]

    def median(values: pd.Series) -> float | None:
        v = values.to_numpy(np.float64)
        v = v[np.isfinite(v)]
        return float(np.median(v)) if v.size else None

    matrix = [s for s in info.get("matrix_pore_size_um", []) if s is not None]
    length = median(whole["length_um"])
    # the membrane's extent along the surface: its area over the span
    along_um = membrane_area_um2 / span_um if span_um > 0 else None
    return {
        "n_macrovoids": int(len(table)),
        "n_cut": int(len(table) - len(whole)),
        "n_finger_like": int(table["finger_like"].sum()),
        "area_fraction": (float(table["area_um2"].sum() / membrane_area_um2)
                          if membrane_area_um2 else None),
        "number_per_mm_of_surface": (len(table) / along_um * 1000.0 if along_um else None),
        "first_top_depth_um": (float(table["top_depth_um"].min()) if len(table) else None),
        "median_top_depth_um": median(whole["top_depth_um"]),
        "median_length_um": length,
        "median_length_to_span": (length / span_um if length is not None and span_um > 0
                                  else None),
        "deepest_bottom_depth_um": (float(table["bottom_depth_um"].max()) if len(table)
                                    else None),
        "median_width_um": median(whole["width_um"]),
        "matrix_pore_size_um": float(np.median(matrix)) if matrix else None,
        "span_um": float(span_um),
        "span_is_thickness": bool(thickness_known),
        "definition": (f"cores: 4-connected pore pixels at least {info.get('factor', 2.5):g} "
                       "matrix pore sizes wide (local thickness; the matrix size measured at "
                       "each depth) over at least twice the area of a disc of that width; a "
                       f"macrovoid: the connected pore pixels at least {MACROVOID_EXTEND_FACTOR:g}"
                       " matrix pores wide holding a core; statistics over those not cut by the "
                       "frame or a label (pipeline.macrovoids)"),
    }
