"""Labels burned into the frame (scale bars, text boxes): found, and what they cost when not.

For phantoms of both renderings (`pipeline.synthetic`, one surface in view, the membrane running
to the bottom of the frame) a label is drawn by `tests/heldout.py` `burn_label` (a black or
white box holding text and a bar, or a bar with its text above it; Pillow's or OpenCV's font;
scales 0.7-2; a bottom corner, over the membrane). Each image is analysed with label detection on
(the default) and off, and the depth bins the label lies in are scored against the truth masks
over the pixels the analysis measured (the worst bin's |porosity error| and |pore-size ratio -
1|, bins within 5-95 % of the span). The same images without the label give the reference. Then the
false-label rate on images without labels: random phantoms of every rendering and the held-out
renderings of tests/heldout.py (written to files and loaded, JPEG included).

    python benchmarks/bench_labels.py [--seeds N] [--random N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pipeline import analyze  # noqa: E402
from pipeline.burnin import annotation_mask, detect_annotations  # noqa: E402
from pipeline.io import load_micrograph, read_image  # noqa: E402
from pipeline.profile import depth_profile  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.synthetic import make_membrane_phantom, random_phantom  # noqa: E402

from heldout import HELDOUT_KINDS, burn_label, heldout_image  # noqa: E402

STYLES = [  # style, box level, scale, font
    ("box", 0, 1.0, "pil"),
    ("box", 255, 1.5, "hershey"),
    ("box", 0, 2.0, "hershey"),
    ("bar", 0, 0.7, "pil"),
    ("bar", 0, 1.5, "pil"),
]


def profile_errors(a, ph, rows: tuple[int, int]) -> tuple[float, float]:
    """Largest |porosity error| and |pore-size ratio - 1| of ``a``'s profile against the truth
    over the pixels ``a`` measured, among the bins holding image rows ``rows`` (where the label
    lies) and inside 5-95 % of the span."""
    region = a.membrane.mask & ph.membrane_mask
    truth = depth_profile(ph.pore_mask & region, region, a.membrane.depth_px,
                          np.where(region, ph.local_thickness_px, 0), a.pixel_size_um,
                          bin_width_um=float(a.profile.depth_hi_um.iloc[0]
                                             - a.profile.depth_lo_um.iloc[0]))
    n = min(len(truth), len(a.profile))
    p, t = a.profile.iloc[:n], truth.iloc[:n]
    span = float(t.depth_hi_um.iloc[-1])
    depth = a.membrane.depth_px[rows[0]:rows[1]] * a.pixel_size_um
    lo, hi = float(np.nanmin(depth)), float(np.nanmax(depth))
    ok = (p.reliable.values & t.reliable.values & (t.depth_um.values >= 0.05 * span)
          & (t.depth_um.values <= 0.95 * span) & (t.depth_hi_um.values > lo)
          & (t.depth_lo_um.values <= hi))
    por = float(np.abs(p.porosity.values - t.porosity.values)[ok].max())
    size = float(np.abs(p.pore_size_um.values / t.pore_size_um.values - 1)[ok].max())
    return por, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="phantoms per rendering")
    ap.add_argument("--random", type=int, default=40, help="random phantoms for false labels")
    args = ap.parse_args()
    off = Settings()
    off = dataclasses.replace(off, io=dataclasses.replace(off.io, detect_labels=False))
    t_start = time.perf_counter()
    rows = []
    for rendering in ("dark", "topographic"):
        for seed in range(args.seeds):
            ph = make_membrane_phantom((512, 768), rendering=rendering, seed=seed, databar=False)
            grey = np.round(ph.grey * 255).astype(np.uint8)
            px = ph.pixel_size_um
            plain = analyze(grey / 255.0, pixel_size_um=px)
            for k, (style, level, scale, font) in enumerate(STYLES):
                rng = np.random.default_rng([seed, k])
                corner = "br" if (seed + k) % 2 == 0 else "bl"
                img, drawn = burn_label(grey, rng, style=style, corner=corner, scale=scale,
                                        box_level=level, font=font)
                on = analyze(img / 255.0, pixel_size_um=px)
                no = analyze(img / 255.0, pixel_size_um=px, settings=off)
                found = annotation_mask(drawn.shape, on.micrograph.annotations_px)
                inside = drawn & ph.membrane_mask
                r = np.nonzero(drawn.any(axis=1))[0]
                under = (int(r.min()), int(r.max()) + 1)
                rows.append(dict(rendering=rendering, style=f"{style} {level} x{scale} {font}",
                                 covered=float(found[inside].mean()) if inside.any() else 1.0,
                                 ref=profile_errors(plain, ph, under),
                                 on=profile_errors(on, ph, under),
                                 off=profile_errors(no, ph, under)))
    print(f"Labels over the membrane ({len(rows)} images, 512 x 768, 0.1 µm/px); the worst "
          "depth bin among those the label lies in, against the truth: |porosity error| / "
          "|size ratio - 1|\n")
    print("| rendering | label | drawn pixels covered | no label | detection on | detection off |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        def fmt(v):
            return f"{v[0]:.3f} / {100 * v[1]:.1f} %"
        print(f"| {r['rendering']} | {r['style']} | {r['covered']:.3f} | {fmt(r['ref'])} | "
              f"{fmt(r['on'])} | {fmt(r['off'])} |")
    for rendering in ("dark", "topographic"):
        sel = [r for r in rows if r["rendering"] == rendering]
        mean = {k: np.mean([r[k] for r in sel], axis=0) for k in ("ref", "on", "off")}
        print(f"| {rendering} mean | | {np.mean([r['covered'] for r in sel]):.3f} | "
              + " | ".join(f"{mean[k][0]:.3f} / {100 * mean[k][1]:.1f} %"
                           for k in ("ref", "on", "off")) + " |")

    false = []
    for seed in range(args.random):
        if detect_annotations(random_phantom(seed).grey):
            false.append(f"random {seed}")
    n_files = 0
    with tempfile.TemporaryDirectory() as tmp:
        for kind in HELDOUT_KINDS:
            for seed in range(3):
                path, px = heldout_image(kind, seed).save(tmp)
                m = load_micrograph(path, px)
                n_files += 1
                if detect_annotations(m.image, lossy=read_image(path)[1].get("lossy", False)):
                    false.append(f"{kind} {seed}")
    print(f"\nFalse labels on images without one: {len(false)} of {args.random + n_files} "
          f"({args.random} random phantoms, {n_files} held-out files){': ' if false else ''}"
          + ", ".join(false))
    print(f"\n{time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
