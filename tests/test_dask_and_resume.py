"""Batch at scale: a Dask cluster on loopback, and a run killed and started again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from pipeline.batch import run

from _phantoms import simple_membrane


def _make_inputs(folder: Path, n: int, size=(240, 320)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"img{i:02d}.png"
        Image.fromarray(simple_membrane(*size, seed=10 + i)).save(p)
        paths.append(p)
    return paths


def _numbers(out: Path, stem: str) -> dict:
    result = json.loads((out / stem / "result.json").read_text())
    result.pop("run")
    return result


def test_dask_local_cluster_gives_the_same_numbers(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    inputs = _make_inputs(tmp_path / "in", 3)
    local = run(inputs, tmp_path / "local", pixel_size_um=0.1, workers=1, report=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = run(inputs, tmp_path / "dask", pixel_size_um=0.1, client=client, report=False)
        assert remote.n_ok == local.n_ok == 3
        address = cluster.scheduler_address
        # the CLI path: --scheduler ADDRESS
        from pipeline.cli import main

        assert main(["analyze", str(inputs[0]), "--out", str(tmp_path / "cli"),
                     "--pixel-size", "0.1", "--scheduler", address, "-q"]) == 0
    for p in inputs:
        assert _numbers(tmp_path / "local", p.stem) == _numbers(tmp_path / "dask", p.stem)
    assert _numbers(tmp_path / "cli", inputs[0].stem) == _numbers(tmp_path / "local",
                                                                   inputs[0].stem)


def test_killed_run_resumes_without_redoing_or_half_files(tmp_path):
    inputs = _make_inputs(tmp_path / "in", 6, size=(400, 600))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.cli", "analyze", str(tmp_path / "in"), "--out",
           str(out), "--pixel-size", "0.1", "-j", "1", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if len(list(out.glob("*/result.json"))) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}
    assert 2 <= len(finished) < len(inputs), "the run should be killed part-way"
    # every folder with a result.json is complete
    for stem in finished:
        names = {p.name for p in (out / stem).iterdir() if not p.name.startswith(".")}
        assert {"result.json", "pores.png", "profile.csv", "local_thickness.tif"} <= names
    again = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    for p in inputs:
        assert (out / p.stem / "result.json").is_file()
    for stem, stamp in finished.items():  # finished images were not redone
        assert (out / stem / "result.json").stat().st_mtime_ns == stamp
    assert not list(out.rglob("*.tmp")), "stale temporary files left behind"
    summary = (out / "summary.csv").read_text()
    assert summary.count(",ok,") == len(inputs)
