"""Dock widgets of the sempore napari plugin.

* :class:`AnalysisWidget` — image layer, pixel size (prefilled from the file's metadata),
  segmentation method and parameters, Run (in a thread worker, with a progress bar);
* :class:`ProfileWidget` — live plot of porosity and pore size against depth, with the
  confidence band and the minimum layer; the unedited profile is drawn dashed for comparison;
* :class:`ResultsWidget` — structure kind, depths, criteria, isotropy, network; Export writes
  the CLI's files, marked edited when the mask or a surface was edited;
* :class:`BatchReviewWidget` — open a results folder written by ``sempore analyze``, step
  through its images, edit, re-save.

The widgets share the viewer's :class:`~._session.Session`; all analysis is done by
``pipeline`` (through :mod:`._edit`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from pipeline.analysis import STAGES
from pipeline.geometry import SURFACES
from pipeline.profile import resolution_limited_ranges_um
from pipeline.segment import METHODS
from pipeline.settings import Settings

from ._edit import analysis_from_saved, min_layer_range_um, update_batch_summary
from ._reader import (
    METADATA_KEY,
    layer_pixel_size_um,
    micrograph_from_layer,
    micrograph_layer_data,
)
from ._session import Session, _one_line, get_session

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from pipeline.analysis import Analysis


class _ProgressRelay(QObject):
    """Carries ``progress(stage, fraction)`` calls from a worker thread to the GUI thread."""

    progress = Signal(str, float)


def _follow(signal: Any, widget: QWidget, slot: Any) -> None:
    """Connect ``slot`` to a psygnal/napari ``signal`` until ``widget`` is destroyed (a closed
    dock must not be called back)."""
    signal.connect(slot)

    def drop(*_: Any) -> None:
        try:
            signal.disconnect(slot)
        except (TypeError, ValueError, RuntimeError):
            pass

    widget.destroyed.connect(drop)


def _um_spin(tooltip: str, maximum: float = 1000.0) -> QDoubleSpinBox:
    """A µm spin box where 0 means 'adapt to the image' (shown as 'auto')."""
    box = QDoubleSpinBox()
    box.setDecimals(4)
    box.setRange(0.0, maximum)
    box.setSingleStep(0.05)
    box.setSpecialValueText("auto")
    box.setSuffix(" µm")
    box.setToolTip(tooltip)
    box.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
    return box


def _none_if_zero(value: float) -> float | None:
    return float(value) if value > 0 else None


# ------------------------------------------------------------------------------------------------
# analysis


class AnalysisWidget(QWidget):
    """Run the sempore analysis on an image layer."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session: Session = get_session(napari_viewer)
        self._layers: list[Any] = []
        self.worker = None

        self.image_combo = QComboBox()
        self.image_combo.setToolTip("The micrograph to analyse")
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setDecimals(6)
        self.pixel_size.setRange(0.0, 1000.0)
        self.pixel_size.setSingleStep(0.001)
        self.pixel_size.setSpecialValueText("unknown — enter it")
        self.pixel_size.setToolTip("Edge length of one pixel in µm (read from the file's "
                                   "metadata when the instrument wrote it)")
        self.pixel_source = QLabel("")
        self.pixel_source.setWordWrap(True)
        self.scale_bar = QDoubleSpinBox()
        self.scale_bar.setDecimals(4)
        self.scale_bar.setRange(0.0, 1e6)
        self.scale_bar.setSpecialValueText("—")
        self.scale_bar.setToolTip("The length in µm the scale bar drawn in the data bar (or a "
                                  "burned-in label) states: its length in px was measured "
                                  "when the file was read, and the pixel size is set from "
                                  "the two (for files without metadata)")
        self.scale_bar.valueChanged.connect(self._from_scale_bar)
        self.surface_combo = QComboBox()
        self.surface_combo.addItems(list(SURFACES))
        self.surface_combo.setToolTip("Surface depth is measured from (auto: the one in view, "
                                      "the upper one if both; none: no surface in view)")
        self.method_combo = QComboBox()
        self.method_combo.addItems(list(METHODS))
        self.method_combo.setToolTip("Pore segmentation method (auto chooses from the image)")
        self.min_pore = _um_spin("Smallest pore kept (equivalent-circle diameter)")
        self.smoothing = _um_spin("Noise smoothing sigma")
        self.background = _um_spin("Scale of the illumination drift removed", 1e5)
        self.bin_width = _um_spin("Width of a depth bin of the profile")
        self.deblur = QCheckBox("deconvolve blurred images")
        self.deblur.setChecked(True)
        self.deblur.setToolTip("Dark method: measure the beam blur on the image's edges and, "
                               "above 1.6 px, deconvolve it to 1 px before thresholding")
        self.large_pores = QCheckBox("fill large topographic pores")
        self.large_pores.setChecked(True)
        self.large_pores.setToolTip("Topographic method: segment again at 2, 4 and 8 times "
                                    "coarser and fill pores too large for the full-resolution "
                                    "partition (pipeline.segment.fill_large_pores)")
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("image", self.image_combo)
        form.addRow("pixel size (µm)", self.pixel_size)
        form.addRow("", self.pixel_source)
        form.addRow("scale bar (µm)", self.scale_bar)
        form.addRow("surface", self.surface_combo)
        form.addRow("segmentation", self.method_combo)
        form.addRow("min pore diameter", self.min_pore)
        form.addRow("smoothing", self.smoothing)
        form.addRow("background scale", self.background)
        form.addRow("depth bin width", self.bin_width)
        form.addRow("", self.deblur)
        form.addRow("", self.large_pores)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self._relay = _ProgressRelay()
        self._relay.progress.connect(self._on_progress)
        self.image_combo.currentIndexChanged.connect(self._prefill)
        for name in ("inserted", "removed", "reordered"):
            _follow(getattr(napari_viewer.layers.events, name), self, self._refresh_layers)
        _follow(self.session.status_changed, self, self._on_status)
        _follow(self.session.analysis_changed, self, self._show_settings)
        self._shown_digest: str | None = None
        self._refresh_layers()

    def _on_status(self, text: str) -> None:
        self.status.setText(text)

    def _show_settings(self, analysis: Analysis | None) -> None:
        """Show the settings of a new analysis (e.g. one loaded from a batch) in the form."""
        if analysis is None or analysis.settings.digest() == self._shown_digest:
            return
        st = analysis.settings
        self._shown_digest = st.digest()
        for combo, value in ((self.surface_combo, st.geometry.surface),
                             (self.method_combo, st.segment.method)):
            i = combo.findText(str(value))
            if i >= 0:
                combo.setCurrentIndex(i)
        for box, value in ((self.min_pore, st.segment.min_pore_diameter_um),
                           (self.smoothing, st.segment.smoothing_um),
                           (self.background, st.segment.background_scale_um),
                           (self.bin_width, st.profile.bin_width_um)):
            box.setValue(float(value) if value else 0.0)
        self.deblur.setChecked(bool(st.segment.deblur))
        self.large_pores.setChecked(bool(st.segment.large_pores))
        if self.session.image_layer is not None:
            self.select_layer(self.session.image_layer)
            self.pixel_size.setValue(analysis.pixel_size_um)

    # layers -------------------------------------------------------------------------------

    def _candidate_layers(self) -> list[Any]:
        from napari.layers import Image

        own = {id(layer) for layer in self.session.layers.values()}
        return [layer for layer in self.viewer.layers
                if isinstance(layer, Image) and id(layer) not in own
                and np.ndim(layer.data) == (3 if layer.rgb else 2)]

    def _refresh_layers(self, event: Any = None) -> None:
        current = self.selected_layer()
        layers = self._candidate_layers()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        for layer in layers:
            self.image_combo.addItem(layer.name)
        self._layers = layers
        if current in layers:
            self.image_combo.setCurrentIndex(layers.index(current))
        elif layers:
            # prefer the most recently added micrograph
            self.image_combo.setCurrentIndex(len(layers) - 1)
        self.image_combo.blockSignals(False)
        if current not in layers:
            self._prefill()

    def selected_layer(self) -> Any:
        i = self.image_combo.currentIndex()
        layers = getattr(self, "_layers", [])
        return layers[i] if 0 <= i < len(layers) else None

    def select_layer(self, layer: Any) -> None:
        self._refresh_layers()
        if layer in self._layers:
            self.image_combo.setCurrentIndex(self._layers.index(layer))

    def _layer_scale_bar(self) -> dict | None:
        """The scale bar the reader measured in the selected layer's file, if any."""
        layer = self.selected_layer()
        meta = ((getattr(layer, "metadata", None) or {}).get(METADATA_KEY) or {}) \
            if layer is not None else {}
        bar = (meta.get("metadata") or {}).get("scale_bar")
        return bar if bar and bar.get("length_px") else None

    def _from_scale_bar(self, length_um: float) -> None:
        bar = self._layer_scale_bar()
        if bar is None or length_um <= 0:
            return
        self.pixel_size.setValue(length_um / float(bar["length_px"]))
        self.pixel_source.setText(f"from the scale bar: {length_um:g} µm over "
                                  f"{float(bar['length_px']):.1f} px ({bar['kind']})")

    def _scale_bar_pixel_size(self) -> float | None:
        """The pixel size the scale-bar field gives, when it is set and a bar was measured."""
        bar = self._layer_scale_bar()
        length_um = self.scale_bar.value()
        return length_um / float(bar["length_px"]) if bar and length_um > 0 else None

    def _prefill(self, index: int | None = None) -> None:
        layer = self.selected_layer()
        bar = self._layer_scale_bar()
        self.scale_bar.blockSignals(True)
        self.scale_bar.setValue(0.0)
        self.scale_bar.blockSignals(False)
        self.scale_bar.setEnabled(bar is not None)
        if layer is None:
            self.pixel_size.setValue(0.0)
            self.pixel_source.setText("")
            return
        px = layer_pixel_size_um(layer)
        self.pixel_size.setValue(px or 0.0)
        meta = (layer.metadata or {}).get(METADATA_KEY) or {}
        if px and meta:
            text = f"from {meta.get('pixel_size_source', 'metadata').replace('_', ' ')}"
            if meta.get("databar_rows"):
                text += f"; data bar of {meta['databar_rows']} rows removed"
        elif px:
            text = "from the layer's scale"
        else:
            text = "no pixel size in the file: enter it (µm per pixel)"
            if bar is not None and bar.get("label_um"):
                text += (f", or the scale bar: the {bar['kind']} drawn in it "
                         f"({float(bar['length_px']):.0f} px) reads {bar['label']!r}, "
                         f"{bar['label_um']:g} µm (check it)")
            elif bar is not None:
                text += (f", or the length of the {bar['kind']} drawn in it "
                         f"({float(bar['length_px']):.0f} px) as the scale bar")
        self.pixel_source.setText(text)

    # settings and run ---------------------------------------------------------------------

    def settings(self) -> Settings:
        """The :class:`~pipeline.settings.Settings` chosen in the form."""
        base = self.session.analysis.settings if self.session.analysis is not None \
            else Settings()
        return base.replace(
            geometry={"surface": self.surface_combo.currentText()},
            segment={"method": self.method_combo.currentText(),
                     "min_pore_diameter_um": _none_if_zero(self.min_pore.value()),
                     "smoothing_um": _none_if_zero(self.smoothing.value()),
                     "background_scale_um": _none_if_zero(self.background.value()),
                     "deblur": self.deblur.isChecked(),
                     "large_pores": self.large_pores.isChecked()},
            profile={"bin_width_um": _none_if_zero(self.bin_width.value())})

    def run(self) -> Any:
        """Analyse the selected layer in a thread worker; returns the worker (or None)."""
        from napari.qt.threading import create_worker

        from pipeline import analyze

        layer = self.selected_layer()
        if layer is None:
            self._fail("no image layer: open a micrograph first (File ▸ Open, or a sample)")
            return None
        px = self.pixel_size.value()
        if px <= 0:
            self._fail("pixel size unknown: enter it in µm per pixel")
            return None
        from_bar = self._scale_bar_pixel_size()
        try:
            micrograph = micrograph_from_layer(
                layer, px, pixel_size_source="scale_bar" if from_bar is not None
                and np.isclose(px, from_bar, rtol=1e-5) else None)
            settings = self.settings()
        except ValueError as exc:
            self._fail(_one_line(exc))
            return None
        relay = self._relay

        def progress(stage: str, fraction: float) -> None:
            relay.progress.emit(stage, fraction)

        self.run_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.setFormat("%p% loading")
        self.status.setText(f"analysing {layer.name}…")
        worker = create_worker(analyze, micrograph, settings=settings, progress=progress,
                               _progress={"desc": f"sempore: analysing {layer.name}"})
        worker.returned.connect(lambda analysis: self._done(analysis, layer))
        worker.errored.connect(lambda exc: self._fail(_one_line(exc)))
        worker.finished.connect(lambda: self.run_button.setEnabled(True))
        self.worker = worker
        worker.start()
        return worker

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.progress.setValue(int(round(100 * fraction)))
        nxt = STAGES.index(stage) + 1 if stage in STAGES else len(STAGES)
        label = STAGES[nxt].replace("_", " ") if nxt < len(STAGES) else "done"
        self.progress.setFormat(f"%p% {label}")

    def _done(self, analysis: Analysis, layer: Any) -> None:
        self.progress.setValue(100)
        self.progress.setFormat("%p% done")
        self.session.set_analysis(analysis, layer)

    def _fail(self, message: str) -> None:
        self.status.setText(f"error: {message}")
        self.progress.setFormat("failed")
        try:
            from napari.utils.notifications import show_error

            show_error(message)
        except Exception:  # noqa: BLE001
            pass


# ------------------------------------------------------------------------------------------------
# profile


def _theme_colours(viewer: Any) -> tuple[str, str]:
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return theme.background.as_hex(), theme.text.as_hex()
    except Exception:  # noqa: BLE001 - fall back to napari's dark theme colours
        return "#262930", "#f0f1f2"


class ProfileWidget(QWidget):
    """Porosity and pore size against depth, updated live after edits."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        self.figure = Figure(figsize=(5.0, 3.6), dpi=90, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(240)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas)
        layout.addWidget(self.note)
        #: The analysis currently drawn (tests check it follows the session).
        self.plotted: Analysis | None = None
        _follow(self.session.analysis_changed, self, self.plot)
        _follow(self.session.status_changed, self, self._on_status)
        self.plot(self.session.analysis)

    def _on_status(self, text: str) -> None:
        self.note.setText(text)

    def plot(self, analysis: Analysis | None) -> None:
        import pandas as pd

        bg, fg = _theme_colours(self.viewer)
        fig = self.figure
        fig.clear()
        fig.set_facecolor(bg)
        ax_por, ax_size = fig.subplots(1, 2, sharey=True)
        for ax in (ax_por, ax_size):
            ax.set_facecolor(bg)
            ax.tick_params(colors=fg, labelsize=8)
            for spine in ax.spines.values():
                spine.set_color(fg)
            ax.xaxis.label.set_color(fg)
            ax.yaxis.label.set_color(fg)
        self.plotted = analysis
        p = analysis.profile if analysis is not None else None
        if p is None or p.empty:
            msg = ("run an analysis to see the depth profile" if analysis is None
                   else "no reference surface: no depth profile")
            ax_por.text(0.5, 0.5, msg, ha="center", va="center", color=fg, fontsize=9,
                        transform=ax_por.transAxes)
            self.canvas.draw_idle()
            return
        depth = p["depth_um"].to_numpy()
        base = self.session.baseline
        edited = base is not None and base is not analysis and base.profile is not None
        if edited:
            bp = base.profile
            ax_por.plot(bp["porosity"], bp["depth_um"], color="0.6", lw=1.0, ls="--",
                        label="before edit")
            ax_size.plot(bp["pore_size_um"], bp["depth_um"], color="0.6", lw=1.0, ls="--",
                         label="before edit")
        ax_por.plot(p["porosity"], depth, color="#3fa7ff", lw=1.6, label="porosity")
        if "ambiguous_fraction" in p and p["ambiguous_fraction"].notna().any():
            # where in depth the automatic segmentation doubted itself (0-1, as porosity)
            ax_por.plot(p["ambiguous_fraction"], depth, color=fg, lw=1.0, ls=":", alpha=0.8,
                        label="ambiguous share")
            por_legend = ax_por.legend(loc="best", fontsize=7, frameon=False)
            for text in por_legend.get_texts():
                text.set_color(fg)
        ax_size.fill_betweenx(depth, p["pore_size_p10_um"], p["pore_size_p90_um"],
                              color="#ff9f1c", alpha=0.15, lw=0, label="p10–p90")
        band = analysis.extras.get("profile_band")
        if isinstance(band, pd.DataFrame) and not band.empty:
            ax_size.fill_betweenx(band["depth_um"], band["pore_size_lo_um"],
                                  band["pore_size_hi_um"], color="#ff9f1c", alpha=0.45, lw=0,
                                  label="95 % band")
        ax_size.plot(p["pore_size_um"], depth, color="#ff9f1c", lw=1.8, label="mean")
        if p.attrs.get("resolution_limit_um"):
            ax_size.axvline(p.attrs["resolution_limit_um"], color=fg, lw=0.8, ls="-.",
                            alpha=0.7, label="resolution limit")
        for k, (lo, hi) in enumerate(resolution_limited_ranges_um(p)):
            ax_size.axhspan(lo, hi, facecolor="none", edgecolor=fg, alpha=0.5, hatch="///",
                            lw=0, label="sizes floored" if k == 0 else None)
        s = analysis.structure or {}
        if s.get("kind") == "internal_minimum" and s.get("min_layer_depth_um") is not None:
            centre = float(s["min_layer_depth_um"])
            lo, hi = min_layer_range_um(s, analysis.pixel_size_um)
            for ax in (ax_por, ax_size):
                ax.axhspan(lo, hi, color="magenta", alpha=0.18, lw=0)
                ax.axhline(centre, color="magenta", lw=1.0)
        if analysis.membrane.thickness_px is not None:
            d16 = analysis.membrane.thickness_px * analysis.pixel_size_um / 16
            for ax in (ax_por, ax_size):
                ax.axhline(d16, color=fg, lw=0.6, ls=":", alpha=0.7)
        ax_por.set_xlim(0, 1)
        ax_size.set_xlim(left=0)
        ax_por.set_xlabel("porosity", fontsize=9)
        ax_size.set_xlabel("pore diameter (µm)", fontsize=9)
        ax_por.set_ylabel(f"depth below {analysis.membrane.reference_surface} surface (µm)",
                          fontsize=9)
        ax_por.invert_yaxis()
        legend = ax_size.legend(loc="lower right", fontsize=7, frameon=False)
        for text in legend.get_texts():
            text.set_color(fg)
        title = s.get("kind") or ""
        if s.get("kind") == "internal_minimum" and s.get("min_layer_depth_um") is not None:
            title += f" at {s['min_layer_depth_um']:.2f} µm"
        if self.session.stale:
            title += " (updating…)" if title else "updating structure…"
        if title:
            fig.suptitle(title, color=fg, fontsize=9)
        self.canvas.draw_idle()


# ------------------------------------------------------------------------------------------------
# results and export


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value[:8]) + (" …" if len(value) > 8 else "")
    return str(value)


def results_html(result: dict[str, Any], *, stale: bool = False, edited: bool = False) -> str:
    """The results panel's HTML from a result.json dict."""
    import html

    def table(title: str, rows: list[tuple[str, Any]]) -> str:
        body = "".join(f"<tr><td>{html.escape(k)}</td><td><b>{html.escape(_fmt(v))}</b></td></tr>"
                       for k, v in rows)
        return f"<h4 style='margin:6px 0 2px 0'>{html.escape(title)}</h4><table>{body}</table>"

    img = result.get("image") or {}
    mem = result.get("membrane") or {}
    size = result.get("pore_size") or {}
    pores = result.get("pores") or {}
    voids = result.get("macrovoids") or {}
    from pipeline.report import method_label

    parts = []
    if edited:
        parts.append("<p style='color:#ffb000'><b>edited in napari</b></p>")
    # what the analysis flagged (uncertain method, noisy image, ...): read these first
    notes = [n for n in result.get("notes") or [] if n != "edited in napari"]
    if notes:
        parts.append("<ul style='color:#ffb000; margin:2px 0'>"
                     + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>")
    parts.append(table("image", [
        ("name", img.get("name") or img.get("path")),
        ("pixel size (µm)", img.get("pixel_size_um")),
        ("pixel size from", img.get("pixel_size_source")),
        ("data bar rows", img.get("databar_rows")),
        ("segmentation", method_label(result)),
        ("ambiguous share of the membrane",
         (result.get("segmentation") or {}).get("ambiguous_fraction"))]))
    parts.append(table("membrane", [
        ("reference surface", mem.get("reference_surface")),
        ("thickness (µm)", mem.get("thickness_um")),
        ("visible span (µm)", mem.get("visible_span_um")),
        ("porosity", mem.get("porosity")),
        ("mean pore size (µm)", size.get("mean_um")),
        ("median pore size (µm)", size.get("median_um")),
        ("pores (cut by the frame)", f"{pores['n_pores']} ({pores['n_cut']})" if pores else None),
        ("median equivalent diameter (µm)",
         (pores.get("equivalent_diameter_um") or {}).get("median") if pores else None),
        ("macrovoids (finger-like)", f"{voids['n_macrovoids']} ({voids['n_finger_like']})"
         if voids else None),
        ("macrovoid median length (µm)", voids.get("median_length_um") if voids else None)]))
    pending = "updating…" if stale else None
    for key in ("structure", "criteria", "isotropy", "network"):
        block = result.get(key)
        if block:
            rows = [(k.replace("_", " "), v) for k, v in block.items()
                    if not isinstance(v, (dict, list)) or k == "node_degree_counts"]
            parts.append(table(key, rows))
        else:
            reason = pending or result.get(f"{key}_reason") or "not measured"
            parts.append(table(key, [("", reason)]))
    return "".join(parts)


class ResultsWidget(QWidget):
    """Structure, depths, criteria, isotropy; Export to the CLI's files."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        self.worker = None
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write result.json, profile.csv, pores.csv, pores.png, "
                                      "membrane.png, local_thickness.tif, overlay.png and "
                                      "profile.png into FOLDER/<image name>/, as `sempore "
                                      "analyze` does")
        self.export_button.clicked.connect(self._export_clicked)
        self.doubt_button = QPushButton("Next doubtful region ▶")
        self.doubt_button.setToolTip(
            "zoom to the next place where the topographic classifier was unsure (pore "
            "probability 0.25-0.75), largest first, and show the pore probability layer")
        self.doubt_button.clicked.connect(self.next_doubtful_region)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(self.doubt_button)
        layout.addWidget(self.export_button)
        layout.addWidget(self.status)
        #: The result dict shown (tests read it).
        self.result: dict[str, Any] | None = None
        #: Doubtful regions (pipeline.segment.ambiguous_regions) of the probability map they were
        #: found on, and the one shown last.
        self._doubtful: tuple[Any, np.ndarray] | None = None
        self._doubt_index = -1
        _follow(self.session.analysis_changed, self, self.show_analysis)
        self.show_analysis(self.session.analysis)

    def show_analysis(self, analysis: Analysis | None) -> None:
        if analysis is None:
            self.result = None
            self.browser.setHtml("<p>No analysis yet: choose an image and press Run in the "
                                 "sempore Analysis dock.</p>")
            self.export_button.setEnabled(False)
            self.doubt_button.setEnabled(False)
            return
        from pipeline.report import result_dict

        self.doubt_button.setEnabled(analysis.segmentation.pore_probability is not None)
        self.result = result_dict(analysis, edited=self.session.edited)
        self.browser.setHtml(results_html(self.result, stale=self.session.stale,
                                          edited=self.session.edited))
        self.export_button.setEnabled(True)

    def next_doubtful_region(self) -> tuple[int, int, int, int, int] | None:
        """Centre the view on the next doubtful region of the current analysis (largest first,
        then round again), zoomed to show it with its surroundings; returns its
        ``(row0, row1, col0, col1, area_px)`` or None when there is none."""
        from pipeline.segment import ambiguous_regions

        a = self.session.analysis
        prob = None if a is None else a.segmentation.pore_probability
        if prob is None:
            self.status.setText("no pore probability: only the topographic method has one")
            return None
        if self._doubtful is None or self._doubtful[0] is not prob:
            # a few pixels of doubt are a basin's edge, not a place to look at
            self._doubtful = (prob, ambiguous_regions(prob, a.membrane.mask, min_area_px=16))
            self._doubt_index = -1
        regions = self._doubtful[1]
        if len(regions) == 0:
            self.status.setText("no doubtful region: the classifier was sure everywhere")
            return None
        self._doubt_index = (self._doubt_index + 1) % len(regions)
        r0, r1, c0, c1, area = (int(v) for v in regions[self._doubt_index])
        layer = self.session.layers.get("pore_probability")
        if layer is not None:
            layer.visible = True
        (sy, sx), (ty, tx) = self.session.world_transform()
        margin = max(r1 - r0, c1 - c0, 32)  # the region and as much around it
        scene = getattr(self.viewer, "scene", None)  # napari >= 0.9; before, viewer.camera
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = ((r0 + r1) / 2 * sy + ty, (c0 + c1) / 2 * sx + tx)
        canvas_h, canvas_w = getattr(self.viewer, "_canvas_size", (600, 800))
        camera.zoom = min(canvas_h / ((r1 - r0 + 2 * margin) * sy),
                          canvas_w / ((c1 - c0 + 2 * margin) * sx))
        self.status.setText(f"doubtful region {self._doubt_index + 1} of {len(regions)}: "
                            f"{area} px, rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1}")
        return r0, r1, c0, c1, area

    def _export_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export sempore results into")
        if not folder:
            return
        target = Path(folder) / self.session.stem()
        force = False
        if (target / "result.json").exists():
            answer = QMessageBox.question(self, "sempore", f"{target} holds results. "
                                          "Overwrite them?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            force = True
        self.export(folder, force=force)

    def export(self, out_dir: str | Path, *, force: bool = False) -> Any:
        """Write the CLI's files into ``out_dir/<image stem>/`` in a thread worker.

        Returns the worker; its ``returned`` signal carries the dict of files written.
        """
        from napari.qt.threading import create_worker

        if self.session.analysis is None:
            self.status.setText("error: nothing to export: run the analysis first")
            return None
        target = Path(out_dir) / self.session.stem()
        self.export_button.setEnabled(False)
        self.status.setText(f"writing {target}…")
        worker = create_worker(self.session.write, target, force=force,
                               _progress={"desc": "sempore: export"})
        worker.returned.connect(lambda files: self.status.setText(
            f"wrote {len(files)} files to {target}"
            + (" (marked edited in napari)" if self.session.edited else "")))
        worker.errored.connect(lambda exc: self.status.setText(f"error: {_one_line(exc)}"))
        worker.finished.connect(lambda: self.export_button.setEnabled(True))
        self.worker = worker
        worker.start()
        return worker


# ------------------------------------------------------------------------------------------------
# batch review


def review_state(folder: Path) -> tuple[float | None, bool]:
    """``(segmentation.ambiguous_fraction, software.edited)`` of an image result folder's
    result.json (None for the dark method, bare masks or an unreadable file)."""
    try:
        result = json.loads((folder / "result.json").read_text())
        value = (result.get("segmentation") or {}).get("ambiguous_fraction")
        edited = bool((result.get("software") or {}).get("edited"))
    except (OSError, ValueError, AttributeError):
        return None, False
    return (float(value) if isinstance(value, (int, float)) else None), edited


def result_folders(results_dir: str | Path, order: str = "name") -> list[Path]:
    """Image result folders (holding a result.json) of a batch folder; a folder that is itself an
    image result folder gives itself.

    ``order``: ``"name"``, or ``"review"``: the most ambiguous segmentations first (the share of
    the membrane the topographic classifier is unsure of, descending), then results without one
    (e.g. the dark method's), then those already edited (reviewed); ties by name.
    """
    if order not in ("name", "review"):
        raise ValueError(f"order must be 'name' or 'review', not {order!r}")
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    if (root / "result.json").is_file():
        return [root]
    folders = sorted((p for p in root.iterdir() if p.is_dir() and (p / "result.json").is_file()),
                     key=lambda p: p.name)
    if order == "review":
        folders = in_review_order(folders, {p: review_state(p) for p in folders})
    return folders


def in_review_order(folders: list[Path], states: dict[Path, tuple[float | None, bool]]
                    ) -> list[Path]:
    """``folders`` (sorted by name) most ambiguous first, then without a share, then edited;
    ``states`` from :func:`review_state`."""
    def priority(p: Path) -> tuple[bool, float]:
        share, edited = states[p]
        return edited, 1.0 if share is None else -share

    return sorted(folders, key=priority)  # stable: ties stay by name


class BatchReviewWidget(QWidget):
    """Step through a results folder written by ``sempore analyze``; edit; re-save."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        self.folders: list[Path] = []
        self.index = -1
        self.root: Path | None = None
        self.worker = None
        self._image_layer = None
        #: Ask before leaving an image with unsaved edits (tests switch it off).
        self.confirm_unsaved = True

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("results folder of `sempore analyze`")
        self.path_edit.returnPressed.connect(lambda: self.open_folder(self.path_edit.text()))
        browse = QPushButton("Open…")
        browse.clicked.connect(self._browse)
        top = QHBoxLayout()
        top.addWidget(self.path_edit)
        top.addWidget(browse)
        self.review_order = QCheckBox("most ambiguous segmentations first")
        self.review_order.setToolTip(
            "order the images by the share of the membrane the topographic classifier is unsure "
            "of (result.json segmentation.ambiguous_fraction), highest first")
        self.review_order.toggled.connect(
            lambda _: self.open_folder(self.root) if self.root is not None else None)
        self.list = QListWidget()
        self.list.itemActivated.connect(lambda item: self.go(self.list.row(item)))
        self.prev_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next ▶")
        self.prev_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)
        self.position = QLabel("")
        nav = QHBoxLayout()
        nav.addWidget(self.prev_button)
        nav.addWidget(self.position, 1, Qt.AlignmentFlag.AlignCenter)
        nav.addWidget(self.next_button)
        self.save_button = QPushButton("Save edits (overwrite this image's results)")
        self.save_button.clicked.connect(self.save)
        self.update_summary = QCheckBox("update summary.csv and report.html")
        self.update_summary.setChecked(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.review_order)
        layout.addWidget(self.list)
        layout.addLayout(nav)
        layout.addWidget(self.save_button)
        layout.addWidget(self.update_summary)
        layout.addWidget(self.status)
        self._update_buttons()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a sempore results folder")
        if folder:
            self.open_folder(folder)

    def _update_buttons(self, busy: bool = False) -> None:
        n = len(self.folders)
        self.prev_button.setEnabled(not busy and self.index > 0)
        self.next_button.setEnabled(not busy and 0 <= self.index < n - 1)
        self.save_button.setEnabled(not busy and 0 <= self.index < n)
        self.position.setText(f"{self.index + 1} / {n}" if n else "")

    def open_folder(self, results_dir: str | Path) -> Any:
        """List the image result folders of ``results_dir`` and load the first; returns the
        loading worker (None when there is nothing to load)."""
        try:
            folders = result_folders(results_dir)
        except OSError as exc:
            self.status.setText(f"error: {_one_line(exc)}")
            return None
        states = {folder: review_state(folder) for folder in folders}  # one read each
        if self.review_order.isChecked():
            folders = in_review_order(folders, states)
        self.root = Path(results_dir)
        self.path_edit.setText(str(results_dir))
        self.folders = folders
        self.index = -1
        self.list.clear()
        for folder in folders:
            share, edited = states[folder]
            tags = ([] if share is None else [f"{100 * share:.0f} % ambiguous"]) + (
                ["edited"] if edited else [])
            self.list.addItem(folder.name + (f"  ({', '.join(tags)})" if tags else ""))
        if not folders:
            self.status.setText(f"{results_dir}: no image results (folders with a result.json)")
            self._update_buttons()
            return None
        return self.go(0)

    def next(self) -> Any:
        return self.go(self.index + 1)

    def previous(self) -> Any:
        return self.go(self.index - 1)

    def _confirm_leave(self) -> bool:
        if not (self.confirm_unsaved and self.session.dirty and self.index >= 0):
            return True
        answer = QMessageBox.question(
            self, "sempore", f"{self.folders[self.index].name} has unsaved edits. Leave "
            "without saving?")
        return answer == QMessageBox.StandardButton.Yes

    def go(self, index: int) -> Any:
        """Load image ``index`` (its micrograph, saved mask and surface) in a thread worker."""
        from napari.qt.threading import create_worker

        if not 0 <= index < len(self.folders) or not self._confirm_leave():
            return None
        folder = self.folders[index]
        self.status.setText(f"loading {folder.name}…")
        self._update_buttons(busy=True)
        worker = create_worker(analysis_from_saved, folder,
                               _progress={"desc": f"sempore: loading {folder.name}"})
        worker.returned.connect(lambda out: self._loaded(index, folder, out))
        worker.errored.connect(lambda exc: self._load_failed(index, exc))
        self.worker = worker
        worker.start()
        return worker

    def _load_failed(self, index: int, exc: BaseException) -> None:
        self.index = index
        self.list.setCurrentRow(index)
        self.status.setText(f"error: {_one_line(exc)}")
        self._update_buttons()

    def _loaded(self, index: int, folder: Path, out: tuple) -> None:
        analysis, saved = out
        self.index = index
        self.list.setCurrentRow(index)
        viewer = self.viewer
        old = (self._image_layer,) if self._image_layer is not None else ()
        self.session.clear_layers(also=old)
        data, kwargs, _ = micrograph_layer_data(analysis.micrograph, name=folder.name)
        self._image_layer = viewer.add_image(data, **kwargs)
        edited = bool((saved.result.get("software") or {}).get("edited"))
        self.session.set_analysis(analysis, self._image_layer, result_dir=folder,
                                  saved_edited=edited)
        viewer.reset_view()
        warnings = saved.result.get("_review_warnings") or []
        self.status.setText(f"{folder.name}: loaded" + (" (previously edited)" if edited else "")
                            + ("; " + "; ".join(warnings) if warnings else ""))
        self._update_buttons()

    def save(self) -> Any:
        """Re-save the current image's results (force=True) in a thread worker."""
        from napari.qt.threading import create_worker

        if not 0 <= self.index < len(self.folders) or self.session.analysis is None:
            return None
        folder = self.folders[self.index]
        root = self.root if self.root is not None and self.root != folder else None
        update = self.update_summary.isChecked() and root is not None

        def job() -> dict[str, Path]:
            analysis = self.session.final_analysis()
            files = self.session.write(folder, force=True, analysis=analysis)
            if update:
                update_batch_summary(root, folder)
            return files

        self.status.setText(f"saving {folder.name}…")
        self._update_buttons(busy=True)
        worker = create_worker(job, _progress={"desc": f"sempore: saving {folder.name}"})
        worker.returned.connect(lambda files: self._saved(folder, files))
        worker.errored.connect(lambda exc: self.status.setText(f"error: {_one_line(exc)}"))
        worker.finished.connect(lambda: self._update_buttons())
        self.worker = worker
        worker.start()
        return worker

    def _saved(self, folder: Path, files: dict) -> None:
        self.session.mark_saved()
        item = self.list.item(self.index)
        if item is not None and self.session.edited and not item.text().endswith(" ✎"):
            item.setText(item.text() + " ✎")
        self.status.setText(f"saved {len(files)} files to {folder}"
                            + (" (marked edited in napari)" if self.session.edited else ""))


# ------------------------------------------------------------------------------------------------
# all docks at once


def add_sempore_docks(viewer: napari.Viewer) -> dict[str, QWidget]:
    """Add the four sempore docks to a viewer (what ``sempore view`` shows)."""
    widgets: dict[str, QWidget] = {
        "analysis": AnalysisWidget(viewer),
        "results": ResultsWidget(viewer),
        "profile": ProfileWidget(viewer),
        "batch": BatchReviewWidget(viewer),
    }
    from qtpy.QtCore import QTimer

    window = viewer.window
    window.add_dock_widget(widgets["batch"], name="sempore: review batch", area="right")
    d_analysis = window.add_dock_widget(widgets["analysis"], name="sempore: analysis",
                                        area="right", tabify=True)
    d_profile = window.add_dock_widget(widgets["profile"], name="sempore: depth profile",
                                       area="bottom")
    d_results = window.add_dock_widget(widgets["results"], name="sempore: results",
                                       area="bottom")
    main = d_analysis.parentWidget()

    def arrange() -> None:
        d_analysis.raise_()
        if hasattr(main, "splitDockWidget"):
            main.splitDockWidget(d_profile, d_results, Qt.Orientation.Horizontal)
            main.resizeDocks([d_profile, d_results], [3, 1], Qt.Orientation.Horizontal)
            main.resizeDocks([d_profile], [320], Qt.Orientation.Vertical)

    arrange()
    QTimer.singleShot(0, arrange)  # again once the window is laid out
    return widgets


def open_micrograph(viewer: napari.Viewer, path: str | Path) -> Any:
    """Open a micrograph with the sempore reader and return its image layer."""
    from ._reader import read_micrographs

    data, kwargs, _ = read_micrographs(str(path))[0]
    return viewer.add_image(data, **kwargs)
