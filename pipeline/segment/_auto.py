"""How ``method="auto"`` chooses between the dark and topographic methods: the style model on
the sample's contrast statistics, judged cell by cell, and the closed-ring test.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.special import expit, logit

from ._basins import BASIN_DYNAMICS_K, STYLE_FEATURE_NAMES, basins_from_q, contrast_features
from ._classifier import image_features_of, load_models, style_probability
from ._common import SAMPLE_GAP_PX

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



#: ``auto``: a topographic verdict is withdrawn when the topographic mask holds at least this many
#: times the pore area of the dark method's mask (:func:`face_taken_for_pore`).
FACE_POROSITY_RATIO = 3.0
#: ... and only when the dark method finds at least this porosity (a dark mask of almost nothing
#: is no evidence of dark pores on a bright face).
FACE_MIN_DARK_POROSITY = 0.02


def face_taken_for_pore(topographic_porosity: float, dark_porosity: float,
                        ratio: float = FACE_POROSITY_RATIO,
                        min_dark_porosity: float = FACE_MIN_DARK_POROSITY) -> bool:
    """Whether the topographic mask took a flat polymer face for pore (``auto``'s cross-check).

    Each method, run on the other contrast, reads the polymer face as pore: the dark method on a
    secondary-electron image puts its threshold between the bright rims and everything else
    (face and floors alike), the topographic method on a material-contrast image cuts the flat,
    noisy face into basins between noise crests and calls them pore floors. So when the two masks
    disagree grossly on how much is pore, one of them holds the face, and it is the one with more
    pore. Measured 2026-12-07 (both methods on every image, true membrane, Dice against the
    truth; ``benchmarks/bench_auto.py``): dark-contrast images whose face the topographic
    method took for pore gave ratios topographic / dark of 3.1-7.3 (sparse pores, porosity
    0.04-0.2, of two renderers: tools/train_segmenter.py's and tests/heldout.py's); where the
    topographic mask was the better one the ratio was at most 2.3 on the 370 training-like,
    sparse and held-out renderings, at most 1.6 on held-out secondary-electron renderings of
    sparse pores and 1.5 on the accuracy phantoms and the real files. Exception: dark renderings
    whose bright rim is a wall sloping into the pore (the dark method keeps only the floor) gave
    2.8 and 3.1, with both masks poor (Dice 0.71-0.73 topographic, 0.64-0.65 dark).

    Parameters
    ----------
    topographic_porosity, dark_porosity : float
        Pore fraction of the membrane in each method's mask.
    ratio : float
        Smallest ``topographic_porosity / dark_porosity`` that counts as a face taken for pore.
    min_dark_porosity : float
        Below this the dark mask is too sparse to say anything.

    Returns
    -------
    bool
    """
    if not (dark_porosity >= min_dark_porosity):
        return False
    return bool(topographic_porosity >= ratio * dark_porosity)


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
    """``dark`` or ``topographic`` from the sample (its ``image_features``, set by
    :func:`pipeline.segment.segment_pores`), recording the evidence in ``details``."""
    feats = image_features_of(basins)
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
