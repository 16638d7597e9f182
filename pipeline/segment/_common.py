"""Shared image helpers of the segmentation methods: noise, blur and scan-line measures, band-wise
smoothing, the image-level sample, coarse grids, input checks and resolution limits.
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np
from scipy import ndimage as ndi
from scipy.special import ndtr

from ..size import local_thickness

# ------------------------------------------------------------------------------------------------
# small helpers


def _components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of a bool mask: (int32 labels, pixel count per label incl. 0)."""
    m = np.ascontiguousarray(mask).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=connectivity,
                                                           ltype=cv2.CV_32S)
    return labels, stats[:, cv2.CC_STAT_AREA].astype(np.int64)


def edge_pore_mask(mask: np.ndarray, membrane_mask: np.ndarray | None = None, *,
                   unknown: np.ndarray | None = None) -> np.ndarray:
    """Pore pixels of pores that touch the image frame (or a region of unknown phase).

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, cols)
        Pore mask.
    membrane_mask : ndarray of bool, optional
        Unused for the decision (a pore ending on the membrane's own surface is a real, complete
        surface pore); accepted for symmetry with :func:`segment_pores`.
    unknown : ndarray of bool, shape (rows, cols), optional
        Pixels whose phase is unknown (a label burned into the micrograph): pores running into
        them are cut like pores running out of the frame.

    Returns
    -------
    ndarray of bool, shape (rows, cols)
        True on every pixel of an 8-connected pore that has a pixel in the first or last row or
        column, or 8-adjacent to an ``unknown`` pixel.
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        return np.zeros(mask.shape, bool)
    lab, sizes = _components(mask, 8)
    touching = [lab[0], lab[-1], lab[:, 0], lab[:, -1]]
    if unknown is not None and np.any(unknown):
        near = cv2.dilate(np.asarray(unknown, np.uint8), np.ones((3, 3), np.uint8)) > 0
        touching.append(lab[near])
    edge_labels = np.unique(np.concatenate(touching))
    edge_labels = edge_labels[edge_labels > 0]
    if edge_labels.size == 0:
        return np.zeros(mask.shape, bool)
    keep = np.zeros(sizes.size, bool)
    keep[edge_labels] = True
    return keep[lab]


def estimate_noise_sigma(image: np.ndarray, region: np.ndarray | None = None) -> float:
    """Standard deviation of white pixel noise (grey units), robust to structure.

    Immerkær's Laplacian-difference estimator (J. Immerkær, CVIU 64, 1996) with a median
    instead of a mean, so edges and rims barely bias it: the 3x3 kernel
    ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` cancels linear and bilinear structure and multiplies white
    noise by 6.
    """
    img = np.asarray(image, np.float32)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    c = np.abs(cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT))
    if region is not None:
        inner = cv2.erode(np.asarray(region, np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        values = c[inner] if inner.sum() >= 16 else c[np.asarray(region, bool)]
    else:
        values = c.ravel()
    if values.size == 0:
        return 0.0
    return float(1.4826 * np.median(values) / 6.0)



def edge_blur_px(image: np.ndarray, pore_mask: np.ndarray, region: np.ndarray | None = None,
                 *, reach_px: float = 6.0, min_thickness_px: float = 4.0) -> float:
    """Gaussian blur (sigma, px) of the edges between pores and polymer.

    The width of the edge-spread function across the boundary of ``pore_mask``: the grey values
    of the pixels within ``reach_px`` of the boundary (and at least that far inside ``region``)
    are averaged in 0.25-px bins of their signed distance to it (pixel centres; the boundary lies
    half a pixel outside the outermost pore pixels) and fitted by least squares, weighted by the
    square root of the bin counts, with ``lo + (hi - lo) * Phi((d - mu) / sigma)``: the profile a
    Gaussian beam of that sigma gives a straight step. Only edges with room on both sides are
    used: a pixel counts when the local thickness of its own phase and that of the other phase at
    its nearest boundary pixel are both at least ``min_thickness_px`` (a wall thinner than the
    blur never reaches the polymer level, which widened the fit: 3.2 px for closed cells with
    3-px walls rendered at 2.5 px). Pooled over the image's edges, the estimate does not depend
    on the pore morphology: pipeline.synthetic sponges of 8 px pores and closed cells at sigma
    1 / 2 / 3 px read 1.04 / 2.04 / 2.96 and 1.02 / 1.88 / 2.84, thin-walled cells at 1 / 2.5 px
    1.03 / 2.55; with too few thick edges (4 px sponges at 1 px) it is nan.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Grey image (not smoothed: the estimate includes any smoothing applied).
    pore_mask : ndarray of bool, shape (rows, cols)
        A segmentation whose boundary follows the edges (e.g. a threshold at the class midpoint).
    region : ndarray of bool, optional
        Where the mask is meaningful (default: everywhere).
    reach_px : float
        Half-width of the profile (px); edges closer than this to the region's outline are not
        used.

    Returns
    -------
    float
        sigma in px, or nan when fewer than 200 edge pixels are available or the fit fails.
    """
    from scipy.optimize import least_squares  # imported here: scipy.optimize loads slowly

    img = np.asarray(image, np.float64)
    pore = np.asarray(pore_mask, bool)
    reg = np.ones(pore.shape, bool) if region is None else np.asarray(region, bool)
    inner = ndi.binary_erosion(reg, iterations=int(math.ceil(reach_px)) + 1)
    if not (pore & inner).any() or not (~pore & inner).any():
        return float("nan")
    if min_thickness_px > 0:
        d_in, i_in = ndi.distance_transform_edt(pore, return_indices=True)
        d_out, i_out = ndi.distance_transform_edt(~pore, return_indices=True)
        lt_pore = local_thickness(pore)
        lt_poly = local_thickness(~pore & reg)
        own = np.where(pore, lt_pore, lt_poly)
        other = np.where(pore, lt_poly[i_in[0], i_in[1]], lt_pore[i_out[0], i_out[1]])
        inner &= (own >= min_thickness_px) & (other >= min_thickness_px)
    else:
        d_in = ndi.distance_transform_edt(pore)
        d_out = ndi.distance_transform_edt(~pore)
    signed = np.where(pore, 0.5 - d_in, d_out - 0.5)  # > 0 on the polymer side
    sel = inner & (np.abs(signed) <= reach_px)
    if np.count_nonzero(sel) < 200:
        return float("nan")
    n_bins = int(round(8 * reach_px)) + 1  # 0.25-px bins centred on -reach .. +reach
    idx = np.floor((signed[sel] + reach_px + 0.125) / 0.25).astype(np.int64)
    ok = (idx >= 0) & (idx < n_bins)
    count = np.bincount(idx[ok], minlength=n_bins)
    total = np.bincount(idx[ok], img[sel][ok], minlength=n_bins)
    edges = -reach_px - 0.125 + 0.25 * np.arange(n_bins + 1)
    keep = count >= 20
    if keep.sum() < 6:
        return float("nan")
    x = 0.5 * (edges[:-1] + edges[1:])[keep]
    y = total[keep] / count[keep]
    w = np.sqrt(count[keep])

    def residual(p: np.ndarray) -> np.ndarray:
        lo, hi, mu, log_s = p
        return w * (lo + (hi - lo) * ndtr((x - mu) / np.exp(log_s)) - y)

    start = [float(y[:3].mean()), float(y[-3:].mean()), 0.0, 0.0]
    try:
        fit = least_squares(residual, start)
    except (ValueError, np.linalg.LinAlgError):
        return float("nan")
    sigma = float(np.exp(fit.x[3]))
    if not fit.success or not np.isfinite(sigma) or fit.x[1] <= fit.x[0]:
        return float("nan")
    return float(min(sigma, reach_px))


def wiener_deblur(image: np.ndarray, sigma_px: float, nsr: float) -> np.ndarray:
    """Wiener deconvolution of a Gaussian blur of ``sigma_px`` (px).

    ``(1 + nsr) H / (H**2 + nsr)`` in the Fourier domain, ``H`` the Gaussian's transfer function
    and ``nsr`` the noise-to-signal power ratio (regularisation: larger is smoother); the factor
    ``1 + nsr`` keeps the mean grey level (gain 1 at frequency 0). The image is
    reflect-padded by ``4 sigma + 8`` px so that the periodic transform does not wrap edges into
    each other. Returns float32, same shape. (``skimage.restoration.wiener`` is the same filter
    for a sampled PSF, but regularises with a Laplacian by default, wraps at the borders and
    has gain ``1 / (1 + balance)`` at frequency 0; the Gaussian's transfer function is exact.)
    """
    img = np.asarray(image, np.float64)
    if sigma_px <= 0:
        return img.astype(np.float32)
    pad = int(4.0 * sigma_px) + 8
    a = np.pad(img, pad, mode="reflect")
    ky = np.fft.fftfreq(a.shape[0])[:, None]
    kx = np.fft.rfftfreq(a.shape[1])[None, :]
    h = np.exp(-2.0 * (math.pi * sigma_px) ** 2 * (kx ** 2 + ky ** 2))
    out = np.fft.irfft2(np.fft.rfft2(a) * ((1.0 + nsr) * h / (h * h + nsr)), a.shape)
    return out[pad:pad + img.shape[0], pad:pad + img.shape[1]].astype(np.float32)


def _gauss_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(4.0 * sigma + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _halo_px(sigma: float) -> int:
    """Rows of context that make a band's Gaussian smoothing (cv2, sigma) equal to the whole
    image's: cv2's kernel radius is about 4 sigma."""
    return int(4.0 * max(sigma, 0.0)) + 3


#: Pixels per band of the band-wise full-image passes (bounds their temporary memory).
BAND_PX = 1 << 21


def _bands(rows: int, cols: int, halo: int, multiple: int = 1):
    """Row bands (r0, r1, a0, a1): core rows [r0, r1), with ``halo`` rows of context [a0, a1)."""
    step = max(multiple, (BAND_PX // max(cols, 1)) // multiple * multiple, 16)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        yield r0, r1, max(0, r0 - halo), min(rows, r1 + halo)


@numba.njit(cache=True, nogil=True)
def _masked_row_medians(hp, reg, out, row0, min_count):  # pragma: no cover - compiled
    rows, cols = hp.shape
    buf = np.empty(cols, np.float32)
    for r in range(rows):
        k = 0
        for c in range(cols):
            if reg[r, c]:
                buf[k] = hp[r, c]
                k += 1
        if k >= min_count:
            out[row0 + r] = np.median(buf[:k])


def scan_line_offsets(image: np.ndarray, region: np.ndarray | None = None,
                      sigma_px: float = 3.0) -> np.ndarray:
    """Row-to-row offsets (scan-line noise), one value per row (float32).

    The offset of a row is the median, over the row's pixels inside ``region`` (at least 16),
    of a vertical high-pass (image minus its Gaussian smoothing along the columns, sigma
    ``sigma_px``). Pores and edges are a minority of any row at the high-pass scale, so the
    median ignores them; slow drift is not touched (it is not in the high-pass). Computed in
    row bands (the result does not depend on the band size).
    """
    img = np.asarray(image, np.float32)
    rows, cols = img.shape
    reg = np.ones(img.shape, bool) if region is None else np.asarray(region, bool)
    kernel = _gauss_kernel(sigma_px)
    one = np.ones(1, np.float32)
    out = np.zeros(rows, np.float32)
    for r0, r1, a0, a1 in _bands(rows, cols, kernel.size // 2 + 1):
        sub = img[a0:a1]
        blur = cv2.sepFilter2D(sub, cv2.CV_32F, one, kernel, borderType=cv2.BORDER_REFLECT)
        hp = (sub - blur)[r0 - a0:r1 - a0]
        _masked_row_medians(np.ascontiguousarray(hp), np.ascontiguousarray(reg[r0:r1]), out,
                            r0, 16)
    return out


def remove_scan_lines(image: np.ndarray, region: np.ndarray | None = None,
                      sigma_px: float = 3.0) -> np.ndarray:
    """Subtract row-to-row offsets (scan-line noise, see :func:`scan_line_offsets`).

    Returns
    -------
    ndarray of float32, same shape
    """
    img = np.asarray(image, np.float32)
    return img - scan_line_offsets(img, region, sigma_px)[:, None]


def _gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img.astype(np.float32, copy=True)
    return cv2.GaussianBlur(img.astype(np.float32, copy=False), (0, 0), float(sigma),
                            borderType=cv2.BORDER_REFLECT)


def _corrected(img: np.ndarray, offsets: np.ndarray, r0: int, r1: int, c0: int,
               c1: int) -> np.ndarray:
    """Scan-line corrected float32 copy of ``img[r0:r1, c0:c1]``."""
    return img[r0:r1, c0:c1] - offsets[r0:r1, None]


def _deblur_halo_px(sigma_px: float) -> int:
    """Context (px) that makes a window's Wiener deconvolution equal to the whole image's to
    within float32 rounding: the regularised inverse of a Gaussian decays within a few sigma."""
    return int(6.0 * sigma_px) + 8


def _filtered_window(img: np.ndarray, offsets: np.ndarray, halo: int, filt, r0: int, r1: int,
                     c0: int, c1: int) -> np.ndarray:
    """``filt`` of the scan-line corrected ``img[r0:r1, c0:c1]``, applied to the window with
    ``halo`` px of context on every side, so that it equals the same window of the whole
    image filtered at once."""
    rows, cols = img.shape
    a0, a1 = max(0, r0 - halo), min(rows, r1 + halo)
    b0, b1 = max(0, c0 - halo), min(cols, c1 + halo)
    out = filt(_corrected(img, offsets, a0, a1, b0, b1))
    return out[r0 - a0:r1 - a0, c0 - b0:c1 - b0]


def _deblurred_window(img: np.ndarray, offsets: np.ndarray, deblur: tuple[float, float],
                      r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Scan-line corrected, Wiener-deconvolved ``img[r0:r1, c0:c1]``."""
    return _filtered_window(img, offsets, _deblur_halo_px(deblur[0]),
                            lambda w: wiener_deblur(w, *deblur), r0, r1, c0, c1)


def _smoothed_window(img: np.ndarray, offsets: np.ndarray, sigma: float, r0: int, r1: int,
                     c0: int, c1: int) -> np.ndarray:
    """Scan-line corrected, Gaussian-smoothed ``img[r0:r1, c0:c1]``."""
    return _filtered_window(img, offsets, _halo_px(sigma), lambda w: _gaussian(w, sigma),
                            r0, r1, c0, c1)


def _remove_small(mask: np.ndarray, min_area_px: float) -> np.ndarray:
    """Drop 8-connected objects smaller than ``min_area_px`` pixels (in place)."""
    if min_area_px <= 1 or not mask.any():
        return mask
    lab, sizes = _components(mask, 8)
    if (sizes[1:] >= min_area_px).all():
        return mask
    keep = sizes >= min_area_px
    keep[0] = False
    return keep[lab]


def _fill_small_holes(mask: np.ndarray, region: np.ndarray, max_area_px: float) -> np.ndarray:
    """Fill 4-connected non-pore specks inside ``region`` smaller than ``max_area_px``."""
    if max_area_px <= 1:
        return mask
    holes = region & ~mask
    if not holes.any():
        return mask
    lab, sizes = _components(holes, 4)
    del holes
    small = sizes < max_area_px
    small[0] = False
    if not small.any():
        return mask
    mask |= small[lab]
    return mask


def hydraulic_diameter_px(mask: np.ndarray, region: np.ndarray | None = None) -> float:
    """Typical feature width of a phase: 4 x area / perimeter (px).

    Equals the diameter for disks and twice the width for long strips; a cheap scale estimate
    used to set filter sizes, not a measurement. The perimeter is the count of 4-neighbour phase
    changes (between pixels both inside ``region``) times pi/4 (the isotropic correction for a
    pixel grid).
    """
    m = np.asarray(mask, bool)
    reg = np.ones(m.shape, bool) if region is None else np.asarray(region, bool)
    area = float((m & reg).sum())
    if area == 0:
        return 0.0
    dv = (m[1:] != m[:-1]) & reg[1:] & reg[:-1]
    dh = (m[:, 1:] != m[:, :-1]) & reg[:, 1:] & reg[:, :-1]
    perimeter = (dv.sum() + dh.sum()) * math.pi / 4
    if perimeter == 0:
        return float(2 * math.sqrt(area / math.pi))
    return float(4 * area / perimeter)


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    if values.size == 0 or float(values.max() - values.min()) <= 0:
        return float(values.mean()) if values.size else 0.0
    return float(threshold_otsu(values))


# ------------------------------------------------------------------------------------------------
# image-level sample: a few windows spread over the membrane, stitched side by side

#: Side of a sample window (px) and the most pixels the sample holds; an image with at most
#: twice that many pixels is its own sample.
SAMPLE_WINDOW_PX = 320
SAMPLE_BUDGET_PX = 600_000
#: Excluded columns between the windows of a composite sample.
SAMPLE_GAP_PX = 3


def sample_windows(region: np.ndarray, window_px: int = SAMPLE_WINDOW_PX,
                   budget_px: int = SAMPLE_BUDGET_PX) -> list[tuple[int, int, int, int]]:
    """Windows ``(r0, r1, c0, c1)`` on which image-level decisions are measured.

    The whole frame when it has at most ``2 * budget_px`` pixels; otherwise up to
    ``budget_px / window_px**2`` non-overlapping windows of a regular grid centred on the frame,
    chosen evenly (in raster order) among those at least half inside ``region`` (or, when none
    is, those most inside it). Deterministic; depends only on the region.
    """
    rows, cols = region.shape
    w = int(window_px)
    if rows * cols <= 2 * budget_px or rows < w or cols < w:
        return [(0, rows, 0, cols)]
    ny, nx = rows // w, cols // w
    oy, ox = (rows - ny * w) // 2, (cols - nx * w) // 2
    inside = region[oy:oy + ny * w, ox:ox + nx * w].reshape(ny, w, nx, w).sum(
        axis=(1, 3), dtype=np.int64).ravel()
    cand = np.flatnonzero(inside >= w * w // 2)
    if cand.size == 0:
        cand = np.sort(np.argsort(-inside, kind="stable")[:max(1, int(budget_px // (w * w)))])
        cand = cand[inside[cand] > 0] if (inside[cand] > 0).any() else cand
    k = max(1, int(budget_px // (w * w)))
    if cand.size > k:
        cand = cand[((np.arange(k) + 0.5) * cand.size / k).astype(np.int64)]
    return [(oy + (i // nx) * w, oy + (i // nx + 1) * w, ox + (i % nx) * w,
             ox + (i % nx + 1) * w) for i in cand.tolist()]


def _stitch(parts: list[np.ndarray], fill) -> np.ndarray:
    """Windows side by side with ``SAMPLE_GAP_PX`` columns of ``fill`` between them."""
    if len(parts) == 1:
        return parts[0]
    h = max(p.shape[0] for p in parts)
    w = sum(p.shape[1] for p in parts) + SAMPLE_GAP_PX * (len(parts) - 1)
    out = np.full((h, w), fill, dtype=parts[0].dtype)
    c = 0
    for p in parts:
        out[:p.shape[0], c:c + p.shape[1]] = p
        c += p.shape[1] + SAMPLE_GAP_PX
    return out



# ------------------------------------------------------------------------------------------------
# coarse grids anchored at the image origin (so any tile reads the same slow maps)


@numba.njit(cache=True, nogil=True)
def _block_medians(img, reg, offsets, f):  # pragma: no cover - compiled
    """Median of the scan-line corrected grey values inside ``reg`` of every f x f block (NaN
    for blocks without such pixels)."""
    rows, cols = img.shape
    gr = (rows + f - 1) // f
    gc = (cols + f - 1) // f
    out = np.full((gr, gc), np.nan, np.float32)
    buf = np.empty(f * f, np.float32)
    for i in range(gr):
        for j in range(gc):
            k = 0
            for r in range(i * f, min(rows, (i + 1) * f)):
                for c in range(j * f, min(cols, (j + 1) * f)):
                    if reg[r, c]:
                        buf[k] = img[r, c] - offsets[r]
                        k += 1
            if k > 0:
                out[i, j] = np.median(buf[:k])
    return out


@numba.njit(cache=True, nogil=True)
def _bilinear_window(coarse, f, r0, r1, c0, c1):  # pragma: no cover - compiled
    """Rows r0..r1, columns c0..c1 of the full-resolution bilinear interpolation of a coarse
    grid whose cell (i, j) is centred on pixel ((i + 0.5) f - 0.5, (j + 0.5) f - 0.5); edge
    cells extend outwards (as cv2.resize INTER_LINEAR)."""
    gr, gc = coarse.shape
    out = np.empty((r1 - r0, c1 - c0), np.float32)
    x0 = np.empty(c1 - c0, np.int64)
    x1 = np.empty(c1 - c0, np.int64)
    wx = np.empty(c1 - c0, np.float32)
    for c in range(c0, c1):
        x = (c + 0.5) / f - 0.5
        x = min(max(x, 0.0), gc - 1.0)
        xi = min(int(math.floor(x)), gc - 1)
        x0[c - c0] = xi
        x1[c - c0] = min(xi + 1, gc - 1)
        wx[c - c0] = x - xi
    for r in range(r0, r1):
        y = (r + 0.5) / f - 0.5
        y = min(max(y, 0.0), gr - 1.0)
        yi = min(int(math.floor(y)), gr - 1)
        y1 = min(yi + 1, gr - 1)
        wy = np.float32(y - yi)
        for k in range(c1 - c0):
            a = coarse[yi, x0[k]] + wx[k] * (coarse[yi, x1[k]] - coarse[yi, x0[k]])
            b = coarse[y1, x0[k]] + wx[k] * (coarse[y1, x1[k]] - coarse[y1, x0[k]])
            out[r - r0, k] = a + wy * (b - a)
    return out


def level_grid(img: np.ndarray, region: np.ndarray, offsets: np.ndarray,
               scale_px: float) -> tuple[np.ndarray, int, float]:
    """Slowly varying grey level on a coarse grid: medians of blocks of about ``scale_px / 8``
    px inside ``region``, median-filtered over ``scale_px`` and Gaussian-smoothed; floored at 5 %
    of its median. Returns the grid, its block size (px; see :func:`_bilinear_window`) and the
    median level inside the region."""
    f = max(1, int(round(scale_px / 8)))
    bm = _block_medians(img, np.ascontiguousarray(region), offsets, f)
    ok = np.isfinite(bm)
    fill = float(np.median(bm[ok])) if ok.any() else 0.5
    bm = np.where(ok, bm, fill)
    size = max(3, int(round(scale_px / f)) | 1)
    med = ndi.median_filter(bm, size=size, mode="nearest")
    med = ndi.gaussian_filter(med, size / 4, mode="nearest").astype(np.float32)
    med_level = float(np.median(med[ok])) if ok.any() else float(np.median(med))
    floor = max(med_level * 0.05, 1e-3)
    return np.maximum(med, floor).astype(np.float32), f, med_level




# ------------------------------------------------------------------------------------------------
# the sample's grey values


def _sample(img: np.ndarray, reg: np.ndarray, offsets: np.ndarray,
            windows: list[tuple[int, int, int, int]],
            deblur: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scan-line corrected grey values and region of the sample windows, side by side
    (``deblur``: ``(sigma_px, nsr)`` of :func:`wiener_deblur`, applied with context)."""
    parts = [_corrected(img, offsets, *w) if deblur is None
             else _deblurred_window(img, offsets, deblur, *w) for w in windows]
    regs = [reg[w[0]:w[1], w[2]:w[3]] for w in windows]
    return _stitch(parts, 0.0).astype(np.float32, copy=False), _stitch(regs, False)



# ------------------------------------------------------------------------------------------------
# input checks


@numba.njit(cache=True, nogil=True)
def _region_stats(img, reg):  # pragma: no cover - compiled
    n = 0
    lo = np.inf
    hi = -np.inf
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            if reg[r, c]:
                n += 1
                v = img[r, c]
                if v < lo:
                    lo = v
                if v > hi:
                    hi = v
    return n, lo, hi


def _check_inputs(image: np.ndarray, membrane_mask: np.ndarray | None,
                  pixel_size_um: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous float32 image with non-finite pixels set to 0 (no copy when the input is
    already that) and the region (membrane and finite)."""
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be a 2-D grey array, got shape {img.shape}")
    if img.size == 0 or min(img.shape) < 3:
        raise ValueError(f"image of shape {img.shape} is too small to segment")
    if not (np.issubdtype(img.dtype, np.number) or img.dtype == bool):
        raise ValueError(f"image must be numeric, got dtype {img.dtype}")
    if np.iscomplexobj(img):
        raise ValueError(f"image must be real, got dtype {img.dtype}")
    if pixel_size_um is not None and not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number, got {pixel_size_um}")
    if membrane_mask is not None and np.shape(membrane_mask) != img.shape:
        raise ValueError(f"membrane_mask shape {np.shape(membrane_mask)} differs from image "
                         f"shape {img.shape}")
    img = np.ascontiguousarray(img, np.float32)
    finite = np.isfinite(img)
    all_finite = bool(finite.all())
    if not all_finite:
        img = np.where(finite, img, np.float32(0))
    if membrane_mask is None:
        region = finite
    else:
        region = np.ascontiguousarray(membrane_mask, bool)
        if not all_finite:
            region = region & finite
    return img, region


def _to_px(value_um: float | None, pixel_size_um: float | None, name: str) -> float | None:
    if value_um is None:
        return None
    if not (math.isfinite(value_um) and value_um > 0):
        raise ValueError(f"{name} must be a positive length in µm, got {value_um}")
    if pixel_size_um is None:
        raise ValueError(f"{name} is in µm: give pixel_size_um to use it")
    return float(value_um) / float(pixel_size_um)


# ------------------------------------------------------------------------------------------------
# resolution limits


#: Smallest pore diameter (local thickness, px) each method resolves, measured on sponge phantoms
#: (median local thickness found vs true, 2 seeds per size): ``topographic`` reports pores of
#: 5-8 px as 8.5-11.3 px whatever the rim width (1-3 px), ``dark`` reports 4 px pores as 5.7 px
#: and 5 px pores within 6 %. Sizes measured below about this are a floor, not a value.
#: Measured at a beam blur of sigma ~1 px (what the phantoms and held-out renderings have); the
#: floor grows with the blur (``benchmarks/bench_resolution.py``): topographic 8.2 / 10.0 / 13.7 /
#: 18.2 / 22.1 px at sigma 0.5 / 1 / 2 / 3 / 4 px, reported through
#: :func:`resolution_limit_px` from the edge width of a plain threshold (the rim
#: reach was tried first: it grows with blur but also with pore size and floor shading); dark
#: 4.2 / 4.5 / 8.0 / 9.5 / 11.2 px without and 4.2 / 4.5 / 6.3 / 9.5 / 12.0 px with
#: deconvolution, reported through :func:`resolution_limit_px` from the measured blur. Since the
#: dark method's rim correction (which also widens pores under the limit, whose rims overlap)
#: the dark floor at sigma 0.5 / 1 px is 5.2 / 5.8 px (3.4 px pores), so its limit is 6 px;
#: the wall lines from 0.25 crest contrasts lowered the topographic floor to 8.0 / 8.7 / 11.8 /
#: 15.4 / 19.7 px (measured 2026-12-04).
RESOLUTION_LIMIT_PX = {"dark": 6.0, "topographic": 10.0}

#: Smallest pore per px of measured edge width, per method. Dark: the floor grows with the edge
#: blur even after deconvolution (the Wiener filter cannot bring back detail that the noise
#: hides): ``benchmarks/bench_resolution.py`` measured
#: 6.3 / 9.5-10 / 12-13 px on 3 px pores at a rendered sigma of 2 / 3 / 4 px, whose edge blur
#: measured 2.2 / 2.9-3.2 / 3.1-3.4 px: about 3 sigma, above the sigma-1 limit from 1.7 px on.
#: Topographic: the floor against the edge width of a plain threshold
#: (:func:`threshold_edge_width_px`: there the edges are the rims' flanks, so the width holds
#: rim width and beam blur together). On sponges of 6 px pores with rims of 1-3 px: floor /
#: width 7.5-10 at sigma 0.5 px (floor 8-8.5 px, under the sigma-1 limit), 6.3-8.0 at sigma
#: 1-3 px; at 4 px the 6-px pores are gone and the width falls back to 1.9-2.4 px (floor
#: 21-24 px): the limit reported there is still too low. Images at sigma 1 px measure 1.12-1.47
#: px (the sigma-1 limit holds up to 1.67 px).
LIMIT_PER_EDGE_PX = {"dark": 3.0, "topographic": 6.0}


def resolution_limit_px(method: str, edge_px: float | None) -> float:
    """Smallest pore (diameter, px) ``method`` resolves on an image whose edges it measured
    ``edge_px`` wide (dark: :func:`edge_blur_px` on its first threshold, ``details
    ["edge_blur_px"]``; topographic: :func:`threshold_edge_width_px`, ``details
    ["edge_width_px"]``): ``RESOLUTION_LIMIT_PX[method]`` (the sigma-1 value), or
    ``LIMIT_PER_EDGE_PX[method]`` x the width when larger."""
    base = RESOLUTION_LIMIT_PX[method]
    if edge_px is None or not math.isfinite(edge_px):
        return base
    return float(max(base, round(LIMIT_PER_EDGE_PX[method] * float(edge_px), 2)))


def threshold_edge_width_px(image: np.ndarray, region: np.ndarray) -> float:
    """Edge-spread width (sigma, px, :func:`edge_blur_px`) of the edges of a plain threshold
    (Otsu's level after a 1-px smoothing) of ``image`` inside ``region``: the beam blur in a
    material-contrast image, blur and rim width together in a topographic one."""
    reg = np.asarray(region, bool)
    smooth = _gaussian(np.asarray(image, np.float32), 1.0)
    if not reg.any():
        return float("nan")
    first = (smooth < _otsu(smooth[reg])) & reg
    return edge_blur_px(image, first, reg)
