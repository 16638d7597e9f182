"""The analysis shown in one napari viewer, its layers, and live recompute after edits.

One :class:`Session` per viewer (:func:`get_session`) is shared by the dock widgets: the analysis
widget and the batch reviewer put an analysis in it, the profile and results docks listen to
:attr:`Session.analysis_changed`. The session owns the sempore layers (pores, local thickness,
membrane region, surfaces, minimum layer, labels left out), watches the pore mask (Labels) and
the surface paths (Shapes) for edits and, after a short pause in editing, recomputes in a thread
worker:

1. fast (:func:`._edit.recompute`): membrane and depth map if a surface moved, exact local
   thickness in a window around the edit, depth profile; the plot updates;
2. then the remaining stages (:func:`._edit.reanalyze`: structure, criteria, isotropy,
   network) in the background; the results panel updates.

A newer edit supersedes work in flight: results of stale generations are dropped.
"""

from __future__ import annotations

import contextlib
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal
from qtpy.QtCore import QTimer

from pipeline.burnin import as_boxes

from ._edit import (
    band_polygon,
    boxes_from_shapes,
    changed_box,
    line_from_polyline,
    membrane_with_line,
    min_layer_range_um,
    polyline_from_line,
    reanalyze,
    recompute,
    rectangles_from_boxes,
    surface_lines,
)
from ._reader import METADATA_KEY

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from pipeline.analysis import Analysis

#: Pause after the last edit before recomputing, in ms.
DEBOUNCE_MS = 300

PORE_RGBA = (0.0, 0.67, 1.0, 1.0)
MEMBRANE_RGBA = (0.2, 1.0, 0.4, 1.0)
SURFACE_COLOURS = {"reference": "yellow", "opposite": "#00ffa0"}
LAYER_RGBA_FACE = "#ff00cc2e"
LAYER_RGBA_EDGE = "#ff00cc"
LABEL_RGBA_FACE = "#ff3c3c26"
LABEL_RGBA_EDGE = "#ff3c3c"
#: Status shown after the labels-left-out rectangles were edited.
LABELS_CHANGED_STATUS = ("labels left out changed: run the analysis again to measure with "
                         "them")

_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _mid_edit(event: Any) -> bool:
    """A Shapes data event sent while a shape is still being added, moved or removed (napari
    sends another when the action is done)."""
    action = getattr(event, "action", None)
    return action is not None and str(action) in ("adding", "changing", "removing")


def get_session(viewer: napari.Viewer) -> Session:
    """The session of a viewer (created on first use)."""
    session = _SESSIONS.get(viewer)
    if session is None:
        session = Session(viewer)
        _SESSIONS[viewer] = session
    return session


def _lt_colormap():
    """turbo with a transparent zero (no colour outside pores)."""
    import matplotlib
    from napari.utils.colormaps import Colormap

    colors = matplotlib.colormaps["turbo"](np.linspace(0, 1, 64))
    colors = np.vstack([[0.0, 0.0, 0.0, 0.0], colors])
    controls = np.concatenate([[0.0], np.linspace(1e-4, 1.0, 64)])
    return Colormap(colors=colors, controls=controls, name="sempore turbo")


def _label_colormap(rgba: tuple[float, ...]):
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={None: rgba, 0: (0.0, 0.0, 0.0, 0.0), 1: rgba})


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Session:
    """The current analysis of one viewer and its editable layers.

    Signals
    -------
    analysis_changed(analysis)
        A new or updated analysis (after Run, a batch step, or an edit).
    status_changed(text)
        One line for the user (what is being computed, timings, errors).
    busy_changed(bool)
    """

    analysis_changed = Signal(object)
    status_changed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, viewer: napari.Viewer, *, debounce_ms: int = DEBOUNCE_MS) -> None:
        self._viewer_ref = weakref.ref(viewer)
        self.analysis: Analysis | None = None
        #: The analysis as computed or loaded, before any edit (the profile plot shows it dashed).
        self.baseline: Analysis | None = None
        self.image_layer = None
        self.layers: dict[str, Any] = {}
        #: Result folder the analysis was loaded from (batch review), or None.
        self.result_dir: Path | None = None
        #: True when structure/criteria/isotropy are not yet recomputed after an edit.
        self.stale = False
        #: True when the labels-left-out rectangles differ from the analysis' (a new run needed).
        self.labels_pending = False
        #: The last status line shown.
        self.status = ""
        self.last_timings: dict[str, Any] = {}
        self.last_error: str | None = None
        self._saved_edited = False
        self._dirty = False
        self._generation = 0
        self._raw_mask: np.ndarray | None = None
        self._baseline_raw_mask: np.ndarray | None = None
        self._base_lines: dict[str, np.ndarray] = {}
        self._base_vertices: dict[str, np.ndarray] = {}
        self._applied_vertices: dict[str, np.ndarray] = {}
        self._fast_running = False
        self._slow_running = False
        self._pending = False
        self._slow_pending = False
        self._workers: set = set()
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(debounce_ms))
        self._timer.timeout.connect(self.recompute_now)

    # ---------------------------------------------------------------------------------------
    # state

    @property
    def viewer(self) -> napari.Viewer | None:
        return self._viewer_ref()

    @property
    def busy(self) -> bool:
        """True while an edit waits for its recompute or a worker runs."""
        return (self._timer.isActive() or self._fast_running or self._slow_running
                or self._pending or self._slow_pending)

    @property
    def edited(self) -> bool:
        """The mask or a surface differs from what the pipeline found (or the loaded result was
        already marked edited)."""
        if self._saved_edited:
            return True
        if self._raw_mask is not None and self._baseline_raw_mask is not None and \
                changed_box(self._raw_mask, self._baseline_raw_mask) is not None:
            return True
        for role, verts in self._applied_vertices.items():
            base = self._base_vertices.get(role)
            if base is None or verts.shape != base.shape or not np.allclose(verts, base):
                return True
        return False

    @property
    def dirty(self) -> bool:
        """Edits not yet saved (batch review)."""
        return self._dirty

    def stem(self) -> str:
        """Name of the result folder for the current image."""
        a = self.analysis
        if a is not None and a.micrograph.path:
            return Path(a.micrograph.path).stem
        if self.image_layer is not None:
            return str(self.image_layer.name)
        return "image"

    def _set_status(self, text: str) -> None:
        self.status = text
        self.status_changed.emit(text)

    def _emit_busy(self) -> None:
        self.busy_changed.emit(self.busy)

    # ---------------------------------------------------------------------------------------
    # a new analysis

    def set_analysis(self, analysis: Analysis, image_layer: Any = None, *,
                     result_dir: str | Path | None = None, saved_edited: bool = False) -> None:
        """Show a new analysis (after Run or when a saved result is loaded).

        Replaces the sempore layers of the previous analysis; the new analysis is the baseline
        edits are compared with.
        """
        self._generation += 1
        self._timer.stop()
        self._pending = self._slow_pending = False
        self.analysis = analysis
        self.baseline = analysis
        self.image_layer = image_layer
        self.result_dir = Path(result_dir) if result_dir is not None else None
        self.stale = False
        self.labels_pending = False
        self._saved_edited = bool(saved_edited)
        self._dirty = False
        self.last_error = None
        mask = np.asarray(analysis.segmentation.mask, bool)
        self._raw_mask = mask.copy()
        self._baseline_raw_mask = mask.copy()
        self._build_layers()
        self.analysis_changed.emit(analysis)
        self._set_status(self._summary_line(analysis))

    def _layer_kwargs(self) -> dict[str, Any]:
        layer = self.image_layer
        px = self.analysis.pixel_size_um if self.analysis is not None else 1.0
        kw: dict[str, Any] = {"scale": (px, px), "units": ("µm", "µm")}
        if layer is not None:
            kw["scale"] = tuple(np.asarray(layer.scale)[-2:])
            kw["translate"] = tuple(np.asarray(layer.translate)[-2:])
            kw["units"] = tuple(layer.units)[-2:]
        return kw

    def world_transform(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``(scale, translate)`` (rows, columns) from image pixels to the viewer's world
        coordinates (µm), as the analysis layers are drawn."""
        kw = self._layer_kwargs()
        scale = tuple(float(v) for v in kw["scale"])
        translate = tuple(float(v) for v in kw.get("translate", (0.0, 0.0)))
        return (scale[0], scale[1]), (translate[0], translate[1])

    def _remove_layers(self, also: tuple = ()) -> None:
        viewer = self.viewer
        layers = list(self.layers.values())
        for layer in layers:
            self._disconnect(layer)
        self.layers = {}
        if viewer is None:
            return
        gone = [layer for layer in (*layers, *also) if layer in viewer.layers]
        if not gone:
            return
        # one batch: napari's canvas garbage-collects once, not once per layer
        batch = getattr(viewer.layers, "batched_update", None)
        with batch() if batch is not None else contextlib.nullcontext():
            for layer in gone:
                viewer.layers.remove(layer)

    def clear_layers(self, also: tuple = ()) -> None:
        """Remove the sempore layers (and the layers in ``also``) from the viewer."""
        self._remove_layers(also)

    def _disconnect(self, layer: Any) -> None:
        for name in ("paint", "data", "set_data"):
            ev = getattr(layer.events, name, None)
            if ev is not None:
                for callback in (self._on_edit, self._on_labels_edit):
                    try:
                        ev.disconnect(callback)
                    except (TypeError, ValueError, RuntimeError):
                        pass

    def _build_layers(self) -> None:
        viewer = self.viewer
        a = self.analysis
        self._remove_layers()
        if viewer is None or a is None:
            return
        kw = self._layer_kwargs()
        stem = self.stem()
        px = a.pixel_size_um
        membrane_layer = viewer.add_labels(
            a.membrane.mask.astype(np.uint8), name=f"{stem} membrane", opacity=0.15,
            colormap=_label_colormap(MEMBRANE_RGBA), **kw)
        membrane_layer.editable = False
        self.layers["membrane"] = membrane_layer
        lt_um = a.local_thickness_um
        self.layers["local_thickness"] = viewer.add_image(
            lt_um, name=f"{stem} local thickness (µm)", colormap=_lt_colormap(),
            contrast_limits=self._lt_limits(lt_um, a.segmentation.mask), opacity=0.85,
            blending="translucent", visible=False, **kw)
        prob = a.segmentation.pore_probability
        if prob is not None:  # topographic: where the basin classifier was unsure (near 0.5)
            # NaN (drawn transparent) outside the membrane, where 0 would read as "polymer"
            shown = np.where(a.membrane.mask, prob, np.nan).astype(np.float32)
            self.layers["pore_probability"] = viewer.add_image(
                shown, name=f"{stem} pore probability", colormap="PiYG", contrast_limits=(0, 1),
                opacity=0.7, blending="translucent", visible=False, **kw)
        pores = viewer.add_labels(a.segmentation.mask.astype(np.uint8), name=f"{stem} pores",
                                  opacity=0.45, colormap=_label_colormap(PORE_RGBA), **kw)
        pores.selected_label = 1
        pores.brush_size = max(3, int(round(0.5 / px))) if px else 5
        self.layers["pores"] = pores
        # macrovoids (pipeline.macrovoids), one colour each; shown when there are any
        voids = self._macrovoid_data()
        self.layers["macrovoids"] = viewer.add_labels(
            voids, name=f"{stem} macrovoids", opacity=0.5, visible=bool(voids.any()), **kw)
        self.layers["macrovoids"].editable = False
        self.layers["min_layer"] = viewer.add_shapes(
            [], shape_type="polygon", name=f"{stem} minimum layer", face_color=LAYER_RGBA_FACE,
            edge_color=LAYER_RGBA_EDGE, edge_width=max(1.0, max(a.membrane.mask.shape) / 800),
            **kw)
        self.layers["min_layer"].editable = False
        # labels burned into the frame (found, or drawn here by the user over an artefact):
        # what the next run leaves out
        self.layers["labels"] = viewer.add_shapes(
            rectangles_from_boxes(a.micrograph.annotations_px), shape_type="rectangle",
            name=f"{stem} labels left out", face_color=LABEL_RGBA_FACE,
            edge_color=LABEL_RGBA_EDGE, edge_width=max(1.0, max(a.membrane.mask.shape) / 800),
            **kw)
        self.layers["labels"].events.data.connect(self._on_labels_edit)
        self._update_band()
        self._base_lines = surface_lines(a.membrane)
        self._base_vertices, self._applied_vertices = {}, {}
        horizontal = a.membrane.orientation == "horizontal"
        width = max(1.5, max(a.membrane.mask.shape) / 500)
        for role, line in self._base_lines.items():
            try:
                verts = polyline_from_line(line, horizontal=horizontal)
            except ValueError:
                continue
            self._base_vertices[role] = verts
            self._applied_vertices[role] = verts.copy()
            name = f"{stem} {'reference' if role == 'reference' else 'opposite'} surface"
            self.layers[role] = viewer.add_shapes(
                [verts], shape_type="path", name=name, edge_color=SURFACE_COLOURS[role],
                edge_width=width, **kw)
        for role in ("pores", "reference", "opposite"):
            layer = self.layers.get(role)
            if layer is None:
                continue
            layer.events.data.connect(self._on_edit)
            if role == "pores":
                layer.events.paint.connect(self._on_edit)
                layer.events.set_data.connect(self._on_edit)
        viewer.layers.selection.active = pores

    def _macrovoid_data(self) -> np.ndarray:
        """The analysis' macrovoids numbered as in macrovoids.csv (zeros when there are none)."""
        a = self.analysis
        voids = a.macrovoid_labels() if a is not None else None
        if voids is None:
            return np.zeros(a.segmentation.mask.shape, np.uint16)
        return voids

    @staticmethod
    def _lt_limits(lt_um: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
        values = lt_um[mask]
        values = values[np.isfinite(values)]
        hi = float(np.percentile(values, 99.5)) if values.size else 1.0
        return 0.0, hi if hi > 0 else 1.0

    def _update_band(self) -> None:
        layer = self.layers.get("min_layer")
        a = self.analysis
        if layer is None or a is None:
            return
        s = a.structure or {}
        polygon = None
        if s.get("kind") == "internal_minimum" and s.get("min_layer_depth_um") is not None:
            lines = surface_lines(a.membrane)
            if "reference" in lines:
                px = a.pixel_size_um
                lo_um, hi_um = min_layer_range_um(s, px)
                polygon = band_polygon(
                    lines["reference"], lo_um / px, hi_um / px,
                    horizontal=a.membrane.orientation == "horizontal",
                    into_positive=a.membrane.reference_surface in ("top", "left"))
        layer.data = [] if polygon is None else [polygon]
        if polygon is not None:
            layer.shape_type = ["polygon"]
            layer.face_color = [LAYER_RGBA_FACE]
            layer.edge_color = [LAYER_RGBA_EDGE]

    def _update_layers(self) -> None:
        """Refresh the derived layers (local thickness, membrane, band; the macrovoids once the
        slow pass has measured them) after a recompute."""
        a = self.analysis
        viewer = self.viewer
        if a is None or viewer is None:
            return
        lt_layer = self.layers.get("local_thickness")
        if lt_layer is not None and lt_layer in viewer.layers:
            lt_layer.data = a.local_thickness_um
            lt_layer.contrast_limits = self._lt_limits(lt_layer.data, a.segmentation.mask)
        mem = self.layers.get("membrane")
        if mem is not None and mem in viewer.layers:
            new = a.membrane.mask.astype(np.uint8)
            if not np.array_equal(np.asarray(mem.data), new):
                mem.data = new
        voids = self.layers.get("macrovoids")
        # after the slow pass only (the worker measured them; the fast pass stays fast)
        if voids is not None and voids in viewer.layers and not self.stale:
            new = self._macrovoid_data()
            if not np.array_equal(np.asarray(voids.data), new):
                voids.data = new
        self._update_band()

    # ---------------------------------------------------------------------------------------
    # edits

    def _on_labels_edit(self, event: Any = None) -> None:
        """The labels-left-out rectangles changed: store them with the image layer (what the
        next run reads, :func:`._reader.micrograph_from_layer`); the current analysis stays
        as measured until then."""
        if _mid_edit(event):
            return
        layer, a = self.layers.get("labels"), self.analysis
        if layer is None or a is None:
            return
        boxes = boxes_from_shapes(layer.data, a.micrograph.image.shape)
        if self.image_layer is not None:
            meta = self.image_layer.metadata.setdefault(METADATA_KEY, {})
            meta["annotations_px"] = [list(b) for b in boxes]
        self.labels_pending = boxes != as_boxes(a.micrograph.annotations_px)
        if self.labels_pending:
            self._set_status(LABELS_CHANGED_STATUS)

    def _on_edit(self, event: Any = None) -> None:
        if _mid_edit(event):
            return
        if self.analysis is None:
            return
        self._timer.start()
        self._emit_busy()

    def _current_vertices(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        viewer = self.viewer
        for role in ("reference", "opposite"):
            layer = self.layers.get(role)
            if layer is None or viewer is None or layer not in viewer.layers:
                continue
            paths = [np.asarray(d, float) for d, t in zip(layer.data, layer.shape_type)
                     if t in ("path", "polygon", "line") and len(d) >= 1]
            if not paths:
                continue
            horizontal = self.analysis.membrane.orientation == "horizontal"
            axis = 1 if horizontal else 0
            # the path spanning most of the membrane is the surface
            out[role] = max(paths, key=lambda v: float(np.ptp(v[:, axis])))[:, -2:]
        return out

    def pending_edit(self) -> tuple[np.ndarray, Any, dict[str, np.ndarray]] | None:
        """(raw pore mask, edited membrane or None, vertices) if the layers differ from the
        current analysis, else None."""
        a = self.analysis
        pores = self.layers.get("pores")
        viewer = self.viewer
        if a is None or pores is None or viewer is None or pores not in viewer.layers:
            return None
        raw = np.asarray(pores.data) != 0
        if raw.shape != a.membrane.mask.shape:
            self._set_status("the pore mask layer no longer matches the image; edit ignored")
            return None
        vertices = self._current_vertices()
        moved = {role: v for role, v in vertices.items()
                 if role in self._applied_vertices and (
                     v.shape != self._applied_vertices[role].shape
                     or not np.allclose(v, self._applied_vertices[role]))}
        mask_changed = self._raw_mask is None or changed_box(raw, self._raw_mask) is not None
        if not moved and not mask_changed:
            return None
        membrane = None
        if moved:
            rows, cols = a.membrane.mask.shape
            horizontal = a.membrane.orientation == "horizontal"
            n_along, n_across = (cols, rows) if horizontal else (rows, cols)
            membrane = self.baseline.membrane if self.baseline is not None else a.membrane
            for role in ("reference", "opposite"):
                if role not in vertices or role not in self._base_lines:
                    continue
                line = line_from_polyline(
                    vertices[role], n_along, n_across, horizontal=horizontal,
                    base_line_px=self._base_lines[role],
                    base_vertices=self._base_vertices[role])
                membrane = membrane_with_line(membrane, role, line)
        return raw, membrane, vertices

    def recompute_now(self) -> Any:
        """Recompute after an edit (called by the debounce timer; tests may call it).

        Returns the worker started, or None when nothing changed.
        """
        from napari.qt.threading import create_worker

        self._timer.stop()
        if self._fast_running:
            self._pending = True
            return None
        try:
            edit = self.pending_edit()
        except ValueError as exc:
            self._error(exc)
            return None
        if edit is None:
            if self.stale and not self._fast_running:
                self._start_slow()
            self._emit_busy()
            return None
        raw, membrane, vertices = edit
        self._generation += 1
        gen = self._generation
        self._fast_running = True
        self._emit_busy()
        self._set_status("recomputing local thickness and profile…")
        worker = create_worker(recompute, self.analysis, pore_mask=raw, membrane=membrane,
                               _progress={"desc": "sempore: updating profile"})
        worker.returned.connect(lambda out: self._fast_done(gen, raw, vertices, out))
        worker.errored.connect(self._error)
        worker.finished.connect(lambda: self._fast_finished(worker))
        self._workers.add(worker)
        worker.start()
        return worker

    def _fast_done(self, gen: int, raw: np.ndarray, vertices: dict, out: tuple) -> None:
        if gen != self._generation:
            return
        analysis, timings = out
        self.analysis = analysis
        self._raw_mask = raw
        self._applied_vertices.update({k: v.copy() for k, v in vertices.items()})
        self._dirty = True
        self.stale = True
        self.last_timings = timings
        self._update_layers()
        self.analysis_changed.emit(analysis)
        window = timings.get("local_thickness_window")
        where = ""
        if window is not None:
            where = (f", local thickness on {window[1] - window[0]}×{window[3] - window[2]} px"
                     if not timings.get("local_thickness_full") else ", local thickness in full")
        self._set_status(f"profile updated in {timings['total']:.2f} s{where}; updating "
                         "structure and isotropy…")

    def _fast_finished(self, worker: Any) -> None:
        self._workers.discard(worker)
        self._fast_running = False
        if self._pending:
            self._pending = False
            self.recompute_now()
        elif self.stale:
            self._start_slow()
        self._emit_busy()

    def _start_slow(self) -> None:
        from napari.qt.threading import create_worker

        if self._slow_running:
            self._slow_pending = True
            return
        gen = self._generation
        self._slow_running = True
        self._emit_busy()
        worker = create_worker(reanalyze, self.analysis,
                               _progress={"desc": "sempore: structure and isotropy"})
        worker.returned.connect(lambda full: self._slow_done(gen, full))
        worker.errored.connect(self._error)
        worker.finished.connect(lambda: self._slow_finished(worker))
        self._workers.add(worker)
        worker.start()

    def _slow_done(self, gen: int, full: Analysis) -> None:
        if gen != self._generation:
            return
        self.analysis = full
        self.stale = False
        self._update_layers()
        self.analysis_changed.emit(full)
        self._set_status(self._summary_line(full, edited=self.edited))

    def _slow_finished(self, worker: Any) -> None:
        self._workers.discard(worker)
        self._slow_running = False
        if self._slow_pending or (self.stale and not self._fast_running
                                  and not self._timer.isActive()):
            self._slow_pending = False
            if self.stale:
                self._start_slow()
        self._emit_busy()

    def _error(self, exc: BaseException) -> None:
        self.last_error = _one_line(exc)
        self._set_status(f"error: {self.last_error}")
        try:
            from napari.utils.notifications import show_error

            show_error(self.last_error)
        except Exception:  # noqa: BLE001 - a notification must not raise
            pass

    @staticmethod
    def _summary_line(a: Analysis, edited: bool = False) -> str:
        m = a.membrane
        n_mem = int(m.mask.sum())
        porosity = a.segmentation.mask.sum() / n_mem if n_mem else float("nan")
        kind = (a.structure or {}).get("kind")
        text = f"porosity {porosity:.3f}"
        if kind:
            text += f", {kind}"
        return text + (" (edited)" if edited else "")

    # ---------------------------------------------------------------------------------------
    # saving

    def final_analysis(self) -> Analysis:
        """The current analysis with every stage up to date (runs the remaining stages
        synchronously if an edit left them stale; call from a worker)."""
        if self.analysis is None:
            raise ValueError("no analysis to save: run the analysis first")
        return reanalyze(self.analysis) if self.stale else self.analysis

    def write(self, folder: str | Path, *, force: bool = False,
              analysis: Analysis | None = None) -> dict[str, Path]:
        """Write the CLI's files for the current analysis into ``folder`` (the image's own
        result folder), marked edited when the mask or a surface was edited."""
        from pipeline.report import write_results

        analysis = analysis if analysis is not None else self.final_analysis()
        return write_results(analysis, folder, force=force, edited=self.edited)

    def mark_saved(self) -> None:
        self._dirty = False

    def wait(self, timeout_s: float = 60.0) -> None:
        """Process Qt events until no recompute is pending or running (scripts and tests)."""
        import time

        from qtpy.QtWidgets import QApplication

        t_end = time.monotonic() + timeout_s
        while self.busy:
            if time.monotonic() > t_end:
                raise TimeoutError("sempore recompute did not finish in time")
            QApplication.processEvents()
            time.sleep(0.01)
