"""Hostile inputs: every file gives results or one clear line naming it; never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

HOSTILE = Path(__file__).parent / "data" / "hostile"
EXPECTED = json.loads((HOSTILE / "expected.json").read_text())


def test_corpus_is_large_enough():
    assert len(EXPECTED) >= 25


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "analyze", str(HOSTILE), "--out", str(out),
         "--pixel-size", "0.1", "-j", "2", "--no-figures"],
        capture_output=True, text=True, timeout=600, check=False)
    return proc, out


def test_batch_over_the_corpus_isolates_failures(batch):
    proc, out = batch
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1  # some images failed, and that is said by the exit code
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    by_name = {Path(p).name: row for p, row in zip(summary["image"], summary.to_dict("records"))}
    for name, want in EXPECTED.items():
        if want["outcome"] == "skipped":
            assert name not in by_name
            continue
        row = by_name[name]
        assert row["status"] == want["outcome"], (name, row["reason"])
        if row["status"] == "failed":
            reason = row["reason"]
            assert name in reason and "\n" not in reason and "internal error" not in reason, \
                reason
            assert want["message_contains"].lower() in reason.lower(), reason
            # the same line reaches the user on stderr
            assert f"failed: {reason}" in proc.stderr
        else:
            assert (out / Path(name).stem / "result.json").is_file()


def test_every_file_alone_exits_cleanly(capsys):
    """`sempore info` per file: an exit code that says failed and exactly one line naming it."""
    from pipeline.cli import main

    for name, want in EXPECTED.items():
        if want["outcome"] == "skipped":
            continue
        code = main(["info", str(HOSTILE / name)])  # an exception here fails the test
        err = capsys.readouterr().err
        load_failure = want["message_contains"] not in ("membrane", "too small")
        if want["outcome"] == "failed" and load_failure:
            assert code != 0, name
        if code != 0:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and name in lines[0], (name, err)


def test_multipage_warns_and_uses_the_first_page():
    from pipeline.io import load_micrograph

    m = load_micrograph(HOSTILE / "multipage.tif")
    assert any("multi-page" in w for w in m.warnings)


def test_absurd_metadata_pixel_size_is_ignored_with_a_warning():
    from pipeline.io import load_micrograph

    for name in ("fei_pixel_zero.tif", "fei_pixel_negative.tif", "fei_pixel_absurd_unit.tif"):
        m = load_micrograph(HOSTILE / name)
        assert m.pixel_size_um is None, name
        assert any("not plausible" in w for w in m.warnings), name
