"""Write example_images/: four synthetic phantoms with their truth, plus two real micrographs.

    python tools/make_example_images.py [--out example_images] [--real /work/shared/real]

Deterministic: the phantoms come from fixed seeds of
:func:`pipeline.synthetic.make_membrane_phantom`.
Each phantom is an 8-bit TIFF with FEI/Thermo metadata (pixel size, data bar height) and a black
data bar, with ``<stem>.truth.json`` (known values) and ``<stem>.pores.png`` (truth pore mask,
full frame, data-bar rows 0) beside it. The real files (MIT licence) are copied with their notices
(NOTICE.md) and, for the Hitachi BMP that carries no metadata, a Hitachi-style ``.txt`` sidecar
whose pixel size was measured from the burned-in ruler (see /work/shared/real/SOURCES.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import synthetic as syn  # noqa: E402

#: Each phantom: file stem -> (make_membrane_phantom keyword arguments, one-line description).
PHANTOMS: dict[str, tuple[dict, str]] = {
    "phantom_sponge_internal_minimum_dark": (
        dict(shape=(720, 1024), pixel_size_um=0.05, morphology="sponge", rendering="dark",
             background="dark", surfaces="top", profile="internal_minimum",
             pore_size_range_um=(0.25, 1.5), min_layer_depth_um=6.0, porosity=0.5,
             tilt_deg=1.5, bend_px=4.0, seed=101, rim_width_px=1.5, blur_px=1.0,
             shot_noise=0.06, scanline_noise=0.02, illumination_gradient=0.2),
        "dark-pore (BSE-like) sponge under a top surface, internal minimum-pore layer 6 µm "
        "deep (designed 0.25 µm pores there, 1.5 µm at the surface and at the deepest visible "
        "depth); dark background above; the band runs off the bottom of the frame",
    ),
    "phantom_cells_symmetric_topographic": (
        dict(shape=(720, 1024), pixel_size_um=0.25, morphology="cells",
             rendering="topographic", background="grey", surfaces="both", profile="uniform",
             pore_size_um=5.0, porosity=0.78, thickness_um=130.0, tilt_deg=-1.0, bend_px=3.0,
             seed=202, rim_width_px=1.6, blur_px=1.0, shot_noise=0.07, scanline_noise=0.015,
             illumination_gradient=0.25, floor_shading=0.4, rim_strength=0.35, holes=0.15,
             background_level=0.62),
        "secondary-electron (topographic) closed-cell film, uniform 5 µm cells with bright "
        "walls, both surfaces in view on a smooth grey background (like the real Hitachi "
        "cross-section); symmetric",
    ),
    "phantom_gradient_both_surfaces_bright": (
        dict(shape=(720, 1024), pixel_size_um=0.1, morphology="sponge",
             rendering="topographic", background="bright", surfaces="both",
             profile="gradient_increasing", pore_size_range_um=(0.5, 2.5), porosity=0.55,
             thickness_um=44.0, tilt_deg=2.0, bend_px=5.0, seed=303, rim_width_px=1.8,
             blur_px=1.0, shot_noise=0.05, scanline_noise=0.02, illumination_gradient=0.2),
        "topographic sponge whose pore size grows with depth from the top surface (0.5 to "
        "2.5 µm, log-linear), both surfaces in view, saturated white charging bands above and "
        "below",
    ),
    "phantom_tilted_fingers_debris": (
        dict(shape=(720, 1024), pixel_size_um=0.08, morphology="fingers",
             rendering="topographic", background="dark", surfaces="top", profile="uniform",
             pore_size_um=0.5, porosity=0.45, skin_um=0.4, tilt_deg=7.0, bend_px=6.0,
             debris=True, seed=404, rim_width_px=1.5, blur_px=1.2, shot_noise=0.08,
             scanline_noise=0.03, illumination_gradient=0.3),
        "NIPS-like membrane tilted by 7° (counter-clockwise): dense 0.4 µm skin, finger-like "
        "macrovoids under it in a 0.5 µm sponge, a fragment of debris in the dark background "
        "above the surface",
    ),
}

REAL_FILES = {
    "polymer_membrane_xsection_hitachi.bmp": (
        "real Hitachi FE-SEM cross-section of a porous polymer membrane film (closed cellular "
        "pores with bright walls), 1280x960 BMP without metadata; black Hitachi data bar in rows "
        "896-959 (ruler '100um'); film top at about row 100. Pixel size 0.2488 µm/px, measured "
        "from the ruler (402 px = 100 µm), given in the sidecar "
        "polymer_membrane_xsection_hitachi.txt"),
    "porous_aggregate_fei.tif": (
        "real FEI Quanta FEG image (ETD, 10 kV, x1000) of a porous crystalline aggregate, pores "
        "of 1-40 µm; 1536x1103 8-bit TIFF with FEI metadata: 0.134896 µm/px, data bar below "
        "row 1023 (79 rows). Not a membrane cross-section: no surface in view (analyse with "
        "--surface none). It is here for the loader (FEI metadata, data bar) and as a warning "
        "case: its pore segmentation is not meaningful. The rough crystal surface puts bright "
        "edges around every grain face, which the topographic method takes for pore rims "
        "(porosity 0.68, grain faces labelled pore), while the dark method splits faces from "
        "edges (0.70); `auto` is undecided (P(topographic) 0.51) and says so in result.json's "
        "notes. The author's own adaptive threshold (455 pores, median ECD 1.71 µm) counts only "
        "the dark holes"),
}

HITACHI_SIDECAR = (
    "[SemImageFile]\n"
    "Comment=NOT WRITTEN BY THE INSTRUMENT: this sidecar was written by sempore's "
    "tools/make_example_images.py. PixelSize was measured from the data-bar ruler burned into "
    "the image (402 px = 100 um, see NOTICE.md); the other values were read from the "
    "data-bar text.\n"
    """\
InstructName=Hitachi FE-SEM
ImageName=polymer_membrane_xsection_hitachi.bmp
DataSize=1280x896
PixelSize=248.8
AcceleratingVoltage=1000 Volt
Magnification=400
WorkingDistance=13800 um
SignalName=SE(M)
""")


def _notice(real_dir: Path) -> str:
    sources = (real_dir / "SOURCES.md").read_text()
    lines = sources.splitlines()
    header = [ln for ln in lines if ln.startswith("| file |") or ln.startswith("|---")]
    rows = [ln for ln in lines if any(ln.startswith(f"| {name} ") for name in REAL_FILES)]
    notices = sources[sources.index("## Notices"):]
    return (
        "# Third-party files in this folder\n\n"
        "The two real micrographs below are copied unchanged from public repositories under the "
        "MIT licence (rows from sempore's SOURCES.md). The `.txt` sidecar of the Hitachi image "
        "is ours, not the instrument's (its pixel size was measured from the burned-in "
        "ruler).\n\n"
        + "\n".join(header + rows) + "\n\n" + notices.rstrip() + "\n"
    )


def _readme(phantoms: dict[str, syn.Phantom]) -> str:
    out = [
        "# Example images",
        "",
        "Run `sempore analyze example_images --out results` on this folder. It holds four "
        "synthetic phantoms with known truth and two real micrographs. Everything here is "
        "generated by `python tools/make_example_images.py` (deterministic); do not edit by "
        "hand.",
        "",
        "Per phantom `<stem>.tif` (8-bit, FEI/Thermo metadata in TIFF tag 34682 giving the pixel "
        "size and the image height above the black data bar):",
        "",
        "- `<stem>.truth.json` — the known values: `truth.kind` (symmetric | gradient | "
        "internal_minimum), `gradient_direction`, `min_layer_depth_um` and "
        "`min_layer_pore_size_um` (designed), `thickness_um` (perpendicular distance between "
        "the surfaces; null when only one is in view), `porosity` and `mean_pore_size_um` "
        "(realised, from the truth mask), the designed profile `designed_depth_um[]` / "
        "`designed_pore_size_um[]` (pore DIAMETER against depth from `reference_surface`), the "
        "surface rows per column `top_px[]` / `bottom_px[]`, and every generation parameter "
        "(`params`; `pipeline.synthetic.phantom_from_params(params)` regenerates the phantom).",
        "- `<stem>.pores.png` — the truth pore mask (255 = pore) at the file's full size, "
        "data-bar rows 0. The truth local pore size is "
        "`pipeline.size.local_thickness(mask)` of it.",
        "",
        "| file | what it is | px (µm) | thickness (µm) | porosity | mean pore size (µm) |",
        "|---|---|---|---|---|---|",
    ]
    for stem, ph in phantoms.items():
        t = ph.truth
        thick = "—" if t["thickness_um"] is None else f"{t['thickness_um']:.2f}"
        out.append(
            f"| {stem}.tif | {PHANTOMS[stem][1]}; truth kind `{t['kind']}`"
            + (f", direction `{t['gradient_direction']}`" if t["gradient_direction"] else "")
            + (f", minimum layer at {t['min_layer_depth_um']:.2f} µm" if
               t["min_layer_depth_um"] is not None else "")
            + f" | {ph.pixel_size_um:g} | {thick} | {t['porosity']:.3f} | "
            f"{t['mean_pore_size_um']:.3f} |")
    out += [
        "",
        "Real micrographs (third-party, MIT licence; see NOTICE.md):",
        "",
    ]
    for name, text in REAL_FILES.items():
        out.append(f"- `{name}` — {text}.")
    out += [
        "",
        "The phantom files are small on purpose; `pipeline.synthetic.random_phantom(seed)` draws "
        "as many varied phantoms (morphology, rendering, noise, tilt, background, profile) as a "
        "test needs.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "example_images"))
    parser.add_argument("--real", default="/work/shared/real",
                        help="folder holding the real micrographs and SOURCES.md")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    phantoms = {}
    for stem, (kw, _) in PHANTOMS.items():
        ph = syn.make_membrane_phantom(**kw)
        ph.save(out / f"{stem}.tif")
        phantoms[stem] = ph
        print(f"{stem}.tif  kind={ph.truth['kind']}  porosity={ph.truth['porosity']:.3f}  "
              f"mean pore {ph.truth['mean_pore_size_um']:.3f} µm")
    real = Path(args.real)
    if (real / "SOURCES.md").exists():
        for name in REAL_FILES:
            shutil.copyfile(real / name, out / name)
        (out / "polymer_membrane_xsection_hitachi.txt").write_text(HITACHI_SIDECAR)
        (out / "NOTICE.md").write_text(_notice(real))
    else:
        print(f"warning: {real}/SOURCES.md not found; real micrographs not copied",
              file=sys.stderr)
    (out / "README.md").write_text(_readme(phantoms))
    sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    print(json.dumps({"files": len(sizes), "total_MB": round(sum(sizes.values()) / 1e6, 2),
                      "largest_MB": round(max(sizes.values()) / 1e6, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
