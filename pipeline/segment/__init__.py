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

The rim model above centres the rim on the edge, as :func:`pipeline.synthetic.render` draws it.
A rim lying wholly on the polymer side (an edge glow that starts at the edge) fits that model only
with the edge pushed under the rim, and the correction then grows the pores by about a pixel (dark
renderings with such rims, 0.15-0.55 above the polymer: porosity +3 to +28 %). So the correction is
checked from the edges it made: their edge profile is fitted again with the rim's position free
(``fit_rim_profile(..., free_offset=True)``); when the rim lies more than ``RIM_OUTSIDE_MIN_PX``
outside the edges, but not more than ``RIM_OUTSIDE_MAX_WIDTHS`` of its widths (a rim fitted farther
out does not touch the edge: across walls thinner than the rim band it is the next pore's rim),
and that model leaves less than ``RIM_OFFSET_RSS_RATIO`` of the centred model's
residual, the threshold is raised instead by the level the rim adds AT the edge
(``details["rim_outside_edge"]``). ``benchmarks/bench_rim_position.py`` (36 dark renderings of
``tests/heldout.py`` ``render_rim_position`` per rim position: sponge, spheres and cells, rims 1 and
2.5 px wide and 0.15-0.5 above the polymer, blur 0.7 and 1.2 px): rims outside the edges Dice 0.960
-> 0.974 on average (the check passed on 21 of 36, on the others it left the mask as it was;
22 of 48 renderings of a wider sweep, blur 0.7-1.6 px: Dice 0.879-0.998 -> 0.969-1.000, porosity
from up to +28 % to at most +6 %). Rims centred on the edge never passed it (those 36, the 162 dark
random phantoms of ``benchmarks/bench_random.py`` seeds 0-339 and the dark kinds of
benchmarks/ACCURACY.md: every number unchanged). Not handled: rims lying INSIDE the pores (a bright
wall sloping down into the pore): porosity 0.81 of the truth on average, 0.47 where the rim is as
bright as the polymer; there the midpoint mask stops at the rim, and no step-plus-rim model fitted
to the pooled profile places the edge beyond it.

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
two renderers, membranes of porosity 0.25-0.7 and, at 0.3 of their weight, sparse ones of
0.08-0.3 (trained on the dense ones only, the classifier read the wide polymer face between
few pores as pore: sponges and closed cells at porosity 0.08, Dice 0.32-0.47, now 0.61-0.73;
held-out sparse SE renderings 0.795 -> 0.861 on average, dense ones unchanged; numbers in the
training tool's docstring) (``tools/train_segmenter.py``; stored as plain arrays in
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
features. The classifier then reads every basin under local calibrations too
(:func:`local_pore_probability`): windows of ``LOCAL_CALIBRATION_PX`` (256 px, half-window steps)
are calibrated on their own basins (crest contrast, core levels; the rim reach and detector axis
stay the image's) and a basin's probability is the tent-weighted mean over the windows it lies in
(on an image of large pores the windows grow to hold ``LOCAL_CALIBRATION_MIN_BASINS`` basins by area
on average, and one holding fewer is skipped). A membrane graded from coarse to fine pores has no
single calibration that fits all of it: its finest cells, in units of the coarse ones' crest
contrast and levels, read as polymer (random phantom 294: porosity 0.20 in the fine third, true
0.66; 0.55 with windows). Over 126 random topographic phantoms the porosity profile met its target
on 98 -> 112, Dice +0.005 on average; a membrane of one pore size is left as it was (the closed-cell
accuracy phantoms: 0.3 % of the pixels change, the real Hitachi cross-section 1.3 %). Crest-bounded
pores sit displaced away from the side where their rims are brighter (the bright rim and the lit
floor under it push the crest into the pore there, the shadowed side pushes it out), so the finished
topographic mask is translated by ``DETECTOR_SHIFT_PX`` (0.5 px) toward the measured detector
direction when that direction is measured (:func:`translate_mask`).
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
renderings of four renderers; ``details["bright_ring_fraction"]``). When it says
``topographic``, the dark method is run too (about half the topographic method's time) and
the verdict is withdrawn when the topographic mask holds at least ``FACE_POROSITY_RATIO`` (3)
times the dark mask's pore area (:func:`face_taken_for_pore`; both porosities in
``details["auto_porosity_check"]``): each method run on the other contrast reads the flat
polymer face as pore, so a gross disagreement means one of them did, the one with more pore.
Sparse dark pores (porosity 0.04-0.2) on a flat face gave the classifier P(topographic) 0.5-0.96
and the topographic method cut the face into noise basins (Dice 0.15-0.58 against 0.61-0.87 for
the dark method); ``benchmarks/bench_auto.py``, same draws before and after: held-out sparse
BSE renderings, choices costing > 0.05 Dice 8 -> 0 of 50 (mean cost 0.091 -> 0), sparse
training-like ones 10 -> 6 of 80 (0.034 -> 0.019), held-out sparse SE 3 -> 2 of 50, the other
240 renderings unchanged.

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

Layout: this module holds :func:`segment_pores` and :class:`Segmentation`; the stages live in
private modules, in the order they depend on each other: ``_common`` (noise, blur, scan lines,
band-wise smoothing, the sample windows, coarse grids, input checks, resolution limits),
``_dark`` (the dark method), ``_basins`` (watershed basins and their features), ``_classifier``
(the tree ensembles and the context stage), ``_topographic`` (wall lines, the detector shift,
tiles, coarse levels for large pores) and ``_auto`` (the choice between the methods). Their public
names are re-exported here. The tuning constants (``WALL_PASS_FRACTION``, ``RIM_MAX_FRACTION``,
...) are read from the module that defines them: to change one at run time, set it there
(``pipeline.segment._dark.RIM_MAX_FRACTION``), not on this package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._auto import (
    FACE_MIN_DARK_POROSITY,
    FACE_POROSITY_RATIO,
    RIM_SCORE_TOPOGRAPHIC,
    RING_FRACTION_TOPOGRAPHIC,
    RING_MIN_HOLE_PX,
    STYLE_CELL_PX,
    _choose_contrast,
    bright_ring_fraction,
    face_taken_for_pore,
)
from ._basins import (
    BASIN_DYNAMICS_K,
    BASIN_SMOOTHING_PX,
    FEATURE_NAMES,
    NOISY_MAX_EDGE_WIDTH_PX,
    NOISY_Q_RAMP,
    NOISY_Q_RATIO,
    PROFILE_BINS,
    RANK_TABLE,
    STYLE_FEATURE_NAMES,
    basins_from_q,
    contrast_features,
    detector_direction,
    noise_adapted_smoothing_px,
    relative_noise,
    rim_score,
    smoothing_for_noise,
    watershed_basins,
)
from ._classifier import (
    AMBIGUOUS_PROBABILITY,
    CONTEXT_FEATURE_NAMES,
    MODEL_PATH,
    ambiguous_fraction,
    ambiguous_fraction_by_depth,
    ambiguous_regions,
    classify_basins,
    context_features,
    crest_levels,
    export_tree_model,
    image_features_of,
    load_models,
    reads_image_features,
    style_probability,
    tree_model_log_odds,
    tree_model_proba,
)
from ._common import (
    BAND_PX,
    LIMIT_PER_EDGE_PX,
    RESOLUTION_LIMIT_PX,
    SAMPLE_BUDGET_PX,
    SAMPLE_GAP_PX,
    SAMPLE_WINDOW_PX,
    _check_inputs,
    _fill_small_holes,
    _region_stats,
    _remove_small,
    _to_px,
    edge_blur_px,
    edge_pore_mask,
    estimate_noise_sigma,
    hydraulic_diameter_px,
    level_grid,
    remove_scan_lines,
    resolution_limit_px,
    sample_windows,
    scan_line_offsets,
    threshold_edge_width_px,
    wiener_deblur,
)
from ._dark import (
    DARK_DEBLUR_ABOVE_PX,
    DARK_TARGET_BLUR_PX,
    RIM_GROW_ABOVE,
    RIM_MAX_FRACTION,
    RIM_NOISE_MARGIN,
    RIM_OFFSET_RSS_RATIO,
    RIM_OUTSIDE_MAX_WIDTHS,
    RIM_OUTSIDE_MIN_PX,
    RIM_PROFILE_PX,
    _segment_dark,
    edge_profile,
    fit_rim_profile,
    rim_fraction_at_blur,
    segment_dark,
)
from ._topographic import (
    DETECTOR_SHIFT_MIN_STRENGTH,
    DETECTOR_SHIFT_PX,
    DETECTOR_SIGN_MIN_GAIN,
    LARGE_PORE_LEVELS,
    LARGE_PORE_MARGIN_PX,
    LARGE_PORE_MAX_OUTLINE_CONTACT,
    LARGE_PORE_MIN_AREA_SHARE,
    LARGE_PORE_MIN_DIAMETER_PX,
    LARGE_PORE_MIN_SIDE_PX,
    LARGE_PORE_RIM_QUANTILE,
    LARGE_PORE_SKIN_MAX_PORE_FRACTION,
    LOCAL_CALIBRATION_MIN_BASINS,
    LOCAL_CALIBRATION_PX,
    MAX_UNTILED_PX,
    TILE_PX,
    WALL_OF_RIM_FRACTION,
    WALL_PASS_FRACTION,
    WALL_RIM_MIN_SIZE,
    WALL_RIM_QUANTILE,
    WALL_WIDTH_PX,
    _prepare,
    _sample_basins,
    _segment_topographic_full,
    _shift_toward_detector,
    _tile_overlap_px,
    fill_large_pores,
    local_pore_probability,
    local_window_px,
    orient_detector_axis,
    topographic_basins,
    translate_mask,
)

__all__ = [
    "ambiguous_fraction",
    "ambiguous_fraction_by_depth",
    "ambiguous_regions",
    "AMBIGUOUS_PROBABILITY",
    "BAND_PX",
    "BASIN_DYNAMICS_K",
    "BASIN_SMOOTHING_PX",
    "basins_from_q",
    "bright_ring_fraction",
    "face_taken_for_pore",
    "FACE_MIN_DARK_POROSITY",
    "FACE_POROSITY_RATIO",
    "classify_basins",
    "CONTEXT_FEATURE_NAMES",
    "context_features",
    "contrast_features",
    "crest_levels",
    "DARK_DEBLUR_ABOVE_PX",
    "DARK_TARGET_BLUR_PX",
    "detector_direction",
    "DETECTOR_SHIFT_MIN_STRENGTH",
    "DETECTOR_SHIFT_PX",
    "DETECTOR_SIGN_MIN_GAIN",
    "edge_blur_px",
    "edge_pore_mask",
    "edge_profile",
    "estimate_noise_sigma",
    "export_tree_model",
    "image_features_of",
    "reads_image_features",
    "FEATURE_NAMES",
    "fill_large_pores",
    "fit_rim_profile",
    "hydraulic_diameter_px",
    "LARGE_PORE_LEVELS",
    "LARGE_PORE_MARGIN_PX",
    "LARGE_PORE_MAX_OUTLINE_CONTACT",
    "LARGE_PORE_MIN_AREA_SHARE",
    "LARGE_PORE_MIN_DIAMETER_PX",
    "LARGE_PORE_MIN_SIDE_PX",
    "LARGE_PORE_RIM_QUANTILE",
    "LARGE_PORE_SKIN_MAX_PORE_FRACTION",
    "LOCAL_CALIBRATION_MIN_BASINS",
    "LOCAL_CALIBRATION_PX",
    "local_pore_probability",
    "local_window_px",
    "level_grid",
    "LIMIT_PER_EDGE_PX",
    "load_models",
    "MAX_UNTILED_PX",
    "METHODS",
    "MODEL_PATH",
    "noise_adapted_smoothing_px",
    "NOISY_MAX_EDGE_WIDTH_PX",
    "NOISY_Q_RAMP",
    "NOISY_Q_RATIO",
    "orient_detector_axis",
    "PROFILE_BINS",
    "RANK_TABLE",
    "relative_noise",
    "remove_scan_lines",
    "RESOLUTION_LIMIT_PX",
    "resolution_limit_px",
    "rim_fraction_at_blur",
    "RIM_GROW_ABOVE",
    "RIM_MAX_FRACTION",
    "RIM_NOISE_MARGIN",
    "RIM_OFFSET_RSS_RATIO",
    "RIM_OUTSIDE_MAX_WIDTHS",
    "RIM_OUTSIDE_MIN_PX",
    "RIM_PROFILE_PX",
    "rim_score",
    "RIM_SCORE_TOPOGRAPHIC",
    "RING_FRACTION_TOPOGRAPHIC",
    "RING_MIN_HOLE_PX",
    "SAMPLE_BUDGET_PX",
    "SAMPLE_GAP_PX",
    "SAMPLE_WINDOW_PX",
    "sample_windows",
    "scan_line_offsets",
    "segment_dark",
    "segment_pores",
    "Segmentation",
    "smoothing_for_noise",
    "STYLE_CELL_PX",
    "STYLE_FEATURE_NAMES",
    "style_probability",
    "threshold_edge_width_px",
    "TILE_PX",
    "topographic_basins",
    "translate_mask",
    "tree_model_log_odds",
    "tree_model_proba",
    "WALL_OF_RIM_FRACTION",
    "WALL_PASS_FRACTION",
    "WALL_RIM_MIN_SIZE",
    "WALL_RIM_QUANTILE",
    "WALL_WIDTH_PX",
    "watershed_basins",
    "wiener_deblur",
]


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
        reviewer should look at first (their share of the membrane is
        ``details["ambiguous_fraction"]``, :func:`ambiguous_fraction`). None for the ``dark``
        method and for given masks.
    """

    mask: np.ndarray
    method: str
    edge_pores: np.ndarray
    details: dict = field(default_factory=dict)
    pore_probability: np.ndarray | None = None




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
        of the image (``details["auto_reason"]``); a topographic choice is checked against the
        dark method's mask (:func:`face_taken_for_pore`, ``details["auto_porosity_check"]``).
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
        if method == "auto" or reads_image_features(None if models is None
                                                    else models["basin"]):
            # what kind of image this is: auto's evidence, and context for a basin classifier
            # trained to read it
            sample["image_features"] = contrast_features(sample, prep["sample_reg"])
    used = (_choose_contrast(sample, prep["sample_reg"], details, prep["windows"],
                             part["dynamics_k"]) if method == "auto" else method)
    probability = None  # the topographic basins' pore probabilities

    def dark_mask(det: dict) -> np.ndarray:
        found = _segment_dark(img, region, prep["offsets"], prep["sample_img"],
                              prep["sample_reg"], prep["noise"], smoothing_px, background_px, 3,
                              det, prep["windows"], deblur)
        if tiled:
            det["tiles"] = "row bands"
        return found

    if used == "dark":
        del sample
        mask = dark_mask(details)
    else:
        before_topographic = dict(details)
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
        amb = ambiguous_fraction(probability, region)
        details["ambiguous_fraction"] = None if amb is None else round(amb, 4)
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
        if method == "auto":
            # cross-check: did the topographic method take a flat face for pore?
            dark_details = dict(before_topographic)
            other = dark_mask(dark_details)
            por_topo = float(np.count_nonzero(mask & region)) / n_in
            por_dark = float(np.count_nonzero(other & region)) / n_in
            check = {"topographic_porosity": round(por_topo, 4),
                     "dark_porosity": round(por_dark, 4)}
            if face_taken_for_pore(por_topo, por_dark):
                details = dark_details
                details["auto_reason"] += (
                    f"; but the topographic mask holds {por_topo:.2f} of the membrane, "
                    f">= {FACE_POROSITY_RATIO:g} x the dark method's {por_dark:.2f}: it took the "
                    "polymer face for pore (material contrast): dark")
                mask, used, probability = other, "dark", None
            details["auto_porosity_check"] = check
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
