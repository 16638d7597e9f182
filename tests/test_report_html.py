"""report.html: self-contained, and it renders in a real browser (headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from pipeline.batch import run

from _phantoms import simple_membrane

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or \
    shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html")
    src = tmp / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(simple_membrane(seed=20 + i)).save(src / f"m{i}.png")
    (src / "bad.png").write_bytes(b"garbage")
    run([src], tmp / "out", pixel_size_um=0.1, workers=1)
    return tmp / "out"


def test_report_is_self_contained(batch):
    page = (batch / "report.html").read_text()
    assert "2 of 3 images analysed" in page
    # every picture is embedded: no reference to files next to the page
    sources = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert len(sources) >= 5  # 2 overlays, 2 profiles, the all-profiles plot
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "bad.png" in page and "failed" in page
    # where each pixel size came from (here the caller's --pixel-size)
    assert page.count("pixel size from") == 2 and "caller" in page


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian package chromium)")
def test_report_renders_in_headless_chromium(batch, tmp_path):
    url = (batch / "report.html").resolve().as_uri()
    profile = tmp_path / "chrome-profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "2 of 3 images analysed" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1200,1600", url],
                   capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file()
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # the page is not blank: text, the summary table and the plots' coloured lines show
    assert pixels.std() > 20
    orange = (pixels[..., 0] > 200) & (pixels[..., 1] > 100) & (pixels[..., 1] < 180) & \
        (pixels[..., 2] < 80)
    assert orange.sum() > 50, "the profile plots (orange curves) did not render"


def test_report_shows_the_method_and_the_notes(tmp_path):
    """Each image's section names the segmentation method (with auto's P(topographic)) and
    lists what the analysis flagged, escaped."""
    import json

    from pipeline.report import summary_row, write_html_report

    folder = tmp_path / "a"
    folder.mkdir()
    result = {"segmentation": {"method": "topographic", "details": {"p_topographic": 0.61}},
              "notes": ["segmentation method uncertain: auto chose topographic <check>"]}
    (folder / "result.json").write_text(json.dumps(result))
    row = summary_row(result, image="a.tif", result_dir=str(folder))
    page = write_html_report(tmp_path, [row]).read_text()
    assert "topographic (auto, P(topographic) 0.61)" in page
    assert '<ul class="notes"><li>segmentation method uncertain: auto chose topographic ' \
           "&lt;check&gt;</li></ul>" in page


def test_method_label_says_what_overruled_the_classifier():
    """``auto``'s label names the classifier's P(topographic) and, when the verdict went the
    other way, the evidence that overruled it."""
    from pipeline.report import method_label

    def result(method, **details):
        return {"segmentation": {"method": method, "details": details}}

    assert method_label(result("dark")) == "dark"
    assert method_label({}) is None
    assert method_label(result("topographic", p_topographic=0.82)) == (
        "topographic (auto, P(topographic) 0.82)")
    overruled = result("dark", p_topographic=0.75, auto_porosity_check={
        "topographic_porosity": 0.62, "dark_porosity": 0.18})
    assert method_label(overruled) == ("dark (auto, P(topographic) 0.75, overruled: topographic "
                                       "porosity 0.62 vs dark 0.18)")
    # the check ran and agreed: nothing overruled
    kept = result("topographic", p_topographic=0.9, auto_porosity_check={
        "topographic_porosity": 0.5, "dark_porosity": 0.4})
    assert method_label(kept) == "topographic (auto, P(topographic) 0.90)"
    rings = result("topographic", p_topographic=0.2, bright_ring_fraction=0.81)
    assert method_label(rings) == ("topographic (auto, P(topographic) 0.20, overruled: closed "
                                   "bright rims 0.81)")
    skin = result("topographic", p_topographic=0.3, bright_ring_fraction=0.1,
                  surface_layer_check={"dark": 1.0, "topographic": 0.06})
    assert method_label(skin) == ("topographic (auto, P(topographic) 0.30, overruled: the dark "
                                  "mask called the layer under the surface pore (1.00))")
    # a dark verdict the ring test did not overrule
    assert method_label(result("dark", p_topographic=0.2, bright_ring_fraction=0.1)) == (
        "dark (auto, P(topographic) 0.20)")
