"""Local thickness (Hildebrand–Rüegsegger) of a 2-D pore mask, exact, in pixels.

Local pore size at a pixel p is the diameter of the largest disk that lies inside the pore phase
and covers p::

    tau(p) = 2 * max{ dt(x) : x pore pixel, |p - x| < dt(x) }

with ``dt`` the Euclidean distance from a pore pixel's centre to the nearest non-pore pixel's
centre (real-valued, as :func:`scipy.ndimage.distance_transform_edt` gives it: pixels outside the
array are not walls, so a pore cut by the image edge is not made small by the edge).

Algorithm (integer arithmetic throughout, so the strict inequality is decided exactly):

1. Squared Euclidean distance transform ``a = dt**2``, exact int32 (Meijster, Roerdink &
   Hesselink 2000: one pass down the columns, one lower envelope of parabolas along the rows).
2. Ridge: drop every pore pixel x whose lattice disk D(x) = {p : |p - x|**2 < a(x)} lies inside
   the lattice disk of a nearby pixel y = x + v, v a primitive lattice vector with
   max(|v_row|, |v_col|) <= 8 (|v|**2 <= 20 while a(x) < 32**2). The test is exact for lattice
   disks: D(x) ⊆ D(y) iff a(y) > max{|p + v|**2 : |p|**2 < a(x)}, read from a table over a(x)
   per symmetry class of v (above 2**22 the sufficient real-disk test
   sqrt(a(y)) >= sqrt(a(x)) + |v| is used instead). A dropped disk never raises a pixel above
   what the disk holding it gives, so the result stays exact. On masks of pores 5-80 px wide
   about 3 % of pore pixels remain; a real-disk test with the 8 neighbours would keep ~75 %.
3. Paint the remaining disks by descending radius with a per-row "next unpainted pixel"
   union-find, so each pore pixel is written once and a disk costs O(its rows), in bands of rows
   that fit in cache (bands are independent, so threads take bands).

Cost is O(N + sum over ridge disks of their diameter). Memory: the bool mask, an int32 image
(squared distances, then the union-find), the float32 result, the ridge list (a few per cent of
the pore pixels, 8 B each) and the table (uint16, 23 per squared radius up to the largest one in
the image: kB for pores of tens of px, 46 MB for a pore 2000 px wide). No float64 image is made.

Hand-written rather than taken from a library because it is exact (porespy's
:func:`porespy.filters.local_thickness` uses integer radii) and measurably faster: see
``benchmarks/README.md`` (≥ 5x porespy's fastest method, about one :func:`edt.edt` pass).
The kernels are numba-compiled (``cache=True``; numba falls back to the user's cache directory
when the package directory is read-only, and compiles in memory when neither is writable) and
release the GIL, so large masks are split over threads.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from functools import cache
from math import gcd

import numba
import numpy as np

#: The containment table covers squared radii below this (pores up to 4096 px wide).
_TABLE_SIZE_MAX = 1 << 22
#: Neighbour vectors tried for disk containment have max(|row|, |col|) <= this ...
_REACH = 8
#: ... but only those with squared length <= _NEAR_LENGTH2 for disks of squared radius below
#: _FAR_FROM, where the longer ones cost time and pruned no further pixel on the benchmark masks.
_NEAR_LENGTH2 = 20
_FAR_FROM = 32 * 32
#: Masks smaller than this run on one thread (thread start-up would cost more than it saves).
_MIN_PIXELS_PER_THREAD = 1 << 18
#: A painting band holds about this many pixels, and at least _BAND_ROWS_MIN rows (measured:
#: smaller bands repeat per-disk work, larger ones fall out of cache).
_BAND_PIXELS = 1 << 17
_BAND_ROWS_MIN = 16
#: Work is cut into about this many chunks per thread, handed out as threads become free.
_CHUNKS_PER_THREAD = 8


def _jit(func: Callable) -> Callable:
    """``numba.njit(nogil=True)`` with an on-disk cache when one can be written."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", numba.NumbaWarning)
            return numba.njit(cache=True, nogil=True)(func)
    except (RuntimeError, OSError):  # no writable cache location: compile in memory
        return numba.njit(cache=False, nogil=True)(func)


# --------------------------------------------------------------------------- compiled kernels


@_jit
def _isqrt(n):  # pragma: no cover - compiled
    """floor(sqrt(n)) for an integer 0 <= n < 2**52."""
    r = np.int64(np.sqrt(np.float64(n)))
    while r * r > n:
        r -= 1
    while (r + 1) * (r + 1) <= n:
        r += 1
    return r


@_jit
def _column_distances(mask, out, c_begin, c_end):  # pragma: no cover - compiled
    """out[r, c] = distance along column c to the nearest False pixel (rows + cols + 1: none)."""
    rows, cols = mask.shape
    inf = rows + cols + 1
    for c in range(c_begin, c_end):
        out[0, c] = inf if mask[0, c] else 0
    for r in range(1, rows):  # row-major sweeps: wide contiguous runs are fastest (measured)
        for c in range(c_begin, c_end):
            if mask[r, c]:
                out[r, c] = min(out[r - 1, c] + 1, inf)
            else:
                out[r, c] = 0
    for r in range(rows - 2, -1, -1):
        for c in range(c_begin, c_end):
            out[r, c] = min(out[r, c], out[r + 1, c] + 1)


@_jit
def _row_envelopes(out, r_begin, r_end):  # pragma: no cover - compiled
    """Replace column distances g by min_i (u - i)**2 + g(i)**2 along rows (Meijster 2000).

    Walls inside a run of walls are no sites (their run's ends are nearer to every pore pixel)
    and walls get 0 directly. The floor of the float64 division is exact: numerator and
    denominator are integers below 2**53, and a non-integer quotient is >= 1 / denominator away
    from an integer.
    """
    rows, cols = out.shape
    inf = rows + cols + 1
    site = np.empty(cols, np.int64)
    site_f = np.empty(cols, np.int64)
    start = np.empty(cols, np.int64)
    g = np.empty(cols + 2, np.int64)  # g[u + 1] is column u; g[0], g[cols + 1]: no wall
    g[0] = 1
    g[cols + 1] = 1
    for r in range(r_begin, r_end):
        for u in range(cols):
            g[u + 1] = out[r, u]
        q = -1
        for u in range(cols):
            gu = g[u + 1]
            if gu >= inf:  # no wall in this column: no parabola
                continue
            if gu == 0 and g[u] == 0 and g[u + 2] == 0:
                continue
            fu = gu * gu
            while q >= 0:
                tq = start[q]
                if (tq - site[q]) ** 2 + site_f[q] > (tq - u) ** 2 + fu:
                    q -= 1
                else:
                    break
            if q < 0:
                q = 0
                site[0] = u
                site_f[0] = fu
                start[0] = 0
            else:
                s = site[q]
                numerator = np.float64(u * u - s * s + fu - site_f[q])
                w = 1 + np.int64(np.floor(numerator / np.float64(2 * (u - s))))
                if w < cols:
                    q += 1
                    site[q] = u
                    site_f[q] = fu
                    start[q] = w
        for u in range(cols - 1, -1, -1):
            if g[u + 1] == 0:
                out[r, u] = 0
            else:
                out[r, u] = (u - site[q]) ** 2 + site_f[q]
            if u == start[q]:
                q -= 1


@_jit
def _containment_table(size, classes):  # pragma: no cover - compiled
    """T[a, k] = max{|p + v|**2 : p lattice, |p|**2 < a} - a for v in class k, uint16.

    Class k is v = (classes[k, 0], classes[k, 1]) up to signs and order. A pixel y = x + v with
    squared distance b holds the whole lattice disk of x (squared radius a) iff b > a + T[a, k].
    """
    n_classes = classes.shape[0]
    table = np.zeros((size, n_classes), np.uint16)
    # First, per squared norm s: max over lattice p with |p|**2 == s of |p + v|**2 - s (0: no p).
    # The octant i >= j >= 0 suffices: pairing the larger component of p with the larger one of
    # v gives the farthest of p's eight mirror images.
    for i in range(_isqrt(size - 1) + 1):
        for j in range(min(i, _isqrt(size - 1 - i * i)) + 1):
            s = i * i + j * j
            for k in range(n_classes):
                big = classes[k, 0]
                small = classes[k, 1]
                v = 2 * (i * big + j * small) + big * big + small * small
                if v > table[s, k]:
                    table[s, k] = v
    # Then the running maximum over s < a, in place (row a is read before it is overwritten).
    running = np.full(n_classes, -1, np.int64)
    here = np.empty(n_classes, np.int64)
    for a in range(size):
        for k in range(n_classes):
            here[k] = table[a, k]
            table[a, k] = max(running[k] - a, 0)
        for k in range(n_classes):
            if here[k] > 0 and a + here[k] > running[k]:
                running[k] = a + here[k]
    return table


@_jit
def _held_by_far_neighbour(
    sq, r, c, a, vectors, vector_class, table, n_near
):  # pragma: no cover - compiled
    """Whether the disk of (r, c) + vectors[k], k >= 8, holds the lattice disk of (r, c)."""
    rows, cols = sq.shape
    size = table.shape[0]
    last = vectors.shape[0] if a >= _FAR_FROM else n_near
    for k in range(8, last):
        rr = r + vectors[k, 0]
        cc = c + vectors[k, 1]
        if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
            continue
        b = np.int64(abs(sq[rr, cc]))
        if b <= a:
            continue
        if a < size:
            if b > a + table[a, vector_class[k]]:
                return True
        else:  # real disks: sqrt(b) >= sqrt(a) + |v|, in integers
            norm2 = vectors[k, 0] ** 2 + vectors[k, 1] ** 2
            d = b - a - norm2
            if d >= 0 and d * d >= 4 * norm2 * a:
                return True
    return False


@_jit
def _mark_ridge(
    sq, vectors, vector_class, table, n_near, counts, r_begin, r_end
):  # pragma: no cover - compiled
    """Negate sq where no nearby disk holds the pixel's lattice disk; counts[r] = how many.

    ``vectors[:8]`` are the 4 axial then the 4 diagonal unit vectors (classes 0 and 1); they hold
    about 95 % of pore pixels and are tested together, branch-free. Other rows may be negated
    concurrently by another thread, hence ``abs``.
    """
    rows, cols = sq.shape
    size = table.shape[0]
    for r in range(r_begin, r_end):
        n = 0
        up = max(r - 1, 0)
        down = min(r + 1, rows - 1)
        for c in range(cols):
            a = np.int64(sq[r, c])
            if a <= 0:
                continue
            left = max(c - 1, 0)
            right = min(c + 1, cols - 1)
            # a neighbour outside the array is replaced by the pixel itself, which never holds it
            axial = max(
                max(abs(sq[up, c]), abs(sq[down, c])), max(abs(sq[r, left]), abs(sq[r, right]))
            )
            diagonal = max(
                max(abs(sq[up, left]), abs(sq[up, right])),
                max(abs(sq[down, left]), abs(sq[down, right])),
            )
            if a < size:
                held = axial > a + table[a, 0] or diagonal > a + table[a, 1]
            else:
                held = False
                for k in range(8):
                    norm2 = vectors[k, 0] ** 2 + vectors[k, 1] ** 2
                    b = np.int64(axial if k < 4 else diagonal)
                    d = b - a - norm2
                    held = held or (d >= 0 and d * d >= 4 * norm2 * a)
            if not held:
                held = _held_by_far_neighbour(sq, r, c, a, vectors, vector_class, table, n_near)
            if not held:
                sq[r, c] = -a
                n += 1
        counts[r] = n


@_jit
def _ridge_keys(sq, offsets, keys, r_begin, r_end):  # pragma: no cover - compiled
    """keys[offsets[r]:offsets[r + 1]] = ``a << 32 | flat index`` of marked pixels of row r."""
    cols = sq.shape[1]
    for r in range(r_begin, r_end):
        k = offsets[r]
        for c in range(cols):
            a = sq[r, c]
            if a < 0:
                keys[k] = (np.int64(-a) << 32) | (r * cols + c)
                k += 1


@_jit
def _band_lists(keys, rows, cols, band_rows):  # pragma: no cover - compiled
    """Per band of ``band_rows`` rows, which keys' disks reach it, largest disk first (CSR)."""
    n_bands = (rows + band_rows - 1) // band_rows
    offsets = np.zeros(n_bands + 1, np.int64)
    low_bits = (np.int64(1) << 32) - 1
    for n in range(keys.shape[0]):
        reach = _isqrt((keys[n] >> 32) - 1)
        r0 = (keys[n] & low_bits) // cols
        for b in range(max(r0 - reach, 0) // band_rows, min(r0 + reach, rows - 1) // band_rows + 1):
            offsets[b + 1] += 1
    for b in range(n_bands):
        offsets[b + 1] += offsets[b]
    fill = offsets[:n_bands].copy()
    members = np.empty(offsets[n_bands], np.int32)
    for n in range(keys.shape[0] - 1, -1, -1):
        reach = _isqrt((keys[n] >> 32) - 1)
        r0 = (keys[n] & low_bits) // cols
        for b in range(max(r0 - reach, 0) // band_rows, min(r0 + reach, rows - 1) // band_rows + 1):
            members[fill[b]] = n
            fill[b] += 1
    return offsets, members


@_jit
def _first_unpainted(nxt, c, hi):  # pragma: no cover - compiled
    """First unpainted flat index >= c, or some index > hi; compresses the path it follows."""
    root = c
    while root <= hi and nxt[root] != root:
        root = nxt[root]
    while c < root and nxt[c] != c:
        step = nxt[c]
        nxt[c] = root
        c = step
    return root


@_jit
def _paint_bands(
    keys, offsets, members, nxt, out, cols, band_rows, b_begin, b_end
):  # pragma: no cover - compiled
    """Paint the disks reaching bands [b_begin, b_end), largest first, each pixel once.

    ``nxt`` and ``out`` are flat (C order). ``nxt[i] == i`` marks an unpainted pixel; for a
    painted one, every pixel of its row from i up to ``nxt[i]`` (exclusive) is painted.
    """
    rows = out.shape[0] // cols
    low_bits = (np.int64(1) << 32) - 1
    for band in range(b_begin, b_end):
        r_begin = band * band_rows
        r_end = min(r_begin + band_rows, rows)
        for i in range(r_begin * cols, r_end * cols):
            nxt[i] = i
        for m in range(offsets[band], offsets[band + 1]):
            key = keys[members[m]]
            a = key >> 32
            flat = key & low_bits
            r0 = flat // cols
            c0 = flat - r0 * cols
            reach = _isqrt(a - 1)
            top = max(r0 - reach, r_begin)
            bottom = min(r0 + reach, r_end - 1)
            value = np.float32(2.0 * np.sqrt(np.float64(a)))
            half = _isqrt(a - 1 - (top - r0) ** 2)
            for r in range(top, bottom + 1):
                rem = a - 1 - (r - r0) ** 2  # the disk's row: |dc| <= half <=> dc**2 <= rem
                while half * half > rem:
                    half -= 1
                while (half + 1) * (half + 1) <= rem:
                    half += 1
                lo = r * cols + max(c0 - half, 0)
                hi = r * cols + min(c0 + half, cols - 1)
                c = _first_unpainted(nxt, lo, hi)
                while c <= hi:
                    out[c] = value
                    nxt[c] = hi + 1
                    c = _first_unpainted(nxt, c + 1, hi)
                nxt[lo] = c  # all of [lo, c) is painted


# --------------------------------------------------------------------------- Python drivers


def _default_threads() -> int:
    try:
        n_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cpus = os.cpu_count() or 1
    # numba.get_num_threads() follows numba.set_num_threads(), with which a batch worker
    # process takes only its share of the cores
    return max(1, min(n_cpus, numba.get_num_threads()))


def _split(
    kernel: Callable, args: tuple, n_items: int, threads: int, min_chunk: int = 1
) -> None:
    """Run ``kernel(*args, begin, end)`` over chunks of [0, n_items) on ``threads`` threads.

    Threads pull chunks (about 8 per thread, of at least ``min_chunk`` items unless that leaves
    a thread idle) as they finish, so a thread slowed down by other processes on a shared
    machine does not hold up the others.
    """
    if threads <= 1 or n_items <= 1:
        kernel(*args, 0, n_items)
        return
    n_chunks = min(n_items, threads * _CHUNKS_PER_THREAD, max(threads, n_items // min_chunk))
    bounds = np.linspace(0, n_items, n_chunks + 1).round().astype(int).tolist()
    chunks = iter(zip(bounds[:-1], bounds[1:]))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            with lock:
                chunk = next(chunks, None)
            if chunk is None or errors:
                return
            try:
                kernel(*args, *chunk)
            except BaseException as error:  # re-raised in the calling thread
                errors.append(error)
                return

    workers = [threading.Thread(target=work) for _ in range(threads - 1)]
    for worker in workers:
        worker.start()
    work()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


def _as_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"local thickness needs a 2-D mask, got shape {mask.shape}")
    rows, cols = mask.shape
    if (rows - 1) ** 2 + (cols - 1) ** 2 >= 2**31 - 1:
        raise ValueError(f"mask of shape {mask.shape} is too large (sides must be under 32768 px)")
    return np.ascontiguousarray(mask if mask.dtype == bool else mask != 0)


def _thread_count(mask: np.ndarray, threads: int | None) -> int:
    if threads is None:
        threads = _default_threads()
    elif int(threads) != threads or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    return int(max(1, min(threads, mask.size // _MIN_PIXELS_PER_THREAD)))


def _squared_distance_transform(mask: np.ndarray, threads: int = 1) -> np.ndarray:
    """Exact squared EDT (int32) of a C-contiguous bool mask with at least one False pixel."""
    rows, cols = mask.shape
    sq = np.empty((rows, cols), np.int32)
    _split(_column_distances, (mask, sq), cols, threads, min_chunk=1024)
    _split(_row_envelopes, (sq,), rows, threads)
    return sq


def distance_transform(mask: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """Euclidean distance (px) from each True pixel's centre to the nearest False pixel's centre.

    Pixels outside the array are not walls (as in :func:`scipy.ndimage.distance_transform_edt`).

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, cols)
        Non-bool arrays are read as ``mask != 0``.
    threads : int, optional
        Threads to use; default: the CPUs available (capped by ``NUMBA_NUM_THREADS``).

    Returns
    -------
    ndarray of float32, shape (rows, cols)
        0 on False pixels; ``inf`` everywhere when the mask has no False pixel.
    """
    mask = _as_mask(mask)
    threads = _thread_count(mask, threads)
    n_pore = np.count_nonzero(mask)
    if n_pore == 0:
        return np.zeros(mask.shape, np.float32)
    if n_pore == mask.size:
        return np.full(mask.shape, np.inf, np.float32)
    sq = _squared_distance_transform(mask, threads)
    return np.sqrt(sq, dtype=np.float32)


@cache
def _neighbour_vectors(reach: int = _REACH) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primitive lattice vectors up to ``reach``, shortest first, and their symmetry classes.

    Returns
    -------
    vectors : ndarray of int64, shape (n, 2)
        (d_row, d_col) sorted by length: the 4 axial, then the 4 diagonal, ...
    vector_class : ndarray of int64, shape (n,)
        Index into ``classes`` of each vector.
    classes : ndarray of int64, shape (k, 2)
        Sorted (larger, smaller) absolute components: (1, 0), (1, 1), (2, 1), ...
    """
    vectors = [
        (i, j)
        for i in range(-reach, reach + 1)
        for j in range(-reach, reach + 1)
        if (i, j) != (0, 0) and gcd(abs(i), abs(j)) == 1
    ]
    vectors.sort(key=lambda v: (v[0] ** 2 + v[1] ** 2, v))
    classes = sorted({(max(abs(i), abs(j)), min(abs(i), abs(j))) for i, j in vectors})
    vector_class = [classes.index((max(abs(i), abs(j)), min(abs(i), abs(j)))) for i, j in vectors]
    arrays = (
        np.array(vectors, np.int64),
        np.array(vector_class, np.int64),
        np.array(classes, np.int64),
    )
    for array in arrays:
        array.flags.writeable = False
    return arrays


def local_thickness(mask: np.ndarray, *, unknown: np.ndarray | None = None,
                    threads: int | None = None) -> np.ndarray:
    """Local thickness (diameter, px) of the True phase of a 2-D mask, exact.

    ``tau(p) = 2 * max{dt(x) : |p - x| < dt(x)}`` over pore pixels x, with ``dt`` the real-valued
    Euclidean distance from x's centre to the nearest non-pore pixel centre (pixels outside the
    array are not walls). See the module docstring for the algorithm and its cost.

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, cols)
        True = pore. Non-bool arrays are read as ``mask != 0``. Sides under 32768 px.
    unknown : ndarray of bool, shape (rows, cols), optional
        Pixels whose phase is not known (e.g. under a label burned into the micrograph): like
        the space outside the array they are not walls, and like it they hold no disk centre and
        get 0. ``dt`` is then the distance to the nearest pixel that is neither pore nor unknown.
    threads : int, optional
        Threads to use; default: the CPUs available (capped by ``NUMBA_NUM_THREADS``). Masks
        under 2**18 pixels per thread use fewer.

    Returns
    -------
    ndarray of float32, shape (rows, cols)
        Diameter in px of the largest inscribed disk covering each True pixel; 0 elsewhere;
        ``inf`` everywhere when the mask has no False pixel (no wall anywhere).
    """
    mask = _as_mask(mask)
    threads = _thread_count(mask, threads)
    n_pore = np.count_nonzero(mask)
    if unknown is not None:
        unknown = _as_mask(unknown)
        if unknown.shape != mask.shape:
            raise ValueError(f"unknown has shape {unknown.shape}, the mask {mask.shape}")
        unknown = unknown & ~mask
        if not unknown.any():
            unknown = None
    if n_pore == 0:
        return np.zeros(mask.shape, np.float32)
    open_phase = mask if unknown is None else mask | unknown
    if np.count_nonzero(open_phase) == mask.size:
        return np.where(mask, np.float32(np.inf), np.float32(0)).astype(np.float32)
    rows, cols = mask.shape
    sq = _squared_distance_transform(open_phase, threads)
    if unknown is not None:
        sq[unknown] = 0  # no disk is centred where the phase is unknown

    vectors, vector_class, classes = _neighbour_vectors()  # cached: read-only constants
    n_near = int(np.count_nonzero((vectors**2).sum(axis=1) <= _NEAR_LENGTH2))
    table = _containment_table(int(min(int(sq.max()) + 1, _TABLE_SIZE_MAX)), classes)
    counts = np.empty(rows, np.int64)
    _split(_mark_ridge, (sq, vectors, vector_class, table, n_near, counts), rows, threads)
    del table

    offsets = np.zeros(rows + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    keys = np.empty(int(offsets[-1]), np.int64)
    _split(_ridge_keys, (sq, offsets, keys), rows, threads)
    keys.sort()  # ascending radius; painting walks it backwards

    band_rows = max(_BAND_ROWS_MIN, _BAND_PIXELS // cols)
    band_offsets, members = _band_lists(keys, rows, cols, band_rows)
    out = np.zeros((rows, cols), np.float32)
    args = (keys, band_offsets, members, sq.reshape(-1), out.reshape(-1), cols, band_rows)
    _split(_paint_bands, args, len(band_offsets) - 1, threads)
    if unknown is not None:
        out[unknown] = 0.0
    return out
