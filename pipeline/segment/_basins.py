"""Crest-bounded basins of the topographic method: a steepest-descent watershed (numba), merging by
dynamics, and the scale-free basin features the classifier reads (see :mod:`pipeline.segment`).
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np
from scipy import ndimage as ndi

from ._common import hydraulic_diameter_px, threshold_edge_width_px

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
                  dynamics_k: float = BASIN_DYNAMICS_K, calibration: dict | None = None,
                  fixed: dict | None = None) -> dict:
    """Basins of the flattened image ``q`` with their features.

    With ``calibration`` None the image calibrates itself (the rim reach and the feature
    normalisation are measured on these basins and returned in ``out["calibration"]``), except
    for the values ``fixed`` gives (measured on more of the image): any of ``reach`` (the rim
    reach, px), ``axis`` and ``dipole_strength`` (the detector's); a None value is measured.
    """
    labels, n, pairs = watershed_basins(q, region, dynamics_k * nq)
    out = {"labels": labels, "pairs": pairs, "n": n, "q": q, "noise_q": nq}
    if n == 0:
        out.update(features=np.zeros((0, len(FEATURE_NAMES)), np.float32), area=np.zeros(0),
                   core_level=np.zeros(0), calibration=calibration)
        return out
    fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
    reach = calibration["reach"] if calibration is not None else fixed.get("reach")
    raw = _measure_basins(q, labels, n, None if reach is None else float(reach))
    ps = _pair_stats(raw, pairs, n, nq, raw["reach"])
    if calibration is None:
        cal = _calibrate(raw, ps, nq, _cut_basins(labels, region, n))
        if "axis" in fixed:
            cal["axis"] = np.asarray(fixed["axis"], np.float64)
        if "dipole_strength" in fixed:
            cal["dipole_strength"] = float(fixed["dipole_strength"])
    else:
        cal = calibration
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
