"""Batch throughput: images per minute with 1 and 2 local workers and a local Dask cluster.

    python benchmarks/bench_batch.py [--n 50] [--shape 1536 2048]

Writes ``--n`` varied phantoms (pipeline.synthetic.random_phantom, FEI TIFFs with metadata) and
runs the same batch three ways, each into a fresh output folder: one worker process, two local
worker processes, and a local Dask cluster of two single-threaded worker processes. Prints
images per minute, the speed-up over one worker, and the peak resident memory of a worker
process (read from /proc while the batch runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench_pipeline import machine


class PeakMemory:
    """Samples the resident memory of the worker processes every 0.2 s."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            # one worker runs in this process; otherwise the workers are child processes
            procs = me.children(recursive=True) or [me]
            for proc in procs:
                try:
                    self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
                except psutil.Error:
                    pass
            time.sleep(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--shape", type=int, nargs=2, default=(1536, 2048), metavar=("ROWS", "COLS"))
    args = ap.parse_args()

    from pipeline.batch import run
    from pipeline.synthetic import random_phantom

    tmp = Path(tempfile.mkdtemp(prefix="sempore-batch-"))
    try:
        src = tmp / "in"
        src.mkdir()
        for i in range(args.n):
            random_phantom(i, shape=tuple(args.shape)).save(src / f"p{i:03d}.tif")
        print(f"# sempore batch benchmark: {args.n} phantoms of {args.shape[0]}x{args.shape[1]} px")
        print(f"# machine: {machine()}")
        rows = []

        def timed(label: str, **kw) -> None:
            out = tmp / label.replace(" ", "_")
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                outcome = run([src], out, report=False, **kw)
                seconds = time.perf_counter() - t0
            rows.append((label, seconds, outcome.n_ok, mem.peak_mb))

        timed("1 worker", workers=1)
        timed("2 workers", workers=2)
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("pipeline.analysis"))  # warm imports like a pool
            timed("Dask local cluster, 2 workers", client=client)
        base = rows[0][1]
        print("\n| run | images/min | speed-up vs 1 worker | ok | peak memory per worker (MB) |")
        print("|---|---|---|---|---|")
        for label, seconds, ok, peak in rows:
            rate = 60.0 * args.n / seconds
            print(f"| {label} | {rate:.1f} | {base / seconds:.2f}x | {ok}/{args.n} | "
                  f"{peak:.0f} |")
        print(f"\n# os.cpu_count() = {os.cpu_count()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
