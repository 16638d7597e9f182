"""Benchmark: exact local thickness (pipeline.size) against porespy and one edt.edt pass.

Masks: 50 % porosity, pores 5-80 px wide (a Boolean model of overlapping disks whose diameters
are log-uniform over 16 values from 5 to 80 px, seeded), at 1k (1024 x 768), 2k (2048 x 1536),
4k (4096 x 3072) and 8k (8192 x 6144) pixels.

Per size, the three contenders run interleaved ``--repeats`` times (median reported), after one
untimed warm-up call each (numba compilation and cache loading excluded: measured separately,
in fresh processes, at the end):

* ours     ``pipeline.size.local_thickness(mask)`` (exact, real-valued radii), default threads;
* porespy  ``porespy.filters.local_thickness(mask, method=M)`` with the fastest exact method M
           (timed once on the 1k mask among 'bf', 'dt' and 'conv'; 'legacy' is the approximate
           old method; porespy 3.2 has no 'imj'), porespy's default threads
           (``porespy.settings.ncores``); skipped when the previous size predicts more than
           ``--porespy-limit`` seconds;
* edt      one ``edt.edt(mask)`` pass, the faster of ``parallel=1`` and ``parallel=threads``.

Peak memory: each contender runs once more in a fresh subprocess on the same mask, and the
peak resident set above the process's resident set just before the call is read from
/proc/self/status (VmHWM after resetting it through /proc/self/clear_refs); it counts numba's and
C allocations, which tracemalloc would miss.

Usage::

    python benchmarks/bench_local_thickness.py            # 1k, 2k, 4k, 8k
    python benchmarks/bench_local_thickness.py --quick    # 1k and 2k
    python benchmarks/bench_local_thickness.py --sizes 2k 4k --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = {"1k": (768, 1024), "2k": (1536, 2048), "4k": (3072, 4096), "8k": (6144, 8192)}
POROSITY = 0.5
PORE_DIAMETERS_PX = (5.0, 80.0)


def pore_mask(shape: tuple[int, int], porosity: float = POROSITY, seed: int = 0) -> np.ndarray:
    """Overlapping disks (diameters log-uniform over 16 values in 5-80 px) covering ``porosity``.

    Centres are uniform in the image; the count follows the Boolean model,
    porosity = 1 - exp(-n * mean disk area / image area).
    """
    import edt

    rng = np.random.default_rng(seed)
    rows, cols = shape
    radii = np.geomspace(PORE_DIAMETERS_PX[0] / 2, PORE_DIAMETERS_PX[1] / 2, 16)
    n_disks = int(round(-np.log(1 - porosity) * rows * cols / np.mean(np.pi * radii**2)))
    which = rng.integers(0, len(radii), n_disks)
    mask = np.zeros(shape, bool)
    for k, radius in enumerate(radii):
        count = int(np.count_nonzero(which == k))
        not_centre = np.ones(shape, bool)
        not_centre[rng.integers(0, rows, count), rng.integers(0, cols, count)] = False
        mask |= edt.edtsq(not_centre, parallel=2) < radius**2
    return mask


# ------------------------------------------------------------------------------- contenders


def run_ours(mask: np.ndarray, threads: int | None = None) -> np.ndarray:
    from pipeline.size import local_thickness

    return local_thickness(mask, threads=threads)


def run_porespy(mask: np.ndarray, method: str) -> np.ndarray:
    import porespy

    return porespy.filters.local_thickness(mask, method=method)


def run_edt(mask: np.ndarray, parallel: int) -> np.ndarray:
    import edt

    return edt.edt(mask, parallel=parallel)


def seconds(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- peak memory


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))


def _peak_child(kind: str, mask_path: str, arg: str) -> None:
    """Subprocess body: print the peak resident bytes the call adds."""
    mask = np.load(mask_path)
    small = mask[:64, :64].copy()
    if kind == "ours":
        run_ours(small)
        call = (run_ours, mask)
    elif kind == "porespy":
        run_porespy(small, arg)
        call = (run_porespy, mask, arg)
    else:
        run_edt(small, int(arg))
        call = (run_edt, mask, int(arg))
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    result = call[0](*call[1:])
    peak = _status_kib("VmHWM")
    del result
    print((peak - before) * 1024)


def peak_bytes(kind: str, mask_path: str, arg: str = "") -> float:
    """Peak extra resident memory of one call in a fresh process, bytes (nan if unavailable)."""
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--_peak", kind, mask_path, arg or "-"],
            capture_output=True, text=True, check=True, timeout=3600,
        )
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return float("nan")


# ------------------------------------------------------------------------------- JIT cost


def first_call_seconds(cold: bool) -> tuple[float, float]:
    """(import, first call on a 64 x 64 mask) in a fresh process; cold = empty numba cache."""
    code = (
        "import time; t0 = time.perf_counter(); import numpy as np; "
        "from pipeline.size import local_thickness; t1 = time.perf_counter(); "
        "local_thickness(np.random.default_rng(0).random((64, 64)) < 0.6); "
        "t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
    imported, first = (float(x) for x in out.stdout.split())
    return imported, first


# ---------------------------------------------------------------------------------- report


def machine() -> str:
    import numba
    import porespy

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{model}, {cpus} CPUs; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"porespy {porespy.__version__}; load average {load} (1, 5, 15 min) at start"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="1k and 2k only, no cold-JIT run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="ours; default: all CPUs")
    parser.add_argument("--porespy-limit", type=float, default=300.0,
                        help="skip porespy when the previous size predicts more seconds")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args(argv)
    sizes = ["1k", "2k"] if args.quick else args.sizes

    import porespy

    from pipeline.size import _default_threads

    threads = args.threads or _default_threads()
    print(f"Machine: {machine()}", flush=True)
    print(f"Threads: ours {threads}, porespy {porespy.settings.ncores}, edt 1 or {threads}",
          flush=True)

    # porespy's fastest exact method, chosen on the 1k mask
    choice_mask = pore_mask(SIZES["1k"])
    trials = {}
    for candidate in ("bf", "dt", "conv"):
        run_porespy(choice_mask[:192, :256], candidate)
        trials[candidate] = seconds(run_porespy, choice_mask, candidate)
    method = min(trials, key=trials.get)
    print("porespy methods on 1k: " + ", ".join(f"'{k}' {v:.2f} s" for k, v in trials.items())
          + f" -> using '{method}'", flush=True)

    rows_out = []
    last_porespy = None
    for name in sizes:
        shape = SIZES[name]
        mask = pore_mask(shape)
        n_pixels = mask.size
        warm = mask[: shape[0] // 4, : shape[1] // 4]
        run_ours(warm, threads)
        run_edt(warm, 1)
        run_edt(warm, threads)
        run_porespy(warm, method)
        predicted = None
        if last_porespy is not None:
            predicted = last_porespy[1] * n_pixels / last_porespy[0] * 1.2
        do_porespy = predicted is None or predicted <= args.porespy_limit

        times = {"ours": [], "porespy": [], "edt1": [], "edtN": []}
        for _ in range(args.repeats):
            times["ours"].append(seconds(run_ours, mask, threads))
            if do_porespy:
                times["porespy"].append(seconds(run_porespy, mask, method))
            times["edt1"].append(seconds(run_edt, mask, 1))
            times["edtN"].append(seconds(run_edt, mask, threads))
        med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
        t_edt = min(med["edt1"], med["edtN"])
        if do_porespy:
            last_porespy = (n_pixels, med["porespy"])

        peaks = {"ours": float("nan"), "porespy": float("nan"), "edt": float("nan")}
        if not args.no_memory:
            with tempfile.TemporaryDirectory() as tmp:
                path = str(Path(tmp) / "mask.npy")
                np.save(path, mask)
                peaks["ours"] = peak_bytes("ours", path)
                peaks["edt"] = peak_bytes("edt", path, str(threads))
                if do_porespy:
                    peaks["porespy"] = peak_bytes("porespy", path, method)
        row = dict(name=name, shape=shape, porosity=float(mask.mean()), ours=med["ours"],
                   porespy=med["porespy"], edt=t_edt, predicted=predicted, peaks=peaks,
                   n_pixels=n_pixels)
        rows_out.append(row)
        print(f"{name}: ours {med['ours']:.3f} s, porespy {med['porespy']:.3f} s, "
              f"edt {t_edt:.3f} s", flush=True)

    def mb(x: float, n: int) -> str:
        return "n/a" if np.isnan(x) else f"{x / 2**20:.0f} MB ({x / n:.1f} B/px)"

    print()
    print(f"| size | porosity | ours (s) | porespy '{method}' (s) | one edt.edt (s) "
          "| porespy / ours | ours / edt | peak memory, ours | peak memory, porespy "
          "| peak memory, edt.edt |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows_out:
        h, w = r["shape"]
        if np.isnan(r["porespy"]):
            ps_time = f"skipped (predicted {r['predicted']:.0f} s)"
            ratio = "n/a"
        else:
            ps_time = f"{r['porespy']:.3f}"
            ratio = f"{r['porespy'] / r['ours']:.1f}x"
        n = r["n_pixels"]
        print(f"| {r['name']} ({w} x {h}) | {r['porosity']:.3f} | {r['ours']:.3f} | {ps_time} "
              f"| {r['edt']:.3f} | {ratio} | {r['ours'] / r['edt']:.2f} "
              f"| {mb(r['peaks']['ours'], n)} | {mb(r['peaks']['porespy'], n)} "
              f"| {mb(r['peaks']['edt'], n)} |")
    print(f"\nMedian of {args.repeats} interleaved repeats; load average at end "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))

    imported, first = first_call_seconds(cold=False)
    print(f"\nFresh process, numba cache warm: import pipeline.size {imported:.2f} s, "
          f"first call (64 x 64) {first:.2f} s")
    if not args.quick:
        imported, first = first_call_seconds(cold=True)
        print(f"Fresh process, empty numba cache: import {imported:.2f} s, "
              f"first call (compiles every kernel) {first:.2f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_peak":
        _peak_child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
