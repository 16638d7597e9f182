"""The basin classifier and the ``auto`` style model: gradient-boosted tree ensembles stored as
plain arrays (``pipeline/data/segment_models.npz``), evaluated without scikit-learn, and the context
stage that sees the neighbours' probabilities across each crest.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numba
import numpy as np
from scipy.special import expit, logit

from ._basins import (
    BASIN_DYNAMICS_K,
    BASIN_SMOOTHING_PX,
    FEATURE_NAMES,
    STYLE_FEATURE_NAMES,
    _neighbour_extremes,
)

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
MODEL_PATH = Path(__file__).parent.parent / "data" / "segment_models.npz"


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
    image_names = tuple(str(x) for x in arrays.get("basin_image_feature_names", ()))
    if not set(image_names) <= set(STYLE_FEATURE_NAMES):
        raise ValueError(f"{p}: the basin classifier was trained on other image features than "
                         "this version computes; retrain with tools/train_segmenter.py")
    basin = {k[len("basin_"):]: v for k, v in arrays.items() if k.startswith("basin_")}
    # the image-level features (by name, a subset of STYLE_FEATURE_NAMES) it reads, if any
    basin["image_features"] = image_names
    if "context_roots" in arrays:
        names = tuple(str(x) for x in arrays["context_feature_names"])
        context_image = names[len(FEATURE_NAMES):len(names) - len(CONTEXT_FEATURE_NAMES)]
        if (names[:len(FEATURE_NAMES)] != FEATURE_NAMES
                or names[len(FEATURE_NAMES) + len(context_image):] != CONTEXT_FEATURE_NAMES
                or not set(context_image) <= set(STYLE_FEATURE_NAMES)):
            raise ValueError(f"{p}: the context classifier was trained on other features than "
                             "this version computes; retrain with tools/train_segmenter.py")
        basin["context"] = {k[len("context_"):]: v for k, v in arrays.items()
                            if k.startswith("context_")}
        basin["context"]["image_features"] = context_image
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


def image_features_of(basins: dict) -> np.ndarray:
    """The image-level features (:func:`contrast_features`, ``STYLE_FEATURE_NAMES``) the basin
    classifier reads beside each basin's own: ``basins["image_features"]``, set on the image's
    sample (and handed to its tiles) by :func:`pipeline.segment.segment_pores` and by
    :func:`topographic_basins`."""
    x = basins.get("image_features")
    if x is None:
        raise ValueError("the basin classifier reads image-level features: set "
                         "basins['image_features'] = contrast_features(sample, sample_region)")
    return np.asarray(x, np.float64)


def reads_image_features(model: dict | None) -> bool:
    """Whether a basin classifier (``load_models()["basin"]``) or its context stage reads
    image-level features (:func:`image_features_of`)."""
    if not model:
        return False
    return bool(len(model.get("image_features", ()))
                or len((model.get("context") or {}).get("image_features", ())))


def _with_image_features(feats: np.ndarray, basins: dict, model: dict) -> np.ndarray:
    """``feats`` (basins x FEATURE_NAMES) with the image-level features ``model`` reads
    (``model["image_features"]``, names) appended to every row."""
    names = model.get("image_features", ())
    if not len(names):
        return feats
    image = image_features_of(basins)[[STYLE_FEATURE_NAMES.index(n) for n in names]]
    return np.column_stack([feats, np.broadcast_to(image, (feats.shape[0], image.size))])


def classify_basins(basins: dict, model: dict | None = None) -> np.ndarray:
    """Pore probability of every basin of :func:`topographic_basins`.

    With the trained model: its probability from the basin's features (and, for a model trained
    with ``--image-features``, the image's, :func:`image_features_of`; the shipped model reads
    none), combined with its context stage when it has one
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
    z = tree_model_log_odds(model, _with_image_features(feats, basins, model))
    p = expit(z)
    context = model.get("context")
    if context is None:
        return p
    pairs = basins["pairs"]
    x = context_features(feats, p, pairs["a"].astype(np.int64) - 1,
                         pairs["b"].astype(np.int64) - 1, pairs["length"],
                         crest_levels(basins), basins["area"])
    z2 = tree_model_log_odds(context, np.column_stack([_with_image_features(feats, basins,
                                                                            context), x]))
    # the two stages' log-odds are averaged: alone, the context stage can turn a small shift of
    # the image calibration, which moves many first-stage probabilities together, into a
    # collective flip of the neighbourhood (one of 28 random topographic phantoms: porosity
    # 0.70 -> 0.56 for a membrane mask 0.2 % smaller); averaged, its worst Dice loss against the
    # first stage alone on those 28 is 0.013 and the mean gain is kept (0.832 -> 0.844)
    return expit(0.5 * (z + z2))


# ------------------------------------------------------------------------------------------------
# how sure the basin classifier is: a review priority for the topographic method

#: Pore probabilities strictly between these bounds mark a basin the classifier cannot call.
AMBIGUOUS_PROBABILITY = (0.25, 0.75)


def ambiguous_fraction_by_depth(probability: np.ndarray, region: np.ndarray,
                                depth_px: np.ndarray, pixel_size_um: float,
                                bin_width_um: float, n_bins: int,
                                bounds: tuple[float, float] = AMBIGUOUS_PROBABILITY,
                                band_rows: int = 2048) -> np.ndarray:
    """:func:`ambiguous_fraction` per depth bin, binned as :func:`pipeline.profile.depth_profile`.

    Parameters
    ----------
    probability : ndarray of float, shape (rows, cols)
        Per-pixel pore probability (:attr:`Segmentation.pore_probability`).
    region : ndarray of bool, shape (rows, cols)
        The membrane.
    depth_px : ndarray of float, shape (rows, cols)
        Distance below the reference surface, px (NaN outside the membrane).
    pixel_size_um : float
    bin_width_um : float
        Bin width, µm; bin ``k`` holds depths in ``[k w, (k + 1) w)``, the deepest bin also all
        deeper pixels (as in ``depth_profile``).
    n_bins : int
    bounds : (low, high)
    band_rows : int
        Rows per pass.

    Returns
    -------
    ndarray of float, shape (n_bins,)
        Share of each bin's membrane pixels whose probability lies strictly inside ``bounds``;
        NaN for a bin without membrane pixels.

    Notes
    -----
    Where in depth the segmentation doubts itself. Within one image it ranks the depth bins by
    their pore-size error against the truth (benchmarks/ACCURACY.md, "How sure the topographic
    method is"), so a dip or a rise of the pore-size profile where this share is high deserves a
    look at the overlay before it is believed.
    """
    if probability.shape != region.shape or depth_px.shape != region.shape:
        raise ValueError(f"probability {probability.shape}, region {region.shape} and depth "
                         f"{depth_px.shape} differ in shape")
    if n_bins < 1 or not bin_width_um > 0:
        raise ValueError(f"need n_bins >= 1 and bin_width_um > 0 (got {n_bins}, {bin_width_um})")
    low, high = bounds
    total = np.zeros(n_bins, np.int64)
    ambiguous = np.zeros(n_bins, np.int64)
    scale = np.float32(pixel_size_um / bin_width_um)
    for r0 in range(0, region.shape[0], band_rows):
        d = depth_px[r0:r0 + band_rows]
        sel = region[r0:r0 + band_rows] & np.isfinite(d)
        # the arithmetic of depth_profile, so the bins line up with its rows
        idx = np.minimum((d[sel].astype(np.float32) * scale).astype(np.int32), n_bins - 1)
        p = probability[r0:r0 + band_rows][sel]
        total += np.bincount(idx, minlength=n_bins)
        ambiguous += np.bincount(idx[(p > low) & (p < high)], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, ambiguous / np.maximum(total, 1), np.nan)


def ambiguous_fraction(probability: np.ndarray, region: np.ndarray,
                       bounds: tuple[float, float] = AMBIGUOUS_PROBABILITY,
                       band_rows: int = 2048) -> float | None:
    """Share of ``region`` whose pore probability lies strictly inside ``bounds``.

    Parameters
    ----------
    probability : ndarray of float, shape (rows, cols)
        Per-pixel pore probability (:attr:`Segmentation.pore_probability`: the basin
        classifier's probability of the basin each pixel lies in).
    region : ndarray of bool, shape (rows, cols)
        The pixels that count (the membrane).
    bounds : (low, high)
        Probabilities in ``(low, high)`` count as ambiguous.
    band_rows : int
        Rows per pass (bounds the temporaries on montages).

    Returns
    -------
    float or None
        Dimensionless share in [0, 1]; None for an empty region.

    Notes
    -----
    A measure of the segmentation's own doubt, not of its error, but a close predictor of it:
    over topographic renderings of three renderers (``pipeline.synthetic`` random phantoms, its
    accuracy kinds and the held-out secondary-electron kinds of ``tests/heldout.py``) the Spearman
    correlation with the pore Dice against the truth is about -0.9 (benchmarks/ACCURACY.md,
    "How sure the topographic method is").
    """
    if probability.shape != region.shape:
        raise ValueError(f"probability {probability.shape} and region {region.shape} differ "
                         "in shape")
    low, high = bounds
    n_region = n_ambiguous = 0
    for r0 in range(0, region.shape[0], band_rows):
        reg = region[r0:r0 + band_rows]
        p = probability[r0:r0 + band_rows][reg]
        n_region += p.size
        n_ambiguous += int(np.count_nonzero((p > low) & (p < high)))
    return n_ambiguous / n_region if n_region else None


def ambiguous_regions(probability: np.ndarray, region: np.ndarray,
                      bounds: tuple[float, float] = AMBIGUOUS_PROBABILITY,
                      min_area_px: int = 1) -> np.ndarray:
    """The connected places a reviewer should look at: groups of touching ambiguous basins.

    Parameters
    ----------
    probability : ndarray of float, shape (rows, cols)
        Per-pixel pore probability (:attr:`Segmentation.pore_probability`).
    region : ndarray of bool, shape (rows, cols)
        The pixels that count (the membrane).
    bounds : (low, high)
        Probabilities in ``(low, high)`` count as ambiguous (as in :func:`ambiguous_fraction`).
    min_area_px : int
        Smaller groups are left out.

    Returns
    -------
    ndarray of int64, shape (n, 5)
        One row per 8-connected group of ambiguous pixels, largest first (ties: top-left first):
        ``row0, row1, col0, col1`` (half-open bounding box, px) and ``area_px``.
    """
    import cv2

    if probability.shape != region.shape:
        raise ValueError(f"probability {probability.shape} and region {region.shape} differ "
                         "in shape")
    low, high = bounds
    doubtful = ((probability > low) & (probability < high) & region).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(doubtful, connectivity=8,
                                                      ltype=cv2.CV_32S)
    stats = stats[1:].astype(np.int64)  # label 0 is the background
    keep = stats[:, cv2.CC_STAT_AREA] >= max(int(min_area_px), 1)
    x, y, w, h, area = (stats[keep, k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                                  cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT,
                                                  cv2.CC_STAT_AREA))
    order = np.lexsort((x, y, -area))
    return np.column_stack([y, y + h, x, x + w, area])[order]

