"""Very large montage benchmark: peak memory and time of a whole analysis, stage by stage.

    python benchmarks/bench_large.py [--shape 10000 20000] [--tile 2000 2000] [--keep DIR]

Issue 8 asks that a stitched montage of 20000x10000 px runs within 12 GB peak memory.

1. Builds the montage in a separate process (so its memory does not count): an SEM-like
   membrane phantom of ``--tile`` rows x cols (:func:`pipeline.synthetic.make_membrane_phantom`,
   dark rendering, surface at the top, sponge pores) is tiled side by side and, below its
   membrane band, the band's lower rows are repeated until the montage has ``--shape`` rows,
   then written as an FEI TIFF with its metadata and data bar.
2. Runs the whole analysis (load, membrane, segmentation, local thickness, profile, structure,
   isotropy, writing every output file) in a fresh process, sampling its resident memory every
   50 ms. Peak RSS per stage is the largest sample taken while the stage ran; the overall peak is
   the kernel's own ``ru_maxrss`` of that process (exact, not sampled).

The machine is described in the output.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import machine  # noqa: E402

MAKE = textwrap.dedent("""
    import sys
    import numpy as np
    from pipeline import synthetic as syn

    rows, cols, tile_rows, tile_cols, path = (int(sys.argv[1]), int(sys.argv[2]),
                                             int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    ph = syn.make_membrane_phantom((tile_rows, tile_cols), pixel_size_um=0.05,
                                   pore_size_um=0.6, porosity=0.5, surfaces="top",
                                   databar=False, seed=0)
    tile = ph.image
    # below the surface region, repeat the lower half of the tile (bulk membrane) downwards
    bulk = tile[tile_rows // 2:]
    reps = -(-max(rows - tile_rows, 0) // bulk.shape[0])
    column = np.concatenate([tile] + [bulk] * reps, axis=0)[:rows]
    montage = np.tile(column, (1, -(-cols // tile_cols)))[:, :cols]
    bar = np.zeros((max(rows // 16, 32), cols), np.uint8)
    bar[8:-8, 40:cols // 4] = 200  # a text block on the black bar
    frame = np.ascontiguousarray(np.concatenate([montage, bar], axis=0))
    syn.write_fei_tiff(path, frame, 0.05, databar_rows=bar.shape[0])
""")

RUN = textwrap.dedent("""
    import json, resource, sys, threading, time
    from pathlib import Path

    path, out = sys.argv[1], sys.argv[2]
    current = ["imports"]
    peaks, starts = {}, {}

    def rss_gb():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
        return float("nan")

    stop = False

    def sample():
        while not stop:
            stage = current[0]
            peaks[stage] = max(peaks.get(stage, 0.0), rss_gb())
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t_start = time.perf_counter()
    from pipeline.analysis import STAGES, analyze
    from pipeline.report import write_results
    current[0] = STAGES[0]

    def progress(stage, fraction):
        i = STAGES.index(stage)
        current[0] = STAGES[i + 1] if i + 1 < len(STAGES) else "write"

    a = analyze(path, progress=progress)
    current[0] = "write"
    t0 = time.perf_counter()
    write_results(a, out, force=True)
    t_write = time.perf_counter() - t0
    stop = True
    t.join()
    times = dict(a.timings_s)
    times["write"] = t_write
    print(json.dumps({
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "stage_peak_rss_gb": peaks, "stage_s": times,
        "total_s": time.perf_counter() - t_start,
        "shape": list(a.micrograph.image.shape),
        "method": a.segmentation.method,
        "porosity": round(float(a.segmentation.mask.sum() / max(a.membrane.mask.sum(), 1)), 4),
    }))
""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs=2, default=(10000, 20000),
                    metavar=("ROWS", "COLS"), help="montage size without the data bar")
    ap.add_argument("--tile", type=int, nargs=2, default=(2000, 2000), metavar=("ROWS", "COLS"))
    ap.add_argument("--keep", type=Path, help="write the montage and results here")
    args = ap.parse_args()
    print(machine())
    work = args.keep or Path(tempfile.mkdtemp(prefix="sempore_large_"))
    work.mkdir(parents=True, exist_ok=True)
    tif = work / "montage.tif"
    rows, cols = args.shape
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", MAKE, str(rows), str(cols), *map(str, args.tile),
                    str(tif)], check=True)
    print(f"montage {cols}x{rows} px (+ data bar) written in {time.perf_counter() - t0:.0f} s: "
          f"{tif.stat().st_size / 1e6:.0f} MB")
    proc = subprocess.run([sys.executable, "-c", RUN, str(tif), str(work / "results")],
                          check=True, capture_output=True, text=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    print(f"\nanalysed frame {res['shape'][1]}x{res['shape'][0]} px, method {res['method']}, "
          f"porosity {res['porosity']}")
    print("\n| stage | time (s) | peak RSS while running (GB) |\n|---|---|---|")
    for stage, seconds in res["stage_s"].items():
        peak = res["stage_peak_rss_gb"].get(stage, float("nan"))
        print(f"| {stage} | {seconds:.1f} | {peak:.2f} |")
    print(f"| **whole run** (imports included) | {res['total_s']:.1f} | "
          f"**{res['peak_rss_gb']:.2f}** |")
    print(f"\npeak RSS of the analysis process (ru_maxrss): {res['peak_rss_gb']:.2f} GB "
          f"(largest child of this script: {child_peak:.2f} GB); limit 12 GB: "
          f"{'met' if res['peak_rss_gb'] <= 12 else 'NOT met'}")


if __name__ == "__main__":
    main()
