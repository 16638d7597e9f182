"""A held-out renderer: SEM-like membrane cross-sections made differently from pipeline.synthetic.

The pipeline's own phantoms (:mod:`pipeline.synthetic`) are what its authors look at while they
build it. This module is written independently of them to check that the methods are general:
its geometries, its contrast models, its noise and its data bars are all different. It never
calls :func:`pipeline.synthetic.render`; the only things it borrows from the pipeline are
:func:`pipeline.synthetic.pore_field` for ONE geometry (a graded sponge; the mask only) and
:func:`pipeline.size.local_thickness` for the truth pore size (the issue's exact definition, which
is tested against a brute-force implementation elsewhere).

Geometry (the truth masks)
--------------------------
* :func:`voronoi_foam` — closed polygonal cells of Poisson (not Poisson-disk) seeds: very
  irregular cell sizes, straight walls of a set thickness, sharp corners.
* :func:`ellipse_pores` — a Boolean model of overlapping ellipses of random orientation and aspect
  (1-2.5) and log-normal size.
* :func:`stretched_field` — thresholded Gaussian random field filtered anisotropically (pores
  elongated along the membrane, like a stretched film).
* :func:`nips_fingers` — a dense skin over meandering finger-like macrovoids in a fine sponge.
* a graded sponge from :func:`pipeline.synthetic.pore_field` with a designed internal minimum.

The membrane band lies between two surface lines (tilt, a quadratic bow); a pixel is membrane when
its centre lies between them. The true depth is the exact Euclidean distance of each pixel centre
to the reference (top) line, computed here from a densely sampled polyline (k-d tree), and the true
thickness is the median distance of the bottom line to the top line, computed the same way.

Contrast models (where the truth boundary lies)
-----------------------------------------------
* :func:`render_se` — secondary electrons from a height map. The section face is flat at height 0;
  each pore is a cavity whose depth below the face grows from 0 at the pore boundary to a depth
  ``D`` drawn per pore (shallow to deep) over a wall length of a few px. Brightness = face level x
  the secant of the local surface tilt (walls are bright) x the escape probability from the cavity
  depth (deep floors are dark, shallow ones nearly as grey as the face) x a detector-facing term,
  plus an edge-effect emission on the POLYMER side that decays away from every pore edge and every
  membrane outline. The truth boundary is where the height leaves the face: the bright wall lies
  INSIDE the pore (decaying over the wall length), the edge glow OUTSIDE it (decaying over
  ~1.2 px), so the rim straddles the boundary asymmetrically. pipeline.synthetic's rims are
  symmetric Gaussians centred on the boundary; a method that learned "the boundary is the rim
  crest" is off by about a pixel here.
* :func:`render_bse` — material contrast: bright polymer, dark pores through which a dim, blurred
  deeper network is seen; a two-component point-spread function (core + wide halo) and a detector
  gamma (0.6 or 1.6) applied after the noise. The truth boundary is the step of the un-blurred
  signal; with gamma != 1 the half-grey level is no longer at the boundary.
* :func:`render_rim_position` — a plain pore field (no band, no data bar) whose bright rim lies
  OUTSIDE the boundary (an edge glow starting on the polymer), centred on it, or INSIDE it (a
  bright wall sloping into the pore), dark or topographic; for ``benchmarks/bench_rim_position.py``
  and the dark method's rim-position tests.

Frame and noise
---------------
Dark vacuum (low level, noisy) or a saturated charging band 100-300 rows tall above the membrane;
Poisson (electron-counting) noise at a chosen dose plus Gaussian read noise, per-row line jitter
(sub-pixel horizontal shifts, sd 0.3 px; the truth is NOT jittered, so boundaries are uncertain by
that much), scan-line offsets, vignetting, a slow drift, optional JPEG compression.

Data bars
---------
``hitachi``: a black strip below the image with white text and an 11-tick ruler, saved as BMP
with a Hitachi ``.txt`` sidecar (``PixelSize`` in nm; ``DataSize`` only when
``sidecar_rows=True``, otherwise the loader must detect the bar). ``zeiss``: a white panel with
black text and a scale bar drawn OVER the bottom rows of the frame, saved without metadata (the
pixel size is given by the caller, as for a PNG/JPEG export).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from _accuracy import Truth

# ------------------------------------------------------------------------------------------------
# geometry


def _edt(mask: np.ndarray) -> np.ndarray:
    """Distance (px) of True pixels to the nearest False pixel centre (scipy, exact)."""
    return ndi.distance_transform_edt(mask)


def _poisson_points(shape: tuple[int, int], cell_px: np.ndarray, rng: np.random.Generator,
                    margin: float) -> np.ndarray:
    """Poisson points with intensity 4 / (pi * cell_px**2) (one cell of that equivalent
    diameter per point), by thinning; ``cell_px`` is a per-pixel map. Returns (n, 2) rows/cols."""
    rows, cols = shape
    lam = 4.0 / (math.pi * cell_px.astype(np.float64) ** 2)
    lam_max = float(lam.max())
    area = (rows + 2 * margin) * (cols + 2 * margin)
    n = rng.poisson(lam_max * area)
    pr = rng.uniform(-margin, rows + margin, n)
    pc = rng.uniform(-margin, cols + margin, n)
    ir = np.clip(pr.astype(int), 0, rows - 1)
    ic = np.clip(pc.astype(int), 0, cols - 1)
    keep = rng.uniform(size=n) < lam[ir, ic] / lam_max
    return np.column_stack([pr[keep], pc[keep]])


def voronoi_foam(shape: tuple[int, int], cell_px: np.ndarray | float, wall_fraction: float,
                 rng: np.random.Generator, *, min_wall_px: float = 1.5) -> np.ndarray:
    """Closed polygonal cells (Voronoi cells of Poisson seeds) separated by straight walls.

    Parameters
    ----------
    shape : (rows, cols)
    cell_px : float or ndarray of float, shape ``shape``
        Equivalent diameter of a cell (px), may vary over the frame.
    wall_fraction : float
        Wall thickness as a fraction of the local cell diameter (at least ``min_wall_px``).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of bool, shape ``shape``; True = pore (cell interior).
    """
    rows, cols = shape
    cell = np.broadcast_to(np.asarray(cell_px, np.float64), shape)
    pts = _poisson_points(shape, cell, rng, margin=float(cell.max()))
    tree = cKDTree(pts)
    rr, cc = np.mgrid[0:rows, 0:cols]
    grid = np.column_stack([rr.ravel(), cc.ravel()]).astype(np.float64)
    d, idx = tree.query(grid, k=3)
    p1 = pts[idx[:, 0]]
    best = np.full(grid.shape[0], np.inf)
    for j in (1, 2):
        pj = pts[idx[:, j]]
        sep = np.linalg.norm(pj - p1, axis=1)
        # exact distance from the pixel to the bisector of seeds 1 and j
        best = np.minimum(best, (d[:, j] ** 2 - d[:, 0] ** 2) / (2 * np.maximum(sep, 1e-9)))
    wall = np.maximum(min_wall_px, wall_fraction * cell.ravel())
    return (best > wall / 2).reshape(shape)


def ellipse_pores(shape: tuple[int, int], size_px: np.ndarray | float, porosity: float,
                  rng: np.random.Generator, *, max_aspect: float = 2.5,
                  spread: float = 0.3) -> np.ndarray:
    """Boolean model of overlapping ellipses of random orientation, aspect and size.

    ``size_px`` (scalar or per-pixel map) is the median minor-axis length (px) of the ellipses
    centred there; aspect ratios are uniform in [1, ``max_aspect``]; sizes log-normal with
    ``spread``. The centre intensity is set so that the expected covered fraction is
    ``porosity``.
    """
    rows, cols = shape
    size = np.broadcast_to(np.asarray(size_px, np.float64), shape)
    mean_aspect = (1 + max_aspect) / 2
    mean_area = math.pi / 4 * size**2 * mean_aspect * math.exp(2 * spread**2)
    lam = -math.log(1 - porosity) / mean_area
    lam_max = float(lam.max())
    margin = float(size.max()) * max_aspect
    n = rng.poisson(lam_max * (rows + 2 * margin) * (cols + 2 * margin))
    pr = rng.uniform(-margin, rows + margin, n)
    pc = rng.uniform(-margin, cols + margin, n)
    ir = np.clip(pr.astype(int), 0, rows - 1)
    ic = np.clip(pc.astype(int), 0, cols - 1)
    keep = rng.uniform(size=n) < lam[ir, ic] / lam_max
    pr, pc, ir, ic = pr[keep], pc[keep], ir[keep], ic[keep]
    minor = size[ir, ic] * np.exp(spread * rng.standard_normal(pr.size)) / 2
    major = minor * rng.uniform(1, max_aspect, pr.size)
    theta = rng.uniform(0, math.pi, pr.size)
    out = np.zeros(shape, bool)
    for r0, c0, a, b, t in zip(pr, pc, major, minor, theta):
        reach = int(math.ceil(a)) + 1
        r_lo, r_hi = max(int(r0) - reach, 0), min(int(r0) + reach + 2, rows)
        c_lo, c_hi = max(int(c0) - reach, 0), min(int(c0) + reach + 2, cols)
        if r_lo >= r_hi or c_lo >= c_hi:
            continue
        dr = np.arange(r_lo, r_hi)[:, None] - r0
        dc = np.arange(c_lo, c_hi)[None, :] - c0
        u = dc * math.cos(t) - dr * math.sin(t)
        v = dc * math.sin(t) + dr * math.cos(t)
        out[r_lo:r_hi, c_lo:c_hi] |= (u / a) ** 2 + (v / b) ** 2 <= 1.0
    return out


def stretched_field(shape: tuple[int, int], sigma_across_px: float, aspect: float,
                    porosity: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field filtered with sigma ``(sigma_across_px, aspect * sigma_across_px)``
    (rows, cols), thresholded at the ``porosity`` quantile: pores elongated along x."""
    noise = rng.standard_normal(shape)
    f = ndi.gaussian_filter(noise, (sigma_across_px, aspect * sigma_across_px), mode="wrap")
    return f > np.quantile(f, 1 - porosity)


def nips_fingers(shape: tuple[int, int], depth_px: np.ndarray, band: np.ndarray,
                 span_px: float, skin_px: float, sponge_px: float, porosity: float,
                 rng: np.random.Generator) -> np.ndarray:
    """A NIPS-like structure: dense skin, meandering finger macrovoids, a fine sponge around."""
    rows, cols = shape
    noise = ndi.gaussian_filter(rng.standard_normal(shape), sponge_px / 3.0)
    sponge = noise > np.quantile(noise[band], 1 - porosity)
    fingers = np.zeros(shape, bool)
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float64)
    x = 0.0
    while x < cols:
        width = rng.uniform(0.05, 0.1) * span_px
        x += width * rng.uniform(1.6, 2.6)
        length = rng.uniform(0.35, 0.8) * span_px
        start = skin_px + rng.uniform(1, 4)
        t = (depth_px - start) / length  # 0 at the finger's top, 1 at its end
        wobble = rng.uniform(0.1, 0.5) * width * np.sin(2 * math.pi * t * rng.uniform(0.3, 0.8)
                                                         + rng.uniform(0, 2 * math.pi))
        half = width / 2 * np.where(t < 0.8, np.sqrt(np.clip(t / 0.8, 0, 1)),
                                    np.sqrt(np.clip(1 - ((t - 0.8) / 0.2) ** 2, 0, 1)))
        fingers |= (t >= 0) & (t <= 1) & (np.abs(cc - x - wobble) < half)
    return (sponge | fingers) & band & (depth_px > skin_px)


# ------------------------------------------------------------------------------------------------
# band


def _curve(x: np.ndarray, coeffs: tuple[float, float, float, float]
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """Row, slope and second derivative of the line ``a + s*(x - xc) + b*(u**2 - 1/3)`` with
    ``u = (x - xc) / xc`` at columns ``x``; ``coeffs = (a, s, b, xc)``."""
    a, s, b, xc = coeffs
    h = max(xc, 1.0)
    dx = x - xc
    return a + s * dx + b * ((dx / h) ** 2 - 1 / 3), s + 2 * b * dx / h**2, 2 * b / h**2


def line_coeffs(shape: tuple[int, int], top_row: float, tilt_deg: float, bow_px: float
                ) -> tuple[float, float, float, float]:
    """Coefficients of the top line: at ``top_row`` on average, tilted ``tilt_deg``
    (CCW-positive: the line rises to the right), bowed by ``bow_px`` (ends vs middle)."""
    cols = shape[1]
    return (float(top_row), -math.tan(math.radians(tilt_deg)), float(bow_px), (cols - 1) / 2)


def distance_to_line(rr: np.ndarray, cc: np.ndarray, coeffs: tuple[float, float, float, float]
                     ) -> np.ndarray:
    """Exact Euclidean distance (px) of points (rr, cc) to the top curve.

    The surface goes on beyond the frame, so the curve is not cut at the frame's edges. The foot
    point x minimises (line(x) - r)**2 + (x - c)**2; Newton's method from x = c converges in a
    few steps for these gentle curves (radius of curvature >> depth).
    """
    cc = np.asarray(cc, np.float64)
    r = np.asarray(rr, np.float64)
    x = cc.copy()
    for _ in range(8):
        f, fp, fpp = _curve(x, coeffs)
        g = (x - cc) + (f - r) * fp
        gp = 1 + fp * fp + (f - r) * fpp
        x = x - g / gp
    f = _curve(x, coeffs)[0]
    return np.hypot(f - r, x - cc)


def band_truth(shape: tuple[int, int], coeffs: tuple[float, float, float, float],
               thickness_px: float | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float | None, float]:
    """Top and bottom lines, membrane mask, depth from the top line, true thickness and scored
    span (px).

    The bottom line is the top curve shifted by ``thickness_px`` along its local normal
    (resampled per column), or the frame's last row (``thickness_px=None``: not in view). A
    pixel is membrane when its centre lies between the lines. Depth: exact distance of each
    pixel centre to the top curve (:func:`distance_to_line`). Thickness: median over columns of
    the distance of the bottom line to the top curve. Span: the thickness, or the median depth of
    the frame's last row.
    """
    rows, cols = shape
    x = np.arange(cols, dtype=np.float64)
    top, slope, _ = _curve(x, coeffs)
    if thickness_px is None:
        bottom = np.full(cols, rows - 1.0)
    else:
        norm = np.sqrt(1 + slope**2)
        bottom = np.interp(x, x - thickness_px * slope / norm, top + thickness_px / norm)
    rr = np.arange(rows, dtype=np.float64)[:, None]
    band = (rr >= top[None, :]) & (rr <= bottom[None, :])
    depth = np.full(shape, np.nan)
    r_idx, c_idx = np.nonzero(band)
    depth[r_idx, c_idx] = distance_to_line(r_idx, c_idx, coeffs)
    if thickness_px is not None:
        thickness = float(np.median(distance_to_line(bottom, x, coeffs)))
        span = thickness
    else:
        thickness = None
        span = float(np.nanmedian(depth[rows - 1]))
    return top, bottom, band, depth, thickness, span


# ------------------------------------------------------------------------------------------------
# contrast models


def render_se(pore: np.ndarray, material: np.ndarray, rng: np.random.Generator, *,
              face: float = 0.42, cavity_depth_px: tuple[float, float] = (2.0, 14.0),
              wall_len_px: float = 2.5, escape_px: float = 6.0, edge_gain: float = 0.55,
              edge_len_px: float = 1.2, detector_deg: float = 70.0, grain: float = 0.05
              ) -> np.ndarray:
    """Secondary-electron signal (float64, ~[0, 1.5]) of a section face with pore cavities.

    See the module docstring. Returns the signal inside ``material``; outside it is 0 (the
    caller paints the background).
    """
    pore = pore & material
    d_in = _edt(pore)
    lab, n = ndi.label(pore)
    depth_of_pore = np.concatenate([[0.0], rng.uniform(*cavity_depth_px, n)])
    height = np.where(pore, -depth_of_pore[lab] * (1 - np.exp(-(d_in - 0.5) / wall_len_px)), 0.0)
    hs = ndi.gaussian_filter(height, 0.7)
    gy, gx = np.gradient(hs)
    secant = np.minimum(np.sqrt(1 + gx**2 + gy**2), 4.0)
    th = math.radians(detector_deg)
    # surfaces whose normal leans towards the detector (height falling away from it) are brighter
    toward = -(gx * math.cos(th) - gy * math.sin(th))
    facing = 1 + 0.35 * np.tanh(toward)
    escape = np.exp(height / escape_px)  # height <= 0
    tex = ndi.gaussian_filter(rng.standard_normal(pore.shape), 1.5)
    tex /= tex.std() + 1e-12
    signal = face * (1 + grain * tex) * secant * facing * escape
    # edge effect on the polymer side of pore edges and of the material outline
    polymer = material & ~pore
    d_poly = _edt(~pore)  # polymer pixels: distance to the nearest pore pixel
    d_out = _edt(material)  # material pixels: distance to the nearest background pixel
    glow = np.exp(-(np.minimum(d_poly, d_out) - 1.0) / edge_len_px)
    signal = signal + edge_gain * face * glow * polymer
    return np.where(material, signal, 0.0)


#: Where :func:`render_rim_position` puts the rim relative to the truth boundary.
RIM_POSITIONS = ("centred", "outside", "inside")


def render_rim_position(pore: np.ndarray, rng: np.random.Generator, *, style: str = "dark",
                        position: str = "outside", rim_width_px: float = 1.5,
                        rim_level: float = 0.25, blur_px: float = 0.7, shot_noise: float = 0.04
                        ) -> np.ndarray:
    """A pore field (the whole frame membrane) with its bright rim at a chosen place (float32).

    Where an SEM's bright pore rim lies relative to the pore's edge depends on the edge's shape:
    an edge glow on the polymer starting at the edge (``outside``), a bright wall sloping down
    into the pore (``inside``), or both in about equal parts (``centred``, how
    :func:`pipeline.synthetic.render` draws it). The rim is ``rim_level * exp(-(d / w)**2)`` with
    ``d`` the distance (px) from the first pixel on its side of the boundary (``outside``,
    ``inside``) or from the boundary itself (``centred``: half a pixel less than the pixel
    centre distance). ``style`` ``dark``: pores 0.12, polymer 0.6 with a fine texture;
    ``topographic``: polymer face 0.42, floors darkening to 0.55 of it towards the pore middles.
    Gaussian blur ``blur_px``, then noise of sd ``shot_noise * sqrt(I)``.
    """
    if position not in RIM_POSITIONS:
        raise ValueError(f"position must be one of {RIM_POSITIONS}, got {position!r}")
    pore = np.asarray(pore, bool)
    d_poly = _edt(~pore)  # polymer pixels: distance to the nearest pore pixel
    d_pore = _edt(pore)
    if position == "outside":
        d = np.where(pore, np.inf, d_poly - 1.0)
    elif position == "inside":
        d = np.where(pore, d_pore - 1.0, np.inf)
    else:
        d = np.where(pore, d_pore, d_poly) - 0.5
    rim = np.exp(-((d / max(rim_width_px, 1e-3)) ** 2))
    grain = ndi.gaussian_filter(rng.standard_normal(pore.shape), 1.0)
    grain /= grain.std() + 1e-12
    if style == "dark":
        img = np.where(pore, 0.12, 0.6 * (1 + 0.04 * grain))
    else:
        floor = 0.42 * (1 - 0.45 * (1 - np.exp(-d_pore / (2.5 * rim_width_px))))
        img = np.where(pore, floor, 0.42 * (1 + 0.04 * grain))
    img = ndi.gaussian_filter(img + rim_level * rim, blur_px)
    img = img + shot_noise * np.sqrt(np.clip(img, 0, None)) * rng.standard_normal(img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def render_bse(pore: np.ndarray, material: np.ndarray, rng: np.random.Generator, *,
               polymer: float = 0.72, pore_level: float = 0.10, see_through: float = 0.18,
               grain: float = 0.05) -> np.ndarray:
    """Material-contrast signal (float64): bright polymer, dark pores showing a dim blurred
    deeper network, before point-spread function, noise and gamma."""
    shape = pore.shape
    deeper = ndi.gaussian_filter(rng.standard_normal(shape), 3.0)
    deeper = ndi.gaussian_filter((deeper > 0).astype(np.float64), 2.0)
    tex = ndi.gaussian_filter(rng.standard_normal(shape), 1.0)
    tex /= tex.std() + 1e-12
    zone = ndi.gaussian_filter(rng.standard_normal(shape), 40.0)
    zone /= zone.std() + 1e-12
    poly = polymer * (1 + grain * tex + 0.04 * zone)
    signal = np.where(pore, pore_level + see_through * deeper, poly)
    return np.where(material, signal, 0.0)


def psf_blur(img: np.ndarray, core_px: float, halo_px: float, halo_weight: float) -> np.ndarray:
    """Two-component beam point-spread function: Gaussian core plus a wide Gaussian halo."""
    return ((1 - halo_weight) * ndi.gaussian_filter(img, core_px)
            + halo_weight * ndi.gaussian_filter(img, halo_px))


# ------------------------------------------------------------------------------------------------
# frame, noise, data bars


def background(shape: tuple[int, int], top: np.ndarray, bottom: np.ndarray, bottom_in_view: bool,
               rng: np.random.Generator, *, kind: str, charging_rows: int = 200,
               gap_px: int = 10) -> np.ndarray:
    """Background signal everywhere (the membrane is painted over it).

    ``dark``: vacuum at ~0.03 with a faint slow variation. ``charging``: the ``charging_rows``
    rows above the top surface (less a dark ``gap_px`` gap) hold a saturated band (signal 1.25,
    clipped to white later) whose lower edge fades over a few rows; the rest is vacuum.
    """
    rows, cols = shape
    rr = np.arange(rows, dtype=np.float64)[:, None]
    slow = ndi.gaussian_filter(rng.standard_normal((rows // 16 + 2, cols // 16 + 2)), 2)
    slow = cv2.resize(slow, (cols, rows), interpolation=cv2.INTER_LINEAR)
    out = 0.03 * (1 + 0.3 * slow / (slow.std() + 1e-9))
    if kind == "charging":
        edge = top[None, :] - gap_px
        start = np.maximum(edge - charging_rows, 0)
        fade = np.clip((edge - rr) / 4.0, 0, 1)
        inside = (rr >= start) & (rr < edge + 4)
        out = np.where(inside, np.maximum(out, 1.25 * fade + 0.03 * (1 - fade)), out)
    elif kind != "dark":
        raise ValueError(f"background kind must be dark or charging, got {kind!r}")
    del bottom, bottom_in_view
    return out


def acquire(signal: np.ndarray, rng: np.random.Generator, *, dose: float, read_noise: float,
            jitter_px: float, line_offsets: float, vignetting: float, drift: float,
            gamma: float = 1.0) -> np.ndarray:
    """Detector: vignetting and drift, line jitter, Poisson counting noise at ``dose`` electrons
    per unit signal, Gaussian read noise, scan-line offsets, gamma; returns [0, 1] float."""
    rows, cols = signal.shape
    yy = np.linspace(-1, 1, rows)[:, None]
    xx = np.linspace(-1, 1, cols)[None, :]
    a = rng.uniform(0, 2 * math.pi)
    gain = (1 - vignetting * (xx**2 + yy**2) / 2) * (1 + drift * (math.cos(a) * xx
                                                                  + math.sin(a) * yy) / 2)
    s = np.clip(signal * gain, 0, None)
    if jitter_px:
        shift = ndi.gaussian_filter1d(rng.standard_normal(rows), 1.5)
        shift *= jitter_px / (shift.std() + 1e-12)
        cc = np.arange(cols, dtype=np.float64)[None, :] - shift[:, None]
        r_idx = np.broadcast_to(np.arange(rows, dtype=np.float64)[:, None], (rows, cols))
        s = ndi.map_coordinates(s, [r_idx, cc], order=1, mode="nearest")
    counts = rng.poisson(s * dose)
    img = counts / dose + read_noise * rng.standard_normal(s.shape)
    img = img + line_offsets * rng.standard_normal(rows)[:, None]
    img = np.clip(img, 0, 1)
    if gamma != 1.0:
        img = img**gamma
    return img


def _put_text(img: np.ndarray, text: str, org: tuple[int, int], height_px: int,
              value: int) -> None:
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, height_px, 1)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, int(value),
                max(1, height_px // 10), cv2.LINE_AA)


def _nice_length_um(target_um: float) -> float:
    exp = 10 ** math.floor(math.log10(target_um))
    return max(m * exp for m in (1, 2, 5) if m * exp <= target_um * 1.01)


def hitachi_bar(cols: int, bar_rows: int, pixel_size_um: float) -> np.ndarray:
    """Black strip with white text and an 11-tick ruler (10 divisions) at the right."""
    bar = np.zeros((bar_rows, cols), np.uint8)
    h = max(8, int(bar_rows * 0.4))
    base = int(bar_rows * 0.75)
    _put_text(bar, "S-4800 3.0kV 8.2mm x5.00k SE(U)", (6, base), h, 255)
    length_um = _nice_length_um(0.25 * cols * pixel_size_um)
    length_px = length_um / pixel_size_um
    x1 = cols - 10
    x0 = x1 - length_px
    y = int(bar_rows * 0.3)
    for k in range(11):
        x = int(round(x0 + k * length_px / 10))
        bar[max(0, y - 4):y + 1, max(0, x - 1):x + 1] = 255
    bar[y:y + 2, int(x0):x1] = 255
    unit = f"{length_um:g}um"
    _put_text(bar, unit, (int(x0 + length_px / 2 - 2 * h), base), h, 255)
    return bar


def zeiss_panel(cols: int, panel_rows: int, pixel_size_um: float) -> np.ndarray:
    """White panel with black text fields and a black scale bar (drawn over the frame)."""
    panel = np.full((panel_rows, cols), 245, np.uint8)
    panel[0, :] = 0
    h = max(8, int(panel_rows * 0.28))
    length_um = _nice_length_um(0.15 * cols * pixel_size_um)
    length_px = int(round(length_um / pixel_size_um))
    y = int(panel_rows * 0.35)
    panel[y:y + max(2, panel_rows // 12), 10:10 + length_px] = 0
    _put_text(panel, f"{length_um:g} um", (10, int(panel_rows * 0.85)), h, 0)
    x = 10 + length_px + 30
    for text in ("EHT = 3.00 kV", "WD = 6.1 mm", "Signal A = InLens", "Mag = 20.00 K X"):
        if x + 8 * h > cols:
            break
        _put_text(panel, text, (x, int(panel_rows * 0.45)), h, 0)
        x += int(len(text) * h * 0.62) + 20
    return panel


# ------------------------------------------------------------------------------------------------
# held-out micrographs


@dataclass
class HeldOutImage:
    """A held-out micrograph (full file frame, uint8) and its truth."""

    name: str
    image: np.ndarray
    truth: Truth
    pixel_size_um: float
    file_format: str
    databar: str
    sidecar_rows: bool = True
    jpeg_quality: int | None = None
    params: dict = field(default_factory=dict)

    def save(self, directory: str | Path) -> tuple[Path, float | None]:
        """Write the file (and a Hitachi sidecar); return its path and the pixel size to pass to
        :func:`pipeline.analyze` (None when the file's sidecar holds it)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.{self.file_format}"
        if self.file_format in ("jpg", "jpeg"):
            ok = cv2.imwrite(str(path), self.image,
                             [cv2.IMWRITE_JPEG_QUALITY, int(self.jpeg_quality or 80)])
        else:
            ok = cv2.imwrite(str(path), self.image)
        if not ok:
            raise OSError(f"could not write {path}")
        if self.databar == "hitachi":
            rows, cols = self.truth.pore_mask.shape
            lines = ["[SemImageFile]", "InstructName=S-4800", f"ImageName={path.name}",
                     f"PixelSize={self.pixel_size_um * 1000:.4f}", "SignalName=SE(U)"]
            if self.sidecar_rows:
                lines.insert(3, f"DataSize={cols}x{rows}")
            path.with_suffix(".txt").write_text("\r\n".join(lines) + "\r\n")
            return path, None
        return path, self.pixel_size_um


#: The held-out kinds. Each names its geometry, contrast, background, surfaces, data bar, file
#: format and pixel size (sizes are in px; the pixel sizes span 0.01-0.5 µm/px).
# ------------------------------------------------------------------------------------------------
# labels burned into the frame (scale bars, text boxes)

#: What :func:`burn_label` draws: ``box`` a filled box holding the text and a bar (instrument
#: overlays, ImageJ's scale bar with a background); ``bar`` a bar with its text above it and no box
#: (ImageJ's default).
LABEL_STYLES = ("box", "bar")


def burn_label(image: np.ndarray, rng: np.random.Generator, *, style: str = "box",
               corner: str = "br", scale: float = 1.0, box_level: int = 0,
               ink: int | None = None, font: str = "pil", origin: tuple[int, int] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Burn a scale-bar label into an 8-bit micrograph (a copy), in one corner.

    ``corner`` is two letters: ``t``/``b`` and ``l``/``r``. ``scale`` scales the text height
    (16 px at 1), the bar and the paddings; ``font`` ``pil`` draws antialiased FreeType text
    (Pillow's bundled font), ``hershey`` OpenCV's stroke font. ``ink`` defaults to the
    opposite of ``box_level``. ``origin`` (row, col) puts the label's top-left corner there
    instead of in the corner. Returns the image and the mask of the pixels the label changed or
    covers (the box, or the text and bar strokes).
    """
    from PIL import Image, ImageDraw, ImageFont

    if style not in LABEL_STYLES:
        raise ValueError(f"style must be one of {LABEL_STYLES}")
    ink = (255 if box_level < 128 else 0) if ink is None else int(ink)
    rows, cols = image.shape
    text = f"{rng.choice([1, 2, 5, 10, 20, 50])} um"
    text_px = max(8, int(round(16 * scale)))
    bar_len = int(rng.integers(60, 160) * scale)
    bar_h = max(3, int(round(5 * scale)))
    pad = max(2, int(round(6 * scale)))
    if font == "pil":
        face = ImageFont.load_default(size=text_px)
        x0, y0, x1, y1 = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=face)
        tw, th = x1 - x0, y1 - y0
    else:
        fs = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, text_px, 1)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, max(1, text_px // 10))
    w = max(bar_len, tw) + 2 * pad
    h = th + bar_h + 3 * pad
    margin = int(rng.integers(0, 20))
    r0 = rows - h - margin if corner[0] == "b" else margin
    c0 = cols - w - margin if corner[1] == "r" else margin
    if origin is not None:
        r0, c0 = origin
    out = image.copy()
    if style == "box":
        out[r0:r0 + h, c0:c0 + w] = box_level
    tx, ty = c0 + (w - tw) // 2, r0 + pad
    if font == "pil":
        pic = Image.fromarray(out)
        ImageDraw.Draw(pic).text((tx - x0, ty - y0), text, fill=ink, font=face)
        out = np.asarray(pic).copy()
    else:
        cv2.putText(out, text, (tx, ty + th), cv2.FONT_HERSHEY_SIMPLEX, fs, ink,
                    max(1, text_px // 10), cv2.LINE_AA)
    by, bx = r0 + 2 * pad + th, c0 + (w - bar_len) // 2
    out[by:by + bar_h, bx:bx + bar_len] = ink
    drawn = out != image
    if style == "box":
        drawn[r0:r0 + h, c0:c0 + w] = True
    return out, drawn


HELDOUT_KINDS: dict[str, dict[str, Any]] = {
    "foam-se-charging-both-hitachi": dict(
        geometry="foam", contrast="se", background="charging", surfaces="both",
        databar="hitachi", file_format="bmp", size_px=22.0, porosity=0.75, pixel_size_um=0.2),
    "ellipses-bse-gradient-top-zeiss": dict(
        geometry="ellipses", contrast="bse", gamma=0.6, background="dark", surfaces="top",
        databar="zeiss", file_format="png", size_px=(6.0, 20.0), porosity=0.45,
        tilt_deg=4.0, pixel_size_um=0.05),
    "stretched-se-jpeg-both-hitachi": dict(
        geometry="stretched", contrast="se", background="dark", surfaces="both",
        databar="hitachi", file_format="jpg", jpeg_quality=75, sidecar_rows=False,
        size_px=3.0, porosity=0.5, vignetting=0.3, pixel_size_um=0.02),
    "sponge-se-minimum-top-charging-zeiss": dict(
        geometry="sponge_minimum", contrast="se", background="charging", surfaces="top",
        databar="zeiss", file_format="tif", size_px=(6.0, 22.0), porosity=0.5, tilt_deg=-3.0,
        bow_px=6.0, gap_px=0, pixel_size_um=0.01),
    "foam-bse-gradient-both-tilt-hitachi": dict(
        geometry="foam", contrast="bse", gamma=1.6, background="dark", surfaces="both",
        databar="hitachi", file_format="bmp", size_px=(14.0, 34.0), porosity=0.7,
        tilt_deg=6.0, bow_px=8.0, pixel_size_um=0.5),
    "nips-se-top-charging-zeiss": dict(
        geometry="nips", contrast="se", background="charging", surfaces="top",
        databar="zeiss", file_format="png", size_px=9.0, porosity=0.4, skin_px=5.0,
        gap_px=15, pixel_size_um=0.1),
}


def _size_map(size: float | tuple[float, float], depth: np.ndarray, span: float,
              geometry: str) -> np.ndarray | float:
    """Designed size per pixel from depth: scalar, log-linear gradient, or (``*_minimum``) a
    V in log size with its minimum at 30 % of the span."""
    if np.isscalar(size):
        return float(size)
    lo, hi = size
    t = np.clip(np.nan_to_num(depth, nan=0.0) / span, 0, 1)
    if geometry.endswith("minimum"):
        t = np.clip(np.abs(t - 0.3) / 0.7 * 1.6, 0, 1)
    return np.exp(np.log(lo) + t * (np.log(hi) - np.log(lo)))


def heldout_image(kind: str, seed: int, shape: tuple[int, int] = (512, 768),
                  pixel_size_um: float | None = None,
                  spec: dict[str, Any] | None = None) -> HeldOutImage:
    """The held-out micrograph of ``kind`` (a key of :data:`HELDOUT_KINDS`) for ``seed``.

    ``spec``, when given, is used instead of ``HELDOUT_KINDS[kind]`` (the same keys; ``kind``
    then only names the image).

    Sizes are designed in px; ``pixel_size_um`` (default: the kind's, 0.01-0.5 µm/px, so that
    parameters in µm are exercised over a wide range of scales) only sets the calibration.

    ``shape`` is the micrograph without the data bar (a Hitachi strip is appended below it; a
    Zeiss panel is drawn over extra rows below it, so the truth keeps ``shape`` either way).
    """
    from pipeline.size import local_thickness

    spec = dict(HELDOUT_KINDS[kind] if spec is None else spec)
    if pixel_size_um is None:
        pixel_size_um = float(spec.get("pixel_size_um", 0.05))
    rng = np.random.default_rng([seed, 104729])
    rows, cols = shape
    both = spec["surfaces"] == "both"
    tilt = float(spec.get("tilt_deg", 0.0)) * rng.uniform(0.7, 1.3)
    bow = float(spec.get("bow_px", 0.0)) * rng.uniform(0.5, 1.0)
    slope_room = abs(math.tan(math.radians(tilt))) * cols / 2 + bow
    if both:
        thickness = rows * rng.uniform(0.5, 0.6)
        top_row = (rows - thickness / math.cos(math.radians(tilt))) / 2 + rng.uniform(-10, 10)
    else:
        thickness = None
        top_row = rows * rng.uniform(0.25, 0.4) + slope_room
    if spec["background"] == "charging":
        # the band above needs 100-300 rows: the surface must be low enough in the frame
        top_row = max(top_row, 120.0 + slope_room + float(spec.get("gap_px", 10)))
    top, bottom, band, depth, t_px, span = band_truth(
        shape, line_coeffs(shape, top_row, tilt, bow), thickness)
    if top.min() < 2 or (both and bottom.max() > rows - 3):
        raise ValueError(f"{kind}: the membrane leaves the frame (seed {seed})")

    geometry = spec["geometry"]
    size = _size_map(spec["size_px"], depth, span, geometry)
    por = float(spec["porosity"])
    if geometry == "foam":
        cell = size if np.isscalar(size) else np.where(band, size, np.nanmedian(size))
        pores = voronoi_foam(shape, cell, 1 - math.sqrt(por), rng)
    elif geometry == "ellipses":
        pores = ellipse_pores(shape, size, por, rng)
    elif geometry == "stretched":
        pores = stretched_field(shape, float(size), 3.0, por, rng)
    elif geometry == "sponge_minimum":
        from pipeline.synthetic import pore_field

        pores = pore_field(shape, size, por, morphology="sponge", seed=rng)
    elif geometry == "nips":
        pores = nips_fingers(shape, np.nan_to_num(depth, nan=-1.0), band, span,
                             float(spec["skin_px"]), float(size), por, rng)
    else:
        raise ValueError(f"unknown geometry {geometry!r}")
    pores &= band
    skin = float(spec.get("skin_px", 0.0))
    if skin:
        pores &= np.nan_to_num(depth, nan=0.0) > skin

    # render the frame: for a Zeiss panel, extra rows below that the panel covers
    panel_rows = max(24, int(round(0.08 * rows))) if spec["databar"] == "zeiss" else 0
    full = (rows + panel_rows, cols)
    band_f = np.vstack([band, np.full((panel_rows, cols), not both)])  # band runs on if open
    pores_f = np.vstack([pores, np.zeros((panel_rows, cols), bool)])
    if spec["contrast"] == "se":
        signal = render_se(pores_f, band_f, rng, face=rng.uniform(0.35, 0.5),
                           detector_deg=rng.uniform(0, 360))
        core, halo, w = 0.8, 4.0, 0.1
    else:
        signal = render_bse(pores_f, band_f, rng)
        core, halo, w = 1.0, 6.0, 0.2
    bg = background(full, top, bottom, both, rng, kind=spec["background"],
                    charging_rows=int(rng.uniform(100, 300)), gap_px=int(spec.get("gap_px", 10)))
    signal = np.where(band_f, signal, bg)
    signal = psf_blur(signal, core, halo, w)
    img = acquire(signal, rng, dose=float(spec.get("dose", 1.0)) * rng.uniform(60, 150),
                  read_noise=0.01,
                  jitter_px=0.3, line_offsets=0.012, vignetting=float(spec.get("vignetting", 0.1)),
                  drift=0.15, gamma=float(spec.get("gamma", 1.0)))
    image8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    if spec["databar"] == "hitachi":
        bar_rows = max(24, int(round(rows / 14)))
        image8 = np.vstack([image8, hitachi_bar(cols, bar_rows, pixel_size_um)])
        databar_rows = bar_rows
    else:
        image8[rows:] = zeiss_panel(cols, panel_rows, pixel_size_um)
        databar_rows = panel_rows

    truth = Truth(
        pore_mask=pores, membrane_mask=band, local_thickness_px=local_thickness(pores),
        depth_px=np.where(band, depth, np.nan).astype(np.float32), top_px=top,
        bottom_px=bottom, surfaces_in_view=("top", "bottom") if both else ("top",),
        reference_surface="top", thickness_px=t_px, span_px=span,
        pixel_size_um=pixel_size_um, databar_rows=databar_rows)
    return HeldOutImage(
        name=f"{kind}-s{seed}", image=image8, truth=truth, pixel_size_um=pixel_size_um,
        file_format=spec["file_format"], databar=spec["databar"],
        sidecar_rows=bool(spec.get("sidecar_rows", True)), jpeg_quality=spec.get("jpeg_quality"),
        params={"kind": kind, "seed": seed, "tilt_deg": tilt, "bow_px": bow, **spec})
