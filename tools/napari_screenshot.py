"""Render the sempore napari plugin on a real micrograph and save a screenshot of the window.

    python tools/napari_screenshot.py [--image PATH] [--out docs/images/napari_plugin.png]

Opens a real napari viewer (under Xvfb when there is no display: the script re-runs itself
through ``xvfb-run``), reads the micrograph with the sempore reader (pixel size from its
metadata or sidecar, data bar removed), adds the sempore docks, runs the analysis in the
plugin's thread worker, shows the local-thickness layer and saves the whole window
(``viewer.screenshot(canvas_only=False)``). The picture is checked to hold a rendered canvas
(not a black frame) before it is written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO / "example_images" / "polymer_membrane_xsection_hitachi.bmp"
DEFAULT_OUT = REPO / "docs" / "images" / "napari_plugin.png"


def _rerun_under_xvfb() -> int:
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        sys.exit("no display and no xvfb-run: apt-get install xvfb xauth (see docs/napari.md)")
    env = dict(os.environ, SEMPORE_SCREENSHOT_CHILD="1")
    cmd = [xvfb_run, "-a", "-s", "-screen 0 1920x1200x24", sys.executable, *sys.argv]
    return subprocess.call(cmd, env=env)


def _process_until(condition, timeout_s: float) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the analysis did not finish in time")
        QApplication.processEvents()
        time.sleep(0.02)


def canvas_is_rendered(shot, canvas) -> bool:
    """True when the screenshot holds a rendered micrograph: the canvas region is neither one
    flat colour nor black."""
    import numpy as np

    grey = np.asarray(canvas, float)[..., :3].mean(axis=-1)
    return bool(grey.std() > 10 and np.mean(grey > 20) > 0.2 and np.asarray(shot).std() > 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(DEFAULT_IMAGE))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--size", default="1680x1050", help="window size WxH in px")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("SEMPORE_SCREENSHOT_CHILD"):
        return _rerun_under_xvfb()

    import napari
    import numpy as np
    from PIL import Image

    from plugins.napari_sempore._session import get_session
    from plugins.napari_sempore._widget import add_sempore_docks, open_micrograph

    width, height = (int(v) for v in args.size.split("x"))
    viewer = napari.Viewer(title="sempore", show=True)
    viewer.window._qt_window.resize(width, height)
    docks = add_sempore_docks(viewer)
    _process_until(lambda: True, 1)
    layer = open_micrograph(viewer, args.image)
    docks["analysis"].select_layer(layer)
    session = get_session(viewer)
    t0 = time.perf_counter()
    if docks["analysis"].run() is None:
        print(docks["analysis"].status.text(), file=sys.stderr)
        return 1
    _process_until(lambda: session.analysis is not None, 600)
    print(f"analysis in {time.perf_counter() - t0:.1f} s")
    session.layers["local_thickness"].visible = True
    session.layers["local_thickness"].opacity = 0.7
    session.layers["pores"].contour = 1  # pore outlines over the local-thickness colours
    session.layers["pores"].opacity = 0.9
    viewer.scale_bar.visible = True
    viewer.reset_view()
    _process_until(lambda: not session.busy, 60)
    for _ in range(20):
        from qtpy.QtWidgets import QApplication

        QApplication.processEvents()
        time.sleep(0.05)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    if not canvas_is_rendered(shot, canvas):
        print("the screenshot shows no rendered canvas (black or flat); not saved",
              file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(shot)[..., :3]).save(out, optimize=True)
    print(f"wrote {out} ({shot.shape[1]}x{shot.shape[0]} px)")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
