"""napari reader for SEM micrographs: calibrated in µm, data bar removed, metadata kept.

The pixels, pixel size and data bar come from :func:`pipeline.io.load_micrograph`; this module
only turns a :class:`~pipeline.io.Micrograph` into napari layer data and back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.burnin import as_boxes, detect_annotations
from pipeline.io import IMAGE_SUFFIXES, InputError, Micrograph, from_array, load_micrograph

#: Key of the sempore block in a layer's ``metadata``.
METADATA_KEY = "sempore"

LayerData = tuple[Any, dict[str, Any], str]


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """npe2 reader contribution: a reader function for SEM image files, else None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(Path(p).suffix.lower() in IMAGE_SUFFIXES for p in paths):
        return None
    return read_micrographs


def read_micrographs(path: str | list[str]) -> list[LayerData]:
    """Read one or several SEM files as napari image layer data.

    Raises
    ------
    pipeline.io.InputError
        One line naming the file and the problem (napari shows it as a notification).
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return [micrograph_layer_data(load_micrograph(p)) for p in paths]


def micrograph_metadata(micrograph: Micrograph) -> dict[str, Any]:
    """The sempore block stored in the image layer's ``metadata[METADATA_KEY]``."""
    return {
        "path": micrograph.path,
        "pixel_size_um": micrograph.pixel_size_um,
        "pixel_size_source": micrograph.pixel_size_source,
        "databar_rows": micrograph.databar_rows,
        "databar_source": micrograph.databar_source,
        "raw_shape": tuple(micrograph.raw_shape),
        "metadata": micrograph.metadata,
        "warnings": list(micrograph.warnings),
        "annotations_px": [list(b) for b in micrograph.annotations_px],
    }


def micrograph_layer_data(micrograph: Micrograph, *, name: str | None = None) -> LayerData:
    """napari image layer data (grey float32 in [0, 1]) scaled in µm.

    Without a known pixel size the layer stays in pixels (scale 1, units ``pixel``).
    """
    px = micrograph.pixel_size_um
    if name is None:
        name = Path(micrograph.path).stem if micrograph.path else "micrograph"
    kwargs: dict[str, Any] = {
        "name": name,
        "colormap": "gray",
        "contrast_limits": (0.0, 1.0),
        "metadata": {METADATA_KEY: micrograph_metadata(micrograph)},
    }
    if px:
        kwargs["scale"] = (float(px), float(px))
        kwargs["units"] = ("µm", "µm")
    else:
        kwargs["scale"] = (1.0, 1.0)
        kwargs["units"] = ("pixel", "pixel")
    return micrograph.image, kwargs, "image"


def layer_pixel_size_um(layer: Any) -> float | None:
    """Pixel size (µm) of an image layer: sempore metadata, else a µm-calibrated layer scale."""
    meta = (getattr(layer, "metadata", None) or {}).get(METADATA_KEY) or {}
    if meta.get("pixel_size_um"):
        return float(meta["pixel_size_um"])
    scale = np.asarray(getattr(layer, "scale", (1.0, 1.0)), float)[-2:]
    units = [str(u) for u in getattr(layer, "units", ())][-2:]
    if len(units) == 2 and all(u in ("micrometer", "µm", "um") for u in units) and np.isclose(
            scale[0], scale[1]) and scale[0] > 0:
        return float(scale[0])
    if len(units) == 2 and all(u == "nanometer" for u in units) and scale[0] > 0:
        return float(scale[0]) * 1e-3
    return None


def micrograph_from_layer(layer: Any, pixel_size_um: float | None = None, *,
                          pixel_size_source: str | None = None) -> Micrograph:
    """A :class:`~pipeline.io.Micrograph` for an image layer (what the analysis runs on).

    A layer opened by the sempore reader keeps its file, data bar and metadata; any other 2-D
    grey or RGB layer is converted with :func:`pipeline.io.from_array`. Labels left out of the
    analysis (``annotations_px``) come from the layer's sempore metadata when it holds them
    (found when the file was read, or edited in the viewer's "labels left out" layer), else
    they are detected.

    Parameters
    ----------
    layer : napari.layers.Image
    pixel_size_um : float, optional
        Overrides the layer's pixel size (source ``caller``).
    pixel_size_source : str, optional
        Where ``pixel_size_um`` came from when not the caller (e.g. ``scale_bar``).

    Raises
    ------
    pipeline.io.InputError
        The layer is not a single 2-D image.
    """
    data = np.asarray(layer.data)
    rgb = bool(getattr(layer, "rgb", False))
    if data.ndim != (3 if rgb else 2):
        raise InputError(f"{layer.name}: layer has shape {data.shape}; the analysis needs one "
                         "2-D grey or RGB image")
    meta = (layer.metadata or {}).get(METADATA_KEY)
    px_layer = layer_pixel_size_um(layer)
    # labels found when the file was read, or drawn / edited in the viewer; else detected here
    labels = as_boxes(meta["annotations_px"]) if meta and "annotations_px" in meta else None
    if meta and not rgb and data.dtype == np.float32 and float(data.min(initial=0)) >= 0 and \
            float(data.max(initial=0)) <= 1:
        px = pixel_size_um if pixel_size_um is not None else px_layer
        source = meta.get("pixel_size_source", "unknown")
        if pixel_size_um is not None and not np.isclose(pixel_size_um, meta.get(
                "pixel_size_um") or np.nan):
            source = pixel_size_source or "caller"
        return Micrograph(
            image=np.ascontiguousarray(data), pixel_size_um=px,
            pixel_size_source=source if px else "unknown",
            databar_rows=int(meta.get("databar_rows", 0)),
            databar_source=meta.get("databar_source", "none"),
            raw_shape=tuple(meta.get("raw_shape") or data.shape),
            metadata=dict(meta.get("metadata") or {}), path=meta.get("path"),
            warnings=list(meta.get("warnings") or []),
            annotations_px=labels if labels is not None else detect_annotations(data))
    px = pixel_size_um if pixel_size_um is not None else px_layer
    micrograph = from_array(data, px, detect_labels=labels is None)
    if px is not None and pixel_size_um is None:
        micrograph.pixel_size_source = "napari_layer_scale"
    if labels is not None:
        micrograph.annotations_px = labels
    return micrograph
