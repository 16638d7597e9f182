"""Accuracy across pore size and porosity: where the methods hold and where they break.

    python benchmarks/bench_scale.py [--sizes 12 24 48 96] [--porosities 0.25 0.5 0.7]
                                     [--rendering dark topographic] [--method auto]

The accuracy kinds (benchmarks/ACCURACY.md) and the random phantoms (bench_random.py) draw pores of
4-48 px at porosities 0.35-0.8. Real cross-sections go beyond both: macrovoids of a hundred pixels
and more, dense layers with a few isolated pores. For every morphology (sponge, cells, spheres),
pore size (px), porosity and rendering, a ``pipeline.synthetic`` membrane (768 x 1024 px, 0.1
µm/px, both surfaces in view, uniform pore size) is saved as an FEI TIFF, analysed from the file by
:func:`pipeline.analyze` (``--method``: ``auto`` or a forced method) and scored with
``tests/_accuracy.py`` (Dice inside the membrane, porosity-profile MAE, median pore-size-profile
error against the generating mask). Prints one line per phantom, then a table per rendering:
the share of phantoms meeting every target and the mean pore-size error, per size and porosity,
and how often ``auto`` chose the rendering's method.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pipeline import analyze  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.synthetic import make_membrane_phantom  # noqa: E402

from _accuracy import failures, score, truth_from_phantom  # noqa: E402

MORPHOLOGIES = ("sponge", "cells", "spheres")


def run_one(morphology: str, size_px: float, porosity: float, rendering: str, method: str,
            workdir: Path) -> dict:
    """Render, save, analyse and score one phantom."""
    seed = int(size_px + 100 * porosity)
    ph = make_membrane_phantom((768, 1024), pixel_size_um=0.1, pore_size_um=size_px * 0.1,
                               porosity=porosity, morphology=morphology, rendering=rendering,
                               surfaces="both", profile="uniform", seed=seed)
    path = workdir / f"{morphology}-{size_px:g}-{porosity:g}-{rendering}.tif"
    ph.save(path)
    settings = None if method == "auto" else Settings().replace(segment={"method": method})
    analysis = analyze(path, None, settings)
    m = score(analysis, truth_from_phantom(ph))
    return {"morphology": morphology, "size_px": size_px, "porosity": porosity,
            "rendering": rendering, "method": analysis.segmentation.method,
            "dice": m["dice"], "porosity_mae": m["porosity_mae"],
            "size_err": m["size_med_rel_err"], "missed": failures(m)}


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def table(runs: list[dict], rendering: str, sizes: list[float], porosities: list[float]) -> str:
    """Markdown: per size (rows) and porosity (columns), phantoms meeting every target out of
    the morphologies, and the mean pore-size error over them."""
    head = "| pores (px) | " + " | ".join(f"porosity {p:g}" for p in porosities) + " |"
    lines = [f"**{rendering}** (targets met / phantoms; mean pore-size error; Dice worst)", "",
             head, "|---|" + "---|" * len(porosities)]
    for s in sizes:
        cells = []
        for p in porosities:
            sel = [r for r in runs if r["rendering"] == rendering and r["size_px"] == s
                   and r["porosity"] == p]
            if not sel:
                cells.append("–")
                continue
            ok = sum(not r["missed"] for r in sel)
            err = [r["size_err"] for r in sel if _finite(r["size_err"])]
            size = f"{np.mean(err):.0%}" if err else "–"
            cells.append(f"{ok}/{len(sel)}; {size}; {min(r['dice'] for r in sel):.2f}")
        lines.append(f"| {s:g} | " + " | ".join(cells) + " |")
    sel = [r for r in runs if r["rendering"] == rendering]
    right = sum(r["method"] == rendering for r in sel)
    lines += ["", f"method of the rendering chosen on {right}/{len(sel)}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[12, 24, 48, 96])
    ap.add_argument("--porosities", nargs="+", type=float, default=[0.25, 0.5, 0.7])
    ap.add_argument("--rendering", nargs="+", default=["dark", "topographic"],
                    choices=["dark", "topographic"])
    ap.add_argument("--method", default="auto", choices=["auto", "dark", "topographic"])
    args = ap.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rendering in args.rendering:
            for morphology in MORPHOLOGIES:
                for size in args.sizes:
                    for porosity in args.porosities:
                        r = run_one(morphology, size, porosity, rendering, args.method,
                                    Path(tmp))
                        runs.append(r)
                        print(f"{rendering:11s} {morphology:8s} {size:5g} px porosity "
                              f"{porosity:4g}: method {r['method']:11s} Dice {r['dice']:.3f} "
                              f"porosity MAE {r['porosity_mae']:.3f} size err "
                              f"{r['size_err']:.3f}"
                              + (f"  missed: {'; '.join(r['missed'])}" if r["missed"] else ""),
                              flush=True)
    print()
    for rendering in args.rendering:
        print(table(runs, rendering, args.sizes, args.porosities))
        print()


if __name__ == "__main__":
    main()
