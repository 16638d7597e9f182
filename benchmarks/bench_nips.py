"""Macrovoids and dense skins (NIPS structures) against their truth.

    python benchmarks/bench_nips.py [--seeds 3] [--random 40]

Prints three markdown tables (the numbers quoted in the README rows of ``pipeline.macrovoids``
and the skin criterion of ``pipeline.structure``):

1. **Macrovoids** of the ``fingers`` accuracy kinds (tests/_accuracy.py) and the held-out NIPS
   rendering (tests/heldout.py): count, median length and width through ``pipeline.analyze``
   against the same definition on the true masks, and, for pipeline.synthetic, the designed
   fingers (``Phantom.truth["macrovoids"]``).
2. **Skins** of 1 and 2.5 µm on both surfaces of sponge, closed-cell and finger phantoms, both
   renderings: ``criteria.skin_thickness_um`` / ``opposite_skin_thickness_um`` against the
   design.
3. **False calls** on ``pipeline.synthetic.random_phantom`` seeds 0..N-1: macrovoids where the
   true masks have none, skins where the truth has none resolved (< 3 px).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pipeline import analyze, synthetic  # noqa: E402
from pipeline.io import from_array  # noqa: E402
from pipeline.macrovoids import find_macrovoids  # noqa: E402
from pipeline.structure import skin_criteria  # noqa: E402

from _accuracy import skinned_phantom, synthetic_phantom  # noqa: E402
from heldout import heldout_image  # noqa: E402


def _truth_voids(pore, depth, lt, px, span_px):
    return find_macrovoids(pore, depth, lt, px, span_px=span_px)[0]


def _median(table, key):
    return float(table[key].median()) if len(table) else float("nan")


def macrovoid_rows(seeds: int) -> list[str]:
    rows = ["| image | designed | true masks | pipeline | median length µm (true / found) "
            "| median width µm (true / found) |", "|---|---|---|---|---|---|"]
    for kind in ("fingers-dark-top-tilt", "fingers-topo-both"):
        for seed in range(seeds):
            ph = synthetic_phantom(kind, seed)
            span = (ph.truth.get("thickness_um") or ph.truth["visible_span_um"]) / ph.pixel_size_um
            truth = _truth_voids(ph.pore_mask, ph.membrane().depth_px, ph.local_thickness_px,
                                 ph.pixel_size_um, span)
            found = analyze(ph.grey.astype(np.float32), pixel_size_um=ph.pixel_size_um)
            found = found.macrovoids()[0]
            rows.append(f"| {kind} s{seed} | {len(ph.truth['macrovoids'])} | {len(truth)} | "
                        f"{len(found)} | {_median(truth, 'length_um'):.1f} / "
                        f"{_median(found, 'length_um'):.1f} | {_median(truth, 'width_um'):.2f} / "
                        f"{_median(found, 'width_um'):.2f} |")
    for seed in range(seeds):
        h = heldout_image("nips-se-top-charging-zeiss", seed)
        t = h.truth
        truth = _truth_voids(t.pore_mask, t.depth_px, t.local_thickness_px, h.pixel_size_um,
                             t.span_px)
        a = analyze(from_array(h.image, h.pixel_size_um, databar_rows=t.databar_rows))
        found = a.macrovoids()[0]
        rows.append(f"| nips-se (held out) s{seed} | – | {len(truth)} | {len(found)} | "
                    f"{_median(truth, 'length_um'):.1f} / {_median(found, 'length_um'):.1f} | "
                    f"{_median(truth, 'width_um'):.2f} / {_median(found, 'width_um'):.2f} |")
    return rows


def skin_rows() -> list[str]:
    rows = ["| morphology | rendering | designed µm | method | found µm (reference / opposite) |",
            "|---|---|---|---|---|"]
    for morphology in ("sponge", "cells", "fingers"):
        for rendering in ("dark", "topographic"):
            for skin in (1.0, 2.5):
                ph = skinned_phantom(morphology, rendering, skin)
                a = analyze(ph.grey.astype(np.float32), pixel_size_um=0.1)
                c = a.criteria
                rows.append(f"| {morphology} | {rendering} | {skin} | {a.segmentation.method} | "
                            f"{c['skin_thickness_um']:.2f} / "
                            f"{c['opposite_skin_thickness_um']:.2f} |")
    return rows


def false_call_rows(n: int) -> list[str]:
    voids_truth = voids_found = skins_false = skins_scored = images = 0
    for seed in range(n):
        ph = synthetic.random_phantom(seed)
        if ph.truth["reference_surface"] == "none":
            continue
        a = analyze(ph.grey.astype(np.float32), pixel_size_um=ph.pixel_size_um)
        if a.criteria is None:
            continue
        images += 1
        px = ph.pixel_size_um
        if ph.truth["morphology"] != "fingers":
            span = (ph.truth.get("thickness_um") or ph.truth["visible_span_um"]) / px
            voids_truth += len(_truth_voids(ph.pore_mask, ph.membrane().depth_px,
                                            ph.local_thickness_px, px, span)) > 0
            voids_found += len(a.macrovoids()[0]) > 0
        truth = skin_criteria(ph.pore_mask, ph.membrane(), px, a.criteria["interior_porosity"])
        for key in ("skin_thickness_um", "opposite_skin_thickness_um"):
            if truth[key] == 0.0 and a.criteria[key] is not None:
                skins_scored += 1
                skins_false += a.criteria[key] > 0
    return ["| random phantoms | images with macrovoids: true masks / pipeline (fingers left out) "
            "| skins found where the truth has none resolved |", "|---|---|---|",
            f"| {images} (seeds 0-{n - 1}) | {voids_truth} / {voids_found} | "
            f"{skins_false} of {skins_scored} surfaces |"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--random", type=int, default=40)
    args = ap.parse_args()
    t0 = time.perf_counter()
    for title, rows in (("Macrovoids", macrovoid_rows(args.seeds)), ("Skins", skin_rows()),
                        ("False calls", false_call_rows(args.random))):
        print(f"\n### {title}\n")
        print("\n".join(rows))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
