"""Tiny phantoms for tests of the plumbing (CLI, batch, report); accuracy tests use
pipeline.synthetic."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def simple_membrane(rows=240, cols=320, surface_row=50, seed=0) -> np.ndarray:
    """uint8 cross-section: smooth dark background above, bright polymer with dark pores."""
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal((rows, cols)), 4)
    pores = field < np.quantile(field, 0.45)
    img = np.where(pores, 0.25, 0.8) + 0.03 * rng.standard_normal((rows, cols))
    img[:surface_row] = 0.05 + 0.01 * rng.standard_normal((surface_row, cols))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)
