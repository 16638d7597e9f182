"""Scale bars: their measured length and their label as read, against what was drawn.

    python benchmarks/bench_scalebar.py [--seeds 20]      # about 10 s here

For the four real micrographs of ``tests/data/real`` (known pixel size: metadata or SOURCES.md)
and for data bars and labels drawn by three renderers at random pixel sizes (0.005-0.5 µm/px):
``pipeline.synthetic.draw_databar`` (FEI-style; its "text" is random glyphs, so its label must
stay unread), ``tests/heldout.py`` ``hitachi_bar`` (a tick ruler on a base line, Hershey text) and
``zeiss_panel`` (a thick bar, Hershey text), and ``burn_label`` (labels burned into the frame,
Pillow's font or Hershey, in a box or under the text). Prints one markdown table: bars found, the
largest length error (px), labels read right / unread / read wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from pipeline import synthetic  # noqa: E402
from pipeline.burnin import detect_annotations  # noqa: E402
from pipeline.io import load_micrograph, read_image  # noqa: E402
from pipeline.scalebar import find_scale_bar, read_scale_bar_label  # noqa: E402

from heldout import _nice_length_um, burn_label, hitachi_bar, zeiss_panel  # noqa: E402

REAL = {"polymer_membrane_xsection_hitachi.bmp": (100.0, 0.2488),
        "polymer_membrane_tilted_hitachi.bmp": (10.0, 0.0331),
        "porous_aggregate_fei.tif": (50.0, 0.134896),
        "nanoporous_gold_zeiss.tif": (0.02, 0.000543)}


def _tally(rows: dict, key: str, bar, true_px: float | None, got: float | None,
           true_um: float | None) -> None:
    r = rows.setdefault(key, {"n": 0, "found": 0, "err": 0.0, "right": 0, "unread": 0,
                              "wrong": 0})
    r["n"] += 1
    if bar is None:
        return
    r["found"] += 1
    if true_px is not None:
        r["err"] = max(r["err"], abs(bar.length_px - true_px))
    if got is None:
        r["unread"] += 1
    elif true_um is not None and np.isclose(got, true_um, rtol=1e-9):
        r["right"] += 1
    else:
        r["wrong"] += 1


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args(argv)
    rows: dict[str, dict] = {}
    for name, (label_um, px) in REAL.items():
        path = HERE.parent / "tests" / "data" / "real" / name
        m = load_micrograph(path)
        frame = read_image(path)[0]
        bar, _ = find_scale_bar(frame, m.databar_rows, m.annotations_px)
        got = read_scale_bar_label(frame, bar, m.databar_rows)[0] if bar else None
        _tally(rows, "real (4 files)", bar, label_um / px, got, label_um)
    rng = np.random.default_rng(0)
    for seed in range(args.seeds):
        px = float(np.exp(rng.uniform(np.log(0.005), np.log(0.5))))
        cols, bar_rows = int(rng.integers(700, 1600)), int(rng.integers(36, 90))
        for key, draw, share in (("heldout Hitachi ruler", hitachi_bar, 0.25),
                                 ("heldout Zeiss panel", zeiss_panel, 0.15)):
            frame = np.vstack([rng.integers(60, 200, (200, cols)).astype(np.uint8),
                               draw(cols, bar_rows, px)])
            bar, _ = find_scale_bar(frame, bar_rows)
            got = read_scale_bar_label(frame, bar, bar_rows)[0] if bar else None
            length_um = _nice_length_um(share * cols * px)
            drawn_px = length_um / px if key.endswith("ruler") else round(length_um / px)
            _tally(rows, key, bar, drawn_px, got, length_um)
        panel, info = synthetic.draw_databar(cols, bar_rows, px, rng)
        frame = np.vstack([rng.integers(60, 200, (200, cols)).astype(np.uint8), panel])
        bar, _ = find_scale_bar(frame, bar_rows)
        got = read_scale_bar_label(frame, bar, bar_rows)[0] if bar else None
        _tally(rows, "synthetic FEI-style (random glyphs)", bar, info["scale_bar_px"], got, None)
        noise = ndi.gaussian_filter(rng.random((400, 600)), 3)
        img = np.clip(np.clip(0.5 + 2 * (noise - 0.5), 0, 1) * 200 + 20
                      + rng.normal(0, 4, noise.shape), 0, 255).astype(np.uint8)
        label_rng = np.random.default_rng(seed)
        true_um = float(np.random.default_rng(seed).choice([1, 2, 5, 10, 20, 50]))
        out, drawn = burn_label(img, label_rng, style=("box", "bar")[seed % 2],
                                corner=("br", "tl", "bl")[seed % 3], scale=(1.0, 1.5)[seed % 2],
                                box_level=(0, 255)[seed // 2 % 2],
                                font=("pil", "hershey")[seed // 4 % 2])
        labels = detect_annotations(out.astype(np.float32) / 255)
        bar, _ = find_scale_bar(out, 0, labels)
        got = read_scale_bar_label(out, bar, 0, labels)[0] if bar else None
        ink = (out == (255 if (0, 255)[seed // 2 % 2] < 128 else 0)) & drawn
        _tally(rows, "burned-in labels", bar, float(ink.sum(axis=1).max()), got, true_um)
    print("| drawn by | n | bar found | largest length error (px) | label read right | unread "
          "| read wrong |")
    print("|---|---|---|---|---|---|---|")
    for key, r in rows.items():
        print(f"| {key} | {r['n']} | {r['found']} | {r['err']:.2f} | {r['right']} | "
              f"{r['unread']} | {r['wrong']} |")


if __name__ == "__main__":
    main()
