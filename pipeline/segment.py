"""Pore segmentation of grey SEM cross-sections."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

METHODS = ("auto", "dark", "topographic", "classifier")


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


def edge_pore_mask(mask: np.ndarray, membrane_mask: np.ndarray | None = None) -> np.ndarray:
    """Pore pixels belonging to pores that touch the left, right, top or bottom image edge."""
    lab, n = ndi.label(mask)
    if n == 0:
        return np.zeros(mask.shape, bool)
    edge_labels = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    edge_labels = edge_labels[edge_labels > 0]
    return np.isin(lab, edge_labels)


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
    """Segment pores (True) in a grey micrograph.

    Parameters
    ----------
    image : ndarray, shape (rows, cols), grey in [0, 1]
    membrane_mask : ndarray of bool, optional
        Only pixels inside are classified; default the whole frame.
    pixel_size_um : float, optional
        Turns the µm parameters into pixels.
    method : str
        ``auto``, ``dark``, ``topographic`` or ``classifier``.
    """
    from skimage.filters import threshold_otsu

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    img = np.asarray(image, np.float32)
    region = np.ones(img.shape, bool) if membrane_mask is None else np.asarray(membrane_mask, bool)
    px = pixel_size_um or 1.0
    sigma = smoothing_um / px if smoothing_um else 1.0
    smooth = ndi.gaussian_filter(img, sigma)
    bg_px = background_scale_um / px if background_scale_um else max(img.shape) / 8
    bg = ndi.gaussian_filter(np.where(region, smooth, np.median(smooth[region])), bg_px)
    flat = smooth - bg
    t = threshold_otsu(flat[region]) if region.any() else 0.0
    mask = (flat < t) & region
    min_d = min_pore_diameter_um / px if min_pore_diameter_um else 2.0
    from skimage.morphology import remove_small_objects

    mask = remove_small_objects(mask, max_size=int(np.pi * (min_d / 2) ** 2))
    return Segmentation(mask=mask, method="dark", edge_pores=edge_pore_mask(mask),
                        details={"threshold": float(t), "smoothing_px": float(sigma)})
