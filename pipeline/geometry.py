"""Membrane geometry: the membrane band, its reference surface and the depth map.

The membrane is described by its surface lines. For a horizontal membrane (the usual case, skin
on top) each surface is a row position per column; for a vertical one (``left``/``right``) a column
position per row. :func:`membrane_from_surfaces` turns surface lines into a :class:`Membrane`
(mask, depth map, thickness); :func:`find_membrane` finds the lines in a micrograph.

How :func:`find_membrane` works (horizontal case; the vertical one runs on the transposed image):

1. **Texture, not brightness.** A band-pass pyramid (binomial filters, OpenCV) measures the local
   energy of structure *along* the membrane (along x) at scales of 2, 4, 8, ... px; the log
   energies of all scales are averaged on a coarse grid (:func:`texture_log_map`). Backgrounds
   (vacuum, stub, saturated charging bands) are smooth at every scale whatever their brightness;
   the membrane is full of edges at the scales of its pores. Measuring along x only makes the
   measure blind to scan-line noise, horizontal charging streaks and to the surface edge itself.
   Energies are floored at the image's white-noise level, so saturated and noisy backgrounds
   look alike.
2. **Backgrounds are large smooth regions touching the frame edge.** The log texture is split in
   two (Otsu); smooth connected regions touching the top (bottom) edge over a large part of the
   width are the background above (below) the membrane. Debris in the background is textured but
   surrounded by background, so the background's lowest row in a column is still the membrane
   surface; pores inside the membrane never touch the frame edge. A candidate must be much smoother
   than the band (mean log-energy contrast >= 2), mostly smooth beyond its boundary and textured
   inside it (three quarters of a strip under it; half beyond a clean background, where fine pores
   under the surface may read smooth at the coarse scales), its boundary no steeper than 45 degrees
   (else the membrane is vertical and ``auto`` looks at the transposed image), and must not reach
   from the top edge to the bottom one. A surface seen over less than half the width makes ``auto``
   read the transposed image too, and a vertical surface seen over at least twice as much of the
   frame wins (pores elongated along a vertical membrane give it structure along x). Smooth cells
   of the band's grey level rather than the background's are material, not background
   (:func:`_level_limited_background`): a dense layer, the solid between sparse large pores, and a
   layer of pores too fine to read as texture that runs across the frame under the surface (at
   least a few grid rows thick in its columns: the cells straddling a tilted band's edge are not a
   layer), begins with a step of grey level and is rougher than the background (a charging band's
   fading edge changes level gradually).
3. **The surface at full resolution.** In a strip of rows around each coarse surface, the
   background is flooded (4-connected) from the known background through pixels that are as smooth
   as the background at the finest scale that tells the two apart (difference-of-Gaussians energy,
   threshold minimising the two misclassification rates). A gradual halo (charging, edge
   brightening) passes; a step (the surface, the edge of a dense skin, pore walls as grey as the
   background) stops it, and the flood runs around debris into the gap between debris and membrane.
   What the flood reaches sideways (not straight down from the background in its column: under
   debris, or through a gap in a surface edge) stays only where its grey level is the background's,
   so it cannot run into the flat middle of a smooth dense skin (:func:`_background_level_only`); a
   saturated charging band below the vacuum, parted from it by the step of its edge, is a
   background of its own (:func:`saturated_background`). Below the flood's end, per column, the
   edge is the outermost strong ascent of the departure from the local background level (sub-pixel,
   parabola), after removing scan-line offsets measured on the flooded background and on the rows
   between the flood's end and the surface still at the background's level (a coarse smoothness
   scale stops the flood tens of rows short, and bright scan lines there passed for the surface). A
   departure counts when it exceeds 4 noise sigmas and 1.5 times the largest departure of the
   flooded background just above (a saturated background has no measurable spread but dips below
   the clip level), and is a step: as large against the rows 6 above (a halo brightening towards
   the surface departs from the background's level slowly). A layer as dark as the vacuum right
   under a bright charging band (below a quarter of its level), continuous along the surface and up
   to a few edge searches tall, is background too.
4. **Robust line.** Per-column positions are fitted by an outlier-rejecting smoother (a Siegel
   repeated-medians line, then Gaussian-weighted local-linear fits of the inliers with shrinking
   windows), so columns over pores open at the surface (macrovoids, a rough skin), leaks and
   debris touching the surface do not pull the line; tilt and gentle bends are kept; the line is
   extrapolated linearly where the surface leaves the frame (depth is measured from the
   extrapolated line; the stored boundary is clipped to the frame).

Limits: a background thinner than about 3-4 % of the frame height is not recognised (the surface
is then reported not in view); where the first rows of material are exactly as bright as the
background (saturated) the edge is found where the material becomes visible.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage as ndi

SURFACES = ("auto", "top", "bottom", "left", "right", "none")

#: Smallest image side (px) :func:`find_membrane` works on.
MIN_SIDE_PX = 24


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
        Median distance between the two surfaces (perpendicular to the band) when both are in
        view, else None.
    visible_span_px : float or None
        Median extent of the band measured from the reference surface (the largest depth seen).
    orientation : str
        ``horizontal`` or ``vertical``.
    notes : list of str
        Why a choice was made (e.g. "bottom surface not in view").
    surface_fraction_in_view : dict
        For each surface in view, the fraction of the columns (rows) where it lies inside the
        frame and was measured (the rest is extrapolated and clipped to the frame edge).
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
    surface_fraction_in_view: dict = field(default_factory=dict)

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
    """Rasterise a boundary line (one position per column or row) as an 8-connected pixel path.

    Positions outside the frame are clipped to its edge.
    """
    out = np.zeros(shape, bool)
    limit = shape[0] if horizontal else shape[1]
    ok = np.isfinite(line)
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return out
    pos = np.clip(np.rint(line[idx]), 0, limit - 1).astype(np.intp)
    # each sample covers the rows from its own position to half-way to its neighbours, so the
    # path stays 8-connected across steep steps (vectorised run-length fill)
    prev = np.concatenate([pos[:1], pos[:-1]])
    nxt = np.concatenate([pos[1:], pos[-1:]])
    gap_prev = np.concatenate([[False], np.diff(idx) > 1])
    gap_next = np.concatenate([np.diff(idx) > 1, [False]])
    prev = np.where(gap_prev, pos, prev)
    nxt = np.where(gap_next, pos, nxt)
    lo = np.minimum(pos, np.minimum((pos + prev) // 2, (pos + nxt) // 2))
    hi = np.maximum(pos, np.maximum((pos + prev + 1) // 2, (pos + nxt + 1) // 2))
    lengths = hi - lo + 1
    along = np.repeat(idx, lengths)
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    across = starts + np.arange(int(lengths.sum()))
    if horizontal:
        out[across, along] = True
    else:
        out[along, across] = True
    return out


def _edt(free: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance (float32) of every True pixel to the nearest False pixel."""
    return cv2.distanceTransform(free.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def depth_from_line(shape: tuple[int, int], line: np.ndarray, horizontal: bool = True
                    ) -> np.ndarray:
    """Euclidean distance (px, float32) of every pixel from a surface line.

    The line is rasterised (nearest pixel, so distances are exact to +-0.5 px) and the exact
    Euclidean distance transform is taken (OpenCV, Felzenszwalb's algorithm). The surface does
    not end at the frame: the line is continued straight beyond both sides of the frame (with
    its end slopes), so pixels near a side of a tilted band get their perpendicular depth, and
    line positions outside the frame (a surface extrapolated beyond the top or bottom edge) are
    honoured; the canvas is padded to hold both.

    Parameters
    ----------
    shape : (rows, cols)
    line : ndarray, shape (cols,) if horizontal else (rows,)
        Row (or column) of the surface at each column (or row); NaN = undefined.
    horizontal : bool
    """
    line = np.asarray(line, float)
    ok = np.isfinite(line)
    if not ok.any():
        raise ValueError("surface line has no defined point")
    rows, cols = shape
    limit, n_along = (rows, cols) if horizontal else (cols, rows)
    idx = np.nonzero(ok)[0]
    pieces = [line]
    pad_before = 0
    if idx.size >= 2:
        for side in (0, 1):
            end = idx[:16] if side == 0 else idx[-16:]
            slope, icpt = np.polyfit(end.astype(float), line[end], 1)
            reach = int(np.ceil(limit * abs(slope) / np.hypot(1.0, slope))) + 1
            reach = min(reach, limit)
            if side == 0:
                pad_before = reach
                xs = np.arange(-reach, 0, dtype=float)
                pieces.insert(0, slope * xs + icpt)
            else:
                xs = np.arange(n_along, n_along + reach, dtype=float)
                pieces.append(slope * xs + icpt)
    ext = np.concatenate(pieces)
    ext_ok = np.isfinite(ext)
    lo = float(np.min(ext[ext_ok]))
    hi = float(np.max(ext[ext_ok]))
    pad_lo = int(np.ceil(max(0.0, -lo)))
    pad_hi = int(np.ceil(max(0.0, hi - (limit - 1))))
    canvas = (limit + pad_lo + pad_hi, ext.size)
    path = _line_mask(canvas, ext + pad_lo, True)
    dist = _edt(~path)[pad_lo:pad_lo + limit, pad_before:pad_before + n_along]
    _subpixel_depth(dist, line)
    return np.ascontiguousarray(dist if horizontal else dist.T)


def _subpixel_depth(dist: np.ndarray, line: np.ndarray) -> None:
    """Replace rasterisation error of ``dist`` (in place) by the local-linear distance.

    The distance transform measures to the rasterised line, exact only to +-0.5 px and biased
    on tilted lines. The perpendicular distance to the local tangent of the real-valued line,
    d = |r - y(c)| / sqrt(1 + y'(c)**2), is exact for a straight line and off by about
    kappa * d**2 / 2 below a bend of curvature kappa; it replaces the distance transform where
    that error is under 0.2 px and the two agree within a pixel (so the tangent is the nearest
    part of the line).
    """
    ok = np.isfinite(line)
    if ok.sum() < 3:
        return
    x = np.arange(line.size, dtype=float)
    y = np.interp(x, x[ok], line[ok])
    slope = np.gradient(y)
    curvature = np.abs(np.gradient(slope)) / (1.0 + slope**2) ** 1.5
    # deepest pixel in each column where the tangent is good to 0.2 px
    max_depth = np.sqrt(0.4 / np.maximum(curvature, 1e-12)).astype(np.float32)
    inv_norm = (1.0 / np.hypot(1.0, slope)).astype(np.float32)
    rows = np.arange(dist.shape[0], dtype=np.float32)[:, None]
    local = np.abs(rows - y.astype(np.float32)[None, :]) * inv_norm[None, :]
    np.copyto(dist, local, where=(np.abs(local - dist) < 1.0) & (local <= max_depth[None, :]))


def perpendicular_distance(line_a: np.ndarray, line_b: np.ndarray) -> np.ndarray:
    """For every point of curve b (one position per column) its distance to curve a, px.

    Both curves are functions of the same column index (NaN = undefined); curve a is the
    polyline through its points, sampled 8 times per column (nearest sample by k-d tree), so
    the distance is exact to ~0.01 px for straight, tilted and gently bent bands. Returns NaN
    where b is undefined.
    """
    from scipy.spatial import cKDTree

    a = np.asarray(line_a, float)
    b = np.asarray(line_b, float)
    out = np.full(b.size, np.nan)
    x = np.arange(a.size, dtype=float)
    ok = np.isfinite(a)
    okb = np.isfinite(b)
    if ok.sum() < 2 or not okb.any():
        return out
    xa = np.linspace(x[ok][0], x[ok][-1], 8 * int(ok.sum()))
    pa = np.column_stack([np.interp(xa, x[ok], a[ok]), xa])
    pb = np.column_stack([b[okb], x[okb]])
    out[okb] = cKDTree(pa).query(pb)[0]
    return out


def membrane_without(membrane: Membrane, excluded: np.ndarray | None) -> Membrane:
    """The membrane less ``excluded`` pixels (e.g. labels burned into the frame): they leave the
    mask and their depth becomes NaN. Returns ``membrane`` itself when nothing is excluded."""
    if excluded is None or not np.any(excluded & membrane.mask):
        return membrane
    depth = membrane.depth_px
    if depth is not None:
        depth = np.where(excluded, np.float32(np.nan), depth).astype(np.float32, copy=False)
    return dataclasses.replace(membrane, mask=membrane.mask & ~excluded, depth_px=depth)


def membrane_from_surfaces(
    shape: tuple[int, int],
    top_px: np.ndarray,
    bottom_px: np.ndarray,
    *,
    reference_surface: str = "top",
    surfaces_in_view: tuple[str, ...] | None = None,
    orientation: str = "horizontal",
    notes: list[str] | None = None,
    reference_line_px: np.ndarray | None = None,
    surface_fraction_in_view: dict | None = None,
) -> Membrane:
    """Build a :class:`Membrane` from its two boundary lines.

    A pixel belongs to the membrane when its centre lies between the two lines (inclusive), so
    a line at a fractional position splits the frame where the true boundary is.

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
    notes : list of str, optional
    reference_line_px : ndarray of float, optional
        The reference surface to measure depth from when it differs from the clipped boundary,
        e.g. a surface that leaves the frame, extrapolated beyond its edge (positions outside
        [0, rows - 1] allowed). Default: the reference boundary itself.
    surface_fraction_in_view : dict, optional
        Stored on the result (see :class:`Membrane`).
    """
    if orientation not in ("horizontal", "vertical"):
        raise ValueError(f"orientation must be 'horizontal' or 'vertical', not {orientation!r}")
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
            if np.any(np.isfinite(line)) and np.nanmax(np.abs(line - edge)) > 1.0
        )
    # rows from ceil(top) to floor(bottom): pixel centres between the lines
    defined = np.isfinite(top) & np.isfinite(bottom)
    first = np.where(defined, np.ceil(np.nan_to_num(top) - 1e-6), n_across).astype(np.int32)
    last = np.where(defined, np.floor(np.nan_to_num(bottom) + 1e-6), -1).astype(np.int32)
    across_idx = np.arange(n_across, dtype=np.int32)[:, None]
    band = (across_idx >= first[None, :]) & (across_idx <= last[None, :])
    mask = np.ascontiguousarray(band if horizontal else band.T)

    depth = None
    thickness = None
    span = None
    if reference_surface not in ("none", None):
        if reference_surface not in names:
            raise ValueError(
                f"reference surface {reference_surface!r} does not fit a {orientation} membrane")
        own = top if reference_surface == names[0] else bottom
        line = own if reference_line_px is None else np.asarray(reference_line_px, float)
        if line.shape != (n_along,):
            raise ValueError(f"reference_line_px must have {n_along} points")
        dist = depth_from_line(shape, line, horizontal)
        depth = np.where(mask, dist, np.nan).astype(np.float32)
        other = bottom if reference_surface == names[0] else top
        other_path = _line_mask(shape, other, horizontal)
        ends = dist[other_path]
        if ends.size:
            span = float(np.median(ends))
        if len(surfaces_in_view) == 2:
            perp = perpendicular_distance(line, other)
            if np.isfinite(perp).any():
                thickness = float(np.nanmedian(perp))
                span = thickness
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
        surface_fraction_in_view=dict(surface_fraction_in_view or {}),
    )


def whole_frame(shape: tuple[int, int], note: str | None = None) -> Membrane:
    """A 'membrane' covering the whole frame with no reference surface (``--surface none``)."""
    rows, cols = shape
    m = membrane_from_surfaces(
        shape, np.zeros(cols), np.full(cols, rows - 1.0), reference_surface="none",
        surfaces_in_view=(), notes=[note or "no surface in view: the whole frame is material"])
    return m


# --------------------------------------------------------------------------------------------
# texture


class MembraneNotFound(ValueError):
    """No textured membrane band was found in the image."""


_BINOMIAL5 = np.array([1, 4, 6, 4, 1], np.float32) / 16
_IDENTITY1 = np.array([1], np.float32)


def _bandpass_pyramid(image: np.ndarray, n_levels: int) -> list[np.ndarray]:
    """Band-pass responses along x at pyramid levels 0..n_levels (level k at 1/2**k size).

    Level k: the image reduced k times (``cv2.pyrDown``) minus its binomial smoothing along x,
    then smoothed across (along y) with the same binomial. Structure constant along x (scan-line
    offsets, horizontal streaks, slow drifts, horizontal edges) gives no response.
    """
    out = []
    level = image
    for k in range(n_levels + 1):
        smooth_x = cv2.sepFilter2D(level, -1, _BINOMIAL5, _IDENTITY1,
                                   borderType=cv2.BORDER_REFLECT)
        band = cv2.sepFilter2D(level - smooth_x, -1, _IDENTITY1, _BINOMIAL5,
                               borderType=cv2.BORDER_REFLECT)
        out.append(band)
        if k < n_levels:
            if min(level.shape) < 2:
                break
            level = cv2.pyrDown(level)
    return out


@functools.lru_cache(maxsize=8)
def _white_noise_gains(n_levels: int) -> np.ndarray:
    """Standard deviation of each level of :func:`_bandpass_pyramid` for unit white noise."""
    # deterministic; measured once per process rather than stored as magic numbers
    rng = np.random.default_rng(12345)
    size = max(256, 2 ** (n_levels + 4))
    noise = rng.standard_normal((size, size)).astype(np.float32)
    bands = _bandpass_pyramid(noise, n_levels)
    gains = []
    for b in bands:
        m = max(1, min(b.shape) // 8)
        gains.append(float(np.sqrt(np.mean(b[m:-m, m:-m] ** 2))))
    return np.array(gains)


def _noise_sigma(band0: np.ndarray, gain0: float) -> float:
    """Robust white-noise sigma of the image from its finest band (MAD), ignoring flat areas."""
    vals = np.abs(band0[::2, ::2])
    vals = vals[vals != 0]
    if vals.size < 16:
        return 1e-3
    return max(float(1.4826 * np.median(vals) / gain0), 1e-3)


def texture_log_map(
    image: np.ndarray,
    *,
    grid_level: int,
    levels: tuple[int, ...],
    box: int = 5,
) -> tuple[np.ndarray, float]:
    """Mean over scales of the log local band-pass energy along x, on a coarse grid.

    Parameters
    ----------
    image : ndarray of float32, shape (rows, cols)
    grid_level : int
        The result has the shape of pyramid level ``grid_level`` (about rows / 2**grid_level).
    levels : tuple of int
        Pyramid levels (>= 1) whose energies are averaged; level k responds to structure of
        about 2**k to 2**(k+1) px.
    box : int
        Side of the box (in pixels of each level) over which the energy is averaged.

    Returns
    -------
    log_texture : ndarray of float32, shape of level ``grid_level``
    noise_sigma : float
        Estimated white-noise standard deviation of the image (grey units).
    noise_log_texture : float
        What white noise of that sigma alone would give (the same mean over scales of the log
        energy): structure shows as log texture above it.
    """
    n_levels = max(max(levels), grid_level)
    bands = _bandpass_pyramid(np.asarray(image, np.float32), n_levels)
    gains = _white_noise_gains(n_levels)
    sigma = _noise_sigma(bands[0], gains[0])
    grid = bands[min(grid_level, len(bands) - 1)].shape
    acc = np.zeros(grid, np.float32)
    used = 0
    noise_log = 0.0
    for k in levels:
        if k >= len(bands):
            continue
        b = bands[k]
        e = cv2.blur(b * b, (box, box), borderType=cv2.BORDER_REFLECT)
        floor = (sigma * gains[k]) ** 2  # white-noise energy at this level
        e = np.log(e + floor)
        noise_log += float(np.log(2 * floor))
        interp = cv2.INTER_AREA if e.shape[0] > grid[0] else cv2.INTER_LINEAR
        if e.shape != grid:
            e = cv2.resize(e, (grid[1], grid[0]), interpolation=interp)
        acc += e
        used += 1
    return acc / max(used, 1), sigma, noise_log / max(used, 1)


def texture_map(image: np.ndarray, scale_px: float) -> np.ndarray:
    """Local texture strength at ``scale_px``, in units of the image's white-noise energy.

    Band-pass energy along x (see :func:`texture_log_map`) at the pyramid level nearest to
    ``scale_px``, divided by the energy white noise of the image's own noise level would give
    there; shape and size of ``image`` (float32). Membranes are full of edges; backgrounds
    (vacuum, stub, charging bands) are smooth, whatever their brightness, and score about 1.
    """
    img = np.asarray(image, np.float32)
    level = int(np.clip(round(np.log2(max(float(scale_px), 1.0))), 1, 8))
    level = min(level, max(1, int(np.log2(max(min(img.shape), 2))) - 2))
    bands = _bandpass_pyramid(img, level)
    gains = _white_noise_gains(level)
    level = min(level, len(bands) - 1)
    sigma = _noise_sigma(bands[0], gains[0])
    b = bands[level]
    e = cv2.blur(b * b, (5, 5), borderType=cv2.BORDER_REFLECT) / (sigma * gains[level]) ** 2
    return cv2.resize(e, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------------------------
# robust surface lines


def _weighted_local_linear(y: np.ndarray, w: np.ndarray, sigma: float,
                           min_support: float = 0.1) -> np.ndarray:
    """Gaussian-weighted local-linear regression of y (weights w in [0, 1]) at every index.

    NaN where the Gaussian-weighted fraction of supporting samples is below ``min_support``.
    """
    n = y.size
    x = np.arange(n, dtype=float) - n / 2
    yy = np.where(w > 0, y, 0.0)

    def g(v: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter1d(v, sigma, mode="constant", truncate=3.0)

    s0, s1, s2 = g(w), g(w * x), g(w * x * x)
    t0, t1 = g(w * yy), g(w * x * yy)
    det = s0 * s2 - s1 * s1
    good = (s0 > 1e-6) & (np.abs(det) > 1e-9 * np.maximum(s0 * s2, 1e-12))
    slope = np.where(good, (s0 * t1 - s1 * t0) / np.where(good, det, 1), 0.0)
    mean_x = s1 / np.maximum(s0, 1e-12)
    mean_y = t0 / np.maximum(s0, 1e-12)
    out = mean_y + slope * (x - mean_x)
    # too little support nearby (e.g. a run of rejected columns at an end): undefined, the
    # caller interpolates or extrapolates linearly from the supported part
    return np.where(s0 > min_support, out, np.nan)


def _extend_linear(line: np.ndarray, valid: np.ndarray, span: int) -> np.ndarray:
    """Fill positions outside the valid range by extrapolating the line's end slopes (over
    ``span`` samples); gaps inside are interpolated linearly."""
    out = line.copy()
    idx = np.nonzero(valid & np.isfinite(line))[0]
    if idx.size == 0:
        return out
    x = np.arange(line.size, dtype=float)
    if idx.size == 1:
        return np.full(line.size, line[idx[0]])
    inner = (x >= idx[0]) & (x <= idx[-1])
    out[inner] = np.interp(x[inner], idx, line[idx])
    for side in (0, 1):
        end = idx[:span] if side == 0 else idx[-span:]
        if end.size >= 2:
            k, c = np.polyfit(end.astype(float), line[end], 1)
        else:
            k, c = 0.0, float(line[end[0]])
        sel = x < idx[0] if side == 0 else x > idx[-1]
        out[sel] = k * x[sel] + c
    return out


def siegel_slopes(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Siegel's repeated-median line fit, as :func:`scipy.stats.siegelslopes` (hierarchical).

    Slope = median over i of the median over j != i of (y_j - y_i) / (x_j - x_i); intercept =
    median of y - slope * x. Written out because importing scipy.stats costs about a second
    of start-up for this one call (equality with scipy is tested).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    dx = x[None, :] - x[:, None]
    dy = y[None, :] - y[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = np.where(dx != 0, dy / dx, np.nan)
    slope = float(np.median(np.nanmedian(slopes, axis=1)))
    return slope, float(np.median(y - slope * x))


def robust_surface_line(
    edge: np.ndarray,
    smoothing_px: float,
    *,
    min_tolerance_px: float = 1.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth surface line through per-column edge positions with outliers.

    The surface is the outer envelope of the material: for a top surface (values growing into
    the membrane) columns whose edge lies too deep (over pores open at the surface) and columns
    whose edge lies too high (debris touching the surface) are rejected.

    Method: a robust straight line (Siegel repeated medians, breakdown point 50 %) is the first
    reference, which contiguous outlier stretches (debris, wide macrovoids, leaks into pores
    open at the surface), even at the ends of the line, cannot move. The reference is then
    refined by Gaussian-weighted local-linear fits of the inliers with windows shrinking from
    15 % of the width to ``smoothing_px``, so tilt and bends are followed; inliers lie within
    max(``min_tolerance_px``, 3 sigma) of the current reference, sigma being the robust spread
    of the residuals on their cleaner side (pores make the inner side heavy-tailed, debris the
    outer one). The line is extrapolated linearly beyond the measured columns.

    Parameters
    ----------
    edge : ndarray of float, shape (n,)
        Per-column edge position (px), growing into the membrane; NaN = not measured.
    smoothing_px : float
        Gaussian sigma (columns) of the final local-linear fit.
    min_tolerance_px : float
        Smallest inlier tolerance.

    Returns
    -------
    line : ndarray of float, shape (n,)
        Smooth line (NaN everywhere if fewer than 3 columns were measured).
    inlier : ndarray of bool, shape (n,)
    """
    e = np.asarray(edge, float)
    n = e.size
    valid = np.isfinite(e)
    if valid.sum() < 3:
        return np.full(n, np.nan), valid
    x = np.arange(n, dtype=float)
    idx = np.nonzero(valid)[0]
    span = (x >= idx[0]) & (x <= idx[-1])
    sub = idx[:: max(1, idx.size // 150)]
    slope, intercept = siegel_slopes(e[sub], x[sub])
    trend = slope * x + intercept
    ref = trend

    def spread(resid: np.ndarray) -> float:
        # robust scale of the cleaner side: pores make the inner side heavy-tailed, debris
        # the outer one
        scales = []
        for side in (resid[resid <= 0], resid[resid >= 0]):
            if side.size >= 5:
                scales.append(float(1.4826 * np.median(np.abs(side))))
        return min(scales) if scales else 1.0

    final = max(float(smoothing_px), 1.0)
    sigmas = []
    s = 0.15 * n
    while s > final:
        sigmas.append(s)
        s /= 2.0
    sigmas += [final, final]
    inlier = valid
    line = ref
    for s in sigmas:
        resid = e - ref
        tol = max(min_tolerance_px, 3.0 * spread(resid[valid]))
        inlier = valid & (np.abs(resid) <= tol)
        if inlier.sum() < 3:
            inlier = valid
        fit = _weighted_local_linear(np.where(inlier, e, 0.0), inlier.astype(float), s)
        line = _extend_linear(fit, np.isfinite(fit) & span, max(3, int(2 * s)))
        ref = line
    return line, inlier


# --------------------------------------------------------------------------------------------
# finding the membrane


def _grid_level(min_side: int) -> int:
    """Pyramid level of the coarse texture grid (the grid keeps >= ~160 px on its short side)."""
    return int(np.clip(np.floor(np.log2(max(min_side, 1) / 160.0)), 0, 3))


def _texture_levels(min_side: int, pixel_size_um: float | None,
                    texture_scale_um: float | None) -> tuple[int, ...]:
    """Pyramid levels used for the texture: all scales from 2 px up to ~1/40 of the short side,
    or three levels around ``texture_scale_um`` when it is given."""
    top = int(np.clip(np.floor(np.log2(max(min_side, 2) / 40.0)), 1, 6))
    if texture_scale_um is not None and pixel_size_um:
        centre = int(round(np.log2(max(texture_scale_um / pixel_size_um, 1.0))))
        centre = int(np.clip(centre, 1, top))
        return tuple(k for k in (centre - 1, centre, centre + 1) if 1 <= k <= top + 1)
    return tuple(range(1, top + 1))


def _split_texture(log_texture: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Textured / smooth split of the log texture (Otsu). Returns mask, threshold, separation
    (median log texture of the textured class minus that of the smooth class)."""
    from skimage.filters import threshold_otsu

    lo, hi = np.percentile(log_texture, [0.5, 99.5])
    vals = np.clip(log_texture, lo, hi)
    if hi - lo < 1e-6:
        return np.zeros(log_texture.shape, bool), float(hi), 0.0
    thr = float(threshold_otsu(vals))
    textured = log_texture > thr
    if textured.all() or not textured.any():
        return textured, thr, 0.0
    sep = float(np.median(log_texture[textured]) - np.median(log_texture[~textured]))
    return textured, thr, sep


def _edge_backgrounds(textured: np.ndarray, min_contact: float) -> tuple[np.ndarray, np.ndarray]:
    """Smooth regions connected to the top / bottom edge of the grid over a large part of the
    width (the backgrounds above and below a horizontal membrane)."""
    smooth = ~textured
    # detach smooth regions joined to the background through one-cell channels
    se = np.ones((3, 3), bool)
    smooth = ndi.binary_dilation(ndi.binary_erosion(smooth, se, border_value=1), se) & smooth
    labels, n = ndi.label(smooth, np.ones((3, 3), bool))
    cols = textured.shape[1]
    # a smooth region reaching from the top edge to the bottom one is the background beside a
    # vertical membrane, not above or below a horizontal one
    spanning = np.intersect1d(labels[0], labels[-1])
    spanning = spanning[spanning > 0]
    out = []
    for row in (0, -1):
        edge_labels = labels[row]
        keep = np.zeros(n + 1, bool)
        if n:
            counts = np.bincount(edge_labels, minlength=n + 1)
            counts[0] = 0
            good = counts >= max(2, 0.05 * cols)
            keep = good.copy()
            keep[spanning] = False
            if counts[good].sum() < min_contact * cols:
                keep[:] = False
        out.append(keep[labels])
    return out[0], out[1]


#: A smooth grid cell joined to an edge background stays background only while its mean grey
#: level is nearer the background's (at the frame edge) than the textured band's; applied when
#: the two levels differ by at least this many spreads of the edge background's cell levels.
_MIN_LEVEL_SEPARATION = 6.0
#: Apply :func:`_level_limited_background` (False: texture alone decides the backgrounds).
LEVEL_LIMITED_BACKGROUND = True
#: ... only in patches narrower than this fraction of the width.
_MAX_PATCH_WIDTH = 0.5
#: ... and at least this many grid rows tall.
_MIN_PATCH_ROWS = 8
#: A layer across the frame (:func:`_level_limited_background`) must be at least this many grid
#: rows thick in its columns (median). Measured 2026-12-07: the fine-pored layers of
#: benchmarks/bench_surface_layers.py 5-40; the cells straddling the edge of a charging band 2-3
#: (their bounding box, along a tilted band, 28-39 rows tall).
_MIN_LAYER_ROWS = 4
#: ... and must lie on the material: background just past it (away from the frame edge) in at
#: most ``1 -`` this share of its columns. Measured 2026-12-08: the fine-pored layers of
#: tests/test_geometry.py 0.000-0.004 of their columns; the ramp of a charging band whose edge
#: fades over ~8 px, tilted 8-10 degrees under the vacuum (4-5 rows thick in its columns, so
#: thick enough), 0.995-1.000: it lies on the band, a background.
_MIN_LAYER_ON_MATERIAL = 0.5
#: ... and must not lie mostly in clipped areas: at most this mean share of its cells' pixels in
#: :func:`saturated_background`. Measured 2026-12-08: a charging band directly on the membrane
#: under the vacuum, 94 % of its pixels at the image's largest value (held-out
#: ellipses-bse-charging-top-hitachi, 768 x 768 at -10 degrees, gamma 1.4), read as such a layer
#: (its shot noise textured against the vacuum's): the surface at its top, 167 px high.
SATURATED_LAYER_FRACTION = 0.5
#: A wider patch is material when it begins with a step of grey level: median over its columns
#: of the step across its first row (two cells beyond to one inside) of at least this fraction
#: of its difference from the background (:func:`_sharp_outer_edge`; inf: never).
WIDE_LAYER_STEP_FRACTION = 0.5
#: ... and is textured beyond the background: its median log texture at least this far above
#: that of the background's cells at the frame edge (0.5: 1.6 times the band-pass energy).
#: Measured 2026-12-07: the fine layers of tests/test_geometry.py's phantoms 1.2-1.8; random
#: phantom 117's smooth grey band (no layer: its levels drift along the edge by more than the
#: gap, and its patches begin without a step) 0.1-0.5.
WIDE_LAYER_MIN_TEXTURE = 0.5


def _edge_level_trend(level: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, float]:
    """Grey level of an edge background along the edge, and its scatter about that trend.

    ``level`` and ``cells`` are the grid rows at the frame edge and the background's cells
    among them. Returns the level per grid column (the mean of the column's background cells,
    a running median over 5 columns, interpolated across columns without any) and the robust
    sigma of the cells about it: a slow illumination drift across the width is followed, not
    counted as scatter.
    """
    cols = level.shape[1]
    n = cells.sum(axis=0)
    seen = n > 0
    col_level = np.where(seen, (level * cells).sum(axis=0) / np.maximum(n, 1), np.nan)
    x = np.arange(cols)
    col_level = np.interp(x, x[seen], col_level[seen])
    trend = ndi.median_filter(col_level, size=5, mode="nearest")
    resid = (level - trend[None, :])[cells]
    return trend, 1.4826 * float(np.median(np.abs(resid - np.median(resid))))


def _sharp_outer_edge(patch: np.ndarray, level: np.ndarray, from_top: bool,
                      difference: float) -> bool:
    """Whether a patch of an edge background (grid cells) begins with a step of grey level on
    its side toward the frame edge: per column, the level two cells beyond the patch's first
    row against the level one cell inside it, whose median over the columns is at least
    ``difference`` times :data:`WIDE_LAYER_STEP_FRACTION` (the background's level minus the
    patch's)."""
    rows = patch.shape[0]
    has = patch.any(axis=0)
    if not has.any() or difference == 0:
        return False
    first = (np.argmax(patch, axis=0) if from_top
             else rows - 1 - np.argmax(patch[::-1], axis=0))
    outside = np.clip(first - 2 if from_top else first + 2, 0, rows - 1)
    inside = np.clip(first + 1 if from_top else first - 1, 0, rows - 1)
    cols = np.nonzero(has & (outside != first))[0]
    if cols.size == 0:
        return False
    step = level[outside[cols], cols] - level[inside[cols], cols]
    return bool(np.median(step) / difference >= WIDE_LAYER_STEP_FRACTION)


def _level_limited_background(background: np.ndarray, level: np.ndarray, textured: np.ndarray,
                              from_top: bool, log_texture: np.ndarray | None = None,
                              saturated: np.ndarray | None = None
                              ) -> tuple[np.ndarray, np.ndarray]:
    """The part of an edge background (grid cells) whose grey level is that of the background.

    Texture alone cannot tell a background from a smooth stretch of polymer (a dense layer, the
    solid between sparse or very large pores): both are smooth, and a background region leaked
    into such stretches and cut the membrane short (a membrane of 48 px pores at porosity 0.25:
    thickness 36 % short). Their grey levels differ: near-black vacuum or saturated charging
    against the polymer's grey. Cells of the region nearer in level to the band than to the
    background at the frame edge, and near the band's typical level, are dropped, and the
    region is kept only where it stays connected to that edge. Nothing changes when the two
    levels are not clearly separated: by :data:`_MIN_LEVEL_SEPARATION` times the scatter of
    the edge background's cells about their trend along the edge (:func:`_edge_level_trend`),
    and by more than that trend's own range (5-95 %); each cell is compared with the trend in
    its column.

    Such cells are dropped where they form a patch narrower than half the width. Across the
    frame, a layer (at least :data:`_MIN_LAYER_ROWS` thick in its columns: the cells straddling
    a tilted band's edge make a line whose bounding box is tall) lying on the material (the
    cells past it are mostly not background: the ramp between a vacuum and a charging band
    below it lies on the band) of cells whose level is clearly
    not the background's (departing from the trend by the separation above) and within the
    band's range is dropped when it begins with a step of grey level (:func:`_sharp_outer_edge`)
    and is textured beyond the background (``log_texture``, :data:`WIDE_LAYER_MIN_TEXTURE`): a
    layer of fine pores under the surface, too fine to read as texture (closed cells of 2.5 px
    under the surface on a grey or white background, whose level may be nearer the background's
    than the band's: the surface was found at the layer's lower edge, 46-170 px deep). A layer
    whose level changes gradually is the fading edge of a charging band, and a smooth one beyond
    a sharp edge a region of another level (random phantom 117: a grey band over a darker one):
    both stay background. So does a layer lying mostly (:data:`SATURATED_LAYER_FRACTION`) in
    ``saturated`` areas (share of each grid cell's pixels in :func:`saturated_background`): a
    charging band clipped at the detector's top, however its noise reads against the vacuum's
    (fine pores are never clipped).

    Returns the kept background and the cells that are material by level, however smooth
    (outside the kept background; all False when the levels are not separated).
    """
    none = np.zeros(background.shape, bool)
    if not background.any():
        return background, none
    at_edge = slice(None, 2) if from_top else slice(-2, None)  # the grid rows at the frame edge
    edge_rows = background[at_edge]
    edge_levels = level[at_edge][edge_rows]
    band = textured & ~background
    if edge_levels.size < 2 or not band.any():
        return background, none
    # the background's level along the edge (it may drift across the width) and its scatter
    bg_trend, spread = _edge_level_trend(level[at_edge], edge_rows)
    spread += 1e-3
    bg_level = float(np.median(edge_levels))
    gap = float(np.median(level[band])) - bg_level
    # separated: by many times the scatter, and by more than the drift along the edge
    drift = float(np.subtract(*np.percentile(bg_trend, [95, 5])))
    separation = max(_MIN_LEVEL_SEPARATION * spread, drift)
    if abs(gap) < separation:
        return background, none
    # material by level: nearer the band than the background, and near the band's typical
    # level (a charging band beyond a vacuum gap, or the dark gap under a charging band, lies
    # outside it: background)
    q1, med, q3 = np.percentile(level[band], [25, 50, 75])
    reach = max(1.5 * (q3 - q1), 3 * spread)
    near_band = np.abs(level - med) < reach
    unlike = (np.abs(level - bg_trend[None, :]) >= 0.5 * abs(gap)) & near_band
    wide = _MAX_PATCH_WIDTH * background.shape[1]
    # ... in patches a few cells tall (cells straddling the surface, and pores open to it,
    # have the levels of neither side) and narrower than half the width
    patches, size = _patch_sizes(background & unlike)
    keep = np.zeros(len(size) + 1, bool)
    keep[1:] = (size[:, 0] >= _MIN_PATCH_ROWS) & (size[:, 1] < wide)
    material = keep[patches]
    # ... or in a layer across the frame, of a level clearly not the background's, that begins
    # with a step and is textured beyond the background (a layer that fades in is the edge of a
    # charging band; a smooth one beyond an edge another background)
    if log_texture is not None:
        edge_texture = float(np.median(log_texture[at_edge][edge_rows]))
        departed = (np.abs(level - bg_trend[None, :]) >= separation) & near_band
        patches, size = _patch_sizes(background & (departed | unlike))
        for k in np.flatnonzero((size[:, 0] >= _MIN_PATCH_ROWS) & (size[:, 1] >= wide)) + 1:
            patch = patches == k
            columns = patch.any(axis=0)
            # a layer, not a line: tall in its columns, not only in its bounding box (the
            # straddling cells along a tilted band's edge span many rows across the width)
            if np.median(patch.sum(axis=0)[columns]) < _MIN_LAYER_ROWS:
                continue
            if _beyond_fraction(patch, background, from_top) > 1 - _MIN_LAYER_ON_MATERIAL:
                continue
            if (saturated is not None
                    and float(np.mean(saturated[patch])) >= SATURATED_LAYER_FRACTION):
                continue
            difference = float(np.median(bg_trend[columns])) - float(np.median(level[patch]))
            if (float(np.median(log_texture[patch])) - edge_texture >= WIDE_LAYER_MIN_TEXTURE
                    and _sharp_outer_edge(patch, level, from_top, difference)):
                material |= patch
    unlike = (unlike & ~background) | material
    labels, _ = ndi.label(background & ~material, np.ones((3, 3), bool))
    touching = np.unique(labels[0] if from_top else labels[-1])
    return np.isin(labels, touching[touching > 0]), unlike


def _beyond_fraction(patch: np.ndarray, mask: np.ndarray, from_top: bool) -> float:
    """Share of a patch's columns (grid cells) whose cell just past the patch, away from the
    frame edge (below it for the top edge), is in ``mask`` (a column past the frame counts as
    not)."""
    rows = patch.shape[0]
    columns = np.flatnonzero(patch.any(axis=0))
    if columns.size == 0:
        return 0.0
    sub = patch[:, columns]
    last = (rows - 1 - np.argmax(sub[::-1], axis=0)) if from_top else np.argmax(sub, axis=0)
    past = last + 1 if from_top else last - 1
    inside = (past >= 0) & (past < rows)
    hit = np.zeros(columns.size, bool)
    hit[inside] = mask[past[inside], columns[inside]]
    return float(hit.mean())


def _patch_sizes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected patches of ``mask``: their labels and, per label 1..n, the height and width
    (cells) of its bounding box, shape (n, 2)."""
    patches, _ = ndi.label(mask, np.ones((3, 3), bool))
    boxes = ndi.find_objects(patches)
    size = np.array([[b[0].stop - b[0].start, b[1].stop - b[1].start] for b in boxes], int)
    return patches, size.reshape(-1, 2)


def _spanning_material_by_level(textured: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Smooth grid cells that join the frame's top edge to its bottom edge but have the grey
    level of neither edge's background: a smooth stretch of polymer (the solid between sparse
    large pores) that links the backgrounds above and below a horizontal membrane into one
    smooth region, which :func:`_edge_backgrounds` would take for the background beside a
    vertical membrane (isolated pores of 96 px at porosity 0.25: no surface found).

    A cell is such material when, for both edges, its level is at least half way from that
    edge's background level (median of the region's cells on the edge row) to the textured
    cells' median level, and both edges' backgrounds are separated from that level by
    ``_MIN_LEVEL_SEPARATION`` spreads of their cells (all False otherwise). The background
    beside a vertical membrane has one level from top to bottom and keeps it.
    """
    none = np.zeros(textured.shape, bool)
    smooth = ~textured
    labels, _ = ndi.label(smooth, np.ones((3, 3), bool))
    spanning = np.intersect1d(labels[0], labels[-1])
    spanning = spanning[spanning > 0]
    if spanning.size == 0 or not textured.any():
        return none
    region = np.isin(labels, spanning)
    band_level = float(np.median(level[textured]))
    unlike = region.copy()
    for edge in (0, -1):
        edge_levels = level[edge][region[edge]]
        if edge_levels.size < 2:
            return none
        bg_level = float(np.median(edge_levels))
        spread = 1.4826 * float(np.median(np.abs(edge_levels - bg_level))) + 1e-3
        gap = band_level - bg_level
        if abs(gap) < _MIN_LEVEL_SEPARATION * spread:
            return none
        unlike &= np.abs(level - bg_level) >= 0.5 * abs(gap)
    return unlike


def _coarse_edges(background: np.ndarray, from_top: bool) -> np.ndarray:
    """Per grid column, the grid row just past the background (NaN where it has none)."""
    rows = background.shape[0]
    bg = background if from_top else background[::-1]
    has = bg.any(axis=0)
    # last background row from the edge side
    last = rows - 1 - np.argmax(bg[::-1], axis=0)
    edge = np.where(has, last + 1.0, np.nan)
    if not from_top:
        edge = np.where(has, rows - edge, np.nan)  # first row of the band from above, as float
    return edge


def _smooth_like_background(img: np.ndarray, background: np.ndarray, band: np.ndarray
                            ) -> tuple[np.ndarray, float]:
    """Pixels whose fine structure energy is that of the background, at the scale that tells
    the membrane from the background best.

    Difference-of-Gaussians energy at sigma 1, 2 and 4 px. At each scale the threshold on the
    log energy that minimises P(background above) + P(band below) is found from the two
    samples; a coarser scale is used only when its error is smaller by 0.1 or more.

    Returns the boolean map and the scale used (px).
    """
    best = None
    floor = (0.25 / 255.0) ** 2
    rng = np.random.default_rng(0)
    for sigma in (1.0, 2.0, 4.0):
        g1 = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        g2 = cv2.GaussianBlur(img, (0, 0), 2 * sigma, borderType=cv2.BORDER_REFLECT)
        d = g1 - g2
        energy = cv2.GaussianBlur(d * d, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        e_bg = np.log(energy[background] + floor)
        e_band = np.log(energy[band] + floor)
        if e_bg.size > 20000:
            e_bg = rng.choice(e_bg, 20000, replace=False)
        if e_band.size > 20000:
            e_band = rng.choice(e_band, 20000, replace=False)
        e_bg.sort()
        e_band.sort()
        cand = np.quantile(np.concatenate([e_bg, e_band]), np.linspace(0.01, 0.99, 99))
        above_bg = 1.0 - np.searchsorted(e_bg, cand, side="right") / e_bg.size
        below_band = np.searchsorted(e_band, cand, side="left") / e_band.size
        err = above_bg + below_band
        i = int(np.argmin(err))
        # a coarser scale must be clearly better: finer scales stop the flood closer to the
        # surface (the energy of the surface edge itself spreads over ~4 sigma)
        if best is None or err[i] < best[0] - 0.1:
            best = (float(err[i]), sigma, energy, float(np.exp(cand[i]) - floor))
    _, sigma, energy, thr = best
    return energy <= thr, sigma


def _row_offsets(img: np.ndarray, background: np.ndarray, min_pixels: int = 20
                 ) -> np.ndarray | None:
    """Per-row offsets (scan-line noise) of ``img`` measured on the ``background`` pixels.

    Each background pixel is compared with the vertical (7-row Gaussian) trend of the
    background alone; the row offset is the median difference over the row's background
    pixels (0 for rows with fewer than ``min_pixels``). None when nothing can be measured.
    """
    bg = background.astype(np.float32)
    if bg.sum() < min_pixels * 4:
        return None
    num = cv2.GaussianBlur(img * bg, (1, 0), sigmaX=1e-3, sigmaY=3.0)
    den = cv2.GaussianBlur(bg, (1, 0), sigmaX=1e-3, sigmaY=3.0)
    trend = num / np.maximum(den, 1e-6)
    resid = np.where(background, img - trend, np.nan)
    count = background.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        off = np.nanmedian(resid, axis=1)
    off = np.where(count >= min_pixels, off, 0.0)
    return np.nan_to_num(off).astype(np.float32)


#: :func:`_locate_edge`: a surface is a step over this many rows (a blurred edge rises within it,
#: a halo does not).
_STEP_ROWS = 6


def _locate_edge(smooth_img: np.ndarray, edge_img: np.ndarray, last: np.ndarray,
                 ref: np.ndarray, t_col: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel edge below row ``last`` in each column, where the image leaves ``ref``.

    The first departure larger than ``t_col`` lasting two rows, its peak within 5 rows, then the
    outermost local maximum of the ascent (at least half the steepest) between ``last`` and the
    peak, refined by a parabola. Returns the edge row and whether one was found.
    """
    rows, cols = smooth_img.shape
    x = np.arange(cols)
    offsets = np.arange(-3, reach)
    pos = last[None, :] + offsets[:, None]
    rr = np.clip(pos, 0, rows - 1)
    valid = (pos >= 0) & (pos < rows)
    level = smooth_img[rr, x[None, :]]
    prof = np.where(valid, np.abs(level - ref[None, :]), 0.0)
    # ... and a step: the departure from the rows just above, not only from the level where the
    # flood ended (a halo brightening towards the surface departs from that level slowly; with
    # the flood stopped tens of rows short, the halo passed for the surface, 6-21 px above it)
    earlier = np.clip(pos - _STEP_ROWS, 0, rows - 1)
    step = np.abs(level - smooth_img[earlier, x[None, :]])
    above = (prof > t_col[None, :]) & (step > t_col[None, :])
    start = 3  # index of the row ``last``
    above[:start + 1] = False
    sustained = above[:-1] & above[1:]
    found = sustained.any(axis=0)
    j1 = np.argmax(sustained, axis=0)
    nj = prof.shape[0]
    idx = np.clip(j1[None, :] + np.arange(5)[:, None], 0, nj - 1)
    jpk = idx[np.argmax(prof[idx, x[None, :]], axis=0), x]
    # ascent between the flood's end and the peak (sub-pixel: parabola through the difference
    # and its neighbours). For a blurred step it is the step; for a bright rim that starts at
    # the boundary it is the rim's outer flank, i.e. the boundary again.
    sharp = np.where(valid, np.abs(edge_img[rr, x[None, :]] - ref[None, :]), 0.0)
    grad = np.diff(sharp, axis=0)  # grad[j] sits at j + 0.5
    jj = np.arange(nj - 1)[:, None]
    window = (jj >= start - 1) & (jj < jpk[None, :])
    gmasked = np.where(window, grad, -np.inf)
    gmax = gmasked.max(axis=0)
    # the outermost local maximum of the ascent that is at least half the steepest: a bright
    # rim in front of a darker face (or the reverse) is entered at its outer flank
    left = np.vstack([np.full((1, cols), -np.inf), gmasked[:-1]])
    right = np.vstack([gmasked[1:], np.full((1, cols), -np.inf)])
    peak = window & (gmasked >= left) & (gmasked >= right) & (gmasked >= 0.5 * gmax[None, :])
    k = np.where(peak.any(axis=0), np.argmax(peak, axis=0), np.argmax(gmasked, axis=0))
    g0 = grad[np.maximum(k - 1, 0), x]
    g1 = grad[k, x]
    g2 = grad[np.minimum(k + 1, nj - 2), x]
    curv = g0 - 2 * g1 + g2
    delta = np.where(curv < -1e-9, 0.5 * (g0 - g2) / np.where(curv < -1e-9, curv, -1.0), 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    return last + offsets[0] + k + 0.5 + delta, found


#: Rows at the end of a level extension left out of the row-offset measurement (the foot of the
#: surface edge, blurred by the instrument and by the 1 px smoothing).
_EDGE_FOOT_ROWS = 4
#: Offsets measured on it are kept up to this many robust sigmas of the flood's row offsets.
_MAX_SCAN_LINE_SIGMAS = 4.0


def _level_extension(smooth_img: np.ndarray, last: np.ndarray, reach: int,
                     band_level: float | None) -> np.ndarray:
    """Pixels below the flood's end (``last``, per column; the last row for a column without
    flood) and at most ``reach`` rows down that are still at the background's level: in each
    column the run of rows nearer the level of the background just above (median of its last 4
    flooded rows) than ``band_level``.

    Returns a boolean map (rows, cols); empty when ``band_level`` is None.
    """
    rows, cols = smooth_img.shape
    out = np.zeros((rows, cols), bool)
    if band_level is None:
        return out
    x = np.arange(cols)
    near = np.clip(last[None, :] - np.arange(4)[:, None], 0, rows - 1)
    ref = np.median(smooth_img[near, x[None, :]], axis=0)
    pos = last[None, :] + 1 + np.arange(reach)[:, None]
    rr = np.clip(pos, 0, rows - 1)
    like = (np.abs(smooth_img[rr, x[None, :]] - ref[None, :])
            < 0.5 * np.abs(band_level - ref[None, :])) & (pos < rows)
    run = np.logical_and.accumulate(like, axis=0)
    # the last rows of a run are the foot of the surface's blurred edge: rising towards the
    # band, they read as a bright row offset there and moved the edge ~1 px into the membrane
    length = run.sum(axis=0)
    run &= np.arange(reach)[:, None] < (length - _EDGE_FOOT_ROWS)[None, :]
    out[rr[run], np.broadcast_to(x, run.shape)[run]] = True
    return out


#: The surface is where the image leaves the background's level by more than this many times the
#: largest departure from it in the 16 background rows above (besides 4 noise sigmas).
LARGEST_DEPARTURE_FACTOR = 1.5


#: Apply :func:`_background_level_only` to the surface flood (False: smoothness alone).
FLOOD_BY_LEVEL = True
#: A vacuum gap under a bright charging band is darker than this fraction of the band's level.
VACUUM_GAP_MAX_FRACTION = 0.25
#: ... and at most this many edge searches (:func:`_refine_top`'s ``reach``, >= 13 px) tall;
#: taller than one search only when at least :data:`VACUUM_GAP_MIN_EVEN` of its columns around
#: are within 2 px (or 15 %) of their local median thickness (measured: vacuum gaps of 16-36 rows
#: over porous membranes 0.63-1.0, dark pores open at a surface, random phantom 625, 0.34-0.41).
VACUUM_GAP_MAX_REACHES = 4
VACUUM_GAP_MIN_EVEN = 0.5


def _background_level_only(reached: np.ndarray, smooth_img: np.ndarray, seeds: np.ndarray,
                           band_level: float, saturated: np.ndarray | None = None
                           ) -> np.ndarray:
    """``reached`` without the pixels cut off from the background above them in their column
    whose grey level is not the background's.

    The background's level is taken per column where the flood coming straight down from the
    frame's background ends (median of its last 6 rows, then a running median along the
    surface); a cut-off pixel stays when it lies within 6 noise sigmas of it, or, when the band
    and the background differ by at least ``_MIN_LEVEL_SEPARATION`` spreads of the seeds, when
    it is nearer the background's level than ``band_level``.

    ``saturated`` (:func:`saturated_background`): seeds there start runs of their own, down
    their columns, that count as joined to the background above. A saturated charging band
    below the vacuum is parted from it by the step of its upper edge; where the strip searched
    for the surface held that vacuum, the whole band was cut off, not at the vacuum's level,
    and dropped: the surface was found at the band's top (a held-out rendering tilted 5
    degrees: 78 px high; tests/test_geometry.py's bands 100-110 px).
    """
    rows, cols = reached.shape
    from_above = np.logical_and.accumulate(reached, axis=0)
    cut_off = reached & ~from_above
    if not cut_off.any():
        return reached
    bg_values = smooth_img[seeds]
    bg_level = float(np.median(bg_values))
    spread = 1.4826 * float(np.median(np.abs(bg_values - bg_level))) + 1e-3
    gap = float(band_level) - bg_level
    # noise of the smoothed background: differences of vertical neighbours in the flood
    both = from_above[1:] & from_above[:-1]
    if np.count_nonzero(both) < 50:
        return reached
    noise = 1.4826 * float(np.median(np.abs(np.diff(smooth_img, axis=0)[both]))) / np.sqrt(2)
    tol = 6.0 * noise
    if abs(gap) >= _MIN_LEVEL_SEPARATION * spread:
        tol = max(tol, 0.5 * abs(gap))
    has = from_above.any(axis=0)
    end = np.where(has, rows - 1 - np.argmax(from_above[::-1], axis=0), 0)
    near = np.clip(end[None, :] - np.arange(6)[:, None], 0, rows - 1)
    ref = np.where(has, np.median(smooth_img[near, np.arange(cols)[None, :]], axis=0), bg_level)
    ref = ndi.median_filter(ref, size=min(cols, 31), mode="nearest")
    if saturated is not None:
        # a saturated charging band under the vacuum (parted from it by the step of its edge)
        # is a background of its own: runs of flooded pixels down from its seeds count as
        # joined (a smooth dense skin taken into the texture background is never saturated)
        anchors = seeds & saturated
        run = np.zeros(cols, bool)
        for r in range(rows):
            run = reached[r] & (run | anchors[r])
            from_above[r] |= run
        cut_off = reached & ~from_above
    bg_like = np.abs(smooth_img - ref[None, :]) < tol
    return from_above | (cut_off & bg_like)


def _refine_top(
    smooth_img: np.ndarray,
    edge_img: np.ndarray,
    threshold: float,
    smooth_enough: np.ndarray,
    coarse: np.ndarray,
    measured: np.ndarray,
    background: np.ndarray,
    search_in_px: int,
    structure_px: float = 1.5,
    band_level: float | None = None,
    saturated: np.ndarray | None = None,
) -> np.ndarray:
    """Per-column sub-pixel top surface: where the image leaves the background.

    The background is flooded from the (texture-based) background region through pixels that
    are smooth at the finest scale (``smooth_enough``), 4-connected, down to ``search_in_px``
    below the coarse surface: the flood runs around debris, through the gap between debris and
    membrane and through gradual halos. Scan-line offsets are measured on the flooded pixels
    and on the rows between the flood's end and the surface that are still at the background's
    grey level (:func:`_level_extension`; an offset there is kept only as large as the flood's
    own scan lines), and removed. In each column the surface is then located by
    :func:`_locate_edge` below the flood's end; a vacuum-dark layer under a bright charging band
    is skipped.

    Parameters
    ----------
    smooth_img : ndarray, shape (rows, cols)
        Lightly denoised image (for the flood).
    edge_img : ndarray, shape (rows, cols)
        The image smoothed along x only (for locating the edge across it).
    threshold : float
        Smallest departure from the background level just above the surface that counts as
        material (grey units).
    smooth_enough : ndarray of bool, shape (rows, cols)
        Pixels whose fine-scale structure energy is that of the background (pore walls as grey
        as the background are not).
    coarse : ndarray, shape (cols,)
        Coarse surface row per column (may lie outside the frame).
    measured : ndarray of bool, shape (cols,)
        Columns where the coarse surface was seen (background above it).
    background : ndarray of bool, shape (rows, cols)
        Reliable background pixels (seeds of the flood).
    search_in_px : int
        How far below the coarse surface the true one may lie.
    structure_px : float
        Scale of ``smooth_enough`` (the flood may stop up to ~10x this short of a strong
        surface edge; the edge is searched that far below the flood).
    band_level : float, optional
        Typical grey level of the membrane band. Flooded pixels not joined to the background
        above them in their own column (reached sideways, under debris or through a gap in a
        surface edge) count only while they are nearer the background's level than this one:
        a smooth dense skin is polymer, however smooth (measured on 2 µm skins: the flood
        leaked into their flat middles and the surface was found at the skin's lower edge,
        18-20 px deep).

    Returns
    -------
    ndarray of float, shape (cols,): surface row (NaN where not found).
    """
    rows, cols = smooth_img.shape
    x = np.arange(cols)
    limit = np.where(measured & np.isfinite(coarse), coarse + search_in_px, -1.0)
    row_idx = np.arange(rows, dtype=np.float32)[:, None]
    allowed = row_idx <= limit[None, :].astype(np.float32)
    # the flood runs through smooth pixels only: a gradual halo (charging, edge brightening)
    # passes, a step (the surface, the edge of a dense skin, pore walls) stops it
    bglike = smooth_enough & allowed
    n, labels = cv2.connectedComponents(bglike.astype(np.uint8), connectivity=4)
    seeds = background & bglike
    if n <= 1 or not seeds.any():
        return np.full(cols, np.nan)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[seeds])] = True
    keep[0] = False
    reached = keep[labels]
    if band_level is not None and FLOOD_BY_LEVEL:
        reached = _background_level_only(reached, smooth_img, seeds, band_level, saturated)
    has = reached.any(axis=0)
    last = rows - 1 - np.argmax(reached[::-1], axis=0)  # last flooded row per column
    reach = int(max(13, 10 * structure_px + 8))
    # scan-line noise: per-row offsets, measured on the background against its own smooth
    # vertical trend (normalised convolution: the membrane does not leak into it). The flood
    # stops up to ``reach`` rows short of the surface; the rows between are measured too, on
    # the pixels still at the background's level (measured: without them, bright scan lines in
    # that gap passed for the surface, 12 px above it on a sponge of 48 px pores)
    offsets_row = _row_offsets(edge_img, reached)
    extension = _level_extension(smooth_img, last, reach, band_level)
    if offsets_row is not None and extension.any():
        wider = _row_offsets(edge_img, reached | extension)
        # an offset is kept only as large as the scan lines of the flood: the foot of the edge
        # read as one (measured: offsets of 10-23 grey levels on rows held by a few columns at
        # a saturated background's edge, whose rows vary by 0.3; it moved the surface 1.7 px)
        counted = reached.sum(axis=1) >= 20
        spread = (1.4826 * float(np.median(np.abs(offsets_row[counted]))) if counted.any()
                  else 0.0)
        plausible = np.abs(wider) <= max(_MAX_SCAN_LINE_SIGMAS * spread, 0.5 / 255.0)
        offsets_row = np.where(plausible, wider, offsets_row)
    if offsets_row is not None:
        edge_img = edge_img - offsets_row[:, None]
        smooth_img = smooth_img - cv2.GaussianBlur(
            offsets_row.reshape(-1, 1), (1, 0), sigmaX=1e-3, sigmaY=1.0).ravel()[:, None]
    # the background level just above the surface, per column (follows halos)
    near = np.clip(last[None, :] - np.arange(4)[:, None], 0, rows - 1)
    ref = np.median(smooth_img[near, x[None, :]], axis=0)
    # local background noise: spread of the flooded rows just above the surface (shot noise
    # depends on brightness, saturated parts have none), smoothed along the surface
    above_rows = np.clip(last[None, :] - np.arange(16)[:, None], 0, rows - 1)
    patch = smooth_img[above_rows, x[None, :]]
    hf_local = patch - np.median(patch, axis=0)[None, :]
    local = 1.4826 * np.median(np.abs(np.diff(hf_local, axis=0)), axis=0) / np.sqrt(2)
    local = ndi.median_filter(local, size=min(cols, 31), mode="nearest")
    t_col = np.maximum(threshold, 4.0 * local)
    # a saturated background has no measurable noise spread (its MAD is 0) but dips below the
    # clip level: a dip of a few grey levels passed for the surface, up to 19 px into a white
    # background. The largest departure of the flooded pixels in the 16 rows above counts as
    # noise too (debris and pores in those rows are not flooded).
    largest = np.max(np.where(reached[above_rows, x[None, :]], np.abs(patch - ref[None, :]), 0.0),
                     axis=0)
    largest = ndi.median_filter(largest, size=min(cols, 31), mode="nearest")
    t_col = np.maximum(t_col, LARGEST_DEPARTURE_FACTOR * largest)
    edge, found = _locate_edge(smooth_img, edge_img, last, ref, t_col, reach)
    # a dark vacuum gap between a bright (charging) background and the membrane: the first
    # edge is the band's lower end; when a layer (>= 3 rows) as dark as the vacuum follows it,
    # the membrane starts after that layer (a dense skin is brighter than the vacuum)
    vacuum = float(np.percentile(smooth_img[::4, ::4], 1))
    bright_bg = (ref - vacuum) > 0.3
    dark_limit = vacuum + 0.25 * (ref - vacuum)
    # ... and below a quarter of the charging band's level (the vacuum is near the detector's
    # black level): with no vacuum in view the 1st percentile is material, and a dense skin of
    # topographic polymer (a grey face, darker than the charging) passed for that gap
    dark_limit = np.minimum(dark_limit, VACUUM_GAP_MAX_FRACTION * ref)
    after = np.floor(np.nan_to_num(edge, nan=-10.0)).astype(np.intp) + 2
    # the gap may be wider than the edge search (a held-out charging band 20 rows above the
    # membrane: the surface was left at the gap's top, 8-24 px high)
    gap_reach = VACUUM_GAP_MAX_REACHES * reach
    span = np.arange(gap_reach)
    rr = np.clip(after[None, :] + span[:, None], 0, rows - 1)
    dark = ((smooth_img[rr, x[None, :]] <= dark_limit[None, :])
            & (after[None, :] + span[:, None] < rows))
    lead = np.argmax(dark, axis=0)  # the dark layer starts within a few rows of the edge
    tail = np.vstack([dark, np.zeros((1, cols), bool)])
    run = np.argmin(np.where(np.arange(gap_reach + 1)[:, None] >= lead[None, :], tail, True),
                    axis=0) - lead
    gap = found & bright_bg & dark.any(axis=0) & (lead <= 3) & (run >= 3)
    # a gap is a layer along the surface, not a pore open at it: it must hold in nearly all
    # columns around
    width = min(cols, max(41, 2 * reach + 1))
    gap &= ndi.uniform_filter1d(gap.astype(np.float32), width, mode="nearest") >= 0.8
    if gap.any():
        last2 = after + lead + run - 1
        near2 = np.clip(last2[None, :] - np.arange(3)[:, None], 0, rows - 1)
        ref2 = np.median(smooth_img[near2, x[None, :]], axis=0)
        edge2, found2 = _locate_edge(smooth_img, edge_img, last2, ref2, t_col, reach)
        # where the dark layer runs on past the search (a dark pore under the gap) the
        # surface is unknown in that column
        # a gap wider than the edge search must be a layer of even thickness (the band's
        # edge runs along the surface): dark pores open at the surface are as dark, but their
        # depth changes from column to column (random phantom 625: its bottom surface moved
        # 2 px into the pores without this test)
        padded = np.pad(np.where(gap, run, np.nan).astype(float), width // 2, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, width)[:cols]
        with warnings.catch_warnings():  # windows without gap columns: NaN, not compared
            warnings.simplefilter("ignore", RuntimeWarning)
            local = np.nanmedian(windows, axis=1)
        even = gap & (np.abs(run - local) <= np.maximum(2.0, 0.15 * local))
        even_layer = (ndi.uniform_filter1d(even.astype(np.float32), width, mode="nearest")
                      >= VACUUM_GAP_MIN_EVEN)
        ends = (lead + run < reach) | (even_layer & (lead + run < gap_reach))
        edge = np.where(gap, np.where(found2 & ends, edge2, np.nan), edge)
    good = has & found & measured & (last < limit)
    return np.where(good, edge, np.nan)


#: A background must be much smoother than the band: difference of the median mean-log band-pass
#: energy (a factor e**2 ~ 7 in energy at every scale on average). Membranes measured 3-6 on
#: phantoms and real cross-sections; fields of material with smooth patches 0.8-1.3.
_MIN_BACKGROUND_CONTRAST = 2.0
#: ... relaxed to this when the candidate holds nothing but white noise (its median log texture
#: at most :data:`_NOISE_FLOOR_EXCESS` above what white noise gives): it cannot be smoother, and
#: on noisy images the band's texture sinks toward the noise (topographic phantoms at shot noise
#: 0.2-0.25: contrast 1.9, so the whole frame was taken for membrane). Smooth patches in fields of
#: material measured 0.8-1.3.
_MIN_NOISE_BACKGROUND_CONTRAST = 1.5
_NOISE_FLOOR_EXCESS = 0.25
#: A background must touch the frame edge over at least this fraction of the width.
_MIN_BACKGROUND_CONTACT = 0.2
#: Smallest smooth fraction of the region beyond the coarse surface line (debris allowed) and
#: smallest textured fraction of the strip just inside it.
_MIN_SMOOTH_BEYOND = 0.6
_MIN_TEXTURED_INSIDE = 0.75
#: ... relaxed to this when at least :data:`_CLEAN_SMOOTH_BEYOND` of the region beyond the line is
#: smooth. Measured 2026-12-07 (200 random phantoms, the held-out kinds, the real files): accepted
#: surfaces 0.87-1.00 inside, 0.79-1.00 beyond; the real fields without a surface 0.41-0.65 inside
#: and 0.55-0.68 beyond; a closed-cell membrane on a white background whose layer of fine pores
#: lies just under its top surface (random phantom 156) 0.66 inside and 1.00 beyond: its top
#: surface was lost and depth measured from the bottom one.
_MIN_TEXTURED_INSIDE_CLEAN = 0.5
_CLEAN_SMOOTH_BEYOND = 0.95


@dataclass
class _HorizontalFind:
    """Internal result of the horizontal search (rows grow downwards)."""

    top: np.ndarray | None  # surface line (may leave the frame), None if not in view
    bottom: np.ndarray | None
    top_measured: np.ndarray | None  # bool per column
    bottom_measured: np.ndarray | None
    textured_fraction: float
    separation: float
    excess: float  # median log texture of the textured class above white noise
    notes: list[str]


def _candidate_surface(bg: np.ndarray, textured: np.ndarray, logt: np.ndarray,
                       band_level: float, from_top: bool, smoothing_cells: float,
                       noise_log: float) -> tuple[np.ndarray | None, str]:
    """Robust coarse surface line (grid rows) of a background candidate, or None and why not
    (``noise_log``: the log texture white noise alone gives, :func:`texture_log_map`)."""
    name = "top" if from_top else "bottom"
    bg_level = float(np.median(logt[bg]))
    contrast = band_level - bg_level
    needed = (_MIN_NOISE_BACKGROUND_CONTRAST if bg_level - noise_log <= _NOISE_FLOOR_EXCESS
              else _MIN_BACKGROUND_CONTRAST)
    if contrast < needed:
        return None, (f"the smoother region at the {name} edge was not taken for background: "
                      f"its texture differs too little from the rest (log-energy contrast "
                      f"{contrast:.2f} < {needed})")
    coarse = _coarse_edges(bg, from_top)
    if np.isfinite(coarse).mean() < _MIN_BACKGROUND_CONTACT:
        return None, f"background at the {name} edge too narrow"
    line, _ = robust_surface_line(coarse if from_top else -coarse, smoothing_cells)
    line = line if from_top else -line
    seen = np.isfinite(coarse)
    steep = float(np.median(np.abs(np.gradient(line)[seen]))) if seen.sum() > 2 else 0.0
    if steep > 1.0:
        return None, (f"the boundary of the smooth region at the {name} edge is steeper than "
                      "45 degrees: not the surface of a horizontal membrane")
    gr = bg.shape[0]
    rr = np.arange(gr)[:, None]
    depth = max(4, gr // 6)
    if from_top:
        beyond = rr < line[None, :] - 1
        inside = (rr >= line[None, :] + 2) & (rr < line[None, :] + 2 + depth)
    else:
        beyond = rr > line[None, :] + 1
        inside = (rr <= line[None, :] - 3) & (rr > line[None, :] - 3 - depth)
    smooth_beyond = float(np.mean(~textured[beyond])) if beyond.any() else 1.0
    textured_inside = float(np.mean(textured[inside])) if inside.any() else 0.0
    # beyond a clean background (nothing but smooth pixels) half a textured strip will do: a
    # layer of pores finer than the texture scale just under the surface reads smooth
    needed_inside = (_MIN_TEXTURED_INSIDE_CLEAN if smooth_beyond >= _CLEAN_SMOOTH_BEYOND
                     else _MIN_TEXTURED_INSIDE)
    if smooth_beyond < _MIN_SMOOTH_BEYOND or textured_inside < needed_inside:
        return None, (f"smooth region at the {name} edge is not a background (smooth fraction "
                      f"beyond the line {smooth_beyond:.2f}, textured fraction inside "
                      f"{textured_inside:.2f})")
    return line, ""


#: A pixel is saturated when at least this fraction of the 5 x 5 pixels around it hold the
#: image's largest value (a charging band clipped at the detector's white: 0.58-0.90 of a held-
#: out band's pixels; polymer, skins and halos are not clipped).
SATURATED_FRACTION = 0.5


def saturated_background(image: np.ndarray) -> np.ndarray | None:
    """Pixels in areas clipped at the image's largest value (:data:`SATURATED_FRACTION`), or
    None when the image has no such area."""
    at_max = (image >= image.max()).astype(np.float32)
    if at_max.mean() < 0.01:
        return None
    saturated = cv2.blur(at_max, (5, 5), borderType=cv2.BORDER_REFLECT) >= SATURATED_FRACTION
    return saturated if saturated.any() else None


def _surface_in_strip(strip: np.ndarray, background: np.ndarray, band: np.ndarray,
                      coarse: np.ndarray, measured: np.ndarray, search_in: int) -> np.ndarray:
    """Sub-pixel top surface per column in a strip of rows around it (background above).

    Parameters are the strip of the image, its background and band masks (coarse, at full
    resolution), the coarse surface row per column within the strip, the columns where it was
    seen, and how far below the coarse surface the true one may lie.
    """
    if not background.any() or not band.any():
        return np.full(strip.shape[1], np.nan)
    smooth_img = cv2.GaussianBlur(strip, (0, 0), sigmaX=1.5, sigmaY=1.0,
                                  borderType=cv2.BORDER_REFLECT)
    along_x = cv2.getGaussianKernel(9, 2.0).astype(np.float32)
    edge_img = cv2.sepFilter2D(strip, -1, along_x, _IDENTITY1, borderType=cv2.BORDER_REFLECT)
    # background noise at the scale of the smoothed image (slow halos excluded)
    hf = smooth_img - cv2.GaussianBlur(smooth_img, (0, 0), 4.0, borderType=cv2.BORDER_REFLECT)
    spread = float(1.4826 * np.median(np.abs(hf[background][::7])))
    threshold = max(4.0 * spread, 2.0 / 255.0)
    smooth_enough, structure_px = _smooth_like_background(strip, background, band)
    return _refine_top(smooth_img, edge_img, threshold, smooth_enough, coarse, measured,
                       background, search_in, structure_px,
                       band_level=float(np.median(smooth_img[band])),
                       saturated=saturated_background(strip))


def _find_horizontal(
    img: np.ndarray,
    pixel_size_um: float | None,
    texture_scale_um: float | None,
    smoothing_fraction: float,
) -> _HorizontalFind:
    rows, cols = img.shape
    m = _grid_level(min(rows, cols))
    levels = _texture_levels(min(rows, cols), pixel_size_um, texture_scale_um)
    logt, sigma, noise_log = texture_log_map(img, grid_level=m, levels=levels)
    textured, _, sep = _split_texture(logt)
    excess = float(np.median(logt[textured])) - noise_log if textured.any() else 0.0
    gr, gc = logt.shape
    f_r, f_c = rows / gr, cols / gc
    solid = np.zeros(textured.shape, bool)
    if LEVEL_LIMITED_BACKGROUND:
        level = cv2.resize(img, (gc, gr), interpolation=cv2.INTER_AREA)
        solid = _spanning_material_by_level(textured, level)
    tb, bb = _edge_backgrounds(textured | solid, _MIN_BACKGROUND_CONTACT)
    material = {"top": textured | solid, "bottom": textured | solid}
    if LEVEL_LIMITED_BACKGROUND:
        clipped = saturated_background(img)
        sat_cells = (None if clipped is None else
                     cv2.resize(clipped.astype(np.float32), (gc, gr), interpolation=cv2.INTER_AREA))
        tb, unlike = _level_limited_background(tb, level, textured, True, logt, sat_cells)
        material["top"] |= unlike
        bb, unlike = _level_limited_background(bb, level, textured, False, logt, sat_cells)
        material["bottom"] |= unlike
    notes: list[str] = []
    band = ~(tb | bb)
    band_level = float(np.median(logt[band])) if band.any() else -np.inf
    sm_full = max(2.0, smoothing_fraction * cols / 2.0)
    sm_grid = max(1.0, sm_full / f_c)
    candidates = {}
    for name, bg in (("top", tb), ("bottom", bb)):
        if not bg.any():
            continue
        line_g, why = _candidate_surface(bg, material[name], logt, band_level, name == "top",
                                         sm_grid, noise_log)
        if line_g is None:
            notes.append(why)
            continue
        candidates[name] = (bg, line_g)
    empty = _HorizontalFind(None, None, None, None, float(textured.mean()), sep, excess, notes)
    if not candidates:
        return empty

    def full(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(mask.astype(np.uint8), (cols, rows),
                          interpolation=cv2.INTER_NEAREST).astype(bool)

    band_full = full(band)
    x_full = np.arange(cols, dtype=float)
    x_grid = (np.arange(gc) + 0.5) * f_c - 0.5
    on_grid = (x_full >= x_grid[0]) & (x_full <= x_grid[-1])
    # how far inside the coarse (texture) surface the true one may lie: half the largest
    # texture box, plus the grid cell
    search_in = int(np.ceil(max(6.0, 2.5 * f_r) + 0.5 * 5 * 2 ** max(levels)))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (bg, line_g) in candidates.items():
        from_top = name == "top"
        measured_g = np.isfinite(_coarse_edges(bg, from_top))
        # grid boundary -> full-res row (boundary between grid rows e-1 and e), extrapolated
        # linearly beyond the outer grid columns
        coarse = np.where(on_grid, np.interp(x_full, x_grid, line_g * f_r - 0.5), np.nan)
        coarse = _extend_linear(coarse, on_grid, max(3, int(2 * sm_full)))
        measured = np.interp(x_full, x_grid, measured_g.astype(float)) > 0.5
        if not measured.any():
            continue
        # work on the rows around the surface only, oriented so that the background is above
        if from_top:
            work, c, bg_w, band_w = img, coarse, full(bg), band_full
        else:
            work, c = img[::-1], rows - 1 - coarse
            bg_w, band_w = full(bg)[::-1], band_full[::-1]
        margin = 2 * search_in + 32
        r0 = int(max(0, np.floor(np.min(c[measured]) - margin)))
        r1 = int(min(rows, np.ceil(np.max(c[measured]) + search_in + 32)))
        edge = _surface_in_strip(work[r0:r1], bg_w[r0:r1], band_w[r0:r1], c - r0, measured,
                                 search_in)
        edge = edge + r0
        if not from_top:
            edge = rows - 1 - edge
        found = np.isfinite(edge)
        if found.mean() < 0.5 * measured.mean():
            notes.append(f"{name} surface: the fine edge was found in only "
                         f"{100 * found.mean():.0f} % of the columns; coarse line used elsewhere")
            edge = np.where(found, edge, np.where(measured, coarse, np.nan))
        sign = 1.0 if from_top else -1.0
        line, _ = robust_surface_line(sign * edge, sm_full)
        line = sign * line
        out[name] = (line, measured & (line >= 0) & (line <= rows - 1))
    top = out.get("top")
    bottom = out.get("bottom")
    return _HorizontalFind(
        top=None if top is None else top[0],
        bottom=None if bottom is None else bottom[0],
        top_measured=None if top is None else top[1],
        bottom_measured=None if bottom is None else bottom[1],
        textured_fraction=float(textured.mean()),
        separation=sep,
        excess=excess,
        notes=notes,
    )


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be a 2-D grey array, got shape {img.shape}")
    if img.dtype == bool or not np.issubdtype(img.dtype, np.number):
        raise ValueError(f"image must hold numbers, got dtype {img.dtype}")
    img = img.astype(np.float32)
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or infinite values")
    return img


def find_membrane(
    image: np.ndarray,
    pixel_size_um: float | None = None,
    *,
    surface: str = "auto",
    texture_scale_um: float | None = None,
    surface_smoothing_fraction: float = 0.05,
) -> Membrane:
    """Find the membrane band and its reference surface in a cross-section.

    See the module docstring for the method. The surface is the outer envelope of the material
    (pores open at the surface do not pull it in); its position is sub-pixel; tilt up to a few
    tens of degrees and gentle bends are followed.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Grey micrograph in [0, 1], data bar removed.
    pixel_size_um : float, optional
        Pixel size (µm); only used to turn ``texture_scale_um`` into pixels.
    surface : str
        ``auto`` (the surface in view; the upper one if both; a vertical membrane's left one
        if no horizontal surface is in view), ``top``, ``bottom``, ``left``, ``right`` or
        ``none`` (no surface in view: the whole frame is material).
    texture_scale_um : float, optional
        Scale of the texture measure in µm (about the pore size). Default: all scales from 2 px
        to 1/40 of the image's short side.
    surface_smoothing_fraction : float
        Surface lines are smoothed (Gaussian-weighted local-linear fit) with a sigma of half this
        fraction of the image width; bends longer than about this fraction are followed.

    Returns
    -------
    Membrane
        ``notes`` say what was decided and why (surfaces not in view, reference chosen).

    Raises
    ------
    MembraneNotFound
        Blank image, image too small, or no textured band found.
    ValueError
        Not a 2-D numeric image, NaN values, bad ``surface``.
    """
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SURFACES)}, not {surface!r}")
    if not 0 < surface_smoothing_fraction <= 1:
        raise ValueError("surface_smoothing_fraction must be in (0, 1], "
                         f"got {surface_smoothing_fraction}")
    img = _check_image(image)
    rows, cols = img.shape
    if surface == "none":
        return whole_frame(img.shape, "surface 'none' requested: the whole frame is material")
    if min(rows, cols) < MIN_SIDE_PX:
        raise MembraneNotFound(
            f"image of {cols}x{rows} px is too small to find a membrane in (at least "
            f"{MIN_SIDE_PX} px a side needed); use surface 'none' for a field of material")
    if float(np.ptp(img)) < 1e-6:
        raise MembraneNotFound("the image is blank (one grey value everywhere): no textured "
                               "membrane band")

    if surface in ("left", "right"):
        return _vertical(img, pixel_size_um, surface, texture_scale_um,
                         surface_smoothing_fraction)
    found = _find_horizontal(img, pixel_size_um, texture_scale_um, surface_smoothing_fraction)
    if surface == "auto" and found.top is None and found.bottom is None:
        vertical = _find_horizontal(img.T, pixel_size_um, texture_scale_um,
                                    surface_smoothing_fraction)
        if vertical.top is not None or vertical.bottom is not None:
            side = "left" if vertical.top is not None else "right"
            return _assemble(img.shape, vertical, side, "vertical",
                             ["no horizontal surface in view; the membrane runs vertically"])
        _check_textured(found)
        if found.textured_fraction < 0.2:
            raise MembraneNotFound(
                f"no membrane found: only {100 * found.textured_fraction:.0f} % of the frame is "
                "textured and no smooth background borders it")
        whole = whole_frame(img.shape, "no membrane surface in view (textured everywhere): the "
                            "whole frame is material; depth profile not measured")
        whole.notes.extend(found.notes)
        return whole
    seen = _coverage(found)
    if surface == "auto" and seen < PARTIAL_SURFACE_FRACTION:
        # a surface seen over a small part of the width may be a vertical membrane's edge
        # read sideways (pores elongated along a vertical membrane are rich in structure
        # along x): the vertical reading wins when it sees its surface over more of the frame
        vertical = _find_horizontal(img.T, pixel_size_um, texture_scale_um,
                                    surface_smoothing_fraction)
        seen_vertical = _coverage(vertical)
        if seen_vertical >= max(PARTIAL_SURFACE_FRACTION, 2 * seen):
            side = "left" if vertical.top is not None else "right"
            return _assemble(img.shape, vertical, side, "vertical",
                             [f"the membrane runs vertically: its surface is in view over "
                              f"{100 * seen_vertical:.0f} % of the height, a horizontal "
                              f"one would be over {100 * seen:.0f} % of the width"])
    _check_textured(found)
    return _assemble(img.shape, found, surface, "horizontal", [])


#: A horizontal surface seen over less than this fraction of the width makes ``auto`` look at
#: the vertical reading too (:func:`find_membrane`).
PARTIAL_SURFACE_FRACTION = 0.5


def _coverage(found: _HorizontalFind) -> float:
    """Largest fraction of the frame over which a surface of ``found`` was seen (0: none)."""
    seen = [float(np.mean(m)) for line, m in ((found.top, found.top_measured),
                                               (found.bottom, found.bottom_measured))
            if line is not None and m is not None]
    return max(seen, default=0.0)


#: Smallest texture of the textured class above white noise (energy ratio) for an image to hold
#: a membrane: with no surface in view, and with one (a continuous line along which a smooth
#: background borders the textured band). Measured 2026-12-08: pure noise (white, shot noise
#: with a drift or vignetting, scan lines) 1.0-1.3, and no surface; noise blurred over 0.7 px
#: 3.6-3.9, no surface; a film of 4 px pores at a fifth of the held-out renderer's dose
#: (benchmarks/bench_heldout_combinations.py --dose 0.2), its surface plain to the eye against a
#: vacuum and found, 3.97: "no membrane found" with 4 everywhere. (Pure shot noise in a bright
#: band over a dark one passes either: 8.5, with a "surface" at the bands' boundary; the bright
#: band's noise is read as texture.)
MIN_EXCESS_NO_SURFACE = 4.0
MIN_EXCESS_WITH_SURFACE = 2.0


def _check_textured(found: _HorizontalFind) -> None:
    """Raise MembraneNotFound when the image has no structure worth the name."""
    surface = found.top is not None or found.bottom is not None
    needed = MIN_EXCESS_WITH_SURFACE if surface else MIN_EXCESS_NO_SURFACE
    if found.separation < 0.35 or found.excess < np.log(needed):
        raise MembraneNotFound(
            "no textured membrane band found: the image has no structure above its noise "
            f"(texture contrast {found.separation:.2f}, excess over noise "
            f"{found.excess:.2f})")


def _vertical(img: np.ndarray, pixel_size_um: float | None, surface: str,
              texture_scale_um: float | None, smoothing_fraction: float) -> Membrane:
    found = _find_horizontal(img.T, pixel_size_um, texture_scale_um, smoothing_fraction)
    _check_textured(found)
    return _assemble(img.shape, found, surface, "vertical", [])


def _assemble(shape: tuple[int, int], found: _HorizontalFind, surface: str, orientation: str,
              notes: list[str]) -> Membrane:
    """Membrane from a horizontal search result (done on the transposed image if vertical)."""
    horizontal = orientation == "horizontal"
    names = ("top", "bottom") if horizontal else ("left", "right")
    n_across = shape[0] if horizontal else shape[1]
    n_along = shape[1] if horizontal else shape[0]
    notes = list(notes) + list(found.notes)
    in_view = []
    fractions = {}
    lines = {}
    for name, line, measured, edge in ((names[0], found.top, found.top_measured, 0.0),
                                       (names[1], found.bottom, found.bottom_measured,
                                        n_across - 1.0)):
        if line is None:
            lines[name] = (np.full(n_along, edge), None)
            continue
        in_view.append(name)
        fractions[name] = float(np.mean(measured))
        lines[name] = (np.clip(line, 0, n_across - 1), line)
        if fractions[name] < 0.95:
            notes.append(f"{name} surface in view over {100 * fractions[name]:.0f} % of the "
                         "width; extrapolated (and clipped to the frame) elsewhere")
    first, second = lines[names[0]][0], lines[names[1]][0]
    if surface == "auto":
        if not in_view:
            reference = "none"
            notes.append("no membrane surface in view: depth profile not measured")
        else:
            reference = in_view[0]
            if len(in_view) == 2:
                notes.append(f"both surfaces in view: depth measured from the {reference} one")
    else:
        reference = surface
        if reference not in names:
            raise ValueError(f"surface {surface!r} does not fit a {orientation} membrane")
        if reference not in in_view:
            notes.append(f"{reference} surface requested but not detected: the image edge is "
                         "used as the reference")
    ref_line = None
    if reference in lines and lines[reference][1] is not None:
        ref_line = lines[reference][1]
    return membrane_from_surfaces(
        shape, first, second, reference_surface=reference, surfaces_in_view=tuple(in_view),
        orientation=orientation, notes=notes, reference_line_px=ref_line,
        surface_fraction_in_view=fractions)
