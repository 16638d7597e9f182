"""Regenerate the pictures of README.md from the example images (deterministic).

    python tools/make_readme_figures.py

Writes docs/images/example_overlay.jpg (micrograph with pores, surface and the minimum-pore
layer), docs/images/example_profile.png (porosity and pore size against depth) and
docs/images/hitachi_overlay.jpg (the real Hitachi cross-section).
"""

from __future__ import annotations

from pathlib import Path

import cv2

from pipeline import analyze
from pipeline.report import _figure_png, overlay_image, profile_figure

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "images"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    phantom = analyze(REPO / "example_images" / "phantom_sponge_internal_minimum_dark.tif")
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 88]
    cv2.imwrite(str(OUT / "example_overlay.jpg"),
                overlay_image(phantom, max_side_px=900)[..., ::-1], jpeg)
    (OUT / "example_profile.png").write_bytes(_figure_png(profile_figure(phantom)))
    real = analyze(REPO / "example_images" / "polymer_membrane_xsection_hitachi.bmp")
    cv2.imwrite(str(OUT / "hitachi_overlay.jpg"),
                overlay_image(real, max_side_px=900)[..., ::-1], jpeg)
    print(f"wrote 3 pictures to {OUT}")


if __name__ == "__main__":
    main()
