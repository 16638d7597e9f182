"""Whole-analysis benchmark: per-stage times, and `sempore analyze` against porespy.

    python benchmarks/bench_pipeline.py [--shape 1400 1800] [--repeats 3]

1. Writes an SEM-like phantom (pipeline.synthetic, FEI TIFF with metadata and data bar).
2. Times each stage of one in-process analysis (load, membrane, segmentation, local thickness,
   profile, structure, isotropy, writing the output files).
3. Times a whole `sempore analyze` in a fresh process (interpreter start, imports, all output
   files included) and porespy's local thickness alone on the pore mask that analysis produced,
   in the same run, and prints their ratio (issue 3 asks for <= 1).

Times are medians of ``--repeats`` runs. The machine is described in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}; {os.cpu_count()} cores; Python {platform.python_version()}; "
            f"numpy {np.__version__}; load average {load:.2f}")


def porespy_local_thickness(mask: np.ndarray, method: str) -> float:
    """Seconds for porespy's local thickness with ``method`` ('bf' or 'dt') on ``mask``.

    porespy 3.x offers 'bf', 'dt', 'conv'; 'bf' is the fastest here (benchmarks/README.md).
    Its kernels JIT-compile on the first call, so each method is warmed up on a small mask
    first (untimed).
    """
    import porespy

    fn = porespy.filters.local_thickness
    warm = np.zeros((64, 64), bool)
    warm[8:40, 8:40] = True
    fn(warm, method=method)  # warm-up, untimed
    t0 = time.perf_counter()
    fn(mask, method=method)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", type=int, nargs=2, default=(1400, 1800), metavar=("ROWS", "COLS"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pixel-size", type=float, default=0.05)
    args = ap.parse_args()

    from pipeline import analyze
    from pipeline.report import write_results
    from pipeline.synthetic import make_membrane_phantom

    tmp = Path(tempfile.mkdtemp(prefix="sempore-bench-"))
    try:
        rows, cols = args.shape
        phantom = make_membrane_phantom(
            (rows, cols), pixel_size_um=args.pixel_size, thickness_um=0.8 * rows * args.pixel_size,
            profile="internal_minimum", pore_size_um=20 * args.pixel_size,
            min_layer_depth_um=0.2 * rows * args.pixel_size, surfaces="top", seed=1)
        image_path = tmp / "phantom.tif"
        phantom.save(image_path)
        print(f"# sempore whole-analysis benchmark, {rows}x{cols} px phantom")
        print(f"# machine: {machine()}")

        # per-stage times (in process, warm)
        analyze(image_path)  # warm-up: JIT caches, imports
        stage_runs = []
        write_runs = []
        for k in range(args.repeats):
            a = analyze(image_path)
            t0 = time.perf_counter()
            write_results(a, tmp / f"stage{k}", force=True)
            write_runs.append(time.perf_counter() - t0)
            stage_runs.append(a.timings_s)
        stages = sorted({s for r in stage_runs for s in r}, key=list(stage_runs[0]).index)
        print("\n| stage | median time (s) |\n|---|---|")
        total = 0.0
        for s in stages:
            t = float(np.median([r.get(s, 0.0) for r in stage_runs]))
            total += t
            print(f"| {s} | {t:.3f} |")
        w = float(np.median(write_runs))
        print(f"| writing outputs | {w:.3f} |\n| **total in process** | **{total + w:.3f}** |")

        # whole CLI run in a fresh process vs porespy's local thickness on its pore mask
        cli_times = []
        for k in range(args.repeats):
            out = tmp / f"cli{k}"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pipeline.cli", "analyze", str(image_path),
                            "--out", str(out), "-q", "-j", "1"], check=True)
            cli_times.append(time.perf_counter() - t0)
        mask = a.segmentation.mask
        cli = float(np.median(cli_times))
        result = json.loads((tmp / "cli0" / "phantom" / "result.json").read_text())
        print("\n| measurement | median time (s) | sempore / this |\n|---|---|---|")
        print(f"| `sempore analyze` of one {rows}x{cols} image, fresh process, all outputs "
              f"| {cli:.2f} | |")
        for method in ("bf", "dt"):
            ps = float(np.median([porespy_local_thickness(mask, method)
                                  for _ in range(args.repeats)]))
            print(f"| porespy.filters.local_thickness(method='{method}') alone on its pore mask "
                  f"({mask.mean():.0%} porosity) | {ps:.2f} | **{cli / ps:.1f}** |")
        print(f"\n# structure found: {result['structure'] and result['structure'].get('kind')}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
