"""The whole analysis of one micrograph: :func:`analyze` runs every stage in order."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .burnin import fill_annotations, region_boxes
from .geometry import Membrane, MembraneNotFound, find_membrane, membrane_without
from .io import InputError, Micrograph, from_array, load_micrograph
from .profile import depth_profile, surface_layer_mean, surface_layer_porosity
from .segment import (
    BASIN_SMOOTHING_PX,
    Segmentation,
    ambiguous_fraction_by_depth,
    edge_pore_mask,
    segment_pores,
)
from .settings import Settings
from .size import local_thickness

SCHEMA_VERSION = "1.0"

#: ``auto``'s choice is noted as uncertain (a note in result.json suggests checking the overlay or
#: forcing the other method) when P(topographic) is within this of 0.5. The contrast classifier's
#: probability is not calibrated on renderings it never saw: on benchmarks/bench_auto.py's 320
#: images (2026-12-06) the 27 choices costing > 0.05 Dice had P from 0.14 to 0.96; a margin of
#: 0.15 noted 26 images (9 of the 27, 30 % of the Dice lost), 0.25 notes 50 (13 of the 27,
#: 39 %), 0.3 would note 64 (16, 70 %).
AUTO_UNCERTAIN_MARGIN = 0.25
#: How that note begins (the CLI names the images whose notes hold it).
UNCERTAIN_METHOD_NOTE = "segmentation method uncertain"
#: ``auto``: layers of depth (px, first and last + 1) under a surface line read by
#: :func:`surface_layer_porosity_px`. The first 3 px are left out: the line's own error and a
#: dark background blurring into the membrane make them porous in any mask.
SURFACE_LAYERS_PX = (3, 10)
#: ``auto``: a dark segmentation whose surface layers are at least this porous took the smooth
#: layer under the surface for pore, and the topographic method is tried (see :func:`analyze`).
VOID_SURFACE_POROSITY = 0.95
#: ``auto``: surface layers whose mean grey level lies within this share of the membrane's grey
#: spread (5th-95th percentile) of the grey level just beyond the line (the same layers outside
#: the membrane) look like the background, not like a polymer layer: the line was drawn inside
#: the background there, and the recheck leaves that surface out. Measured 2026-12-07: a dark
#: closed-cell membrane whose opposite line lay 15 px into the vacuum (benchmarks/bench_scale.py,
#: 24 px cells at porosity 0.25) 0.00; the skins the recheck is for 0.75-0.84.
BACKGROUND_LIKE_GREY_SHARE = 0.2
#: A topographic segmentation is noted for review when more than this share of the membrane lies
#: in basins whose pore probability is between 0.25 and 0.75
#: (``details["ambiguous_fraction"]``, :func:`pipeline.segment.ambiguous_fraction`). Chosen on
#: 55 topographic renderings (pipeline.synthetic random phantoms of seeds 12-99, the accuracy
#: kinds and the held-out SE kinds, seed 0; 2026-12-07): it noted 27, all with a pore Dice under
#: 0.90, and 27 of the 33 under 0.90. Checked on 69 it was not chosen on (the topographic random
#: phantoms of seeds 100-229): it noted 33, 32 of them under 0.90 (the other 0.902), and 32 of the
#: 45 under 0.90 (the 13 it did not note: Dice 0.835-0.898); mean Dice 0.815 noted, 0.910 not
#: (benchmarks/ACCURACY.md, "How sure the topographic method is").
REVIEW_AMBIGUOUS_FRACTION = 0.2
#: How that note begins (the CLI names the images whose notes hold it).
AMBIGUOUS_NOTE = "ambiguous segmentation"
#: Start of the note made when the dark method found its image's rims outside the pore edges
#: (``details["rim_outside_edge"]``, :func:`pipeline.segment.fit_rim_profile`).
RIM_OUTSIDE_NOTE = "rims outside the pore edges"
#: Start of the note made for each label burned into the frame (``pipeline.burnin``).
LABEL_NOTE = "label burned into the image"
#: Start of the note for each rectangle left out by hand (settings ``[io] exclude``).
EXCLUDED_NOTE = "region excluded by hand"

#: Called as ``progress(stage_name, fraction_done)`` while an analysis runs.
ProgressCallback = Callable[[str, float], None]

STAGES = ("load", "membrane", "segment", "local_thickness", "profile", "structure", "isotropy")


class AnalysisError(ValueError):
    """An image could not be analysed; ``str(err)`` is one line naming the file and the reason."""


@dataclass
class Analysis:
    """Everything measured on one micrograph.

    Attributes
    ----------
    micrograph : Micrograph
    membrane : Membrane
    segmentation : Segmentation
    local_thickness_px : ndarray of float32, shape (rows, cols)
        Local pore diameter in px, 0 outside pores.
    profile : pandas.DataFrame or None
        Depth profile (None when no reference surface is in view).
    structure, criteria, isotropy, network : dict or None
        The result.json blocks of the same names.
    settings : Settings
    timings_s : dict
        Wall time of each stage in seconds.
    extras : dict
        Stage outputs that are not part of the contract (confidence band, skeleton, ...).
    """

    micrograph: Micrograph
    membrane: Membrane
    segmentation: Segmentation
    local_thickness_px: np.ndarray
    profile: pd.DataFrame | None
    structure: dict[str, Any] | None
    criteria: dict[str, Any] | None
    isotropy: dict[str, Any] | None
    network: dict[str, Any] | None
    settings: Settings
    timings_s: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def pixel_size_um(self) -> float:
        return float(self.micrograph.pixel_size_um)

    @property
    def pore_mask(self) -> np.ndarray:
        return self.segmentation.mask

    @property
    def local_thickness_um(self) -> np.ndarray:
        """Local pore diameter in µm (float32, 0 outside pores)."""
        return (self.local_thickness_px * np.float32(self.pixel_size_um)).astype(np.float32)

    def _surface_angle_deg(self) -> float | None:
        """Display angle of the reference surface line (None without one)."""
        from .isotropy import surface_angle_deg

        m = self.membrane
        ref = m.reference_surface
        if ref == "none":
            return None
        return surface_angle_deg(m.top_px if ref in ("top", "left") else m.bottom_px,
                                 m.orientation)

    def pore_table(self) -> pd.DataFrame:
        """One row per pore (4-connected) in µm: area, equivalent diameter, ellipse axes and
        orientation, largest inscribed disk, depth, cut or not (:func:`pipeline.pores.pore_table`;
        what ``pores.csv`` holds). Computed once per pore mask."""
        from .pores import pore_table

        cached = self.extras.get("_pore_table")
        mask = self.segmentation.mask
        if cached is not None and cached[0] is mask and cached[1] is self.local_thickness_px:
            return cached[2]
        d_min_px = float(self.segmentation.details.get("min_pore_diameter_px") or 2.0)
        m = self.membrane
        angle = self._surface_angle_deg()
        table = pore_table(mask, self.pixel_size_um, local_thickness_px=self.local_thickness_px,
                           depth_px=m.depth_px, cut=self.segmentation.edge_pores,
                           min_area_px=math.pi * (d_min_px / 2) ** 2, surface_angle_deg=angle)
        self.extras["_pore_table"] = (mask, self.local_thickness_px, table)
        return table

    def macrovoids(self) -> tuple[pd.DataFrame, dict] | None:
        """Macrovoids (voids at least 2.5 matrix pores wide, :func:`pipeline.macrovoids.
        find_macrovoids`): the table ``macrovoids.csv`` holds and result.json's ``macrovoids``
        block; None without a reference surface (no depth). Computed once per pore mask."""
        if self.profile is None or self.membrane.depth_px is None:
            return None
        cached = self.extras.get("_macrovoids")
        mask = self.segmentation.mask
        if cached is not None and cached[0] is mask and cached[1] is self.local_thickness_px:
            return cached[2]
        from .macrovoids import find_macrovoids, macrovoid_summary

        m = self.membrane
        px = self.pixel_size_um
        span_px = m.thickness_px if m.thickness_px is not None else m.visible_span_px
        if not span_px:
            return None
        table, info = find_macrovoids(
            mask, m.depth_px, self.local_thickness_px, px, span_px=float(span_px),
            unknown=self.micrograph.label_mask(), surface_angle_deg=self._surface_angle_deg())
        summary = macrovoid_summary(table, info, span_um=float(span_px) * px,
                                    membrane_area_um2=float(np.count_nonzero(m.mask)) * px * px,
                                    thickness_known=m.thickness_px is not None)
        self.extras["_macrovoids"] = (mask, self.local_thickness_px, (table, summary),
                                      info["labels"])
        return table, summary

    def macrovoid_labels(self) -> np.ndarray | None:
        """Integer map (the image's shape) of the macrovoids numbered as in :meth:`macrovoids`
        (0 elsewhere); None when there are none or no depth."""
        if self.macrovoids() is None:
            return None
        return self.extras["_macrovoids"][3]

    def to_dict(self) -> dict[str, Any]:
        """The result.json content (see DESIGN.md)."""
        from .report import result_dict

        return result_dict(self)

    def save(self, out_dir: str | Path, *, force: bool = False, edited: bool = False
             ) -> dict[str, Path]:
        """Write the contract's per-image files (result.json, profile.csv, masks, pictures).

        See :func:`pipeline.report.write_results`.
        """
        from .report import write_results

        return write_results(self, out_dir, force=force, edited=edited)


def _with_excluded(micrograph: Micrograph, specs: tuple[str, ...]) -> Micrograph:
    """A copy of ``micrograph`` whose labels include the rectangles given by hand (``[io]
    exclude``), recorded in ``excluded_px``; a spec outside the image is noted and ignored."""
    shape = micrograph.image.shape
    boxes = list(micrograph.excluded_px)
    warnings = list(micrograph.warnings)
    for spec in specs:
        found = region_boxes([spec], shape)
        if not found:
            warnings.append(f"exclude region {spec!r} holds no pixel of the "
                            f"{shape[1]} x {shape[0]} px image above the data bar: ignored")
        boxes.extend(b for b in found if b not in boxes)
    labels = list(micrograph.annotations_px)
    labels.extend(b for b in boxes if b not in labels)
    return dataclasses.replace(micrograph, annotations_px=labels, excluded_px=boxes,
                               warnings=warnings)


def _resolve_micrograph(image_or_path: Any, pixel_size_um: float | None,
                        settings: Settings) -> Micrograph:
    if isinstance(image_or_path, Micrograph):
        m = image_or_path
        if pixel_size_um is not None:
            m.pixel_size_um, m.pixel_size_source = float(pixel_size_um), "caller"
        return m
    if isinstance(image_or_path, (str, Path)):
        return load_micrograph(image_or_path, pixel_size_um, detect_bar=settings.io.detect_databar,
                               max_pixels=settings.io.max_pixels,
                               detect_labels=settings.io.detect_labels,
                               scale_bar_um=settings.io.scale_bar_um)
    return from_array(np.asarray(image_or_path), pixel_size_um,
                      detect_labels=settings.io.detect_labels)


def surface_layer_porosity_px(pore_mask: np.ndarray, membrane: Membrane,
                              layers_px: tuple[int, int] = SURFACE_LAYERS_PX,
                              image: np.ndarray | None = None) -> float | None:
    """Porosity of the layers ``layers_px`` (depth, px) under the most porous surface in view.

    Layers follow each surface line (:func:`pipeline.profile.surface_layer_porosity`); None
    without a surface line in view. With ``image`` (grey, the mask's shape), a surface whose
    layers are as grey as the background beyond its line (within
    :data:`BACKGROUND_LIKE_GREY_SHARE` of the membrane's grey spread) is left out: those layers
    are background inside a misplaced line, not polymer.
    """
    horizontal = membrane.orientation == "horizontal"
    first = membrane.reference_surface in ("top", "left")
    lines = [(membrane.top_px if first else membrane.bottom_px, first)]
    if len(membrane.surfaces_in_view) == 2:
        lines.append((membrane.bottom_px if first else membrane.top_px, not first))
    depth = float(layers_px[1])
    spread = None
    if image is not None and membrane.mask.any():
        lo, hi = np.percentile(image[membrane.mask], [5, 95])
        spread = float(hi - lo)
    values = []
    for line, below in lines:
        if line is None:
            continue
        layers = surface_layer_porosity(pore_mask, membrane.mask, line, horizontal=horizontal,
                                        below=below, max_depth_px=depth)
        chosen = layers[layers_px[0]:layers_px[1]]
        if not np.isfinite(chosen).any():
            continue
        if spread:
            inside = surface_layer_mean(image, membrane.mask, line, horizontal=horizontal,
                                        below=below, max_depth_px=depth)
            outside = surface_layer_mean(image, ~membrane.mask, line, horizontal=horizontal,
                                         below=not below, max_depth_px=depth)
            g_in = inside[layers_px[0]:layers_px[1]]
            g_out = outside[layers_px[0]:layers_px[1]]
            if (np.isfinite(g_in).any() and np.isfinite(g_out).any()
                    and abs(np.nanmean(g_in) - np.nanmean(g_out))
                    < BACKGROUND_LIKE_GREY_SHARE * spread):
                continue
        values.append(float(np.nanmean(chosen)))
    return max(values) if values else None


def _recheck_void_surface(dark: Segmentation, membrane: Membrane,
                          topographic: Callable[[], Segmentation],
                          image: np.ndarray | None = None) -> Segmentation:
    """``auto`` chose ``dark``: keep it unless its mask calls the layer under a surface pore.

    The surface line was found where the material starts, so the layer just under it cannot be
    void across the whole width. A dark mask that says it is (:data:`VOID_SURFACE_POROSITY` in
    the layers :data:`SURFACE_LAYERS_PX`) has taken a smooth polymer layer for pore: a dense skin
    in secondary-electron contrast, grey against bright cell walls, falls below the dark
    threshold. Then the topographic method is run, and its mask is taken when its surface layers
    are at most half porous. Measured 2026-12-07: closed cells under 2.5 and 5 µm skins in
    topographic contrast (which the contrast classifier takes for material contrast) read 1.00;
    every other rendering measured (the 8 accuracy kinds, 18 random phantoms, sponge / fingers
    under skins, dark cells under skins) at most 0.69. But a line can be wrong: one drawn into
    the vacuum (a dark closed-cell membrane of benchmarks/bench_scale.py, its opposite line 15 px
    off) has vacuum under it, void in any mask, and the topographic method taken for it cost
    0.28 Dice; with ``image`` given, a surface whose layers are as grey as the background beyond
    its line is left out (:func:`surface_layer_porosity_px`).
    """
    void = surface_layer_porosity_px(dark.mask, membrane)
    if void is not None and void >= VOID_SURFACE_POROSITY and image is not None:
        # only now the grey levels (every dark image passes here; few get this far)
        void = surface_layer_porosity_px(dark.mask, membrane, image=image)
    if void is None or void < VOID_SURFACE_POROSITY:
        return dark
    check = {"dark": round(void, 4)}
    dark.details["surface_layer_check"] = check
    topo = topographic()
    check["topographic"] = topo_void = surface_layer_porosity_px(topo.mask, membrane, image=image)
    if topo_void is None or topo_void > 0.5:
        return dark
    check["topographic"] = round(topo_void, 4)
    for key in ("requested_method", "p_topographic", "p_topographic_cells", "contrast_evidence",
                "bright_ring_fraction"):
        if key in dark.details:
            topo.details[key] = dark.details[key]
    topo.details["auto_reason"] = (
        f"{dark.details.get('auto_reason', 'dark')}; but the dark mask calls the layer under "
        f"the surface pore ({void:.2f} of layers {SURFACE_LAYERS_PX[0]}-"
        f"{SURFACE_LAYERS_PX[1] - 1} px), a smooth skin read as pore; the topographic mask "
        f"does not ({topo_void:.2f}): topographic")
    topo.details["surface_layer_check"] = check
    return topo


def analyze(
    image_or_path: Any,
    pixel_size_um: float | None = None,
    settings: Settings | None = None,
    *,
    progress: ProgressCallback | None = None,
    membrane: Membrane | None = None,
    pore_mask: np.ndarray | Segmentation | None = None,
    local_thickness_px: np.ndarray | None = None,
) -> Analysis:
    """Run every stage on one micrograph.

    Parameters
    ----------
    image_or_path : str, Path, ndarray or Micrograph
        A file (pixel size and data bar read from it), a grey array (no data bar) or a loaded
        :class:`~pipeline.io.Micrograph`.
    pixel_size_um : float, optional
        Pixel size in µm; overrides the file's metadata. Required when the file has none.
    settings : Settings, optional
    progress : callable, optional
        ``progress(stage, fraction)`` is called as stages finish.
    membrane : Membrane, optional
        Use this membrane geometry instead of finding it (e.g. a surface edited in napari).
    pore_mask : ndarray of bool or Segmentation, optional
        Use this pore mask instead of segmenting (e.g. a mask edited in napari). A
        :class:`~pipeline.segment.Segmentation` keeps its method and details (e.g. the
        resolution limit of the method that made the mask before it was edited); a bare mask
        is method ``given``, with no details.
    local_thickness_px : ndarray of float32, optional
        The local thickness of ``pore_mask`` when the caller already has it (napari keeps it
        up to date after each edit); it must belong to that mask.

    Returns
    -------
    Analysis

    Raises
    ------
    AnalysisError
        One line naming the input and what went wrong.

    Notes
    -----
    With ``settings.segment.method == "auto"`` a ``dark`` result whose mask calls the layer under
    a surface line pore is rechecked with the topographic method (:func:`_recheck_void_surface`):
    segmentation alone cannot see the surface, the analysis can.
    """
    settings = settings or Settings()
    timings: dict[str, float] = {}
    name = str(image_or_path) if isinstance(image_or_path, (str, Path)) else "<array>"

    def step(stage: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        timings[stage] = time.perf_counter() - t0
        if progress is not None:
            progress(stage, (STAGES.index(stage) + 1) / len(STAGES))
        return out

    try:
        micrograph = step("load", lambda: _resolve_micrograph(image_or_path, pixel_size_um,
                                                               settings))
    except InputError as exc:
        raise AnalysisError(str(exc)) from exc
    name = micrograph.path or name
    if settings.io.exclude:
        micrograph = _with_excluded(micrograph, settings.io.exclude)
    if micrograph.pixel_size_um is None:
        bar = micrograph.metadata.get("scale_bar")
        hint = ""
        if bar and bar.get("label_um"):
            hint = (f"; the {bar['kind']} drawn in it ({bar['length_px']:.0f} px) reads "
                    f"{bar['label']!r}: --scale-bar-um auto uses it")
        elif bar:
            hint = (f", or the length the {bar['kind']} drawn in it ({bar['length_px']:.0f} px) "
                    "states with --scale-bar-um UM")
        raise AnalysisError(
            f"{name}: pixel size unknown (no instrument metadata found); give it with "
            f"--pixel-size UM{hint}")
    px = float(micrograph.pixel_size_um)
    image = micrograph.image
    if min(image.shape) < 8:
        raise AnalysisError(f"{name}: image of {image.shape[1]}x{image.shape[0]} px is too small "
                            "to analyse")

    geo = settings.geometry
    labels = list(micrograph.annotations_px)
    unknown = micrograph.label_mask()
    if unknown is not None:
        # what the membrane finder and the segmentation see: the labels replaced by a mirror
        # image of the micrograph beside them (no drawn edges); their pixels are left out below
        image = fill_annotations(image, labels, along="columns" if geo.surface in ("left", "right")
                                 else "rows")
    if membrane is None:
        try:
            membrane = step("membrane", lambda: find_membrane(
                image, px, surface=geo.surface, texture_scale_um=geo.texture_scale_um,
                surface_smoothing_fraction=geo.surface_smoothing_fraction))
        except MembraneNotFound as exc:
            raise AnalysisError(f"{name}: no membrane found ({exc}); if the whole frame is "
                                "material use --surface none") from exc
    else:
        timings["membrane"] = 0.0
    if unknown is not None:
        membrane = membrane_without(membrane, unknown)

    seg = settings.segment
    if pore_mask is None:
        def segment(method: str) -> Segmentation:
            return segment_pores(
                image, membrane.mask, px, method=method,
                background_scale_um=seg.background_scale_um,
                min_pore_diameter_um=seg.min_pore_diameter_um, smoothing_um=seg.smoothing_um,
                max_untiled_px=seg.max_untiled_px, tile_px=seg.tile_px, deblur=seg.deblur,
                large_pores=seg.large_pores)

        def segment_and_check() -> Segmentation:
            found = segment(seg.method)
            if seg.method == "auto" and found.method == "dark":
                found = _recheck_void_surface(found, membrane, lambda: segment("topographic"),
                                              image)
            return found

        segmentation = step("segment", segment_and_check)
        if unknown is not None:
            segmentation.edge_pores = edge_pore_mask(segmentation.mask, unknown=unknown)
    else:
        given = pore_mask if isinstance(pore_mask, Segmentation) else None
        mask = np.asarray(pore_mask.mask if given else pore_mask, bool) & membrane.mask
        segmentation = Segmentation(mask=mask, method=given.method if given else "given",
                                    edge_pores=edge_pore_mask(mask, unknown=unknown),
                                    details=dict(given.details) if given else {},
                                    # the classifier's view of the unedited basins, kept
                                    pore_probability=given.pore_probability if given else None)
        timings["segment"] = 0.0

    if local_thickness_px is not None and pore_mask is not None:
        if local_thickness_px.shape != segmentation.mask.shape:
            raise AnalysisError(f"{name}: local thickness map does not match the pore mask")
        lt_px = np.where(segmentation.mask, local_thickness_px, 0).astype(np.float32)
        timings["local_thickness"] = 0.0
    else:
        lt_px = step("local_thickness", lambda: local_thickness(segmentation.mask,
                                                                unknown=unknown))

    notes = list(micrograph.warnings) + list(membrane.notes)
    for box in labels:
        r0, r1, c0, c1 = box
        what = EXCLUDED_NOTE if tuple(box) in micrograph.excluded_px else LABEL_NOTE
        notes.append(f"{what}: rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1} left out of the "
                     "analysis (pores running into it are flagged as cut); check overlay.png")
    p_topo = segmentation.details.get("p_topographic")
    check = segmentation.details.get("auto_porosity_check")
    if (p_topo is not None and p_topo > 0.5 and check
            and segmentation.method == "dark"):
        notes.append(f"{UNCERTAIN_METHOD_NOTE}: the contrast classifier said topographic "
                     f"(P(topographic) = {p_topo:.2f}), but the topographic segmentation "
                     f"called {check['topographic_porosity']:.2f} of the membrane pore against "
                     f"the dark method's {check['dark_porosity']:.2f} (a flat polymer face read "
                     "as pore), so auto chose dark; check overlay.png, or rerun with --method "
                     "topographic")
    elif (p_topo is not None and segmentation.method == "topographic"
          and (segmentation.details.get("surface_layer_check") or {}).get("dark")):
        layer = segmentation.details["surface_layer_check"]
        notes.append(f"{UNCERTAIN_METHOD_NOTE}: the contrast classifier said dark "
                     f"(P(topographic) = {p_topo:.2f}), but the dark segmentation called "
                     f"{layer['dark']:.2f} of the layer under the surface pore (a smooth skin "
                     f"read as pore; the topographic one {layer['topographic']:.2f}), so auto "
                     "chose topographic; check overlay.png, or rerun with --method dark")
    elif p_topo is not None and abs(p_topo - 0.5) < AUTO_UNCERTAIN_MARGIN:
        other = "dark" if segmentation.method == "topographic" else "topographic"
        notes.append(f"{UNCERTAIN_METHOD_NOTE}: auto chose {segmentation.method} with "
                     f"P(topographic) = {p_topo:.2f}; check overlay.png, or rerun with "
                     f"--method {other}")
    ambiguous = segmentation.details.get("ambiguous_fraction")
    # a mask handed in (napari's review) is the reviewer's: no request to review it
    if pore_mask is None and ambiguous is not None and ambiguous > REVIEW_AMBIGUOUS_FRACTION:
        notes.append(f"{AMBIGUOUS_NOTE}: {100 * ambiguous:.0f} % of the membrane lies in pore "
                     "basins the classifier calls with a probability between 0.25 and 0.75; "
                     "review overlay.png (napari shows the pore probability) before trusting "
                     "the numbers")
    if segmentation.details.get("rim_outside_edge"):
        notes.append(f"{RIM_OUTSIDE_NOTE}: the bright pore rims lie "
                     f"{segmentation.details['rim_offset_px']:.1f} px outside the pore edges (an "
                     "edge glow on the polymer), so the pore edges were put at the foot of the "
                     "rims, not under them; check overlay.png")
    sigma_px = segmentation.details.get("smoothing_px")
    if (segmentation.method == "topographic" and sigma_px is not None
            and sigma_px >= 1.1 * BASIN_SMOOTHING_PX and settings.segment.smoothing_um is None):
        notes.append(f"noisy image (relative noise {segmentation.details['relative_noise']:.2f}): "
                     f"pore rims found after {sigma_px:.2f} px of smoothing instead of "
                     f"{BASIN_SMOOTHING_PX} px; neighbouring small pores may merge, check "
                     "overlay.png")
    profile = None
    if membrane.depth_px is not None:
        prof = settings.profile
        profile = step("profile", lambda: depth_profile(
            segmentation.mask, membrane.mask, membrane.depth_px, lt_px, px,
            bin_width_um=prof.bin_width_um, min_pore_pixels=prof.min_pore_pixels,
            edge_pores=segmentation.edge_pores,
            resolution_limit_px=segmentation.details.get("resolution_limit_px")))
        profile = with_ambiguity(profile, segmentation.pore_probability, membrane, px)
    else:
        notes.append("no reference surface: depth profile and structure not measured")

    analysis = Analysis(
        micrograph=micrograph, membrane=membrane, segmentation=segmentation,
        local_thickness_px=lt_px, profile=profile, structure=None, criteria=None,
        isotropy=None, network=None, settings=settings, timings_s=timings, notes=notes)
    _structure_stage(analysis, step)
    _isotropy_stage(analysis, step)
    return analysis


def with_ambiguity(profile: pd.DataFrame, probability: np.ndarray | None, membrane: Membrane,
                   pixel_size_um: float) -> pd.DataFrame:
    """``profile`` with its ``ambiguous_fraction`` column: per depth bin, the share of the
    membrane in basins the topographic classifier could not call
    (:func:`pipeline.segment.ambiguous_fraction_by_depth`); NaN throughout without pore
    probabilities (the ``dark`` method, a mask of unknown origin)."""
    out = profile.copy()
    out.attrs = dict(profile.attrs)
    width = profile.attrs.get("bin_width_um")
    if probability is None or profile.empty or not width or membrane.depth_px is None:
        out["ambiguous_fraction"] = np.nan
        return out
    n_bins = int(round(float(profile["depth_hi_um"].iloc[-1]) / float(width)))
    shares = ambiguous_fraction_by_depth(probability, membrane.mask, membrane.depth_px,
                                         pixel_size_um, float(width), max(n_bins, 1))
    keys = np.rint(profile["depth_lo_um"].to_numpy() / float(width)).astype(np.int64)
    out["ambiguous_fraction"] = shares[np.clip(keys, 0, shares.size - 1)]
    return out


def _structure_stage(analysis: Analysis, step: Callable) -> None:
    try:
        from .structure import analyze_structure
    except ImportError:  # stage not available in this build
        return
    if analysis.profile is None:
        return
    result = step("structure", lambda: analyze_structure(analysis))
    analysis.structure = result.get("structure")
    analysis.criteria = result.get("criteria")
    analysis.extras.update(result.get("extras", {}))


def _isotropy_stage(analysis: Analysis, step: Callable) -> None:
    try:
        from .isotropy import analyze_isotropy
    except ImportError:  # stage not available in this build
        return
    result = step("isotropy", lambda: analyze_isotropy(analysis))
    analysis.isotropy = result.get("isotropy")
    analysis.network = result.get("network")
    analysis.extras.update(result.get("extras", {}))
