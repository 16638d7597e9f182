"""SEM-like phantoms of porous membrane cross-sections with known truth.

Three layers, each usable on its own:

* **Masks** — :func:`pore_field` draws a boolean pore mask whose *local pore size* (local thickness,
  a diameter in px, see :mod:`pipeline.size`) follows a designed value per pixel, with a requested
  porosity, in one of several morphologies (``sponge``, ``cells``, ``spheres``); optionally
  elongated along an angle. :func:`network_phantom` is the same without a membrane (isotropy tests).
* **Rendering** — :func:`render` turns a pore mask into a grey SEM-like image: material contrast
  (``dark``: BSE / resin-filled sections) or secondary-electron topography (``topographic``: bright
  rims at every pore edge, shaded pore floors), blur, shot noise, scan-line noise, slow
  illumination drift and a smooth background outside the material.
* **Membranes** — :func:`make_membrane_phantom` builds a whole micrograph: a tilted, gently bent
  membrane band whose pore size follows a designed depth profile (uniform, gradient, internal
  minimum), backgrounds, debris, an FEI-style data bar, and returns a :class:`Phantom` holding the
  image and the truth (pore mask, membrane, exact local thickness, designed profile, thickness).
  :func:`write_fei_tiff` writes 8-bit TIFFs with FEI/Thermo metadata that
  :func:`pipeline.io.load_micrograph` reads back.

Everything is deterministic given ``seed`` (a :class:`numpy.random.Generator` is seeded from it).
The truth pore size is always measured on the generated mask with
:func:`pipeline.size.local_thickness`; the designed sizes are only the generator's targets, and
the calibration constants below make the realised mean local thickness track them (the tests in
``tests/test_synthetic.py`` state the tolerance).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi
from scipy.special import ndtri

MORPHOLOGIES = ("sponge", "cells", "spheres", "fingers")
STYLES = ("dark", "topographic")
BACKGROUNDS = ("dark", "bright", "grey")
PROFILES = ("uniform", "gradient_increasing", "gradient_decreasing", "internal_minimum")
SURFACE_CHOICES = ("top", "bottom", "both", "none")

# ------------------------------------------------------------------------------------------------
# calibration: realised mean local thickness (diameter, px) per unit of the generator's length scale
#
# Measured with :func:`calibrate` (mean over seeds of mean local thickness of the pore pixels of
# uniform 768x768 fields); linear interpolation in porosity, clamped at the ends.

_CAL_POROSITY = np.array([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
#: sponge: mean local thickness / Gaussian filter sigma (isotropic field)
_CAL_SPONGE = np.array([2.668, 3.059, 3.505, 4.025, 4.673, 5.564, 7.029, 10.252])
#: sponge: exponent k of the anisotropy factor anisotropy**k on the ratio above
_CAL_SPONGE_ANISO_EXP = 0.33
#: cells: mean local thickness / Poisson-disk seed spacing radius (mean of 12 and 24 px cells,
#: 4 seeds each; 0.9 from 24 px only: 12 px cells cannot reach that porosity)
_CAL_CELLS = np.array([0.543, 0.683, 0.803, 0.905, 1.012, 1.102, 1.141, 1.170])
#: spheres: mean local thickness / area-weighted mean disk diameter
_CAL_SPHERES = np.array([0.981, 1.004, 1.034, 1.074, 1.143, 1.260, 1.451, 1.928])


#: cells: log-normal spread of the seed spacing (polydisperse cells) and the radius, relative to
#: the seed spacing, of the disk that rounds the cell corners
_CELL_SPREAD = 0.25
_CELL_ROUNDING = 0.7


def _cal(table: np.ndarray, porosity: np.ndarray | float) -> np.ndarray:
    return np.interp(porosity, _CAL_POROSITY, table)


# ------------------------------------------------------------------------------------------------
# helpers


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _as_field(value: float | np.ndarray, shape: tuple[int, int], name: str,
              lo: float, hi: float) -> np.ndarray | float:
    """Validate a scalar-or-per-pixel parameter; returns float or float64 array of ``shape``."""
    if np.isscalar(value):
        v = float(value)  # type: ignore[arg-type]
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"{name} must be in [{lo}, {hi}], got {v}")
        return v
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must be a float or an array of shape {tuple(shape)}, "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < lo or arr.max() > hi:
        raise ValueError(f"{name} values must be finite and in [{lo}, {hi}]")
    return arr


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        rows, cols = (int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"shape must be (rows, cols), got {shape!r}") from exc
    if rows < 8 or cols < 8:
        raise ValueError(f"shape must be at least 8x8 px, got {(rows, cols)}")
    return rows, cols


def _along_across(shape: tuple[int, int], angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (drow, dcol) along ``angle_deg`` (CCW from +x as displayed) and across it."""
    th = math.radians(angle_deg)
    along = np.array([-math.sin(th), math.cos(th)])  # rows grow downward
    across = np.array([math.cos(th), math.sin(th)])
    del shape
    return along, across


def smooth_noise(shape: tuple[int, int], scale_px: float, rng: np.random.Generator
                 ) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field (float64), correlation scale ``scale_px``.

    White noise through a Gaussian filter of sigma ``scale_px`` (FFT); fields of large scale are
    drawn on a coarser grid and interpolated (cubic), which changes nothing visible.
    """
    rows, cols = shape
    factor = max(1, int(scale_px // 4))
    if factor > 1:
        import cv2

        small = smooth_noise((rows // factor + 4, cols // factor + 4), scale_px / factor, rng)
        big = cv2.resize(small.astype(np.float32), (small.shape[1] * factor,
                                                    small.shape[0] * factor),
                         interpolation=cv2.INTER_CUBIC)
        out = big[:rows, :cols].astype(np.float64)
        out = out - out.mean()
        sd = out.std()
        return out / sd if sd > 0 else out
    pad = int(min(3 * scale_px, max(rows, cols)))
    prow = sfft.next_fast_len(rows + pad, real=True)
    pcol = sfft.next_fast_len(cols + pad, real=True)
    noise = rng.standard_normal((prow, pcol))
    ky = sfft.fftfreq(prow)[:, None]
    kx = sfft.rfftfreq(pcol)[None, :]
    spec = sfft.rfft2(noise) * np.exp(-2 * np.pi**2 * (kx**2 + ky**2) * scale_px**2)
    out = sfft.irfft2(spec, s=(prow, pcol))[:rows, :cols]
    out -= out.mean()
    sd = out.std()
    return out / sd if sd > 0 else out


# ------------------------------------------------------------------------------------------------
# sponge: thresholded Gaussian random fields, scale blended per pixel


def _sponge(shape: tuple[int, int], size_px: np.ndarray | float, porosity: np.ndarray | float,
            anisotropy: float, angle_deg: float, rng: np.random.Generator) -> np.ndarray:
    rows, cols = shape
    ratio = _cal(_CAL_SPONGE, porosity) * anisotropy ** _CAL_SPONGE_ANISO_EXP
    sigma = np.asarray(size_px, np.float64) / ratio  # across-direction filter sigma, px
    s_min, s_max = float(np.min(sigma)), float(np.max(sigma))
    step = 1.2
    n_scales = 1 if s_max / s_min < 1.0001 else int(math.ceil(math.log(s_max / s_min)
                                                              / math.log(step))) + 1
    scales = s_min * step ** np.arange(n_scales)
    pad = int(min(3 * s_max * anisotropy, 2 * max(rows, cols)))
    prow = sfft.next_fast_len(rows + pad, real=True)
    pcol = sfft.next_fast_len(cols + pad, real=True)
    spec = sfft.rfft2(rng.standard_normal((prow, pcol)))
    ky = sfft.fftfreq(prow)[:, None]
    kx = sfft.rfftfreq(pcol)[None, :]
    along, across = _along_across(shape, angle_deg)
    k_along = ky * along[0] + kx * along[1]
    k_across = ky * across[0] + kx * across[1]
    q2 = (k_along * anisotropy) ** 2 + k_across**2

    def band(s: float) -> np.ndarray:
        f = sfft.irfft2(spec * np.exp(-2 * np.pi**2 * q2 * s * s), s=(prow, pcol))[:rows, :cols]
        f -= f.mean()
        return f / f.std()

    if n_scales == 1:
        field_ = band(scales[0])
    else:
        t = np.log(sigma / s_min) / math.log(step)
        t = np.clip(t, 0, n_scales - 1 - 1e-9)
        i0 = np.floor(t).astype(np.int64)
        w = t - i0
        field_ = np.zeros(shape)
        rho = 2 * step / (1 + step**2)  # correlation of neighbouring scales (2-D Gaussian filters)
        for k in range(n_scales):
            sel_lo = i0 == k  # weight 1 - w on scale k
            sel_hi = i0 == k - 1  # weight w on scale k
            if not (sel_lo.any() or sel_hi.any()):
                continue
            f = band(scales[k])
            field_[sel_lo] += (1 - w[sel_lo]) * f[sel_lo]
            field_[sel_hi] += w[sel_hi] * f[sel_hi]
        field_ /= np.sqrt((1 - w) ** 2 + w**2 + 2 * w * (1 - w) * rho)
    if np.isscalar(porosity):
        level = np.partition(field_.ravel(), int((1 - porosity) * (field_.size - 1)))[
            int((1 - porosity) * (field_.size - 1))]
        return field_ > level
    return field_ > ndtri(1 - np.asarray(porosity))


# ------------------------------------------------------------------------------------------------
# cells: variable-density Poisson-disk seeds, Voronoi cells with walls, rounded corners


@numba.njit(cache=True)
def _dart_throw(cand_r, cand_c, cand_rad, cell, n_rows, n_cols):  # pragma: no cover - compiled
    """Greedy Poisson-disk selection: keep a candidate if no kept point is closer than the mean
    of the two points' radii. A grid of ``cell`` px buckets holds kept points."""
    max_rad = 0.0
    for k in range(cand_rad.size):
        if cand_rad[k] > max_rad:
            max_rad = cand_rad[k]
    reach = int(math.ceil(max_rad / cell))
    n = cand_r.size
    head = -np.ones((n_rows, n_cols), np.int64)
    nxt = -np.ones(n, np.int64)
    keep = np.zeros(n, np.bool_)
    for k in range(n):
        r, c, rad = cand_r[k], cand_c[k], cand_rad[k]
        gr, gc = int(r / cell), int(c / cell)
        ok = True
        for i in range(max(gr - reach, 0), min(gr + reach + 1, n_rows)):
            if not ok:
                break
            for j in range(max(gc - reach, 0), min(gc + reach + 1, n_cols)):
                q = head[i, j]
                while q >= 0:
                    lim = 0.5 * (rad + cand_rad[q])
                    if (cand_r[q] - r) ** 2 + (cand_c[q] - c) ** 2 < lim * lim:
                        ok = False
                        break
                    q = nxt[q]
                if not ok:
                    break
        if ok:
            keep[k] = True
            nxt[k] = head[gr, gc]
            head[gr, gc] = k
    return keep


def poisson_disk_points(shape: tuple[int, int], radius_px: np.ndarray | float,
                        rng: np.random.Generator, *, oversample: float = 4.0,
                        spread: float = 0.0) -> np.ndarray:
    """Well-spaced random points whose spacing follows ``radius_px`` (scalar or per-pixel).

    Candidates are drawn with density proportional to ``radius_px**-2`` and kept greedily when no
    kept point lies closer than the mean of the two radii (random sequential adsorption). With
    ``spread > 0`` each candidate's radius is multiplied by a log-normal factor
    ``exp(spread * Z)`` (polydisperse spacing).

    Returns
    -------
    ndarray of float64, shape (n, 2)
        (row, col) positions.
    """
    rows, cols = shape
    rad = np.broadcast_to(np.asarray(radius_px, np.float64), shape)
    r_min = float(rad.min())
    n_cand = int(oversample * rows * cols / (r_min * r_min)) + 16
    pr = rng.uniform(-0.5, rows - 0.5, n_cand)
    pc = rng.uniform(-0.5, cols - 0.5, n_cand)
    rr = np.clip(np.rint(pr), 0, rows - 1).astype(np.int64)
    cc = np.clip(np.rint(pc), 0, cols - 1).astype(np.int64)
    local = rad[rr, cc]
    thin = rng.uniform(size=n_cand) < (r_min / local) ** 2
    if spread > 0:
        local = local * np.exp(spread * rng.standard_normal(n_cand))
    pr, pc, local = pr[thin], pc[thin], local[thin]
    cell = max(r_min, 1.0)
    keep = _dart_throw(pr, pc, local, cell, int(rows / cell) + 2, int(cols / cell) + 2)
    return np.column_stack([pr[keep], pc[keep]])


@numba.njit(cache=True)
def _voronoi_edges(rows, cols, to_u, origin, seeds, indptr, indices, to_x):  # pragma: no cover
    """For every pixel centre: nearest seed, distance to it and distances to its Voronoi cell's
    boundary, in the cell frame (Euclidean) and in pixels (L1).

    The pixel (r, c) sits at ``to_u @ (r, c) - origin`` in the cell frame. The nearest seed is
    found by a greedy walk over the Delaunay neighbours (``indptr``/``indices``) starting from
    the previous pixel's seed; a walk that can no longer move has reached the nearest seed (a
    seed whose Delaunay neighbours are all farther owns the point). The cell boundary is made of
    the bisectors with the Delaunay neighbours, so the distance to it is the smallest distance
    to those bisector lines, ``(|x - s_j|^2 - |x - s|^2) / (2 |s_j - s|)``. The L1 distance in
    pixels uses the bisector normal mapped to the pixel frame, ``delta @ to_x``.
    """
    n_px = rows * cols
    nearest = np.empty(n_px, np.int64)
    d_near = np.empty(n_px)
    edge = np.empty(n_px)
    edge_l1 = np.empty(n_px)
    cur = 0
    for r in range(rows):
        if r > 0:
            cur = nearest[(r - 1) * cols]
        for c in range(cols):
            pr = to_u[0, 0] * r + to_u[0, 1] * c - origin[0]
            pc = to_u[1, 0] * r + to_u[1, 1] * c - origin[1]
            best = (seeds[cur, 0] - pr) ** 2 + (seeds[cur, 1] - pc) ** 2
            while True:
                nxt = cur
                for t in range(indptr[cur], indptr[cur + 1]):
                    q = indices[t]
                    d2 = (seeds[q, 0] - pr) ** 2 + (seeds[q, 1] - pc) ** 2
                    if d2 < best:
                        best = d2
                        nxt = q
                if nxt == cur:
                    break
                cur = nxt
            e = np.inf
            e1 = np.inf
            for t in range(indptr[cur], indptr[cur + 1]):
                q = indices[t]
                dr = seeds[q, 0] - seeds[cur, 0]
                dc = seeds[q, 1] - seeds[cur, 1]
                num = 0.5 * ((seeds[q, 0] - pr) ** 2 + (seeds[q, 1] - pc) ** 2 - best)
                e = min(e, num / math.sqrt(dr * dr + dc * dc))
                nr = dr * to_x[0, 0] + dc * to_x[1, 0]
                nc = dr * to_x[0, 1] + dc * to_x[1, 1]
                e1 = min(e1, num / max(abs(nr), abs(nc)))
            k = r * cols + c
            nearest[k] = cur
            d_near[k] = math.sqrt(best)
            edge[k] = e
            edge_l1[k] = e1
    return nearest, d_near, edge, edge_l1


def _delaunay_neighbours(seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists (indptr, indices) of each seed's Delaunay neighbours
    (:class:`scipy.spatial.Delaunay`); every other seed when the triangulation is degenerate
    (fewer than 3 or collinear seeds; the bisector minimum is still the exact edge distance)."""
    from scipy.spatial import Delaunay, QhullError

    n = len(seeds)
    if n >= 3:
        try:
            indptr, indices = Delaunay(seeds).vertex_neighbor_vertices
            return indptr.astype(np.int64), indices.astype(np.int64)
        except QhullError:
            pass
    indices = np.array([j for i in range(n) for j in range(n) if j != i], np.int64)
    return np.arange(0, n * (n - 1) + 1, n - 1, dtype=np.int64), indices


def _cell_wall_fraction(target: np.ndarray, f_crit: np.ndarray, n_min: int) -> np.ndarray:
    """Per-pixel wall fraction f (wall thickness / cell spacing) realising the ``target``
    porosity, given each pixel's critical fraction ``f_crit`` (the pixel is pore iff
    ``f < f_crit``); flat arrays.

    A pixel's test depends on its own f only, so f is solved per 0.01-wide class of target
    porosity on that class's own pixels: the (1 - porosity) quantile of their ``f_crit``
    (a uniform target is matched to the pixel). Classes of fewer than ``n_min`` pixels take f
    interpolated between the others. f < 0 (walls at their thinnest, corner-rounding disk
    larger than ``_CELL_ROUNDING``) reaches the porosities above what rounded cells allow; f is
    kept in [-2, 2 * _CELL_ROUNDING].
    """
    f_min, f_max = -2.0, 2 * _CELL_ROUNDING
    cls = np.rint(target * 100).astype(np.int64)
    if cls.min() == cls.max():
        goal = np.array([target.mean()])
        inverse = np.zeros(target.size, np.int64)
        counts = np.array([target.size])
        ordered = np.sort(f_crit)
        starts = np.array([0])
    else:
        _, inverse, counts = np.unique(cls, return_inverse=True, return_counts=True)
        goal = np.bincount(inverse, weights=target) / counts
        ordered = f_crit[np.lexsort((f_crit, inverse))]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # number of wall pixels per class, then f between the last wall and the first pore pixel
    n_wall = np.clip(np.rint((1 - goal) * counts).astype(np.int64), 1, counts - 1)
    below = ordered[starts + n_wall - 1]
    above = ordered[starts + n_wall]
    f_cls = np.clip(np.where(np.isfinite(below), 0.5 * (below + above), f_min), f_min, f_max)
    fitted = counts >= n_min
    if not fitted.any():
        fitted = counts == counts.max()
    if fitted.all():
        return f_cls[inverse]
    return np.interp(target, goal[fitted], f_cls[fitted])


def _cells(shape: tuple[int, int], size_px: np.ndarray | float, porosity: np.ndarray | float,
           rng: np.random.Generator, anisotropy: float = 1.0, angle_deg: float = 0.0
           ) -> np.ndarray:
    """Closed cells: Voronoi cells of Poisson-disk seeds, walls of a thickness set by the
    porosity, corners rounded.

    The cells are built in a frame where they are isotropic (the pixel frame shrunk by
    ``1 / anisotropy`` along ``angle_deg``) and evaluated at the pixel centres directly
    (:func:`_voronoi_edges`, exact Voronoi geometry of the real-valued seeds). A pixel is wall
    when its distance to the nearest cell edge is below half the wall thickness
    (``f / 2`` of the local seed spacing), or when the edge passes within an L1 distance of half
    a pixel (a "naive" digital line: the thinnest wall, 0.71-1 px depending on its direction,
    that still closes the cell against 4-connected pores). Both rules are symmetric about the
    edge and invariant under the symmetries of the pixel grid, so the walls carry no preferred
    direction (the earlier one-pixel label-change walls did: DA up to 0.36 along 135 degrees);
    walls are thinner than 2 px where the porosity asks for it. Pores are also kept inside a
    disk of ``_CELL_ROUNDING - f / 2`` spacings around the seed (rounded corners).
    """
    from scipy.spatial import cKDTree

    rows, cols = shape
    radius = np.asarray(size_px, np.float64) / _cal(_CAL_CELLS, porosity)  # pixel frame
    if anisotropy == 1.0:
        to_u = np.eye(2)
        origin = np.zeros(2)
        seeds = poisson_disk_points(shape, radius, rng, spread=_CELL_SPREAD)
    else:
        along, _ = _along_across(shape, angle_deg)
        to_u = np.eye(2) + (1 / anisotropy - 1) * np.outer(along, along)  # pixel -> cell frame
        corners = np.array([[0, 0], [0, cols - 1], [rows - 1, 0], [rows - 1, cols - 1]], float)
        u = corners @ to_u.T
        origin = np.floor(u.min(axis=0)) - 2
        ushape = (int(np.ceil(u.max(axis=0))[0] + 2 - origin[0]) + 1,
                  int(np.ceil(u.max(axis=0))[1] + 2 - origin[1]) + 1)
        if np.ndim(radius):
            to_pix = np.eye(2) + (anisotropy - 1) * np.outer(along, along)
            ur, uc = np.mgrid[0:ushape[0], 0:ushape[1]].astype(np.float64)
            xr = to_pix[0, 0] * (ur + origin[0]) + to_pix[0, 1] * (uc + origin[1])
            xc = to_pix[1, 0] * (ur + origin[0]) + to_pix[1, 1] * (uc + origin[1])
            radius = ndi.map_coordinates(radius, [xr, xc], order=1, mode="nearest")
        seeds = poisson_disk_points(ushape, radius, rng, spread=_CELL_SPREAD)
    if len(seeds) < 2:
        raise ValueError("cells: pore size too large for the frame (fewer than 2 cells)")
    seed_spacing = cKDTree(seeds).query(seeds, k=2)[0][:, 1]  # nearest-neighbour distance
    indptr, indices = _delaunay_neighbours(seeds)
    # to_u is symmetric: it is also the inverse-transpose of the cell -> pixel map, which
    # takes bisector normals to the pixel frame
    nearest, d_near, edge, edge_l1 = _voronoi_edges(rows, cols, to_u, origin, seeds, indptr,
                                                    indices, to_u)
    spacing = seed_spacing[nearest]
    # pore iff f < f_crit: edge / spacing > f / 2, d_near / spacing < _CELL_ROUNDING - f / 2,
    # and outside the thinnest wall
    f_crit = np.minimum(2 * edge, 2 * (_CELL_ROUNDING * spacing - d_near)) / spacing
    f_crit[edge_l1 <= 0.5] = -np.inf  # closed band: no 4-connected leak even on ties
    target = np.broadcast_to(np.asarray(porosity, np.float64), shape).ravel()
    n_min = int(min(target.size, 16 * float(np.median(seed_spacing)) ** 2))
    f = _cell_wall_fraction(target, f_crit, n_min)
    return (f_crit > f).reshape(shape)


# ------------------------------------------------------------------------------------------------
# spheres: Boolean model of (elliptic) disks


@numba.njit(cache=True)
def _paint_ellipses(out, cr, cc, semi_a, semi_b, ux, uy):  # pragma: no cover - compiled
    """Set pixels inside ellipses: centre (cr, cc), semi-axis a along (uy, ux) (drow, dcol),
    semi-axis b across."""
    rows, cols = out.shape
    for k in range(cr.size):
        a, b = semi_a[k], semi_b[k]
        reach = int(max(a, b)) + 1
        r0, c0 = cr[k], cc[k]
        for r in range(max(int(r0) - reach, 0), min(int(r0) + reach + 2, rows)):
            dr = r - r0
            for c in range(max(int(c0) - reach, 0), min(int(c0) + reach + 2, cols)):
                dc = c - c0
                s = dr * uy + dc * ux
                t = -dr * ux + dc * uy
                if (s / a) ** 2 + (t / b) ** 2 <= 1.0:
                    out[r, c] = True


def _spheres(shape: tuple[int, int], size_px: np.ndarray | float, porosity: np.ndarray | float,
             anisotropy: float, angle_deg: float, rng: np.random.Generator,
             spread: float = 0.15) -> np.ndarray:
    rows, cols = shape
    size = np.broadcast_to(np.asarray(size_px, np.float64), shape)
    por = np.broadcast_to(np.asarray(porosity, np.float64), shape)
    # area-weighted mean diameter of a log-normal d0*exp(spread*Z) is d0*exp(2.5*spread^2)
    d0 = size / _cal(_CAL_SPHERES, por) * math.exp(-2.5 * spread**2)
    mean_area = math.pi / 4 * d0**2 * math.exp(2 * spread**2) * anisotropy
    intensity = -np.log(1 - np.minimum(por, 0.97)) / mean_area  # centres per px^2
    lam_max = float(intensity.max())
    margin = float(d0.max()) * anisotropy
    area = (rows + 2 * margin) * (cols + 2 * margin)
    n = rng.poisson(lam_max * area)
    pr = rng.uniform(-margin, rows + margin, n)
    pc = rng.uniform(-margin, cols + margin, n)
    ir = np.clip(np.rint(pr), 0, rows - 1).astype(np.int64)
    ic = np.clip(np.rint(pc), 0, cols - 1).astype(np.int64)
    keep = rng.uniform(size=n) < intensity[ir, ic] / lam_max
    z = rng.standard_normal(n)
    pr, pc, ir, ic, z = pr[keep], pc[keep], ir[keep], ic[keep], z[keep]
    diam = d0[ir, ic] * np.exp(spread * z)
    along, _ = _along_across(shape, angle_deg)
    out = np.zeros(shape, bool)
    _paint_ellipses(out, pr, pc, diam * anisotropy / 2, diam / 2, float(along[1]),
                    float(along[0]))
    return out


# ------------------------------------------------------------------------------------------------
# public mask generators


def pore_field(
    shape: tuple[int, int],
    pore_size_px: float | np.ndarray,
    porosity: float | np.ndarray,
    *,
    morphology: str = "sponge",
    anisotropy: float = 1.0,
    angle_deg: float = 0.0,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """A random pore mask whose local pore size follows a designed map.

    Parameters
    ----------
    shape : (rows, cols)
    pore_size_px : float or ndarray of float, shape ``shape``
        Designed local pore DIAMETER in px at each pixel (e.g. varying with depth); at least
        2 px. The mean local thickness (:func:`pipeline.size.local_thickness`) of the pore pixels
        of a uniform field tracks it (calibrated, see the module's ``_CAL_*`` tables).
    porosity : float or ndarray of float, shape ``shape``
        Pore area fraction in (0.05, 0.95).
    morphology : {"sponge", "cells", "spheres"}
        ``sponge``: bicontinuous network, a Gaussian random field (white noise through an
        (anisotropic) Gaussian filter) thresholded at the porosity quantile; for a varying size
        several filter scales are blended per pixel with weights that keep unit variance.
        ``cells``: closed polygonal cells (Voronoi cells of Poisson-disk seeds whose spacing
        follows ``pore_size_px``) with thin polymer walls whose thickness is a fraction of the
        cell size set by the porosity (solved per porosity class, so a varying porosity map is
        tracked too); corners rounded. Walls are symmetric about the exact Voronoi edges and
        have no preferred direction; the thinnest is a closed digital line 0.71-1 px wide, so a
        porosity above about ``1 - 1.4 / pore_size_px`` cannot be reached (the mask then has
        less; measure it). ``spheres``: Boolean model of isolated or
        overlapping round (or elliptic) pores with a 15 % log-normal spread of diameters.
    anisotropy : float
        >= 1: features are elongated by this factor along ``angle_deg`` (their width across stays
        set by ``pore_size_px``).
    angle_deg : float
        Direction of elongation, degrees counter-clockwise from +x as displayed (rows grow
        downward).
    seed : int or numpy.random.Generator

    Returns
    -------
    ndarray of bool, shape ``shape``
        True = pore.
    """
    shape = _check_shape(shape)
    size = _as_field(pore_size_px, shape, "pore_size_px", 2.0, 1e5)
    por = _as_field(porosity, shape, "porosity", 0.05, 0.95)
    if not (math.isfinite(anisotropy) and 1.0 <= anisotropy <= 20.0):
        raise ValueError(f"anisotropy must be in [1, 20], got {anisotropy}")
    rng = _rng(seed)
    if morphology == "sponge":
        return _sponge(shape, size, por, float(anisotropy), float(angle_deg), rng)
    if morphology == "spheres":
        return _spheres(shape, size, por, float(anisotropy), float(angle_deg), rng)
    if morphology == "cells":
        return _cells(shape, size, por, rng, float(anisotropy), float(angle_deg))
    raise ValueError(f"morphology must be one of sponge, cells, spheres; got {morphology!r}")


def network_phantom(
    shape: tuple[int, int],
    pore_size_px: float | np.ndarray,
    porosity: float,
    *,
    morphology: str = "sponge",
    anisotropy: float = 1.0,
    angle_deg: float = 0.0,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """A pore/polymer network filling the whole frame (no membrane, no surface).

    For isotropy and connectivity tests: ``anisotropy=1`` gives an isotropic network;
    ``anisotropy > 1`` elongates pores and struts along ``angle_deg`` (degrees CCW from +x as
    displayed). Same parameters and return value as :func:`pore_field`.
    """
    return pore_field(shape, pore_size_px, porosity, morphology=morphology,
                      anisotropy=anisotropy, angle_deg=angle_deg, seed=seed)


# ------------------------------------------------------------------------------------------------
# rendering


def _edt(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px, float64) of True pixels to the nearest False pixel; the frame is
    not a boundary. Uses the ``edt`` package (faster) when installed, else scipy."""
    try:
        import edt as edt_pkg
    except ImportError:  # pragma: no cover - edt is a dependency
        return ndi.distance_transform_edt(mask)
    return edt_pkg.edt(np.ascontiguousarray(mask, dtype=bool), black_border=False,
                       parallel=1).astype(np.float64)


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed distance (px) to the boundary of ``mask``: > 0 inside, < 0 outside.

    The boundary lies half a pixel outside the outermost True pixels, so a pixel adjacent to the
    boundary is at +-0.5.
    """
    if mask.all():
        return np.full(mask.shape, np.inf)
    if not mask.any():
        return np.full(mask.shape, -np.inf)
    inside = _edt(mask)
    outside = _edt(~mask)
    return np.where(mask, inside - 0.5, -(outside - 0.5))


def _windows(floor: np.ndarray, pore: np.ndarray, s_pore: np.ndarray, fraction: float,
             rng: np.random.Generator) -> np.ndarray:
    """Darken a small disk at the deepest point of a random ``fraction`` of the pores."""
    lab, n = ndi.label(pore)
    if n == 0:
        return floor
    chosen = np.nonzero(rng.uniform(size=n) < fraction)[0] + 1
    scale = rng.uniform(0.2, 0.4, chosen.size)
    out = floor.copy()
    boxes = ndi.find_objects(lab)
    for label, k in zip(chosen, scale):
        box = boxes[label - 1]
        local = np.where(lab[box] == label, s_pore[box], -np.inf)
        r0, c0 = np.unravel_index(int(np.argmax(local)), local.shape)
        rad = float(local[r0, c0]) * k
        if rad < 1.0:
            continue
        rr, cc = np.ogrid[:local.shape[0], :local.shape[1]]
        disk = ((rr - r0) ** 2 + (cc - c0) ** 2 <= rad * rad) & (lab[box] == label)
        out[box][disk] *= 0.4
    return out


def render(
    pore_mask: np.ndarray,
    membrane_mask: np.ndarray | None = None,
    *,
    style: str = "dark",
    rim_width_px: float = 2.0,
    blur_px: float = 1.0,
    shot_noise: float = 0.05,
    scanline_noise: float = 0.02,
    illumination_gradient: float = 0.2,
    background: str = "dark",
    seed: int | np.random.Generator = 0,
    polymer_level: float | None = None,
    pore_level: float | None = None,
    rim_strength: float | None = None,
    floor_shading: float = 0.45,
    holes: float = 0.25,
    charging_streaks: float = 0.0,
    texture: float = 0.04,
    light_angle_deg: float = 45.0,
    background_level: float | None = None,
    rim_offset_px: float = 0.0,
    rim_asymmetry: float = 0.3,
) -> np.ndarray:
    """Render a pore mask as a grey SEM-like image.

    Parameters
    ----------
    pore_mask : ndarray of bool, shape (rows, cols)
        True = pore (only pixels inside ``membrane_mask`` count).
    membrane_mask : ndarray of bool, shape (rows, cols), optional
        The material (membrane, and any debris to draw); default: the whole frame.
    style : {"dark", "topographic"}
        ``dark``: material contrast (BSE / resin-filled): bright polymer, dark pores, a weak
        rim. ``topographic``: secondary-electron look: mid-grey polymer face, bright rims at every
        pore edge and at the material's outline, pore floors shaded grey (from nearly as grey as
        the face to dark in the middle of large/deep pores, varying smoothly from pore to pore).
        The rims are edges of the polymer: a pore open to the background at the membrane surface
        has none across its mouth, and its floor's depth is its distance to the polymer.
    rim_width_px : float
        Rim brightness is ``rim_strength * exp(-(d / rim_width_px)**2)`` with ``d`` the distance
        (px) of the pixel centre to the boundary of the polymer (against pores or background).
        The boundary (the truth) lies half a pixel outside the outermost pore pixels, so the rim
        peaks AT the truth boundary and falls off over ``rim_width_px`` on both sides,
        symmetrically; a wall thinner than about ``2 * rim_width_px`` is bright across its whole
        width. In ``topographic`` style the rim is stronger on edges facing ``light_angle_deg``
        (x1.3) than on the opposite side (x0.7).
    blur_px : float
        Gaussian beam blur sigma (px), applied before the noise.
    shot_noise : float
        Intensity-dependent noise: standard deviation ``shot_noise * sqrt(I)`` at intensity I
        (Poisson-like, Gaussian approximation).
    scanline_noise : float
        Standard deviation of the per-row offsets (scan-line noise).
    illumination_gradient : float
        Peak-to-peak relative amplitude of the slow multiplicative brightness drift (a random
        plane plus a very smooth random field).
    background : {"dark", "bright", "grey"}
        Outside ``membrane_mask``: near-black (0.04), a saturated charging band (1.0) or grey
        (0.5); always smooth (slow variation only; the shot noise applies there too).
    seed : int or numpy.random.Generator
    polymer_level, pore_level, rim_strength, background_level : float, optional
        Override the style's grey levels (defaults: dark 0.68 / 0.12 / 0.10; topographic
        0.42 / shading / 0.40; background per ``background``).
    floor_shading : float
        Topographic: how dark the deepest pore floors get, as a fraction of the face level.
    holes : float
        Topographic: fraction of the separate pores (connected components) that show a small dark
        window (an opening to the pore below) in the middle of their floor; still pore.
    charging_streaks : float
        Amplitude of charging streaks: brightness trailing to the right of bright features along
        the scan direction (decaying over ~5 % of the width). 0 = none.
    texture : float
        Amplitude of the fine random texture of the polymer face.
    light_angle_deg : float
        Topographic: direction (CCW from +x) of the detector, whose facing edges are brighter.
    rim_offset_px : float
        Where the rim's crest lies relative to the polymer's boundary (px): 0 on it (the
        default, described above), positive into the polymer (an edge glow starting at the
        edge), negative into the pores or background (a bright wall sloping into the pore).
    rim_asymmetry : float
        Topographic: rims of edges facing the detector (``light_angle_deg``) are brighter by up to
        this fraction, those facing away dimmer by as much (an Everhart-Thornley detector beside
        the beam); 0 for a detector that sees every edge alike (in-lens, annular).

    Returns
    -------
    ndarray of float32, shape (rows, cols), values in [0, 1]
    """
    pore = np.asarray(pore_mask, bool)
    if pore.ndim != 2:
        raise ValueError(f"pore_mask must be 2-D, got shape {pore.shape}")
    shape = pore.shape
    material = (np.ones(shape, bool) if membrane_mask is None
                else np.asarray(membrane_mask, bool))
    if material.shape != shape:
        raise ValueError(f"membrane_mask shape {material.shape} differs from pore_mask {shape}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    rng = _rng(seed)
    pore = pore & material

    s_pore = _signed_distance(pore)  # > 0 inside pores
    polymer = material & ~pore
    # The rims are edge effects of the polymer: at its pore walls and at its outline against the
    # background, but not across the mouth of a pore open to the background (no polymer there).
    d_edge = np.abs(_signed_distance(polymer) - rim_offset_px)
    rim = np.exp(-((d_edge / max(rim_width_px, 1e-3)) ** 2))
    # How deep a pixel lies in its cavity: distance to the nearest polymer, so a pore open at the
    # membrane surface is as deep at its mouth as its walls make it, not shallow there
    s_cavity = np.where(pore, _signed_distance(~polymer), s_pore)
    typical_pore_px = 4.0 * float(np.mean(s_pore[pore] + 0.5)) if pore.any() else 8.0
    grain = smooth_noise(shape, 1.0, rng)
    patch = smooth_noise(shape, max(typical_pore_px, 3.0), rng)

    if style == "dark":
        poly = 0.68 if polymer_level is None else polymer_level
        dark = 0.12 if pore_level is None else pore_level
        strength = 0.10 if rim_strength is None else rim_strength
        img = np.where(pore, dark * (1 + 0.25 * patch), poly * (1 + texture * grain))
        img = img + strength * rim
    else:
        poly = 0.42 if polymer_level is None else polymer_level
        strength = 0.40 if rim_strength is None else rim_strength
        # floor depth: deeper towards the pore middle, deeper in larger pores, varying per region
        depth_in = np.clip(s_cavity, 0, None)
        scale = max(rim_width_px, 1.0) * 2.5
        u = 0.5 + 0.5 * np.tanh(patch)  # 0..1, smooth from pore to pore
        darkness = floor_shading * (0.3 + 0.7 * u) * (1 - np.exp(-depth_in / scale))
        # directional shading of the cavity: unit vector from the wall into the pore (the
        # gradient of the signed distance) against the detector direction; the floor under the
        # wall that faces the detector is lit, the opposite side is in shadow
        gy, gx = np.gradient(ndi.gaussian_filter(np.clip(s_cavity, -4, 4 * scale), 1.0))
        th = math.radians(light_angle_deg)
        norm = np.hypot(gx, gy) + 1e-9
        inward_to_light = (gx * math.cos(th) - gy * math.sin(th)) / norm
        darkness = darkness + floor_shading * 0.35 * inward_to_light * np.exp(-depth_in / (
            2 * scale)) * (depth_in > 0)
        floor = poly * (1 - np.clip(darkness, -0.15, 0.95)) if pore_level is None else (
            pore_level * (1 + 0.2 * patch))
        if holes > 0 and pore.any():
            floor = _windows(floor, pore, s_cavity, holes, rng)
        img = np.where(pore, floor, poly * (1 + texture * grain))
        # rim brighter on edges facing the detector direction
        facing = -inward_to_light
        img = img + strength * rim * (1 + rim_asymmetry * facing)

    if background_level is None:
        background_level = {"dark": 0.04, "bright": 1.05, "grey": 0.5}[background]
    bg = background_level * (1 + 0.08 * smooth_noise(shape, max(shape) / 8, rng))
    img = np.where(material, img, bg)
    if blur_px > 0:
        img = ndi.gaussian_filter(img, blur_px)
    if charging_streaks:
        from scipy.signal import lfilter

        decay = math.exp(-1.0 / max(2.0, 0.05 * shape[1]))
        excess = np.clip(img - 0.6, 0, None) * rng.uniform(0.5, 1.5, (shape[0], 1))
        trail = lfilter([1 - decay], [1, -decay], excess, axis=1)
        img = img + charging_streaks * trail / max(float(trail.max()), 1e-9)
    if illumination_gradient:
        rows, cols = shape
        yy = np.linspace(-0.5, 0.5, rows)[:, None]
        xx = np.linspace(-0.5, 0.5, cols)[None, :]
        a = rng.uniform(0, 2 * np.pi)
        ramp = math.cos(a) * xx + math.sin(a) * yy + 0.3 * smooth_noise(shape, max(shape) / 4, rng)
        ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9) - 0.5
        img = img * (1 + illumination_gradient * ramp)
    if shot_noise:
        img = img + shot_noise * np.sqrt(np.clip(img, 0, None)) * rng.standard_normal(shape)
    if scanline_noise:
        rows = shape[0]
        offs = rng.standard_normal(rows)
        offs = 0.7 * offs + 0.3 * ndi.uniform_filter1d(offs, 5)
        img = img + scanline_noise * offs[:, None]
    return np.clip(img, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# data bar and FEI TIFF


def _glyph_row(rng: np.random.Generator, n_chars: int, height: int) -> np.ndarray:
    """White text-like marks: ``n_chars`` random 5x7 glyphs scaled to ``height`` rows."""
    glyphs = rng.uniform(size=(n_chars, 7, 5)) < 0.45
    glyphs[:, :, 0] |= rng.uniform(size=(n_chars, 7)) < 0.5
    unit = max(1, height // 7)
    row = np.zeros((7, n_chars * 6), bool)
    for i, g in enumerate(glyphs):
        row[:, i * 6:i * 6 + 5] = g
    return np.kron(row, np.ones((unit, unit), bool))


def draw_databar(cols: int, bar_rows: int, pixel_size_um: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, dict[str, float]]:
    """A black FEI-style data bar: a frame line, white text-like marks and a scale bar.

    Returns the bar as uint8 (bar_rows, cols) and the scale bar's length in µm and px.
    """
    bar = np.full((bar_rows, cols), 8, np.uint8)
    if bar_rows < 6:
        return bar, {"scale_bar_um": 0.0, "scale_bar_px": 0.0}
    bar[0, :] = 200
    text_h = max(7, int(bar_rows * 0.35))
    y0 = max(2, (bar_rows - text_h) // 2)
    x = 8
    for n_chars in (6, 9, 7):
        marks = _glyph_row(rng, n_chars, text_h)
        h, w = marks.shape
        if x + w >= int(cols * 0.6) or y0 + h > bar_rows:
            break
        bar[y0:y0 + h, x:x + w][marks] = 235
        x += w + 3 * max(1, text_h // 7) * 3
    # scale bar: a 1-2-5 length of about 15 % of the width, at the right
    target_um = 0.15 * cols * pixel_size_um
    exp = 10 ** math.floor(math.log10(target_um))
    length_um = max(m * exp for m in (1, 2, 5) if m * exp <= target_um * 1.5)
    length_px = length_um / pixel_size_um
    x1 = cols - 12
    x0 = int(round(x1 - length_px))
    thick = max(2, bar_rows // 10)
    yb = bar_rows // 2 + text_h // 2
    yb = min(yb, bar_rows - thick - 1)
    if x0 > int(cols * 0.6):
        bar[yb:yb + thick, x0:x1] = 245
        # end caps centred on the bar's ends, as FEI and Zeiss draw them: the length runs
        # between the caps' centres
        c0, c1 = x0 - thick // 2, x1 - thick // 2
        bar[max(1, yb - 3 * thick):yb + thick, c0:c0 + thick] = 245
        bar[max(1, yb - 3 * thick):yb + thick, c1:c1 + thick] = 245
        label = _glyph_row(rng, 5, max(7, text_h // 2))
        h, w = label.shape
        ly = max(1, yb - 3 * thick - h - 1)
        lx = max(x0, (x0 + x1) // 2 - w // 2)
        if ly + h <= bar_rows and lx + w <= cols:
            bar[ly:ly + h, lx:lx + w][label] = 235
    return bar, {"scale_bar_um": float(length_um), "scale_bar_px": float(length_px)}


def fei_metadata_text(pixel_size_um: float, cols: int, image_rows: int) -> str:
    """An FEI/Thermo metadata block (the text of TIFF tag 34682)."""
    px_m = pixel_size_um * 1e-6
    return (
        "[User]\r\nUser=sempore-synthetic\r\n"
        "[System]\r\nSystemType=Synthetic phantom (sempore.synthetic)\r\n"
        "[Beam]\r\nHV=5000\r\n"
        f"[Scan]\r\nPixelWidth={px_m:.6e}\r\nPixelHeight={px_m:.6e}\r\n"
        f"HorFieldsize={px_m * cols:.6e}\r\nVerFieldsize={px_m * image_rows:.6e}\r\n"
        f"[Image]\r\nResolutionX={cols}\r\nResolutionY={image_rows}\r\n"
        "[Detectors]\r\nName=ETD\r\nMode=SE\r\n"
    )


def write_fei_tiff(path: str | Path, image_uint8: np.ndarray, pixel_size_um: float, *,
                   databar_rows: int = 0) -> None:
    """Write an 8-bit grey TIFF with an FEI/Thermo metadata block (tag 34682).

    Parameters
    ----------
    path : str or Path
    image_uint8 : ndarray of uint8, shape (rows, cols)
        The full frame, data bar included.
    pixel_size_um : float
        Written as ``[Scan] PixelWidth`` in metres.
    databar_rows : int
        Rows of data bar at the bottom; ``[Image] ResolutionY`` is ``rows - databar_rows``.
    """
    import tifffile

    img = np.asarray(image_uint8)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"image must be 2-D uint8, got {img.dtype} {img.shape}")
    if not (pixel_size_um > 0 and math.isfinite(pixel_size_um)):
        raise ValueError(f"pixel_size_um must be > 0, got {pixel_size_um}")
    rows, cols = img.shape
    if not 0 <= databar_rows < rows:
        raise ValueError(f"databar_rows must be in [0, {rows}), got {databar_rows}")
    text = fei_metadata_text(pixel_size_um, cols, rows - databar_rows)
    tifffile.imwrite(str(path), img, photometric="minisblack",
                     extratags=[(34682, "s", 0, text, True)])


# ------------------------------------------------------------------------------------------------
# membrane phantoms


@dataclass
class Phantom:
    """A synthetic micrograph and its truth.

    Attributes
    ----------
    image : ndarray of uint8, shape (rows + databar_rows, cols)
        What a file would hold (data bar at the bottom).
    pore_mask : ndarray of bool, shape (rows, cols)
        Truth pores, only inside the membrane.
    membrane_mask : ndarray of bool, shape (rows, cols)
    local_thickness_px : ndarray of float32, shape (rows, cols)
        :func:`pipeline.size.local_thickness` of ``pore_mask`` (the exact truth), px.
    top_px, bottom_px : ndarray of float, shape (cols,)
        Row of the upper / lower membrane boundary per column (0 / rows - 1 where the boundary is
        the image edge).
    surfaces_in_view : tuple of str
    pixel_size_um : float
    databar_rows : int
    params : dict
        Every generation parameter (JSON-serialisable).
    truth : dict
        JSON-serialisable known values (see :func:`make_membrane_phantom`).
    """

    image: np.ndarray
    pore_mask: np.ndarray
    membrane_mask: np.ndarray
    local_thickness_px: np.ndarray
    top_px: np.ndarray
    bottom_px: np.ndarray
    surfaces_in_view: tuple
    pixel_size_um: float
    databar_rows: int
    params: dict = field(default_factory=dict)
    truth: dict = field(default_factory=dict)

    @property
    def grey(self) -> np.ndarray:
        """The micrograph without the data bar as float32 in [0, 1] (what the loader returns)."""
        rows = self.image.shape[0] - self.databar_rows
        return self.image[:rows].astype(np.float32) / 255.0

    def membrane(self, reference_surface: str | None = None):
        """The truth :class:`pipeline.geometry.Membrane` (depth measured from
        ``reference_surface``, default the phantom's reference surface)."""
        from .geometry import membrane_from_surfaces

        ref = reference_surface or self.truth.get("reference_surface", "top")
        return membrane_from_surfaces(
            self.pore_mask.shape, self.top_px, self.bottom_px, reference_surface=ref,
            surfaces_in_view=tuple(self.surfaces_in_view))

    def truth_json(self) -> dict[str, Any]:
        """Everything the ``<stem>.truth.json`` file holds."""
        return {
            "generator": "pipeline.synthetic.make_membrane_phantom",
            "pixel_size_um": self.pixel_size_um,
            "databar_rows": self.databar_rows,
            "image_shape": list(self.image.shape),
            "surfaces_in_view": list(self.surfaces_in_view),
            "truth": self.truth,
            "params": self.params,
            "top_px": [round(float(v), 3) for v in self.top_px],
            "bottom_px": [round(float(v), 3) for v in self.bottom_px],
        }

    def save(self, path: str | Path, *, fei_metadata: bool = True) -> None:
        """Write the image (TIFF, or PNG/BMP/JPEG by suffix), ``<stem>.truth.json`` and
        ``<stem>.pores.png`` (truth pores as 0/255 uint8 at full frame, data-bar rows 0)."""
        from PIL import Image

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff"):
            if fei_metadata:
                write_fei_tiff(path, self.image, self.pixel_size_um,
                               databar_rows=self.databar_rows)
            else:
                import tifffile

                tifffile.imwrite(str(path), self.image, photometric="minisblack")
        elif suffix in (".png", ".bmp", ".jpg", ".jpeg"):
            Image.fromarray(self.image).save(path)
        else:
            raise ValueError(f"{path}: unsupported suffix {suffix!r} (use .tif, .png, .bmp, .jpg)")
        stem = path.with_suffix("")
        pores = np.zeros(self.image.shape, np.uint8)
        pores[: self.pore_mask.shape[0]][self.pore_mask] = 255
        Image.fromarray(pores).save(f"{stem}.pores.png")
        Path(f"{stem}.truth.json").write_text(json.dumps(self.truth_json(), indent=1))


def designed_pore_size_um(depth_um: np.ndarray, *, profile: str, pore_size_um: float,
                          pore_size_range_um: tuple[float, float] | None,
                          min_layer_depth_um: float | None, thickness_um: float,
                          min_layer_width_um: float | None = None) -> np.ndarray:
    """The designed pore diameter (µm) against depth (µm) from the reference surface.

    ``uniform``: ``pore_size_um`` everywhere. ``gradient_increasing`` / ``gradient_decreasing``:
    log-linear from ``pore_size_range_um`` min to max (or max to min) over ``thickness_um``.
    ``internal_minimum``: ``range[1]`` (the larger) at both ends of the thickness, falling
    log-linearly to ``range[0]`` at ``min_layer_depth_um``, flat over ``min_layer_width_um``
    (default 6 % of the thickness) around it.
    """
    d = np.clip(np.asarray(depth_um, np.float64), 0, thickness_um)
    if profile == "uniform":
        return np.full(d.shape, float(pore_size_um))
    lo, hi = sorted(pore_size_range_um)  # type: ignore[arg-type]
    if profile in ("gradient_increasing", "gradient_decreasing"):
        t = d / thickness_um
        if profile == "gradient_decreasing":
            t = 1 - t
        return np.exp(np.log(lo) + t * (np.log(hi) - np.log(lo)))
    if profile == "internal_minimum":
        m = float(min_layer_depth_um)  # type: ignore[arg-type]
        half = 0.5 * (min_layer_width_um if min_layer_width_um is not None
                      else 0.06 * thickness_um)
        above = np.clip((m - half - d) / max(m - half, 1e-9), 0, 1)
        below = np.clip((d - m - half) / max(thickness_um - m - half, 1e-9), 0, 1)
        t = np.maximum(above, below)
        return np.exp(np.log(lo) + t * (np.log(hi) - np.log(lo)))
    raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")


def _surface_line(cols: int, base_row: float, tilt_deg: float, bend_px: float,
                  rng: np.random.Generator) -> np.ndarray:
    x = np.arange(cols, dtype=float)
    phase = rng.uniform(0, 2 * np.pi)
    cycles = rng.uniform(0.4, 1.0)
    # positive tilt = counter-clockwise as displayed: the line rises (row falls) to the right
    return (base_row - math.tan(math.radians(tilt_deg)) * (x - (cols - 1) / 2)
            + bend_px * np.sin(2 * np.pi * cycles * x / cols + phase))


def _perpendicular_distance(line_a: np.ndarray, line_b: np.ndarray) -> np.ndarray:
    """For every point of curve b (row per column) the distance to curve a (densely sampled)."""
    from scipy.spatial import cKDTree

    cols = line_a.size
    xa = np.linspace(0, cols - 1, 8 * cols)
    pa = np.column_stack([np.interp(xa, np.arange(cols), line_a), xa])
    pb = np.column_stack([line_b, np.arange(cols, dtype=float)])
    return cKDTree(pa).query(pb)[0]


def _fingers(shape: tuple[int, int], membrane: np.ndarray, depth_px: np.ndarray,
             size_px: np.ndarray, porosity: float, skin_px: float, span_px: float,
             rng: np.random.Generator, designed: list | None = None) -> np.ndarray:
    """NIPS-like structure: sponge with finger-like, tear-drop macrovoids hanging below a skin.
    ``designed``, when given, receives one dict per macrovoid (px): its axis column ``col``,
    top depth ``top``, length ``length`` and widest width ``width`` (no random draw added)."""
    rows, cols = shape
    sponge = _sponge(shape, size_px, porosity, 1.0, 0.0, rng)
    length = 0.6 * span_px
    width = max(6.0, 0.12 * length)
    spacing = 2.2 * width
    n = max(1, int(cols / spacing))
    voids = np.zeros(shape, bool)
    rr, cc = np.mgrid[0:rows, 0:cols]
    for k in range(n):
        c0 = (k + rng.uniform(0.2, 0.8)) * spacing
        ln = length * rng.uniform(0.6, 1.0)
        wd = width * rng.uniform(0.7, 1.2)
        d0 = skin_px + rng.uniform(0.5, 2.0) * max(2.0, skin_px)
        # tear drop: narrow under the skin, widening downwards, rounded (elliptic) bottom
        t = (depth_px - d0) / ln
        tc = 0.75
        upper = np.clip(t / tc, 0, 1) ** 0.6
        lower = np.sqrt(np.clip(1 - ((t - tc) / (1 - tc)) ** 2, 0, 1))
        half = wd / 2 * np.where(t < tc, upper, lower)
        voids |= (t >= 0) & (t <= 1) & (np.abs(cc - c0) < half) & membrane
        if designed is not None:
            designed.append({"col": float(c0), "top": float(d0), "length": float(ln),
                             "width": float(wd)})
    del rr
    return sponge | voids


def make_membrane_phantom(
    shape: tuple[int, int] = (768, 1024),
    *,
    pixel_size_um: float = 0.1,
    thickness_um: float | None = None,
    profile: str = "uniform",
    pore_size_um: float = 1.0,
    pore_size_range_um: tuple[float, float] | None = None,
    min_layer_depth_um: float | None = None,
    porosity: float = 0.5,
    morphology: str = "sponge",
    rendering: str = "dark",
    background: str = "dark",
    surfaces: str = "top",
    reference_surface: str = "top",
    tilt_deg: float = 0.0,
    bend_px: float = 0.0,
    debris: bool = False,
    databar: bool = True,
    seed: int = 0,
    anisotropy: float = 1.0,
    angle_deg: float = 90.0,
    skin_um: float = 0.0,
    min_layer_depth_fraction: float = 0.25,
    **render_kw: Any,
) -> Phantom:
    """A synthetic SEM cross-section of a porous membrane with known truth.

    Parameters
    ----------
    shape : (rows, cols)
        Micrograph size without the data bar.
    pixel_size_um : float
    thickness_um : float, optional
        Membrane thickness perpendicular to the band. Default: with both surfaces in view 62 % of
        the frame height; with one surface, the visible span (the band runs off the frame).
    profile : {"uniform", "gradient_increasing", "gradient_decreasing", "internal_minimum"}
        Designed pore diameter against depth from ``reference_surface``, see
        :func:`designed_pore_size_um`.
    pore_size_um : float
        Diameter for ``uniform``; the geometric middle of the default range otherwise.
    pore_size_range_um : (float, float), optional
        (smallest, largest) designed diameter for gradient / internal-minimum profiles (default
        pore_size_um / 2 and x 2, i.e. a ratio of 4).
    min_layer_depth_um : float, optional
        Depth of the minimum layer (default ``min_layer_depth_fraction`` of the thickness).
    porosity : float
        Designed pore area fraction inside the membrane.
    morphology : {"sponge", "cells", "spheres", "fingers"}
        ``fingers``: a NIPS-like dense skin (``skin_um``, default 3 px) with finger-like
        macrovoids under it in a sponge; its designed profile describes the sponge only.
    rendering : {"dark", "topographic"}
        :func:`render` style.
    background : {"dark", "bright", "grey"}
    surfaces : {"top", "bottom", "both", "none"}
        Which membrane surfaces are in view; ``none``: the whole frame is material.
    reference_surface : {"top", "bottom"}
        Depth is measured from it (must be in view unless ``surfaces="none"``).
    tilt_deg : float
        Tilt of the band, degrees (|tilt| <= 10).
    bend_px : float
        Amplitude of a gentle sinusoidal bend of the band, px.
    debris : bool
        Put a textured fragment in the background above the top surface, separated from it.
    databar : bool
        Append a black FEI-style data bar of ~7 % of the rows.
    seed : int
    anisotropy, angle_deg : float
        Pore elongation (see :func:`pore_field`).
    skin_um : float
        Dense (pore-free) layer under each surface in view, µm.
    min_layer_depth_fraction : float
        Default depth of the minimum layer as a fraction of the (designed) thickness.
    **render_kw
        Passed to :func:`render` (``rim_width_px``, ``blur_px``, ``shot_noise``, ...).

    Returns
    -------
    Phantom
        ``truth`` holds: ``kind`` (symmetric | gradient | internal_minimum),
        ``gradient_direction`` (increasing | decreasing | None, with depth from the reference
        surface), ``min_layer_depth_um`` / ``min_layer_pore_size_um`` (designed),
        ``thickness_um`` (perpendicular distance between the surfaces, median over the width;
        None unless both are in view), ``designed_thickness_um``, ``visible_span_um``,
        ``porosity`` (realised, pores / membrane pixels), ``mean_pore_size_um`` (realised mean
        local thickness of the pore pixels), ``reference_surface``, and the designed profile
        ``designed_depth_um`` / ``designed_pore_size_um``.
    """
    from .geometry import depth_from_line, membrane_from_surfaces
    from .size import local_thickness

    rows, cols = _check_shape(shape)
    if not (pixel_size_um > 0 and math.isfinite(pixel_size_um)):
        raise ValueError(f"pixel_size_um must be > 0, got {pixel_size_um}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if morphology not in MORPHOLOGIES:
        raise ValueError(f"morphology must be one of {', '.join(MORPHOLOGIES)}, got {morphology!r}")
    if surfaces not in SURFACE_CHOICES:
        raise ValueError(f"surfaces must be one of {', '.join(SURFACE_CHOICES)}, got {surfaces!r}")
    if abs(tilt_deg) > 10:
        raise ValueError(f"tilt_deg must be within +-10 degrees, got {tilt_deg}")
    if rendering not in STYLES:
        raise ValueError(f"rendering must be one of {', '.join(STYLES)}, got {rendering!r}")
    rng = np.random.default_rng(seed)
    params = {
        "shape": [rows, cols], "pixel_size_um": pixel_size_um, "thickness_um": thickness_um,
        "profile": profile, "pore_size_um": pore_size_um,
        "pore_size_range_um": None if pore_size_range_um is None else list(pore_size_range_um),
        "min_layer_depth_um": min_layer_depth_um, "porosity": porosity,
        "morphology": morphology, "rendering": rendering, "background": background,
        "surfaces": surfaces, "reference_surface": reference_surface, "tilt_deg": tilt_deg,
        "bend_px": bend_px, "debris": debris, "databar": databar, "seed": seed,
        "anisotropy": anisotropy, "angle_deg": angle_deg, "skin_um": skin_um,
        "min_layer_depth_fraction": min_layer_depth_fraction,
        "render": dict(render_kw),
    }

    # --- the band
    top_in = surfaces in ("top", "both")
    bottom_in = surfaces in ("bottom", "both")
    slope_span = abs(math.tan(math.radians(tilt_deg))) * (cols - 1) / 2 + abs(bend_px)
    if surfaces == "none":
        reference = "none"
    else:
        reference = reference_surface
        if reference not in ("top", "bottom"):
            raise ValueError(f"reference_surface must be top or bottom, got {reference!r}")
        if (reference == "top" and not top_in) or (reference == "bottom" and not bottom_in):
            raise ValueError(f"reference surface {reference!r} is not in view "
                             f"(surfaces={surfaces!r})")
    if surfaces == "both":
        t_px = (0.62 * rows if thickness_um is None else thickness_um / pixel_size_um)
        mid = rows / 2 + rng.uniform(-0.03, 0.03) * rows
        top = _surface_line(cols, mid - t_px / 2, tilt_deg, bend_px, rng)
        slope = np.gradient(top)
        bottom = top + t_px * np.sqrt(1 + slope**2)
    elif surfaces == "top":
        top = _surface_line(cols, rows * rng.uniform(0.18, 0.26) + slope_span, tilt_deg,
                            bend_px, rng)
        bottom = np.full(cols, rows - 1.0)
    elif surfaces == "bottom":
        bottom = _surface_line(cols, rows * rng.uniform(0.74, 0.82) - slope_span, tilt_deg,
                               bend_px, rng)
        top = np.zeros(cols)
    else:
        top, bottom = np.zeros(cols), np.full(cols, rows - 1.0)
    for name, line, shown in (("top", top, top_in), ("bottom", bottom, bottom_in)):
        if shown and (line.min() < 2 or line.max() > rows - 3):
            raise ValueError(f"the {name} surface leaves the frame: reduce thickness_um, "
                             f"tilt_deg or bend_px")
    in_view = tuple(s for s, ok in (("top", top_in), ("bottom", bottom_in)) if ok)
    mem = membrane_from_surfaces((rows, cols), top, bottom,
                                 reference_surface="none" if reference == "none" else reference,
                                 surfaces_in_view=in_view)
    membrane = mem.mask
    # depth of every pixel (inside and outside the band) from the reference line, px
    if reference == "none":
        depth_all = np.broadcast_to(np.arange(rows, dtype=float)[:, None], (rows, cols))
    else:
        depth_all = depth_from_line((rows, cols), top if reference == "top" else bottom)
    deepest_px = float(np.nanmax(np.where(membrane, depth_all, np.nan)))
    if surfaces == "both":
        dist = _perpendicular_distance(top, bottom)
        true_thickness_um = float(np.median(dist)) * pixel_size_um
        design_t_um = true_thickness_um
    else:
        true_thickness_um = None
        design_t_um = thickness_um if thickness_um is not None else deepest_px * pixel_size_um
    visible_um = deepest_px * pixel_size_um

    # --- designed pore size
    if profile != "uniform" and pore_size_range_um is None:
        pore_size_range_um = (pore_size_um / 2, pore_size_um * 2)
    if profile == "internal_minimum" and min_layer_depth_um is None:
        min_layer_depth_um = min_layer_depth_fraction * design_t_um
    if profile == "internal_minimum" and not 0 < min_layer_depth_um < design_t_um:
        raise ValueError(f"min_layer_depth_um must be inside the membrane (0, {design_t_um:.3g})")
    design_kw = dict(profile=profile, pore_size_um=pore_size_um,
                     pore_size_range_um=pore_size_range_um,
                     min_layer_depth_um=min_layer_depth_um, thickness_um=design_t_um)
    size_um = designed_pore_size_um(depth_all * pixel_size_um, **design_kw)
    size_px = size_um / pixel_size_um
    if size_px.min() < 2.0:
        raise ValueError(f"designed pore size {size_px.min() * pixel_size_um:.3g} µm is below "
                         f"2 px at {pixel_size_um} µm/px")

    # --- pores
    skin_px = skin_um / pixel_size_um
    designed_voids: list[dict] = []
    if morphology == "fingers":
        skin_px = skin_px or 3.0
        pores = _fingers((rows, cols), membrane, np.asarray(depth_all), size_px, porosity,
                         skin_px, deepest_px, rng, designed_voids)
    else:
        pores = pore_field((rows, cols), size_px, porosity, morphology=morphology,
                           anisotropy=anisotropy, angle_deg=angle_deg, seed=rng)
    pore_mask = pores & membrane
    if skin_px > 0:
        for name, line in (("top", top), ("bottom", bottom)):
            if name in in_view:
                pore_mask &= depth_from_line((rows, cols), line) > skin_px
    lt = local_thickness(pore_mask)

    # --- debris above the top surface
    material = membrane.copy()
    render_pores = pore_mask.copy()
    debris_box = None
    if debris and top_in and top.min() > 40:
        gap = max(8, int(0.02 * rows))
        room = float(top.min()) - gap
        h = min(room * 0.8, rows * 0.15)
        w = min(cols * 0.3, 3 * h)
        c0 = rng.uniform(0.15, 0.85) * cols
        r0 = room - h / 2 - rng.uniform(0, room - h) * 0.5
        rr, cc = np.mgrid[0:rows, 0:cols]
        blob = ((rr - r0) / (h / 2)) ** 2 + ((cc - c0) / (w / 2)) ** 2
        blob = blob + 0.35 * smooth_noise((rows, cols), max(h / 4, 2.0), rng)
        frag = (blob < 1.0) & (rr < top[None, :] - gap)
        if frag.any():
            frag_pores = pore_field((rows, cols), float(np.median(size_px)), porosity,
                                    morphology="sponge" if morphology == "fingers"
                                    else morphology, seed=rng)
            material |= frag
            render_pores |= frag_pores & frag
            ys, xs = np.nonzero(frag)
            debris_box = [int(ys.min()), int(xs.min()), int(ys.max()), int(xs.max())]

    image = render(render_pores, material, style=rendering, background=background, seed=rng,
                   **render_kw)
    image8 = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    bar_rows = 0
    bar_info: dict[str, float] = {}
    if databar:
        bar_rows = max(8, int(round(0.07 * rows)))
        bar, bar_info = draw_databar(cols, bar_rows, pixel_size_um, rng)
        image8 = np.vstack([image8, bar])

    # --- truth
    kind = {"uniform": "symmetric", "gradient_increasing": "gradient",
            "gradient_decreasing": "gradient", "internal_minimum": "internal_minimum"}[profile]
    direction = {"gradient_increasing": "increasing", "gradient_decreasing": "decreasing"}.get(
        profile)
    if morphology == "fingers" and profile == "uniform":
        # macrovoids hang below the skin of the reference surface and end at ~60 % of the
        # visible span: the largest pores are near the surface, only sponge deeper down
        kind, direction = "gradient", "decreasing"
    sample_depth = np.linspace(0, design_t_um, 41)
    n_membrane = int(membrane.sum())
    truth = {
        "kind": kind,
        "gradient_direction": direction,
        "min_layer_depth_um": (float(min_layer_depth_um) if profile == "internal_minimum"
                               else None),
        "min_layer_pore_size_um": (float(min(pore_size_range_um)) if profile ==
                                   "internal_minimum" else None),
        "thickness_um": true_thickness_um,
        "designed_thickness_um": float(design_t_um),
        "visible_span_um": float(visible_um),
        "porosity": float(pore_mask.sum() / max(n_membrane, 1)),
        "designed_porosity": float(porosity),
        "mean_pore_size_um": (float(lt[pore_mask].mean() * pixel_size_um) if pore_mask.any()
                              else None),
        "reference_surface": reference,
        "surfaces_in_view": list(in_view),
        "morphology": morphology,
        "rendering": rendering,
        "background": background,
        "tilt_deg": float(tilt_deg),
        "skin_um": float(skin_px * pixel_size_um),
        "debris_box_px": debris_box,
        # fingers: the designed macrovoids (depth from the reference surface, before the skin
        # and the frame clip them): axis column px, top depth, length, widest width in µm
        "macrovoids": [{"col_px": v["col"], "top_depth_um": v["top"] * pixel_size_um,
                        "length_um": v["length"] * pixel_size_um,
                        "width_um": v["width"] * pixel_size_um} for v in designed_voids],
        "designed_depth_um": [round(float(v), 5) for v in sample_depth],
        "designed_pore_size_um": [round(float(v), 5) for v in
                                  designed_pore_size_um(sample_depth, **design_kw)],
        **bar_info,
    }
    return Phantom(
        image=image8, pore_mask=pore_mask, membrane_mask=membrane, local_thickness_px=lt,
        top_px=np.asarray(top, float), bottom_px=np.asarray(bottom, float),
        surfaces_in_view=in_view, pixel_size_um=float(pixel_size_um), databar_rows=bar_rows,
        params=params, truth=truth)


def phantom_from_params(params: dict[str, Any]) -> Phantom:
    """Rebuild a phantom from its ``params`` (e.g. read from a ``<stem>.truth.json``)."""
    kw = {k: v for k, v in params.items() if k != "render"}
    kw["shape"] = tuple(kw["shape"])
    if kw.get("pore_size_range_um") is not None:
        kw["pore_size_range_um"] = tuple(kw["pore_size_range_um"])
    kw.update(params.get("render", {}))
    return make_membrane_phantom(**kw)


def random_phantom(seed: int, **overrides: Any) -> Phantom:
    """A varied membrane phantom drawn from ``seed`` (morphology, rendering, noise, tilt,
    background, surfaces, profile), for held-out-style tests. ``overrides`` fix any
    :func:`make_membrane_phantom` or :func:`render` parameter."""
    rng = np.random.default_rng([seed, 7919])
    shape = overrides.pop("shape", (int(rng.choice([512, 640, 768])),
                                    int(rng.choice([768, 896, 1024]))))
    pixel = float(overrides.get("pixel_size_um", rng.choice([0.02, 0.05, 0.1, 0.2])))
    profile = str(overrides.get("profile", rng.choice(PROFILES)))
    surfaces = str(overrides.get("surfaces", rng.choice(["top", "both", "both", "bottom"])))
    # pore sizes in px first (resolvable: >= 4 px; several pores across the band), then to µm
    ratio = float(rng.uniform(3, 8)) if profile != "uniform" else 1.0
    mid_px = float(rng.uniform(max(8.0, 4.0 * math.sqrt(ratio)), 20.0))
    morphology = str(rng.choice(["sponge", "sponge", "cells", "spheres", "fingers"],
                                p=[0.3, 0.15, 0.25, 0.2, 0.1]))
    if morphology == "fingers":
        profile, ratio = "uniform", 1.0
    kw: dict[str, Any] = dict(
        shape=shape,
        pixel_size_um=pixel,
        profile=profile,
        pore_size_um=mid_px * pixel,
        pore_size_range_um=(mid_px / math.sqrt(ratio) * pixel, mid_px * math.sqrt(ratio) * pixel)
        if profile != "uniform" else None,
        porosity=float(rng.uniform(0.35, 0.7)),
        morphology=morphology,
        rendering=str(rng.choice(STYLES)),
        background=str(rng.choice(BACKGROUNDS)),
        surfaces=surfaces,
        reference_surface="bottom" if surfaces == "bottom" else "top",
        tilt_deg=float(rng.uniform(-8, 8)),
        bend_px=float(rng.uniform(0, 0.02) * shape[0]),
        debris=bool(rng.uniform() < 0.3) and surfaces in ("top", "both"),
        databar=bool(rng.uniform() < 0.8),
        seed=int(rng.integers(2**31)),
        min_layer_depth_fraction=float(rng.uniform(0.12, 0.4)),
        skin_um=float(rng.choice([0.0, 0.0, 2.0, 4.0])) * pixel,
        rim_width_px=float(rng.uniform(1.0, 3.0)),
        blur_px=float(rng.uniform(0.5, 1.5)),
        shot_noise=float(rng.uniform(0.02, 0.10)),
        scanline_noise=float(rng.uniform(0.0, 0.04)),
        illumination_gradient=float(rng.uniform(0.0, 0.35)),
        rim_strength=float(rng.uniform(0.3, 0.55)) if rng.uniform() < 0.5 else None,
        floor_shading=float(rng.uniform(0.3, 0.8)),
        light_angle_deg=float(rng.uniform(0, 360)),
        charging_streaks=float(rng.uniform(0.0, 0.15)) if rng.uniform() < 0.3 else 0.0,
    )
    if morphology == "cells":
        # keep the porosity well inside what the thinnest (0.7-1 px) walls allow for the cell
        # size (about 1 - 1.4 / size, see pore_field)
        kw["pore_size_um"] = max(mid_px, 12.0) * pixel
        kw["porosity"] = float(rng.uniform(0.55, min(0.8, 1 - 3.5 / max(mid_px, 12.0))))
    kw.update(overrides)
    return make_membrane_phantom(**kw)


# ------------------------------------------------------------------------------------------------
# calibration (documentation / maintenance; not used at run time)


def calibrate(morphology: str, porosities: tuple[float, ...] = tuple(_CAL_POROSITY), *,
              size_px: float = 12.0, shape: tuple[int, int] = (768, 768), seeds: int = 3,
              anisotropy: float = 1.0) -> np.ndarray:
    """Measure realised mean local thickness / designed size for uniform fields.

    With the current tables the result should be ~1 at every porosity; multiply the matching
    ``_CAL_*`` table by it to recalibrate.
    """
    from .size import local_thickness

    out = []
    for p in porosities:
        vals = []
        for s in range(seeds):
            m = pore_field(shape, size_px, p, morphology=morphology, anisotropy=anisotropy,
                           seed=1000 + s)
            lt = local_thickness(m)
            vals.append(lt[m].mean() / size_px)
        out.append(float(np.mean(vals)))
    return np.array(out)
