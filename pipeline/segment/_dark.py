"""The ``dark`` (material contrast) method: a local class-midpoint threshold, band by band, with
the bright-rim correction and Wiener deconvolution of blurred images (see :mod:`pipeline.segment`).
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np
from scipy import ndimage as ndi
from scipy.special import ndtr
from skimage.morphology import skeletonize

from ..size import local_thickness
from ._common import (
    _bands,
    _corrected,
    _deblur_halo_px,
    _gaussian,
    _halo_px,
    _otsu,
    _sample,
    edge_blur_px,
    estimate_noise_sigma,
    hydraulic_diameter_px,
    sample_windows,
    scan_line_offsets,
    wiener_deblur,
)

# ------------------------------------------------------------------------------------------------
# dark (material contrast) method: local class-midpoint threshold, band-wise


@numba.njit(cache=True, nogil=True)
def _dark_pass(s, reg, thr_coarse, f, t_const, use_const, write, mask):  # pragma: no cover
    """One pass of the local class-midpoint threshold: pore = s < thr (bilinear from the coarse
    threshold grid, or ``t_const``); returns per-block sums (pore sum, pore count, polymer sum,
    polymer count, pixels) and, with ``write``, stores the decision in ``mask``."""
    rows, cols = s.shape
    gr = (rows + f - 1) // f
    gc = (cols + f - 1) // f
    sums = np.zeros((5, gr, gc))
    x0 = np.empty(cols, np.int64)
    x1 = np.empty(cols, np.int64)
    wx = np.empty(cols, np.float32)
    tg_r, tg_c = thr_coarse.shape
    for c in range(cols):
        x = (c + 0.5) / f - 0.5
        x = min(max(x, 0.0), tg_c - 1.0)
        xi = min(int(math.floor(x)), tg_c - 1)
        x0[c] = xi
        x1[c] = min(xi + 1, tg_c - 1)
        wx[c] = x - xi
    for r in range(rows):
        y = (r + 0.5) / f - 0.5
        y = min(max(y, 0.0), tg_r - 1.0)
        yi = min(int(math.floor(y)), tg_r - 1)
        y1 = min(yi + 1, tg_r - 1)
        wy = np.float32(y - yi)
        bi = r // f
        for c in range(cols):
            if not reg[r, c]:
                if write:
                    mask[r, c] = False
                continue
            if use_const:
                t = t_const
            else:
                a = thr_coarse[yi, x0[c]] + wx[c] * (thr_coarse[yi, x1[c]] - thr_coarse[yi, x0[c]])
                b = thr_coarse[y1, x0[c]] + wx[c] * (thr_coarse[y1, x1[c]] - thr_coarse[y1, x0[c]])
                t = a + wy * (b - a)
            v = s[r, c]
            bj = c // f
            sums[4, bi, bj] += 1.0
            if v < t:
                sums[0, bi, bj] += v
                sums[1, bi, bj] += 1.0
                if write:
                    mask[r, c] = True
            else:
                sums[2, bi, bj] += v
                sums[3, bi, bj] += 1.0
                if write:
                    mask[r, c] = False
    return sums


def _coarse_class_mean(vsum: np.ndarray, wsum: np.ndarray, npix: np.ndarray, sigma: float,
                       fill: float) -> np.ndarray:
    """Normalised convolution ``G*(v w) / G*w`` on the coarse grid (block means, Gaussian of
    ``sigma`` cells); where the weight is nearly absent it relaxes to ``fill``."""
    n = np.maximum(npix, 1.0)
    vw = (vsum / n).astype(np.float32)
    w = (wsum / n).astype(np.float32)
    num = cv2.GaussianBlur(vw, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(w, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    eps = 0.02
    return ((num + eps * fill) / (den + eps)).astype(np.float32)


def _dark_sample_scales(sample_img: np.ndarray, sample_reg: np.ndarray, noise: float,
                        smoothing_px: float | None) -> tuple[float, float, float, float]:
    """Smoothing (px), Otsu threshold and typical feature width (px) of the dark method, from
    the image sample (windows of the scan-line corrected image); also the class contrast."""
    vals_reg = sample_reg
    pre = _gaussian(sample_img, 1.0)
    v = pre[vals_reg]
    t_pre = _otsu(v)
    hi, lo = v[v >= t_pre], v[v < t_pre]
    contrast = float(hi.mean() - lo.mean()) if hi.size and lo.size else 0.0
    if smoothing_px is None:
        pre_mask = (pre < t_pre) & vals_reg
        finest = min(hydraulic_diameter_px(pre_mask, vals_reg),
                     hydraulic_diameter_px(vals_reg & ~pre_mask, vals_reg))
        smoothing_px = float(np.clip(min(2.3 * noise / max(contrast, 1e-6), finest / 8),
                                     0.5, 2.0))
    s = _gaussian(sample_img, smoothing_px)
    t0 = _otsu(s[vals_reg])
    mask = (s < t0) & vals_reg
    typical = max(hydraulic_diameter_px(mask, vals_reg),
                  hydraulic_diameter_px(vals_reg & ~mask, vals_reg), 2.0)
    return float(smoothing_px), t0, float(typical), contrast


#: Signed distances (px) from the threshold edge over which the edge profile is pooled: pore side,
#: polymer side.
RIM_PROFILE_PX = (5, 7)
#: Largest threshold shift of the rim correction, as a fraction of the local class contrast. The
#: raised threshold also stays ``RIM_NOISE_MARGIN`` noise sigmas (of the smoothed image) below
#: the polymer level, 0.5 of the contrast above the midpoint: it moves edges and never turns a
#: polymer face into pore. (A fixed cap of 0.3 left the strongest rims, 0.6-0.9 of the contrast,
#: half corrected: on 7 random phantoms Dice 0.916-0.953; with these caps 0.926-0.970.)
RIM_MAX_FRACTION = 0.45
RIM_NOISE_MARGIN = 3.0
#: Rims whose fitted height at the edge is at least this fraction of the class contrast put the
#: edge's grey level well above the polymer's, out of reach of a threshold (whose shift is capped
#: at ``RIM_MAX_FRACTION``): there the pores of the midpoint mask are grown outward by the fitted
#: edge offset instead (:func:`_grow_by_edge_offset`). Chosen among 0.5 / 0.65 / 0.75 on the 27
#: dark random phantoms of ``pipeline.synthetic.random_phantom`` seeds 0-47 (with a first version
#: of the growth: mean Dice +0.0035 / +0.0041 / +0.0022, images missing a target 6 -> 2 / 2 / 4)
#: and checked on the 33 of seeds 48-129 (+0.0038 / +0.0055 / +0.0009). As shipped (2026-12-05):
#: seeds 0-47 Dice +0.0045 (worst -0.014), porosity MAE -0.008, size error -0.006, missing a
#: target 6 -> 2; seeds 48-129 Dice +0.0065 (worst -0.010; seed 66 0.83 -> 0.97), porosity MAE
#: -0.0075, size error -0.001, missing 7 -> 6; benchmarks/ACCURACY.md's kinds (rims below it)
#: unchanged.
RIM_GROW_ABOVE = 0.65
#: A rim whose fitted centre lies more than this many px outside the corrected edges, with a
#: fit whose residual is below ``RIM_OFFSET_RSS_RATIO`` times that of a rim centred on the edge,
#: lies on the polymer side of the edge: the correction (threshold raise or growth) is redone as a
#: threshold raise by the level the rim adds at the edge (:func:`_rim_correction`). On dark
#: renderings whose rim lies wholly outside the pores (tests/heldout.py ``render_rim_position``;
#: blur 0.7 px, rims 1-2.5 px wide, 0.15-0.3 above the polymer) such fits read
#: offsets 0.5-1.6 px and ratios 0.004-0.08; on rims centred on the edge (pipeline.synthetic's)
#: the offsets read -2.1 to +0.8 px and the ratios 0.13-1.0, and none of 144 such renderings at
#: shot noise 0.1-0.45 (rims 0.1-0.5, 1-2.5 px wide, blur 0.7-1.5 px) passed the check.
RIM_OUTSIDE_MIN_PX = 0.4
RIM_OFFSET_RSS_RATIO = 0.2
#: ... and whose centre lies at most this many of its fitted widths outside: an edge glow starts
#: AT the edge, so its centre lies about half its width out (plus the blur). A rim fitted farther
#: out does not touch the edge: across a wall thinner than the rim band it is the rim of the pore
#: on the other side. Measured with the free fit's own width: the 40 renderings of
#: ``render_rim_position(position="outside")`` that passed the check above (blur 0.7-1.6 px,
#: rims 1-2.5 px, 0.15-0.5 above the polymer) read 0.26-1.15 widths; random phantom 587 (closed
#: cells with 1-2 px walls, rims 0.8 of the contrast, blur 1.8 px) 2.2 px at a width of 0.8 px
#: (2.7 widths), where the check undid the rim growth: porosity 0.59 for a true 0.78, 0.76 with
#: the growth kept.
RIM_OUTSIDE_MAX_WIDTHS = 1.5


def edge_profile(smoothed: np.ndarray, pore_mask: np.ndarray, region: np.ndarray,
                 inside_px: int = RIM_PROFILE_PX[0], outside_px: int = RIM_PROFILE_PX[1]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean grey level against the signed distance to the edge of ``pore_mask``.

    Parameters
    ----------
    smoothed : ndarray of float, shape (rows, cols)
        The image the mask was thresholded from.
    pore_mask, region : ndarray of bool, same shape
    inside_px, outside_px : int
        Pixels at distance 1 .. ``inside_px`` inside the pores and 1 .. ``outside_px`` outside
        them (Euclidean distance to the other phase, rounded) are pooled; pixels that close to
        the region's edge are left out.

    Returns
    -------
    x_px : ndarray of float
        Position of each distance class relative to the edge (px): -0.5 for the pore pixels
        touching the polymer, +0.5 for the polymer pixels touching the pores, and so on.
    mean, count : ndarray
        Mean grey level and number of pixels of each class (classes without pixels dropped).
    """
    rows, cols = pore_mask.shape
    k = max(inside_px, outside_px)
    n_bins = inside_px + outside_px
    sums = np.zeros(n_bins)
    counts = np.zeros(n_bins)
    for r0, r1, a0, a1 in _bands(rows, cols, k + 2):
        reg = region[a0:a1]
        pm = pore_mask[a0:a1] & reg
        din = cv2.distanceTransform(pm.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        dout = cv2.distanceTransform((reg & ~pm).astype(np.uint8), cv2.DIST_L2,
                                     cv2.DIST_MASK_PRECISE)
        dreg = cv2.distanceTransform(reg.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        core = slice(r0 - a0, r1 - a0)
        sd = np.rint(np.where(pm, -din, dout)[core]).astype(np.int64)
        ok = reg[core] & (dreg[core] > k + 1) & (sd >= -inside_px) & (sd <= outside_px) & (sd != 0)
        idx = np.where(sd < 0, sd + inside_px, sd + inside_px - 1)[ok]
        sums += np.bincount(idx, smoothed[r0:r1][ok].astype(np.float64), n_bins)
        counts += np.bincount(idx, None, n_bins)
    dist = np.concatenate([np.arange(-inside_px, 0), np.arange(1, outside_px + 1)]).astype(float)
    keep = counts > 0
    x = dist - 0.5 * np.sign(dist)
    return x[keep], sums[keep] / np.maximum(counts[keep], 1), counts[keep]


def _edge_model(x, floor, contrast, edge, blur, rim, rim_width, offset=0.0):
    """A blurred step (pore level ``floor`` to ``floor + contrast`` at ``edge``) plus a rim of
    height ``rim`` and intrinsic width ``rim_width`` centred ``offset`` px outside the edge
    (0: on it), blurred by the same Gaussian (so the rim seen is never narrower than the blur)."""
    width = np.sqrt(blur ** 2 + rim_width ** 2)
    return (floor + contrast * ndtr((x - edge) / blur)
            + rim * (blur / width) * np.exp(-0.5 * ((x - edge - offset) / width) ** 2))


def fit_rim_profile(x_px: np.ndarray, mean: np.ndarray, *, free_offset: bool = False
                    ) -> dict | None:
    """Fit :func:`_edge_model` to an edge profile (:func:`edge_profile`).

    Parameters
    ----------
    x_px, mean : ndarray of float
        Positions (px, relative to the threshold edge; positive on the polymer side) and mean
        grey levels, from :func:`edge_profile`.
    free_offset : bool
        Also fit where the rim lies relative to the edge (``rim_offset_px``, within +-2.5 px);
        default: centred on the edge, as :func:`pipeline.synthetic.render` draws it.

    Returns
    -------
    dict or None
        ``floor``, ``contrast``, ``edge_px`` (edge position relative to the threshold edge),
        ``blur_px``, ``rim_px`` (the rim's width as seen, px), ``rim_fraction`` (the height of the
        rim as seen over the contrast), ``rim_offset_px`` (0 unless ``free_offset``),
        ``edge_level_fraction`` (how far the rim lifts the level AT the edge, over the contrast:
        ``rim_fraction`` for a centred rim) and ``rss`` (residual sum of squares); None when the
        profile is too short or the fit fails.
    """
    from scipy.optimize import curve_fit

    if x_px.size < 8:
        return None
    f0, p0 = float(mean[0]), float(mean[-1])
    c0 = p0 - f0
    if not c0 > 0:
        return None
    start = [f0, c0, 0.0, 1.0, 0.1 * c0, 1.0]
    low = [f0 - c0, 0.1 * c0, -3.0, 0.3, 0.0, 0.0]
    high = [f0 + c0, 3.0 * c0, 3.0, 5.0, 2.0 * c0, 4.0]
    if free_offset:
        start, low, high = start + [0.0], low + [-2.5], high + [2.5]
    try:
        par, _ = curve_fit(_edge_model, x_px, mean, p0=start, bounds=(low, high),
                           maxfev=8000 if free_offset else 4000)
    except (RuntimeError, ValueError):
        return None
    floor, contrast, edge, blur, rim, rim_width = (float(v) for v in par[:6])
    offset = float(par[6]) if free_offset else 0.0
    width = math.hypot(blur, rim_width)
    rim_fraction = rim * blur / width / contrast
    return {"floor": floor, "contrast": contrast, "edge_px": edge, "blur_px": blur,
            "rim_px": width, "rim_fraction": rim_fraction, "rim_offset_px": offset,
            "edge_level_fraction": rim_fraction * math.exp(-0.5 * (offset / width) ** 2),
            "rss": float(np.sum((_edge_model(x_px, *par) - mean) ** 2))}


def rim_fraction_at_blur(fit: dict, blur_px: float) -> float:
    """The rim fraction a fit of :func:`fit_rim_profile` predicts at another beam blur.

    A Gaussian rim of intrinsic width ``w`` blurred by ``b`` is seen ``sqrt(w**2 + b**2)`` wide
    and lower by the same factor (its area is kept), so its height at the edge scales with
    ``1 / sqrt(w**2 + b**2)``; the step's contrast does not change.

    Parameters
    ----------
    fit : dict
        From :func:`fit_rim_profile` (``rim_fraction``, ``rim_px``: the rim's width as seen,
        ``blur_px``: the fitted blur), px.
    blur_px : float
        The other blur (Gaussian sigma, px).

    Returns
    -------
    float
        Rim height at the edge over the class contrast at ``blur_px``.
    """
    intrinsic2 = max(fit["rim_px"] ** 2 - fit["blur_px"] ** 2, 0.0)
    return float(fit["rim_fraction"] * fit["rim_px"] / math.sqrt(intrinsic2 + blur_px ** 2))


def _rim_correction(s: np.ndarray, region: np.ndarray, thr: np.ndarray, m_pore: np.ndarray,
                    m_poly: np.ndarray, f: int, out: np.ndarray, noise_s: float,
                    max_fraction: float | None = None) -> dict:
    """Move the threshold edges of a dark-contrast mask onto the edges under bright rims.

    A bright rim centred on a pore edge (the SEM edge effect) lifts the grey level at the edge
    above the class midpoint, so the midpoint threshold puts the edge inside the pore, by about
    a pixel for a strong rim. The pooled edge profile is fitted with a blurred step plus a
    blurred rim centred on it (:func:`fit_rim_profile`); the level of that model at the edge is
    the midpoint plus the rim's height, so the threshold is raised by the fitted rim height (as a
    fraction of the local class contrast, at most ``RIM_MAX_FRACTION`` and at least
    ``RIM_NOISE_MARGIN`` noise sigmas ``noise_s`` below the polymer level). Pixels the raised
    threshold adds are kept only where the polymer they were taken from is thicker than the
    rim's width (a thinner wall is rim across its whole width, polymer however bright its
    surroundings), where they do not join two pores of the midpoint mask, and off the medial
    line (skeleton) of the midpoint mask's polymer, which also keeps the walls that mask
    already breached somewhere: the correction moves edges and thins walls, it does not open
    them.

    The corrected edges are then checked: a rim lying outside them (an edge glow starting on the
    polymer, which the centred model explains only by pushing the edge under it) is refitted
    with its position free, and when it lies more than ``RIM_OUTSIDE_MIN_PX`` outside with a
    residual below ``RIM_OFFSET_RSS_RATIO`` of the centred fit's, the correction is redone as a
    threshold raise by the level the rim adds at the edge (``info["rim_outside_edge"]``).

    ``max_fraction`` caps the fitted rim fraction: a deconvolved image rings at its edges, and
    the ringing fits as a rim (rimless sponges blurred at 2.5 px and deconvolved read 0.14-0.57),
    so there the rim is measured on the image before deconvolution and carried to the
    deconvolved blur (:func:`rim_fraction_at_blur`).
    """
    x, mean, _ = edge_profile(s, out, region)
    fit = fit_rim_profile(x, mean)
    if fit is None:
        return {"rim_fraction": 0.0}
    rim_fraction = fit["rim_fraction"]
    info = {"rim_fraction": round(rim_fraction, 4),
            "rim_width_px": round(fit["rim_px"], 3), "edge_blur_fit_px": round(fit["blur_px"], 3)}
    if max_fraction is not None:
        rim_fraction = min(rim_fraction, max_fraction)
        info["rim_fraction_cap"] = round(max_fraction, 4)
    cap = min(RIM_MAX_FRACTION, 0.5 - RIM_NOISE_MARGIN * noise_s / fit["contrast"])
    frac = min(max(rim_fraction, 0.0), cap)
    if frac <= 0.01:
        return info
    old = out.copy()
    by_growth = rim_fraction >= RIM_GROW_ABOVE
    if by_growth:
        info.update(_grow_by_edge_offset(region, out, fit))
    else:
        _raise_threshold(s, region, thr, m_pore, m_poly, f, out, old, frac, fit["rim_px"])
    # Where does the rim lie? The fit above assumes it centred on the edge; a rim lying on the
    # polymer side of the edge (edge glow) fits that model only with the edge pushed under the
    # rim, so the edges went too far. Seen from the corrected edges, such a rim lies outside
    # them, and a model with the rim's offset free explains the profile far better than a
    # centred one: then the threshold is raised only by the level the rim adds AT the edge.
    x2, mean2, _ = edge_profile(s, out, region)
    centred = fit_rim_profile(x2, mean2)
    free = fit_rim_profile(x2, mean2, free_offset=True)
    if centred is not None and free is not None:
        ratio = free["rss"] / max(centred["rss"], 1e-30)
        info["rim_offset_px"] = round(free["rim_offset_px"], 3)
        info["rim_offset_rss_ratio"] = round(ratio, 4)
        info["rim_offset_width_px"] = round(free["rim_px"], 3)
        if (RIM_OUTSIDE_MIN_PX < free["rim_offset_px"] <= RIM_OUTSIDE_MAX_WIDTHS * free["rim_px"]
                and ratio < RIM_OFFSET_RSS_RATIO
                and (by_growth or free["edge_level_fraction"] < frac)):
            frac = min(max(free["edge_level_fraction"], 0.0), cap)
            out[:] = old
            if frac > 0.01:
                _raise_threshold(s, region, thr, m_pore, m_poly, f, out, old, frac,
                                 fit["rim_px"])
            info["rim_outside_edge"] = True
            info.pop("rim_edge_offset_px", None)  # the growth is undone
    if "rim_edge_offset_px" not in info:
        info["rim_threshold_shift"] = round(frac, 4)
    info["rim_pixels_added"] = int(out.sum() - old.sum())
    return info


def _raise_threshold(s: np.ndarray, region: np.ndarray, thr: np.ndarray, m_pore: np.ndarray,
                     m_poly: np.ndarray, f: int, out: np.ndarray, old: np.ndarray, frac: float,
                     rim_px: float) -> None:
    """The threshold raise of :func:`_rim_correction`: ``out`` (the midpoint mask ``old``) is
    thresholded again at ``frac`` of the local class contrast above the midpoint, keeping only
    the added pixels that move edges (see there); in place."""
    raised = (thr + frac * (m_poly - m_pore)).astype(np.float32)
    _dark_pass(s, region, raised, f, np.float32(0), False, True, out)
    poly = region & ~old
    poly_thickness_px = local_thickness(poly)
    out &= old | (poly_thickness_px > rim_px)
    out &= ~_joins_two_pores(old, out, 2.0 * rim_px)
    # a wall already breached somewhere in the midpoint mask has one pore on both sides, which
    # the join test cannot see: its medial line stays polymer, so edges move and walls thin but
    # no wall is opened
    out &= ~skeletonize(poly)
    # the correction moves edges: pixels not connected to a pore of the midpoint mask are
    # polymer that the raised threshold caught (shading, dark grains), not edges
    lab, _ = ndi.label(out | old)
    grown = np.zeros(int(lab.max()) + 1, bool)
    grown[lab[old]] = True
    grown[0] = False
    out[:] = grown[lab]


@numba.njit(cache=True, nogil=True)
def _first_label_at(labels, rr, cc, dy, dx):  # pragma: no cover - compiled
    """For each pixel (rr[i], cc[i]), the first non-zero label met at the offsets (dy, dx), in
    their order (0 when none)."""
    rows, cols = labels.shape
    out = np.zeros(rr.size, labels.dtype)
    for i in range(rr.size):
        for k in range(dy.size):
            y = rr[i] + dy[k]
            x = cc[i] + dx[k]
            if 0 <= y < rows and 0 <= x < cols and labels[y, x] > 0:
                out[i] = labels[y, x]
                break
    return out


def _disk_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer offsets (dy, dx) with dy**2 + dx**2 <= radius**2, nearest first (ties in raster
    order)."""
    r = int(math.floor(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    d2 = (dy**2 + dx**2).ravel()
    keep = d2 <= radius * radius
    order = np.argsort(d2[keep], kind="stable")
    return (dy.ravel()[keep][order].astype(np.int64), dx.ravel()[keep][order].astype(np.int64))


def _joins_two_pores(pores: np.ndarray, grown: np.ndarray, reach_px: float) -> np.ndarray:
    """The pixels of ``grown & ~pores`` that would touch (4-neighbours) another pore: each takes
    the label of its nearest pore of ``pores`` within ``reach_px`` (what
    ``skimage.segmentation.expand_labels`` gives, up to the choice between equidistant pores;
    searched over the disk of offsets, which is 4-10 times faster than its full distance
    transform with indices), the pore pixels kept in ``grown`` their own."""
    lab = ndi.label(pores)[0]
    labels = np.where(grown, lab, 0)
    rr, cc = np.nonzero(grown & ~pores)
    dy, dx = _disk_offsets(float(reach_px))
    labels[rr, cc] = _first_label_at(lab, rr.astype(np.int64), cc.astype(np.int64), dy, dx)
    rows, cols = labels.shape
    pad = np.pad(labels, 1)
    conflict = np.zeros(labels.shape, bool)
    for dr, dc in ((0, 1), (2, 1), (1, 0), (1, 2)):
        nb = pad[dr:dr + rows, dc:dc + cols]
        conflict |= (nb > 0) & (nb != labels)
    return grown & ~pores & conflict


def _grow_by_edge_offset(region: np.ndarray, out: np.ndarray, fit: dict) -> dict:
    """Grow the pores of a dark-contrast mask outward by the fitted edge offset.

    For rims of at least ``RIM_GROW_ABOVE`` of the contrast the edge lies ``fit["edge_px"]``
    outside the midpoint edge (:func:`fit_rim_profile`), and the grey level there is above the
    polymer's, so no threshold finds it. Polymer pixels whose centre is nearer than that offset
    plus half a pixel to a pore join it, only in polymer thicker than twice the rim's width (a
    thinner wall is all rim), and never where they would touch another pore: each grown pixel
    takes the label of its nearest pore, and a grown pixel next to a pixel of another pore stays
    polymer, so neighbouring cells keep a wall. ``out`` is changed in place.
    """
    old = out.copy()
    poly = region & ~old
    thick = local_thickness(poly) > 2.0 * fit["rim_px"]
    reach = fit["edge_px"] + 0.5
    grow = poly & thick & (ndi.distance_transform_edt(~old) < reach)
    grow &= ~_joins_two_pores(old, old | grow, reach)
    out |= grow
    return {"rim_edge_offset_px": round(fit["edge_px"], 3), "rim_pixels_added": int(grow.sum())}


def _dark_full(img: np.ndarray, region: np.ndarray, offsets: np.ndarray, smoothing_px: float,
               t0: float, bg_px: float, iterations: int, out: np.ndarray,
               deblur: tuple[float, float] | None = None, rim_correction: bool = True,
               noise_s: float = 0.0, rim_cap: float | None = None) -> dict:
    """The local class-midpoint threshold on the whole image (band-wise deblurring and
    smoothing, then passes over the smoothed image with coarse class-level grids); writes the
    pores into ``out``. ``rim_cap``: the largest rim fraction the rim correction may use on a
    deconvolved image (None: no rim correction there)."""
    rows, cols = img.shape
    s = np.empty((rows, cols), np.float32)
    h = _halo_px(smoothing_px) + (_deblur_halo_px(deblur[0]) if deblur else 0)
    for r0, r1, a0, a1 in _bands(rows, cols, h):
        band = _corrected(img, offsets, a0, a1, 0, cols)
        if deblur is not None:
            band = wiener_deblur(band, *deblur)
        s[r0:r1] = _gaussian(band, smoothing_px)[r0 - a0:r1 - a0]
    f = max(1, int(bg_px / 4))
    dummy = np.zeros((1, 1), np.float32)
    sums = _dark_pass(s, region, dummy, f, np.float32(t0), True, True, out)
    thr = m_pore = m_poly = None
    for _ in range(iterations):
        npix = sums[4]
        n_pore, n_poly = float(sums[1].sum()), float(sums[3].sum())
        if n_pore == 0 or n_poly == 0:
            break
        g_pore = float(sums[0].sum()) / n_pore
        g_poly = float(sums[2].sum()) / n_poly
        sig = bg_px / f
        m_pore = _coarse_class_mean(sums[0], sums[1], npix, sig, g_pore)
        m_poly = _coarse_class_mean(sums[2], sums[3], npix, sig, g_poly)
        thr = (0.5 * (m_pore + m_poly)).astype(np.float32)
        sums = _dark_pass(s, region, thr, f, np.float32(0), False, True, out)
    info = {"background_block_px": f}
    # a deconvolved image rings at its edges, which the rim model would read as rims: there
    # the rim measured before deconvolution (``rim_cap``) bounds it
    if rim_correction and thr is not None and (deblur is None or rim_cap is not None):
        info.update(_rim_correction(s, region, thr, m_pore, m_poly, f, out, noise_s,
                                    None if deblur is None else rim_cap))
    return info


def segment_dark(image: np.ndarray, region: np.ndarray, *, smoothing_px: float | None = None,
                 background_px: float | None = None, iterations: int = 3,
                 deblur: bool = True, details: dict | None = None) -> np.ndarray:
    """Dark pores on bright polymer: local midpoint between the two class levels (see the
    module docstring). ``image`` float32 finite, ``region`` bool. ``deblur``: deconvolve an
    image blurrier than ``DARK_DEBLUR_ABOVE_PX`` to ``DARK_TARGET_BLUR_PX`` first."""
    img = np.ascontiguousarray(image, np.float32)
    reg = np.ascontiguousarray(region, bool)
    offsets = scan_line_offsets(img, reg)
    windows = sample_windows(reg)
    sample_img, sample_reg = _sample(img, reg, offsets, windows)
    noise = estimate_noise_sigma(sample_img, sample_reg)
    return _segment_dark(img, reg, offsets, sample_img, sample_reg, noise, smoothing_px,
                         background_px, iterations, {} if details is None else details,
                         windows, deblur)


#: Beam blur (Gaussian sigma, px) of the images the dark method was designed and measured on
#: (its smoothing rule and resolution limit; pipeline.synthetic and the held-out renderings).
DARK_TARGET_BLUR_PX = 1.0
#: An image whose measured edge blur (:func:`edge_blur_px`) exceeds this is Wiener-deconvolved
#: to ``DARK_TARGET_BLUR_PX`` before the dark method. Images rendered at sigma 0.9-1 px measure
#: 0.86-1.16 px (4 morphologies, 3 renderers, one with a 6-px halo), so they are left as they
#: are; images rendered at 1.5 px measure 1.28-1.65 px, and deconvolving them (threshold 1.4)
#: changed Dice by -0.008 to +0.01; from 2 px on it gains (``tests/test_segment.py``,
#: ``benchmarks/bench_resolution.py``).
DARK_DEBLUR_ABOVE_PX = 1.6


def _dark_deblur(sample_img: np.ndarray, sample_reg: np.ndarray, smoothing_px: float, t0: float,
                 noise: float, contrast: float, det: dict, enabled: bool
                 ) -> tuple[float, float] | None:
    """Measure the edge blur on the sample's first segmentation; the Wiener parameters
    ``(sigma_px, nsr)`` that bring it to ``DARK_TARGET_BLUR_PX`` (None: not needed or not
    ``enabled``)."""
    first = (_gaussian(sample_img, smoothing_px) < t0) & sample_reg
    blur = edge_blur_px(sample_img, first, sample_reg)
    det["edge_blur_px"] = round(blur, 4) if math.isfinite(blur) else None
    if (not enabled or not math.isfinite(blur) or blur <= DARK_DEBLUR_ABOVE_PX
            or contrast <= 0):
        return None
    # the noise power against the class contrast squared regularises the inverse filter
    return (math.sqrt(blur ** 2 - DARK_TARGET_BLUR_PX ** 2),
            float(max((noise / contrast) ** 2, 1e-4)))


def _segment_dark(img, reg, offsets, sample_img, sample_reg, noise, smoothing_px,
                  background_px, iterations, det, windows, deblur_enabled) -> np.ndarray:
    sm, t0, typical, contrast = _dark_sample_scales(sample_img, sample_reg, noise, smoothing_px)
    deblur = _dark_deblur(sample_img, sample_reg, sm, t0, noise, contrast, det, deblur_enabled)
    rim_cap = None
    if deblur is not None:
        # the rim as the image shows it before deconvolution (no ringing there)
        smoothed = _gaussian(sample_img, sm)
        x, mean, _ = edge_profile(smoothed, (smoothed < t0) & sample_reg, sample_reg)
        plain_fit = fit_rim_profile(x, mean)
        # the method's scales are measured again on the deconvolved sample
        sample_img, sample_reg = _sample(img, reg, offsets, windows, deblur)
        noise = estimate_noise_sigma(sample_img, sample_reg)
        sm, t0, typical, _ = _dark_sample_scales(sample_img, sample_reg, noise, smoothing_px)
        if plain_fit is not None:
            rim_cap = rim_fraction_at_blur(plain_fit, math.hypot(DARK_TARGET_BLUR_PX, sm))
    det["deblur_sigma_px"] = round(deblur[0], 4) if deblur else 0.0
    if deblur:
        det["deblur_nsr"] = round(deblur[1], 6)
    bg_px = background_px or max(6.0 * typical, min(img.shape) / 12.0)
    out = np.zeros(img.shape, bool)
    # noise sigma of the smoothed image (white noise through the Gaussian)
    noise_s = noise / (2.0 * math.sqrt(math.pi) * max(sm, 0.5))
    info = _dark_full(img, reg, offsets, sm, t0, bg_px, iterations, out, deblur,
                      noise_s=noise_s, rim_cap=rim_cap)
    det.update(noise_sigma=round(noise, 6), smoothing_px=round(sm, 4),
               otsu_threshold=round(t0, 6), typical_size_px=round(typical, 3),
               background_scale_px=round(bg_px, 3), **info)
    return out
