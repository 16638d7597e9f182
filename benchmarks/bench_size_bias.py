"""Where the topographic method's pore-size error comes from (a diagnostic, not a score).

    python benchmarks/bench_size_bias.py [--seeds 2] [--kinds KIND ...]

For the topographic kinds of ``benchmarks/ACCURACY.md`` (pipeline.synthetic renderings whose
name holds ``topo``, held-out secondary-electron renderings whose name holds ``-se-``) and every
seed, runs :func:`pipeline.analyze` on the saved file, as ``bench_accuracy.py`` does, and splits
the pore-size error of the found pores with ``tests/_accuracy.py`` ``size_error_sources``: how
much of it is the boundary (pixels just outside the true pores: rims, one-pixel offsets, thin
walls given to the pores) and how much whole regions labelled pore. Prints one markdown table
(mean over seeds; the columns are defined in that function's docstring).

Reading the table: ``size ratio`` is what the accuracy table's size bias shows; when ``w/o near
FP`` is close to 1, removing the false-positive pixels within 2 px of a true pore would remove
the bias, so the error sits at the boundaries (a one-pixel outward boundary alone gives the
``1 px dilation`` ratio); otherwise it is in the labelling of whole regions.
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

from _accuracy import (  # noqa: E402
    SYNTHETIC_KINDS,
    size_error_sources,
    synthetic_phantom,
    truth_from_phantom,
)
from heldout import HELDOUT_KINDS, heldout_image  # noqa: E402

COLUMNS = (("size ratio", "size_ratio"), ("boundary px outside", "boundary_outside"),
           ("near-FP share", "near_fp_share"), ("w/o near FP", "ratio_without_near_fp"),
           ("1 px dilation", "ratio_truth_dilated_1px"),
           ("thin walls as pore", "thin_wall_as_pore"), ("porosity ratio", "porosity_ratio"))


def topographic_kinds() -> list[tuple[str, str]]:
    """(group, kind) of the topographic kinds of both phantom families."""
    return ([("synthetic", k) for k in SYNTHETIC_KINDS if "topo" in k]
            + [("heldout", k) for k in HELDOUT_KINDS if "-se-" in k])


def saved_rendering(group: str, kind: str, seed: int, workdir: Path):
    """Render one image of ``kind`` and save it into ``workdir`` (an empty folder) as a user's
    file; return ``(path, pixel size or None when the file holds it, truth)``."""
    if group == "synthetic":
        ph = synthetic_phantom(kind, seed)
        path = workdir / f"{kind}-s{seed}.tif"
        ph.save(path)
        return path, None, truth_from_phantom(ph)
    held = heldout_image(kind, seed)
    path, pixel = held.save(workdir)
    return path, pixel, held.truth


def run_one(group: str, kind: str, seed: int, workdir: Path) -> dict:
    """Render, save, analyse one image; return its size-error sources and the method used."""
    path, pixel, truth = saved_rendering(group, kind, seed, workdir)
    analysis = analyze(path, pixel)
    out = size_error_sources(analysis.segmentation.mask, truth)
    out["method"] = analysis.segmentation.method
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--kinds", nargs="*", help="kinds to run (default: every topographic kind)")
    args = ap.parse_args(argv)
    kinds = [gk for gk in topographic_kinds() if not args.kinds or gk[1] in args.kinds]
    print("| kind | methods | " + " | ".join(c[0] for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    with tempfile.TemporaryDirectory() as tmp:
        for group, kind in kinds:
            runs = []
            for seed in range(args.seeds):
                wd = Path(tmp) / f"{kind}-{seed}"
                wd.mkdir()
                runs.append(run_one(group, kind, seed, wd))
            methods = "/".join(sorted({r["method"] for r in runs}))
            cells = [f"{np.mean([r[key] for r in runs]):.2f}" for _, key in COLUMNS]
            print(f"| {kind} | {methods} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
