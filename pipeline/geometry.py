"""Membrane geometry: the membrane band, its reference surface and the depth map.

The membrane is described by its surface lines. For a horizontal membrane (the usual case, skin
on top) each surface is a row position per column; for a vertical one (``left``/``right``) a column
position per row. :func:`membrane_from_surfaces` turns surface lines into a :class:`Membrane`
(mask, depth map, thickness); :func:`find_membrane` finds the lines in a micrograph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

SURFACES = ("auto", "top", "bottom", "left", "right", "none")


@dataclass
class Membrane:
    """Where the membrane is and how deep each pixel lies below the reference surface.

    Attributes
    ----------
    mask : ndarray of bool, shape (rows, cols)
        Membrane material (pores included).
    reference_surface : str
        ``top``, ``bottom``, ``left``, ``right`` or ``none``: the surface depth is measured from.
    top_px, bottom_px : ndarray of float, shape (n,), or None
        The two boundaries of the band along the membrane: for a horizontal membrane the row of
        the upper and lower boundary in each column (n = cols); for a vertical one the column of
        the left and right boundary in each row (n = rows). NaN where undefined. A boundary that
        is the image edge (surface not in view) is still given (the edge position).
    surfaces_in_view : tuple of str
        Which of the two boundaries are real membrane surfaces (not the image edge), e.g.
        ``("top",)`` or ``("top", "bottom")``.
    depth_px : ndarray of float32, shape (rows, cols), or None
        Euclidean distance in px from the reference surface line, NaN outside the membrane.
        None when ``reference_surface == "none"``.
    thickness_px : float or None
        Median distance between the two surfaces when both are in view, else None.
    visible_span_px : float or None
        Median extent of the band measured from the reference surface (the largest depth seen).
    orientation : str
        ``horizontal`` or ``vertical``.
    notes : list of str
        Why a choice was made (e.g. "bottom surface not in view").
    """

    mask: np.ndarray
    reference_surface: str
    top_px: np.ndarray | None
    bottom_px: np.ndarray | None
    surfaces_in_view: tuple[str, ...]
    depth_px: np.ndarray | None
    thickness_px: float | None
    visible_span_px: float | None
    orientation: str = "horizontal"
    notes: list[str] = field(default_factory=list)

    @property
    def reference_line_px(self) -> np.ndarray | None:
        """The reference surface as an (n, 2) polyline of (row, col) points, or None."""
        return surface_polyline(self, self.reference_surface)


def surface_polyline(membrane: Membrane, which: str) -> np.ndarray | None:
    """A surface of ``membrane`` as an (n, 2) array of (row, col) points (NaN gaps dropped)."""
    if which in ("top", "left"):
        line = membrane.top_px
    elif which in ("bottom", "right"):
        line = membrane.bottom_px
    else:
        return None
    if line is None:
        return None
    along = np.arange(line.size, dtype=float)
    ok = np.isfinite(line)
    if membrane.orientation == "horizontal":
        return np.column_stack([line[ok], along[ok]])
    return np.column_stack([along[ok], line[ok]])


def _line_mask(shape: tuple[int, int], line: np.ndarray, horizontal: bool) -> np.ndarray:
    """Rasterise a boundary line (one position per column or row) as a connected pixel path."""
    out = np.zeros(shape, bool)
    n = line.size
    limit = shape[0] if horizontal else shape[1]
    pos = np.clip(np.rint(line), 0, limit - 1)
    ok = np.isfinite(line)
    idx = np.nonzero(ok)[0]
    for a, b in zip(idx[:-1], idx[1:]):
        # vertical runs between neighbouring samples keep the path 8-connected
        lo, hi = sorted((int(pos[a]), int(pos[b])))
        mid = (lo + hi) // 2
        if horizontal:
            out[lo:mid + 1, a] = True
            out[mid:hi + 1, b] = True
        else:
            out[a, lo:mid + 1] = True
            out[b, mid:hi + 1] = True
    if idx.size == 1:
        if horizontal:
            out[int(pos[idx[0]]), idx[0]] = True
        else:
            out[idx[0], int(pos[idx[0]])] = True
    del n
    return out


def depth_from_line(shape: tuple[int, int], line: np.ndarray, horizontal: bool = True
                    ) -> np.ndarray:
    """Euclidean distance (px, float32) of every pixel from a surface line.

    Parameters
    ----------
    shape : (rows, cols)
    line : ndarray, shape (cols,) if horizontal else (rows,)
        Row (or column) of the surface at each column (or row); NaN = undefined.
    horizontal : bool
    """
    path = _line_mask(shape, line, horizontal)
    if not path.any():
        raise ValueError("surface line has no defined point")
    return ndi.distance_transform_edt(~path).astype(np.float32)


def membrane_from_surfaces(
    shape: tuple[int, int],
    top_px: np.ndarray,
    bottom_px: np.ndarray,
    *,
    reference_surface: str = "top",
    surfaces_in_view: tuple[str, ...] | None = None,
    orientation: str = "horizontal",
    notes: list[str] | None = None,
) -> Membrane:
    """Build a :class:`Membrane` from its two boundary lines.

    Parameters
    ----------
    shape : (rows, cols)
        Image shape (data bar removed).
    top_px, bottom_px : ndarray of float
        Upper/lower (or left/right) boundary per column (or row), in px. Use 0 and rows - 1
        (cols - 1) for a boundary that is the image edge.
    reference_surface : str
        ``top``/``bottom`` (horizontal) or ``left``/``right`` (vertical), or ``none``.
    surfaces_in_view : tuple of str, optional
        Which boundaries are real surfaces. Default: a boundary is in view unless it lies on the
        image edge everywhere.
    orientation : str
        ``horizontal`` or ``vertical``.
    """
    rows, cols = shape
    horizontal = orientation == "horizontal"
    top = np.asarray(top_px, float)
    bottom = np.asarray(bottom_px, float)
    n_along, n_across = (cols, rows) if horizontal else (rows, cols)
    if top.shape != (n_along,) or bottom.shape != (n_along,):
        raise ValueError(f"surface lines must have {n_along} points for a {orientation} membrane")
    names = ("top", "bottom") if horizontal else ("left", "right")
    if surfaces_in_view is None:
        surfaces_in_view = tuple(
            name for name, line, edge in ((names[0], top, 0.0), (names[1], bottom, n_across - 1.0))
            if np.nanmax(np.abs(line - edge)) > 1.0
        )
    across = np.arange(n_across, dtype=float)[:, None]
    band = (across >= np.floor(top)[None, :]) & (across <= np.ceil(bottom)[None, :])
    band &= np.isfinite(top)[None, :] & np.isfinite(bottom)[None, :]
    mask = band if horizontal else band.T
    mask = np.ascontiguousarray(mask)

    depth = None
    thickness = None
    span = None
    if reference_surface not in ("none", None):
        if reference_surface not in names:
            raise ValueError(
                f"reference surface {reference_surface!r} does not fit a {orientation} membrane")
        line = top if reference_surface == names[0] else bottom
        dist = depth_from_line(shape, line, horizontal)
        depth = np.where(mask, dist, np.nan).astype(np.float32)
        other = bottom if reference_surface == names[0] else top
        other_path = _line_mask(shape, other, horizontal)
        ends = dist[other_path]
        if ends.size:
            span = float(np.median(ends))
        if len(surfaces_in_view) == 2 and span is not None:
            thickness = span
    return Membrane(
        mask=mask,
        reference_surface=reference_surface or "none",
        top_px=top,
        bottom_px=bottom,
        surfaces_in_view=tuple(surfaces_in_view),
        depth_px=depth,
        thickness_px=thickness,
        visible_span_px=span,
        orientation=orientation,
        notes=list(notes or []),
    )


def whole_frame(shape: tuple[int, int], note: str | None = None) -> Membrane:
    """A 'membrane' covering the whole frame with no reference surface (``--surface none``)."""
    rows, cols = shape
    m = membrane_from_surfaces(
        shape, np.zeros(cols), np.full(cols, rows - 1.0), reference_surface="none",
        surfaces_in_view=(), notes=[note or "no surface in view: the whole frame is material"])
    return m


# --------------------------------------------------------------------------------------------
# finding the membrane


class MembraneNotFound(ValueError):
    """No textured membrane band was found in the image."""


def texture_map(image: np.ndarray, scale_px: float) -> np.ndarray:
    """Local texture strength: local standard deviation of the image at ``scale_px`` (float32).

    Membranes are full of edges; backgrounds (vacuum, stub, charging bands) are smooth, whatever
    their brightness.
    """
    img = np.asarray(image, np.float32)
    s = max(float(scale_px), 1.0)
    mean = ndi.gaussian_filter(img, s)
    sq = ndi.gaussian_filter(img * img, s)
    return np.sqrt(np.clip(sq - mean * mean, 0, None))


def find_membrane(
    image: np.ndarray,
    pixel_size_um: float | None = None,
    *,
    surface: str = "auto",
    texture_scale_um: float | None = None,
    surface_smoothing_fraction: float = 0.05,
) -> Membrane:
    """Find the membrane band and its reference surface in a cross-section.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Grey micrograph in [0, 1], data bar removed.
    pixel_size_um : float, optional
        Pixel size (µm); only used to turn ``texture_scale_um`` into pixels.
    surface : str
        ``auto`` (the surface in view; the upper one if both), ``top``, ``bottom``, ``left``,
        ``right`` or ``none`` (no surface in view: the whole frame is material).
    texture_scale_um : float, optional
        Scale of the texture measure in µm (default: 1 % of the image's smaller side, >= 3 px).
    surface_smoothing_fraction : float
        Surface lines are smoothed over this fraction of the image width.

    Returns
    -------
    Membrane

    Raises
    ------
    MembraneNotFound
        When no textured band is found.
    """
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SURFACES)}, not {surface!r}")
    img = np.asarray(image, np.float32)
    if surface == "none":
        return whole_frame(img.shape, "surface 'none' requested: the whole frame is material")
    if surface in ("left", "right"):
        found = find_membrane(img.T, pixel_size_um,
                              surface={"left": "top", "right": "bottom"}[surface],
                              texture_scale_um=texture_scale_um,
                              surface_smoothing_fraction=surface_smoothing_fraction)
        in_view = tuple({"top": "left", "bottom": "right"}[s] for s in found.surfaces_in_view)
        return membrane_from_surfaces(
            img.shape, found.top_px, found.bottom_px, reference_surface=surface,
            surfaces_in_view=in_view, orientation="vertical", notes=found.notes)

    rows, cols = img.shape
    if texture_scale_um is not None and pixel_size_um:
        scale = texture_scale_um / pixel_size_um
    else:
        scale = max(3.0, 0.01 * min(rows, cols))
    tex = texture_map(img, scale)
    textured = _textured_mask(tex)
    if textured.mean() < 0.02:
        raise MembraneNotFound("no textured membrane band found (the image is smooth everywhere)")

    # Column-wise band: rows covered by the largest textured run, smoothed along the width.
    win = max(3, int(round(cols * surface_smoothing_fraction)) | 1)
    frac = ndi.uniform_filter1d(textured.astype(np.float32), size=win, axis=1)
    inside = frac > 0.5
    inside = ndi.binary_closing(inside, np.ones((int(2 * scale) | 1, 1)), border_value=0)
    inside = ndi.binary_opening(inside, np.ones((int(2 * scale) | 1, 1)))
    lab, n = ndi.label(inside)
    if n == 0:
        raise MembraneNotFound("no textured membrane band found")
    # the band is the component spanning the most columns
    spans = [np.unique(np.nonzero(lab == i)[1]).size for i in range(1, n + 1)]
    band = lab == (int(np.argmax(spans)) + 1)
    if max(spans) < 0.5 * cols:
        raise MembraneNotFound("no membrane band runs across the image")
    has = band.any(axis=0)
    top = np.where(has, band.argmax(axis=0), np.nan).astype(float)
    bottom = np.where(has, rows - 1 - band[::-1].argmax(axis=0), np.nan).astype(float)
    top = _smooth_line(top, win)
    bottom = _smooth_line(bottom, win)
    margin = max(2.0, scale)
    in_view = []
    if np.nanmedian(top) > margin:
        in_view.append("top")
    else:
        top = np.zeros(cols)
    if np.nanmedian(bottom) < rows - 1 - margin:
        in_view.append("bottom")
    else:
        bottom = np.full(cols, rows - 1.0)
    notes: list[str] = []
    if surface == "auto":
        if not in_view:
            notes.append("no membrane surface in view: depth profile not measured")
            reference = "none"
        else:
            reference = in_view[0]
            if len(in_view) == 2:
                notes.append("both surfaces in view: depth measured from the top surface")
    else:
        reference = surface
        if surface not in in_view:
            notes.append(f"{surface} surface requested but not detected: the image edge is used")
    return membrane_from_surfaces(
        img.shape, top, bottom, reference_surface=reference, surfaces_in_view=tuple(in_view),
        notes=notes)


def _textured_mask(tex: np.ndarray) -> np.ndarray:
    from skimage.filters import threshold_otsu

    log_tex = np.log(tex + 1e-4)
    lo, hi = np.percentile(log_tex, [2, 98])
    if hi - lo < np.log(3.0):
        return np.ones(tex.shape, bool)  # uniform texture: the whole frame is material
    return log_tex > threshold_otsu(log_tex)


def _smooth_line(line: np.ndarray, win: int) -> np.ndarray:
    ok = np.isfinite(line)
    if not ok.any():
        return line
    x = np.arange(line.size)
    filled = np.interp(x, x[ok], line[ok])
    filled = ndi.median_filter(filled, size=win, mode="nearest")
    return ndi.uniform_filter1d(filled, size=win, mode="nearest")
