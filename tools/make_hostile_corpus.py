"""Write the hostile-input corpus of tests/data/hostile/ (deterministic).

    python tools/make_hostile_corpus.py

Each file is a way real folders break image tools: empty, random or truncated bytes, wrong
extensions, degenerate shapes and values, odd dtypes, multi-page files, absurd metadata and a
header declaring 200000 x 200000 pixels. ``expected.json`` records, per file, whether sempore
should analyse it (``ok``) or refuse it with one clear line (``failed``) when a pixel size is
given on the command line, and a word the message must contain.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "hostile"


def membrane_image(rows: int = 160, cols: int = 200, seed: int = 0) -> np.ndarray:
    """A small valid cross-section (dark background above a porous band), uint8."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.standard_normal((rows, cols)), 3)
    img = np.where(field < np.quantile(field, 0.45), 0.25, 0.8)
    img = img + 0.03 * rng.standard_normal((rows, cols))
    img[:30] = 0.05 + 0.01 * rng.standard_normal((30, cols))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def tiff_with_header(width: int, height: int) -> bytes:
    """A minimal little-endian TIFF declaring width x height 8-bit pixels, with no pixel data."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, max(height, 1)),
               (279, 4, 1, 1)]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHII", tag, typ, count, value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rng = np.random.default_rng(2026)
    good = membrane_image()
    expected: dict[str, dict[str, str]] = {}

    def put(name: str, data: bytes, outcome: str, word: str = "") -> None:
        (OUT / name).write_bytes(data)
        expected[name] = {"outcome": outcome, "message_contains": word}

    # unreadable bytes
    put("empty.tif", b"", "failed", "empty")
    put("random_bytes.png", rng.bytes(4096), "failed", "not a readable")
    put("random_after_tiff_magic.tif", b"II*\x00" + rng.bytes(2048), "failed", "not a readable")
    valid_tiff = io.BytesIO()
    tifffile.imwrite(valid_tiff, good)
    put("truncated.tif", valid_tiff.getvalue()[:3000], "failed", "")
    put("truncated.png", png_bytes(good)[:1500], "failed", "truncated")
    jpg = io.BytesIO()
    Image.fromarray(good).save(jpg, format="JPEG", quality=90)
    put("truncated.jpg", jpg.getvalue()[: len(jpg.getvalue()) // 3], "failed", "truncated")
    put("text_named.png", b"this is a lab notebook entry, not an image\n" * 20, "failed",
        "not a readable")
    put("html_named.jpg", b"<html><body>404 Not Found</body></html>", "failed", "not a readable")
    # wrong extensions on valid images: read by content
    put("png_named.tif", png_bytes(good), "ok")
    put("jpeg_named.bmp", jpg.getvalue(), "ok")
    (OUT / "folder_named_like_image.tif").mkdir()
    (OUT / "folder_named_like_image.tif" / ".keep").write_text("a folder, not an image\n")
    expected["folder_named_like_image.tif"] = {"outcome": "skipped", "message_contains": ""}
    # degenerate shapes and values
    put("one_pixel.png", png_bytes(np.array([[128]], np.uint8)), "failed", "too small")
    put("thin_3x2000.png", png_bytes(rng.integers(0, 255, (3, 2000), dtype=np.uint8)), "failed",
        "too small")
    put("thin_2000x3.png", png_bytes(rng.integers(0, 255, (2000, 3), dtype=np.uint8)), "failed",
        "too small")
    put("constant_black.png", png_bytes(np.zeros((200, 300), np.uint8)), "failed", "membrane")
    put("constant_white.png", png_bytes(np.full((200, 300), 255, np.uint8)), "failed",
        "membrane")
    # odd dtypes
    f = good.astype(np.float32) / 255
    f[5, 5], f[6, 6], f[7, 7] = np.nan, np.inf, -np.inf
    buf = io.BytesIO()
    tifffile.imwrite(buf, f)
    put("float32_nan_inf.tif", buf.getvalue(), "ok")
    for name, arr in (("int32.tif", good.astype(np.int32) * 1000 - 50_000),
                      ("int16_signed.tif", good.astype(np.int16) - 128),
                      ("uint16_full_range.tif", good.astype(np.uint16) * 257),
                      ("uint16_8bit_x256.tif", good.astype(np.uint16) * 256),
                      ("float64_constant.tif", np.full((120, 150), 3.5))):
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr)
        put(name, buf.getvalue(), "failed" if "constant" in name else "ok",
            "membrane" if "constant" in name else "")
    buf = io.BytesIO()
    tifffile.imwrite(buf, good > 128)
    put("bool.tif", buf.getvalue(), "ok")
    rgba = np.dstack([good, good, good, np.full_like(good, 200)])
    put("rgba.png", png_bytes(rgba), "ok")
    put("grey_alpha.png", png_bytes(np.dstack([good, np.full_like(good, 255)]), "LA"), "ok")
    buf = io.BytesIO()
    Image.fromarray(good).convert("P").save(buf, format="TIFF")
    put("palette.tif", buf.getvalue(), "ok")
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.stack([good, good[::-1], good[:, ::-1]]), photometric="minisblack")
    put("multipage.tif", buf.getvalue(), "ok")
    buf = io.BytesIO()
    tifffile.imwrite(buf, rng.integers(0, 255, (2, 3, 40, 40), dtype=np.uint8),
                     photometric="minisblack")
    # pure noise pages: read (first page, with a warning), then no membrane in it
    put("four_dimensional.tif", buf.getvalue(), "failed", "membrane")
    # absurd metadata: the caller's pixel size is used, the file's is ignored with a warning
    for name, pixel_m in (("fei_pixel_zero.tif", 0.0), ("fei_pixel_negative.tif", -1.3e-7),
                          ("fei_pixel_absurd_unit.tif", 134.896)):
        put(name, fei_tiff_bytes(good, pixel_m), "ok")
    (OUT / "hitachi_bad_sidecar.bmp").write_bytes(_bmp_bytes(good))
    (OUT / "hitachi_bad_sidecar.txt").write_text("[SemImageFile]\nPixelSize=abc\n")
    expected["hitachi_bad_sidecar.bmp"] = {"outcome": "ok", "message_contains": ""}
    # refuse before allocating
    put("header_200000x200000.tif", tiff_with_header(200_000, 200_000), "failed", "limit")
    put("header_zero_width.tif", tiff_with_header(0, 100), "failed", "")
    # a valid control
    put("valid_control.png", png_bytes(good), "ok")
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    n = sum(1 for p in OUT.iterdir() if p.name != "expected.json")
    print(f"wrote {n} entries to {OUT}")


def _bmp_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="BMP")
    return buf.getvalue()


def fei_tiff_bytes(image: np.ndarray, pixel_width_m: float) -> bytes:
    """An 8-bit TIFF with an FEI/Thermo metadata block (tag 34682) holding ``pixel_width_m``."""
    rows, cols = image.shape
    text = ("[System]\nSystemType=Hostile corpus\n[Scan]\n"
            f"PixelWidth={pixel_width_m}\nPixelHeight={pixel_width_m}\n"
            f"[Image]\nResolutionX={cols}\nResolutionY={rows}\n")
    buf = io.BytesIO()
    tifffile.imwrite(buf, image, extratags=[(34682, "s", 0, text, True)])
    return buf.getvalue()


if __name__ == "__main__":
    main()
