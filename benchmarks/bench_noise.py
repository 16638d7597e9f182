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

``--rule-study`` instead segments 85 topographic renderings of three renderers (this module's
phantoms at 6 / 10 / 16 px and shot noise 0.05-0.3; tests/test_segment.py's renderer at 6-24 px
and 120 / 30 / 8 photons; the topographic kinds of benchmarks/ACCURACY.md at their own noise and
at 0.2 / 0.3; the fingers example image) at basin smoothings of 0.7-1.4 px and scores the rule
of :func:`pipeline.segment.noise_adapted_smoothing_px` against other thresholds and ramps, the
relative noise over the crest contrast instead, 1.4 px everywhere and the best sigma per image
(about 5 min here): how ``NOISY_Q_RATIO`` and ``NOISY_Q_RAMP`` were chosen.

Prints, per level, the relative noise ``r`` (:func:`pipeline.segment.relative_noise`: noise
sigma of the flattened image over the separation of its two grey classes, at 0.7 px: what the
adaptation reads), the smoothing used, the Dice of each variant,
the median local thickness found (true in brackets, px) and which method ``auto`` chose
(``t``/``d`` per seed).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import numpy as np
from bench_resolution import median_size_px

from pipeline.segment import BASIN_SMOOTHING_PX, relative_noise, segment_pores, topographic_basins
from pipeline.synthetic import make_membrane_phantom

PIXEL_UM = 0.1
CASES = (("topographic", "sponge", 16), ("topographic", "cells", 16),
         ("topographic", "spheres", 16), ("dark", "sponge", 8))


def _dice(found: np.ndarray, truth: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(found & truth) / max(np.count_nonzero(found)
                                                       + np.count_nonzero(truth), 1)


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
    auto = segment_pores(image, region, PIXEL_UM)
    # auto reads the relative noise whichever method it then uses
    out: dict[str, float | str] = {
        "r": auto.details["relative_noise"], "true_px": median_size_px(truth, region),
        "auto_dice": _dice(auto.mask, truth), "auto_method": auto.method[0]}
    if rendering == "topographic":
        fixed = segment_pores(image, region, PIXEL_UM, method="topographic",
                              smoothing_um=BASIN_SMOOTHING_PX * PIXEL_UM)
        adapted = (auto if auto.method == "topographic" else
                   segment_pores(image, region, PIXEL_UM, method="topographic"))
        out.update(fixed_dice=_dice(fixed.mask, truth), adapted_dice=_dice(adapted.mask, truth),
                   sigma=float(adapted.details["smoothing_px"]),
                   fixed_px=median_size_px(fixed.mask, region),
                   adapted_px=median_size_px(adapted.mask, region))
    else:
        out.update(auto_px=median_size_px(auto.mask, region))
    return out


STUDY_SIGMAS_PX = (0.7, 0.85, 1.0, 1.2, 1.4)


def _study_cases():
    """(name, image, truth, region) of the rule study's renderings, one at a time."""
    repo = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(repo / "tests"), str(repo / "benchmarks")]
    from skimage.io import imread
    from test_segment import _case

    from pipeline import analyze
    from pipeline.io import load_micrograph

    from _accuracy import synthetic_phantom

    for morphology in ("sponge", "cells", "spheres"):
        for size in (6, 10, 16):
            for shot in (0.05, 0.1, 0.2, 0.3):
                ph = make_membrane_phantom(
                    (512, 768), pixel_size_um=PIXEL_UM, pore_size_um=size * PIXEL_UM,
                    morphology=morphology, rendering="topographic", background="bright",
                    surfaces="both", seed=0, databar=False, shot_noise=shot)
                region = ph.membrane_mask
                yield (f"synthetic {morphology} {size} px, shot {shot:g}",
                       ph.image[: region.shape[0]].astype(np.float32),
                       ph.pore_mask & region, region)
    for morphology in ("sponge", "cells", "spheres"):
        for size in (6, 8, 12, 24):
            for photons in (120, 30, 8):
                img, pore, region = _case(morphology, "topographic", size, 1,
                                          photons=float(photons))
                yield f"test renderer {morphology} {size} px, {photons} photons", img, pore, region
    for kind in ("fingers-topo-both", "sponge-topo-minimum-top-tilt",
                 "cells-topo-uniform-both-tilt", "spheres-topo-gradient-top-debris"):
        for shot in (None, 0.2, 0.3):
            ph = synthetic_phantom(kind, 0, **({} if shot is None else {"shot_noise": shot}))
            region = ph.membrane_mask
            yield (f"{kind}, shot {shot or 'own'}", ph.image[: region.shape[0]].astype(np.float32),
                   ph.pore_mask & region, region)
    name = repo / "example_images" / "phantom_tilted_fingers_debris"
    micrograph = load_micrograph(name.with_suffix(".tif"))
    region = analyze(micrograph).membrane.mask
    image = micrograph.image[: region.shape[0]].astype(np.float32)
    truth = imread(name.with_suffix(".pores.png"))[: region.shape[0]] > 0
    yield "example image phantom_tilted_fingers_debris", image, truth & region, region


def rule_study() -> None:
    """Dice of every study case at each smoothing, then the mean gain of each rule."""
    from pipeline.segment import (
        NOISY_MAX_EDGE_WIDTH_PX,
        NOISY_Q_RAMP,
        NOISY_Q_RATIO,
        threshold_edge_width_px,
    )

    rows = []
    print("| case | relative noise | over crest contrast | edge width px | Dice at "
          + " / ".join(f"{s:g}" for s in STUDY_SIGMAS_PX) + " px |")
    print("|---|---|---|---|---|")
    for name, image, truth, region in _study_cases():
        basins = topographic_basins(image, region)
        dice = [_dice(segment_pores(image, region, 1.0, method="topographic",
                                    smoothing_um=s).mask & region, truth)
                for s in STUDY_SIGMAS_PX]
        row = {"rel": relative_noise(basins, region),
               "crest": basins["noise_q"] / max(basins["calibration"]["contrast"], 1e-12),
               "width": threshold_edge_width_px(basins["sample_image"],
                                                basins["sample_region"]),
               "dice": np.array(dice)}
        rows.append(row)
        print(f"| {name} | {row['rel']:.3f} | {row['crest']:.3f} | {row['width']:.2f} | "
              + " / ".join(f"{d:.3f}" for d in dice) + " |", flush=True)

    def score(measure: str, threshold: float, ramp: float) -> str:
        gains = []
        for r in rows:
            sigma = (STUDY_SIGMAS_PX[0] if r["width"] > NOISY_MAX_EDGE_WIDTH_PX else
                     STUDY_SIGMAS_PX[0] * (1 + min(max((r[measure] - threshold) / ramp, 0), 1)))
            gains.append(np.interp(sigma, STUDY_SIGMAS_PX, r["dice"]) - r["dice"][0])
        g = np.array(gains)
        return (f"mean Dice gain {g.mean():+.4f}, worst {g.min():+.3f}, "
                f"losses > 0.02: {(g < -0.02).sum()}, gains > 0.02: {(g > 0.02).sum()}")

    print(f"\n{len(rows)} renderings; Dice against a fixed {STUDY_SIGMAS_PX[0]} px:\n")
    best = np.mean([r["dice"].max() - r["dice"][0] for r in rows])
    always = np.mean([r["dice"][-1] - r["dice"][0] for r in rows])
    print(f"- best sigma per image: {best:+.4f}; {STUDY_SIGMAS_PX[-1]} px everywhere: "
          f"{always:+.4f}")
    print(f"- shipped rule (relative noise, threshold {NOISY_Q_RATIO}, ramp {NOISY_Q_RAMP}): "
          + score("rel", NOISY_Q_RATIO, NOISY_Q_RAMP))
    for threshold in (0.15, 0.20, 0.25):
        for ramp in (0.07, 0.10, 0.15):
            print(f"- relative noise, threshold {threshold}, ramp {ramp}: "
                  + score("rel", threshold, ramp))
    print("- over the crest contrast, threshold 0.14, ramp 0.07 (the first rule): "
          + score("crest", 0.14, 0.07))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--shots", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3, 0.45])
    ap.add_argument("--rule-study", action="store_true",
                    help="score the noise-adaptation rule on 85 renderings instead")
    args = ap.parse_args(argv)
    if args.rule_study:
        rule_study()
        return
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
