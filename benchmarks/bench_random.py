"""Whole-pipeline accuracy on random phantoms: every rendering parameter drawn at random.

    python benchmarks/bench_random.py [--seeds 12 48] [--rendering dark topographic]

``pipeline.synthetic.random_phantom(seed)`` draws the morphology, rendering, pore size, porosity,
rim, blur, noise, drift, tilt, background, depth profile and pixel size of one phantom (FEI TIFF
with metadata). Each is saved, analysed by :func:`pipeline.analyze` from the file, as a user would,
and scored with ``tests/_accuracy.py`` (``score`` and ``failures``: the targets of
benchmarks/ACCURACY.md). The slow test ``tests/test_end_to_end.py::test_random_phantom`` runs
seeds 0-11; the default here, 12-47, are seeds that test does not run. Prints one line per
phantom (Dice, porosity-profile MAE, pore-size-profile error, the method ``auto`` chose and the
targets missed) and a summary per rendering: how many meet every target, Dice median and worst,
and how often ``auto`` chose the method matching the rendering.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pipeline import analyze  # noqa: E402
from pipeline.synthetic import random_phantom  # noqa: E402

from _accuracy import failures, score, truth_from_phantom  # noqa: E402


def run_one(seed: int, workdir: Path, renderings: list[str]) -> dict | None:
    """Render, save, analyse and score random phantom ``seed``; None (not analysed) when its
    rendering is not one of ``renderings``."""
    ph = random_phantom(seed)
    if ph.truth["rendering"] not in renderings:
        return None
    path = workdir / f"random-s{seed}.tif"
    ph.save(path)
    analysis = analyze(path)
    metrics = score(analysis, truth_from_phantom(ph))
    return {"seed": seed, "morphology": ph.truth["morphology"],
            "rendering": ph.truth["rendering"], "method": analysis.segmentation.method,
            "dice": metrics["dice"], "porosity_mae": metrics["porosity_mae"],
            "size_err": metrics["size_med_rel_err"], "missed": failures(metrics)}


def summary(runs: list[dict], rendering: str) -> str:
    """One line: targets met, Dice median / worst and ``auto``'s choice for ``rendering``."""
    sel = [r for r in runs if r["rendering"] == rendering]
    if not sel:
        return f"{rendering}: no phantoms"
    dice = np.array([r["dice"] for r in sel])
    ok = sum(not r["missed"] for r in sel)
    right = sum(r["method"] == rendering for r in sel)
    return (f"{rendering}: {ok}/{len(sel)} meet every target; Dice median {np.median(dice):.3f}, "
            f"worst {dice.min():.3f}; auto chose {rendering} on {right}/{len(sel)}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs=2, type=int, default=[12, 48], metavar=("FIRST", "STOP"),
                    help="seeds FIRST .. STOP-1 (default 12 48)")
    ap.add_argument("--rendering", nargs="+", default=["dark", "topographic"],
                    choices=["dark", "topographic"], help="renderings to report")
    args = ap.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(*args.seeds):
            r = run_one(seed, Path(tmp), args.rendering)
            if r is None:
                continue
            runs.append(r)
            print(f"seed {seed:3d} {r['morphology']:8s} {r['rendering']:12s} "
                  f"method {r['method']:12s} Dice {r['dice']:.3f} porosity MAE "
                  f"{r['porosity_mae']:.3f} size err {r['size_err']:.3f}"
                  + (f"  missed: {'; '.join(r['missed'])}" if r["missed"] else ""), flush=True)
    print()
    for rendering in args.rendering:
        print(summary(runs, rendering))


if __name__ == "__main__":
    main()
