"""Writing and reading results: result.json, profile.csv, masks, overlays, plots, HTML report.

Files of one image (``DIR/<stem>/``, see DESIGN.md) are written by :func:`write_results`,
each atomically (a temporary file in the same folder, then :func:`os.replace`), ``result.json``
last, so a folder with a ``result.json`` is always complete. :func:`load_results` reads them back
(napari review, resumable batches).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io as _io
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pandas as pd

from . import __version__
from .pores import pore_summary
from .profile import grouped_quantiles, resolution_limited_ranges_um

if TYPE_CHECKING:  # pragma: no cover
    from .analysis import Analysis

SCHEMA_VERSION = "1.0"
RESULT_FILES = ("result.json", "profile.csv", "pores.png", "membrane.png",
                "local_thickness.tif", "overlay.png", "profile.png")

#: Files :func:`write_results` writes only when there is something for them (figures, a depth
#: for the macrovoids, a network skeleton); a forced overwrite removes those it did not write.
CONDITIONAL_FILES = ("macrovoids.csv", "overlay.png", "isotropy.png", "network.png",
                     "profile.png", "size_distribution.png")

# colours (RGB) of the overlay
_PORE_RGB = (0, 170, 255)
_SURFACE_RGB = (255, 215, 0)
_OPPOSITE_RGB = (0, 255, 160)
_LAYER_RGB = (255, 0, 200)
_LABEL_RGB = (255, 60, 60)
_MACROVOID_RGB = (255, 140, 0)


class ResultExists(FileExistsError):
    """Results already exist and ``force`` was not given."""


# --------------------------------------------------------------------------------------------
# JSON


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN/inf become None, numpy scalars/arrays become Python values."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return {c: to_jsonable(obj[c].to_numpy()) for c in obj.columns}
    if isinstance(obj, (pd.Series, pd.Index)):
        return to_jsonable(obj.to_numpy())
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _round_list(values: np.ndarray | None, ndigits: int = 2) -> list | None:
    if values is None:
        return None
    arr = np.asarray(values, float)
    return [None if not math.isfinite(v) else round(float(v), ndigits) for v in arr]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def result_dict(analysis: Analysis, *, edited: bool = False,
                input_sha256: str | None = None, job_digest: str | None = None
                ) -> dict[str, Any]:
    """The content of result.json for one analysis (schema in DESIGN.md)."""
    a = analysis
    m = a.micrograph
    px = float(m.pixel_size_um)
    membrane = a.membrane
    pores = a.segmentation.mask
    n_membrane = int(membrane.mask.sum())
    n_pore = int(pores.sum())
    macrovoids = a.macrovoids()
    lt_px = a.local_thickness_px[pores]
    size_q = grouped_quantiles(np.zeros(lt_px.size, np.int32), lt_px, 1,
                               (0.5, 0.1, 0.9, 0.99))[0] * px

    def um(value: float | None) -> float | None:
        return None if value is None else float(value) * px

    horizontal = membrane.orientation == "horizontal"
    ref = membrane.reference_surface
    if ref in ("top", "left"):
        ref_line, other_line = membrane.top_px, membrane.bottom_px
    elif ref in ("bottom", "right"):
        ref_line, other_line = membrane.bottom_px, membrane.top_px
    else:
        ref_line, other_line = None, None
    other_name = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}.get(ref)

    profile_block: dict[str, Any] | None
    if a.profile is not None:
        p = a.profile
        profile_block = {
            "depth_um": p["depth_um"], "depth_lo_um": p["depth_lo_um"],
            "depth_hi_um": p["depth_hi_um"], "porosity": p["porosity"],
            "pore_size_um": p["pore_size_um"], "pore_size_median_um": p["pore_size_median_um"],
            "pore_size_p10_um": p["pore_size_p10_um"], "pore_size_p90_um": p["pore_size_p90_um"],
            "n_pixels": p["n_pixels"], "n_pore_pixels": p["n_pore_pixels"],
            "edge_pore_fraction": p["edge_pore_fraction"], "reliable": p["reliable"],
            "at_resolution_limit": [None if pd.isna(v) else bool(v)
                                    for v in p.get("at_resolution_limit", [])],
            "ambiguous_fraction": ([None if pd.isna(v) else float(v)
                                    for v in p["ambiguous_fraction"]]
                                   if "ambiguous_fraction" in p else None),
            "bin_width_um": p.attrs.get("bin_width_um"),
            "resolution_limit_um": p.attrs.get("resolution_limit_um"),
        }
    else:
        profile_block = None

    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "image": {
            "path": m.path,
            "name": Path(m.path).name if m.path else None,
            "sha256": input_sha256,
            "shape": list(m.raw_shape),
            "analysed_shape": list(m.image.shape),
            "pixel_size_um": px,
            "pixel_size_source": m.pixel_size_source,
            "databar_rows": m.databar_rows,
            "databar_source": m.databar_source,
            # labels burned into the frame, left out: [row0, row1, col0, col1], half-open px
            "annotations_px": [list(map(int, b)) for b in m.annotations_px],
            # those of them given by hand (settings [io] exclude)
            "excluded_px": [list(map(int, b)) for b in m.excluded_px],
            "instrument": m.metadata.get("instrument"),
            # the scale bar drawn in the data bar or a label, as measured (pipeline.scalebar)
            "scale_bar": m.metadata.get("scale_bar"),
            "warnings": list(m.warnings),
        },
        "membrane": {
            "reference_surface": ref,
            "surfaces_in_view": list(membrane.surfaces_in_view),
            "orientation": membrane.orientation,
            "thickness_um": um(membrane.thickness_px),
            "thickness_known": membrane.thickness_px is not None,
            "visible_span_um": um(membrane.visible_span_px),
            "porosity": n_pore / n_membrane if n_membrane else None,
            "area_um2": n_membrane * px * px,
            # per column (horizontal) or per row (vertical) position of the reference surface
            "surface_row_px": _round_list(ref_line) if horizontal else None,
            "surface_col_px": None if horizontal else _round_list(ref_line),
            "opposite_surface": other_name,
            "opposite_surface_px": _round_list(other_line),
            "top_px": _round_list(membrane.top_px),
            "bottom_px": _round_list(membrane.bottom_px),
            "notes": list(membrane.notes),
        },
        "segmentation": {
            "method": a.segmentation.method,
            # share of the membrane in basins the topographic classifier is unsure of (None for
            # the dark method and bare masks; an edited mask keeps its segmentation's)
            "ambiguous_fraction": a.segmentation.details.get("ambiguous_fraction"),
            "details": a.segmentation.details,
            "n_pore_pixels": n_pore,
            "edge_pore_fraction": (float(a.segmentation.edge_pores[pores].mean())
                                   if n_pore else None),
        },
        "pore_size": {
            "mean_um": float(lt_px.mean(dtype=np.float64)) * px if n_pore else None,
            "median_um": size_q[0],
            "p10_um": size_q[1],
            "p90_um": size_q[2],
            "p99_um": size_q[3],
            "definition": "local thickness (diameter of the largest inscribed disk covering each "
                          "pore pixel), statistics over pore pixels",
        },
        "pores": pore_summary(a.pore_table(), n_membrane * px * px),
        "macrovoids": macrovoids[1] if macrovoids is not None else None,
        "profile": profile_block,
        "profile_reason": None if profile_block is not None else
        "no reference surface in view: depth profile not measured",
        "structure": a.structure,
        "criteria": a.criteria,
        "isotropy": a.isotropy,
        "network": a.network,
        "notes": list(a.notes),
        "software": {
            "name": "sempore",
            "version": __version__,
            "settings": a.settings.to_dict(),
            "settings_digest": a.settings.digest(),
            "job_digest": job_digest,
            "edited": bool(edited),
        },
        # the only field that differs between identical runs
        "run": {
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "timings_s": {k: round(v, 4) for k, v in a.timings_s.items()},
            "python": platform.python_version(),
        },
    }
    if macrovoids is None:
        result["macrovoids_reason"] = "no reference surface in view"
    for key in ("structure", "criteria", "isotropy", "network"):
        if result[key] is None:
            result[f"{key}_reason"] = (
                "no reference surface in view" if a.profile is None and key in
                ("structure", "criteria") else "not measured")
    return to_jsonable(result)


# --------------------------------------------------------------------------------------------
# atomic writing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def _atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    A killed process leaves at most a hidden .tmp file, never a half-written result.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:  # a named file: some writers (tifffile) want its name
            write(fh)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to ``path`` atomically (temporary file + rename)."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


def _png_bytes(array: np.ndarray, compression: int = 3) -> bytes:
    import cv2

    arr = np.ascontiguousarray(array)
    params = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    if arr.ndim == 3:
        arr = arr[..., ::-1]  # RGB -> BGR for OpenCV
    else:
        # masks: run-length strategy, about 2x faster and smaller than the default
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, buf = cv2.imencode(".png", arr, params)
    if not ok:  # pragma: no cover
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def _write_tiff(fh: BinaryIO, array: np.ndarray, pixel_size_um: float) -> None:
    import tifffile

    tifffile.imwrite(fh, array, imagej=True,
                     resolution=(1.0 / pixel_size_um, 1.0 / pixel_size_um),
                     metadata={"unit": "um", "spacing": pixel_size_um})


def _write_local_thickness(path: Path, lt_px: np.ndarray, pixel_size_um: float,
                           raw_shape: tuple[int, int]) -> None:
    """local_thickness.tif: float32 diameters in µm at the file's full size (data bar rows 0)."""
    lt_um = np.zeros(raw_shape, np.float32)
    np.multiply(lt_px, np.float32(pixel_size_um), out=lt_um[: lt_px.shape[0]])
    _atomic_write(path, lambda fh: _write_tiff(fh, lt_um, pixel_size_um))


def full_frame(mask_or_map: np.ndarray, raw_shape: tuple[int, int]) -> np.ndarray:
    """Pad an analysed-size array with zero rows for the data bar (back to the file's shape)."""
    rows = raw_shape[0] - mask_or_map.shape[0]
    if rows <= 0:
        return mask_or_map
    pad = np.zeros((rows,) + mask_or_map.shape[1:], mask_or_map.dtype)
    return np.concatenate([mask_or_map, pad], axis=0)


# --------------------------------------------------------------------------------------------
# pictures


def min_layer_range_um(structure: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """Depth range (top, bottom) in µm of the minimum-pore layer, or None if there is none.

    The layer need not be centred on its minimum: ``min_layer_top_um``/``min_layer_bottom_um``
    are used when the structure stage gives them, else depth ± thickness / 2.
    """
    s = structure or {}
    if s.get("kind") != "internal_minimum" or s.get("min_layer_depth_um") is None:
        return None
    centre = float(s["min_layer_depth_um"])
    half = float(s.get("min_layer_thickness_um") or 0.0) / 2
    top = s.get("min_layer_top_um")
    bottom = s.get("min_layer_bottom_um")
    return (float(centre - half if top is None else top),
            float(centre + half if bottom is None else bottom))


def overlay_image(analysis: Analysis, *, max_side_px: int | None = None,
                  skeleton: bool = False) -> np.ndarray:
    """RGB uint8 picture: micrograph, pore outlines and tint, surfaces, minimum-pore layer,
    labels left out of the analysis (red frames), macrovoids (orange outlines).

    Parameters
    ----------
    analysis : Analysis
    max_side_px : int, optional
        Downscale so the longer side is at most this many pixels.
    skeleton : bool
        Also draw the network skeleton of the isotropy stage (``extras["skeleton"]``).
    """
    import cv2

    a = analysis
    grey = cv2.convertScaleAbs(a.micrograph.image, alpha=255.0)  # float [0,1] -> uint8
    pores = a.segmentation.mask
    outline = pores & ~cv2.erode(pores.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    outside = ~a.membrane.mask
    dimmed = cv2.convertScaleAbs(grey, alpha=0.6)
    out = np.empty(grey.shape + (3,), np.uint8)
    for ch, tint in enumerate(_PORE_RGB):
        # uint8 arithmetic on whole channels: no float copies of a large image
        channel = out[..., ch]
        channel[...] = grey
        np.copyto(channel, cv2.addWeighted(grey, 0.6, grey, 0.0, 0.4 * tint), where=pores)
        np.copyto(channel, tint, where=outline)
        np.copyto(channel, dimmed, where=outside)
    del dimmed, outline, outside
    membrane = a.membrane
    thickness = max(1, int(round(max(out.shape) / 600)))

    def draw_line(line: np.ndarray | None, colour: tuple[int, int, int]) -> None:
        if line is None:
            return
        along = np.arange(line.size)
        ok = np.isfinite(line)
        if membrane.orientation == "horizontal":
            pts = np.column_stack([along[ok], line[ok]])
        else:
            pts = np.column_stack([line[ok], along[ok]])
        if len(pts) > 1:
            cv2.polylines(out, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], False,
                          colour, thickness, lineType=cv2.LINE_AA)

    names = ("top", "bottom") if membrane.orientation == "horizontal" else ("left", "right")
    for name, line in zip(names, (membrane.top_px, membrane.bottom_px)):
        if name in membrane.surfaces_in_view:
            draw_line(line, _SURFACE_RGB if name == membrane.reference_surface else _OPPOSITE_RGB)

    layer = min_layer_range_um(a.structure)
    if layer is not None and membrane.depth_px is not None:
        top_px, bottom_px = (v / a.pixel_size_um for v in layer)
        band = (membrane.depth_px >= top_px) & (membrane.depth_px <= max(bottom_px, top_px + 1))
        edge = band & ~cv2.erode(band.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
        for ch, value in enumerate(_LAYER_RGB):
            channel = out[..., ch]
            np.copyto(channel, cv2.addWeighted(channel, 0.75, channel, 0.0, 0.25 * value),
                      where=band)
            np.copyto(channel, value, where=edge)
    voids = a.macrovoid_labels() if a.membrane.depth_px is not None else None
    if voids is not None:  # macrovoids outlined
        v = (voids > 0).view(np.uint8)
        k = 2 * thickness + 3  # a 2 px ring on small images, more on large ones
        ring = cv2.dilate(v, np.ones((k, k), np.uint8)).astype(bool) & ~v.view(bool)
        for ch, value in enumerate(_MACROVOID_RGB):
            np.copyto(out[..., ch], value, where=ring)
    for r0, r1, c0, c1 in a.micrograph.annotations_px:  # labels left out of the analysis
        cv2.rectangle(out, (int(c0), int(r0)), (int(c1) - 1, int(r1) - 1), _LABEL_RGB, thickness)
    skel = a.extras.get("skeleton") if skeleton else None
    if isinstance(skel, np.ndarray) and skel.shape == pores.shape:
        out[skel.astype(bool)] = (255, 80, 0)
    if max_side_px and max(out.shape[:2]) > max_side_px:
        scale = max_side_px / max(out.shape[:2])
        size = (max(1, int(out.shape[1] * scale)), max(1, int(out.shape[0] * scale)))
        out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
    return out


def size_distribution_figure(analysis: Analysis):
    """Matplotlib figure of the pore-size distributions: the local thickness of every pore pixel
    (area-weighted: which share of the pore space lies in pores of each size) and the
    equivalent-circle diameter of each pore not cut by the frame (number-weighted, as a pore
    count in ImageJ gives it). None when there is no pore."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    a = analysis
    px = a.pixel_size_um
    lt_px = a.local_thickness_px[a.segmentation.mask]  # float32; no float64 copy of it
    lt_px = lt_px[np.isfinite(lt_px) & (lt_px > 0)]
    if lt_px.size == 0:
        return None
    table = a.pore_table()
    ecd = table.loc[~table["cut"].astype(bool), "equivalent_diameter_um"].to_numpy(np.float64)
    fig = Figure(figsize=(8.0, 3.6), dpi=100)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.86, wspace=0.22)
    ax_lt, ax_n = fig.subplots(1, 2)
    lo = max(min(float(lt_px.min()) * px, ecd.min() if ecd.size else np.inf), px)
    hi = max(float(lt_px.max()) * px, ecd.max() if ecd.size else 0.0, lo * 1.5)
    log_edges = np.linspace(np.log10(lo), np.log10(hi * 1.001), 41)
    # uniform bins of log size: numpy's fast histogram path on tens of millions of pixels
    counts, _ = np.histogram(np.log10(lt_px * np.float32(px)), bins=log_edges)
    edges = 10.0 ** log_edges
    ax_lt.stairs(counts / lt_px.size, edges, fill=True, color="tab:orange")
    median_lt = float(np.median(lt_px)) * px
    ax_lt.axvline(median_lt, color="tab:brown", ls="--", lw=1.0,
                  label=f"median {median_lt:.3g} µm")
    ax_lt.set_xscale("log")
    ax_lt.set_xlabel("local pore size, diameter (µm)")
    ax_lt.set_ylabel("share of the pore area")
    ax_lt.legend(fontsize=7, frameon=False)
    if ecd.size:
        ax_n.hist(ecd, bins=edges, color="tab:blue")
        ax_n.axvline(np.median(ecd), color="navy", ls="--", lw=1.0,
                     label=f"median {np.median(ecd):.3g} µm")
        ax_n.legend(fontsize=7, frameon=False)
    ax_n.set_xscale("log")
    ax_n.set_xlabel("equivalent-circle diameter (µm)")
    ax_n.set_ylabel(f"pores ({ecd.size} whole, {int(table['cut'].sum())} cut not shown)")
    name = Path(a.micrograph.path).name if a.micrograph.path else "image"
    fig.suptitle(f"{name} — pore sizes", fontsize=10)
    return fig


def profile_figure(analysis: Analysis):
    """Matplotlib figure: porosity and pore size against depth, band and minimum layer marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    a = analysis
    # fixed margins: constrained layout costs more than drawing the figure
    fig = Figure(figsize=(8.0, 4.6), dpi=100)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.12, top=0.91, wspace=0.08)
    ax_por, ax_size = fig.subplots(1, 2, sharey=True)
    p = a.profile
    name = Path(a.micrograph.path).name if a.micrograph.path else "image"
    if p is None or p.empty:
        ax_por.text(0.5, 0.5, "no reference surface:\nno depth profile", ha="center",
                    va="center", transform=ax_por.transAxes)
        fig.suptitle(name)
        return fig
    depth = p["depth_um"].to_numpy()
    ax_por.plot(p["porosity"], depth, color="tab:blue", lw=1.6, label="porosity")
    if "ambiguous_fraction" in p and p["ambiguous_fraction"].notna().any():
        # where in depth the segmentation doubts itself (same 0-1 axis as the porosity)
        ax_por.plot(p["ambiguous_fraction"], depth, color="0.45", lw=1.0, ls=":",
                    label="ambiguous share")
        ax_por.legend(loc="best", fontsize=7, frameon=False)
    ax_por.set_xlabel("porosity")
    ax_por.set_xlim(0, 1)
    ax_por.set_ylabel(f"depth below {a.membrane.reference_surface} surface (µm)")
    ax_size.fill_betweenx(depth, p["pore_size_p10_um"], p["pore_size_p90_um"], color="0.85",
                          label="p10–p90 of local size")
    band = a.extras.get("profile_band")
    if isinstance(band, pd.DataFrame) and not band.empty:
        ax_size.fill_betweenx(band["depth_um"], band["pore_size_lo_um"], band["pore_size_hi_um"],
                              color="tab:orange", alpha=0.35, lw=0, label="95 % band of mean")
    ax_size.plot(p["pore_size_um"], depth, color="tab:orange", lw=1.8, label="mean")
    ax_size.plot(p["pore_size_median_um"], depth, color="tab:brown", lw=1.0, ls="--",
                 label="median")
    ax_size.set_xlabel("pore size, diameter (µm)")
    ax_size.set_xlim(left=0)
    s = a.structure or {}
    limit_um = s.get("resolution_limit_um") or p.attrs.get("resolution_limit_um")
    if limit_um:
        # sizes near this line are a floor of the segmentation, not a measurement
        ax_size.axvline(limit_um, color="0.4", lw=0.8, ls="-.", label="resolution limit")
    for k, (lo, hi) in enumerate(resolution_limited_ranges_um(p)):
        ax_size.axhspan(lo, hi, facecolor="none", edgecolor="0.55", hatch="///", lw=0,
                        label="sizes floored (at limit)" if k == 0 else None)
    title = name
    if s.get("kind"):
        title += f" — {s['kind']}"
        if s.get("gradient_direction"):
            title += f" ({s['gradient_direction']})"
        if s.get("confidence") is not None:
            title += f", confidence {s['confidence']:.2f}"
    layer = min_layer_range_um(s)
    if layer is not None:
        centre = s["min_layer_depth_um"]
        for ax in (ax_por, ax_size):
            ax.axhspan(layer[0], layer[1], color="magenta", alpha=0.15, lw=0)
            ax.axhline(centre, color="magenta", lw=1.0)
        ax_size.annotate(f"min layer {centre:.1f} µm", (0.98, centre),
                         xycoords=("axes fraction", "data"), ha="right", va="bottom",
                         color="magenta", fontsize=8)
    thickness = a.membrane.thickness_px
    if thickness is not None:
        for ax in (ax_por, ax_size):
            ax.axhline(thickness * a.pixel_size_um / 16, color="0.5", lw=0.8, ls=":")
    skin = (a.criteria or {}).get("skin_thickness_um")
    if skin:  # the dense skin at the reference surface
        ax_por.axhspan(0.0, skin, color="0.3", alpha=0.25, lw=0, label=f"skin {skin:.2g} µm")
        ax_por.legend(loc="best", fontsize=7, frameon=False)
    voids = a.macrovoids()
    summary = voids[1] if voids is not None else None
    if summary and summary.get("n_macrovoids"):
        # where the macrovoids are: from the first one's top to the deepest bottom
        ax_por.plot([0.97, 0.97], [summary["first_top_depth_um"],
                                   summary["deepest_bottom_depth_um"]],
                    color=tuple(v / 255 for v in _MACROVOID_RGB), lw=4, solid_capstyle="butt")
        ax_por.annotate(f"{summary['n_macrovoids']} macrovoids", (0.95,
                        summary["first_top_depth_um"]), ha="right", va="top", fontsize=7,
                        color=tuple(v / 255 for v in _MACROVOID_RGB))
    ax_por.invert_yaxis()
    ax_size.legend(loc="lower right", fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    return fig


def isotropy_figure(analysis: Analysis):
    """Matplotlib figure: rose plots of the mean intercept length and of edge orientations.

    Returns None when the isotropy stage gave no orientation data.
    """
    iso = analysis.isotropy or {}
    hist = analysis.extras.get("orientation_histogram") or iso.get("orientation_histogram")
    mil = iso.get("mil_um")
    if not hist and not mil:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.0), dpi=100)
    fig.subplots_adjust(left=0.04, right=0.96, bottom=0.06, top=0.82, wspace=0.3)
    panels = []
    if mil:
        panels.append(("mean intercept length (µm)", mil["angle_deg"], mil["mil"], "line"))
    if hist:
        # the pixel grid puts spikes at 0/45/90/135 degrees into a gradient-orientation
        # histogram of a binary mask; a circular 10-degree kernel shows the distribution
        weight = np.asarray(hist["weight"], float)
        step = 180.0 / weight.size
        from scipy.ndimage import gaussian_filter1d

        smooth = gaussian_filter1d(weight, 10.0 / step, mode="wrap")
        panels.append(("interface orientation (10° smoothed)", hist["angle_deg"], smooth, "bar"))
    axes = [fig.add_subplot(1, len(panels), i + 1, projection="polar")
            for i in range(len(panels))]
    for ax, (title, angle_deg, values, style) in zip(axes, panels):
        theta = np.deg2rad(np.asarray(angle_deg, float))
        r = np.asarray([np.nan if v is None else v for v in values], float)
        # axial data: an angle and its opposite are the same direction
        theta2 = np.concatenate([theta, theta + np.pi])
        r2 = np.concatenate([r, r])
        order = np.argsort(theta2)
        if style == "bar":
            # one filled outline instead of a patch per bin (a bar per bin cost 0.25 s)
            half = np.pi / theta2.size
            t = np.linspace(-half, half, 5)
            outline_theta = (theta2[order][:, None] + t[None, :]).ravel()
            outline_r = np.repeat(np.nan_to_num(r2[order]), t.size)
            ax.fill(outline_theta, outline_r, color="tab:blue", alpha=0.7, lw=0)
            ax.plot(np.append(outline_theta, outline_theta[0]),
                    np.append(outline_r, outline_r[0]), color="tab:blue", lw=0.8)
        else:
            closed = np.append(order, order[0])
            ax.plot(theta2[closed], r2[closed], color="tab:orange", lw=1.8)
            ax.set_rmin(0)
        if iso.get("orientation_deg") is not None:
            o = np.deg2rad(iso["orientation_deg"])
            top = np.nanmax(r2) if np.isfinite(r2).any() else 1.0
            ax.plot([o, o + np.pi], [top, top], ls="none", marker="o", color="magenta", ms=5)
        ax.set_title(title, fontsize=9)
        ax.set_yticklabels([])
    verdict = {True: "isotropic", False: "oriented"}.get(iso.get("is_isotropic"), "")
    da = iso.get("degree_of_anisotropy")
    caption = f"{verdict}" + (f", DA {da:.3f}" if da is not None else "")
    if iso.get("orientation_deg") is not None:
        caption += f", principal direction {iso['orientation_deg']:.0f}°"
    if iso.get("coherency") is not None:
        caption += f", coherency {iso['coherency']:.3f}"
    fig.suptitle(caption, fontsize=10)
    return fig


def _figure_png(fig) -> bytes:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# per-image results


def write_results(
    analysis: Analysis,
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    edited: bool = False,
    input_sha256: str | None = None,
    figures: bool | None = None,
    job_digest: str | None = None,
) -> dict[str, Path]:
    """Write the contract's files for one image into ``out_dir`` (DIR/<stem>/).

    Parameters
    ----------
    analysis : Analysis
    out_dir : path
        The image's own result folder; created if missing.
    force : bool
        Overwrite existing results. Without it an existing ``result.json`` raises
        :class:`ResultExists` and nothing is written.
    edited : bool
        Mark the result as edited by hand (napari).
    input_sha256 : str, optional
        Hash of the input file (computed from ``analysis.micrograph.path`` when omitted).
    figures : bool, optional
        Write overlay.png and profile.png (default: ``settings.report.figures``).
    job_digest : str, optional
        Identity of the job (input hash, settings, pixel size) for resumable batches.

    Returns
    -------
    dict
        File name -> path written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "result.json").exists() and not force:
        raise ResultExists(f"{out}: results exist (use --force to overwrite)")
    if not os.access(out, os.W_OK):
        raise PermissionError(f"{out}: output folder is not writable")
    a = analysis
    if input_sha256 is None and a.micrograph.path and Path(a.micrograph.path).is_file():
        input_sha256 = file_sha256(a.micrograph.path)
    figures = a.settings.report.figures if figures is None else figures
    for stale in out.glob(".*.tmp"):  # left by a run that was killed while writing here
        try:
            stale.unlink()
        except OSError:
            pass
    raw_shape = tuple(a.micrograph.raw_shape)
    px = a.pixel_size_um
    written: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        _atomic_write_bytes(out / name, data)
        written[name] = out / name

    pores = full_frame(a.segmentation.mask, raw_shape)
    put("pores.png", _png_bytes(pores.astype(np.uint8) * 255))
    put("membrane.png", _png_bytes(full_frame(a.membrane.mask, raw_shape).astype(np.uint8) * 255))
    _write_local_thickness(out / "local_thickness.tif", a.local_thickness_px, px, raw_shape)
    written["local_thickness.tif"] = out / "local_thickness.tif"
    put("pores.csv", a.pore_table().to_csv(index=False, float_format="%.6g").encode())
    macrovoids = a.macrovoids()
    if macrovoids is not None:
        put("macrovoids.csv", macrovoids[0].to_csv(index=False, float_format="%.6g").encode())
    if a.profile is not None:
        put("profile.csv", a.profile.to_csv(index=False, float_format="%.6g").encode())
    else:
        put("profile.csv", b"# no reference surface in view: no depth profile\n")
    if figures:
        put("overlay.png", _png_bytes(overlay_image(a), compression=1))
        rose = isotropy_figure(a)
        if rose is not None:
            put("isotropy.png", _figure_png(rose))
        if isinstance(a.extras.get("skeleton"), np.ndarray):
            put("network.png", _png_bytes(overlay_image(a, skeleton=True), compression=1))
        put("profile.png", _figure_png(profile_figure(a)))
        sizes = size_distribution_figure(a)
        if sizes is not None:
            put("size_distribution.png", _figure_png(sizes))
    # an overwritten folder keeps no file of the run before that this one did not make (a
    # macrovoids.csv of a run with a surface, figures of a run with them)
    for name in CONDITIONAL_FILES:
        if name not in written and (out / name).exists():
            (out / name).unlink()
    result = result_dict(a, edited=edited, input_sha256=input_sha256, job_digest=job_digest)
    put("result.json", json.dumps(result, indent=1, allow_nan=False).encode())
    return written


@dataclass
class LoadedResult:
    """Results of one image read back from its folder."""

    result: dict[str, Any]
    pore_mask: np.ndarray | None
    membrane_mask: np.ndarray | None
    local_thickness_um: np.ndarray | None
    profile: pd.DataFrame | None
    image_path: str | None
    folder: Path


def load_results(image_result_dir: str | os.PathLike) -> LoadedResult:
    """Read one image's result folder (as written by :func:`write_results`).

    Masks are returned at the analysed size (data-bar rows removed).
    """
    import cv2

    folder = Path(image_result_dir)
    path = folder / "result.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no result.json (not a sempore result folder)")
    result = json.loads(path.read_text())
    rows = result["image"]["analysed_shape"][0]

    def read_mask(name: str) -> np.ndarray | None:
        p = folder / name
        if not p.is_file():
            return None
        arr = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        return None if arr is None else arr[:rows] > 127

    lt = None
    if (folder / "local_thickness.tif").is_file():
        import tifffile

        lt = tifffile.imread(folder / "local_thickness.tif")[:rows]
    profile = None
    if (folder / "profile.csv").is_file() and result.get("profile") is not None:
        profile = pd.read_csv(folder / "profile.csv")
    return LoadedResult(result=result, pore_mask=read_mask("pores.png"),
                        membrane_mask=read_mask("membrane.png"), local_thickness_um=lt,
                        profile=profile, image_path=result["image"].get("path"), folder=folder)


# --------------------------------------------------------------------------------------------
# batch summary and HTML report

SUMMARY_COLUMNS = (
    "image", "status", "reason", "pixel_size_um", "pixel_size_source", "reference_surface",
    "thickness_um", "visible_span_um", "porosity", "mean_pore_size_um", "median_pore_size_um",
    "n_pores", "median_equivalent_diameter_um", "n_macrovoids", "macrovoid_median_length_um",
    "structure_kind", "gradient_direction", "min_layer_depth_um", "min_layer_pore_size_um",
    "min_layer_thickness_um", "min_layer_at_resolution_limit", "structure_confidence",
    "surface_zone_pore_size_um",
    "interior_pore_size_um", "surface_to_interior_ratio", "surface_vs_interior",
    "surface_zone_at_resolution_limit", "skin_thickness_um", "top_to_bottom_pore_size_ratio",
    "max_to_mean_pore_size_ratio", "is_isotropic", "degree_of_anisotropy", "orientation_deg",
    "coherency", "percolates_through_thickness", "breakthrough_pore_size_um",
    "breakthrough_to_mean_ratio", "segmentation_method", "ambiguous_fraction", "notes",
    "result_dir",
)
#: What summary.csv's ``notes`` column joins an image's notes with.
NOTES_SEPARATOR = " | "


def summary_row(result: Mapping[str, Any] | None, *, image: str, status: str = "ok",
                reason: str = "", result_dir: str = "") -> dict[str, Any]:
    """One summary.csv row from a result dict (or a failed image)."""
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(image=image, status=status, reason=reason, result_dir=result_dir)
    if not result:
        return row
    img = result.get("image", {})
    mem = result.get("membrane", {})
    size = result.get("pore_size", {})
    s = result.get("structure") or {}
    c = result.get("criteria") or {}
    iso = result.get("isotropy") or {}
    net = result.get("network") or {}
    pores = result.get("pores") or {}
    macrovoids = result.get("macrovoids") or {}
    row.update(
        pixel_size_um=img.get("pixel_size_um"), pixel_size_source=img.get("pixel_size_source"),
        reference_surface=mem.get("reference_surface"), thickness_um=mem.get("thickness_um"),
        visible_span_um=mem.get("visible_span_um"), porosity=mem.get("porosity"),
        mean_pore_size_um=size.get("mean_um"), median_pore_size_um=size.get("median_um"),
        n_pores=pores.get("n_pores"),
        median_equivalent_diameter_um=(pores.get("equivalent_diameter_um") or {}).get("median"),
        n_macrovoids=macrovoids.get("n_macrovoids"),
        macrovoid_median_length_um=macrovoids.get("median_length_um"),
        structure_kind=s.get("kind"), gradient_direction=s.get("gradient_direction"),
        min_layer_depth_um=s.get("min_layer_depth_um"),
        min_layer_pore_size_um=s.get("min_layer_pore_size_um"),
        min_layer_thickness_um=s.get("min_layer_thickness_um"),
        min_layer_at_resolution_limit=s.get("min_layer_at_resolution_limit"),
        structure_confidence=s.get("confidence"),
        surface_zone_pore_size_um=c.get("surface_zone_pore_size_um"),
        interior_pore_size_um=c.get("interior_pore_size_um"),
        surface_vs_interior=c.get("surface_vs_interior"),
        surface_zone_at_resolution_limit=c.get("surface_zone_at_resolution_limit"),
        skin_thickness_um=c.get("skin_thickness_um"),
        surface_to_interior_ratio=c.get("surface_to_interior_ratio"),
        top_to_bottom_pore_size_ratio=c.get("top_to_bottom_pore_size_ratio"),
        max_to_mean_pore_size_ratio=c.get("max_to_mean_pore_size_ratio"),
        is_isotropic=iso.get("is_isotropic"), degree_of_anisotropy=iso.get("degree_of_anisotropy"),
        orientation_deg=iso.get("orientation_deg"), coherency=iso.get("coherency"),
        percolates_through_thickness=net.get("percolates_through_thickness"),
        breakthrough_pore_size_um=net.get("breakthrough_pore_size_um"),
        breakthrough_to_mean_ratio=net.get("breakthrough_to_mean_ratio"),
        segmentation_method=(result.get("segmentation") or {}).get("method"),
        ambiguous_fraction=(result.get("segmentation") or {}).get("ambiguous_fraction"),
        notes=NOTES_SEPARATOR.join(result.get("notes") or []) or None,
    )
    return row


def write_summary(rows: Iterable[Mapping[str, Any]], out_dir: str | os.PathLike) -> Path:
    """Write DIR/summary.csv (and summary.parquet when pyarrow is installed)."""
    out = Path(out_dir)
    table = pd.DataFrame(list(rows), columns=list(SUMMARY_COLUMNS))
    path = out / "summary.csv"
    atomic_write_text(path, table.to_csv(index=False))
    try:
        import pyarrow  # noqa: F401

        buf = _io.BytesIO()
        table.astype({c: "object" for c in table.columns if table[c].dtype == object}).to_parquet(
            buf, index=False)
        _atomic_write_bytes(out / "summary.parquet", buf.getvalue())
    except (ImportError, ValueError, TypeError):
        pass
    return path


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _thumbnail_png(path: Path, max_side: int) -> bytes | None:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    scale = min(1.0, max_side / max(img.shape[:2]))
    if scale < 1.0:
        img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes() if ok else None


def _all_profiles_png(results: list[tuple[str, dict]]) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    curves = []
    for name, r in results:
        p = r.get("profile")
        if not p:
            continue
        depth = np.asarray([np.nan if v is None else v for v in p["depth_um"]], float)
        size = np.asarray([np.nan if v is None else v for v in p["pore_size_um"]], float)
        span = (r.get("membrane", {}).get("thickness_um")
                or r.get("membrane", {}).get("visible_span_um") or np.nanmax(depth))
        if not span:
            continue
        curves.append((name, depth / span, size))
    if not curves:
        return None
    fig = Figure(figsize=(7.5, 4.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    for name, x, y in curves:
        ax.plot(x, y, lw=1.2, label=Path(name).name)
    ax.set_xlabel("depth / thickness (visible span when one surface is in view)")
    ax.set_ylabel("mean pore size (µm)")
    ax.set_xlim(0, 1)
    if len(curves) <= 12:
        ax.legend(fontsize=7, frameon=False)
    return _figure_png(fig)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def method_label(result: Mapping[str, Any]) -> str | None:
    """The segmentation method of a result dict, with ``auto``'s P(topographic) when ``auto``
    chose it, e.g. ``"topographic (auto, P(topographic) 0.82)"``, and what overruled the
    classifier when something did (closed bright rings, the porosity cross-check)."""
    seg = result.get("segmentation") or {}
    details = seg.get("details") or {}
    method = seg.get("method")
    p_topo = details.get("p_topographic")
    if method is None or p_topo is None:
        return method
    label = f"{method} (auto, P(topographic) {p_topo:.2f}"
    check = details.get("auto_porosity_check") or {}
    if method == "dark" and p_topo > 0.5 and check:
        label += (f", overruled: topographic porosity {check['topographic_porosity']:.2f} vs "
                  f"dark {check['dark_porosity']:.2f}")
    elif method == "topographic" and (details.get("surface_layer_check") or {}).get("dark"):
        label += (", overruled: the dark mask called the layer under the surface pore "
                  f"({details['surface_layer_check']['dark']:.2f})")
    elif method == "topographic" and p_topo <= 0.5 and details.get("bright_ring_fraction"):
        label += f", overruled: closed bright rims {details['bright_ring_fraction']:.2f}"
    return label + ")"


def write_html_report(out_dir: str | os.PathLike, rows: list[Mapping[str, Any]], *,
                      thumbnail_px: int = 800) -> Path:
    """Write DIR/report.html: one self-contained page for a batch.

    Per image: overlay thumbnail, profile plot and key numbers; for the batch: all profiles
    against normalised depth and the summary table. Images are embedded (no external files).
    """
    from .analysis import AMBIGUOUS_NOTE, UNCERTAIN_METHOD_NOTE

    out = Path(out_dir)
    results: list[tuple[str, dict]] = []
    sections = []
    review: list[tuple[float, str, str]] = []  # (ambiguous share, name, why)
    for row in rows:
        name = str(row.get("image"))
        folder = Path(row["result_dir"]) if row.get("result_dir") else None
        if row.get("status") != "ok" or folder is None or not (folder / "result.json").is_file():
            sections.append(
                f'<section class="img failed"><h2>{html.escape(Path(name).name)}</h2>'
                f'<p class="reason">failed: {html.escape(str(row.get("reason") or ""))}</p>'
                "</section>")
            continue
        result = json.loads((folder / "result.json").read_text())
        results.append((name, result))
        flagged = {note for note in (AMBIGUOUS_NOTE, UNCERTAIN_METHOD_NOTE)
                   if any(str(n).startswith(note) for n in result.get("notes") or [])}
        if flagged:
            share = (result.get("segmentation") or {}).get("ambiguous_fraction")
            share = float(share) if isinstance(share, (int, float)) else 0.0
            why = ([f"ambiguous segmentation ({100 * share:.0f} % of the membrane)"]
                   if AMBIGUOUS_NOTE in flagged else []) + (
                ["segmentation method uncertain"] if UNCERTAIN_METHOD_NOTE in flagged else [])
            review.append((share, name, "; ".join(why)))
        pics = []
        for fname, alt in (("overlay.png", "overlay"), ("profile.png", "profile"),
                           ("size_distribution.png", "pore size distributions"),
                           ("isotropy.png", "isotropy rose plots"),
                           ("network.png", "network skeleton")):
            png = _thumbnail_png(folder / fname, thumbnail_px) if (folder / fname).is_file() \
                else None
            if png:
                pics.append(f'<img alt="{alt} of {html.escape(name)}" src="{_data_uri(png)}">')
        keys = [("pixel size (µm)", row.get("pixel_size_um")),
                ("pixel size from", (row.get("pixel_size_source") or "").replace("_", " ")
                 or None),
                ("reference surface", row.get("reference_surface")),
                ("thickness (µm)", row.get("thickness_um")),
                ("porosity", row.get("porosity")),
                ("segmentation", method_label(result)),
                ("ambiguous share of the membrane", row.get("ambiguous_fraction")),
                ("mean pore size (µm)", row.get("mean_pore_size_um")),
                ("pores", row.get("n_pores")),
                ("median equivalent diameter (µm)", row.get("median_equivalent_diameter_um")),
                ("macrovoids", row.get("n_macrovoids")),
                ("macrovoid median length (µm)", row.get("macrovoid_median_length_um")),
                ("structure", row.get("structure_kind")),
                ("gradient", row.get("gradient_direction")),
                ("min layer depth (µm)", row.get("min_layer_depth_um")),
                ("min layer pore size (µm)", row.get("min_layer_pore_size_um")),
                ("min layer at resolution limit", row.get("min_layer_at_resolution_limit")),
                ("confidence", row.get("structure_confidence")),
                ("surface/interior pore size", row.get("surface_to_interior_ratio")),
                ("surface zone pores", row.get("surface_vs_interior")),
                ("skin (µm)", row.get("skin_thickness_um")),
                ("surface zone at resolution limit",
                 row.get("surface_zone_at_resolution_limit")),
                ("max/mean pore size", row.get("max_to_mean_pore_size_ratio")),
                ("isotropic", row.get("is_isotropic")),
                ("degree of anisotropy", row.get("degree_of_anisotropy")),
                ("percolates", row.get("percolates_through_thickness")),
                ("breakthrough size (µm)", row.get("breakthrough_pore_size_um"))]
        table = "".join(f"<tr><th>{k}</th><td>{_fmt(v)}</td></tr>" for k, v in keys)
        # what the analysis itself flagged (uncertain method, noisy image, no surface...)
        notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in result.get("notes") or [])
        sections.append(
            f'<section class="img"><h2 title="{html.escape(name)}">'
            f'{html.escape(Path(name).name)}</h2><div class="pics">'
            f'{"".join(pics)}</div>'
            + (f'<ul class="notes">{notes}</ul>' if notes else "")
            + f'<table class="kv">{table}</table></section>')
    overview = _all_profiles_png(results)
    overview_html = (f'<img alt="all profiles" src="{_data_uri(overview)}">' if overview
                     else "<p>No depth profiles.</p>")
    # the notes are listed in each image's section; in the one-line-per-image table they would
    # stretch every row
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).drop(
        columns=["result_dir", "notes"])
    summary = summary.astype(object).map(_fmt)
    summary_html = summary.to_html(index=False, classes="summary", border=0, escape=False)
    n_ok = sum(1 for r in rows if r.get("status") == "ok")
    # the images whose own results ask for a look, the most ambiguous first
    review_html = ("" if not review else
                   '<h2>Review first</h2><ol class="review">' + "".join(
                       f"<li>{html.escape(Path(name).name)}: {html.escape(why)}</li>"
                       for _, name, why in sorted(review, key=lambda r: -r[0])) + "</ol>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sempore report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
h1 {{ margin-bottom: 0.2em; }}
section.img {{ border-top: 1px solid #ccc; padding: 0.8em 0; }}
section.failed h2 {{ color: #b00; }}
.pics img {{ max-width: 48%; margin: 0 1% 0.5em 0; vertical-align: top; }}
table.kv th {{ text-align: left; font-weight: normal; color: #555; padding-right: 1em; }}
ul.notes {{ color: #8a5a00; margin: 0.2em 0 0.6em 0; }}
ol.review {{ color: #8a5a00; }}
.summarywrap {{ overflow-x: auto; }}
table.summary {{ border-collapse: collapse; font-size: 12px; white-space: nowrap; }}
table.summary td, table.summary th {{ border: 1px solid #ddd; padding: 2px 5px; }}
</style></head><body>
<h1>sempore report</h1>
<p id="counts">{n_ok} of {len(rows)} images analysed; sempore {__version__}.</p>
{review_html}
<h2>All profiles</h2>{overview_html}
<h2>Summary</h2><div class="summarywrap">{summary_html}</div>
{"".join(sections)}
</body></html>
"""
    path = out / "report.html"
    atomic_write_text(path, page)
    return path
