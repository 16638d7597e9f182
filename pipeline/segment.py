"""Pore segmentation of grey SEM cross-sections.

Two contrasts, two methods (:func:`segment_pores` picks one with ``method="auto"``):

``dark`` — material contrast (back-scattered electrons, resin-filled or deep pores): dark pores,
bright polymer. Scan-line offsets are removed (per-row median of a vertical high-pass), shot noise
is smoothed at about one pixel, then each pixel is compared with a *local* threshold: the
midpoint between the local mean of the pore class and the local mean of the polymer class, both
measured by normalised convolution at a scale of several pore sizes (on a coarse grid anchored at
the image origin) and iterated from a global Otsu split. The midpoint of the two class levels is
the half-contrast iso-line, which is where a blurred step edge really is (Otsu's threshold moves
with the phase fractions; the midpoint does not), and because each class has its own local mean
the threshold follows slow illumination drift without being pulled by depth changes of porosity.
The method's smoothing rule and resolution limit were measured at a beam blur of about 1 px; the
image's own blur is measured on the first threshold's edges (:func:`edge_blur_px`, the width of
the pooled edge-spread function) and an image blurrier than ``DARK_DEBLUR_ABOVE_PX`` is Wiener-
deconvolved to ``DARK_TARGET_BLUR_PX`` first (:func:`wiener_deblur`, band by band with context;
noise-to-signal ratio (noise / class contrast)^2). At sigma 2-3.5 px this gained Dice +0.01 to
+0.05 on three renderers and moved pore sizes toward the truth (8-px sponges at 2 px: 10.0 ->
8.1 px, true 8.0; held-out ellipses at twice the core blur: 17.9 -> 16.5 px, true 16.1). It
lost Dice 0.015 on 16-px closed cells at 3.5 px, whose walls are nearly gone, and on
pipeline.synthetic's thin-walled cells with bright rims (cells-dark) at 2.5 px it keeps Dice
but doubles the porosity error (0.05 -> 0.11): the restored rims straddle the pore edge and
their inner half reads as polymer, as at 1 px. The reported resolution limit follows the
measured blur (:func:`resolution_limit_px`).

Bright rims on the pore edges (the edge effect, which secondary electrons add to most real
"material contrast" images) lift the grey level at the edge above the class midpoint, so the
midpoint threshold puts the edge inside the pore: about a pixel for strong rims, a loss of 0.1-0.2
in porosity on 9 of 18 random dark phantoms with rims of 0.3-0.55 of the contrast. The edge profile
of the midpoint mask (grey level against signed distance to its edges, pooled over the image,
:func:`edge_profile`) is therefore fitted with a blurred step plus a rim centred on the edge and
blurred by the same Gaussian (:func:`fit_rim_profile`); the model's level AT the edge is the
midpoint plus the rim's height, so the threshold is raised by that height (as a fraction of the
local class contrast, at most ``RIM_MAX_FRACTION`` and a few noise sigmas below the polymer level).
The pixels this adds are kept only where they grow a pore of the midpoint mask into polymer thicker
than twice the rim's width (across a thinner wall the two rims merge, and new components are
shading, not edges). Rims of at least ``RIM_GROW_ABOVE`` (0.65) of the contrast put the edge's
level above the polymer's, out of any threshold's reach: there the pores are instead grown outward
by the fitted edge offset (:func:`_grow_by_edge_offset`: into thick polymer only, and never so
that two pores touch). A deconvolved image is left as it is: the deconvolution rings at the edges,
and the fit reads the ringing as a rim (the blurred sponge of
``test_dark_method_deconvolves_blurred_images``: porosity 0.48 -> 0.59). Without rims the fit gives
a height of ~0 and nothing changes (the held-out BSE renderings: 0.000-0.007). Measured on the 18
random dark phantoms of seeds 0-29: Dice 0.833-0.996 -> 0.926-0.998 (every one better), porosity
MAE mean 0.086 -> 0.030; benchmarks/ACCURACY.md's dark kinds (rims of 0.10): Dice +0.015 to +0.022,
porosity MAE cells 0.059 -> 0.032.

``topographic`` — secondary-electron topography: bright rims at every pore edge, pore floors grey
(shaded, often barely darker than the polymer face). The image is flattened (slow drift divided
out by a large-scale median), smoothed (0.7 px; up to 1.4 px on images noisier than the classifier's
training set, :func:`smoothing_for_noise`) and cut into catchment basins by a steepest-descent
watershed of the grey image itself (numba; flats drain breadth-first to their exits): every
basin boundary lies on a rim crest, which is where a symmetric rim puts the pore edge. Basins
separated by a crest less than 3 noise sigmas high are merged (merging by dynamics, Kruskal
order); the partition stays fine on purpose. Each basin is then classified pore or polymer by a
small gradient-boosted tree ensemble on scale-free basin features (contrasts in units of the
image's crest contrast, sizes in units of the measured rim reach): its rim-free core level against
the image and against its neighbours across each crest (compared at matched distances from the
crest), how far its crest stands above it, whether its floor darkens away from the crest, its
size, and its brightness dipole along the image's detector direction (edges facing the SE detector
are brighter, so a pore's rim is brighter on the detector side and a polymer island's on the
other). A second ensemble (the context stage, :func:`context_features`) also sees the first stage's
probabilities of the basin's neighbours across its crests (their mean, extremes, the mean over
neighbours behind real rims, two crests away, and where the basin's level lies between its pore-like
and polymer-like neighbours): a pore is framed by polymer across its rims, which no basin shows on
its own. The two stages' log-odds are averaged (the context stage alone could turn a small shift of
the image calibration into a collective flip of a neighbourhood). Measured on the phantoms of
benchmarks/ACCURACY.md and 28 random topographic phantoms: see ACCURACY.md. The first stage is
fitted to majority labels weighted by area, the context stage to truth pixels (a basin is a pore
sample weighted by its pore pixels and a polymer sample weighted by the rest; majority labels made
it over-call the mixed basins at the resolution limit). Both are trained on varied renderings from
two renderers (``tools/train_segmenter.py``; stored as plain arrays in
``pipeline/data/segment_models.npz``, evaluated here without scikit-learn); without the file a rule
takes over (a basin darker than most basins across its crests is a pore). Crests that separate two
pore basins and stand well above both (closed-cell walls thinner than the rim band) are kept as 2-px
polymer lines, so neighbouring cells stay separate pores.

Pores larger than the classifier's training range (4-48 px) break into many floor basins, some
labelled polymer and some separated by low crests drawn as wall lines: at 96-144 px the mean local
thickness came out 0.5-0.8 of the truth. :func:`fill_large_pores` therefore segments the image
again reduced 2, 4 and 8 times (a level only when, at the one before, pores at least 24 of its
pixels wide hold ``LARGE_PORE_MIN_AREA_SHARE`` of the pore area: a face dotted with small pores
reads as one large pore when reduced) and, inside each coarse pore of at least
``LARGE_PORE_MIN_DIAMETER_PX`` (24 coarse px) inscribed diameter, turns the full-resolution polymer
components deeper than 1.5 coarse px into pore unless they are bright like a wall (median grey
level at least ``WALL_OF_RIM_FRACTION`` of the way from the pore's floor to its rim). The
boundaries stay the full-resolution ones; the method only adds pore pixels. Measured on
bench_scale's topographic membranes of 24-144 px (45, method topographic): pore-size error 0.158 ->
0.059, images missing a target 22 -> 7, Dice +0.019 (none lower); the accuracy kinds and 58 random
topographic phantoms unchanged within 0.001 Dice.

Image-level decisions are made once, on a *sample*: the whole image when it has at most ``2 *
SAMPLE_BUDGET_PX`` pixels, otherwise a few ``SAMPLE_WINDOW_PX`` windows spread evenly over the
membrane (:func:`sample_windows`), stitched side by side. The sample gives the noise level, the
dark method's smoothing, Otsu split and feature scale, and the topographic calibration (rim reach,
crest contrast, level distribution, detector direction: measured on the basins the region holds
whole, reported as ``details["detector_direction_deg"]``; the axis' sign is the one the basin
classifier is more confident with, :func:`orient_detector_axis`) that normalises every basin's
features. Crest-bounded pores sit displaced away from the side where their rims are brighter (the
bright rim and the lit floor under it push the crest into the pore there, the shadowed side pushes
it out), so the finished topographic mask is translated by ``DETECTOR_SHIFT_PX`` (0.5 px) toward
the measured detector direction when that direction is measured (:func:`translate_mask`).
``auto`` builds the sample's basins only and lets a second small tree ensemble (trained on beam
blurs of 0.4-4 px) decide from image-level contrast statistics of the sample (rim score: how far
crests stand above the brighter basin; uniformity and shading of the dark class; thickness of the
bright class against the rim reach; flatness of the middle grey class; ...); the probability and
the evidence are recorded in ``details``. A sample side of at least ``2 * STYLE_CELL_PX`` is split
into cells of about ``STYLE_CELL_PX`` that are judged separately and pooled (mean log-odds weighted
by membrane pixels, ``details["p_topographic_cells"]``): the statistics of a whole graded membrane
(large pores at one surface, pores at the resolution limit at the other) describe a mixture of
grey-level classes that none of its parts has, and misled the classifier. When the classifier
says ``dark``, one more, segmentation-free test can overrule it: if at least half of the bright
grey class lies in closed rings (:func:`bright_ring_fraction`: bright components that enclose a
darker hole and do not reach the region's border), the bright class is rims around pores and the
image is topographic. Sparse small topographic pores with faint floors (porosity 0.15-0.25, 8-16
px) gave the classifier the statistics of material contrast (P(topographic) 0.13-0.47) and were
segmented with the face read as pore; material contrast makes no such rings (its bright class is a
matrix or a wall network that reaches the border; at most 0.48 measured on about 900 dark
renderings of four renderers; ``details["bright_ring_fraction"]``).

Large images (more than ``max_untiled_px`` pixels) are segmented in pieces with bounded memory:
the dark method in row bands (identical to an untiled run: the smoothing is done with halo rows
and the class-level grids are global; a deconvolved image up to float rounding at the
threshold), the topographic method in tiles of ``tile_px`` with an overlap of three times the
largest pore basin of the sample on every side; each tile's core is
taken from that tile. The slow maps (scan-line offsets, flattening level) are computed once for
the whole image, so a tile sees exactly the values an untiled run sees; the only differences come
from basins larger than the overlap (a polymer face that percolates through the image), whose
merging and features depend on how much of them a tile holds.

Limits (measured, see tests/test_segment.py and the report in the commit history): topographic
pores need to be several rim widths wide (below ~12 px Dice falls under 0.9), and pores narrower
than about ``RESOLUTION_LIMIT_PX["topographic"]`` (10 px) are not resolved at all: on sponge
phantoms (rim width 1-3 px, blur 1 px) pores of 5-8 px were reported with a median local
thickness of 8.5-11.3 px (the dark method: 4 px pores as 5.7 px, 5 px and larger within 6 %,
before its rim correction; since, 3.4 px pores come out as 5.2-5.8 px, so its limit is 6 px);
re-measured with the context stage (384 x 512 sponges, seeds 0-1): 8.2-11.7 px, the same as
the first stage alone (the context stage does not move the floor).
These limits hold at a beam blur of about 1 px; a blurrier image has a higher floor
(``benchmarks/bench_resolution.py``, see :data:`RESOLUTION_LIMIT_PX`); both methods report
their limit from the edges they measure (``details["edge_blur_px"]`` dark,
``details["edge_width_px"]`` topographic).
``details["resolution_limit_px"]`` records the limit of the method used; pipeline.structure
flags a minimum layer whose pores are that small (its true pores may be smaller, its depth
uncertain). Closed cells whose walls are thinner than the rim band are found with the walls as
2-px lines, so part of the walls' area is counted as pore; a topographic surface without rims
around its pores (a rough crystalline aggregate whose only pores are black holes) fits neither
model.

Both methods then remove specks below ``min_pore_diameter_um`` and fill holes of that size, and
flag pores cut by the image frame (their size is unknown). ``details`` holds parameters and
diagnostics only (no timings), so a result is byte-identical across runs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numba
import numpy as np
from scipy import ndimage as ndi
from scipy.special import expit, logit, ndtr
from skimage.morphology import skeletonize

from .size import local_thickness

METHODS = ("auto", "dark", "topographic")


@dataclass
class Segmentation:
    """Result of :func:`segment_pores`.

    Attributes
    ----------
    mask : ndarray of bool, shape (rows, cols)
        Pores (True) inside the membrane.
    method : str
        The method actually used (``auto`` resolved).
    edge_pores : ndarray of bool, shape (rows, cols)
        Pore pixels of pores cut by the image frame (their true size is unknown).
    details : dict
        Parameters in px and µm, thresholds, diagnostics (deterministic: no timings).
    pore_probability : ndarray of float32, shape (rows, cols), or None
        ``topographic``: the basin classifier's pore probability of the basin each pixel lies in
        (0 outside the membrane), before the wall lines, the detector shift, the filling of large
        pores and the speck removal that make ``mask``; values near 0.5 mark the basins a
        reviewer should look at first. None for the ``dark`` method and for given masks.
    """

    mask: np.ndarray
    method: str
    edge_pores: np.ndarray
    details: dict = field(default_factory=dict)
    pore_probability: np.ndarray | None = None


# ------------------------------------------------------------------------------------------------
# small helpers


def _components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of a bool mask: (int32 labels, pixel count per label incl. 0)."""
    m = np.ascontiguousarray(mask).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=connectivity,
                                                           ltype=cv2.CV_32S)
    return labels, stats[:, cv2.CC_STAT_AREA].astype(np.int64)


def edge_pore_mask(mask: np.ndarray, membrane_mask: np.ndarray | None = None) -> np.ndarray:
    """Pore pixels of pores that touch the image frame.

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, cols)
        Pore mask.
    membrane_mask : ndarray of bool, optional
        Unused for the decision (a pore ending on the membrane's own surface is a real, complete
        surface pore); accepted for symmetry with :func:`segment_pores`.

    Returns
    -------
    ndarray of bool, shape (rows, cols)
        True on every pixel of an 8-connected pore that has a pixel in the first or last row or
        column.
    """
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        return np.zeros(mask.shape, bool)
    lab, sizes = _components(mask, 8)
    edge_labels = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
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


def _edge_model(x, floor, contrast, edge, blur, rim, rim_width):
    """A blurred step (pore level ``floor`` to ``floor + contrast`` at ``edge``) plus a rim of
    height ``rim`` and intrinsic width ``rim_width`` centred on the edge, blurred by the same
    Gaussian (so the rim seen is never narrower than the blur)."""
    width = np.sqrt(blur ** 2 + rim_width ** 2)
    return (floor + contrast * ndtr((x - edge) / blur)
            + rim * (blur / width) * np.exp(-0.5 * ((x - edge) / width) ** 2))


def fit_rim_profile(x_px: np.ndarray, mean: np.ndarray) -> dict | None:
    """Fit :func:`_edge_model` to an edge profile (:func:`edge_profile`).

    Returns a dict with ``floor``, ``contrast``, ``edge_px`` (edge position relative to the
    threshold edge), ``blur_px``, ``rim_px`` (the rim's width as seen, px), ``rim_fraction`` (the
    height of the rim as seen at the edge over the contrast) or None when the profile is too short
    or the fit fails.
    """
    from scipy.optimize import curve_fit

    if x_px.size < 8:
        return None
    f0, p0 = float(mean[0]), float(mean[-1])
    c0 = p0 - f0
    if not c0 > 0:
        return None
    try:
        par, _ = curve_fit(_edge_model, x_px, mean, p0=[f0, c0, 0.0, 1.0, 0.1 * c0, 1.0],
                           bounds=([f0 - c0, 0.1 * c0, -3.0, 0.3, 0.0, 0.0],
                                   [f0 + c0, 3.0 * c0, 3.0, 5.0, 2.0 * c0, 4.0]),
                           maxfev=4000)
    except (RuntimeError, ValueError):
        return None
    floor, contrast, edge, blur, rim, rim_width = (float(v) for v in par)
    width = math.hypot(blur, rim_width)
    return {"floor": floor, "contrast": contrast, "edge_px": edge, "blur_px": blur,
            "rim_px": width, "rim_fraction": rim * blur / width / contrast}


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
    if rim_fraction >= RIM_GROW_ABOVE:
        info.update(_grow_by_edge_offset(region, out, fit))
        return info
    old = out.copy()
    raised = (thr + frac * (m_poly - m_pore)).astype(np.float32)
    _dark_pass(s, region, raised, f, np.float32(0), False, True, out)
    poly = region & ~old
    poly_thickness_px = local_thickness(poly)
    out &= old | (poly_thickness_px > fit["rim_px"])
    out &= ~_joins_two_pores(old, out, 2.0 * fit["rim_px"])
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
    info["rim_threshold_shift"] = round(frac, 4)
    info["rim_pixels_added"] = int(out.sum() - old.sum())
    return info


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
# topographic method: crest-bounded basins (steepest-descent watershed, numba)


@numba.njit(cache=True, nogil=True, inline="always")
def _neighbour4(p, r, c, k, rows, cols):  # pragma: no cover - compiled
    """Flat index of the ``k``-th 4-neighbour (0 up, 1 down, 2 left, 3 right) of pixel ``p`` at
    row ``r``, column ``c`` of a ``rows`` x ``cols`` image; -1 off the image."""
    if k == 0:
        return p - cols if r > 0 else -1
    if k == 1:
        return p + cols if r < rows - 1 else -1
    if k == 2:
        return p - 1 if c > 0 else -1
    return p + 1 if c < cols - 1 else -1


@numba.njit(cache=True, nogil=True)
def _spread_over_flats(queue, head, tail, qf, par, flat, rows, cols):  # pragma: no cover
    """Breadth-first from ``queue[head:tail]`` over flat pixels of the same level: each flat
    pixel not yet pointing anywhere points to the pixel that reached it first (so it drains
    along the flat towards the start). Returns the new ``tail``."""
    while head < tail:
        p = queue[head]
        head += 1
        r = p // cols
        c = p - r * cols
        v0 = qf[p]
        for k in range(4):
            t = _neighbour4(p, r, c, k, rows, cols)
            if t < 0:
                continue
            if flat[t] and par[t] == t and qf[t] == v0:
                par[t] = p
                flat[t] = False
                queue[tail] = t
                tail += 1
    return tail


@numba.njit(cache=True, nogil=True)
def _descent_labels(q, reg):  # pragma: no cover - compiled
    """Catchment basins of ``q`` inside ``reg`` by steepest descent (4-connected).

    Every pixel points to its lowest strictly lower neighbour; pixels of a flat (no lower
    neighbour, an equal one) point along the flat towards its nearest exit (breadth-first from
    the flat's pixels that touch a lower-draining pixel); a flat without an exit is one regional
    minimum. Each basin is the set of pixels draining to one regional minimum, so basin
    boundaries lie on the crests. A pixel's basin depends only on its descent path (local).

    Returns labels (int32, 1..n, 0 outside), n and the minimum of every basin (index = label).
    """
    rows, cols = q.shape
    n = rows * cols
    qf = q.ravel()
    rf = reg.ravel()
    par = np.empty(n, np.int32)
    nflat = 0
    for p in range(n):
        if not rf[p]:
            par[p] = -1
            continue
        r = p // cols
        c = p - r * cols
        v0 = qf[p]
        best = p
        bv = v0
        eq = False
        for k in range(4):
            t = _neighbour4(p, r, c, k, rows, cols)
            if t < 0:
                continue
            if not rf[t]:
                continue
            v = qf[t]
            if v < bv:
                best = t
                bv = v
            elif v == v0:
                eq = True
        par[p] = best
        if best == p and eq:
            nflat += 1
    if nflat > 0:
        flat = np.zeros(n, np.bool_)
        for p in range(n):
            if par[p] != p:
                continue
            r = p // cols
            c = p - r * cols
            v0 = qf[p]
            if ((r > 0 and rf[p - cols] and qf[p - cols] == v0)
                    or (r < rows - 1 and rf[p + cols] and qf[p + cols] == v0)
                    or (c > 0 and rf[p - 1] and qf[p - 1] == v0)
                    or (c < cols - 1 and rf[p + 1] and qf[p + 1] == v0)):
                flat[p] = True
        queue = np.empty(nflat, np.int32)
        tail = 0
        for p in range(n):
            if not flat[p]:
                continue
            r = p // cols
            c = p - r * cols
            v0 = qf[p]
            for k in range(4):
                t = _neighbour4(p, r, c, k, rows, cols)
                if t < 0:
                    continue
                if rf[t] and not flat[t] and qf[t] == v0:
                    par[p] = t
                    queue[tail] = p
                    tail += 1
                    break
        _spread_over_flats(queue, 0, tail, qf, par, flat, rows, cols)
        # flats without an exit: each is one regional minimum, rooted at its first pixel
        for p in range(n):
            if flat[p] and par[p] == p:
                flat[p] = False
                queue[0] = p
                _spread_over_flats(queue, 0, 1, qf, par, flat, rows, cols)
    lab = np.zeros(n, np.int32)
    nl = 0
    for p in range(n):
        if par[p] < 0 or lab[p] != 0:
            continue
        x = p
        while lab[x] == 0 and par[x] != x:
            x = par[x]
        if lab[x] == 0:
            nl += 1
            lab[x] = nl
        lv = lab[x]
        x = p
        while lab[x] == 0:
            lab[x] = lv
            x = par[x]
    minimum = np.full(nl + 1, np.inf, np.float32)
    for p in range(n):
        if par[p] == p:
            minimum[lab[p]] = qf[p]
    return lab.reshape(rows, cols), nl, minimum


@numba.njit(cache=True, nogil=True)
def _hash_slot(tk, key, bits):  # pragma: no cover - compiled
    mask = (1 << bits) - 1
    h = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits))
    while tk[h] != -1 and tk[h] != key:
        h = (h + 1) & mask
    return h


@numba.njit(cache=True, nogil=True)
def _table_bits(n):  # pragma: no cover - compiled
    bits = 4
    while (1 << bits) < 6 * (n + 1):  # a planar adjacency graph has < 3n edges
        bits += 1
    return bits


@numba.njit(cache=True, nogil=True)
def _table_out(tk, tpass, tlen, tcrest, nmax):  # pragma: no cover - compiled
    m = 0
    for h in range(tk.size):
        if tk[h] != -1:
            m += 1
    keys = np.empty(m, np.int64)
    k = 0
    for h in range(tk.size):
        if tk[h] != -1:
            keys[k] = tk[h]
            k += 1
    keys.sort()
    a = np.empty(m, np.int64)
    b = np.empty(m, np.int64)
    pas = np.empty(m, np.float32)
    length = np.empty(m, np.int64)
    crest = np.empty(m, np.float64)
    bits = 0
    while (1 << bits) < tk.size:
        bits += 1
    for i in range(m):
        h = _hash_slot(tk, keys[i], bits)
        a[i] = keys[i] // nmax
        b[i] = keys[i] % nmax
        pas[i] = tpass[h]
        length[i] = tlen[h]
        crest[i] = tcrest[h]
    return a, b, pas, length, crest


@numba.njit(cache=True, nogil=True)
def _pixel_pairs(labels, q, n):  # pragma: no cover - compiled
    """Adjacent basin pairs (a < b) over all 4-neighbour pixel pairs with two labels > 0: the
    pass (lowest of the higher grey value of the two pixels), the boundary length (pixel
    pairs) and the sum of the higher grey values, sorted by (a, b)."""
    rows, cols = labels.shape
    bits = _table_bits(n)
    size = 1 << bits
    nmax = np.int64(n) + 1
    tk = np.full(size, -1, np.int64)
    tpass = np.empty(size, np.float32)
    tlen = np.zeros(size, np.int64)
    tcrest = np.zeros(size, np.float64)
    last_key = np.full(2, -1, np.int64)  # boundaries run on: reuse the last slot per step
    last_h = np.zeros(2, np.int64)
    for r in range(rows):
        for c in range(cols):
            a = labels[r, c]
            if a <= 0:
                continue
            for step in range(2):
                rr = r + 1 if step == 0 else r
                cc = c if step == 0 else c + 1
                if rr >= rows or cc >= cols:
                    continue
                b = labels[rr, cc]
                if b <= 0 or b == a:
                    continue
                v = max(q[r, c], q[rr, cc])
                key = min(a, b) * nmax + max(a, b)
                if key == last_key[step]:
                    h = last_h[step]
                else:
                    h = _hash_slot(tk, key, bits)
                    last_key[step] = key
                    last_h[step] = h
                if tk[h] == -1:
                    tk[h] = key
                    tpass[h] = v
                    tlen[h] = 1
                    tcrest[h] = v
                else:
                    if v < tpass[h]:
                        tpass[h] = v
                    tlen[h] += 1
                    tcrest[h] += v
    return _table_out(tk, tpass, tlen, tcrest, nmax)


@numba.njit(cache=True, nogil=True)
def _merged_pairs(new, pa, pb, pas, length, crest, n_new):  # pragma: no cover - compiled
    """The pair table of a coarser partition (``new`` maps old labels to new ones)."""
    bits = _table_bits(n_new)
    size = 1 << bits
    nmax = np.int64(n_new) + 1
    tk = np.full(size, -1, np.int64)
    tpass = np.empty(size, np.float32)
    tlen = np.zeros(size, np.int64)
    tcrest = np.zeros(size, np.float64)
    for i in range(pa.size):
        a = new[pa[i]]
        b = new[pb[i]]
        if a == b:
            continue
        key = min(a, b) * nmax + max(a, b)
        h = _hash_slot(tk, key, bits)
        if tk[h] == -1:
            tk[h] = key
            tpass[h] = pas[i]
            tlen[h] = length[i]
            tcrest[h] = crest[i]
        else:
            if pas[i] < tpass[h]:
                tpass[h] = pas[i]
            tlen[h] += length[i]
            tcrest[h] += crest[i]
    return _table_out(tk, tpass, tlen, tcrest, nmax)


@numba.njit(cache=True, nogil=True)
def _merge_by_dynamics(n, pa, pb, pas, order, minimum, h):  # pragma: no cover - compiled
    """Union basins whose dynamics (pass minus the higher of the two component minima) is below
    ``h``, in increasing pass order (``order``: Kruskal; ties by (a, b)). Returns a compact
    relabelling array (size n+1, new labels numbered in order of their smallest old label)."""
    parent = np.arange(n + 1)
    cmin = minimum.copy()
    for k in order:
        a = pa[k]
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        b = pb[k]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if a == b:
            continue
        if pas[k] - max(cmin[a], cmin[b]) < h:
            if a < b:
                parent[b] = a
                cmin[a] = min(cmin[a], cmin[b])
            else:
                parent[a] = b
                cmin[b] = min(cmin[a], cmin[b])
    new = np.zeros(n + 1, np.int32)
    count = 0
    for i in range(1, n + 1):
        r = i
        while parent[r] != r:
            r = parent[r]
        if r == i:
            count += 1
            new[i] = count
    for i in range(1, n + 1):
        r = i
        while parent[r] != r:
            r = parent[r]
        new[i] = new[r]
    return new, count


@numba.njit(cache=True, nogil=True)
def _relabel(labels, new):  # pragma: no cover - compiled
    flat = labels.ravel()
    for p in range(flat.size):
        if flat[p] > 0:
            flat[p] = new[flat[p]]


def watershed_basins(q: np.ndarray, region: np.ndarray,
                     dynamics: float) -> tuple[np.ndarray, int, dict]:
    """Crest-bounded catchment basins of ``q`` inside ``region``, merged by dynamics.

    Steepest-descent watershed (:func:`_descent_labels`), then two basins meeting at a pass
    less than ``dynamics`` (grey units) above the higher of their two minima become one
    (Kruskal order; the result equals flooding from the h-minima, h = ``dynamics``).

    Returns
    -------
    labels : ndarray of int32, shape (rows, cols)
        1..n inside ``region``, 0 outside.
    n : int
    pairs : dict
        ``a``, ``b`` (adjacent labels, a < b), ``length`` (touching pixel pairs), ``crest``
        (mean of the higher grey value across the boundary), ``pass_value`` (grey units).
    """
    q = np.ascontiguousarray(q, np.float32)
    labels, n, minimum = _descent_labels(q, np.ascontiguousarray(region, bool))
    pa, pb, pas, length, crest = _pixel_pairs(labels, q, n)
    if n > 1 and pa.size:
        order = np.argsort(pas, kind="stable")
        new, n = _merge_by_dynamics(n, pa, pb, pas, order, minimum, np.float32(dynamics))
        _relabel(labels, new)
        pa, pb, pas, length, crest = _merged_pairs(new, pa, pb, pas, length, crest, n)
    pairs = {"a": pa, "b": pb, "length": length, "crest": crest / np.maximum(length, 1),
             "pass_value": pas.astype(np.float64)}
    return labels, int(n), pairs


@numba.njit(cache=True, nogil=True)
def _not_boundary(labels):  # pragma: no cover - compiled
    """uint8 1 on pixels without a 4-neighbour of another label (and label > 0), else 0."""
    rows, cols = labels.shape
    out = np.ones((rows, cols), np.uint8)
    for r in range(rows):
        for c in range(cols):
            a = labels[r, c]
            if a <= 0:
                out[r, c] = 0
                continue
            if r + 1 < rows and labels[r + 1, c] != a:
                out[r, c] = 0
                out[r + 1, c] = 0
            if c + 1 < cols and labels[r, c + 1] != a:
                out[r, c] = 0
                out[r, c + 1] = 0
    return out


def _distance_to_boundary(labels: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of each pixel to the nearest pixel that has a 4-neighbour with
    another label (boundary pixels on both sides of a crest are at 0)."""
    return cv2.distanceTransform(_not_boundary(labels), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


#: Distance bins (px, rounded) of the per-basin profiles against the distance to the crest.
PROFILE_BINS = 24


@numba.njit(cache=True, nogil=True)
def _basin_pass1(labels, q, d, n, nk):  # pragma: no cover - compiled
    rows, cols = labels.shape
    area = np.zeros(n)
    sq = np.zeros(n)
    sr = np.zeros(n)
    sc = np.zeros(n)
    maxd = np.zeros(n)
    cnt = np.zeros((n, nk))
    prof = np.zeros((n, nk))
    for r in range(rows):
        for c in range(cols):
            lab = labels[r, c]
            if lab <= 0:
                continue
            i = lab - 1
            v = q[r, c]
            dd = d[r, c]
            area[i] += 1.0
            sq[i] += v
            sr[i] += r
            sc[i] += c
            if dd > maxd[i]:
                maxd[i] = dd
            k = min(int(math.floor(dd + 0.5)), nk - 1)
            cnt[i, k] += 1.0
            prof[i, k] += v
    return area, sq, sr, sc, maxd, cnt, prof


@numba.njit(cache=True, nogil=True)
def _basin_pass2(labels, q, d, n, reach, cy, cx):  # pragma: no cover - compiled
    """Per basin: core (d >= reach), ring (reach/2 <= d < reach) and rim (d < 1.5) counts and
    sums, and the brightness dipole sums of the rim zone and the floor zone (1.5 <= d <
    max(reach, 2.5)): sum of q * u and of u, u the unit vector from the basin centroid."""
    rows, cols = labels.shape
    acc = np.zeros((6, n))  # core n, core sum, ring n, ring sum, rim n, rim sum
    zone = np.zeros((2, 6, n))  # count, sum q, sum q uy, sum q ux, sum uy, sum ux
    outer = max(reach, 2.5)
    for r in range(rows):
        for c in range(cols):
            lab = labels[r, c]
            if lab <= 0:
                continue
            i = lab - 1
            v = q[r, c]
            dd = d[r, c]
            if dd >= reach:
                acc[0, i] += 1.0
                acc[1, i] += v
            elif dd >= 0.5 * reach:
                acc[2, i] += 1.0
                acc[3, i] += v
            if dd < 1.5:
                z = 0
                acc[4, i] += 1.0
                acc[5, i] += v
            elif dd < outer:
                z = 1
            else:
                continue
            vy = r - cy[i]
            vx = c - cx[i]
            norm = math.sqrt(vy * vy + vx * vx) + 1e-9
            uy = vy / norm
            ux = vx / norm
            zone[z, 0, i] += 1.0
            zone[z, 1, i] += v
            zone[z, 2, i] += v * uy
            zone[z, 3, i] += v * ux
            zone[z, 4, i] += uy
            zone[z, 5, i] += ux
    return acc, zone


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order])
    if cw.size == 0:
        return 0.0
    if cw[-1] <= 0:
        return float(np.median(values))
    return float(values[order][min(np.searchsorted(cw, q * cw[-1]), len(values) - 1)])


def _interquartile_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean of the values between the weighted 25th and 75th percentiles."""
    if values.size == 0:
        return 0.0
    lo = _weighted_quantile(values, weights, 0.25)
    hi = _weighted_quantile(values, weights, 0.75)
    sel = (values >= lo) & (values <= hi)
    if not sel.any() or weights[sel].sum() <= 0:
        return float(np.median(values))
    return float(np.average(values[sel], weights=weights[sel]))


def _rim_reach(cnt: np.ndarray, prof: np.ndarray, n_pixels: int) -> tuple[float, float]:
    """Rim half-width and reach (px) from the profile of grey level against distance to the
    crest, pooled over all basins."""
    tot = cnt.sum(0)
    gp = prof.sum(0) / np.maximum(tot, 1)
    valid = tot >= max(50.0, 0.002 * n_pixels)
    upto = int(np.argmin(valid)) if not valid[:13].all() else 13
    gp = gp[: max(upto, 3)]
    p0, pmin = gp[0], gp.min()
    half = 0.5 * (p0 + pmin)
    k1 = int(np.argmax(gp <= half))
    if k1 >= 1 and gp[k1 - 1] > gp[k1]:
        d_half = k1 - 1 + (gp[k1 - 1] - half) / (gp[k1 - 1] - gp[k1])
    else:
        d_half = 1.0
    return float(d_half), float(max(2.0, 2.5 * d_half))


def _measure_basins(q: np.ndarray, labels: np.ndarray, n: int,
                    reach: float | None) -> dict:
    """Per-basin measurements (pixel passes); ``reach`` None: measured from these basins."""
    d = _distance_to_boundary(labels)
    area, sq, sr, sc, maxd, cnt, prof = _basin_pass1(labels, q, d, n, PROFILE_BINS)
    if reach is None:
        d_half, reach = _rim_reach(cnt, prof, int(area.sum()))
    else:
        d_half = reach / 2.5
    a1 = np.maximum(area, 1)
    cy, cx = sr / a1, sc / a1
    acc, zone = _basin_pass2(labels, q, d, n, float(reach), cy, cx)
    lm = sq / a1
    nc = acc[0]
    lc = np.where(nc > 0, acc[1] / np.maximum(nc, 1), lm)
    lr = np.where(acc[2] > 0, acc[3] / np.maximum(acc[2], 1), lm)
    lrim = acc[5] / np.maximum(acc[4], 1)
    dip = []
    for z in range(2):
        nz = np.maximum(zone[z, 0], 1)
        mean = zone[z, 1] / nz
        dip.append(((zone[z, 2] - mean * zone[z, 4]) / nz, (zone[z, 3] - mean * zone[z, 5]) / nz))
    return {"area": area, "maxd": maxd, "cnt": cnt, "prof": prof, "lm": lm, "lc": lc,
            "lr": lr, "lrim": lrim, "nc": nc, "rim_dipole": dip[0], "floor_dipole": dip[1],
            "reach": float(reach), "d_half": float(d_half), "distance": d}


def _pair_stats(raw: dict, pairs: dict, n: int, nq: float, reach: float) -> dict:
    """Per-basin statistics over the crests it shares: mean crest, mean neighbour core level,
    share of brighter neighbours, brightest/darkest neighbour and the matched-distance vote."""
    lc = raw["lc"]
    a = pairs["a"] - 1
    b = pairs["b"] - 1
    length = pairs["length"].astype(np.float64)
    wsum = np.bincount(a, weights=length, minlength=n) + np.bincount(b, weights=length,
                                                                       minlength=n)
    wsum = np.maximum(wsum, 1e-9)
    crest = (np.bincount(a, weights=pairs["crest"] * length, minlength=n)
             + np.bincount(b, weights=pairs["crest"] * length, minlength=n)) / wsum
    nb = (np.bincount(a, weights=lc[b] * length, minlength=n)
          + np.bincount(b, weights=lc[a] * length, minlength=n)) / wsum
    brighter = ((np.bincount(a, weights=(lc[b] > lc[a] + nq) * length, minlength=n)
                 + np.bincount(b, weights=(lc[a] > lc[b] + nq) * length, minlength=n)) / wsum)
    nbmax, nbmin = _neighbour_extremes(a, b, lc)
    cnt, prof, maxd = raw["cnt"], raw["prof"], raw["maxd"]
    nk = cnt.shape[1]
    pa_prof = prof / np.maximum(cnt, 1)
    ks = np.arange(nk)[None, :]
    kmax = np.minimum(np.minimum(maxd[a], maxd[b]), 3 * reach)[:, None]
    wgt = np.minimum(cnt[a], cnt[b]) * (ks >= 1) * (ks <= kmax)
    wt = wgt.sum(1)
    diff = (wgt * (pa_prof[a] - pa_prof[b])).sum(1) / np.maximum(wt, 1e-9)
    t = np.tanh(diff / (2 * nq)) * (wt > 0)
    vote = (np.bincount(a, weights=-t * length, minlength=n)
            + np.bincount(b, weights=t * length, minlength=n)) / wsum
    return {"crest": crest, "nb": nb, "brighter": brighter, "nbmax": nbmax, "nbmin": nbmin,
            "vote": vote}


#: Quantiles of the area-weighted core-level distribution kept for the ``level_rank`` feature.
RANK_TABLE = 129


def _cut_basins(labels: np.ndarray, region: np.ndarray, n: int) -> np.ndarray:
    """Basins cut by the region's edge or the image frame (bool, n): their rims are incomplete,
    so their brightness dipoles point across the cut, not at the detector."""
    edge = region & ~ndi.binary_erosion(region, border_value=0)
    cut = np.zeros(n + 1, bool)
    cut[labels[edge]] = True
    return cut[1:]


def _calibrate(raw: dict, ps: dict, nq: float, cut: np.ndarray | None = None) -> dict:
    """Image-level normalisation of the basin features, measured once (on the sample): typical
    crest contrast, median and spread of the core levels, their distribution, the rim reach and
    the detector direction (principal axis of the rim dipoles of the basins not cut by the
    region's edge, ``cut``)."""
    lc, area = raw["lc"], raw["area"]
    med_lc = _weighted_quantile(lc, area, 0.5)
    iqr = max(_weighted_quantile(lc, area, 0.75) - _weighted_quantile(lc, area, 0.25), 1e-6)
    # the typical crest height: an interquartile mean, not a median (the area-weighted
    # distribution is often bimodal, and its median jumped between the modes when a sliver of
    # the region changed)
    contrast = max(_interquartile_mean(ps["crest"] - lc, area), 1e-6)
    order = np.argsort(lc, kind="stable")
    cdf = np.cumsum(area[order]) / max(area.sum(), 1e-12)
    probs = np.linspace(0, 1, RANK_TABLE)
    table = np.interp(probs, cdf, lc[order]) if lc.size else np.zeros(RANK_TABLE)
    ry, rx = raw["rim_dipole"]
    w = area
    # basins cut by the region's edge have rims on one side only: their dipoles point across the
    # cut (along the surface normal), which made the axis and strength depend on a 1-2 px change
    # of the membrane mask (random phantom 2: strength 0.008 / 0.029 / 0.065 for the region
    # eroded by 1 px / as is / grown by 2 px; porosity 0.76 / 0.70 / 0.50, true 0.71)
    if cut is not None and area[~cut].sum() >= 0.25 * area.sum():
        w = np.where(cut, 0.0, area)
    m = np.array([[np.sum(w * ry * ry), np.sum(w * ry * rx)],
                  [np.sum(w * ry * rx), np.sum(w * rx * rx)]])
    evals, evecs = np.linalg.eigh(m)
    axis = evecs[:, 1]
    proj = ry * axis[0] + rx * axis[1]
    # sign: a pore's rim is brighter on the detector side, so the dipoles of the basins darker
    # than the median point along the axis; weighted by how much darker (a sign vote of darker
    # against brighter basins flipped the axis of a random phantom whose pore floors are as
    # bright as the polymer face: 33/36 right on random and benchmark phantoms, weighted 35/36)
    if np.sum(w * proj * (med_lc - lc)) < 0:
        axis = -axis
    strength = float(math.sqrt(max(evals[1], 0) / max(w.sum(), 1e-9)) / contrast)
    anisotropy = float((evals[1] - evals[0]) / max(evals[1] + evals[0], 1e-12))
    return {"nq": float(nq), "reach": raw["reach"], "d_half": raw["d_half"],
            "med_lc": med_lc, "iqr": iqr, "contrast": contrast,
            "rank_levels": table.astype(np.float64), "axis": axis.astype(np.float64),
            "dipole_strength": strength * anisotropy}


def detector_direction(calibration: dict) -> dict:
    """The secondary-electron detector's direction as the topographic calibration measured it.

    Edges facing the detector are brighter, so pore rims are brighter on one side; the
    calibration's axis is the principal direction of the basins' rim-brightness dipoles.
    Returns ``detector_direction_deg`` (degrees in [0, 360), counter-clockwise from the image's
    +x axis as displayed: the side on which pore rims are brighter) and
    ``detector_dipole_strength`` (how directional the rims are, in units of the crest contrast;
    near 0 the rims are isotropic and the direction means nothing). On pipeline.synthetic
    sponges rendered with ``light_angle_deg`` 0-300 it is found within 3 degrees (strength
    0.05-0.07). Empty when the calibration has no axis.
    """
    axis = calibration.get("axis")
    if axis is None or len(axis) != 2:
        return {}
    deg = math.degrees(math.atan2(-float(axis[0]), float(axis[1]))) % 360.0
    return {"detector_direction_deg": round(deg, 2),
            "detector_dipole_strength": round(float(calibration.get("dipole_strength", 0.0)), 5)}


def _features(raw: dict, ps: dict, cal: dict) -> np.ndarray:
    """The basin feature matrix (n x len(FEATURE_NAMES)), normalised by ``cal``."""
    lc, lm, lr, lrim, area = raw["lc"], raw["lm"], raw["lr"], raw["lrim"], raw["area"]
    contrast, med_lc, nq, reach = cal["contrast"], cal["med_lc"], cal["nq"], cal["reach"]
    table = cal["rank_levels"]
    # rank: area share of basins with a lower core level (from the calibration's table)
    rank = np.interp(lc, table, np.linspace(0, 1, table.size))
    ax = cal["axis"]
    ry, rx = raw["rim_dipole"]
    fy, fx = raw["floor_dipole"]
    return np.column_stack([
        (lc - med_lc) / contrast,
        (lr - lc) / contrast,
        ps["vote"],
        np.log(raw["maxd"] / reach + 1e-3),
        (lrim - lc) / contrast,
        (ps["crest"] - lc) / contrast,
        (ps["nb"] - lc) / contrast,
        (lm - med_lc) / contrast,
        np.clip((lc - med_lc) / nq, -200, 200) / 10,
        np.log(area / reach**2),
        ps["brighter"],
        (lc - med_lc) / cal["iqr"],
        rank,
        (ps["nbmax"] - lc) / contrast,
        (lc - ps["nbmin"]) / contrast,
        (ry * ax[0] + rx * ax[1]) / contrast,
        (fy * ax[0] + fx * ax[1]) / contrast,
        np.full(lc.size, cal["dipole_strength"]),
    ]).astype(np.float32)


FEATURE_NAMES = (
    "level", "bowl", "vote", "log_size", "rim", "crest", "neighbour", "mean_level",
    "level_snr", "log_area", "brighter_neighbours", "level_iqr", "level_rank",
    "max_neighbour", "min_neighbour", "detector_dipole_rim", "detector_dipole_floor",
    "detector_dipole_strength",
)

#: Noise smoothing (Gaussian sigma, px) before the basin watershed of the topographic method.
BASIN_SMOOTHING_PX = 0.7
#: Basins meeting at a pass less than this many noise sigmas (of the smoothed image) above the
#: higher minimum are merged. Low on purpose: a fine partition loses less boundary than merging
#: across weak crests does, and the classifier sees each basin's neighbours.
BASIN_DYNAMICS_K = 3.0


#: Relative noise (noise sigma of q over the separation of its two Otsu classes, both at the basin
#: smoothing; :func:`relative_noise`) above which the topographic method smooths more. Quiet
#: images stay below it: the 28 topographic ones of 60 random phantoms
#: (``pipeline.synthetic.random_phantom``, shot noise 0.02-0.1) read 0.04-0.14, pores too small
#: to resolve on quiet images up to 0.22 (more smoothing does not help them); shot noise 0.2 on
#: 16 px pores reads 0.22-0.23, 0.3 reads 0.31.
NOISY_Q_RATIO = 0.22
#: Relative noise over which the smoothing grows from the basin smoothing to twice it (at
#: ``NOISY_Q_RATIO + NOISY_Q_RAMP`` and above; beyond it the 1-3 px rims fade faster than the
#: noise). Chosen with the threshold on 85 topographic renderings of three renderers (6-24 px
#: pores, quiet to shot noise 0.45): mean Dice +0.026 over a fixed 0.7 px (the best sigma per
#: image: +0.044; 1.4 px everywhere: +0.009), 3 losses over 0.02, all on unresolved 6 px pores.
NOISY_Q_RAMP = 0.15
#: Images whose plain-threshold edges (:func:`threshold_edge_width_px`) are wider than this (px)
#: are not smoothed more whatever their relative noise: there smoothing gains nothing (sponge
#: phantoms at a beam blur of 4 px, under a rule on the crest contrast: Dice 0.683 -> 0.671).
#: Noise narrows the measured width (0.6-1.3 px at shot noise 0.2-0.45), blur widens it (2.1-4 px
#: at sigma 2-4); the value is where the topographic resolution limit starts to grow with it.
NOISY_MAX_EDGE_WIDTH_PX = 10.0 / 6.0


def relative_noise(basins: dict, region: np.ndarray) -> float:
    """Noise of a topographic image relative to its grey-level contrast (dimensionless).

    The noise sigma of the flattened, smoothed image ``q`` of :func:`topographic_basins` over
    the difference of the mean levels of its two Otsu classes inside ``region``. Not over the
    crest contrast: pores too small to resolve have low crests on a quiet image (the fingers
    example image: 0.23 over the crest contrast, 0.10 over the class separation) and gain
    nothing from more smoothing (Dice 0.710 -> 0.685 at 1.4 px). NaN without two classes.
    The smoothed image ``q`` is relative to the local median level, so this is the noise in
    units of the pore/polymer contrast, whatever the brightness and contrast settings.
    """
    from skimage.filters import threshold_otsu

    v = np.asarray(basins["q"])[region]
    v = v[np.isfinite(v)]
    if v.size < 2 or not np.ptp(v) > 0:
        return float("nan")
    t = threshold_otsu(v)
    separation = float(v[v > t].mean() - v[v <= t].mean())
    return float(basins["noise_q"]) / separation if separation > 0 else float("nan")


def noise_adapted_smoothing_px(ratio: float, smoothing_px: float = BASIN_SMOOTHING_PX,
                               edge_width_px: float | None = None) -> float:
    """Basin smoothing sigma (px) for a topographic image of relative noise ``ratio``.

    ``ratio`` (:func:`relative_noise`, measured at ``smoothing_px``) up to
    :data:`NOISY_Q_RATIO` keeps ``smoothing_px``; above it the sigma grows linearly to twice
    ``smoothing_px`` at ``NOISY_Q_RATIO + NOISY_Q_RAMP`` (white noise falls as ``1 / sigma``
    through a Gaussian, the 1-3 px rims less). A blurred image (``edge_width_px`` above
    :data:`NOISY_MAX_EDGE_WIDTH_PX`; None: not measured) keeps ``smoothing_px``, as does a NaN
    ratio. ``benchmarks/bench_noise.py`` measures it on phantoms with shot noise 0.05-0.45.
    """
    if not math.isfinite(ratio):
        return smoothing_px
    if edge_width_px is not None and edge_width_px > NOISY_MAX_EDGE_WIDTH_PX:
        return smoothing_px
    excess = (ratio - NOISY_Q_RATIO) / NOISY_Q_RAMP
    return float(smoothing_px * (1.0 + min(max(excess, 0.0), 1.0)))


def smoothing_for_noise(basins: dict, sample_img: np.ndarray, sample_reg: np.ndarray,
                        smoothing_px: float) -> tuple[float, float, float | None]:
    """Noise-adapted basin smoothing of an image from its basins at ``smoothing_px`` (a dict of
    :func:`topographic_basins`) and its sample: ``(sigma_px, relative_noise, edge_width_px)``
    (the edge width is measured only when the relative noise exceeds :data:`NOISY_Q_RATIO`,
    else None)."""
    ratio = relative_noise(basins, sample_reg)
    if not ratio > NOISY_Q_RATIO:
        return smoothing_px, ratio, None
    width = threshold_edge_width_px(sample_img, sample_reg)
    sigma = noise_adapted_smoothing_px(ratio, smoothing_px,
                                       width if math.isfinite(width) else None)
    return sigma, ratio, width


def _noise_q(noise: float, med_level: float, smoothing_px: float) -> float:
    """Noise sigma of the flattened, smoothed image q (white noise through a Gaussian)."""
    nq = noise / max(med_level, 1e-6) / (2 * math.sqrt(math.pi) * max(smoothing_px, 0.5))
    return max(nq, 1e-6)


def basins_from_q(q: np.ndarray, region: np.ndarray, nq: float, *,
                  dynamics_k: float = BASIN_DYNAMICS_K, calibration: dict | None = None) -> dict:
    """Basins of the flattened image ``q`` with their features.

    With ``calibration`` None the image calibrates itself (the rim reach and the feature
    normalisation are measured on these basins and returned in ``out["calibration"]``).
    """
    labels, n, pairs = watershed_basins(q, region, dynamics_k * nq)
    out = {"labels": labels, "pairs": pairs, "n": n, "q": q, "noise_q": nq}
    if n == 0:
        out.update(features=np.zeros((0, len(FEATURE_NAMES)), np.float32), area=np.zeros(0),
                   core_level=np.zeros(0), calibration=calibration)
        return out
    raw = _measure_basins(q, labels, n, None if calibration is None else calibration["reach"])
    ps = _pair_stats(raw, pairs, n, nq, raw["reach"])
    cal = (_calibrate(raw, ps, nq, _cut_basins(labels, region, n)) if calibration is None
           else calibration)
    out.update(features=_features(raw, ps, cal), area=raw["area"], core_level=raw["lc"],
               calibration=cal, reach_px=raw["reach"], rim_half_width_px=raw["d_half"],
               crest_contrast=cal["contrast"], distance_px=raw["distance"],
               large_area_fraction=float(raw["area"][raw["nc"] >= 5].sum()
                                         / max(raw["area"].sum(), 1)))
    out["rim_score"] = rim_score(raw["lc"], pairs, nq)
    out["rim_score_all"] = rim_score(raw["lc"], pairs, nq, top_fraction=0.0)
    return out


def rim_score(core_level: np.ndarray, pairs: dict, noise_q: float,
              top_fraction: float = 0.66) -> float:
    """How much brighter the crests between basins are than the brighter of the two basins,
    relative to the two basins' difference: the length-weighted median over crests whose sides
    differ by more than 3 noise sigmas (and, with ``top_fraction``, only the crests with the
    largest differences). Near 0 when the polymer itself is the crest (material contrast), of
    order 1 or more when bright rims stand above both sides (topography)."""
    a = pairs["a"] - 1
    b = pairs["b"] - 1
    if a.size == 0:
        return 0.0
    la, lb = core_level[a], core_level[b]
    diff = np.abs(la - lb)
    sel = diff > 3 * noise_q
    if sel.sum() < 5:
        return 0.0
    if top_fraction > 0:
        cut = _weighted_quantile(diff[sel], pairs["length"][sel].astype(np.float64),
                                 top_fraction)
        sel &= diff >= cut
    ratio = (pairs["crest"][sel] - np.maximum(la, lb)[sel]) / diff[sel]
    return _weighted_quantile(ratio, pairs["length"][sel].astype(np.float64), 0.5)



STYLE_FEATURE_NAMES = (
    "rim_score", "rim_score_all", "dark_class_spread", "bright_to_dark_thickness",
    "bright_thickness_per_reach", "dark_class_bowl", "skewness", "large_basin_area",
    "crest_contrast", "otsu_separability", "gradient_middle_to_bright",
    "gradient_middle_to_dark", "middle_fraction", "bright_fraction", "bright_interior_fraction",
    "bright_overshoot",
)


def contrast_features(basins: dict, region: np.ndarray) -> np.ndarray:
    """Image-level evidence for material versus topographic contrast (``STYLE_FEATURE_NAMES``).

    Computed on the flattened, smoothed image of :func:`topographic_basins` split in two by
    Otsu's threshold: how much the crests stand above the brighter basin (rim score), how
    uniform the dark class is and whether it darkens away from its edge (shaded pore floors), how
    thick the bright class is (polymer plateaus versus thin rims, relative to the dark class and to
    the measured rim reach), the skewness of the grey levels (a tail of bright rims), the share of
    basins wide enough to have a rim-free core, and the class separability.
    """
    from skimage.filters import threshold_otsu

    q = basins["q"]
    v = q[region].astype(np.float64)
    t = float(threshold_otsu(v))
    dark = (q < t) & region
    bright = region & ~dark
    mu_d = float(v[v < t].mean()) if (v < t).any() else t
    mu_b = float(v[v >= t].mean()) if (v >= t).any() else t
    contrast = max(mu_b - mu_d, 1e-6)
    dd = cv2.distanceTransform(dark.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    core = dd >= 2
    if core.sum() >= 20:
        qc = q[core]
        spread = 1.4826 * float(np.median(np.abs(qc - np.median(qc)))) / contrast
    else:
        spread = 0.0
    near = (dd >= 1) & (dd < 2)
    deep = (dd >= 3) & (dd < 6)
    bowl = (float(q[near].mean() - q[deep].mean()) / contrast
            if near.sum() >= 20 and deep.sum() >= 20 else 0.0)
    hd_b = hydraulic_diameter_px(bright, region)
    hd_d = max(hydraulic_diameter_px(dark, region), 1e-6)
    sd = float(v.std())
    skew = float(((v - v.mean()) ** 3).mean() / max(sd, 1e-9) ** 3)
    eta = float((v < t).mean() * (v >= t).mean() * contrast**2 / max(sd**2, 1e-12))
    p90, p10 = np.percentile(v, [90, 10])
    # three grey classes: is the middle class flat (a polymer face) or an edge transition?
    from skimage.filters import threshold_multiotsu

    try:
        t1, t2 = threshold_multiotsu(v, classes=3)
    except ValueError:
        t1, t2 = t, t
    gy, gx = np.gradient(q)
    grad = np.hypot(gx, gy)
    inner = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    n_inner = max(int(inner.sum()), 1)
    classes = (inner & (q < t1), inner & (q >= t1) & (q < t2), inner & (q >= t2))
    g_med = [float(np.median(grad[c])) if c.sum() >= 20 else 0.0 for c in classes]
    # bright class: interior far from the dark class, and its brightness near the dark class
    # compared with its interior (an overshoot is a rim)
    db = cv2.distanceTransform(bright.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    interior = db >= 4
    edge_side = (db >= 1) & (db < 2.5)
    overshoot = (float(q[edge_side].mean() - q[interior].mean()) / contrast
                 if interior.sum() >= 20 and edge_side.sum() >= 20 else 0.0)
    return np.array([
        basins.get("rim_score", 0.0),
        basins.get("rim_score_all", 0.0),
        spread,
        hd_b / hd_d,
        hd_b / max(basins.get("reach_px", 2.0), 1e-6),
        bowl,
        skew,
        basins.get("large_area_fraction", 0.0),
        basins.get("crest_contrast", 0.0) / max(float(p90 - p10), 1e-6),
        eta,
        g_med[1] / max(g_med[2], 1e-9),
        g_med[1] / max(g_med[0], 1e-9),
        classes[1].sum() / n_inner,
        classes[2].sum() / n_inner,
        float(interior.sum()) / max(float(bright.sum()), 1.0),
        overshoot,
    ], np.float64)




# ------------------------------------------------------------------------------------------------
# the basin classifier: a gradient-boosted tree ensemble stored as plain arrays


def export_tree_model(model, prefix: str = "basin_") -> dict[str, np.ndarray]:
    """A fitted binary ``HistGradientBoostingClassifier`` as plain arrays (keys start with
    ``prefix``), for :func:`tree_model_proba`; written with ``numpy.savez_compressed``."""
    feature, threshold, left, right, leaf, value, missing_left = [], [], [], [], [], [], []
    roots = []
    offset = 0
    for stage in model._predictors:
        nodes = stage[0].nodes
        roots.append(offset)
        feature.append(nodes["feature_idx"].astype(np.int16))
        threshold.append(nodes["num_threshold"].astype(np.float64))
        left.append(nodes["left"].astype(np.int32) + offset)
        right.append(nodes["right"].astype(np.int32) + offset)
        leaf.append(nodes["is_leaf"].astype(bool))
        value.append(nodes["value"].astype(np.float64))
        missing_left.append(nodes["missing_go_to_left"].astype(bool))
        offset += len(nodes)
    arrays = dict(
        feature=np.concatenate(feature), threshold=np.concatenate(threshold),
        left=np.concatenate(left), right=np.concatenate(right), leaf=np.concatenate(leaf),
        value=np.concatenate(value), missing_left=np.concatenate(missing_left),
        roots=np.asarray(roots, np.int32),
        baseline=np.asarray(model._baseline_prediction, np.float64).ravel())
    return {prefix + k: v for k, v in arrays.items()}


@numba.njit(cache=True, nogil=True)
def _tree_raw(x, roots, feature, threshold, left, right, leaf, value,
              missing_left):  # pragma: no cover - compiled
    n = x.shape[0]
    raw = np.zeros(n)
    for i in range(n):
        acc = 0.0
        for t in range(roots.size):
            node = roots[t]
            while not leaf[node]:
                v = x[i, feature[node]]
                if np.isnan(v):
                    go_left = missing_left[node]
                else:
                    go_left = v <= threshold[node]
                node = left[node] if go_left else right[node]
            acc += value[node]
        raw[i] = acc
    return raw


def tree_model_log_odds(model: dict, x: np.ndarray) -> np.ndarray:
    """Log-odds of the positive class from an exported tree ensemble (see
    :func:`export_tree_model`); x has shape (n, n_features)."""
    x = np.ascontiguousarray(x, np.float64)
    raw = _tree_raw(x, model["roots"].astype(np.int64), model["feature"].astype(np.int64),
                    model["threshold"].astype(np.float64), model["left"].astype(np.int64),
                    model["right"].astype(np.int64), model["leaf"].astype(np.bool_),
                    model["value"].astype(np.float64), model["missing_left"].astype(np.bool_))
    return raw + float(model["baseline"][0])


def tree_model_proba(model: dict, x: np.ndarray) -> np.ndarray:
    """Probability of the positive class from an exported tree ensemble (see
    :func:`export_tree_model`); x has shape (n, n_features)."""
    return expit(tree_model_log_odds(model, x))


#: The trained classifiers shipped with the package (written by tools/train_segmenter.py).
MODEL_PATH = Path(__file__).parent / "data" / "segment_models.npz"


@functools.lru_cache(maxsize=4)
def load_models(path: str | None = None) -> dict | None:
    """The shipped classifiers: ``{"basin": {...}, "style": {...}, "meta": str}`` or None when
    the file is absent. Raises ValueError when the file was written for other features."""
    p = Path(path) if path else MODEL_PATH
    if not p.exists():
        return None
    with np.load(p, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    basin_names = tuple(str(x) for x in arrays.get("basin_feature_names", ()))
    style_names = tuple(str(x) for x in arrays.get("style_feature_names", ()))
    if basin_names != FEATURE_NAMES or style_names != STYLE_FEATURE_NAMES:
        raise ValueError(f"{p}: classifiers were trained on other features than this version "
                         "computes; retrain with tools/train_segmenter.py")
    basin = {k[len("basin_"):]: v for k, v in arrays.items() if k.startswith("basin_")}
    if "context_roots" in arrays:
        names = tuple(str(x) for x in arrays["context_feature_names"])
        if names != FEATURE_NAMES + CONTEXT_FEATURE_NAMES:
            raise ValueError(f"{p}: the context classifier was trained on other features than "
                             "this version computes; retrain with tools/train_segmenter.py")
        basin["context"] = {k[len("context_"):]: v for k, v in arrays.items()
                            if k.startswith("context_")}
    return {
        "basin": basin,
        "smoothing_px": float(arrays.get("basin_smoothing_px", BASIN_SMOOTHING_PX)),
        "dynamics_k": float(arrays.get("basin_dynamics_k", BASIN_DYNAMICS_K)),
        "style": {k[len("style_"):]: v for k, v in arrays.items() if k.startswith("style_")},
        "meta": str(arrays.get("meta", "")),
    }


def style_probability(features: np.ndarray, style_model: dict) -> float:
    """Probability that an image is topographic (tree ensemble on :func:`contrast_features`)."""
    x = np.nan_to_num(np.asarray(features, np.float64))[None, :]
    return float(tree_model_proba(style_model, x)[0])


CONTEXT_FEATURE_NAMES = (
    "p_logit", "neighbour_p", "neighbour_p_max", "neighbour_p_min", "neighbour_p_strong_crest",
    "level_between_classes", "neighbour_p_2hop", "neighbour_p_area",
)


def _neighbour_extremes(a: np.ndarray, b: np.ndarray, value: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Per basin, the largest and smallest ``value`` among the basins across its crests (its
    own value when it has none)."""
    hi = np.full(value.size, -np.inf)
    lo = np.full(value.size, np.inf)
    np.maximum.at(hi, a, value[b])
    np.maximum.at(hi, b, value[a])
    np.minimum.at(lo, a, value[b])
    np.minimum.at(lo, b, value[a])
    return np.where(np.isfinite(hi), hi, value), np.where(np.isfinite(lo), lo, value)


def _across(a: np.ndarray, b: np.ndarray, weight: np.ndarray, value: np.ndarray,
            n: int) -> np.ndarray:
    """Per basin, the sum over its crests of ``weight`` x ``value`` of the basin across."""
    return (np.bincount(a, weights=weight * value[b], minlength=n)
            + np.bincount(b, weights=weight * value[a], minlength=n))


def context_features(features: np.ndarray, p: np.ndarray, a: np.ndarray, b: np.ndarray,
                     length: np.ndarray, crest: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Neighbourhood features of the second (context) stage of the basin classifier.

    Parameters
    ----------
    features : ndarray, shape (n, len(FEATURE_NAMES))
        First-stage basin features (:func:`basins_from_q`).
    p : ndarray, shape (n,)
        First-stage pore probability of every basin.
    a, b : ndarray of int, shape (m,)
        The two basins (0-based) of every crest.
    length : ndarray, shape (m,)
        Crest length, px.
    crest : ndarray, shape (m,)
        Crest level in the units of the ``level`` feature (``(crest - med_lc) / contrast``).
    area : ndarray, shape (n,)
        Basin area, px.

    Returns
    -------
    ndarray, shape (n, len(CONTEXT_FEATURE_NAMES))
        The first-stage logit; the crest-length weighted mean, max and min of the neighbours'
        probabilities; their mean weighted by how far each crest stands above the brighter of
        its two basins (neighbours across real rims); the basin's level between the neighbours'
        pore-like and polymer-like levels (0 at the first, 1 at the second); the mean over the
        neighbours of their own neighbour mean (two crests away); the neighbours' mean weighted
        by the geometric mean of the two areas. A basin without neighbours gets its own
        values (and a level halfway, 0.5). The first-stage probability is clipped to
        [1e-4, 1 - 1e-4] first (as in training).
    """
    n = features.shape[0]
    p = np.clip(np.asarray(p, np.float64), 1e-4, 1 - 1e-4)
    level = features[:, FEATURE_NAMES.index("level")].astype(np.float64)
    w = np.asarray(length, np.float64)
    ones = np.ones(n)

    def mean_across(weight: np.ndarray, value: np.ndarray, fill: np.ndarray) -> np.ndarray:
        total = _across(a, b, weight, ones, n)
        return np.where(total > 0, _across(a, b, weight, value, n) / np.maximum(total, 1e-12),
                        fill)

    nb_mean = mean_across(w, p, p)
    nb_max, nb_min = _neighbour_extremes(a, b, p)
    rim = w * np.maximum(np.asarray(crest, np.float64) - np.maximum(level[a], level[b]), 0.0)
    nb_strong = mean_across(rim, p, nb_mean)
    pore_level = (_across(a, b, w, p * level, n) / np.maximum(_across(a, b, w, p, n), 1e-12))
    poly_level = (_across(a, b, w, (1 - p) * level, n)
                  / np.maximum(_across(a, b, w, 1 - p, n), 1e-12))
    gap = poly_level - pore_level
    gap = np.where(np.abs(gap) > 1e-3, gap, 1e-3)
    between = np.where(_across(a, b, w, ones, n) > 0,
                       np.clip((level - pore_level) / gap, -3.0, 3.0), 0.5)
    nb_2hop = mean_across(w, nb_mean, nb_mean)
    ar = np.asarray(area, np.float64)
    nb_area = mean_across(np.sqrt(ar[a] * ar[b]), p, p)
    return np.column_stack([logit(p), nb_mean, nb_max, nb_min, nb_strong, between, nb_2hop,
                            nb_area])


def crest_levels(basins: dict) -> np.ndarray:
    """Level of every crest of :func:`topographic_basins` in the units of the ``level`` feature:
    ``(crest - median core level) / crest contrast`` (the ``crest`` input of
    :func:`context_features`)."""
    cal = basins["calibration"]
    return (basins["pairs"]["crest"] - cal["med_lc"]) / cal["contrast"]


def classify_basins(basins: dict, model: dict | None = None) -> np.ndarray:
    """Pore probability of every basin of :func:`topographic_basins`.

    With the trained model: its probability, combined with its context stage when it has one
    (a second ensemble that also sees the first stage's probabilities of the basin's neighbours
    across its crests, :func:`context_features`) by averaging the two log-odds. Without (file
    missing): a rule, the crest vote (a basin darker than most of the basins it shares crests
    with is a pore).
    """
    feats = basins["features"]
    if feats.shape[0] == 0:
        return np.zeros(0)
    if model is None:
        vote = feats[:, FEATURE_NAMES.index("vote")]
        return 0.5 + 0.5 * np.clip(vote, -1, 1)
    z = tree_model_log_odds(model, feats)
    p = expit(z)
    context = model.get("context")
    if context is None:
        return p
    pairs = basins["pairs"]
    x = context_features(feats, p, pairs["a"].astype(np.int64) - 1,
                         pairs["b"].astype(np.int64) - 1, pairs["length"],
                         crest_levels(basins), basins["area"])
    z2 = tree_model_log_odds(context, np.column_stack([feats, x]))
    # the two stages' log-odds are averaged: alone, the context stage can turn a small shift of
    # the image calibration, which moves many first-stage probabilities together, into a
    # collective flip of the neighbourhood (one of 28 random topographic phantoms: porosity
    # 0.70 -> 0.56 for a membrane mask 0.2 % smaller); averaged, its worst Dice loss against the
    # first stage alone on those 28 is 0.013 and the mean gain is kept (0.832 -> 0.844)
    return expit(0.5 * (z + z2))



#: A crest between two pore basins is a cell wall (kept as a polymer line) when its lowest point
#: stands this fraction of the image's typical crest contrast above both basin cores; a neck
#: inside one pore has a low pass and stays open. 0 disables walls. 0.25 rather than 0.5
#: (2026-12-04, benchmarks/bench_size_bias.py): walls of at most 6 px were given to the pores on
#: 44-63 % of their area, which is most of the topographic size bias; at 0.25 the size error of
#: the 8 topographic accuracy kinds fell on all 8 (foam-se 0.22 -> 0.08, fingers 0.30 -> 0.21),
#: porosity MAE on 6, Dice moved -0.004 to +0.007; on 12 random topographic phantoms mean size
#: error 0.135 -> 0.096, porosity MAE 0.029 -> 0.021, Dice -0.004 (worst -0.010).
WALL_PASS_FRACTION = 0.25
#: Width of those wall lines: 1 (one side of the crest) or 2 px (both sides).
WALL_WIDTH_PX = 2
#: Between two basins both at least ``WALL_RIM_MIN_SIZE`` rim reaches deep (maximum distance to
#: their boundary), a crest is a wall only when it also rises above the higher of the two cores
#: by ``WALL_OF_RIM_FRACTION`` of the lower of the two basins' rim heights (the
#: ``WALL_RIM_QUANTILE`` length-weighted quantile of the crests each shares with its neighbours,
#: not the maximum: one bright junction or surface rim must not set it). A real wall stands about
#: as high as the cells' rims; a low crest between two large basins is shading or texture on the
#: floor of one larger pore, and a line there cut pores of 48-120 px into pieces (pore size
#: 13-57 % small at Dice 0.93-0.98). Smaller basins keep the rule above: near the resolution
#: limit rims merge and walls are as low as anything else. Measured 2026-12-05 (chosen among
#: fractions 0.25-0.65, quantiles 0.5-1, depths 0-1.5 on the sets below): 45 pipeline.synthetic
#: topographic phantoms of 24-120 px pores, mean pore-size error 0.186 -> 0.136 (29 better by more
#: than 0.02, 1 worse), Dice +0.004 (none lower), images missing a target 26 -> 20; the 24
#: topographic accuracy renderings of both families (3 seeds): Dice +0.0005, size error 0.144 ->
#: 0.141 (none worse by 0.02); 58 random topographic phantoms (seeds 12-119): Dice +0.0015 (worst
#: -0.0002), size error 0.105 -> 0.104 (6 worse, 8 better by more than 0.02).
WALL_OF_RIM_FRACTION = 0.5
WALL_RIM_QUANTILE = 0.9
WALL_RIM_MIN_SIZE = 1.5


def _basin_crest_quantile(a: np.ndarray, b: np.ndarray, crest: np.ndarray, length: np.ndarray,
                          n: int, q: float) -> np.ndarray:
    """Per basin (n), the length-weighted ``q`` quantile of the crests it shares with its
    neighbours (1.0: the highest); -inf for a basin without neighbours."""
    basin = np.concatenate([a, b]).astype(np.int64) - 1
    level = np.concatenate([crest, crest]).astype(np.float64)
    weight = np.concatenate([length, length]).astype(np.float64)
    out = np.full(n, -np.inf)
    if basin.size == 0:
        return out
    if q >= 1.0:
        np.maximum.at(out, basin, level)
        return out
    order = np.lexsort((level, basin))
    basin, level, weight = basin[order], level[order], weight[order]
    cum = np.cumsum(weight)
    start = np.searchsorted(basin, np.arange(n), side="left")
    end = np.searchsorted(basin, np.arange(n), side="right")
    has = end > start
    before = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
    total = cum[np.maximum(end - 1, 0)] - before
    target = before + q * total
    pos = np.searchsorted(cum, target, side="left")
    pos = np.clip(pos, start, np.maximum(end - 1, start))
    out[has] = level[pos[has]]
    return out


def _wall_lines(basins: dict, pore: np.ndarray, fraction: float) -> np.ndarray:
    """One-pixel polymer lines on the crests that separate two pore basins (closed-cell walls).

    Closed cells whose walls are thinner than the rim band show one bright crest between two
    cells; both cells' basins reach that crest, so without a line the two cells would merge into
    one pore (wrong pore count, connectivity and sizes). The line is drawn on the pixels of the
    crest's lower-numbered side that touch the other basin (one pixel wide, 4-connected cut).
    """
    labels = basins["labels"]
    pairs = basins["pairs"]
    lc = basins["core_level"]
    a, b = pairs["a"], pairs["b"]
    if a.size == 0:
        return np.zeros(labels.shape, bool)
    top = np.maximum(lc[a - 1], lc[b - 1])
    contrast = float(basins.get("crest_contrast", 0.0))
    height = pairs["crest"] - top
    wall = pore[a - 1] & pore[b - 1] & (height > fraction * contrast)
    if WALL_OF_RIM_FRACTION > 0:
        # a wall's crest stands about as high as the two cells' rims; a crest that rises to a
        # small part of that height is shading or texture on the floor of one larger pore
        rim_top = _basin_crest_quantile(a, b, pairs["crest"], pairs["length"], lc.size,
                                        WALL_RIM_QUANTILE)
        low = height <= WALL_OF_RIM_FRACTION * (np.minimum(rim_top[a - 1], rim_top[b - 1]) - top)
        if WALL_RIM_MIN_SIZE > 0:
            # max distance to the basin's boundary / rim reach
            size = np.exp(basins["features"][:, FEATURE_NAMES.index("log_size")]
                          .astype(np.float64))
            low &= np.minimum(size[a - 1], size[b - 1]) >= WALL_RIM_MIN_SIZE
        wall &= ~low
    if not wall.any():
        return np.zeros(labels.shape, bool)
    nmax = int(labels.max()) + 1
    wall_keys = np.unique(a[wall].astype(np.int64) * nmax + b[wall])
    pore_lut = np.zeros(nmax, bool)
    pore_lut[1:] = pore
    out = np.zeros(labels.shape, bool)
    for axis in (0, 1):
        l1 = labels[:-1] if axis == 0 else labels[:, :-1]
        l2 = labels[1:] if axis == 0 else labels[:, 1:]
        cand = (l1 != l2) & pore_lut[l1] & pore_lut[l2]
        r, c = np.nonzero(cand)
        v1, v2 = l1[r, c].astype(np.int64), l2[r, c].astype(np.int64)
        keys = np.minimum(v1, v2) * nmax + np.maximum(v1, v2)
        pos = np.minimum(np.searchsorted(wall_keys, keys), wall_keys.size - 1)
        hit = wall_keys[pos] == keys
        dr, dc = (1, 0) if axis == 0 else (0, 1)
        if WALL_WIDTH_PX >= 2:  # both pixels of every touching pair across the crest
            out[r[hit], c[hit]] = True
            out[r[hit] + dr, c[hit] + dc] = True
        else:  # the pixel that belongs to the lower label
            first = v1 < v2
            out[r[hit & first], c[hit & first]] = True
            out[r[hit & ~first] + dr, c[hit & ~first] + dc] = True
    return out





# ------------------------------------------------------------------------------------------------
# topographic method on the whole image, tile by tile


def _q_window(img: np.ndarray, offsets: np.ndarray, level: np.ndarray, f: int, sigma: float,
              r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """The flattened, smoothed image q = s / level on a window (equal to the whole image's)."""
    s = _smoothed_window(img, offsets, sigma, r0, r1, c0, c1)
    return s / _bilinear_window(level, f, r0, r1, c0, c1)


def _pores_of_basins(basins: dict, model: dict | None, det: dict | None = None,
                     probability: np.ndarray | None = None) -> np.ndarray:
    """Pore mask of a basin partition: the basins classified pore, less the wall lines.
    ``probability`` (float32, the labels' shape), when given, receives each pixel's basin pore
    probability (0 outside the basins)."""
    labels = basins["labels"]
    out = np.zeros(labels.shape, bool)
    if basins["n"] == 0:
        if probability is not None:
            probability[:] = 0.0
        return out
    p = classify_basins(basins, model)
    plut = np.zeros(basins["n"] + 1)  # per label; 0 = outside the basins
    plut[1:] = p
    if probability is not None:
        probability[:] = plut[labels]
    pore = p > 0.5
    out = (plut > 0.5)[labels]
    if WALL_PASS_FRACTION > 0:
        walls = _wall_lines(basins, pore, WALL_PASS_FRACTION)
        out &= ~walls
        if det is not None:
            det["wall_line_pixels"] = det.get("wall_line_pixels", 0) + int(walls.sum())
    return out


def orient_detector_axis(basins: dict, model: dict | None) -> dict:
    """Choose the sign of the detector axis by the basin classifier's confidence.

    The calibration takes the detector axis from the basins' rim dipoles, and its sign from a
    vote (the rims of darker basins are brighter on the detector side); when the vote is wrong,
    the two dipole features point the other way and the classifier reads many pores as polymer
    (random phantom 45: Dice 0.53). The sign is a hidden variable of the image, so it is taken as
    the one under which the trained classifier is the more confident (area-weighted mean of
    ``|2 p - 1|``), and the axis and the basins' dipole features are turned over in place when
    that is the other sign. On 45 topographic renderings (21 random phantoms, 4 synthetic and 4
    held-out SE kinds x 3 seeds, true membrane masks; measured 2026-12-05) it turned the axis on
    two, both for the better (random 45: Dice 0.53 -> 0.87; held-out SE foam seed 2: +0.005);
    of the 43 it kept, the vote's sign was the better one on 41 (by 0.009-0.27 Dice) and the
    worse on two held-out foams with weak dipoles (strength 0.015-0.019; by 0.02 and 0.04).

    Returns ``{"detector_axis_flipped": bool, "detector_sign_confidence": [kept, flipped]}``,
    empty without a model or basins.
    """
    cal = basins.get("calibration")
    if model is None or basins["n"] == 0 or not cal or cal.get("axis") is None:
        return {}
    cols = [FEATURE_NAMES.index("detector_dipole_rim"),
            FEATURE_NAMES.index("detector_dipole_floor")]
    weights = basins["area"]
    kept = float(np.average(np.abs(2.0 * classify_basins(basins, model) - 1.0), weights=weights))
    turned = basins["features"].copy()
    turned[:, cols] *= -1.0
    flipped = float(np.average(np.abs(2.0 * classify_basins({**basins, "features": turned},
                                                             model) - 1.0), weights=weights))
    flip = flipped > kept
    if flip:
        basins["features"] = turned
        cal["axis"] = -np.asarray(cal["axis"])
    return {"detector_axis_flipped": bool(flip),
            "detector_sign_confidence": [round(kept, 4), round(flipped, 4)]}


#: Translation (px) of the topographic pore mask toward the side on which the image's pore rims
#: are brighter (the calibration's detector direction), applied when that direction is measured
#: (``detector_dipole_strength`` at least ``DETECTOR_SHIFT_MIN_STRENGTH``). The brighter rim and
#: the lit floor under it push the crest into the pore on that side and the shadowed side pushes
#: it out, so crest-bounded pores sit displaced away from the bright side. Both renderers here
#: show it (pipeline.synthetic and tests/heldout.py, written separately); on 45 topographic
#: renderings (21 random phantoms, 4 synthetic and 4 held-out SE kinds x 3 seeds; 2026-12-05) a
#: translation by 0.5 / 0.7 / 1.0 px changed Dice by +0.0055 / +0.0043 / +0.0026 on average on
#: the 41 with a measured direction (worst -0.008 / -0.038 / -0.038; closed cells +0.015 at 0.5
#: px, +0.03 at 1 px), porosity by -0.001; below 0.5 px no pixel moves. The two held-out foams
#: whose direction is too weak to trust (strength 0.010-0.015) are left alone by the threshold.
DETECTOR_SHIFT_PX = 0.5
DETECTOR_SHIFT_MIN_STRENGTH = 0.02


def translate_mask(mask: np.ndarray, dy: float, dx: float, band_rows: int = 1024) -> np.ndarray:
    """Translate a binary mask by a sub-pixel offset (rows ``dy``, columns ``dx``; |d| <= 2 px).

    The mask's signed distance (pixel centres, +0.5 px at the outermost inside pixels, -0.5 px
    at the first outside ones, so its zero is the pixel edge) is clipped to +-3 px, moved by
    bilinear interpolation and thresholded at 0 (> 0 is inside; a pixel landing exactly on 0
    takes the side it was not on, so a half-pixel shift along an axis moves that edge by one
    pixel and keeps the area); done in row bands with a halo, so memory stays a few bytes per
    pixel of one band.
    """
    rows, cols = mask.shape
    out = np.zeros((rows, cols), bool)
    halo = 8
    m_shift = np.float32([[1, 0, dx], [0, 1, dy]])
    for r0 in range(0, rows, band_rows):
        r1 = min(rows, r0 + band_rows)
        a0, a1 = max(0, r0 - halo), min(rows, r1 + halo)
        m8 = np.ascontiguousarray(mask[a0:a1], np.uint8)
        din = cv2.distanceTransform(m8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        dout = cv2.distanceTransform(1 - m8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        phi = np.clip(np.where(m8 > 0, din - 0.5, 0.5 - dout), -3.0, 3.0).astype(np.float32)
        del din, dout
        moved = cv2.warpAffine(phi, m_shift, (cols, a1 - a0), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)[r0 - a0:r1 - a0]
        # a crossing exactly half way (a shift of exactly half a pixel along an axis) moves the
        # edge: the pixel ahead joins, the one behind leaves, so the area is kept
        out[r0:r1] = (moved > 0) | ((moved == 0) & (phi[r0 - a0:r1 - a0] < 0))
    return out


def _shift_toward_detector(mask: np.ndarray, calibration: dict | None, details: dict) -> np.ndarray:
    """Translate a topographic pore mask by ``DETECTOR_SHIFT_PX`` toward the measured detector
    direction when it is measured (see :data:`DETECTOR_SHIFT_PX`); records the shift."""
    cal = calibration or {}
    axis = np.asarray(cal.get("axis", np.zeros(2)), np.float64)
    norm = float(np.hypot(*axis)) if axis.shape == (2,) else 0.0
    measured = norm > 0 and float(cal.get("dipole_strength", 0.0)) >= DETECTOR_SHIFT_MIN_STRENGTH
    details["detector_shift_px"] = DETECTOR_SHIFT_PX if measured else 0.0
    if not measured or DETECTOR_SHIFT_PX <= 0:
        return mask
    dy, dx = DETECTOR_SHIFT_PX * axis / norm
    moved = translate_mask(mask, dy, dx)
    # pixels that join must not join two pores (the 2-px wall lines between closed cells run in
    # every direction and a sub-pixel move thins some of them to nothing)
    return moved & ~_joins_two_pores(mask, moved, 3.0)


# ------------------------------------------------------------------------------------------------
# large topographic pores: coarse levels


#: Downsampling factors at which :func:`fill_large_pores` re-segments a topographic image.
LARGE_PORE_LEVELS = (2, 4, 8)
#: Inscribed diameter (coarse px) from which a pore found at a coarse level is used: inside the
#: range of pore sizes the basin classifier was trained on (4-48 px), and at the size (48 px at
#: level 2) from which the full-resolution partition starts to cut pores (bench_scale.py).
LARGE_PORE_MIN_DIAMETER_PX = 24.0
#: Only pixels at least this deep (coarse px) inside a coarse pore are filled: its boundary stays
#: the full-resolution one.
LARGE_PORE_MARGIN_PX = 1.5
#: Smallest side (px) of a coarse image worth segmenting.
LARGE_PORE_MIN_SIDE_PX = 128
#: A coarse level is segmented only when pores of at least ``LARGE_PORE_MIN_DIAMETER_PX``
#: inscribed diameter hold at least this share of the pore area found at the level before it (the
#: area their inscribed discs cover). Measured (topographic phantoms, 768 x 1024): 0.00-0.05 in
#: membranes of 12 px pores at porosity 0.15-0.25, whose polymer face, dotted with pores below the
#: coarse resolution, a coarse level read as one large pore (Dice 0.92 -> 0.46 on one); 0.20-0.26
#: with finger-like macrovoids in a 8 px sponge, 0.86-0.91 with 96-144 px pores.
LARGE_PORE_MIN_AREA_SHARE = 0.1
#: A coarse pore that lines the membrane's outline (next to the background, not the frame) over
#: more than this many times its inscribed diameter, and whose interior the full-resolution mask
#: calls pore on less than ``LARGE_PORE_SKIN_MAX_PORE_FRACTION``, is a layer along the surface (a
#: dense skin, flat like a pore floor), not a pore, and is not filled. Measured: 2-6 µm skins over
#: macrovoids 5.4-15.5 times, 0.17-0.20 pore (84-97 % of the skin was filled); pores of 48-288 px
#: lining the outline more than 4 times: 0.76-0.99 pore; pores at most 0.26 pore: 2.3 times.
LARGE_PORE_MAX_OUTLINE_CONTACT = 4.0
LARGE_PORE_SKIN_MAX_PORE_FRACTION = 0.5
#: Quantile of the grey levels on a coarse pore's boundary taken as the height of its rim.
LARGE_PORE_RIM_QUANTILE = 0.9


def _downsample(img: np.ndarray, region: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and region reduced ``f`` times by area averaging (the last rows and columns that do
    not fill an f x f block are dropped); a coarse pixel is in the region when most of its block
    is."""
    h, w = img.shape[0] // f, img.shape[1] // f
    small = cv2.resize(np.ascontiguousarray(img[:h * f, :w * f], np.float32), (w, h),
                       interpolation=cv2.INTER_AREA)
    sreg = cv2.resize(np.ascontiguousarray(region[:h * f, :w * f], np.float32), (w, h),
                      interpolation=cv2.INTER_AREA) > 0.5
    return small, sreg


def _distance_inside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px, float32) of each True pixel to the nearest False pixel, the
    image frame counting as False (a pore cut by the frame is no wider than what is seen)."""
    return cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2,
                                 cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def _wide_pore_share(mask: np.ndarray, min_diameter_px: float,
                     inside: np.ndarray | None = None) -> float:
    """Share of the pore pixels of ``mask`` covered by discs of diameter ``min_diameter_px`` that
    fit inside it (its opening by that disc): how much of the pore area lies in wide pores.
    ``inside``: ``_distance_inside(mask)`` when the caller has it already."""
    n_pore = int(np.count_nonzero(mask))
    if n_pore == 0:
        return 0.0
    radius = float(min_diameter_px) / 2.0
    centres = (_distance_inside(mask) if inside is None else inside) >= radius
    if not centres.any():
        return 0.0
    k = 2 * int(math.ceil(radius)) + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    covered = cv2.dilate(centres.astype(np.uint8), disc).astype(bool) & mask
    return float(np.count_nonzero(covered)) / n_pore


def _upsample(a: np.ndarray, f: int) -> np.ndarray:
    """Nearest-neighbour enlargement by the integer factor ``f``."""
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)


def _fill_one_pore(img: np.ndarray, region: np.ndarray, out: np.ndarray, inner: np.ndarray,
                   ring: np.ndarray, wall_fraction: float, sigma_px: float) -> int:
    """Fill, inside ``inner`` (one coarse pore's interior, full resolution, crop of ``out``),
    the polymer components of ``out`` whose median grey level (Gaussian ``sigma_px``) stays
    below ``floor + wall_fraction * (rim - floor)``: floor = median of the pore pixels of
    ``out`` in ``inner``, rim = ``LARGE_PORE_RIM_QUANTILE`` of ``ring`` (its boundary).
    Modifies ``out`` in place; returns the number of pixels filled."""
    sm = cv2.GaussianBlur(img, (0, 0), sigma_px)
    inner = inner & region
    on_floor = inner & out
    ring = ring & region
    if np.count_nonzero(on_floor) < 16 or np.count_nonzero(ring) < 16:
        return 0
    floor = float(np.median(sm[on_floor]))
    rim = float(np.quantile(sm[ring], LARGE_PORE_RIM_QUANTILE))
    if rim <= floor:
        return 0  # no bright rim: not a topographic pore, nothing to judge walls by
    cand = inner & ~out
    n, lab = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0
    level = ndi.median(sm, lab, np.arange(1, n))
    fill = np.zeros(n, bool)
    fill[1:] = np.asarray(level) < floor + wall_fraction * (rim - floor)
    add = fill[lab]
    out |= add
    return int(np.count_nonzero(add))


def fill_large_pores(image: np.ndarray, region: np.ndarray, mask: np.ndarray,
                     pixel_size_um: float | None = None, *,
                     levels: tuple[int, ...] = LARGE_PORE_LEVELS,
                     min_diameter_px: float = LARGE_PORE_MIN_DIAMETER_PX,
                     margin_px: float = LARGE_PORE_MARGIN_PX,
                     wall_fraction: float | None = None,
                     min_side_px: int = LARGE_PORE_MIN_SIDE_PX,
                     min_area_share: float = LARGE_PORE_MIN_AREA_SHARE
                     ) -> tuple[np.ndarray, dict]:
    """Fill the interiors of topographic pores too large for the full-resolution partition.

    The basin classifier was trained on pores of 4-48 px. In larger pores the shaded floor
    breaks into several basins; some of them, and the low crests between them (wall lines), are
    labelled polymer, which cuts the pore into pieces: at 96 px the mean local thickness came out
    18-47 % small at Dice 0.91-0.96 (``benchmarks/bench_scale.py``). The image is therefore
    segmented again (``method="topographic"``) reduced by each factor of ``levels`` (area
    averaging, pixel size times the factor), where such pores fall inside the trained range. For
    each coarse pore whose inscribed diameter is at least ``min_diameter_px`` coarse px, the
    polymer components of ``mask`` inside its interior (deeper than ``margin_px`` coarse px, so
    the boundary stays the full-resolution one) become pore unless they are bright like a wall:
    their median grey level (Gaussian 1 px) at least ``wall_fraction`` of the way from the pore's
    floor (median of its pore pixels) to its rim (``LARGE_PORE_RIM_QUANTILE`` of the grey levels
    on its boundary). A real wall between two pores that the coarse level merged is a crest as
    high as the rims and stays.

    Parameters
    ----------
    image : ndarray of float, shape (rows, cols)
    region : ndarray of bool, shape (rows, cols)
        The membrane (pores are only filled inside it).
    mask : ndarray of bool, shape (rows, cols)
        Full-resolution topographic pore mask.
    pixel_size_um : float, optional
        Passed on (times the factor) to the coarse segmentations.
    levels : tuple of int
        Downsampling factors, in increasing order. A level is skipped, with those after it, when
        its image side would fall below ``min_side_px`` or when, at the level before it
        (``mask`` for the first), pores of at least ``min_diameter_px`` of its own pixels
        inscribed diameter hold less than ``min_area_share`` of the pore area (so an image of
        small pores costs one distance transform, and a few wide pores among many small ones do
        not send a face dotted with pores below the coarse resolution to a level that reads it
        as one large pore).
    min_diameter_px, margin_px : float
        In coarse px, see above.
    wall_fraction : float, optional
        Default :data:`WALL_OF_RIM_FRACTION` (the same rule the full-resolution wall lines
        follow).
    min_side_px : int
    min_area_share : float
        See ``levels``; default :data:`LARGE_PORE_MIN_AREA_SHARE`.

    Returns
    -------
    mask : ndarray of bool
        ``mask`` with the filled pixels (a new array).
    info : dict
        Per level used: ``factor``, ``large_pores`` (coarse pores used), ``filled_px``.
    """
    wall_fraction = WALL_OF_RIM_FRACTION if wall_fraction is None else float(wall_fraction)
    img = np.asarray(image, np.float32)
    out = np.array(mask, bool)
    info: list[dict] = []
    # a level is segmented only when wide pores (min_diameter_px of the level before it, the
    # full-resolution mask first) hold a real share of the pore area: without them no larger
    # pores are there
    prev_share = _wide_pore_share(out, min_diameter_px)
    for f in (int(v) for v in levels):
        if min(img.shape) // f < min_side_px or prev_share < float(min_area_share):
            break
        small, sreg = _downsample(img, region, f)
        if not sreg.any():
            break
        coarse = segment_pores(small, sreg, None if pixel_size_um is None else pixel_size_um * f,
                               method="topographic", large_pores=False).mask
        dt = _distance_inside(coarse)
        n, lab = cv2.connectedComponents(coarse.astype(np.uint8), connectivity=4)
        if n <= 1:
            break
        inscribed = 2.0 * np.asarray(ndi.maximum(dt, lab, np.arange(n)))
        inscribed[0] = 0.0
        prev_share = _wide_pore_share(coarse, min_diameter_px, dt)
        large = inscribed >= float(min_diameter_px)
        filled = 0
        h, w = coarse.shape
        # pixels next to the outside of the membrane (not the frame)
        by_outline = cv2.dilate((~sreg).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        outline_contact = np.bincount(lab[by_outline & coarse], minlength=n)
        for k, sl in enumerate(ndi.find_objects(np.where(large[lab], lab, 0)), start=1):
            if sl is None:
                continue
            r0, r1 = max(0, sl[0].start - 1), min(h, sl[0].stop + 1)
            c0, c1 = max(0, sl[1].start - 1), min(w, sl[1].stop + 1)
            pore = lab[r0:r1, c0:c1] == k
            d = dt[r0:r1, c0:c1]
            inner = pore & (d >= float(margin_px))
            if outline_contact[k] > LARGE_PORE_MAX_OUTLINE_CONTACT * inscribed[k]:
                # a layer along the surface: a pore only if the full-resolution mask mostly
                # says so (a dense skin is flat like a pore floor and reads as one pore here)
                fine_inner = _upsample(inner, f) & region[r0 * f:r1 * f, c0 * f:c1 * f]
                fine_pore = out[r0 * f:r1 * f, c0 * f:c1 * f][fine_inner]
                if fine_pore.size == 0 or fine_pore.mean() < LARGE_PORE_SKIN_MAX_PORE_FRACTION:
                    continue
            ring = (cv2.dilate(pore.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                    & ~(pore & (d >= 1.5)))
            fr = slice(r0 * f, r1 * f)
            fc = slice(c0 * f, c1 * f)
            filled += _fill_one_pore(img[fr, fc], region[fr, fc], out[fr, fc],
                                     _upsample(inner, f), _upsample(ring, f), wall_fraction, 1.0)
        info.append({"factor": f, "large_pores": int(np.count_nonzero(large)),
                     "filled_px": filled})
    return out, {"levels": info}


#: Tiles: an image with more pixels than this is segmented in tiles (``max_untiled_px``).
MAX_UNTILED_PX = 12_000_000
#: Side of a tile's core (px); each tile is processed with an overlap on every side.
TILE_PX = 2048


def _tile_overlap_px(sample: dict, model: dict | None) -> int:
    """Overlap of the topographic tiles: three times the largest pore basin of the sample
    (equivalent-circle diameter), at least 32 px, at most 1024 px."""
    if sample["n"] == 0:
        return 32
    pore = classify_basins(sample, model) > 0.5
    area = sample["area"][pore] if pore.any() else sample["area"]
    largest = 2.0 * math.sqrt(float(area.max()) / math.pi)
    return int(np.clip(math.ceil(3.0 * largest), 32, 1024))


def _segment_topographic_full(img, reg, offsets, level, f, sigma, nq, dynamics_k, sample,
                              whole_sample, model, tile_px, overlap, out, det,
                              probability=None) -> int:
    """Classify the basins of every tile (overlap on every side; the core of each tile is taken
    from it) into ``out`` (and their pore probabilities into ``probability`` when given).
    Returns the number of tiles."""
    rows, cols = img.shape
    cal = sample["calibration"]
    if tile_px is None:
        if whole_sample:  # the sample is the whole image: its basins are the image's
            out[:] = _pores_of_basins(sample, model, det, probability)
            det["n_basins"] = int(sample["n"])
            return 1
        tile_px = max(rows, cols)
    n_tiles = 0
    n_basins = 0
    for r0 in range(0, rows, tile_px):
        r1 = min(rows, r0 + tile_px)
        for c0 in range(0, cols, tile_px):
            c1 = min(cols, c0 + tile_px)
            e0, e1 = max(0, r0 - overlap), min(rows, r1 + overlap)
            g0, g1 = max(0, c0 - overlap), min(cols, c1 + overlap)
            q = _q_window(img, offsets, level, f, sigma, e0, e1, g0, g1)
            b = basins_from_q(q, reg[e0:e1, g0:g1], nq, dynamics_k=dynamics_k, calibration=cal)
            del q
            tile_p = None if probability is None else np.zeros((e1 - e0, g1 - g0), np.float32)
            pores = _pores_of_basins(b, model, det, tile_p)
            out[r0:r1, c0:c1] = pores[r0 - e0:r1 - e0, c0 - g0:c1 - g0]
            if probability is not None:
                probability[r0:r1, c0:c1] = tile_p[r0 - e0:r1 - e0, c0 - g0:c1 - g0]
            n_tiles += 1
            n_basins += int(b["n"])
            del b, pores
    det["n_basins"] = n_basins
    return n_tiles


def topographic_basins(image: np.ndarray, region: np.ndarray, *,
                       smoothing_px: float = BASIN_SMOOTHING_PX,
                       background_px: float | None = None,
                       dynamics_k: float = BASIN_DYNAMICS_K) -> dict:
    """Flatten, smooth, cut into crest-bounded basins and describe each basin (the whole image
    calibrates itself). Used by tools/train_segmenter.py and for diagnostics.

    Returns a dict with ``labels`` (int32, 0 outside), ``features`` (n x len(FEATURE_NAMES)),
    ``area`` (px), ``pairs``, ``q`` (the flattened image), ``calibration`` and diagnostics.
    Feature definitions are scale-free (contrasts are divided by the image's typical crest
    contrast, sizes by the measured rim reach).
    """
    img, reg = _check_inputs(image, region, None)
    prep = _prepare(img, reg, whole=True)
    basins = _sample_basins(img, reg, prep, smoothing_px, background_px, dynamics_k)
    basins.update(sample_region=prep["sample_reg"], sample_image=prep["sample_img"])
    return basins


def _prepare(img: np.ndarray, reg: np.ndarray, whole: bool = False) -> dict:
    """Image-level pre-processing shared by both methods: scan-line offsets, the sample
    windows and the sample's scan-line corrected grey values and noise."""
    offsets = scan_line_offsets(img, reg)
    windows = [(0, img.shape[0], 0, img.shape[1])] if whole else sample_windows(reg)
    sample_img, sample_reg = _sample(img, reg, offsets, windows)
    noise = estimate_noise_sigma(sample_img, sample_reg)
    return {"offsets": offsets, "windows": windows, "sample_img": sample_img,
            "sample_reg": sample_reg, "noise": noise,
            "whole_sample": windows == [(0, img.shape[0], 0, img.shape[1])]}


def _sample_basins(img, reg, prep, smoothing_px, background_px, dynamics_k) -> dict:
    """Level grid, noise of q and the self-calibrated basins of the sample windows."""
    bg_px = background_px or max(img.shape) / 6
    level, f, med_level = level_grid(img, reg, prep["offsets"], bg_px)
    nq = _noise_q(prep["noise"], med_level, smoothing_px)
    parts = [_q_window(img, prep["offsets"], level, f, smoothing_px, *w)
             for w in prep["windows"]]
    q = _stitch(parts, 0.0)
    basins = basins_from_q(q, prep["sample_reg"], nq, dynamics_k=dynamics_k)
    basins.update(level=level, level_block_px=f, med_level=med_level, background_px=bg_px,
                  noise_sigma=prep["noise"], smoothing_px=smoothing_px)
    return basins


# ------------------------------------------------------------------------------------------------
# the public entry point


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

#: Without the shipped style model: rim score (see :func:`rim_score`) above which ``auto``
#: chooses ``topographic``.
RIM_SCORE_TOPOGRAPHIC = 0.6

#: ``auto``: an image whose bright grey class lies mostly in closed rings
#: (:func:`bright_ring_fraction` at least this) is topographic whatever the contrast classifier
#: says. Measured 2026-12-05 on 331 training renderings of tools/train_segmenter.py (random,
#: blurred, foam and sparse cases), 96 pipeline.synthetic membranes (porosity 0.15-0.5, pores
#: 8-24 px, both renderings), 60 random phantoms and the held-out renderings: dark-contrast
#: images reach at most 0.48 (a blurred 5-px sponge at porosity 0.69, where both methods score
#: Dice 0.77 / 0.75); every image at 0.5 or more is topographic, and on all 22 of them the
#: topographic method segments better (Dice 0.59-0.98 against 0.05-0.71).
RING_FRACTION_TOPOGRAPHIC = 0.5
#: Smallest hole (px) that makes a bright component a ring (smaller ones are noise in a plateau).
RING_MIN_HOLE_PX = 6


def bright_ring_fraction(q: np.ndarray, region: np.ndarray,
                         min_hole_px: int = RING_MIN_HOLE_PX) -> float:
    """Share of the bright grey class that lies in closed rings.

    The region's grey levels are split by Otsu's threshold. A bright 8-connected component is a
    *ring* when it encloses a hole (a 4-connected component of darker pixels that it surrounds)
    of at least ``min_hole_px`` pixels and it does not touch the region's border. In a
    secondary-electron image of sparse pores the bright class is the pores' rims: separate closed
    rings around grey floors on a grey polymer face, which material contrast does not produce
    (there the bright class is the polymer, one matrix that reaches the border, or thin walls
    that form one network). The contrast classifier's statistics of such images look like
    material contrast (the face and the floors fall in one class), so ``auto`` consults this too
    (:data:`RING_FRACTION_TOPOGRAPHIC`).

    Parameters
    ----------
    q : ndarray of float, shape (rows, cols)
        Smoothed, flattened grey image.
    region : ndarray of bool, shape (rows, cols)
        Pixels to consider (the membrane).
    min_hole_px : int
        Smallest enclosed hole, px.

    Returns
    -------
    float
        Ring pixels / bright pixels in ``region`` (0 when nothing is bright).
    """
    from skimage.filters import threshold_otsu

    region = np.asarray(region, bool)
    v = q[region]
    if v.size < 16 or float(v.max() - v.min()) <= 0:
        return 0.0
    bright = (q >= float(threshold_otsu(v))) & region
    n_bright = int(np.count_nonzero(bright))
    if n_bright == 0:
        return 0.0
    n_b, lab_b = cv2.connectedComponents(bright.astype(np.uint8), connectivity=8)
    n_h, lab_h = cv2.connectedComponents((~bright).astype(np.uint8), connectivity=4)
    area_h = np.bincount(lab_h.ravel(), minlength=n_h)
    border = np.zeros(bright.shape, bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    open_h = np.zeros(n_h, bool)
    open_h[np.unique(lab_h[border & ~bright])] = True
    # the first pixel (raster order) of a hole is on its top row; the pixel above it is bright
    # (else it would belong to the hole) and lies on the hole's outer boundary, so its 8-connected
    # component is the one that encloses the hole
    labels_h, first = np.unique(lab_h.ravel(), return_index=True)
    closed = (labels_h > 0) & ~open_h[labels_h] & (area_h[labels_h] >= int(min_hole_px))
    above = first[closed] - bright.shape[1]
    encloses = np.zeros(n_b, bool)
    encloses[lab_b.ravel()[above]] = True
    encloses[0] = False
    # components that reach the region's border are the matrix or a network, not rings
    inner = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    encloses[np.unique(lab_b[bright & ~inner])] = False
    return float(np.count_nonzero(encloses[lab_b] & bright)) / n_bright



#: Side (px) of the grid cells on which ``auto`` measures the contrast evidence separately: a
#: sample side shorter than twice this is not split (the classifier's training images are 384 px).
STYLE_CELL_PX = 256


def _style_cells(windows: list[tuple[int, int, int, int]],
                 cell_px: int = STYLE_CELL_PX) -> list[tuple[int, int, int, int]]:
    """Cells ``(r0, r1, c0, c1)`` of the stitched sample (see :func:`_stitch`): each sample
    window split into a grid of about ``cell_px`` (``side // cell_px`` parts per side)."""
    cell_px = int(cell_px)
    cells = []
    c = 0
    for r0, r1, c0, c1 in windows:
        h, w = r1 - r0, c1 - c0
        ny, nx = max(1, h // cell_px), max(1, w // cell_px)
        ry = np.linspace(0, h, ny + 1).round().astype(int)
        rx = np.linspace(0, w, nx + 1).round().astype(int)
        cells += [(int(ry[i]), int(ry[i + 1]), c + int(rx[j]), c + int(rx[j + 1]))
                  for i in range(ny) for j in range(nx)]
        c += w + SAMPLE_GAP_PX
    return cells


def _cell_evidence(basins: dict, region: np.ndarray, windows: list[tuple[int, int, int, int]],
                   dynamics_k: float) -> list[tuple[np.ndarray, int]] | None:
    """Contrast features (:func:`contrast_features`) and region pixels of every cell of
    :func:`_style_cells` with at least a quarter of its pixels in the region: a membrane whose
    pores change size with depth is measured part by part, not as one mixture whose grey-level
    classes are those of none of its parts. None when the sample is judged whole (one cell, or
    no cell mostly in the region)."""
    cells = _style_cells(windows)
    if len(cells) == 1:
        return None
    out = []
    for r0, r1, c0, c1 in cells:
        reg = np.ascontiguousarray(region[r0:r1, c0:c1])
        n = int(np.count_nonzero(reg))
        if n < 0.25 * reg.size:
            continue
        q = np.ascontiguousarray(basins["q"][r0:r1, c0:c1])
        b = basins_from_q(q, reg, basins["noise_q"], dynamics_k=dynamics_k)
        out.append((contrast_features(b, reg), n))
    return out or None


def _choose_contrast(basins: dict, region: np.ndarray, details: dict,
                     windows: list[tuple[int, int, int, int]],
                     dynamics_k: float = BASIN_DYNAMICS_K) -> str:
    """``dark`` or ``topographic`` from the sample, recording the evidence in ``details``."""
    feats = contrast_features(basins, region)
    details["contrast_evidence"] = {k: round(float(v), 4)
                                    for k, v in zip(STYLE_FEATURE_NAMES, feats)}
    models = load_models()
    if models is not None:
        cells = (_cell_evidence(basins, region, windows, dynamics_k)
                 or [(feats, max(int(np.count_nonzero(region)), 1))])
        probs = np.array([style_probability(f, models["style"]) for f, _ in cells])
        weights = np.array([n for _, n in cells], np.float64)
        # logarithmic pooling: a cell whose contrast is clear outweighs one near even odds (the
        # finest pores of a graded membrane, at the resolution limit, look alike either way)
        p_topo = float(expit(np.average(logit(np.clip(probs, 1e-6, 1 - 1e-6)),
                                        weights=weights)))
        if len(cells) > 1:
            details["p_topographic_cells"] = [round(float(p), 4) for p in probs]
        used = "topographic" if p_topo > 0.5 else "dark"
        details["p_topographic"] = round(p_topo, 4)
        details["auto_reason"] = (
            f"P(topographic) = {p_topo:.2f} from the contrast evidence in "
            "details['contrast_evidence'] (tree ensemble trained on varied renderings, "
            "tools/train_segmenter.py)")
    else:
        score = float(feats[0])
        used = "topographic" if score > RIM_SCORE_TOPOGRAPHIC else "dark"
        details["auto_reason"] = (
            f"rim score {score:.2f} {'>' if used == 'topographic' else '<='} "
            f"{RIM_SCORE_TOPOGRAPHIC} (no style model found: rule)")
    if used == "dark":
        rings = bright_ring_fraction(basins["q"], region)
        details["bright_ring_fraction"] = round(rings, 4)
        if rings >= RING_FRACTION_TOPOGRAPHIC:
            used = "topographic"
            details["auto_reason"] += (
                f"; but {rings:.0%} of the bright grey class lies in closed rings (bright rims "
                f"around pores, >= {RING_FRACTION_TOPOGRAPHIC:.0%}): topographic")
    return used


def segment_pores(
    image: np.ndarray,
    membrane_mask: np.ndarray | None = None,
    pixel_size_um: float | None = None,
    *,
    method: str = "auto",
    background_scale_um: float | None = None,
    min_pore_diameter_um: float | None = None,
    smoothing_um: float | None = None,
    max_untiled_px: int = MAX_UNTILED_PX,
    tile_px: int = TILE_PX,
    deblur: bool = True,
    large_pores: bool = True,
) -> Segmentation:
    """Segment pores (True) in a grey SEM micrograph.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Grey image, float in [0, 1] (any numeric dtype is accepted), data bar removed.
    membrane_mask : ndarray of bool, shape (rows, cols), optional
        Only pixels inside are classified (pores are always inside it); default the whole frame.
    pixel_size_um : float, optional
        Pixel size in µm; needed to turn the µm parameters into pixels.
    method : {"auto", "dark", "topographic"}
        ``dark``: material contrast (dark pores, bright polymer). ``topographic``: secondary-
        electron images whose pores are enclosed by bright rims. ``auto``: chosen from a sample
        of the image (``details["auto_reason"]``).
    background_scale_um : float, optional
        Scale of the illumination drift removed (µm). Default: adapt (six times the typical
        feature size for ``dark``, a sixth of the image for ``topographic``).
    min_pore_diameter_um : float, optional
        Pores smaller than a disk of this diameter are removed and polymer specks of that size
        inside pores are filled. Default 2 px.
    smoothing_um : float, optional
        Gaussian noise smoothing sigma (µm). Default: adapt to the noise and the finest feature
        (``dark``, 0.5–2 px); ``topographic``: 0.7 px, up to 1.4 px on noisy images
        (:func:`noise_adapted_smoothing_px` from ``details["relative_noise"]``; ``auto`` then
        decides on the smoother sample too).
    max_untiled_px : int
        Images with more pixels than this are segmented tile by tile (bounded memory; the same
        mask as untiled up to basins larger than the overlap, see the module docstring).
    tile_px : int
        Side of a tile's core in px (``dark``: rows per band).
    deblur : bool
        ``dark``: measure the edge blur (``details["edge_blur_px"]``) and, when it exceeds
        ``DARK_DEBLUR_ABOVE_PX``, Wiener-deconvolve the image to ``DARK_TARGET_BLUR_PX`` before
        thresholding (``details["deblur_sigma_px"]``); the method's resolution limit holds at
        that blur.
    large_pores : bool
        ``topographic``: segment the image again at coarser levels and fill the interiors of
        pores too large for the full-resolution partition (:func:`fill_large_pores`;
        ``details["large_pores"]``).

    Returns
    -------
    Segmentation
        ``mask`` (pores inside the membrane), ``method`` (the method used), ``edge_pores``
        (pores cut by the image frame), ``details`` (parameters in px, diagnostics, why
        ``auto`` chose its method; deterministic) and, for ``topographic``, the basins' pore
        probabilities (``pore_probability``).

    Raises
    ------
    ValueError
        Non-2-D or non-numeric image, shape mismatch, unknown method, non-positive lengths.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if int(tile_px) < 64:
        raise ValueError(f"tile_px must be at least 64, got {tile_px}")
    img, region = _check_inputs(image, membrane_mask, pixel_size_um)
    smoothing_px = _to_px(smoothing_um, pixel_size_um, "smoothing_um")
    background_px = _to_px(background_scale_um, pixel_size_um, "background_scale_um")
    min_d_px = _to_px(min_pore_diameter_um, pixel_size_um, "min_pore_diameter_um") or 2.0
    details: dict = {"requested_method": method, "pixel_size_um": pixel_size_um,
                     "min_pore_diameter_px": min_d_px}
    n_in, lo, hi = _region_stats(img, region)
    if n_in < 16 or float(hi - lo) < 1e-6:
        details["note"] = ("empty membrane region" if n_in < 16
                           else "image is constant inside the membrane: no pores")
        used = "dark" if method == "auto" else method
        empty = np.zeros(img.shape, bool)
        return Segmentation(mask=empty, method=used, edge_pores=empty.copy(), details=details)
    tiled = img.size > max_untiled_px
    details["tiles"] = "untiled"
    prep = _prepare(img, region)
    sample = width = None
    models = load_models() if method != "dark" else None
    if method in ("auto", "topographic"):
        part = ({"smoothing_px": BASIN_SMOOTHING_PX, "dynamics_k": BASIN_DYNAMICS_K}
                if models is None else {k: models[k] for k in ("smoothing_px", "dynamics_k")})
        topo_sigma = smoothing_px or part["smoothing_px"]
        sample = _sample_basins(img, region, prep, topo_sigma, background_px,
                                part["dynamics_k"])
        details["rim_score"] = round(float(sample.get("rim_score", 0.0)), 4)
        details["sample_windows"] = len(prep["windows"])
        sigma, ratio, width = smoothing_for_noise(sample, prep["sample_img"],
                                                  prep["sample_reg"], topo_sigma)
        if math.isfinite(ratio):
            details["relative_noise"] = round(ratio, 4)
        if sigma > topo_sigma and not smoothing_px:
            # a noisy image: its basins again, from a smoother image
            sample = _sample_basins(img, region, prep, sigma, background_px, part["dynamics_k"])
    used = (_choose_contrast(sample, prep["sample_reg"], details, prep["windows"],
                             part["dynamics_k"]) if method == "auto" else method)
    probability = None  # the topographic basins' pore probabilities
    if used == "dark":
        del sample
        mask = _segment_dark(img, region, prep["offsets"], prep["sample_img"],
                             prep["sample_reg"], prep["noise"], smoothing_px, background_px, 3,
                             details, prep["windows"], deblur)
        if tiled:
            details["tiles"] = "row bands"
    else:
        mask = np.zeros(img.shape, bool)
        probability = np.zeros(img.shape, np.float32)
        basin_model = None if models is None else models["basin"]
        details.update(orient_detector_axis(sample, basin_model))
        overlap = _tile_overlap_px(sample, basin_model) if tiled else 0
        n_tiles = _segment_topographic_full(
            img, region, prep["offsets"], sample["level"], sample["level_block_px"],
            sample["smoothing_px"], sample["noise_q"], part["dynamics_k"], sample,
            prep["whole_sample"], basin_model, int(tile_px) if tiled else None, overlap, mask,
            details, probability)
        probability[~region] = 0.0
        cal = sample["calibration"] or {}
        mask = _shift_toward_detector(mask, cal, details)
        if large_pores:
            mask, details["large_pores"] = fill_large_pores(img, region, mask & region,
                                                            pixel_size_um)
        if width is None:
            width = threshold_edge_width_px(prep["sample_img"], prep["sample_reg"])
        details["edge_width_px"] = round(width, 4) if math.isfinite(width) else None
        details.update(
            basin_classifier="trained model" if basin_model is not None else "crest vote rule",
            noise_sigma=round(float(prep["noise"]), 6),
            rim_reach_px=round(float(cal.get("reach", 0.0)), 4),
            crest_contrast=round(float(cal.get("contrast", 0.0)), 6),
            **detector_direction(cal),
            smoothing_px=round(float(sample["smoothing_px"]), 4), background_scale_px=round(
                float(sample["background_px"]), 3))
        if tiled:
            details["tiles"] = f"{n_tiles} tiles of {int(tile_px)} px, overlap {overlap} px"
        del sample
    mask &= region
    details["resolution_limit_px"] = resolution_limit_px(
        used, details.get("edge_blur_px" if used == "dark" else "edge_width_px"))
    min_area = math.pi * (min_d_px / 2) ** 2
    mask = _remove_small(mask, min_area)
    mask = _fill_small_holes(mask, region, min_area)
    mask &= region
    details["porosity"] = round(float(np.count_nonzero(mask)) / max(n_in, 1), 6)
    return Segmentation(mask=mask, method=used, edge_pores=edge_pore_mask(mask),
                        details=details,
                        pore_probability=probability)
