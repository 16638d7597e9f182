"""How well the topographic method's own doubt predicts its error (the review note).

    python benchmarks/bench_review.py [--first 12 --last 99] [--kinds] [--threshold 0.2]

For every topographic rendering among ``pipeline.synthetic.random_phantom`` seeds FIRST..LAST
(and, with ``--kinds``, seed 0 of the topographic kinds of ``benchmarks/ACCURACY.md``, as
``bench_size_bias.py`` renders them), saves the
image, runs :func:`pipeline.analyze` on the file as a user would, and compares the segmentation's
``details["ambiguous_fraction"]`` (share of the membrane in basins whose pore probability is in
0.25-0.75) with its pore Dice against the truth. Prints one line per image, then one markdown row:
Spearman correlation, how many images the review note (share > threshold) marks, how many miss
the Dice target of 0.90, how many of those it marks, and the mean Dice of marked and unmarked
images. Images ``auto`` segments with the dark method have no share and are left out.

The table in benchmarks/ACCURACY.md ("How sure the topographic method is") was measured with
``--first 12 --last 99 --kinds`` (where the threshold was chosen) and ``--first 100 --last 229``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_size_bias import saved_rendering, topographic_kinds  # noqa: E402

from pipeline import analyze  # noqa: E402
from pipeline.analysis import REVIEW_AMBIGUOUS_FRACTION  # noqa: E402
from pipeline.synthetic import random_phantom  # noqa: E402

from _accuracy import dice_in_membrane, truth_from_phantom  # noqa: E402


def measure(path: Path, pixel_size_um: float | None, truth) -> tuple[float, float] | None:
    """(ambiguous share, Dice) of one analysed file; None when it was not segmented
    topographically."""
    a = analyze(path, pixel_size_um)
    share = a.segmentation.details.get("ambiguous_fraction")
    if a.segmentation.method != "topographic" or share is None:
        return None
    return float(share), dice_in_membrane(a.segmentation.mask, truth)


def images(first: int, last: int, kinds: bool, workdir: Path):
    """(name, path, pixel size, truth) of the renderings to measure."""
    for seed in range(first, last + 1):
        ph = random_phantom(seed)
        if ph.truth["rendering"] != "topographic":
            continue
        path = workdir / f"random{seed}.tif"
        ph.save(path)
        yield f"random {seed} ({ph.truth['morphology']})", path, None, truth_from_phantom(ph)
    if kinds:
        for group, kind in topographic_kinds():
            sub = workdir / kind
            sub.mkdir()
            yield (kind, *saved_rendering(group, kind, 0, sub))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=int, default=12)
    ap.add_argument("--last", type=int, default=99)
    ap.add_argument("--kinds", action="store_true",
                    help="also seed 0 of the topographic accuracy kinds")
    ap.add_argument("--threshold", type=float, default=REVIEW_AMBIGUOUS_FRACTION)
    args = ap.parse_args(argv)
    shares, dices = [], []
    with tempfile.TemporaryDirectory(prefix="sempore-review-") as tmp:
        for name, path, pixel, truth in images(args.first, args.last, args.kinds, Path(tmp)):
            got = measure(path, pixel, truth)
            if got is None:
                print(f"{name}: segmented with the dark method, left out", flush=True)
                continue
            shares.append(got[0])
            dices.append(got[1])
            print(f"{name}: ambiguous {got[0]:.3f}, Dice {got[1]:.3f}", flush=True)
    share, dice = np.array(shares), np.array(dices)
    if share.size < 2:
        print("fewer than two topographic images")
        return
    noted, low = share > args.threshold, dice < 0.90

    def mean(x: np.ndarray) -> str:
        return f"{x.mean():.3f}" if x.size else "–"

    print("\n| n | Spearman (ambiguous share, Dice) | noted | Dice < 0.90 | noted and < 0.90 "
          "| mean Dice noted / not |\n|---|---|---|---|---|---|")
    print(f"| {share.size} | {spearmanr(share, dice).correlation:.2f} | {noted.sum()} "
          f"| {low.sum()} | {(noted & low).sum()} | {mean(dice[noted])} / {mean(dice[~noted])} |")


if __name__ == "__main__":
    main()
