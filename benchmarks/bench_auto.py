"""How often ``method="auto"`` picks the worse segmentation method, and what that costs.

    python benchmarks/bench_auto.py [--sources random sparse heldout-bse heldout-se
                                     heldout-sparse-bse heldout-sparse-se] [--n 60]

Every image is segmented by ``auto`` and by the method it did not choose (true membrane mask,
0.1 µm/px), and both are scored by Dice against the truth. Sources: the contrast classifier's
training-like cases (``tools/train_segmenter.py`` ``random_case``), its sparse cases (porosity
0.08-0.3, not in the shipped training set), ``tests/heldout.py`` renderings (BSE or SE) with
random geometry, porosity, pore size and detector gamma, and held-out renderings of sparse pores
(porosity 0.05-0.22: isolated ellipses of 5-25 px or a sponge with a minimum layer of 5-10 px
pores). Prints one line per image whose choice cost more than ``--cost`` Dice, then per source:
images, wrong choices, mean and worst cost.

Measured 2026-12-07 (n = 120 / 80 / 60 / 60 / 50 / 50, one run per ``--n``): choice costing
> 0.05 Dice on 6 / 6 / 3 / 9 / 0 / 2 images, mean cost 0.006 / 0.019 / 0.006 / 0.015 / 0.000 /
0.003. Before ``auto``'s porosity cross-check (``pipeline.segment.face_taken_for_pore``), same
draws: 6 / 10 / 3 / 9 / 8 / 3, mean cost 0.006 / 0.034 / 0.006 / 0.015 / 0.091 / 0.009 (sparse
dark images taken for topographic, the face read as pore: up to 0.66 Dice). The rest: dark
images of a few pores at the topographic resolution limit (4-8 px at porosity 0.09-0.12) whose
topographic mask holds 1.5-2 x the dark one (0.41 worst), and held-out SE renderings where the
dark method is 0.05-0.12 better.

Re-measured 2026-12-07 after the basin classifier was trained on sparse membranes too
(tools/train_segmenter.py ``--sparse-basins``), same draws: costly choices 6 / 6 / 2 / 9 / 1 /
2, mean cost 0.005 / 0.019 / 0.005 / 0.015 / 0.010 / 0.004; mean Dice of the chosen method
0.880 -> 0.881 / 0.773 -> 0.792 / 0.940 -> 0.941 / 0.865 -> 0.866 / 0.869 -> 0.859 / 0.799 ->
0.860 (the topographic method's own Dice on held-out sparse SE 0.795 -> 0.861). The one new
costly choice: held-out sparse BSE seed 1, whose topographic mask now holds 2.99 x the dark
one's pore area (was 3.56), just under the cross-check's 3: topographic, Dice 0.26 against 0.75.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "tools"))

import train_segmenter as ts  # noqa: E402

from pipeline.segment import segment_pores  # noqa: E402

import heldout  # noqa: E402


def dice(found: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """Dice of two masks inside ``region`` (1 when both are empty)."""
    found, truth = found & region, truth & region
    return ts._dice_from_counts(np.count_nonzero(found & truth), np.count_nonzero(found),
                                np.count_nonzero(truth))


def heldout_case(seed: int, contrast: str):
    """A tests/heldout.py rendering (384 x 512) of random geometry: (image, pores, region)."""
    rng = np.random.default_rng([seed, 777])
    geometry = str(rng.choice(["foam", "ellipses", "sponge_minimum", "stretched"]))
    porosity = rng.uniform(0.12, 0.6)
    if geometry == "foam":
        porosity = rng.uniform(0.45, 0.85)
    size: float | tuple[float, float] = float(rng.uniform(8, 30))
    if geometry == "sponge_minimum":
        size = (float(rng.uniform(6, 12)), float(rng.uniform(14, 30)))
    if geometry == "stretched":
        size = float(rng.uniform(3, 8))
    # heldout_image renders by kind name: register this draw as a kind of its own
    heldout.HELDOUT_KINDS["bench-auto"] = dict(
        geometry=geometry, contrast=contrast, gamma=float(rng.choice([0.6, 1.0, 1.6])),
        background="dark", surfaces="both", databar="hitachi", file_format="bmp",
        size_px=size, porosity=porosity, pixel_size_um=0.1)
    h = heldout.heldout_image("bench-auto", seed, shape=(384, 512))
    return h.image[:384].astype(np.float32) / 255, h.truth.pore_mask, h.truth.membrane_mask


def sparse_heldout_case(seed: int, contrast: str):
    """A tests/heldout.py rendering (384 x 512) of sparse pores (porosity 0.05-0.22, isolated
    ellipses of 5-25 px or a sponge with a minimum layer of 5-10 px pores): (image, pores,
    region)."""
    rng = np.random.default_rng([seed, 4242])
    geometry = str(rng.choice(["ellipses", "sponge_minimum", "ellipses"]))
    porosity = rng.uniform(0.05, 0.22)
    size: float | tuple[float, float] = float(rng.uniform(5, 25))
    if geometry == "sponge_minimum":
        size = (float(rng.uniform(5, 10)), float(rng.uniform(10, 25)))
    heldout.HELDOUT_KINDS["bench-auto"] = dict(
        geometry=geometry, contrast=contrast, gamma=float(rng.choice([0.6, 1.0, 1.6])),
        background="dark", surfaces="both", databar="hitachi", file_format="bmp",
        size_px=size, porosity=porosity, pixel_size_um=0.1)
    h = heldout.heldout_image("bench-auto", seed, shape=(384, 512))
    return h.image[:384].astype(np.float32) / 255, h.truth.pore_mask, h.truth.membrane_mask


def case(source: str, seed: int):
    if source == "random":
        return ts.random_case(seed)[:3]
    if source == "sparse":
        return ts.sparse_case(seed)[:3]
    contrast = "bse" if source.endswith("-bse") else "se"
    if source.startswith("heldout-sparse"):
        return sparse_heldout_case(seed, contrast)
    return heldout_case(seed, contrast)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sources = ["random", "sparse", "heldout-bse", "heldout-se", "heldout-sparse-bse",
               "heldout-sparse-se"]
    ap.add_argument("--sources", nargs="+", choices=sources, default=sources)
    ap.add_argument("--n", type=int, default=60, help="images per source")
    ap.add_argument("--cost", type=float, default=0.05, help="Dice cost that counts as wrong")
    args = ap.parse_args()
    for source in args.sources:
        costs = []
        for seed in range(args.n):
            try:
                img, pores, region = case(source, seed)
            except ValueError:  # the held-out membrane left the frame
                continue
            auto = segment_pores(img, region, 0.1, method="auto")
            other = "dark" if auto.method == "topographic" else "topographic"
            d_auto = dice(auto.mask, pores, region)
            d_other = dice(segment_pores(img, region, 0.1, method=other).mask, pores, region)
            cost = max(0.0, d_other - d_auto)
            costs.append(cost)
            if cost > args.cost:
                print(f"{source} seed {seed}: auto {auto.method} "
                      f"(P(topographic) {auto.details.get('p_topographic')}) Dice {d_auto:.3f}, "
                      f"{other} {d_other:.3f}", flush=True)
        c = np.asarray(costs)
        if c.size:
            print(f"== {source}: {c.size} images, choice costing > {args.cost} Dice on "
                  f"{int((c > args.cost).sum())}, mean cost {c.mean():.3f}, worst {c.max():.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
