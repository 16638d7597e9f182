"""Smallest pore each segmentation method resolves, against the beam blur of the image.

    python benchmarks/bench_resolution.py [--seeds 2] [--blurs 0.5 1 2 3 4]

For each blur sigma (px; :func:`pipeline.synthetic.render`'s ``blur_px``, applied before the
noise) renders uniform sponge phantoms (both surfaces, 512 x 768, rim width 2 px) of a pore size
below each method's resolution limit (``floor`` column: topographic 6 px, dark 3 px) and of a
resolvable size (topographic 16 px, dark 8 px), segments them with that method inside the true
membrane and prints, per blur, the median local thickness (diameter, px) of the found pores and of
the true pores, the Dice of the resolvable size, and the floor in units of the
``details["resolution_limit_px"]`` the segmentation reports (a value above 1 means the report
understates the limit). The found size of pores below the limit is the floor: whatever their true
size, pores are reported about that large.

This measures what :data:`pipeline.segment.RESOLUTION_LIMIT_PX` documents (the limits were
measured at blur 1 px): the floor grows with the blur (the two rims of a pore merge into one
crest sooner; in the dark method, narrow pores fade below the class midpoint).
"""

from __future__ import annotations

import argparse

import numpy as np

from pipeline.segment import segment_pores
from pipeline.size import local_thickness
from pipeline.synthetic import make_membrane_phantom

SIZES_PX = {"topographic": (6, 16), "dark": (3, 8)}


def median_size_px(mask: np.ndarray, region: np.ndarray) -> float:
    """Median local thickness (px) over the pore pixels of ``mask`` inside ``region``."""
    sel = mask & region
    if not sel.any():
        return float("nan")
    return float(np.median(local_thickness(mask)[sel]))


def measure(method: str, size_px: float, blur_px: float, seed: int) -> dict[str, float]:
    """Segment one phantom; return found and true median size (px), Dice and reported limit."""
    ph = make_membrane_phantom(
        (512, 768), pixel_size_um=0.1, pore_size_um=size_px * 0.1, morphology="sponge",
        rendering="topographic" if method == "topographic" else "dark",
        background="bright" if method == "topographic" else "dark", surfaces="both",
        seed=seed, blur_px=blur_px, rim_width_px=2.0, databar=False)
    truth, region = ph.pore_mask, ph.membrane_mask
    image = ph.image[: truth.shape[0]].astype(np.float32)
    seg = segment_pores(image, region, method=method)
    found, true = seg.mask & region, truth & region
    dice = 2.0 * np.count_nonzero(found & true) / max(np.count_nonzero(found)
                                                      + np.count_nonzero(true), 1)
    return {"found_px": median_size_px(seg.mask, region), "true_px": median_size_px(truth, region),
            "dice": float(dice), "limit_px": float(seg.details["resolution_limit_px"])}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--blurs", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0, 4.0])
    args = ap.parse_args(argv)
    for method, (small, large) in SIZES_PX.items():
        print(f"\n### {method} (sponge, rim width 2 px, {args.seeds} seeds)\n")
        print(f"| blur sigma px | floor: {small} px pores found as px | "
              f"{large} px pores found as px | Dice at {large} px | reported limit px | "
              "floor / reported limit |")
        print("|---|---|---|---|---|---|")
        for blur in args.blurs:
            lo = [measure(method, small, blur, s) for s in range(args.seeds)]
            hi = [measure(method, large, blur, s) for s in range(args.seeds)]
            floor = float(np.mean([r["found_px"] for r in lo]))
            limit = lo[0]["limit_px"]
            print(f"| {blur:g} | {floor:.1f} (true {np.mean([r['true_px'] for r in lo]):.1f}) | "
                  f"{np.mean([r['found_px'] for r in hi]):.1f} "
                  f"(true {np.mean([r['true_px'] for r in hi]):.1f}) | "
                  f"{np.mean([r['dice'] for r in hi]):.3f} | {limit:g} | {floor / limit:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
