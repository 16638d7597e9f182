"""Segmentation against the shot noise of the image.

    python benchmarks/bench_noise.py [--seeds 2] [--shots 0.05 0.1 0.2 0.3 0.45]

For each shot-noise level (:func:`pipeline.synthetic.render`'s ``shot_noise``: standard deviation
``shot_noise * sqrt(I)`` at grey level I; the phantoms of benchmarks/ACCURACY.md use 0.05, real
micrographs in ``../shared/real`` read quieter still) renders uniform phantoms (both surfaces,
512 x 768, blur 1 px) and segments them inside the true membrane:

* topographic renderings (sponge, closed cells, spheres; 16-px pores) with the basin smoothing
  fixed at 0.7 px and with the noise-adapted smoothing of
  :func:`pipeline.segment.noise_adapted_smoothing_px` (the default), and with ``method="auto"``;
* dark renderings (sponge, 8-px pores) with ``method="auto"``.

Prints, per level, the relative noise ``r`` (:func:`pipeline.segment.relative_noise`: noise
sigma of the flattened image over the separation of its two grey classes, at 0.7 px: what the
adaptation reads), the smoothing used, the Dice of each variant,
the median local thickness found (true in brackets, px) and which method ``auto`` chose
(``t``/``d`` per seed).
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from pipeline.segment import BASIN_SMOOTHING_PX, relative_noise, segment_pores, topographic_basins
from pipeline.size import local_thickness
from pipeline.synthetic import make_membrane_phantom

PIXEL_UM = 0.1
CASES = (("topographic", "sponge", 16), ("topographic", "cells", 16),
         ("topographic", "spheres", 16), ("dark", "sponge", 8))


def _dice(found: np.ndarray, truth: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(found & truth) / max(np.count_nonzero(found)
                                                       + np.count_nonzero(truth), 1)


def _median_size_px(mask: np.ndarray, region: np.ndarray) -> float:
    sel = mask & region
    return float(np.median(local_thickness(mask)[sel])) if sel.any() else float("nan")


def _mean(runs: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in runs]))


def measure(rendering: str, morphology: str, size_px: float, shot: float,
            seed: int) -> dict[str, float | str]:
    """Segment one phantom with each variant; Dice, relative noise, smoothing and sizes."""
    ph = make_membrane_phantom(
        (512, 768), pixel_size_um=PIXEL_UM, pore_size_um=size_px * PIXEL_UM,
        morphology=morphology, rendering=rendering,
        background="bright" if rendering == "topographic" else "dark", surfaces="both",
        seed=seed, databar=False, shot_noise=shot)
    truth, region = ph.pore_mask & ph.membrane_mask, ph.membrane_mask
    image = ph.image[: truth.shape[0]].astype(np.float32)
    basins = topographic_basins(image, region)
    out: dict[str, float | str] = {
        "r": relative_noise(basins, region),
        "true_px": _median_size_px(truth, region)}
    auto = segment_pores(image, region, PIXEL_UM)
    out.update(auto_dice=_dice(auto.mask, truth), auto_method=auto.method[0])
    if rendering == "topographic":
        fixed = segment_pores(image, region, PIXEL_UM, method="topographic",
                              smoothing_um=BASIN_SMOOTHING_PX * PIXEL_UM)
        adapted = segment_pores(image, region, PIXEL_UM, method="topographic")
        out.update(fixed_dice=_dice(fixed.mask, truth), adapted_dice=_dice(adapted.mask, truth),
                   sigma=float(adapted.details["smoothing_px"]),
                   fixed_px=_median_size_px(fixed.mask, region),
                   adapted_px=_median_size_px(adapted.mask, region))
    else:
        out.update(auto_px=_median_size_px(auto.mask, region))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--shots", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3, 0.45])
    args = ap.parse_args(argv)
    for rendering, morphology, size in CASES:
        print(f"\n### {rendering} {morphology}, {size} px pores ({args.seeds} seeds)\n")
        if rendering == "topographic":
            print("| shot noise | relative noise r | smoothing px | Dice at 0.7 px | "
                  "Dice adapted | size px at 0.7 / adapted (true) | Dice auto | auto chose |")
            print("|---|---|---|---|---|---|---|---|")
        else:
            print("| shot noise | relative noise r | Dice auto | size px (true) | auto chose |")
            print("|---|---|---|---|---|")
        for shot in args.shots:
            rs = [measure(rendering, morphology, size, shot, s) for s in range(args.seeds)]
            mean = partial(_mean, rs)
            chose = "".join(str(r["auto_method"]) for r in rs)
            if rendering == "topographic":
                print(f"| {shot:g} | {mean('r'):.3f} | {mean('sigma'):.2f} | "
                      f"{mean('fixed_dice'):.3f} | {mean('adapted_dice'):.3f} | "
                      f"{mean('fixed_px'):.1f} / {mean('adapted_px'):.1f} "
                      f"({mean('true_px'):.1f}) | {mean('auto_dice'):.3f} | {chose} |",
                      flush=True)
            else:
                print(f"| {shot:g} | {mean('r'):.3f} | {mean('auto_dice'):.3f} | "
                      f"{mean('auto_px'):.1f} ({mean('true_px'):.1f}) | {chose} |", flush=True)


if __name__ == "__main__":
    main()
