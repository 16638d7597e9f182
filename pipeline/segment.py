"""Pore segmentation of grey SEM cross-sections.

Two contrasts, two methods (:func:`segment_pores` picks one with ``method="auto"``):

``dark`` — material contrast (back-scattered electrons, resin-filled or deep pores): dark pores,
bright polymer. Scan-line offsets are removed (per-row median of a vertical high-pass), shot noise
is smoothed at about one pixel, then each pixel is compared with a *local* threshold: the
midpoint between the local mean of the pore class and the local mean of the polymer class, both
measured by normalised convolution at a scale of several pore sizes and iterated from a global
Otsu split. The midpoint of the two class levels is the half-contrast iso-line, which is where a
blurred step edge really is (Otsu's threshold moves with the phase fractions; the midpoint does
not), and because each class has its own local mean the threshold follows slow illumination
drift without being pulled by depth changes of porosity.

``topographic`` — secondary-electron topography: bright rims at every pore edge, pore floors grey
(shaded, often barely darker than the polymer face). The image is flattened (slow drift divided
out by a large-scale median), smoothed (0.7 px) and cut into catchment basins by a watershed of
the grey image itself (priority flooding from every regional minimum, numba): flooding from the
dark minima meets on the bright crests, so every basin boundary lies on a rim crest, which is
where a symmetric rim puts the pore edge. Basins separated by a crest less than 3 noise sigmas
high are merged (merging by dynamics, Kruskal order); the partition stays fine on purpose.
Each basin is then classified pore or polymer by a small gradient-boosted tree ensemble on
scale-free basin features (contrasts in units of the image's crest contrast, sizes in units of
the measured rim reach): its rim-free core level against the image and against its neighbours
across each crest (compared at matched distances from the crest), how far its crest stands above
it, whether its floor darkens away from the crest, its size, and its brightness dipole along the
image's detector direction (edges facing the SE detector are brighter, so a pore's rim is
brighter on the detector side and a polymer island's on the other). The ensemble is trained on
varied renderings from two renderers (``tools/train_segmenter.py``; stored as plain arrays in
``pipeline/data/segment_models.npz``, evaluated here without scikit-learn); without the file a
rule takes over (a basin darker than most basins across its crests is a pore). Crests that
separate two pore basins and stand well above both (closed-cell walls thinner than the rim band)
are kept as one-pixel polymer lines, so neighbouring cells stay separate pores.

``auto`` computes the topographic basins and a few image-level contrast statistics (rim score:
how far crests stand above the brighter basin; uniformity and shading of the dark class;
thickness of the bright class against the rim reach; flatness of the middle grey class; ...)
and lets a second small tree ensemble, trained on the same varied renderings, decide; the
probability and the evidence are recorded in ``details``.

Limits (measured, see tests/test_segment.py and the report in the commit history): topographic
pores need to be several rim widths wide (below ~12 px Dice falls under 0.9); closed cells whose
walls are thinner than the rim band are found with the walls as one-pixel lines, so the walls'
area is counted as pore; a topographic surface without rims around its pores (a rough crystalline
aggregate whose only pores are black holes) fits neither model.

Both methods then remove specks below ``min_pore_diameter_um`` and fill holes of that size, and
flag pores cut by the image frame (their size is unknown).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numba
import numpy as np
from scipy import ndimage as ndi

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
        Parameters in px and µm, thresholds, diagnostics.
    """

    mask: np.ndarray
    method: str
    edge_pores: np.ndarray
    details: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# small helpers


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
    lab, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros(mask.shape, bool)
    edge_labels = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    edge_labels = edge_labels[edge_labels > 0]
    keep = np.zeros(n + 1, bool)
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


def remove_scan_lines(image: np.ndarray, region: np.ndarray | None = None,
                      sigma_px: float = 3.0) -> np.ndarray:
    """Subtract row-to-row offsets (scan-line noise).

    The offset of a row is the median, over the row's pixels inside ``region``, of a vertical
    high-pass (image minus its Gaussian smoothing along the columns, sigma ``sigma_px``). Pores
    and edges are a minority of any row at the high-pass scale, so the median ignores them;
    slow drift is not touched (it is not in the high-pass).

    Returns
    -------
    ndarray of float32, same shape
    """
    img = np.asarray(image, np.float32)
    reg = np.ones(img.shape, bool) if region is None else np.asarray(region, bool)
    hp = img - ndi.gaussian_filter1d(img, sigma_px, axis=0, mode="reflect")
    hp = np.where(reg, hp, np.nan)
    counts = reg.sum(axis=1)
    offsets = np.zeros(img.shape[0], np.float32)
    rows = counts >= 16
    if rows.any():
        with np.errstate(all="ignore"):
            offsets[rows] = np.nanmedian(hp[rows], axis=1)
    return img - offsets[:, None]


def _gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img.astype(np.float32, copy=True)
    return cv2.GaussianBlur(img.astype(np.float32), (0, 0), float(sigma),
                            borderType=cv2.BORDER_REFLECT)


def _smooth_weighted(values: np.ndarray, weight: np.ndarray, sigma_px: float,
                     fill: float) -> np.ndarray:
    """Normalised convolution ``G*(v w) / G*w`` at a large scale, computed on a coarse grid.

    Where the weight is nearly absent the result relaxes to ``fill``.
    """
    rows, cols = values.shape
    w = weight.astype(np.float32)
    vw = (values * w).astype(np.float32)
    factor = max(1, int(sigma_px / 4))
    if factor > 1:
        small = (max(1, cols // factor), max(1, rows // factor))
        vw_s = cv2.resize(vw, small, interpolation=cv2.INTER_AREA)
        w_s = cv2.resize(w, small, interpolation=cv2.INTER_AREA)
        sig = sigma_px * small[0] / cols
    else:
        vw_s, w_s, sig = vw, w, sigma_px
    num = cv2.GaussianBlur(vw_s, (0, 0), sig, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(w_s, (0, 0), sig, borderType=cv2.BORDER_REFLECT)
    eps = 0.02
    out = (num + eps * fill) / (den + eps)
    if factor > 1:
        out = cv2.resize(out, (cols, rows), interpolation=cv2.INTER_LINEAR)
    return out.astype(np.float32)


def _remove_small(mask: np.ndarray, min_area_px: float) -> np.ndarray:
    """Drop 8-connected objects smaller than ``min_area_px`` pixels."""
    if min_area_px <= 1:
        return mask
    lab, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_area_px
    keep[0] = False
    return keep[lab]


def _fill_small_holes(mask: np.ndarray, region: np.ndarray, max_area_px: float) -> np.ndarray:
    """Fill 4-connected non-pore specks inside ``region`` smaller than ``max_area_px``."""
    if max_area_px <= 1:
        return mask
    holes = region & ~mask
    lab, n = ndi.label(holes)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    small = sizes < max_area_px
    small[0] = False
    return mask | small[lab]


def hydraulic_diameter_px(mask: np.ndarray, region: np.ndarray | None = None) -> float:
    """Typical feature width of a phase: 4 x area / perimeter (px).

    Equals the diameter for disks and twice the width for long strips; a cheap scale estimate
    used to set filter sizes, not a measurement. The perimeter is the count of 4-neighbour phase
    changes times pi/4 (the isotropic correction for a pixel grid).
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


# ------------------------------------------------------------------------------------------------
# watershed by priority flooding, basin adjacency and merging by dynamics (numba)


@numba.njit(cache=True, nogil=True)
def _priority_flood(levels, labels, n_levels):  # pragma: no cover - compiled
    """Marker watershed of a quantised image (4-connected, bucket queue, O(N)).

    ``labels``: > 0 markers, 0 to be flooded, -1 excluded. Modified in place. Returns the
    flooding altitude of every pixel (its level, or the level of the flood that reached it if
    higher), -1 where excluded.
    """
    rows, cols = levels.shape
    n = rows * cols
    lv = levels.ravel()
    lab = labels.ravel()
    alt = np.full(n, -1, np.int32)
    head = np.full(n_levels, -1, np.int64)
    tail = np.full(n_levels, -1, np.int64)
    nxt = np.full(n, -1, np.int32)
    for p in range(n):
        if lab[p] > 0:
            lvl = lv[p]
            alt[p] = lvl
            if tail[lvl] < 0:
                head[lvl] = p
            else:
                nxt[tail[lvl]] = p
            tail[lvl] = p
    cur = 0
    while cur < n_levels:
        p = head[cur]
        if p < 0:
            cur += 1
            continue
        head[cur] = nxt[p]
        if head[cur] < 0:
            tail[cur] = -1
        r = p // cols
        c = p - r * cols
        lp = lab[p]
        for k in range(4):
            if k == 0:
                if r == 0:
                    continue
                q = p - cols
            elif k == 1:
                if r == rows - 1:
                    continue
                q = p + cols
            elif k == 2:
                if c == 0:
                    continue
                q = p - 1
            else:
                if c == cols - 1:
                    continue
                q = p + 1
            if lab[q] != 0:
                continue
            lab[q] = lp
            lvl = lv[q]
            if lvl < cur:
                lvl = cur
            alt[q] = lvl
            if tail[lvl] < 0:
                head[lvl] = q
            else:
                nxt[tail[lvl]] = q
            tail[lvl] = q
    return alt.reshape(rows, cols)


@numba.njit(cache=True, nogil=True)
def _touching_pixel_pairs(labels, alt, value):  # pragma: no cover - compiled
    """Every 4-neighbour pixel pair with two different labels > 0: the pair key
    (lo * (max label + 1) + hi), the higher flooding altitude and the higher grey value."""
    rows, cols = labels.shape
    nmax = np.int64(labels.max()) + 1
    count = 0
    for r in range(rows):
        for c in range(cols):
            a = labels[r, c]
            if a <= 0:
                continue
            if r + 1 < rows and labels[r + 1, c] > 0 and labels[r + 1, c] != a:
                count += 1
            if c + 1 < cols and labels[r, c + 1] > 0 and labels[r, c + 1] != a:
                count += 1
    key = np.empty(count, np.int64)
    high = np.empty(count, np.int32)
    crest = np.empty(count, np.float32)
    k = 0
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
                key[k] = min(a, b) * nmax + max(a, b)
                high[k] = max(alt[r, c], alt[rr, cc])
                crest[k] = max(value[r, c], value[rr, cc])
                k += 1
    return key, high, crest, nmax


@numba.njit(cache=True, nogil=True)
def _label_max_kernel(labels, values, n):  # pragma: no cover - compiled
    out = np.zeros(n, np.float64)
    lab = labels.ravel()
    val = values.ravel()
    for p in range(lab.size):
        k = lab[p]
        if k > 0 and val[p] > out[k - 1]:
            out[k - 1] = val[p]
    return out


def _label_max(labels: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Maximum of non-negative ``values`` over each label 1..n (0 for empty labels)."""
    return _label_max_kernel(np.ascontiguousarray(labels, np.int32),
                             np.ascontiguousarray(values, np.float32), int(n))


def _basin_pairs(labels: np.ndarray, alt: np.ndarray, value: np.ndarray):
    """Adjacent basin pairs (a < b, 4-connected) with their pass altitude (lowest crossing:
    min over touching pixel pairs of the higher altitude), boundary length (pixel pairs) and the
    mean crest height (higher grey value of the two pixels) along the boundary."""
    key, high, crest, nmax = _touching_pixel_pairs(labels, alt, value.astype(np.float32))
    if key.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.int32), empty, np.zeros(0)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    length = np.diff(np.append(starts, key.size)).astype(np.int64)
    pas = np.minimum.reduceat(high[order], starts)
    mean_crest = np.add.reduceat(crest[order].astype(np.float64), starts) / length
    uk = key[starts]
    return uk // nmax, uk % nmax, pas, length, mean_crest


@numba.njit(cache=True, nogil=True)
def _merge_by_dynamics(n, pa, pb, pas, minimum, h):  # pragma: no cover - compiled
    """Union basins whose dynamics (pass altitude minus the higher of the two minima) is below
    ``h``, in increasing pass order (Kruskal). Returns a compact relabelling array (size n+1)."""
    parent = np.arange(n + 1)
    cmin = minimum.copy()
    order = np.argsort(pas)
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
    new = np.zeros(n + 1, np.int64)
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
    return new


def watershed_basins(image: np.ndarray, region: np.ndarray, dynamics: float,
                     n_levels: int = 4096) -> tuple[np.ndarray, dict]:
    """Catchment basins of ``image`` inside ``region`` whose boundaries lie on crests.

    Priority-flood watershed (4-connected) from every regional minimum of the image quantised
    to ``n_levels`` grey levels, then basins are merged by dynamics: two basins meeting at a pass
    less than ``dynamics`` (grey units) above the higher of their two minima become one (the
    result equals flooding from the h-minima, h = ``dynamics``).

    Returns
    -------
    labels : ndarray of int32, shape (rows, cols)
        1..n inside ``region``, 0 outside.
    pairs : dict
        ``a``, ``b`` (adjacent labels, a < b), ``length`` (touching pixel pairs), ``crest``
        (mean of the higher grey value across the boundary), ``pass_value`` (grey units).
    """
    img = np.asarray(image, np.float32)
    reg = np.asarray(region, bool)
    lo = float(img[reg].min())
    hi = float(img[reg].max())
    scale = (n_levels - 1) / max(hi - lo, 1e-12)
    levels = np.clip(np.rint((img - lo) * scale), 0, n_levels - 1).astype(np.int32)
    from skimage.morphology import local_minima

    big = np.where(reg, levels, n_levels).astype(np.int32)
    minima = local_minima(big, connectivity=1) & reg
    markers, n = ndi.label(minima)
    markers = markers.astype(np.int32)
    markers[~reg] = -1
    alt = _priority_flood(levels, markers, n_levels)
    markers[~reg] = 0
    if n > 1:
        pa, pb, pas, _, _ = _basin_pairs(markers, alt, img)
        minimum = np.full(n + 1, n_levels, np.int32)
        np.minimum.at(minimum, markers[reg], alt[reg])
        new = _merge_by_dynamics(n, pa, pb, pas, minimum, int(round(dynamics * scale)))
        markers = new[markers].astype(np.int32)
    pa, pb, pas, length, crest = _basin_pairs(markers, alt, img)
    pairs = {"a": pa, "b": pb, "length": length, "crest": crest,
             "pass_value": pas / scale + lo}
    return markers, pairs


def _distance_to_boundary(labels: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of each pixel to the nearest pixel that has a 4-neighbour with
    another label (boundary pixels on both sides of a crest are at 0)."""
    bnd = np.zeros(labels.shape, bool)
    dv = labels[1:] != labels[:-1]
    dh = labels[:, 1:] != labels[:, :-1]
    bnd[1:] |= dv
    bnd[:-1] |= dv
    bnd[:, 1:] |= dh
    bnd[:, :-1] |= dh
    bnd |= labels <= 0
    return cv2.distanceTransform((~bnd).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    if cw[-1] <= 0:
        return float(np.median(values))
    return float(values[order][min(np.searchsorted(cw, q * cw[-1]), len(values) - 1)])


def _local_level(img: np.ndarray, region: np.ndarray, scale_px: float) -> np.ndarray:
    """Slowly varying grey level: median of coarse blocks inside ``region``, median-filtered
    over ``scale_px`` and interpolated back to full size."""
    rows, cols = img.shape
    f = max(1, int(round(scale_px / 8)))
    gr, gc = -(-rows // f), -(-cols // f)
    pad = np.full((gr * f, gc * f), np.nan, np.float32)
    pad[:rows, :cols] = np.where(region, img, np.nan)
    blocks = pad.reshape(gr, f, gc, f).transpose(0, 2, 1, 3).reshape(gr, gc, f * f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bm = np.nanmedian(blocks, axis=2) if f > 1 else blocks[..., 0]
    ok = np.isfinite(bm)
    fill = float(np.nanmedian(bm)) if ok.any() else 0.5
    bm = np.where(ok, bm, fill)
    size = max(3, int(round(scale_px / f)) | 1)
    med = ndi.median_filter(bm, size=size, mode="nearest")
    med = ndi.gaussian_filter(med, size / 4, mode="nearest")
    up = cv2.resize(med.astype(np.float32), (gc * f, gr * f), interpolation=cv2.INTER_LINEAR)
    return up[:rows, :cols]


FEATURE_NAMES = (
    "level", "bowl", "vote", "log_size", "rim", "crest", "neighbour", "mean_level",
    "level_snr", "log_area", "brighter_neighbours", "level_iqr", "level_rank",
    "max_neighbour", "min_neighbour", "detector_dipole_rim", "detector_dipole_floor",
    "detector_dipole_strength",
)


def _detector_dipoles(labels, inl, lab_, q_, d_, reach, n, lc, area, contrast):
    """Side-to-side brightness asymmetry of every basin along the image's detector direction.

    An SE detector sits to one side: the edges and walls that face it are brighter. A pore's rim
    is brighter on the detector side of the pore, a polymer island's on the opposite side
    (its edges face the other way), so the sign of a basin's brightness dipole along the detector
    direction tells the two apart whatever their grey levels. Per basin, the dipole is the mean
    of (grey - basin mean) x (unit vector from the basin centroid) over its rim zone (distance to
    the crest < 1.5 px) and over its floor (1.5 px to the rim reach). The detector direction is
    the principal axis of the rim dipoles (area-weighted), its sign chosen so that darker basins
    (more often pores) point along it. Returns the two projections (in units of the crest
    contrast) and the image's dipole strength (how consistently basins share one axis).
    """
    rows, cols = labels.shape
    rr, cc = np.nonzero(inl)
    cnt = np.maximum(area, 1)
    cy = np.bincount(lab_, weights=rr, minlength=n) / cnt
    cx = np.bincount(lab_, weights=cc, minlength=n) / cnt
    vy = rr - cy[lab_]
    vx = cc - cx[lab_]
    norm = np.hypot(vy, vx) + 1e-9
    uy, ux = vy / norm, vx / norm
    out = []
    for zone in (d_ < 1.5, (d_ >= 1.5) & (d_ < max(reach, 2.5))):
        lz = lab_[zone]
        nz = np.maximum(np.bincount(lz, minlength=n), 1)
        mean = np.bincount(lz, weights=q_[zone], minlength=n) / nz
        dev = q_[zone] - mean[lz]
        dy = np.bincount(lz, weights=dev * uy[zone], minlength=n) / nz
        dx = np.bincount(lz, weights=dev * ux[zone], minlength=n) / nz
        out.append((dy, dx))
    (ry, rx), (fy, fx) = out
    w = area
    m = np.array([[np.sum(w * ry * ry), np.sum(w * ry * rx)],
                  [np.sum(w * ry * rx), np.sum(w * rx * rx)]])
    evals, evecs = np.linalg.eigh(m)
    axis = evecs[:, 1]
    proj_rim = ry * axis[0] + rx * axis[1]
    darker = lc < _weighted_quantile(lc, area, 0.5)
    if np.sum(w * proj_rim * np.where(darker, 1.0, -1.0)) < 0:
        axis = -axis
        proj_rim = -proj_rim
    proj_floor = fy * axis[0] + fx * axis[1]
    strength = float(math.sqrt(max(evals[1], 0) / max(w.sum(), 1e-9)) / contrast)
    anisotropy = float((evals[1] - evals[0]) / max(evals[1] + evals[0], 1e-12))
    return proj_rim / contrast, proj_floor / contrast, strength * anisotropy


#: Noise smoothing (Gaussian sigma, px) before the basin watershed of the topographic method.
BASIN_SMOOTHING_PX = 0.7
#: Basins meeting at a pass less than this many noise sigmas (of the smoothed image) above the
#: higher minimum are merged. Low on purpose: a fine partition loses less boundary than merging
#: across weak crests does, and the classifier sees each basin's neighbours.
BASIN_DYNAMICS_K = 3.0


def topographic_basins(image: np.ndarray, region: np.ndarray, *,
                       smoothing_px: float = BASIN_SMOOTHING_PX,
                       background_px: float | None = None,
                       dynamics_k: float = BASIN_DYNAMICS_K) -> dict:
    """Flatten, smooth, cut into crest-bounded basins and describe each basin.

    Returns a dict with ``labels`` (int32, 0 outside), ``features`` (n x len(FEATURE_NAMES)),
    ``area`` (px), ``pairs`` and diagnostics. Feature definitions are scale-free (contrasts are
    divided by the image's typical crest contrast, sizes by the measured rim reach).
    """
    img = remove_scan_lines(image, region)
    noise = estimate_noise_sigma(img, region)
    s = _gaussian(img, smoothing_px)
    bg_px = background_px or max(img.shape) / 6
    level = _local_level(s, region, bg_px)
    med_level = float(np.median(level[region]))
    level = np.maximum(level, max(med_level * 0.05, 1e-3))
    q = s / level
    nq = noise / max(med_level, 1e-6) / (2 * math.sqrt(math.pi) * max(smoothing_px, 0.5))
    labels, pairs = watershed_basins(q, region, dynamics_k * nq)
    n = int(labels.max())
    out = {"labels": labels, "pairs": pairs, "noise_sigma": noise, "noise_q": nq, "n": n,
           "q": q, "smoothing_px": smoothing_px, "background_px": bg_px}
    if n == 0:
        out.update(features=np.zeros((0, len(FEATURE_NAMES))), area=np.zeros(0))
        return out
    d = _distance_to_boundary(labels)
    inl = labels > 0
    lab_ = labels[inl] - 1
    q_ = q[inl]
    d_ = d[inl]
    maxd = _label_max(labels, d, n)
    area = np.bincount(lab_, minlength=n).astype(np.float64)
    nk = 24
    k_ = np.minimum(np.floor(d_ + 0.5).astype(np.int64), nk - 1)
    key = lab_ * nk + k_
    cnt = np.bincount(key, minlength=n * nk).reshape(n, nk).astype(np.float64)
    prof = np.bincount(key, weights=q_, minlength=n * nk).reshape(n, nk) / np.maximum(cnt, 1)
    # rim reach from the pooled profile against distance to the crest
    tot = cnt.sum(0)
    gp = (prof * cnt).sum(0) / np.maximum(tot, 1)
    valid = tot >= max(50.0, 0.002 * inl.sum())
    upto = int(np.argmin(valid)) if not valid[:13].all() else 13
    gp = gp[: max(upto, 3)]
    p0, pmin = gp[0], gp.min()
    half = 0.5 * (p0 + pmin)
    k1 = int(np.argmax(gp <= half))
    if k1 >= 1 and gp[k1 - 1] > gp[k1]:
        d_half = k1 - 1 + (gp[k1 - 1] - half) / (gp[k1 - 1] - gp[k1])
    else:
        d_half = 1.0
    reach = max(2.0, 2.5 * d_half)
    core = d_ >= reach
    nc = np.bincount(lab_[core], minlength=n)
    lm = np.bincount(lab_, weights=q_, minlength=n) / np.maximum(area, 1)
    lc = np.bincount(lab_[core], weights=q_[core], minlength=n) / np.maximum(nc, 1)
    lc = np.where(nc > 0, lc, lm)
    ring = (d_ >= 0.5 * reach) & (d_ < reach)
    nr = np.bincount(lab_[ring], minlength=n)
    lr = np.bincount(lab_[ring], weights=q_[ring], minlength=n) / np.maximum(nr, 1)
    lr = np.where(nr > 0, lr, lm)
    rim = d_ < 1.5
    lrim = (np.bincount(lab_[rim], weights=q_[rim], minlength=n)
            / np.maximum(np.bincount(lab_[rim], minlength=n), 1))
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
    nbmax = np.full(n, -np.inf)
    nbmin = np.full(n, np.inf)
    np.maximum.at(nbmax, a, lc[b])
    np.maximum.at(nbmax, b, lc[a])
    np.minimum.at(nbmin, a, lc[b])
    np.minimum.at(nbmin, b, lc[a])
    nbmax = np.where(np.isfinite(nbmax), nbmax, lc)
    nbmin = np.where(np.isfinite(nbmin), nbmin, lc)
    # matched-distance comparison across every crest
    ks = np.arange(nk)[None, :]
    kmax = np.minimum(np.minimum(maxd[a], maxd[b]), 3 * reach)[:, None]
    wgt = np.minimum(cnt[a], cnt[b]) * (ks >= 1) * (ks <= kmax)
    wt = wgt.sum(1)
    diff = (wgt * (prof[a] - prof[b])).sum(1) / np.maximum(wt, 1e-9)
    t = np.tanh(diff / (2 * nq)) * (wt > 0)
    vote = (np.bincount(a, weights=-t * length, minlength=n)
            + np.bincount(b, weights=t * length, minlength=n)) / wsum
    med_lc = _weighted_quantile(lc, area, 0.5)
    iqr = max(_weighted_quantile(lc, area, 0.75) - _weighted_quantile(lc, area, 0.25), 1e-6)
    contrast = max(_weighted_quantile(crest - lc, area, 0.5), 1e-6)
    order = np.argsort(lc)
    rank = np.empty(n)
    rank[order] = np.cumsum(area[order]) / area.sum()
    dip_rim, dip_floor, dip_strength = _detector_dipoles(labels, inl, lab_, q_, d_, reach, n,
                                                         lc, area, contrast)
    feats = np.column_stack([
        (lc - med_lc) / contrast,
        (lr - lc) / contrast,
        vote,
        np.log(maxd / reach + 1e-3),
        (lrim - lc) / contrast,
        (crest - lc) / contrast,
        (nb - lc) / contrast,
        (lm - med_lc) / contrast,
        np.clip((lc - med_lc) / nq, -200, 200) / 10,
        np.log(area / reach**2),
        brighter,
        (lc - med_lc) / iqr,
        rank,
        (nbmax - lc) / contrast,
        (lc - nbmin) / contrast,
        dip_rim,
        dip_floor,
        np.full(n, dip_strength),
    ]).astype(np.float32)
    out.update(features=feats, area=area, reach_px=reach, rim_half_width_px=d_half,
               distance_px=d,
               crest_contrast=contrast, core_level=lc,
               large_area_fraction=float(area[nc >= 5].sum() / max(area.sum(), 1)))
    out["rim_score"] = rim_score(lc, pairs, nq)
    out["rim_score_all"] = rim_score(lc, pairs, nq, top_fraction=0.0)
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


def tree_model_proba(model: dict, x: np.ndarray) -> np.ndarray:
    """Probability of the positive class from an exported tree ensemble (see
    :func:`export_tree_model`); x has shape (n, n_features)."""
    x = np.ascontiguousarray(x, np.float64)
    raw = _tree_raw(x, model["roots"].astype(np.int64), model["feature"].astype(np.int64),
                    model["threshold"].astype(np.float64), model["left"].astype(np.int64),
                    model["right"].astype(np.int64), model["leaf"].astype(np.bool_),
                    model["value"].astype(np.float64), model["missing_left"].astype(np.bool_))
    raw += float(model["baseline"][0])
    return 1.0 / (1.0 + np.exp(-raw))




def segment_dark(image: np.ndarray, region: np.ndarray, *, smoothing_px: float | None = None,
                 background_px: float | None = None, iterations: int = 3,
                 details: dict | None = None) -> np.ndarray:
    """Dark pores on bright polymer: local midpoint between the two class levels."""
    from skimage.filters import threshold_otsu

    det = {} if details is None else details
    img = remove_scan_lines(image, region)
    noise = estimate_noise_sigma(img, region)
    if smoothing_px is None:
        pre = _gaussian(img, 1.0)
        t_pre = float(threshold_otsu(pre[region]))
        contrast = float(pre[region & (pre >= t_pre)].mean() - pre[region & (pre < t_pre)].mean())
        pre_mask = (pre < t_pre) & region
        finest = min(hydraulic_diameter_px(pre_mask, region),
                     hydraulic_diameter_px(region & ~pre_mask, region))
        smoothing_px = float(np.clip(min(2.3 * noise / max(contrast, 1e-6), finest / 8),
                                     0.5, 2.0))
    s = _gaussian(img, smoothing_px)
    vals = s[region]
    t0 = float(threshold_otsu(vals))
    mask = (s < t0) & region
    d_pore = hydraulic_diameter_px(mask, region)
    d_poly = hydraulic_diameter_px(region & ~mask, region)
    typical = max(d_pore, d_poly, 2.0)
    bg_px = background_px or max(6.0 * typical, min(img.shape) / 12.0)
    for _ in range(iterations):
        pore_w = (mask & region).astype(np.float32)
        poly_w = (region & ~mask).astype(np.float32)
        if pore_w.sum() == 0 or poly_w.sum() == 0:
            break
        g_pore = float(s[mask & region].mean())
        g_poly = float(s[region & ~mask].mean())
        m_pore = _smooth_weighted(s, pore_w, bg_px, g_pore)
        m_poly = _smooth_weighted(s, poly_w, bg_px, g_poly)
        thr = 0.5 * (m_pore + m_poly)
        mask = (s < thr) & region
    det.update(noise_sigma=noise, smoothing_px=smoothing_px, otsu_threshold=t0,
               typical_size_px=typical, background_scale_px=bg_px)
    return mask




# ------------------------------------------------------------------------------------------------
# topographic method

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
    return {
        "basin": {k[len("basin_"):]: v for k, v in arrays.items() if k.startswith("basin_")},
        "smoothing_px": float(arrays.get("basin_smoothing_px", BASIN_SMOOTHING_PX)),
        "dynamics_k": float(arrays.get("basin_dynamics_k", BASIN_DYNAMICS_K)),
        "style": {k[len("style_"):]: v for k, v in arrays.items() if k.startswith("style_")},
        "meta": str(arrays.get("meta", "")),
    }


def style_probability(features: np.ndarray, style_model: dict) -> float:
    """Probability that an image is topographic (tree ensemble on :func:`contrast_features`)."""
    x = np.nan_to_num(np.asarray(features, np.float64))[None, :]
    return float(tree_model_proba(style_model, x)[0])


def classify_basins(basins: dict, model: dict | None = None) -> np.ndarray:
    """Pore probability of every basin of :func:`topographic_basins`.

    With the trained model: its probability. Without (file missing): a rule, the crest vote
    (a basin darker than most of the basins it shares crests with is a pore).
    """
    feats = basins["features"]
    if feats.shape[0] == 0:
        return np.zeros(0)
    if model is None:
        vote = feats[:, FEATURE_NAMES.index("vote")]
        return 0.5 + 0.5 * np.clip(vote, -1, 1)
    return tree_model_proba(model, feats)


#: A crest between two pore basins is a cell wall (kept as a polymer line) when its lowest point
#: stands this fraction of the image's typical crest contrast above both basin cores; a neck
#: inside one pore has a low pass and stays open. 0 disables walls.
WALL_PASS_FRACTION = 0.5
#: Width of those wall lines: 1 (one side of the crest) or 2 px (both sides).
WALL_WIDTH_PX = 2


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
    wall = pore[a - 1] & pore[b - 1] & (pairs["crest"] - top > fraction * contrast)
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


def segment_topographic(image: np.ndarray, region: np.ndarray, *,
                        smoothing_px: float = BASIN_SMOOTHING_PX,
                        background_px: float | None = None, basins: dict | None = None,
                        details: dict | None = None) -> np.ndarray:
    """Pores of a secondary-electron (topographic) image: crest-bounded basins classified as
    pore or polymer face. See the module docstring."""
    det = {} if details is None else details
    if basins is None:
        basins = topographic_basins(image, region, smoothing_px=smoothing_px,
                                    background_px=background_px)
    labels = basins["labels"]
    out = np.zeros(labels.shape, bool)
    if basins["n"] == 0:
        return out
    models = load_models()
    model = None if models is None else models["basin"]
    prob = classify_basins(basins, model)
    pore = prob > 0.5
    inl = labels > 0
    out[inl] = pore[labels[inl] - 1]
    if WALL_PASS_FRACTION > 0:
        walls = _wall_lines(basins, pore, WALL_PASS_FRACTION)
        out &= ~walls
        det["wall_line_pixels"] = int(walls.sum())
    det.update(basin_classifier="trained model" if model is not None else "crest vote rule",
               n_basins=int(basins["n"]), n_pore_basins=int(pore.sum()),
               rim_reach_px=float(basins.get("reach_px", 0.0)),
               noise_sigma=float(basins["noise_sigma"]))
    return out


# ------------------------------------------------------------------------------------------------
# the public entry point


def _check_inputs(image: np.ndarray, membrane_mask: np.ndarray | None,
                  pixel_size_um: float | None) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"image must be a 2-D grey array, got shape {img.shape}")
    if img.size == 0 or min(img.shape) < 3:
        raise ValueError(f"image of shape {img.shape} is too small to segment")
    if not (np.issubdtype(img.dtype, np.number) or img.dtype == bool):
        raise ValueError(f"image must be numeric, got dtype {img.dtype}")
    img = img.astype(np.float32)
    finite = np.isfinite(img)
    if membrane_mask is None:
        region = finite
    else:
        region = np.asarray(membrane_mask)
        if region.shape != img.shape:
            raise ValueError(f"membrane_mask shape {region.shape} differs from image shape "
                             f"{img.shape}")
        region = region.astype(bool) & finite
    if pixel_size_um is not None and not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number, got {pixel_size_um}")
    img = np.where(finite, img, 0.0).astype(np.float32)
    return img, region


def _to_px(value_um: float | None, pixel_size_um: float | None, name: str) -> float | None:
    if value_um is None:
        return None
    if not (math.isfinite(value_um) and value_um > 0):
        raise ValueError(f"{name} must be a positive length in µm, got {value_um}")
    if pixel_size_um is None:
        raise ValueError(f"{name} is in µm: give pixel_size_um to use it")
    return float(value_um) / float(pixel_size_um)


#: Without the shipped style model: rim score (see :func:`rim_score`) above which ``auto``
#: chooses ``topographic``.
RIM_SCORE_TOPOGRAPHIC = 0.6


def _choose_contrast(basins: dict, region: np.ndarray, details: dict) -> str:
    """``dark`` or ``topographic`` from the image, recording the evidence in ``details``."""
    feats = contrast_features(basins, region)
    details["contrast_evidence"] = {k: round(float(v), 4)
                                    for k, v in zip(STYLE_FEATURE_NAMES, feats)}
    models = load_models()
    if models is not None:
        p_topo = style_probability(feats, models["style"])
        used = "topographic" if p_topo > 0.5 else "dark"
        details["p_topographic"] = p_topo
        details["auto_reason"] = (
            f"P(topographic) = {p_topo:.2f} from the contrast evidence in "
            "details['contrast_evidence'] (tree ensemble trained on varied renderings, "
            "tools/train_segmenter.py)")
        return used
    score = float(feats[0])
    used = "topographic" if score > RIM_SCORE_TOPOGRAPHIC else "dark"
    details["auto_reason"] = (
        f"rim score {score:.2f} {'>' if used == 'topographic' else '<='} "
        f"{RIM_SCORE_TOPOGRAPHIC} (no style model found: rule)")
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
        electron images whose pores are enclosed by bright rims. ``auto``: chosen from the image
        (the rim score, see ``details["rim_score"]``).
    background_scale_um : float, optional
        Scale of the illumination drift removed (µm). Default: adapt (six times the typical
        feature size for ``dark``, a sixth of the image for ``topographic``).
    min_pore_diameter_um : float, optional
        Pores smaller than a disk of this diameter are removed and polymer specks of that size
        inside pores are filled. Default 2 px.
    smoothing_um : float, optional
        Gaussian noise smoothing sigma (µm). Default: adapt to the noise and the finest feature
        (``dark``, 0.5–2 px), 0.7 px (``topographic``).

    Returns
    -------
    Segmentation
        ``mask`` (pores inside the membrane), ``method`` (the method used), ``edge_pores``
        (pores cut by the image frame) and ``details`` (parameters in px, diagnostics, why
        ``auto`` chose its method, timings in s).

    Raises
    ------
    ValueError
        Non-2-D or non-numeric image, shape mismatch, unknown method, non-positive lengths.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    t_start = time.perf_counter()
    img, region = _check_inputs(image, membrane_mask, pixel_size_um)
    smoothing_px = _to_px(smoothing_um, pixel_size_um, "smoothing_um")
    background_px = _to_px(background_scale_um, pixel_size_um, "background_scale_um")
    min_d_px = _to_px(min_pore_diameter_um, pixel_size_um, "min_pore_diameter_um") or 2.0
    details: dict = {"requested_method": method, "pixel_size_um": pixel_size_um,
                     "min_pore_diameter_px": min_d_px}
    empty = np.zeros(img.shape, bool)
    values = img[region]
    if values.size < 16 or float(values.max() - values.min()) < 1e-6:
        details["note"] = ("empty membrane region" if values.size < 16
                           else "image is constant inside the membrane: no pores")
        used = "dark" if method == "auto" else method
        return Segmentation(mask=empty, method=used, edge_pores=empty.copy(), details=details)

    basins = None
    if method in ("auto", "topographic"):
        models = load_models()
        # the partition the shipped classifier was trained on
        part = ({"smoothing_px": BASIN_SMOOTHING_PX, "dynamics_k": BASIN_DYNAMICS_K}
                if models is None else {k: models[k] for k in ("smoothing_px", "dynamics_k")})
        basins = topographic_basins(img, region,
                                    smoothing_px=smoothing_px or part["smoothing_px"],
                                    background_px=background_px,
                                    dynamics_k=part["dynamics_k"])
        details["rim_score"] = float(basins.get("rim_score", 0.0))
    if method == "auto":
        used = _choose_contrast(basins, region, details)
    else:
        used = method
    details["timings_s"] = {"prepare": time.perf_counter() - t_start}
    t0 = time.perf_counter()
    if used == "dark":
        mask = segment_dark(img, region, smoothing_px=smoothing_px, background_px=background_px,
                            details=details)
    else:
        mask = segment_topographic(img, region, background_px=background_px, basins=basins,
                                   details=details)
    details["timings_s"]["classify"] = time.perf_counter() - t0
    min_area = math.pi * (min_d_px / 2) ** 2
    mask = _remove_small(mask & region, min_area)
    mask = _fill_small_holes(mask, region, min_area) & region
    details["porosity"] = float(mask[region].mean()) if region.any() else 0.0
    details["timings_s"]["total"] = time.perf_counter() - t_start
    return Segmentation(mask=mask, method=used, edge_pores=edge_pore_mask(mask),
                        details=details)
