"""Folders of micrographs: parallel, resumable, on one machine or a Dask cluster.

>>> from pipeline.batch import run
>>> outcome = run(["micrographs/"], "results", workers=4)
>>> outcome.n_failed
0

Each image is analysed by :func:`process_image`, which never raises: a failure becomes a
``failed`` row with its one-line reason (also appended to ``DIR/errors.log``). An image whose
``result.json`` was made from the same input bytes (SHA-256) with the same settings and pixel size
is skipped, so an interrupted run started again finishes only the rest. Nothing already written is
overwritten without ``force``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .io import IMAGE_SUFFIXES
from .settings import Settings

#: Files next to images that are not micrographs to analyse (truth masks of phantoms, our outputs).
_NOT_INPUTS = (".pores.png", ".truth.json", "overlay.png", "profile.png", "pores.png",
               "membrane.png", "local_thickness.tif")


@dataclass
class BatchOutcome:
    """What a batch did."""

    rows: list[dict[str, Any]]
    skipped_inputs: list[tuple[str, str]] = field(default_factory=list)
    out_dir: Path | None = None

    @property
    def n_ok(self) -> int:
        return sum(r["status"] == "ok" for r in self.rows)

    @property
    def n_failed(self) -> int:
        return sum(r["status"] != "ok" for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when every image succeeded, 1 otherwise (also when there was nothing to do)."""
        return 0 if self.rows and self.n_failed == 0 else 1


# --------------------------------------------------------------------------------------------
# inputs


def _is_candidate(path: Path) -> bool:
    name = path.name.lower()
    return (path.suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")
            and not any(name.endswith(s) for s in _NOT_INPUTS))


def collect_inputs(paths: Iterable[str | os.PathLike], *, exclude: Path | None = None
                   ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, folders (recursively) and glob patterns into image files.

    Parameters
    ----------
    paths : iterable of path-like
    exclude : Path, optional
        A folder whose contents are never inputs (the output folder).

    Returns
    -------
    images : list of Path
        In a stable order, without duplicates.
    skipped : list of (path, reason)
        Inputs that are not analysed (not an image, not found), with a note.
    """
    images: list[Path] = []
    skipped: list[tuple[str, str]] = []
    seen: set[Path] = set()
    exclude = exclude.resolve() if exclude is not None else None

    def add(p: Path, explicit: bool) -> None:
        rp = p.resolve()
        if rp in seen:
            return
        if exclude is not None and (rp == exclude or exclude in rp.parents):
            return
        if _is_candidate(p):
            seen.add(rp)
            images.append(p)
        elif explicit:
            # an explicitly named file is tried: a wrong extension may still be an image,
            # and a non-image gets its one-line error from the loader
            seen.add(rp)
            images.append(p)
        else:
            skipped.append((str(p), "not an image file (skipped)"))

    for raw in paths:
        text = os.fspath(raw)
        p = Path(text)
        if p.is_dir():
            for sub in sorted(p.rglob("*")):
                if sub.is_file():
                    add(sub, explicit=False)
        elif p.exists():
            add(p, explicit=True)
        elif any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                skipped.append((text, "pattern matches no file"))
            for m in matches:
                mp = Path(m)
                if mp.is_file():
                    add(mp, explicit=False)
        else:
            images.append(p)  # reported as "file not found" by the loader, as a failed row
    return images, skipped


def result_names(images: Sequence[Path]) -> list[str]:
    """A unique result-folder name per image: the file stem, made unique with parent names."""
    names = [p.stem for p in images]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    out = []
    used: set[str] = set()
    for p, n in zip(images, names):
        name = n
        if counts[n] > 1:
            parts = [q for q in p.resolve().parent.parts[-2:] if q not in ("/", "")]
            name = "__".join(parts + [n])
        base, k = name, 2
        while name in used:
            name = f"{base}-{k}"
            k += 1
        used.add(name)
        out.append(name)
    return out


# --------------------------------------------------------------------------------------------
# one image


def job_digest(input_sha256: str, settings: Settings, pixel_size_um: float | None) -> str:
    """Identity of a job: same input bytes, settings and pixel size give the same digest."""
    text = json.dumps([input_sha256, settings.digest(), pixel_size_um], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def process_image(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: Settings | None = None,
    pixel_size_um: float | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Analyse one image into ``out_dir`` and return its summary row; never raises.

    The row's ``status`` is ``ok`` (``reason`` says "up to date" when an identical result
    already existed) or ``failed`` with a one-line ``reason``.
    """
    from .analysis import AnalysisError, analyze
    from .report import file_sha256, summary_row, write_results

    settings = settings or Settings()
    path = Path(path)
    out = Path(out_dir)
    name = str(path)
    try:
        try:
            sha = file_sha256(path) if path.is_file() else ""
        except OSError as exc:
            return summary_row(None, image=name, status="failed",
                               reason=f"{path}: cannot read ({exc.strerror})")
        digest = job_digest(sha, settings, pixel_size_um)
        existing = out / "result.json"
        if existing.is_file():
            try:
                old = json.loads(existing.read_text())
            except (OSError, ValueError):
                old = None
            if old and (old.get("software") or {}).get("job_digest") == digest and not force:
                return summary_row(old, image=name, reason="up to date", result_dir=str(out))
            if not force:
                return summary_row(
                    None, image=name, status="failed", result_dir=str(out),
                    reason=f"{out}: results of a different input or settings exist "
                           "(use --force to overwrite)")
        with warnings.catch_warnings():
            # numerical warnings of libraries on degenerate regions are not for the user;
            # what the user must know is in the result's warnings and notes
            warnings.simplefilter("ignore", RuntimeWarning)
            analysis = analyze(path, pixel_size_um, settings)
        write_results(analysis, out, force=True, input_sha256=sha or None, job_digest=digest)
        result = json.loads((out / "result.json").read_text())
        return summary_row(result, image=name, result_dir=str(out))
    except AnalysisError as exc:
        return summary_row(None, image=name, status="failed", reason=_one_line(exc))
    except MemoryError:
        return summary_row(None, image=name, status="failed",
                           reason=f"{path}: out of memory (image too large for this machine)")
    except OSError as exc:
        where = exc.filename or out
        return summary_row(None, image=name, status="failed",
                           reason=f"{where}: cannot write results ({exc.strerror or exc})")
    except Exception as exc:  # noqa: BLE001 - one bad image must not stop a batch
        ours = [f for f in traceback.extract_tb(exc.__traceback__)
                if Path(f.filename).parent.name in ("pipeline", "plugins")]
        where = f" [{Path(ours[-1].filename).name}:{ours[-1].lineno}]" if ours else ""
        return summary_row(None, image=name, status="failed",
                           reason=f"{path}: internal error {type(exc).__name__}: "
                                  f"{_one_line(exc)}{where} (please report)")


def _process_star(args: tuple) -> dict[str, Any]:
    return process_image(*args)


def limit_threads(n_threads: int) -> None:
    """Let this process's compiled kernels (numba, OpenCV) use at most ``n_threads`` threads.

    Batch workers call it so that N worker processes on N cores do not each start a thread per
    core: oversubscribed cores cost more in switching than the threads gain.
    """
    import cv2
    import numba

    n_threads = max(1, int(n_threads))
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    cv2.setNumThreads(n_threads)


def _relax_malloc_trim() -> None:
    """Undo ``MALLOC_TRIM_THRESHOLD_=65536``, which Dask's nanny sets for its workers.

    With that variable glibc hands every large array back to the kernel when it is freed and
    maps it anew on the next allocation: an analysis, which allocates and frees image-sized
    arrays stage after stage, then runs about 1.5x slower (measured on 2048x1536 phantoms: 5.9
    s instead of 3.8 s per image). Big mmap and trim thresholds (32 MB, 256 MB) bring it back
    to 4.0 s; freed memory is still returned once more than 256 MB of it is free.
    """
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


def _process_star_single_thread(args: tuple) -> dict[str, Any]:
    # a Dask worker runs one task per thread it has: like Dask's own OMP_NUM_THREADS=1
    limit_threads(1)
    _relax_malloc_trim()
    return process_image(*args)


# --------------------------------------------------------------------------------------------
# many images


def run(
    paths: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    *,
    settings: Settings | None = None,
    pixel_size_um: float | None = None,
    workers: int | None = None,
    client: Any = None,
    scheduler: str | None = None,
    force: bool = False,
    progress: bool | Callable[[dict[str, Any], int, int], None] = False,
    report: bool = True,
) -> BatchOutcome:
    """Analyse many images; write per-image folders, summary.csv, errors.log and report.html.

    Parameters
    ----------
    paths : iterable of path-like
        Files, folders (searched recursively) and glob patterns.
    out : path-like
        Output folder DIR.
    settings : Settings, optional
    pixel_size_um : float, optional
        Pixel size for every image, overriding metadata.
    workers : int, optional
        Local worker processes (default: the machine's cores; 1 runs in this process).
    client : dask.distributed.Client, optional
        Run on this Dask cluster instead of local processes.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``) to connect to.
    force : bool
        Redo images whose results exist, overwriting them.
    progress : bool or callable
        True shows a progress bar on stderr; a callable gets ``(row, done, total)``.
    report : bool
        Write report.html.
    """
    settings = settings or Settings()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise PermissionError(f"{out_dir}: output folder is not writable")
    images, skipped = collect_inputs(paths, exclude=out_dir)
    names = result_names(images)
    jobs = [(str(p), str(out_dir / n), settings, pixel_size_um, force)
            for p, n in zip(images, names)]
    rows: list[dict[str, Any] | None] = [None] * len(jobs)
    errors_log = out_dir / "errors.log"

    bar = None
    callback = progress if callable(progress) else None
    if progress is True and jobs:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), unit="image", dynamic_ncols=True, desc="sempore")

    n_failed = 0

    def record(i: int, row: dict[str, Any], done: int) -> None:
        nonlocal n_failed
        rows[i] = row
        if row["status"] != "ok":
            n_failed += 1
            with errors_log.open("a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}\t{row['image']}\t"
                         f"{row['reason']}\n")
        if bar is not None:
            bar.set_postfix(ok=done - n_failed, failed=n_failed, refresh=False)
            bar.update(1)
        if callback is not None:
            callback(row, done, len(jobs))

    try:
        if client is not None or scheduler is not None:
            _run_dask(jobs, record, client=client, scheduler=scheduler)
        else:
            n_workers = workers or os.cpu_count() or 1
            n_workers = max(1, min(n_workers, len(jobs)))
            if n_workers == 1:
                for i, job in enumerate(jobs):
                    record(i, process_image(*job), i + 1)
            else:
                _run_local(jobs, record, n_workers)
    finally:
        if bar is not None:
            bar.close()
        done_rows = [r for r in rows if r is not None]
        if done_rows:
            from .report import write_html_report, write_summary

            write_summary(done_rows, out_dir)
            if report:
                write_html_report(out_dir, done_rows, thumbnail_px=settings.report.thumbnail_px)
    return BatchOutcome(rows=[r for r in rows if r is not None], skipped_inputs=skipped,
                        out_dir=out_dir)


def _run_local(jobs: list[tuple], record: Callable, n_workers: int) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: workers start clean (no inherited threads from numba/BLAS in the parent)
    ctx = mp.get_context("spawn")
    share = max(1, (os.cpu_count() or 1) // n_workers)
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=limit_threads,
                             initargs=(share,)) as pool:
        futures = {pool.submit(_process_star, job): i for i, job in enumerate(jobs)}
        for done, fut in enumerate(as_completed(futures), start=1):
            i = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker fails one image
                from .report import summary_row

                row = summary_row(None, image=jobs[i][0], status="failed",
                                  reason=f"{jobs[i][0]}: worker crashed ({_one_line(exc)})")
            record(i, row, done)


def _run_dask(jobs: list[tuple], record: Callable, *, client: Any = None,
              scheduler: str | None = None) -> None:
    try:
        from dask.distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("Dask is not installed: pip install 'sempore[dask]'") from exc
    own = client is None
    if own:
        client = Client(scheduler, timeout="20s")
    try:
        futures = [client.submit(_process_star_single_thread, job, pure=False,
                                 key=f"sempore-{i}-{Path(job[0]).name}")
                   for i, job in enumerate(jobs)]
        index = {f.key: i for i, f in enumerate(futures)}
        for done, fut in enumerate(as_completed(futures), start=1):
            i = index[fut.key]
            try:
                row = fut.result()
            except Exception as exc:  # noqa: BLE001
                from .report import summary_row

                row = summary_row(None, image=jobs[i][0], status="failed",
                                  reason=f"{jobs[i][0]}: dask task failed ({_one_line(exc)})")
            record(i, row, done)
    finally:
        if own:
            client.close()
