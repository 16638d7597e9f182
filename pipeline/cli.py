"""The ``sempore`` command.

    sempore analyze PATH [PATH ...] --out DIR [--pixel-size UM] [--config FILE]
                    [--surface auto|top|bottom|left|right|none] [--workers N]
                    [--scheduler ADDRESS] [--exclude ROWS,COLS ...] [--force]
    sempore combine RESULT_DIR [RESULT_DIR ...] --out DIR [--force]
    sempore info PATH [PATH ...]
    sempore config --default
    sempore view [RESULTS_DIR]

Only the standard library is imported at start-up; numpy and friends load when a command needs
them, napari (Qt) only for ``view`` and Dask only with ``--scheduler``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

SURFACES = ("auto", "top", "bottom", "left", "right", "none")  # as pipeline.geometry.SURFACES


def _error(message: str) -> int:
    print(f"sempore: error: {message}", file=sys.stderr)
    return 2


def _settings_from_args(args: argparse.Namespace):
    from .settings import Settings, load_settings

    settings = load_settings(args.config) if args.config else Settings()
    changes: dict[str, dict] = {}
    if args.surface:
        changes["geometry"] = {"surface": args.surface}
    if getattr(args, "method", None):
        changes["segment"] = {"method": args.method}
    if getattr(args, "no_figures", False):
        changes["report"] = {"figures": False}
    if getattr(args, "exclude", None):
        changes["io"] = {"exclude": [*settings.io.exclude, *args.exclude]}
    if getattr(args, "scale_bar_um", None) is not None:
        changes["io"] = {**changes.get("io", {}), "scale_bar_um": args.scale_bar_um}
    return settings.replace(**changes) if changes else settings


def _scale_bar_arg(text: str) -> float | str:
    """``--scale-bar-um``: a positive length in µm, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a length in µm or 'auto': {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive length in µm, not {text}")
    return value


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .batch import run

    try:
        settings = _settings_from_args(args)
    except ValueError as exc:
        return _error(str(exc))
    if args.pixel_size is not None and not args.pixel_size > 0:
        return _error(f"--pixel-size must be a positive number of µm, not {args.pixel_size}")
    quiet = args.quiet
    try:
        outcome = run(args.paths, args.out, settings=settings, pixel_size_um=args.pixel_size,
                      workers=args.workers, scheduler=args.scheduler, force=args.force,
                      progress=not quiet and sys.stderr.isatty() or args.progress)
    except PermissionError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{args.out}: cannot write results ({exc.strerror or exc})")
    if outcome.skipped_inputs and not quiet:
        # companions of images (sidecars, truth files, notes) are expected: one line for all
        names = [Path(p).name for p, _ in outcome.skipped_inputs]
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        print(f"sempore: skipped {len(names)} file(s) that are not images ({shown})",
              file=sys.stderr)
    for row in outcome.rows:
        if row["status"] != "ok":
            print(f"sempore: failed: {row['reason']}", file=sys.stderr)
    if not outcome.rows:
        return _error("no image files found in " + ", ".join(map(str, args.paths)))
    if not quiet:
        from .analysis import AMBIGUOUS_NOTE, UNCERTAIN_METHOD_NOTE

        for note, message in (
                (UNCERTAIN_METHOD_NOTE, "auto was unsure of the segmentation method on {n} "
                 "image(s) ({shown}): check their overlay.png, or set --method"),
                (AMBIGUOUS_NOTE, "the segmentation is ambiguous on {n} image(s) ({shown}): "
                 "review them first (overlay.png, or `sempore view`)")):
            flagged = [Path(str(r["image"])).name for r in outcome.rows
                       if note in str(r.get("notes") or "")]
            if flagged:
                shown = ", ".join(flagged[:4]) + (", ..." if len(flagged) > 4 else "")
                print("sempore: " + message.format(n=len(flagged), shown=shown),
                      file=sys.stderr)
        up_to_date = sum(1 for r in outcome.rows if r.get("reason") == "up to date")
        extra = f" ({up_to_date} already up to date)" if up_to_date else ""
        print(f"sempore: {outcome.n_ok} of {len(outcome.rows)} images analysed{extra}; "
              f"results in {outcome.out_dir} (summary.csv, report.html)", file=sys.stderr)
    return outcome.exit_code


def _cmd_info(args: argparse.Namespace) -> int:
    from .batch import collect_inputs
    from .io import InputError, load_micrograph

    status = 0
    paths, _ = collect_inputs(args.paths)  # folders and globs as for analyze
    if not paths:
        print("sempore: error: no image files in " + " ".join(args.paths), file=sys.stderr)
        return 1
    for path in paths:
        try:
            m = load_micrograph(path, scale_bar_um=args.scale_bar_um)
        except InputError as exc:
            print(f"sempore: error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(json.dumps(m.info(), indent=1, default=str, ensure_ascii=False))
    return status


def _cmd_combine(args: argparse.Namespace) -> int:
    from .combine import CombineError, combine_result_dirs

    try:
        combined = combine_result_dirs(args.results)
        written = combined.save(args.out, force=args.force)
    except (CombineError, FileExistsError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{args.out}: cannot write results ({exc.strerror or exc})")
    if not args.quiet:
        for note in combined.notes:
            print(f"sempore: note: {note}", file=sys.stderr)
        c = combined.criteria
        ratio = c.get("top_to_bottom_pore_size_ratio")
        ratio_text = f"; top/bottom pore size ratio {ratio:.3g}" if ratio else ""
        print(f"sempore: {len(combined.profile)} depth bins from {len(combined.sources)} images"
              f"{ratio_text}; written {', '.join(p.name for p in written)} to {args.out}",
              file=sys.stderr)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from .settings import default_toml, load_settings

    if args.check:
        try:
            load_settings(args.check)
        except ValueError as exc:
            return _error(str(exc))
        print(f"{args.check}: settings OK")
        return 0
    print(default_toml())
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    try:
        from plugins.napari_sempore import launch
    except ImportError as exc:
        return _error(f"napari is not installed ({exc}); pip install 'sempore[napari]'")
    try:
        launch(args.results)
    except (ImportError, FileNotFoundError) as exc:
        return _error(str(exc))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sempore",
        description="Pores, depth profiles, asymmetry and network isotropy of porous membranes "
                    "from SEM cross-sections.")
    parser.add_argument("--version", action="version", version=f"sempore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse images and folders",
                       description="Analyse SEM micrographs; write DIR/<stem>/ result folders, "
                                   "DIR/summary.csv and DIR/report.html.")
    a.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or globs")
    a.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    a.add_argument("--pixel-size", type=float, metavar="UM",
                   help="pixel size in µm (overrides metadata; needed for files without it)")
    a.add_argument("--scale-bar-um", type=_scale_bar_arg, metavar="UM|auto",
                   help="the length in µm the scale bar or ruler in the data bar (or a "
                        "burned-in label) states: pixel size = UM / its measured length; "
                        "'auto' reads it from the bar's label (overrides metadata; "
                        "--pixel-size overrides it)")
    a.add_argument("--config", metavar="FILE", help="settings TOML (see `sempore config`)")
    a.add_argument("--surface", choices=SURFACES, help="reference surface (default auto)")
    a.add_argument("--method", choices=("auto", "dark", "topographic"),
                   help="segmentation method (default auto)")
    a.add_argument("--exclude", action="append", metavar="ROWS,COLS",
                   help="leave a rectangle out of every image, as numpy slices of the image above "
                        "the data bar, e.g. --exclude=-60:,-250: (a logo in the bottom-right "
                        "corner; write = before a leading minus); repeatable")
    a.add_argument("--workers", "-j", type=int, metavar="N",
                   help="parallel worker processes (default: number of cores)")
    a.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster, e.g. tcp://host:8786")
    a.add_argument("--force", action="store_true", help="overwrite existing results")
    a.add_argument("--no-figures", action="store_true", help="skip overlay.png and profile.png")
    a.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal")
    a.add_argument("--quiet", "-q", action="store_true", help="only print errors")
    a.set_defaults(func=_cmd_analyze)

    m = sub.add_parser("combine", help="one depth profile from images at several magnifications",
                       description="Combine the depth profiles of result folders of one membrane "
                                   "imaged at several magnifications: at every depth the finest "
                                   "image that resolves the pores is used (pipeline.combine).")
    m.add_argument("results", nargs="+", metavar="RESULT_DIR",
                   help="per-image result folders written by `sempore analyze`")
    m.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    m.add_argument("--force", action="store_true", help="overwrite existing files")
    m.add_argument("--quiet", "-q", action="store_true", help="only print errors")
    m.set_defaults(func=_cmd_combine)

    i = sub.add_parser("info", help="print what sempore reads from files (JSON)")
    i.add_argument("paths", nargs="+", metavar="PATH")
    i.add_argument("--scale-bar-um", type=_scale_bar_arg, metavar="UM|auto",
                   help="the length in µm the drawn scale bar states, or 'auto' to read its "
                        "label (pixel size from it)")
    i.set_defaults(func=_cmd_info)

    c = sub.add_parser("config", help="print the default settings file")
    c.add_argument("--default", action="store_true", help="print a commented default file")
    c.add_argument("--check", metavar="FILE", help="validate a settings file")
    c.set_defaults(func=_cmd_config)

    v = sub.add_parser("view", help="review results in napari")
    v.add_argument("results", nargs="?", metavar="RESULTS_DIR")
    v.set_defaults(func=_cmd_view)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("sempore: interrupted; finished images are kept, run again to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
