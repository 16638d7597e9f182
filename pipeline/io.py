"""Loading SEM micrographs: pixels, calibration and the instrument data bar.

:func:`load_micrograph` reads TIFF (8/16-bit, palette, RGB/RGBA, multi-page), PNG, JPEG and BMP,
turns the pixels into a grey ``float32`` image in [0, 1], reads the pixel size from the file's own
metadata where the instrument wrote it (FEI/Thermo, Zeiss SmartSEM and TESCAN TIFF tags, Hitachi
and JEOL sidecar ``.txt`` files, TESCAN sidecar ``.hdr`` files, an ImageJ/Fiji calibration) and
removes the instrument data bar from the bottom of the frame.

The plain TIFF ``XResolution`` / ``ResolutionUnit`` pair is deliberately not read: in exported
micrographs it mostly holds a screen or print resolution (72, 96, 300 dpi) left by the export
software, and a confidently wrong pixel size is worse than none. ImageJ's calibration is read only
where ImageJ's own description names a length unit (``unit=micron``, ``nm``, ...).

Every problem with an input raises :class:`InputError` with a one-line message that names the file
and says what to do; callers (CLI, batch, napari) show that line instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")

#: Largest plausible pixel size in µm (a scaffold at very low magnification) and smallest (1 pm).
_PIXEL_SIZE_RANGE_UM = (1e-6, 1e3)

#: Pixel height and width (from metadata) differing by more than this share get a warning.
NON_SQUARE_TOLERANCE = 0.01

_UNIT_TO_UM = {
    "fm": 1e-9, "pm": 1e-6, "nm": 1e-3, "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0,
    "microns": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6,
}


class InputError(ValueError):
    """A problem with one input file; ``str(err)`` is a one-line message for the user."""


@dataclass
class Micrograph:
    """A loaded SEM micrograph.

    Attributes
    ----------
    image : ndarray of float32, shape (rows, cols)
        Grey values in [0, 1] with the data bar rows removed (rows = ``raw_shape[0] -
        databar_rows``).
    pixel_size_um : float or None
        Edge length of one pixel in µm; None when neither the file nor the caller gave it.
    pixel_size_source : str
        Where the pixel size came from: ``fei_metadata``, ``zeiss_metadata``,
        ``tescan_metadata``, ``hitachi_sidecar``, ``jeol_sidecar``, ``tescan_sidecar``,
        ``imagej_calibration``, ``scale_bar`` (the caller's ``scale_bar_um`` over the drawn bar's
        length), ``caller`` or ``unknown``.
    databar_rows : int
        Number of rows removed from the bottom of the frame (0 when there is no data bar).
    databar_source : str
        ``metadata``, ``detected`` or ``none``.
    raw_shape : tuple of int
        Shape (rows, cols) of the frame as stored in the file, data bar included.
    metadata : dict
        Instrument metadata found (JSON-serialisable subset).
    path : str or None
        The file it came from.
    warnings : list of str
        Things the user should know (e.g. "multi-page TIFF: first page used").
    annotations_px : list of (row0, row1, col0, col1)
        Labels burned into the frame (scale bars, text boxes; half-open pixel rectangles of
        ``image``, see :func:`pipeline.burnin.detect_annotations`); the analysis leaves them
        out. Empty when none were found or detection was off. Rectangles left out by hand
        (``[io] exclude``) are added here by :func:`pipeline.analyze` and also listed in
        :attr:`excluded_px`.
    excluded_px : list of (row0, row1, col0, col1)
        The rectangles of :attr:`annotations_px` that were given by hand, not found.
    """

    image: np.ndarray
    pixel_size_um: float | None
    pixel_size_source: str = "unknown"
    databar_rows: int = 0
    databar_source: str = "none"
    raw_shape: tuple[int, int] = (0, 0)
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    warnings: list[str] = field(default_factory=list)
    annotations_px: list[tuple[int, int, int, int]] = field(default_factory=list)
    excluded_px: list[tuple[int, int, int, int]] = field(default_factory=list)

    def label_mask(self) -> np.ndarray | None:
        """Bool mask (``image``'s shape) of :attr:`annotations_px`, or None when there are none:
        the pixels the analysis treats as of unknown phase."""
        if not self.annotations_px:
            return None
        from .burnin import annotation_mask

        return annotation_mask(self.image.shape, self.annotations_px)

    def info(self) -> dict[str, Any]:
        """What ``sempore info`` prints for this file."""
        return {
            "path": self.path,
            "shape": list(self.raw_shape),
            "analysed_shape": list(self.image.shape),
            "dtype": self.metadata.get("dtype"),
            "pixel_size_um": self.pixel_size_um,
            "pixel_size_source": self.pixel_size_source,
            "databar_rows": self.databar_rows,
            "databar_source": self.databar_source,
            "annotations_px": [list(b) for b in self.annotations_px],
            "instrument": self.metadata.get("instrument"),
            "scale_bar": self.metadata.get("scale_bar"),
            "metadata": self.metadata.get("instrument_metadata", {}),
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------------
# grey values


def to_grey(array: np.ndarray, *, colormap: np.ndarray | None = None) -> np.ndarray:
    """Convert any image array to grey ``float32`` in [0, 1].

    Integer images keep their instrument scale (uint8 / 255, uint16 / 65535), except 16-bit
    images that only hold 8-bit data multiplied by 256, which are scaled as 8-bit. Float images
    are stretched between their finite minimum and maximum; NaN and inf become the minimum.
    RGB(A) images are converted with the ITU-R 601 luma weights (alpha is ignored). A palette
    image is converted through ``colormap`` (shape (3, n), any integer or float type).

    Parameters
    ----------
    array : ndarray, shape (rows, cols) or (rows, cols, channels)
    colormap : ndarray, shape (3, n), optional

    Returns
    -------
    ndarray of float32, shape (rows, cols)
    """
    a = np.asarray(array)
    if colormap is not None and a.ndim == 2 and np.issubdtype(a.dtype, np.integer):
        cmap = np.asarray(colormap, dtype=np.float64)
        cmap = cmap / (65535.0 if cmap.max() > 255 else 255.0)
        idx = np.clip(a, 0, cmap.shape[1] - 1)
        a = np.stack([cmap[c][idx] for c in range(3)], axis=-1).astype(np.float32)
    if a.ndim == 3:
        if a.shape[-1] not in (1, 2, 3, 4) and a.shape[0] in (1, 2, 3, 4):
            a = np.moveaxis(a, 0, -1)  # channels-first
        if a.shape[-1] in (3, 4):
            rgb = a[..., :3]
            if a.dtype == bool:
                rgb = rgb.astype(np.float32)
            grey = _scale(rgb).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            return np.clip(grey, 0, 1).astype(np.float32)
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {a.shape}")
    return _scale(a)


def _scale(a: np.ndarray) -> np.ndarray:
    if a.dtype == bool:
        return a.astype(np.float32)
    if a.dtype == np.uint8:
        return np.multiply(a, np.float32(1 / 255.0), dtype=np.float32)  # one allocation
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        if a.dtype == np.uint16:
            if a.size and int(a.max()) > 255 and not np.any(a & 0xFF):
                # 8-bit data stored x256
                return np.multiply(a, np.float32(1 / 65280.0), dtype=np.float32)
            return np.multiply(a, np.float32(1 / 65535.0), dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        if info.min >= 0 and hi <= 255:
            return a.astype(np.float32) / 255.0
        if lo >= 0 and hi <= 65535:
            return a.astype(np.float32) / 65535.0
        return _stretch(a.astype(np.float64))
    return _stretch(a.astype(np.float64))


def _stretch(a: np.ndarray) -> np.ndarray:
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, np.float32)
    lo, hi = float(a[finite].min()), float(a[finite].max())
    out = np.where(finite, a, lo)
    if hi > lo:
        out = (out - lo) / (hi - lo)
    else:
        out = np.zeros_like(out)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# metadata


def _length_um(value: Any, unit: str) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    factor = _UNIT_TO_UM.get(unit.strip().lower().replace("μ", "µ").replace("u", "u"))
    if factor is None and unit.strip() in ("µm", "μm"):
        factor = 1.0
    if factor is None:
        return None
    return float(f"{v * factor:.12g}")  # 1e-7 m -> 0.1 µm, not 0.09999999999999999


def _valid_pixel_size(value: float | None) -> bool:
    return (
        value is not None
        and math.isfinite(value)
        and _PIXEL_SIZE_RANGE_UM[0] <= value <= _PIXEL_SIZE_RANGE_UM[1]
    )


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, bytes):
        return obj.decode("latin-1", "replace")
    return str(obj)


def parse_fei_metadata(meta: dict) -> dict[str, Any]:
    """Pixel size (µm) and image height from FEI/Thermo metadata (tifffile ``fei_metadata``)."""
    out: dict[str, Any] = {"instrument": "FEI/Thermo"}
    scan = meta.get("Scan", {}) or meta.get("EScan", {})
    width_m = scan.get("PixelWidth")
    height_m = scan.get("PixelHeight")
    if width_m is not None:
        out["pixel_size_um"] = _length_um(width_m, "m")
    if height_m is not None:
        out["pixel_height_um"] = _length_um(height_m, "m")
    image = meta.get("Image", {})
    if "ResolutionY" in image:
        try:
            out["image_rows"] = int(image["ResolutionY"])
        except (TypeError, ValueError):
            pass
    system = meta.get("System", {})
    if system.get("SystemType"):
        out["instrument"] = f"FEI/Thermo {system['SystemType']}"
    return out


def parse_zeiss_metadata(meta: dict) -> dict[str, Any]:
    """Pixel size (µm) from Zeiss SmartSEM metadata (tifffile ``sem_metadata``, tag 34118)."""
    out: dict[str, Any] = {"instrument": "Zeiss SmartSEM"}
    for key in ("ap_image_pixel_size", "ap_pixel_size"):
        entry = meta.get(key)
        if isinstance(entry, (tuple, list)) and len(entry) >= 3:
            value = _length_um(entry[1], str(entry[2]))
            if _valid_pixel_size(value):
                out["pixel_size_um"] = value
                break
    for key in ("dp_detector_channel", "dp_detector_type", "ap_mag", "ap_actualkv"):
        if key in meta:
            out[key] = meta[key]
    return out


def parse_sidecar(text: str) -> dict[str, Any]:
    """Pixel size (µm) from a Hitachi or JEOL sidecar ``.txt`` file.

    Hitachi writes ``PixelSize=<nm>`` (and ``DataSize=<cols>x<rows>``); JEOL writes
    ``$$SM_MICRON_BAR <px>`` with ``$$SM_MICRON_MARKER <length><unit>`` and sometimes
    ``$CM_FULL_SIZE <cols> <rows>``.
    """
    out: dict[str, Any] = {}
    if re.search(r"^\s*\$+CM_FORMAT\s+JEOL", text, re.M | re.I) or "$$SM_MICRON_BAR" in text:
        out["instrument"] = "JEOL"
        bar = re.search(r"^\s*\$+SM_MICRON_BAR\s+([\d.]+)", text, re.M)
        marker = re.search(r"^\s*\$+SM_MICRON_MARKER\s+([\d.]+)\s*([a-zA-Zµμ]+)", text, re.M)
        if bar and marker and float(bar.group(1)) > 0:
            length = _length_um(marker.group(1), marker.group(2))
            if length is not None:
                out["pixel_size_um"] = length / float(bar.group(1))
        size = re.search(r"^\s*\$+CM_FULL_SIZE\s+(\d+)\s+(\d+)", text, re.M)
        if size:
            out["image_rows"] = int(size.group(2))
        return out
    pixel = re.search(r"^\s*PixelSize\s*=\s*([\d.eE+-]+)", text, re.M)
    if pixel or re.search(r"^\s*\[SemImageFile\]", text, re.M):
        out["instrument"] = "Hitachi"
        if pixel:
            out["pixel_size_um"] = _length_um(pixel.group(1), "nm")
        size = re.search(r"^\s*DataSize\s*=\s*(\d+)\s*x\s*(\d+)", text, re.M)
        if size:
            out["image_rows"] = int(size.group(2))
        model = re.search(r"^\s*InstructName\s*=\s*(.+)$", text, re.M)
        if model:
            out["instrument"] = f"Hitachi {model.group(1).strip()}"
    return out


def parse_tescan_metadata(text: str) -> dict[str, Any]:
    """Pixel size (µm) and info-strip height from a TESCAN header.

    TESCAN writes ``key=value`` lines (sections ``[MAIN]``, ``[SEM]``, ...) both into TIFF tag
    50431 and into a sidecar ``<stem>-<ext>.hdr``: ``PixelSizeX`` in metres, ``ImageStripSize``
    the rows of the info strip drawn below the image (0 or absent without one) and ``Device``.
    Returns ``{}`` when the text is not such a header.
    """
    def value(key: str) -> str | None:
        found = re.search(rf"^\s*{key}\s*=\s*([^\r\n]*)", text, re.M)
        return found.group(1).strip() if found else None

    pixel = value("PixelSizeX")
    if pixel is None:
        return {}
    out: dict[str, Any] = {"instrument": "TESCAN"}
    device = value("Device")
    if device:
        out["instrument"] = f"TESCAN {device}"
    out["pixel_size_um"] = _length_um(pixel, "m")
    height = value("PixelSizeY")
    if height is not None:
        out["pixel_height_um"] = _length_um(height, "m")
    strip = value("ImageStripSize")
    try:
        if strip is not None and int(float(strip)) >= 0:
            out["strip_rows"] = int(float(strip))
    except ValueError:
        pass
    return out


#: ImageJ ``unit=`` values that name a length, as written by ImageJ/Fiji (``\u00B5m`` escaped).
_IMAGEJ_UNITS = {"micron": "um", "microns": "um", "um": "um", "µm": "um", "μm": "um",
                 "\\u00b5m": "um", "nm": "nm", "nanometer": "nm", "nanometers": "nm",
                 "mm": "mm", "millimeter": "mm", "pm": "pm", "m": "m"}


def parse_imagej_calibration(imagej: dict, x_resolution: Any) -> dict[str, Any]:
    """Pixel size (µm) from an ImageJ/Fiji calibration.

    ImageJ stores the calibration as the TIFF ``XResolution`` (pixels per unit; a rational
    ``(numerator, denominator)`` or a number) with the unit in its own description
    (``unit=micron``). Returns ``{}`` when the unit is not a length (``pixel``, ``inch``, none).
    """
    unit = _IMAGEJ_UNITS.get(str(imagej.get("unit", "")).strip().lower())
    if unit is None:
        return {}
    try:
        if isinstance(x_resolution, (tuple, list)):
            per_unit = float(x_resolution[0]) / float(x_resolution[1])
        else:
            per_unit = float(x_resolution)
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return {}
    if not math.isfinite(per_unit) or per_unit <= 0:
        return {}
    return {"instrument": "ImageJ calibration", "pixel_size_um": _length_um(1.0 / per_unit, unit)}


def _find_tescan_header(path: Path) -> Path | None:
    """TESCAN's sidecar: ``image-tif.hdr`` next to ``image.tif`` (also ``image.hdr``)."""
    for candidate in (path.with_name(f"{path.stem}-{path.suffix.lstrip('.')}.hdr"),
                      path.with_suffix(".hdr")):
        if candidate.is_file():
            return candidate
    return None


def _find_sidecar(path: Path) -> Path | None:
    for candidate in (path.with_suffix(".txt"), path.with_suffix(".TXT"),
                      path.with_name(path.name + ".txt")):
        if candidate.is_file():
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# reading pixels


def _read_tiff(path: Path, max_pixels: int) -> tuple[np.ndarray, dict[str, Any], list[str]]:
    import tifffile

    notes: list[str] = []
    meta: dict[str, Any] = {}
    with tifffile.TiffFile(path) as tif:
        if not tif.pages:
            raise InputError(f"{path}: not a readable TIFF file (it holds no image)")
        page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        _check_size(path, page.shape[:2] if page.ndim >= 2 else page.shape, max_pixels)
        if len(tif.pages) > 1:
            notes.append(f"multi-page TIFF ({len(tif.pages)} pages): the first page was analysed")
        array = page.asarray()
        colormap = page.colormap if int(page.photometric) == 3 else None
        meta["dtype"] = str(array.dtype)
        meta["lossy"] = int(page.compression) in (6, 7, 34892, 50001)  # JPEG, WebP
        if tif.is_fei and tif.fei_metadata:
            meta["fei"] = tif.fei_metadata
        if tif.is_sem and tif.sem_metadata:
            meta["zeiss"] = tif.sem_metadata
        tescan = page.tags.get(50431)
        if tescan is not None and isinstance(tescan.value, (bytes, str)):
            text = (tescan.value.decode("latin-1") if isinstance(tescan.value, bytes)
                    else tescan.value)
            meta["tescan"] = text.replace("\x00", "\n")
        if tif.is_imagej and tif.imagej_metadata and "XResolution" in page.tags:
            meta["imagej"] = (dict(tif.imagej_metadata), page.tags["XResolution"].value)
    if array.ndim > 3 or (array.ndim == 3 and array.shape[-1] not in (1, 2, 3, 4)
                          and array.shape[0] not in (1, 2, 3, 4)):
        raise InputError(f"{path}: image has shape {array.shape}; expected a 2-D grey or RGB image")
    return to_grey(array, colormap=colormap), meta, notes


def _read_other(path: Path, max_pixels: int) -> tuple[np.ndarray, dict[str, Any], list[str]]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, before decoding
    with Image.open(path) as im:
        _check_size(path, (im.size[1], im.size[0]), max_pixels)
        notes = []
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"multi-frame image ({im.n_frames} frames): the first frame was analysed")
        lossy = (im.format or "").upper() in ("JPEG", "MPO", "WEBP")
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode in ("I;16", "I;16B", "I;16L"):
            array = np.asarray(im).astype(np.uint16)
            return to_grey(array), {"dtype": "uint16", "lossy": lossy}, notes
        array = np.asarray(im)
    return to_grey(array), {"dtype": str(array.dtype), "lossy": lossy}, notes


def _check_size(path: Path, shape: tuple[int, ...], max_pixels: int) -> None:
    if len(shape) < 2 or shape[0] < 1 or shape[1] < 1:
        raise InputError(f"{path}: image is empty (shape {tuple(shape)})")
    n = int(shape[0]) * int(shape[1])
    if n > max_pixels:
        raise InputError(
            f"{path}: image is {shape[1]}x{shape[0]} px ({n / 1e6:.0f} Mpx), above the limit of "
            f"{max_pixels / 1e6:.0f} Mpx; raise [io] max_pixels if this is intended"
        )


def read_image(path: str | Path, *, max_pixels: int = 400_000_000) -> tuple[
        np.ndarray, dict[str, Any], list[str]]:
    """Read the pixels of one file as grey float32 in [0, 1].

    Returns
    -------
    image : ndarray of float32, shape (rows, cols)
    meta : dict
        ``dtype`` and, for TIFF, the raw ``fei`` / ``zeiss`` metadata dicts.
    notes : list of str
        Warnings for the user.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    if size == 0:
        raise InputError(f"{path}: file is empty")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    is_tiff = head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    tiff_log = logging.getLogger("tifffile")
    log_level = tiff_log.level
    tiff_log.setLevel(logging.CRITICAL)  # its complaints about broken files become our one line
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if is_tiff:
                return _read_tiff(path, max_pixels)
            return _read_other(path, max_pixels)
    except InputError:
        raise
    except MemoryError as exc:
        raise InputError(f"{path}: image too large to load into memory") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad input
        kind = "TIFF" if is_tiff else "image"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable {kind} file ({reason[:120]})") from exc
    finally:
        tiff_log.setLevel(log_level)


# --------------------------------------------------------------------------------------------
# data bar


#: Grey levels (of 255) by which a data bar's marks (text, ruler) differ from its background.
BAR_MARK_CONTRAST = 96
#: Thickest frame or separator line (rows of one grey other than the bar's) a bar may hold.
FRAME_LINE_MAX_ROWS = 3


def _marks_inside(q: np.ndarray, bar_mode: int) -> bool:
    """Whether a candidate bar holds marks of its own.

    ``q`` holds the bar's rows as grey levels 0-255 with the micrograph's row just above it
    first; marks are pixels more than ``BAR_MARK_CONTRAST`` from the bar's background grey
    ``bar_mode``. Marks 8-connected to marked pixels of that row above continue the micrograph
    (structure crossing the bar's top edge); true if any mark is left without such a link.
    """
    import cv2

    marks = (np.abs(q - bar_mode) > BAR_MARK_CONTRAST).astype(np.uint8)
    n, labels = cv2.connectedComponents(marks, connectivity=8)
    through = np.zeros(n, bool)
    through[labels[0]] = True
    through[0] = True
    return bool((~through[labels[1:]]).any())


def detect_databar(image: np.ndarray, *, max_fraction: float = 0.3, lossy: bool = False) -> int:
    """Number of bottom rows taken by an instrument data bar (0 if none).

    A data bar is a block of rows at the bottom of the frame on a flat background (black for
    FEI/Hitachi/JEOL, white or grey for Zeiss) carrying text or a ruler in the opposite contrast,
    separated from the micrograph by a straight horizontal edge. Flat dark or saturated
    backgrounds below a membrane are not data bars: they carry no high-contrast marks, and marks
    that run on through the bar's top edge (a membrane's edge dipping into such a background)
    are the micrograph's. A flat background directly above a bar is not part of it: a frame line
    of another grey is at most ``FRAME_LINE_MAX_ROWS`` rows, a lossless panel's rows hold its
    grey within 2 levels, and a panel continuing a flat background of its grey ends at its
    frame line. After lossy compression the text's ringing makes taller runs of marked rows.

    Parameters
    ----------
    image : ndarray, shape (rows, cols), grey in [0, 1]
    max_fraction : float
        Largest plausible bar height as a fraction of the image height.
    lossy : bool
        The pixels went through lossy compression (JPEG): a flat panel then keeps its exact
        value only away from the text, so the flatness test is relaxed.

    Returns
    -------
    int
        Rows to remove from the bottom.
    """
    img = np.asarray(image, dtype=np.float32)
    rows, cols = img.shape
    if rows < 32 or cols < 32:
        return 0
    limit = int(rows * max_fraction)
    first = max(0, rows - limit - 8)  # only the bottom of the frame can hold a bar
    q = np.clip(np.rint(img[first:] * 255), 0, 255).astype(np.int32)
    n = q.shape[0]
    hist = np.zeros((n, 256), np.int64)
    np.add.at(hist, (np.repeat(np.arange(n), cols), q.ravel()), 1)
    mode = hist.argmax(axis=1)
    # Instrument panels are flat-filled: most pixels of a bar row hold exactly one grey value.
    # Vacuum or a charging band is smooth but carries shot noise, so few pixels share a value.
    exact = hist[np.arange(n), mode] / cols
    cum = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(hist, axis=1)], axis=1)
    lo = np.clip(mode - 8, 0, 256)
    hi = np.clip(mode + 9, 0, 256)
    near = (cum[np.arange(n), hi] - cum[np.arange(n), lo]) / cols
    # marks at > ~0.38 contrast
    far_frac = (np.abs(q - mode[:, None]) > BAR_MARK_CONTRAST).mean(axis=1)
    # share of the unmarked pixels that hold exactly the modal value: ~1 on a panel
    flat = exact / np.maximum(1.0 - far_frac, 1e-9)

    def at(r: int) -> int:  # row of the frame -> row of the arrays above
        return r - first

    bottom = np.arange(max(0, n - max(4, limit // 4)), n)
    min_flat = 0.75 if lossy else 0.9
    panel = bottom[flat[bottom] >= min_flat]
    if panel.size == 0:
        return 0
    # The bar's background grey: the most common modal value of the flat bottom rows.
    bar_mode = int(np.bincount(mode[panel], minlength=256).argmax())
    gap = 0
    top = rows
    text_top = None
    # a panel is flat-filled with one grey (a saturated background a few levels brighter is not
    # the panel); compression spreads it
    grey_tolerance = 12 if lossy else 2
    # rows of text in a row: compression rings around the marks, so after it a line of text
    # and its halo read as one tall run of marked rows
    max_gap = max(12, limit // 6) if lossy else 12
    lines: list[int] = []  # frame lines of another grey met on the way up
    line_run = 0
    r = rows - 1
    while r >= rows - limit:
        i = at(r)
        same_bg = abs(int(mode[i]) - bar_mode) <= grey_tolerance
        if same_bg and flat[i] >= min_flat:
            top = r  # bar background
            gap = line_run = 0
            if far_frac[i] > 0.002:
                text_top = r
        elif exact[i] >= 0.9:
            # a frame or separator line of another grey is a few rows thick; a longer run of
            # flat rows of one other grey is a flat (saturated) background above the bar
            same_line = line_run > 0 and mode[i] == mode[i + 1]
            line_run = line_run + 1 if same_line else 1
            if line_run > FRAME_LINE_MAX_ROWS:
                top = r + line_run
                break
            lines.append(r)
            top = r
            gap = 0
        elif ((same_bg and near[i] >= 0.25) or r >= rows - 3) and gap < max_gap:
            gap += 1  # a row dense with text, or an odd last row of the frame
            if same_bg and far_frac[i] > 0.002:
                text_top = r
        else:
            break
        r -= 1
    if text_top is None:
        return 0  # flat background without marks: not a data bar
    # A bar's margin above its topmost mark is small compared with the marked part; flat
    # rows further up are a digitally clipped background, not the bar.
    text_span = rows - text_top
    top = max(top, text_top - max(8, int(0.6 * text_span)))
    height = rows - top
    if height < max(4, int(0.01 * rows)) or height > limit:
        return 0
    # Marks of a bar lie inside it. Dark or bright structure that runs on through the bar's top
    # edge is the micrograph: a membrane's edge dipping into a flat (saturated) background at the
    # foot of the frame, which passes every test above.
    if not _marks_inside(q[at(top) - 1:], bar_mode):
        return 0
    # The bar must differ from the micrograph directly above it (a straight edge).
    above = img[max(0, top - 8):top]
    if above.size == 0:
        return 0
    above_exact = exact[at(max(first, top - 8)):at(top)].mean() if top > first else 0.0
    if above_exact > 0.9 and abs(float(np.median(above)) * 255.0 - bar_mode) <= grey_tolerance:
        # the "bar" continues a flat background of its grey: a panel whose top edge is a frame
        # line above its marks (a flat saturated background on it) ends at that line; without
        # one it is no instrument panel
        edge = [line for line in lines if top <= line < text_top]
        if not edge:
            return 0
        return rows - max(edge)
    return int(height)


# --------------------------------------------------------------------------------------------
# the loader


def load_micrograph(
    path: str | Path,
    pixel_size_um: float | None = None,
    *,
    detect_bar: bool = True,
    max_pixels: int = 400_000_000,
    detect_labels: bool = True,
    scale_bar_um: float | None = None,
) -> Micrograph:
    """Load an SEM micrograph, its pixel size and its data bar.

    Parameters
    ----------
    path : str or Path
        TIFF, PNG, JPEG or BMP file. A Hitachi/JEOL sidecar ``<stem>.txt`` or a TESCAN sidecar
        ``<stem>-<ext>.hdr`` next to it is read.
    pixel_size_um : float, optional
        Pixel size in µm given by the caller. It overrides the file's metadata (the source is
        then ``caller``); use it for files without metadata.
    detect_bar : bool
        Detect a data bar when no metadata says where it is.
    max_pixels : int
        Refuse files whose header declares more pixels than this, before allocating.
    detect_labels : bool
        Find labels burned into the frame (scale bars, text boxes) so the analysis can leave
        them out (:func:`pipeline.burnin.detect_annotations`).
    scale_bar_um : float or "auto", optional
        The length (µm) the scale bar drawn in the data bar or in a burned-in label states; the
        pixel size is then this over the bar's measured length (:mod:`pipeline.scalebar`;
        source ``scale_bar``). ``"auto"``: the length read from the bar's label
        (:func:`pipeline.scalebar.read_scale_bar_label`; an error when it cannot be read). It
        overrides the metadata; ``pixel_size_um`` overrides it. The bar found and its label as
        read are recorded in ``metadata["scale_bar"]`` whether or not this is given.

    Returns
    -------
    Micrograph

    Raises
    ------
    InputError
        Unreadable file, not an image, empty image or invalid pixel size.
    """
    path = Path(path)
    grey, raw_meta, notes = read_image(path, max_pixels=max_pixels)
    rows, cols = grey.shape
    metadata: dict[str, Any] = {"dtype": raw_meta.get("dtype")}
    found: dict[str, Any] = {}
    source = "unknown"
    if "fei" in raw_meta:
        found = parse_fei_metadata(raw_meta["fei"])
        source = "fei_metadata"
        metadata["instrument_metadata"] = _jsonable(
            {k: raw_meta["fei"].get(k) for k in ("System", "Beam", "Scan", "Image", "Detectors")
             if k in raw_meta["fei"]})
    elif "zeiss" in raw_meta:
        found = parse_zeiss_metadata(raw_meta["zeiss"])
        source = "zeiss_metadata"
        metadata["instrument_metadata"] = _jsonable(
            {k: v for k, v in found.items() if k.startswith(("ap_", "dp_"))})
    elif "tescan" in raw_meta and (tescan := parse_tescan_metadata(raw_meta["tescan"])):
        found, source = tescan, "tescan_metadata"
    else:
        found, source = _sidecar_metadata(path, metadata)
    if not found and "imagej" in raw_meta:
        found = parse_imagej_calibration(*raw_meta["imagej"])
        if found:
            source = "imagej_calibration"
    if found.get("strip_rows") is not None and found["strip_rows"] < rows:
        found["image_rows"] = rows - found["strip_rows"]
    if found.get("instrument"):
        metadata["instrument"] = found["instrument"]

    file_pixel = found.get("pixel_size_um")
    if file_pixel is not None and not _valid_pixel_size(file_pixel):
        notes.append(f"metadata pixel size {file_pixel!r} µm is not plausible and was ignored")
        file_pixel = None
    if file_pixel is not None:
        metadata["metadata_pixel_size_um"] = float(file_pixel)
        height = found.get("pixel_height_um")
        if height is not None and _valid_pixel_size(height) and \
                abs(height / file_pixel - 1) > NON_SQUARE_TOLERANCE:
            # every length here assumes square pixels: say how far off the rows are
            notes.append(f"pixels are not square in the metadata ({file_pixel:.6g} µm wide, "
                         f"{height:.6g} µm high): lengths across the rows are off by "
                         f"{100 * (height / file_pixel - 1):+.1f} %; resample the image to "
                         "square pixels for exact numbers")

    if pixel_size_um is not None:
        try:
            pixel_size_um = float(pixel_size_um)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: pixel size {pixel_size_um!r} is not a number") from exc
        if not _valid_pixel_size(pixel_size_um):
            raise InputError(
                f"{path}: pixel size {pixel_size_um} µm is not plausible (give it in µm, > 0)")
        px, source = pixel_size_um, "caller"
    elif file_pixel is not None:
        px = float(file_pixel)
    else:
        px, source = None, "unknown"

    databar_rows, bar_source = 0, "none"
    image_rows = found.get("image_rows")
    if image_rows is not None and 0 < image_rows <= rows:
        # the metadata says where the image ends: trust it, also when that is the last row
        databar_rows, bar_source = rows - int(image_rows), ("metadata" if image_rows < rows
                                                            else "none")
    elif detect_bar:
        detected = detect_databar(grey, lossy=raw_meta.get("lossy", False))
        if detected:
            databar_rows, bar_source = detected, "detected"
    if databar_rows >= rows:
        databar_rows, bar_source = 0, "none"
    image = np.ascontiguousarray(grey[: rows - databar_rows])
    labels = _labels(image, detect_labels, lossy=raw_meta.get("lossy", False))
    bar, bar_reason = _scale_bar(grey, databar_rows, labels)
    if bar is not None:
        label_um, text = _bar_label(grey, bar, databar_rows, labels)
        bar = dataclasses.replace(bar, label=text or None, label_um=label_um)
        metadata["scale_bar"] = bar.as_dict()
    if scale_bar_um is not None:
        px, source = _pixel_size_from_bar(path, scale_bar_um, bar, bar_reason, px, source,
                                          file_pixel, notes)
    return Micrograph(
        image=image,
        pixel_size_um=px,
        pixel_size_source=source,
        databar_rows=int(databar_rows),
        databar_source=bar_source,
        raw_shape=(rows, cols),
        metadata=metadata,
        path=str(path),
        warnings=notes,
        annotations_px=labels,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _sidecar_metadata(path: Path, metadata: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """What a Hitachi/JEOL ``.txt`` or a TESCAN ``.hdr`` next to ``path`` says, and its source
    name (``unknown`` and ``{}`` without one); records the sidecar's path in ``metadata``."""
    sidecar = _find_sidecar(path)
    if sidecar is not None:
        found = parse_sidecar(_read_text(sidecar))
        if found:
            metadata["sidecar"] = str(sidecar)
            return found, ("jeol_sidecar" if found.get("instrument", "").startswith("JEOL")
                           else "hitachi_sidecar")
    header = _find_tescan_header(path)
    if header is not None:
        found = parse_tescan_metadata(_read_text(header))
        if found:
            metadata["sidecar"] = str(header)
            return found, "tescan_sidecar"
    return {}, "unknown"


def _scale_bar(frame: np.ndarray, databar_rows: int, labels: list) -> tuple[Any, str]:
    from .scalebar import find_scale_bar

    try:
        return find_scale_bar(frame, databar_rows, labels)
    except (ValueError, MemoryError) as exc:  # a search that fails must not fail the load
        return None, f"scale bar search failed ({exc})"


def _bar_label(frame: np.ndarray, bar: Any, databar_rows: int, labels: list
               ) -> tuple[float | None, str]:
    from .scalebar import read_scale_bar_label

    try:
        return read_scale_bar_label(frame, bar, databar_rows, labels)
    except (ValueError, OSError, MemoryError):  # reading must not fail the load
        return None, ""


def _pixel_size_from_bar(path: Path, scale_bar_um: float | str, bar: Any, reason: str,
                         px: float | None, source: str, file_pixel: float | None,
                         notes: list[str]) -> tuple[float | None, str]:
    """The pixel size a scale bar of ``scale_bar_um`` (or ``"auto"``: of the length its label
    reads) gives, unless the caller gave one."""
    auto = isinstance(scale_bar_um, str) and scale_bar_um.strip().lower() == "auto"
    if not auto:
        try:
            length_um = float(scale_bar_um)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: scale bar length {scale_bar_um!r} is not a number") from exc
        if not (math.isfinite(length_um) and length_um > 0):
            raise InputError(f"{path}: scale bar length {scale_bar_um} µm is not a positive "
                             "length")
    if source == "caller":
        return px, source
    if bar is None:
        given = ("the scale bar's label was to be read" if auto
                 else f"a scale bar of {length_um:g} µm was given")
        raise InputError(f"{path}: {given} but {reason}; give the pixel size instead "
                         "(--pixel-size)")
    if auto:
        if bar.label_um is None:
            raise InputError(
                f"{path}: the label of the {bar.kind} drawn in it ({bar.length_px:.0f} px) could "
                f"not be read (read {bar.label or 'nothing'!r}); give the length it states with "
                "--scale-bar-um UM")
        length_um = bar.label_um
    from_bar = length_um / bar.length_px
    if not _valid_pixel_size(from_bar):
        raise InputError(f"{path}: {length_um:g} µm over the {bar.length_px:.0f} px scale bar "
                         f"gives {from_bar:g} µm/px, which is not plausible")
    if file_pixel is not None and abs(from_bar / file_pixel - 1) > 0.03:
        notes.append(f"the scale bar ({length_um:g} µm over {bar.length_px:.1f} px) gives "
                     f"{from_bar:.6g} µm/px, the file's metadata {file_pixel:.6g} µm/px: the "
                     "scale bar's was used")
    return float(f"{from_bar:.8g}"), "scale_bar"


def _labels(image: np.ndarray, detect: bool, *, lossy: bool = False
            ) -> list[tuple[int, int, int, int]]:
    if not detect:
        return []
    from .burnin import detect_annotations

    return detect_annotations(image, lossy=lossy)


def from_array(
    image: np.ndarray,
    pixel_size_um: float | None = None,
    *,
    databar_rows: int | None = 0,
    detect_labels: bool = True,
) -> Micrograph:
    """Wrap an in-memory array as a :class:`Micrograph`.

    ``databar_rows=None`` detects a data bar; an int removes that many bottom rows.
    ``detect_labels`` finds labels burned into the frame (see :func:`load_micrograph`).
    """
    grey = to_grey(image)
    rows = grey.shape[0]
    source = "none"
    if databar_rows is None:
        databar_rows = detect_databar(grey)
        source = "detected" if databar_rows else "none"
    elif databar_rows:
        source = "caller"
    if pixel_size_um is not None and not _valid_pixel_size(float(pixel_size_um)):
        raise InputError(f"<array>: pixel size {pixel_size_um} µm is not plausible")
    kept = np.ascontiguousarray(grey[: rows - int(databar_rows)])
    return Micrograph(
        image=kept,
        pixel_size_um=None if pixel_size_um is None else float(pixel_size_um),
        pixel_size_source="caller" if pixel_size_um is not None else "unknown",
        databar_rows=int(databar_rows),
        databar_source=source,
        raw_shape=grey.shape,
        metadata={"dtype": str(np.asarray(image).dtype)},
        path=None,
        annotations_px=_labels(kept, detect_labels),
    )


def is_image_file(path: str | Path) -> bool:
    """True for files with an image suffix sempore reads."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
