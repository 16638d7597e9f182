"""Local thickness (Hildebrand–Rüegsegger) of a 2-D pore mask, exact, in pixels.

Local pore size at a pixel p is the diameter of the largest disk that lies inside the pore phase
and covers p::

    tau(p) = 2 * max{ dt(x) : x pore pixel, |p - x| < dt(x) }

with ``dt`` the Euclidean distance from a pore pixel's centre to the nearest non-pore pixel's
centre (real-valued, as :func:`scipy.ndimage.distance_transform_edt` gives it: pixels outside the
array are not walls, so a pore cut by the image edge is not made small by the edge).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage as ndi


def distance_transform(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) from each True pixel to the nearest False pixel, float32."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    if mask.all():
        return np.full(mask.shape, np.inf, np.float32)
    return ndi.distance_transform_edt(mask).astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _paint(order, rr, cc, radius2, shape):  # pragma: no cover - compiled
    """Max-paint disks {p : |p - x|^2 < radius2} with value 2*sqrt(radius2).

    ``radius2`` is the squared EDT, an integer for a pixel grid, so the strict inequality of the
    definition is decided exactly in integers.
    """
    out = np.zeros(shape, np.float32)
    rows, cols = shape
    for k in order:
        r0 = rr[k]
        c0 = cc[k]
        r2 = radius2[k]
        d = np.float32(2.0 * np.sqrt(r2))
        reach = int(np.sqrt(r2)) + 1
        for dr in range(-reach, reach + 1):
            r = r0 + dr
            if r < 0 or r >= rows:
                continue
            rem = r2 - dr * dr
            if rem <= 0:
                continue
            h = int(np.sqrt(rem))
            while h * h >= rem:
                h -= 1
            while (h + 1) * (h + 1) < rem:
                h += 1
            lo = max(c0 - h, 0)
            hi = min(c0 + h, cols - 1)
            for c in range(lo, hi + 1):
                if out[r, c] < d:
                    out[r, c] = d
    return out


def _ridge(dt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pore pixels whose maximal disk is not inside a neighbour's disk.

    Disk(x) lies inside disk(y) when dt(y) >= dt(x) + |x - y|; such x cannot raise any
    pixel's local thickness above what y gives, so dropping it keeps the result exact.
    """
    keep = mask.copy()
    padded = np.pad(dt, 1, mode="constant", constant_values=0)
    rows, cols = dt.shape
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            step = float(np.hypot(dr, dc))
            neighbour = padded[1 + dr: 1 + dr + rows, 1 + dc: 1 + dc + cols]
            keep &= ~(neighbour >= dt + step - 1e-6)
    return keep


def local_thickness(mask: np.ndarray) -> np.ndarray:
    """Local thickness (diameter, px) of the True phase of a 2-D mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, cols)
        True = pore.

    Returns
    -------
    ndarray of float32, shape (rows, cols)
        Diameter in px of the largest inscribed disk covering each True pixel; 0 elsewhere.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"local_thickness expects a 2-D mask, got shape {mask.shape}")
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    if mask.all():
        return np.full(mask.shape, np.inf, np.float32)
    dt = distance_transform(mask)
    ridge = _ridge(dt, mask)
    rr, cc = np.nonzero(ridge)
    radius2 = np.rint(dt[rr, cc].astype(np.float64) ** 2).astype(np.int64)
    order = np.argsort(-radius2, kind="stable")
    out = _paint(order, rr.astype(np.int64), cc.astype(np.int64), radius2, mask.shape)
    out[~mask] = 0
    return out
