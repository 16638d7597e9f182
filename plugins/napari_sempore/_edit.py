"""Recomputing an analysis after a hand edit, without redoing what the edit cannot change.

Pure numpy functions (no Qt, no napari), used by the napari widgets and testable on their own:

* :func:`update_local_thickness` recomputes the exact local thickness only in a window around
  the edited pixels (the window grows until it provably contains every disk that can change);
* :func:`polyline_from_line` / :func:`line_from_polyline` turn a surface line (one position per
  column) into an editable polyline and back;
* :func:`membrane_with_line` rebuilds the :class:`~pipeline.geometry.Membrane` from an edited
  surface;
* :func:`recompute` makes the updated :class:`~pipeline.analysis.Analysis` (local thickness,
  depth profile; structure, criteria and isotropy are left to a full
  :func:`pipeline.analyze` run in the background, see :func:`reanalyze`);
* :func:`membrane_from_result` and :func:`analysis_from_saved` rebuild an analysis from a result
  folder written by the CLI.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.analysis import with_ambiguity
from pipeline.burnin import as_boxes
from pipeline.geometry import Membrane, membrane_from_surfaces, membrane_without
from pipeline.profile import depth_profile
from pipeline.segment import Segmentation, edge_pore_mask
from pipeline.size import local_thickness

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.analysis import Analysis

#: Box (r0, r1, c0, c1), half-open, in pixels.
Box = tuple[int, int, int, int]


# --------------------------------------------------------------------------------------------
# local thickness on a window


def changed_box(before: np.ndarray, after: np.ndarray) -> Box | None:
    """Bounding box (r0, r1, c0, c1), half-open, of the pixels where two masks differ.

    Returns None when they are equal.
    """
    diff = np.asarray(before, bool) != np.asarray(after, bool)
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff[rows[0]:rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _grow(box: Box, margin: float, shape: tuple[int, int]) -> Box:
    m = int(math.ceil(margin))
    r0, r1, c0, c1 = box
    return max(r0 - m, 0), min(r1 + m, shape[0]), max(c0 - m, 0), min(c1 + m, shape[1])


def update_local_thickness(
    new_mask: np.ndarray,
    old_mask: np.ndarray,
    old_local_thickness_px: np.ndarray,
    *,
    unknown: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Exact local thickness of ``new_mask``, recomputed only near where it differs from
    ``old_mask``.

    Let E be the bounding box of the changed pixels and R a bound on the inscribed-disk radius
    (distance transform) of every pore pixel whose disk can change or cover a changed disk. A
    pixel's local thickness can only change within E dilated by 2R, and only disks centred in E
    dilated by 3R can cover those pixels. The local thickness is computed with
    :func:`pipeline.size.local_thickness` on the window E dilated by 4R + 2, whose sides inside
    the image are made walls: that can only shrink disks, and leaves every disk centred within
    3R of E exact. R starts as the largest radius of the old mask; when the window shows a
    larger disk near E (the edit merged pores), R grows and the window with it. The result
    equals ``local_thickness(new_mask)`` exactly.

    Parameters
    ----------
    new_mask, old_mask : ndarray of bool, shape (rows, cols)
        Pore masks after and before the edit.
    old_local_thickness_px : ndarray of float32, shape (rows, cols)
        ``local_thickness(old_mask, unknown=unknown)`` (diameters in px).
    unknown : ndarray of bool, shape (rows, cols), optional
        Pixels of unknown phase (labels burned into the frame), as
        :func:`pipeline.size.local_thickness` takes them; the same before and after the edit.

    Returns
    -------
    local_thickness_px : ndarray of float32, shape (rows, cols)
    info : dict
        ``window`` (the box recomputed, or None when nothing changed), ``updated`` (the box whose
        values were replaced) and ``full`` (True when the window grew to the whole image).
    """
    new_mask = np.asarray(new_mask, bool)
    shape = new_mask.shape
    box = changed_box(old_mask, new_mask)
    if box is None:
        return np.asarray(old_local_thickness_px, np.float32), {
            "window": None, "updated": None, "full": False}
    old_max = float(np.max(old_local_thickness_px)) if old_local_thickness_px.size else 0.0
    if not math.isfinite(old_max):
        return local_thickness(new_mask, unknown=unknown), {
            "window": (0, shape[0], 0, shape[1]), "updated": (0, shape[0], 0, shape[1]),
            "full": True}
    radius = max(old_max / 2.0, 1.0)
    while True:
        window = _grow(box, 4 * radius + 2, shape)
        if window == (0, shape[0], 0, shape[1]):
            return local_thickness(new_mask, unknown=unknown), {
                "window": window, "updated": window, "full": True}
        r0, r1, c0, c1 = window
        sub = new_mask[r0:r1, c0:c1].copy()
        open_sub = None if unknown is None else np.asarray(unknown, bool)[r0:r1, c0:c1].copy()
        # walls on the window's sides that lie inside the image
        for part in (sub,) if open_sub is None else (sub, open_sub):
            if r0 > 0:
                part[0] = False
            if r1 < shape[0]:
                part[-1] = False
            if c0 > 0:
                part[:, 0] = False
            if c1 < shape[1]:
                part[:, -1] = False
        lt_sub = local_thickness(sub, unknown=open_sub)
        # tau(x) >= 2 dt(x) for every pore pixel x: bound the radii of disks centred within 3R
        q0, q1, p0, p1 = _grow(box, 3 * radius, shape)
        near = lt_sub[q0 - r0:q1 - r0, p0 - c0:p1 - c0]
        near_max = float(near.max()) if near.size else 0.0
        if near_max <= 2 * radius + 1e-6:
            break
        radius = max(2 * radius, near_max / 2.0)
    out = np.array(old_local_thickness_px, np.float32, copy=True)
    u0, u1, v0, v1 = _grow(box, 2 * radius, shape)
    out[u0:u1, v0:v1] = lt_sub[u0 - r0:u1 - r0, v0 - c0:v1 - c0]
    return out, {"window": window, "updated": (u0, u1, v0, v1), "full": False}


# --------------------------------------------------------------------------------------------
# labels burned into the frame, as napari rectangles


def rectangles_from_boxes(boxes: Any) -> list[np.ndarray]:
    """napari rectangle vertices ((4, 2) row, col in pixel coordinates) of label boxes
    (row0, row1, col0, col1; half-open): the rectangle's sides lie on the pixel edges."""
    out = []
    for r0, r1, c0, c1 in boxes:
        a, b, c, d = r0 - 0.5, r1 - 0.5, c0 - 0.5, c1 - 0.5
        out.append(np.array([[a, c], [a, d], [b, d], [b, c]], float))
    return out


def boxes_from_shapes(shapes: Any, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Label boxes (row0, row1, col0, col1; half-open) of napari shapes in pixel coordinates:
    the pixels whose centres lie within each shape's bounding box, clipped to ``shape``; shapes
    holding no pixel centre are dropped. Inverse of :func:`rectangles_from_boxes`."""
    rows, cols = shape
    out = []
    for verts in shapes:
        v = np.asarray(verts, float)[:, -2:]
        if v.size == 0 or not np.all(np.isfinite(v)):
            continue
        r0 = max(int(math.ceil(v[:, 0].min())), 0)
        r1 = min(int(math.floor(v[:, 0].max())) + 1, rows)
        c0 = max(int(math.ceil(v[:, 1].min())), 0)
        c1 = min(int(math.floor(v[:, 1].max())) + 1, cols)
        if r1 > r0 and c1 > c0:
            out.append((r0, r1, c0, c1))
    return out


# --------------------------------------------------------------------------------------------
# surface lines and polylines


def polyline_from_line(line_px: np.ndarray, *, horizontal: bool = True,
                       tolerance_px: float = 1.0, max_vertices: int = 33) -> np.ndarray:
    """An editable polyline for a surface line.

    Parameters
    ----------
    line_px : ndarray of float, shape (n,)
        Row of the surface in each column (horizontal) or column in each row (vertical); NaN
        where undefined.
    horizontal : bool
    tolerance_px : float
        Largest distance between the line and the polyline (Douglas–Peucker,
        :func:`skimage.measure.approximate_polygon`).
    max_vertices : int
        Vertices are added so that no gap along the membrane exceeds ``n / (max_vertices - 1)``
        (handles to grab anywhere along the surface).

    Returns
    -------
    ndarray of float, shape (k, 2)
        (row, col) vertices in image pixels, ordered along the membrane.
    """
    from skimage.measure import approximate_polygon

    line = np.asarray(line_px, float)
    along = np.arange(line.size, dtype=float)
    ok = np.isfinite(line)
    if not ok.any():
        raise ValueError("surface line has no defined point")
    pts = np.column_stack([along[ok], line[ok]])
    simple = approximate_polygon(pts, tolerance_px) if len(pts) > 2 else pts
    max_gap = max((along[ok][-1] - along[ok][0]) / max(max_vertices - 1, 1), 1.0)
    keep = [simple[0]]
    for a, b in zip(simple[:-1], simple[1:]):
        n_extra = int(math.ceil((b[0] - a[0]) / max_gap)) - 1
        for k in range(1, n_extra + 1):
            x = float(np.rint(a[0] + (b[0] - a[0]) * k / (n_extra + 1)))
            keep.append(np.array([x, np.interp(x, along[ok], line[ok])]))
        keep.append(b)
    poly = np.array(keep)
    # (along, across) -> (row, col)
    return poly[:, ::-1].copy() if horizontal else poly.copy()


def line_from_polyline(
    vertices: np.ndarray,
    n_along: int,
    n_across: int,
    *,
    horizontal: bool = True,
    base_line_px: np.ndarray | None = None,
    base_vertices: np.ndarray | None = None,
) -> np.ndarray:
    """A surface line (one position per column or row) from an edited polyline.

    The polyline is interpolated linearly along the membrane (held flat beyond its ends). When
    the line it was made from is given (``base_line_px`` with the ``base_vertices`` made by
    :func:`polyline_from_line`), the fine detail that the polyline simplified away is added
    back, so an unedited polyline gives back exactly the base line and an edit only changes the
    line between the neighbours of the moved vertices.

    Parameters
    ----------
    vertices : ndarray, shape (k, 2)
        (row, col) vertices in image pixels.
    n_along, n_across : int
        Line length (columns for a horizontal membrane) and the extent across it (rows).
    horizontal : bool
    base_line_px, base_vertices : ndarray, optional

    Returns
    -------
    ndarray of float, shape (n_along,)
        Clipped to [0, n_across - 1]; NaN where the base line was NaN.
    """
    v = np.asarray(vertices, float)
    if v.ndim != 2 or v.shape[1] != 2 or len(v) < 1:
        raise ValueError(f"a surface polyline needs (k, 2) vertices, got shape {v.shape}")
    along_axis, across_axis = (1, 0) if horizontal else (0, 1)
    x = np.arange(n_along, dtype=float)

    def interp(verts: np.ndarray) -> np.ndarray:
        order = np.argsort(verts[:, along_axis], kind="stable")
        return np.interp(x, verts[order, along_axis], verts[order, across_axis])

    line = interp(v)
    if base_line_px is not None and base_vertices is not None:
        base = np.asarray(base_line_px, float)
        detail = base - interp(np.asarray(base_vertices, float))
        line = line + np.where(np.isfinite(detail), detail, 0.0)
        line[~np.isfinite(base)] = np.nan
    return np.clip(line, 0.0, n_across - 1.0)


def surface_lines(membrane: Membrane) -> dict[str, np.ndarray]:
    """The membrane's boundary lines by role: ``reference`` and ``opposite`` (when in view)."""
    names = ("top", "bottom") if membrane.orientation == "horizontal" else ("left", "right")
    lines = dict(zip(names, (membrane.top_px, membrane.bottom_px)))
    out: dict[str, np.ndarray] = {}
    ref = membrane.reference_surface
    if ref in lines and lines[ref] is not None:
        out["reference"] = np.asarray(lines[ref], float)
    other = names[1] if ref == names[0] else names[0]
    if ref in lines and other in membrane.surfaces_in_view and lines[other] is not None:
        out["opposite"] = np.asarray(lines[other], float)
    return out


def membrane_with_line(membrane: Membrane, role: str, line_px: np.ndarray) -> Membrane:
    """The membrane rebuilt with its ``reference`` or ``opposite`` surface replaced.

    The other boundary, the reference surface, the orientation and the surfaces in view are
    kept; the lower boundary is kept at or below the upper one.
    """
    if membrane.reference_surface in ("none", None):
        raise ValueError("the membrane has no reference surface to edit")
    names = ("top", "bottom") if membrane.orientation == "horizontal" else ("left", "right")
    ref_is_first = membrane.reference_surface == names[0]
    first = role == "reference" and ref_is_first or role == "opposite" and not ref_is_first
    top = np.asarray(membrane.top_px, float).copy()
    bottom = np.asarray(membrane.bottom_px, float).copy()
    line = np.asarray(line_px, float)
    if first:
        top = np.where(np.isfinite(bottom), np.fmin(line, bottom), line)
    else:
        bottom = np.where(np.isfinite(top), np.fmax(line, top), line)
    notes = [n for n in membrane.notes if not n.startswith("surface edited")]
    notes.append("surface edited in napari")
    return membrane_from_surfaces(
        membrane.mask.shape, top, bottom, reference_surface=membrane.reference_surface,
        surfaces_in_view=tuple(membrane.surfaces_in_view), orientation=membrane.orientation,
        notes=notes)


def band_polygon(line_px: np.ndarray, depth_lo_px: float, depth_hi_px: float, *,
                 horizontal: bool = True, into_positive: bool = True,
                 n_points: int = 64) -> np.ndarray | None:
    """Polygon of the band between two depths below a surface line (for display).

    Each point of the line is moved along the line's normal (the perpendicular distance is the
    depth) by ``depth_lo_px`` and ``depth_hi_px``.

    Parameters
    ----------
    line_px : ndarray, shape (n,)
    depth_lo_px, depth_hi_px : float
    horizontal : bool
    into_positive : bool
        Depth grows towards larger rows (cols): True for a top (left) reference surface.
    n_points : int
        Points per side.

    Returns
    -------
    ndarray, shape (2 * n_points, 2), (row, col) vertices, or None when the line is undefined.
    """
    line = np.asarray(line_px, float)
    along = np.arange(line.size, dtype=float)
    ok = np.isfinite(line)
    if ok.sum() < 2:
        return None
    a = np.linspace(along[ok][0], along[ok][-1], n_points)
    pos = np.interp(a, along[ok], line[ok])
    slope = np.gradient(pos, a)
    sign = 1.0 if into_positive else -1.0
    norm = np.hypot(1.0, slope)
    # unit normal pointing into the membrane, in (along, across) coordinates
    n_along, n_across = -slope * sign / norm, sign / norm

    def side(d: float) -> np.ndarray:
        pa, pc = a + d * n_along, pos + d * n_across
        return np.column_stack([pc, pa]) if horizontal else np.column_stack([pa, pc])

    return np.vstack([side(depth_lo_px), side(depth_hi_px)[::-1]])


def min_layer_range_um(structure: dict[str, Any], pixel_size_um: float) -> tuple[float, float]:
    """Depth range (µm) of the minimum-pore layer of a structure block: its top and bottom
    when given, else the depth ± half the thickness (at least one pixel thick)."""
    top, bottom = structure.get("min_layer_top_um"), structure.get("min_layer_bottom_um")
    if top is not None and bottom is not None and bottom >= top:
        lo, hi = float(top), float(bottom)
    else:
        centre = float(structure["min_layer_depth_um"])
        half = float(structure.get("min_layer_thickness_um") or 0.0) / 2.0
        lo, hi = centre - half, centre + half
    if hi - lo < pixel_size_um:
        mid = (lo + hi) / 2
        lo, hi = mid - pixel_size_um / 2, mid + pixel_size_um / 2
    return max(lo, 0.0), hi


def profile_band_from_structure(structure: dict[str, Any] | None) -> pd.DataFrame | None:
    """The confidence band saved in result.json (``structure.profile_band``) as a DataFrame."""
    band = (structure or {}).get("profile_band")
    if not isinstance(band, dict) or not band.get("depth_um"):
        return None
    try:
        table = pd.DataFrame({k: np.array([np.nan if v is None else v for v in vals], float)
                              for k, vals in band.items()})
    except (TypeError, ValueError):
        return None
    need = {"depth_um", "pore_size_lo_um", "pore_size_hi_um"}
    return table if need <= set(table.columns) else None


# --------------------------------------------------------------------------------------------
# recompute an analysis


def _carry_columns(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """``new`` with the columns only ``old`` has (per-bin values an edit of the mask does not
    change, e.g. ``ambiguous_fraction``), matched by bin; NaN for bins ``old`` lacks."""
    extra = [c for c in old.columns if c not in new.columns]
    width = old.attrs.get("bin_width_um") or new.attrs.get("bin_width_um")
    if not extra or not width or "depth_lo_um" not in old or "depth_lo_um" not in new:
        return new
    out = new.copy()
    out.attrs = dict(new.attrs)
    key_old = np.rint(old["depth_lo_um"].to_numpy() / float(width)).astype(np.int64)
    key_new = np.rint(new["depth_lo_um"].to_numpy() / float(width)).astype(np.int64)
    for c in extra:
        out[c] = pd.Series(old[c].to_numpy(), index=key_old).reindex(key_new).to_numpy()
    return out[list(old.columns) + [c for c in new.columns if c not in old.columns]]


def update_profile(
    profile: pd.DataFrame,
    membrane: Membrane,
    pore_mask: np.ndarray,
    local_thickness_px: np.ndarray,
    edge_pores: np.ndarray,
    pixel_size_um: float,
    *,
    old_mask: np.ndarray,
    old_local_thickness_px: np.ndarray,
    old_edge_pores: np.ndarray,
    min_pore_pixels: int = 50,
    resolution_limit_px: float | None = None,
) -> tuple[pd.DataFrame, int]:
    """The depth profile after a pore-mask edit, recomputing only the depth bins that hold a
    changed pixel.

    A bin's row depends only on its own pixels' pore flag, local thickness and edge flag; the
    bins holding a pixel where any of them changed are recomputed with
    :func:`pipeline.profile.depth_profile` restricted to those bins' pixels (same bin width and
    bin count), the other rows are kept. The membrane (depth map) must be unchanged. Equal to a
    full :func:`~pipeline.profile.depth_profile` call.

    Returns
    -------
    profile : pandas.DataFrame
    n_bins : int
        Number of bins recomputed.
    """
    width = profile.attrs.get("bin_width_um")
    if not width or profile.empty or "depth_lo_um" not in profile:
        full = depth_profile(pore_mask, membrane.mask, membrane.depth_px, local_thickness_px,
                             pixel_size_um, min_pore_pixels=min_pore_pixels,
                             edge_pores=edge_pores, resolution_limit_px=resolution_limit_px)
        return _carry_columns(full, profile), len(full)
    width = float(width)
    n_bins = int(round(float(profile["depth_hi_um"].iloc[-1]) / width))
    inside = membrane.mask & np.isfinite(membrane.depth_px)
    changed = ((pore_mask != old_mask) | (local_thickness_px != old_local_thickness_px)
               | (edge_pores != old_edge_pores)) & inside
    if not changed.any():
        return profile, 0
    # bins of the changed pixels, by depth_profile's own arithmetic
    d_changed = membrane.depth_px[changed].astype(np.float64) * pixel_size_um
    bins = np.unique(np.clip((d_changed / width).astype(np.int64), 0, n_bins - 1))
    # a superset of those bins' pixels (depth ranges widened by a hair; pixels of neighbouring
    # bins that slip in only make rows that are discarded below)
    depth_um = membrane.depth_px.astype(np.float64) * pixel_size_um
    region = np.zeros(inside.shape, bool)
    runs = np.split(bins, np.flatnonzero(np.diff(bins) > 1) + 1)
    for run in runs:
        eps = 1e-9 * width * (run[-1] + 2)
        lo = run[0] * width - eps if run[0] > 0 else -np.inf
        hi = (run[-1] + 1) * width + eps if run[-1] < n_bins - 1 else np.inf
        with np.errstate(invalid="ignore"):
            region |= (depth_um >= lo) & (depth_um < hi)
    region &= inside
    sub = depth_profile(pore_mask, region, membrane.depth_px, local_thickness_px,
                        pixel_size_um, bin_width_um=width, min_pore_pixels=min_pore_pixels,
                        edge_pores=edge_pores, max_depth_um=n_bins * width,
                        resolution_limit_px=resolution_limit_px)
    if [c for c in profile.columns if c in sub.columns] != list(sub.columns):
        full = depth_profile(pore_mask, membrane.mask, membrane.depth_px, local_thickness_px,
                             pixel_size_um, bin_width_um=width, min_pore_pixels=min_pore_pixels,
                             edge_pores=edge_pores, resolution_limit_px=resolution_limit_px)
        return _carry_columns(full, profile), len(full)
    key_old = np.rint(profile["depth_lo_um"].to_numpy() / width).astype(np.int64)
    key_new = np.rint(sub["depth_lo_um"].to_numpy() / width).astype(np.int64)
    sub = _carry_columns(sub[np.isin(key_new, bins)], profile)
    keep = profile[~np.isin(key_old, bins)]
    merged = pd.concat([keep, sub], ignore_index=True)
    order = np.argsort(merged["depth_lo_um"].to_numpy(), kind="stable")
    merged = merged.iloc[order].reset_index(drop=True)
    merged = merged.astype(profile.dtypes.to_dict())
    merged.attrs = dict(profile.attrs)
    return merged, int(bins.size)



def recompute(
    analysis: Analysis,
    *,
    pore_mask: np.ndarray | None = None,
    membrane: Membrane | None = None,
) -> tuple[Analysis, dict[str, Any]]:
    """Update an analysis after the pore mask and/or the membrane surface was edited.

    Only what an edit can change is recomputed: the membrane (depth map) when a surface moved,
    the local thickness in a window around the changed pore pixels
    (:func:`update_local_thickness`), the edge-pore flags and the depth profile. Structure,
    criteria, isotropy and network are set to None: they need :func:`reanalyze`.

    Parameters
    ----------
    analysis : Analysis
        The analysis before the edit.
    pore_mask : ndarray of bool, optional
        The edited pore mask (any shape-matching array; nonzero = pore). It is clipped to the
        membrane, as :func:`pipeline.analyze` does.
    membrane : Membrane, optional
        The edited membrane.

    Returns
    -------
    analysis : Analysis
        A new Analysis (the input is not modified).
    timings_s : dict
        Wall time of each step and the local-thickness window.
    """
    import time

    timings: dict[str, Any] = {}
    t0 = time.perf_counter()
    unknown = analysis.micrograph.label_mask()  # labels burned into the frame stay out
    membrane = (membrane_without(membrane, unknown) if membrane is not None
                else analysis.membrane)
    raw = analysis.segmentation.mask if pore_mask is None else np.asarray(pore_mask) != 0
    if raw.shape != membrane.mask.shape:
        raise ValueError(f"pore mask of shape {raw.shape} does not match the image "
                         f"{membrane.mask.shape}")
    mask = raw & membrane.mask
    t = time.perf_counter()
    lt_px, info = update_local_thickness(mask, analysis.segmentation.mask,
                                         analysis.local_thickness_px, unknown=unknown)
    timings["local_thickness"] = time.perf_counter() - t
    timings["local_thickness_window"] = info["window"]
    timings["local_thickness_full"] = info["full"]
    t = time.perf_counter()
    edge = edge_pore_mask(mask, unknown=unknown)
    seg = analysis.segmentation
    details = dict(seg.details)
    details["edited_in_napari"] = True
    segmentation = Segmentation(mask=mask, method=seg.method, edge_pores=edge, details=details,
                                pore_probability=seg.pore_probability)
    timings["edge_pores"] = time.perf_counter() - t
    profile = None
    t = time.perf_counter()
    limit_px = details.get("resolution_limit_px")
    if membrane.depth_px is not None:
        prof = analysis.settings.profile
        if membrane is analysis.membrane and analysis.profile is not None:
            profile, n_bins = update_profile(
                analysis.profile, membrane, mask, lt_px, edge, analysis.pixel_size_um,
                old_mask=analysis.segmentation.mask,
                old_local_thickness_px=analysis.local_thickness_px,
                old_edge_pores=analysis.segmentation.edge_pores,
                min_pore_pixels=prof.min_pore_pixels, resolution_limit_px=limit_px)
            timings["profile_bins_recomputed"] = n_bins
        else:
            profile = with_ambiguity(
                depth_profile(mask, membrane.mask, membrane.depth_px, lt_px,
                              analysis.pixel_size_um, bin_width_um=prof.bin_width_um,
                              min_pore_pixels=prof.min_pore_pixels, edge_pores=edge,
                              resolution_limit_px=limit_px),
                seg.pore_probability, membrane, analysis.pixel_size_um)
            timings["profile_bins_recomputed"] = len(profile)
    timings["profile"] = time.perf_counter() - t
    extras = {k: v for k, v in analysis.extras.items() if k not in ("profile_band",)}
    updated = dataclasses.replace(
        analysis, membrane=membrane, segmentation=segmentation, local_thickness_px=lt_px,
        profile=profile, structure=None, criteria=None, isotropy=None, network=None,
        extras=extras, timings_s={"recompute": time.perf_counter() - t0},
        notes=list(dict.fromkeys(list(analysis.notes) + ["edited in napari"])))
    timings["total"] = time.perf_counter() - t0
    return updated, timings


def reanalyze(analysis: Analysis, *, progress: Any = None) -> Analysis:
    """Every stage after segmentation (structure, criteria, isotropy, network, macrovoids) for
    an edited analysis, by :func:`pipeline.analyze` with the analysis' membrane and pore mask.

    The segmentation method and details of ``analysis`` are kept (with ``edited_in_napari``).
    """
    from pipeline import analyze

    full = analyze(analysis.micrograph, settings=analysis.settings, progress=progress,
                   membrane=analysis.membrane, pore_mask=analysis.segmentation)
    full.notes = list(dict.fromkeys(list(full.notes) + [
        n for n in analysis.notes if n == "edited in napari"]))
    full.macrovoids()  # measured here, in the worker, not when the layers are refreshed
    return full


# --------------------------------------------------------------------------------------------
# results written by the CLI


def _line_from_json(values: Any, n: int) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.array([np.nan if v is None else float(v) for v in values], float)
    return arr if arr.size == n else None


def membrane_from_result(result: dict[str, Any], membrane_mask: np.ndarray | None,
                         shape: tuple[int, int]) -> Membrane:
    """Rebuild the :class:`Membrane` of a saved result (result.json and membrane.png).

    The boundary lines come from ``membrane.top_px`` / ``bottom_px`` when present, the
    reference surface from ``membrane.surface_row_px`` (``surface_col_px`` for a vertical
    membrane); a boundary missing from the JSON is read off ``membrane.png`` (first and last
    membrane pixel of each column or row). The membrane region is ``membrane.png`` itself when
    given, so the rebuilt analysis measures exactly the saved region.

    Parameters
    ----------
    result : dict
        result.json content.
    membrane_mask : ndarray of bool or None
        membrane.png at the analysed size.
    shape : (rows, cols)
        Analysed image shape.
    """
    from pipeline.geometry import whole_frame

    m = result.get("membrane") or {}
    ref = m.get("reference_surface") or "none"
    orientation = m.get("orientation") or "horizontal"
    horizontal = orientation == "horizontal"
    rows, cols = shape
    n_along, n_across = (cols, rows) if horizontal else (rows, cols)
    in_view = tuple(m.get("surfaces_in_view") or ())
    notes = list(m.get("notes") or [])
    if ref == "none":
        return whole_frame(shape, "no surface in view: the whole frame is material")
    top = _line_from_json(m.get("top_px"), n_along)
    bottom = _line_from_json(m.get("bottom_px"), n_along)
    ref_line = _line_from_json(m.get("surface_row_px") if horizontal else m.get("surface_col_px"),
                               n_along)
    if membrane_mask is not None and (top is None or bottom is None):
        band = np.asarray(membrane_mask, bool)
        band = band if horizontal else band.T
        has = band.any(axis=0)
        first = np.where(has, band.argmax(axis=0), np.nan).astype(float)
        last = np.where(has, n_across - 1 - band[::-1].argmax(axis=0), np.nan).astype(float)
        top = first if top is None else top
        bottom = last if bottom is None else bottom
    if top is None or bottom is None:
        raise ValueError("result has neither the membrane boundaries nor membrane.png")
    if ref_line is not None:
        if ref in ("top", "left"):
            top = ref_line
        else:
            bottom = ref_line
    membrane = membrane_from_surfaces(shape, top, bottom, reference_surface=ref,
                                      surfaces_in_view=in_view, orientation=orientation,
                                      notes=notes)
    if membrane_mask is not None and np.shape(membrane_mask) == tuple(shape):
        # the band exactly as measured (the saved lines are rounded to 0.01 px, which can move
        # a boundary row in or out)
        from pipeline.geometry import depth_from_line

        band = np.asarray(membrane_mask, bool)
        ref_line = top if ref in ("top", "left") else bottom
        dist = depth_from_line(shape, ref_line, horizontal)
        membrane = dataclasses.replace(
            membrane, mask=band, depth_px=np.where(band, dist, np.nan).astype(np.float32))
    return membrane


def settings_from_result(result: dict[str, Any]):
    """The :class:`~pipeline.settings.Settings` recorded in a result (defaults if absent or
    unreadable)."""
    from pipeline.settings import Settings, from_dict

    data = (result.get("software") or {}).get("settings")
    if not data:
        return Settings()
    try:
        return from_dict(data)
    except (TypeError, ValueError):
        return Settings()


def _find_image(image_path: str | None, folder: Path) -> Path:
    if not image_path:
        raise FileNotFoundError(f"{folder.name}: result.json does not name its micrograph")
    p = Path(image_path)
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, folder.parent / p,
                                               folder.parent.parent / p]
    candidates.append(folder.parent / p.name)
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{folder.name}: micrograph {image_path} not found (moved since "
                            "the analysis?)")


def analysis_from_saved(folder: str | Path) -> tuple[Analysis, Any]:
    """Rebuild the :class:`~pipeline.analysis.Analysis` of a result folder written by the CLI.

    The micrograph is read again from the path in result.json; the pore mask is ``pores.png``,
    the membrane comes from result.json (:func:`membrane_from_result`); the local thickness and
    depth profile are recomputed from them (exact, and what later edits are compared with); the
    structure, criteria, isotropy and network blocks are the saved ones.

    Returns
    -------
    analysis : Analysis
    saved : pipeline.report.LoadedResult
        ``saved.result["_review_warnings"]`` lists what the user should know (image changed
        since the analysis, ...).

    Raises
    ------
    FileNotFoundError, ValueError
        One line naming the folder and the problem.
    """
    from pipeline.analysis import Analysis
    from pipeline.io import load_micrograph
    from pipeline.report import file_sha256, load_results

    folder = Path(folder)
    saved = load_results(folder)
    r = saved.result
    img = r.get("image") or {}
    warnings: list[str] = []
    path = _find_image(saved.image_path, folder)
    px = img.get("pixel_size_um")
    if not px:
        raise ValueError(f"{folder.name}: result.json has no pixel size")
    shape = tuple(int(v) for v in img.get("analysed_shape") or ())
    micrograph = load_micrograph(path, pixel_size_um=px if img.get("pixel_size_source") ==
                                 "caller" else None)
    if micrograph.pixel_size_um is None or not math.isclose(micrograph.pixel_size_um, px,
                                                           rel_tol=1e-6):
        micrograph.pixel_size_um = float(px)
        micrograph.pixel_size_source = img.get("pixel_size_source") or "caller"
    if micrograph.image.shape != shape:
        full = load_micrograph(path, pixel_size_um=px, detect_bar=False)
        if full.image.shape[1] != shape[1] or full.image.shape[0] < shape[0]:
            raise ValueError(f"{folder.name}: micrograph {path.name} is "
                             f"{full.image.shape[1]}x{full.image.shape[0]} px, the results are "
                             f"for {shape[1]}x{shape[0]} px")
        micrograph.image = np.ascontiguousarray(full.image[:shape[0]])
        micrograph.databar_rows = full.image.shape[0] - shape[0]
        micrograph.databar_source = img.get("databar_source") or "result.json"
    if "annotations_px" in img:  # the labels the analysis left out, as it found them
        micrograph.annotations_px = as_boxes(img["annotations_px"])
        micrograph.excluded_px = as_boxes(img.get("excluded_px") or [])
    if img.get("sha256"):
        try:
            if file_sha256(path) != img["sha256"]:
                warnings.append("the micrograph changed since the analysis")
        except OSError:
            pass
    if saved.pore_mask is None:
        raise FileNotFoundError(f"{folder.name}: pores.png missing")
    settings = settings_from_result(r)
    membrane = membrane_from_result(r, saved.membrane_mask, shape)
    unknown = micrograph.label_mask()
    membrane = membrane_without(membrane, unknown)
    mask = np.asarray(saved.pore_mask, bool) & membrane.mask
    lt_px = local_thickness(mask, unknown=unknown)
    edge = edge_pore_mask(mask, unknown=unknown)
    seg_info = r.get("segmentation") or {}
    segmentation = Segmentation(mask=mask, method=seg_info.get("method") or "saved",
                                edge_pores=edge, details=dict(seg_info.get("details") or {}))
    profile = None
    if membrane.depth_px is not None:
        prof = settings.profile
        profile = depth_profile(mask, membrane.mask, membrane.depth_px, lt_px, float(px),
                                bin_width_um=(r.get("profile") or {}).get("bin_width_um")
                                or prof.bin_width_um,
                                min_pore_pixels=prof.min_pore_pixels, edge_pores=edge,
                                resolution_limit_px=segmentation.details.get(
                                    "resolution_limit_px"))
        saved_profile = r.get("profile") or {}
        if saved_profile.get("ambiguous_fraction") is not None:
            # the segmentation's own doubt per bin, as saved (the probabilities are not)
            old = pd.DataFrame({
                "depth_lo_um": saved_profile["depth_lo_um"],
                "ambiguous_fraction": [np.nan if v is None else v
                                       for v in saved_profile["ambiguous_fraction"]]})
            old.attrs["bin_width_um"] = profile.attrs.get("bin_width_um")
            profile = _carry_columns(profile, old)[list(profile.columns)
                                                   + ["ambiguous_fraction"]]
    analysis = Analysis(
        micrograph=micrograph, membrane=membrane, segmentation=segmentation,
        local_thickness_px=lt_px, profile=profile, structure=r.get("structure"),
        criteria=r.get("criteria"), isotropy=r.get("isotropy"), network=r.get("network"),
        settings=settings, timings_s={}, extras={}, notes=list(r.get("notes") or []))
    band = profile_band_from_structure(r.get("structure"))
    if band is not None:
        analysis.extras["profile_band"] = band
    r["_review_warnings"] = warnings
    return analysis, saved


def update_batch_summary(results_dir: str | Path, folder: str | Path) -> Path | None:
    """Replace one image's row of ``results_dir/summary.csv`` with its re-saved result, and
    rewrite ``report.html`` when the batch has one (via :mod:`pipeline.report`).

    Returns the summary path, or None when the folder has no summary.csv.
    """
    import json

    import pandas as pd

    from pipeline.report import summary_row, write_html_report, write_summary

    root, folder = Path(results_dir), Path(folder)
    summary = root / "summary.csv"
    if not summary.is_file():
        return None
    table = pd.read_csv(summary, dtype=object, keep_default_na=False)
    rows = table.to_dict("records")
    result = json.loads((folder / "result.json").read_text())
    new_rows = []
    found = False
    for row in rows:
        rd = str(row.get("result_dir") or "")
        if rd and Path(rd).name == folder.name:
            row = summary_row(result, image=str(row.get("image") or folder.name),
                              result_dir=rd)
            found = True
        new_rows.append({k: (None if v == "" else v) for k, v in row.items()})
    if not found:
        new_rows.append(summary_row(result, image=str((result.get("image") or {}).get("name")
                                                      or folder.name), result_dir=str(folder)))
    path = write_summary(new_rows, root)
    if (root / "report.html").is_file():
        write_html_report(root, new_rows)
    return path
