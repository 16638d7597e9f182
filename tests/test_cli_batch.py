"""The sempore command and the batch runner: output contract, failures, resume, force."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.batch import collect_inputs, process_image, result_names, run
from pipeline.cli import main
from pipeline.report import NOTES_SEPARATOR, RESULT_FILES, load_results

from _phantoms import simple_membrane


@pytest.fixture()
def folder(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(simple_membrane(seed=1)).save(d / "a.png")
    Image.fromarray(simple_membrane(seed=2)).save(d / "b.tif")
    (d / "notes.txt").write_text("not an image")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return d


def test_analyze_folder_writes_contract_and_isolates_failures(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["analyze", str(folder), "--out", str(out), "--pixel-size", "0.1", "-j", "1"])
    assert code == 1  # one image failed
    err = capsys.readouterr().err
    assert "broken.png" in err and "Traceback" not in err
    for stem in ("a", "b"):
        for name in RESULT_FILES:
            assert (out / stem / name).is_file(), (stem, name)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["status"]) == {"ok", "failed"}
    failed = summary[summary["status"] == "failed"]
    assert len(failed) == 1 and "broken.png" in failed["reason"].iloc[0]
    ok = summary[summary["status"] == "ok"]
    assert set(ok["surface_vs_interior"]) <= {"equal", "smaller", "larger"}
    assert ok["surface_vs_interior"].notna().all()
    assert "broken.png" in (out / "errors.log").read_text()
    assert (out / "report.html").is_file()
    assert not (out / "notes").exists()
    # each image's notes, joined, in summary.csv; none when it has none
    for row in ok.itertuples():
        notes = json.loads((out / Path(row.image).stem / "result.json").read_text())["notes"]
        assert (row.notes if isinstance(row.notes, str) else None) == (
            NOTES_SEPARATOR.join(notes) or None)

    result = json.loads((out / "a" / "result.json").read_text())
    for key in ("schema_version", "image", "membrane", "profile", "structure", "criteria",
                "isotropy", "network", "software"):
        assert key in result
    assert result["image"]["pixel_size_um"] == 0.1
    assert result["image"]["pixel_size_source"] == "caller"
    assert result["membrane"]["reference_surface"] == "top"
    surface = np.array(result["membrane"]["surface_row_px"], float)
    assert np.nanmedian(surface) == pytest.approx(50, abs=8)  # precision: test_geometry
    assert result["software"]["settings"]["segment"]["method"] == "auto"
    # full-size masks, 0/255
    pores = np.asarray(Image.open(out / "a" / "pores.png"))
    assert pores.shape == (240, 320) and set(np.unique(pores)) <= {0, 255}
    profile = pd.read_csv(out / "a" / "profile.csv")
    assert {"depth_um", "porosity", "pore_size_um", "n_pixels"} <= set(profile.columns)


def test_resume_skips_finished_images_and_force_redoes(folder, tmp_path):
    out = tmp_path / "out"
    first = run([folder / "a.png"], out, pixel_size_um=0.1, workers=1)
    assert first.n_ok == 1
    stamp = (out / "a" / "result.json").stat().st_mtime_ns
    again = run([folder / "a.png"], out, pixel_size_um=0.1, workers=1)
    assert again.rows[0]["reason"] == "up to date"
    assert (out / "a" / "result.json").stat().st_mtime_ns == stamp
    # different settings: existing results are not overwritten without force
    other = run([folder / "a.png"], out, pixel_size_um=0.2, workers=1)
    assert other.rows[0]["status"] == "failed" and "--force" in other.rows[0]["reason"]
    assert (out / "a" / "result.json").stat().st_mtime_ns == stamp
    forced = run([folder / "a.png"], out, pixel_size_um=0.2, workers=1, force=True)
    assert forced.n_ok == 1
    assert json.loads((out / "a" / "result.json").read_text())["image"]["pixel_size_um"] == 0.2


def test_forced_overwrite_keeps_no_file_of_the_run_before(folder, tmp_path):
    """A forced run without figures and without a surface leaves no overlay, profile plot or
    macrovoids.csv of the run before it (they would describe another analysis)."""
    from pipeline.report import CONDITIONAL_FILES

    out = tmp_path / "out"
    assert main(["analyze", str(folder / "a.png"), "--out", str(out), "--pixel-size", "0.1",
                 "-j", "1", "-q"]) == 0
    before = {p.name for p in (out / "a").iterdir()}
    assert {"macrovoids.csv", "overlay.png", "profile.png"} <= before
    assert main(["analyze", str(folder / "a.png"), "--out", str(out), "--pixel-size", "0.1",
                 "-j", "1", "-q", "--force", "--no-figures", "--surface", "none"]) == 0
    after = {p.name for p in (out / "a").iterdir()}
    assert not after & set(CONDITIONAL_FILES), after & set(CONDITIONAL_FILES)
    assert set(RESULT_FILES) - {"overlay.png", "profile.png"} <= after


def test_interrupted_run_leaves_no_partial_results(folder, tmp_path):
    """A half-written result folder (files but no result.json) is redone, not trusted."""
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "pores.png").write_bytes(b"partial")
    (out / "a" / ".result.json.123.tmp").write_bytes(b"{")
    row = process_image(folder / "a.png", out / "a", pixel_size_um=0.1)
    assert row["status"] == "ok"
    assert Image.open(out / "a" / "pores.png").size == (320, 240)
    assert json.loads((out / "a" / "result.json").read_text())["image"]["shape"] == [240, 320]


def test_parallel_run_gives_the_same_numbers_as_serial(folder, tmp_path):
    serial = run([folder], tmp_path / "s", pixel_size_um=0.1, workers=1, report=False)
    parallel = run([folder], tmp_path / "p", pixel_size_um=0.1, workers=2, report=False)
    assert serial.n_ok == parallel.n_ok == 2
    for stem in ("a", "b"):
        rs = json.loads((tmp_path / "s" / stem / "result.json").read_text())
        rp = json.loads((tmp_path / "p" / stem / "result.json").read_text())
        rs.pop("run"), rp.pop("run")
        assert rs["profile"] == rp["profile"] and rs["membrane"] == rp["membrane"]


def test_missing_pixel_size_is_a_clear_failure(folder, tmp_path):
    out = tmp_path / "out"
    outcome = run([folder / "a.png"], out, workers=1)
    assert outcome.exit_code == 1
    assert "pixel size unknown" in outcome.rows[0]["reason"]
    assert "a.png" in outcome.rows[0]["reason"]


def test_collect_inputs_globs_folders_and_skips(folder, tmp_path):
    (folder / "sub").mkdir()
    Image.fromarray(simple_membrane(seed=3)).save(folder / "sub" / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "sub" / "x.pores.png")
    images, skipped = collect_inputs([folder, str(folder / "*.png")])
    names = sorted(p.name for p in images)
    assert names == ["a.png", "a.png", "b.tif", "broken.png"]
    assert any("notes.txt" in s for s, _ in skipped)
    assert len(set(result_names(images))) == len(images)  # same stems get unique folders


def test_cli_module_entry_and_info(tmp_path):
    real = Path(__file__).parent / "data" / "real" / "porous_aggregate_fei.tif"
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "info", str(real)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["pixel_size_um"] == pytest.approx(0.134896)
    assert info["databar_rows"] == 79 and info["shape"] == [1103, 1536]
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"nope")
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "info", str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "bad.tif" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_default_round_trips(tmp_path, capsys):
    assert main(["config", "--default"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert main(["config", "--check", str(path)]) == 0
    path.write_text("[segment]\nmethd = 'dark'\n")
    assert main(["config", "--check", str(path)]) == 2
    assert "methd" in capsys.readouterr().err


def test_config_tiling_reaches_segmentation(folder, tmp_path):
    """A settings file's tile size is used (a small image forced into tiles gives the same
    pore mask as one run whole, and result.json says it was tiled)."""
    cfg = tmp_path / "tiles.toml"
    cfg.write_text("[segment]\nmax_untiled_px = 0\ntile_px = 128\n")
    base = ["analyze", str(folder / "a.png"), "--pixel-size", "0.1", "-q"]
    assert main(base + ["--out", str(tmp_path / "whole")]) == 0
    assert main(base + ["--out", str(tmp_path / "tiled"), "--config", str(cfg)]) == 0
    whole = json.loads((tmp_path / "whole" / "a" / "result.json").read_text())
    tiled = json.loads((tmp_path / "tiled" / "a" / "result.json").read_text())
    assert whole["segmentation"]["details"]["tiles"] == "untiled"
    assert tiled["segmentation"]["details"]["tiles"] != "untiled"
    assert tiled["software"]["settings"]["segment"]["tile_px"] == 128
    masks = [np.asarray(Image.open(tmp_path / d / "a" / "pores.png")) for d in ("whole", "tiled")]
    assert np.count_nonzero(masks[0] != masks[1]) <= 0.001 * masks[0].size


def test_unwritable_output_is_a_clear_error(folder, tmp_path, capsys):
    # (CI runs as root, which ignores permission bits: use a path under a regular file)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["analyze", str(folder / "a.png"), "--out", str(blocker / "out"),
                 "--pixel-size", "0.1"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write results" in err and "Traceback" not in err


def test_load_results_round_trip(folder, tmp_path):
    out = tmp_path / "out"
    run([folder / "a.png"], out, pixel_size_um=0.1, workers=1, report=False)
    loaded = load_results(out / "a")
    assert loaded.pore_mask.shape == (240, 320)
    assert loaded.local_thickness_um.dtype == np.float32
    assert (loaded.local_thickness_um[~loaded.pore_mask] == 0).all()
    assert loaded.profile is not None and len(loaded.profile) > 5


def test_cli_does_not_import_gui_or_dask(folder, tmp_path):
    """Start-up cost: `sempore analyze` loads neither napari/Qt nor Dask unless asked."""
    code = (
        "import sys\n"
        "from pipeline.cli import main\n"
        f"main(['analyze', {str(folder / 'a.png')!r}, '--out', {str(tmp_path / 'o')!r}, "
        "'--pixel-size', '0.1', '-q', '-j', '1'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'napari', 'PyQt6', 'PyQt5', 'qtpy', 'vispy', 'dask', 'distributed', 'porespy'})\n"
        "print(','.join(heavy))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"imported: {proc.stdout.strip()}"
    assert (tmp_path / "o" / "a" / "result.json").is_file()


def _segment_with_details(monkeypatch, **details) -> None:
    """Make every analysis' segmentation report ``details`` (e.g. a forced P(topographic))."""
    import pipeline.analysis as analysis_module

    real_segment = analysis_module.segment_pores

    def segment(*args, **kwargs):
        seg = real_segment(*args, **kwargs)
        seg.details.update(details)
        return seg

    monkeypatch.setattr(analysis_module, "segment_pores", segment)


def test_cli_names_the_images_auto_was_unsure_of(folder, tmp_path, capsys, monkeypatch):
    """An image whose auto choice is uncertain (P(topographic) forced to 0.55) is named on
    stderr after the batch, and its note is in summary.csv."""
    _segment_with_details(monkeypatch, p_topographic=0.55)
    out = tmp_path / "out"
    main(["analyze", str(folder / "a.png"), "--out", str(out), "--pixel-size", "0.1", "-j", "1"])
    err = capsys.readouterr().err
    assert "auto was unsure of the segmentation method on 1 image(s) (a.png)" in err
    summary = pd.read_csv(out / "summary.csv")
    assert "segmentation method uncertain" in summary["notes"].iloc[0]


def test_cli_names_the_images_to_review_first(folder, tmp_path, capsys, monkeypatch):
    """An image whose topographic segmentation is ambiguous (the share forced to 0.35) is named
    on stderr after the batch and in report.html's "Review first" list; result.json and
    summary.csv carry the share and the note."""
    _segment_with_details(monkeypatch, ambiguous_fraction=0.35)
    out = tmp_path / "out"
    main(["analyze", str(folder / "a.png"), "--out", str(out), "--pixel-size", "0.1", "-j", "1"])
    err = capsys.readouterr().err
    assert "the segmentation is ambiguous on 1 image(s) (a.png): review them first" in err
    summary = pd.read_csv(out / "summary.csv")
    assert summary["ambiguous_fraction"].iloc[0] == pytest.approx(0.35)
    assert "ambiguous segmentation: 35 %" in summary["notes"].iloc[0]
    result = json.loads((out / "a" / "result.json").read_text())
    assert result["segmentation"]["ambiguous_fraction"] == pytest.approx(0.35)
    page = (out / "report.html").read_text()
    assert "<h2>Review first</h2>" in page
    assert "a.png: ambiguous segmentation (35 % of the membrane)" in page

