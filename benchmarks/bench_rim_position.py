"""Where the bright rim lies relative to the pore edge, and what that does to the segmentation.

    python benchmarks/bench_rim_position.py [--seeds 2] [--quick]

An SEM's bright pore rim may be an edge glow on the polymer that starts at the edge (``outside``),
a bright wall sloping down into the pore (``inside``) or both in about equal parts (``centred``,
how :mod:`pipeline.synthetic` draws it). ``tests/heldout.py`` ``render_rim_position`` draws the
same pore fields (``pipeline.synthetic.pore_field``: sponge 12 px, spheres 14 px, cells 20 px)
with the rim at each place, rims 1 and 2.5 px wide, blur 0.7 and 1.2 px, and the methods are run
on them with ``method`` forced to the rendering's style (dark: rims 0.15, 0.3 and 0.5 above the
polymer, pores 0.12, polymer 0.6; topographic: rims 0.4, face 0.42). Scored inside the frame less
10 px: Dice, porosity and mean local thickness of the found pores over the true ones. The dark
method is also run without its rim-position check (``RIM_OFFSET_RSS_RATIO`` = 0, the rim taken as
centred whatever the fit says): the ``Dice w/o check`` column, measured in the same run. The other
method and ``auto`` are run too: the Dice of ``auto``'s choice, of the better of the two methods,
and how often the choice costs more than 0.05. Prints one markdown table, mean (min-max) over the
renderings of each row.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import pipeline.segment._dark as dark_stage  # noqa: E402
from pipeline.segment import segment_pores  # noqa: E402
from pipeline.size import local_thickness  # noqa: E402
from pipeline.synthetic import pore_field  # noqa: E402

from heldout import RIM_POSITIONS, render_rim_position  # noqa: E402

MORPHOLOGIES = {"sponge": (12, 0.5), "spheres": (14, 0.5), "cells": (20, 0.7)}
RIM_LEVELS = {"dark": (0.15, 0.3, 0.5), "topographic": (0.4,)}


def _core(shape: tuple[int, int], margin_px: int = 10) -> np.ndarray:
    """The frame less ``margin_px`` on every side (where the renderings are scored)."""
    core = np.zeros(shape, bool)
    core[margin_px:-margin_px, margin_px:-margin_px] = True
    return core


def dice_and_porosity(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Dice and porosity ratio (found / true) inside :func:`_core`."""
    core = _core(truth.shape)
    f, t = found & core, truth & core
    return float(2.0 * (f & t).sum() / max(f.sum() + t.sum(), 1)), float(f.sum() / t.sum())


def size_ratio(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean local thickness of the found pores over the true ones, inside :func:`_core`."""
    core = _core(truth.shape)
    return float(local_thickness(found)[found & core].mean()
                 / local_thickness(truth)[truth & core].mean())


def run(style: str, position: str, seeds: int, quick: bool) -> dict[str, list[float]]:
    """Every rendering of one (style, rim position) row."""
    out: dict[str, list[float]] = {"dice": [], "porosity": [], "size": [], "plain": [],
                                   "checked": [], "auto": [], "best": []}
    other = "topographic" if style == "dark" else "dark"
    widths, blurs = ((1.0,), (0.7,)) if quick else ((1.0, 2.5), (0.7, 1.2))
    for (morph, (size_px, porosity)), width, blur, level, seed in itertools.product(
            MORPHOLOGIES.items(), widths, blurs, RIM_LEVELS[style], range(seeds)):
        pore = pore_field((320, 448), size_px, porosity, morphology=morph, seed=seed)
        img = render_rim_position(pore, np.random.default_rng(seed), style=style,
                                  position=position, rim_width_px=width, rim_level=level,
                                  blur_px=blur)
        # auto segments with the method it chooses exactly as that method does when forced
        auto = segment_pores(img, None, 0.1, method="auto")
        runs = {auto.method: auto}
        for method in (style, other):
            if method not in runs:
                runs[method] = segment_pores(img, None, 0.1, method=method)
        seg = runs[style]
        dice, porosity_ratio = dice_and_porosity(seg.mask, pore)
        other_dice = dice_and_porosity(runs[other].mask, pore)[0]
        out["dice"].append(dice)
        out["porosity"].append(porosity_ratio)
        out["size"].append(size_ratio(seg.mask, pore))
        out["auto"].append(dice if auto.method == style else other_dice)
        out["best"].append(max(dice, other_dice))
        if style == "dark":
            out["checked"].append(float(seg.details.get("rim_outside_edge", False)))
            saved = dark_stage.RIM_OFFSET_RSS_RATIO
            dark_stage.RIM_OFFSET_RSS_RATIO = 0.0
            try:
                plain = segment_pores(img, None, 0.1, method=style)
            finally:
                dark_stage.RIM_OFFSET_RSS_RATIO = saved
            out["plain"].append(dice_and_porosity(plain.mask, pore)[0])
    return out


def _cell(values: list[float], fmt: str = "{:.3f}") -> str:
    if not values:
        return "–"
    v = np.asarray(values)
    return f"{fmt.format(v.mean())} ({fmt.format(v.min())}-{fmt.format(v.max())})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1, help="pore fields per setting (default 1)")
    ap.add_argument("--quick", action="store_true", help="one rim width and one blur only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print("| method | rim | n | Dice | porosity ratio | size ratio | Dice w/o check | "
          "rim taken as outside | `auto`: Dice | better of the two methods | `auto` > 0.05 "
          "worse |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for style in ("dark", "topographic"):
        for position in RIM_POSITIONS:
            r = run(style, position, args.seeds, args.quick)
            checked = (f"{int(sum(r['checked']))}/{len(r['checked'])}" if r["checked"]
                       else "–")
            costly = int(np.sum(np.asarray(r["best"]) - np.asarray(r["auto"]) > 0.05))
            print(f"| {style} | {position} | {len(r['dice'])} | {_cell(r['dice'])} | "
                  f"{_cell(r['porosity'])} | {_cell(r['size'])} | {_cell(r['plain'])} | "
                  f"{checked} | {_cell(r['auto'])} | {_cell(r['best'])} | "
                  f"{costly}/{len(r['auto'])} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
