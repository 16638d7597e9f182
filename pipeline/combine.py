"""Depth profiles of one membrane imaged at several magnifications, combined into one.

Asymmetric membranes span pore sizes no single micrograph resolves: top-to-bottom pore diameter
ratios of 1:10 to 1:1000 are reported in the membrane literature, and labs image the skin side at
high magnification and the whole cross-section at low magnification. Each image's own profile
flags the bins whose pores are below its segmentation's resolution limit
(``at_resolution_limit``: sizes there are floored, too large); this module puts the images'
profiles on one depth axis (each measured from its own view of the same reference surface) and
takes, at every depth, the finest image that resolves the pores there.

Rules (:func:`combine_profiles`):

- a bin is **usable** when it is reliable (enough pore pixels) and not at its image's resolution
  limit; sources are ranked by pixel size, finest first;
- a usable bin is taken unless its centre depth lies inside a bin already taken from a finer
  image; depths no image resolves take the finest image's reliable bin there, flagged
  ``at_resolution_limit`` (its size is an upper bound);
- where two images both resolve the pores, their agreement is measured (median ratio of their
  pore sizes at the same depths, median porosity difference) and a disagreement beyond 20 % is
  noted: the images may not show the same membrane, or their surfaces or pixel sizes differ;
- the criteria of :mod:`pipeline.structure` whose definitions need only the profile are
  recomputed on the combined one (surface zone ``[0, d/16)``, interior, opposite zone
  ``>= d - d/16``, their ratios and porosities), with ``d`` the largest thickness any source
  measured (else the deepest depth seen, said so). Zone means weight each bin by its pore area
  per unit membrane width (porosity x bin width), so images of different fields of view and
  pixel sizes count by the membrane they show, not by their pixel counts;
- the dense skin (``skin_thickness_um``) is the one the finest image measured (``skin_source``).

Not combined: the structure verdict and its bootstrap (they need the pixels of one image) and
the 99th-percentile maximum pore size (a profile keeps p90 only).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Two images whose pore sizes at the same depths differ by more than this factor (median ratio
#: beyond 1.2 or below 1/1.2) are noted as disagreeing.
AGREEMENT_TOLERANCE = 0.2
#: Columns of the combined profile beyond those of the sources' profiles.
SOURCE_COLUMNS = ("source", "pixel_size_um")
#: The profile columns a source must have.
REQUIRED_COLUMNS = ("depth_um", "depth_lo_um", "depth_hi_um", "porosity", "pore_size_um",
                    "reliable", "at_resolution_limit")


class CombineError(ValueError):
    """A source that cannot be combined (one line naming it and why)."""


@dataclass
class ProfileSource:
    """One image's depth profile and what is needed to place it.

    Attributes
    ----------
    name : str
        What the combined profile calls it (an image stem).
    pixel_size_um : float
    profile : DataFrame
        The image's depth profile (:func:`pipeline.profile.depth_profile`), depth in µm from its
        reference surface.
    thickness_um : float or None
        Membrane thickness measured on this image (both surfaces in view), else None.
    reference_surface : str or None
    skin_thickness_um : float or None
        The dense skin this image measured at its reference surface
        (``criteria.skin_thickness_um``), if any.
    """

    name: str
    pixel_size_um: float
    profile: pd.DataFrame
    thickness_um: float | None = None
    reference_surface: str | None = None
    skin_thickness_um: float | None = None

    @classmethod
    def from_analysis(cls, analysis: Any, name: str | None = None) -> ProfileSource:
        """From a :class:`pipeline.analysis.Analysis` (name: its file's stem)."""
        path = analysis.micrograph.path
        name = name or (Path(path).stem if path else "image")
        if analysis.profile is None:
            raise CombineError(f"{name}: no depth profile (no reference surface in view), so it "
                               "cannot be placed in depth")
        thickness = analysis.membrane.thickness_px
        return cls(name=name, pixel_size_um=float(analysis.pixel_size_um),
                   profile=analysis.profile,
                   thickness_um=None if thickness is None else float(thickness)
                   * float(analysis.pixel_size_um),
                   reference_surface=analysis.membrane.reference_surface,
                   skin_thickness_um=(analysis.criteria or {}).get("skin_thickness_um"))

    @classmethod
    def from_result_dir(cls, folder: str | Path) -> ProfileSource:
        """From one image's result folder written by ``sempore analyze`` (result.json and
        profile.csv)."""
        folder = Path(folder)
        try:
            result = json.loads((folder / "result.json").read_text())
        except FileNotFoundError:
            raise CombineError(f"{folder}: no result.json (not a sempore result folder)") from None
        except (OSError, ValueError) as exc:
            raise CombineError(f"{folder}: result.json unreadable ({exc})") from None
        if not (folder / "profile.csv").is_file() or result.get("profile") is None:
            raise CombineError(f"{folder}: no depth profile (no reference surface in view), so it "
                               "cannot be placed in depth")
        try:
            profile = pd.read_csv(folder / "profile.csv")
            pixel_size_um = float(result["image"]["pixel_size_um"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CombineError(f"{folder}: result unreadable ({type(exc).__name__}: {exc})"
                               ) from None
        membrane = result.get("membrane") or {}
        return cls(name=folder.name, pixel_size_um=pixel_size_um,
                   profile=profile, thickness_um=membrane.get("thickness_um"),
                   reference_surface=membrane.get("reference_surface"),
                   skin_thickness_um=(result.get("criteria") or {}).get("skin_thickness_um"))


@dataclass
class CombinedProfile:
    """Result of :func:`combine_profiles`.

    Attributes
    ----------
    profile : DataFrame
        One row per depth bin taken, sorted by depth: the sources' profile columns plus
        ``source`` and ``pixel_size_um`` (of the image the bin comes from).
    sources : list of dict
        Per source: ``name``, ``pixel_size_um``, ``thickness_um``, ``bins_used``, the depth
        range it resolves (``resolved_depth_um``, null when none) and the range used.
    agreement : list of dict
        Per pair of sources that both resolve some depth range: ``finer``, ``coarser``,
        ``depth_range_um``, ``n_bins``, ``pore_size_ratio`` (coarser / finer, median),
        ``porosity_difference`` (coarser - finer, median), ``agree``.
    criteria : dict
        The profile-only criteria of :mod:`pipeline.structure` on the combined profile, and the
        skin the finest image measured (``skin_thickness_um``, ``skin_source``).
    notes : list of str
    """

    profile: pd.DataFrame
    sources: list[dict[str, Any]]
    agreement: list[dict[str, Any]]
    criteria: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the profile table)."""
        return {"sources": self.sources, "agreement": self.agreement,
                "criteria": self.criteria, "notes": self.notes}

    def save(self, out_dir: str | Path, *, force: bool = False) -> list[Path]:
        """Write ``combined_profile.csv``, ``combined.json`` and ``combined_profile.png`` into
        ``out_dir``; existing files are kept unless ``force``."""
        from .report import _figure_png, atomic_write_text, to_jsonable

        out = Path(out_dir)
        names = ("combined_profile.csv", "combined.json", "combined_profile.png")
        existing = [n for n in names if (out / n).exists()]
        if existing and not force:
            raise FileExistsError(f"{out}: {', '.join(existing)} exist (use --force to replace)")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / names[0], self.profile.to_csv(index=False))
        atomic_write_text(out / names[1], json.dumps(to_jsonable(self.to_dict()), indent=1,
                                                     ensure_ascii=False))
        png = _figure_png(combined_figure(self))
        (out / names[2]).write_bytes(png)
        return [out / n for n in names]


def _check(source: ProfileSource) -> None:
    if not (source.pixel_size_um and source.pixel_size_um > 0):
        raise CombineError(f"{source.name}: pixel size unknown")
    missing = [c for c in REQUIRED_COLUMNS if c not in source.profile.columns]
    if missing:
        raise CombineError(f"{source.name}: profile lacks {', '.join(missing)}")


def _usable(profile: pd.DataFrame) -> np.ndarray:
    return (profile["reliable"].to_numpy(bool) & ~profile["at_resolution_limit"].to_numpy(bool)
            & np.isfinite(profile["pore_size_um"].to_numpy(float)))


def _covered(depth: float, taken: list[tuple[float, float]]) -> bool:
    return any(lo <= depth < hi for lo, hi in taken)


def _take(profile: pd.DataFrame, candidate: np.ndarray,
          taken: list[tuple[float, float]]) -> pd.DataFrame:
    """The candidate bins of ``profile`` whose centre no bin in ``taken`` covers; their depth
    ranges are added to ``taken``."""
    centre = profile["depth_um"].to_numpy(float)
    keep = np.array([bool(ok) and not _covered(c, taken)
                     for ok, c in zip(candidate, centre, strict=True)], bool)
    taken += list(zip(profile["depth_lo_um"].to_numpy(float)[keep],
                      profile["depth_hi_um"].to_numpy(float)[keep], strict=True))
    return profile[keep]


def _agreement(fine: ProfileSource, coarse: ProfileSource) -> dict[str, Any] | None:
    """Pore sizes and porosities of ``coarse`` interpolated at ``fine``'s resolved bin centres,
    where both resolve the pores."""
    f, c = fine.profile, coarse.profile
    fu, cu = _usable(f), _usable(c)
    if not fu.any() or not cu.any():
        return None
    cd = c["depth_um"].to_numpy(float)[cu]
    depth = f["depth_um"].to_numpy(float)[fu]
    # fine bins inside the span of the coarse resolved bins, with a resolved coarse bin on
    # each side (no interpolation across unresolved coarse bins)
    spans = list(zip(c["depth_lo_um"].to_numpy(float)[cu], c["depth_hi_um"].to_numpy(float)[cu],
                     strict=True))
    inside = np.array([_covered(d, spans) for d in depth])
    if not inside.any():
        return None
    size_c = np.interp(depth[inside], cd, c["pore_size_um"].to_numpy(float)[cu])
    por_c = np.interp(depth[inside], cd, c["porosity"].to_numpy(float)[cu])
    ratio = float(np.median(size_c / f["pore_size_um"].to_numpy(float)[fu][inside]))
    diff = float(np.median(por_c - f["porosity"].to_numpy(float)[fu][inside]))
    agree = 1.0 / (1.0 + AGREEMENT_TOLERANCE) <= ratio <= 1.0 + AGREEMENT_TOLERANCE
    return {"finer": fine.name, "coarser": coarse.name,
            "depth_range_um": [float(depth[inside].min()), float(depth[inside].max())],
            "n_bins": int(inside.sum()), "pore_size_ratio": round(ratio, 4),
            "porosity_difference": round(diff, 4), "agree": bool(agree)}


def _zone(profile: pd.DataFrame, lo: float, hi: float) -> tuple[float | None, float | None]:
    """Mean pore size (weighted by porosity x bin width) and porosity (weighted by bin width)
    of the bins whose centre lies in [lo, hi)."""
    d = profile["depth_um"].to_numpy(float)
    sel = (d >= lo) & (d < hi)
    if not sel.any():
        return None, None
    width = (profile["depth_hi_um"] - profile["depth_lo_um"]).to_numpy(float)[sel]
    por = profile["porosity"].to_numpy(float)[sel]
    size = profile["pore_size_um"].to_numpy(float)[sel]
    porosity = float(np.sum(por * width) / np.sum(width))
    w = por * width
    ok = np.isfinite(size) & (w > 0)
    mean = float(np.sum(size[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else None
    return mean, porosity


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def combined_criteria(profile: pd.DataFrame, thickness_um: float | None) -> dict[str, Any]:
    """The profile-only criteria (surface zone, interior, opposite zone; see
    docs/structure.md) of a combined profile. ``thickness_um`` None: the deepest depth seen is
    used as ``d`` and there is no opposite zone."""
    known = thickness_um is not None and thickness_um > 0
    d = float(thickness_um) if known else float(profile["depth_hi_um"].max())
    zone = d / 16.0
    surface, surface_por = _zone(profile, 0.0, zone)
    interior, interior_por = _zone(profile, zone, math.inf)
    opposite, opposite_por = _zone(profile, d - zone, math.inf) if known else (None, None)
    limit = profile["at_resolution_limit"].to_numpy(bool)
    depth = profile["depth_um"].to_numpy(float)
    return {
        "d_um": d, "thickness_known": bool(known), "surface_zone_um": zone,
        "surface_zone_pore_size_um": surface, "interior_pore_size_um": interior,
        "opposite_zone_pore_size_um": opposite,
        "surface_to_interior_ratio": _ratio(surface, interior),
        "top_to_bottom_pore_size_ratio": _ratio(surface, opposite),
        "surface_zone_porosity": surface_por, "interior_porosity": interior_por,
        "opposite_zone_porosity": opposite_por,
        # sizes from bins no image resolved are upper bounds
        "surface_zone_at_resolution_limit": bool(limit[depth < zone].any()),
    }


def combine_profiles(sources: Iterable[ProfileSource | Any]) -> CombinedProfile:
    """Combine the depth profiles of several images of one membrane (see the module docstring).

    Parameters
    ----------
    sources : iterable of ProfileSource or Analysis
        At least one; each with a depth profile measured from the same reference surface.

    Returns
    -------
    CombinedProfile

    Raises
    ------
    CombineError
        A source without a profile or pixel size, or sources measured from different surfaces
        of the membrane.
    """
    srcs = [s if isinstance(s, ProfileSource) else ProfileSource.from_analysis(s)
            for s in sources]
    if not srcs:
        raise CombineError("no profiles to combine")
    seen: dict[str, int] = {}
    for k, s in enumerate(srcs):
        _check(s)
        # two result folders of the same name (from different parents) stay apart
        seen[s.name] = seen.get(s.name, 0) + 1
        if seen[s.name] > 1:
            srcs[k] = dataclasses.replace(s, name=f"{s.name} ({seen[s.name]})")
    surfaces = {s.reference_surface for s in srcs if s.reference_surface}
    notes: list[str] = []
    if len(surfaces) > 1:
        notes.append(f"the images measure depth from different sides of the frame "
                     f"({', '.join(sorted(surfaces))}); combined as if all from the same "
                     "membrane surface: check that they show the same one")
    order = sorted(range(len(srcs)), key=lambda i: srcs[i].pixel_size_um)
    taken: list[tuple[float, float]] = []
    parts: list[pd.DataFrame] = []
    info: list[dict[str, Any]] = []
    for i in order:
        s = srcs[i]
        usable = _usable(s.profile)
        part = _take(s.profile, usable, taken)
        parts.append(part.assign(source=s.name, pixel_size_um=s.pixel_size_um))
        resolved = s.profile["depth_um"].to_numpy(float)[usable]
        info.append({"name": s.name, "pixel_size_um": s.pixel_size_um,
                     "thickness_um": s.thickness_um, "bins_used": len(part),
                     "resolved_depth_um": ([float(resolved.min()), float(resolved.max())]
                                           if resolved.size else None)})
    # depths no image resolves: the finest image's reliable bin, flagged (an upper bound)
    for i, entry in zip(order, info, strict=True):
        s = srcs[i]
        part = _take(s.profile, s.profile["reliable"].to_numpy(bool), taken)
        if len(part):
            parts.append(part.assign(source=s.name, pixel_size_um=s.pixel_size_um,
                                     at_resolution_limit=True))
            entry["bins_used"] += len(part)
            entry["bins_at_resolution_limit"] = len(part)
    profile = (pd.concat([q for q in parts if len(q)], ignore_index=True)
               .sort_values("depth_um", kind="stable").reset_index(drop=True)
               if any(len(q) for q in parts) else parts[0].iloc[:0])
    agreement = []
    for a_i, fine_i in enumerate(order):
        for coarse_i in order[a_i + 1:]:
            pair = _agreement(srcs[fine_i], srcs[coarse_i])
            if pair is None:
                continue
            agreement.append(pair)
            if not pair["agree"]:
                notes.append(f"{pair['coarser']} and {pair['finer']} disagree where both resolve "
                             f"the pores ({pair['depth_range_um'][0]:.1f}-"
                             f"{pair['depth_range_um'][1]:.1f} µm): pore size ratio "
                             f"{pair['pore_size_ratio']:.2f}; check that they show the same "
                             "membrane, surface and pixel size")
    if len(srcs) > 1 and not agreement:
        notes.append("no depth range is resolved by two images: each part of the combined "
                     "profile rests on its own image's calibration alone")
    thickness = [s.thickness_um for s in srcs if s.thickness_um]
    if not thickness:
        notes.append("no image shows both surfaces: d is the deepest depth seen, not the "
                     "thickness, and there is no opposite zone")
    criteria = combined_criteria(profile, max(thickness) if thickness else None)
    # the skin as the finest image that measured one saw it (it is a few pixels of any other)
    skins = sorted((s.pixel_size_um, s.name, s.skin_thickness_um) for s in srcs
                   if s.skin_thickness_um is not None)
    criteria["skin_thickness_um"] = skins[0][2] if skins else None
    criteria["skin_source"] = skins[0][1] if skins else None
    if criteria["surface_zone_at_resolution_limit"]:
        notes.append("no image resolves the pores of the surface zone: its pore size is an "
                     "upper bound (image the surface at a higher magnification)")
    return CombinedProfile(profile=profile, sources=info, agreement=agreement,
                           criteria=criteria, notes=notes)


def combined_figure(combined: CombinedProfile):
    """Pore size (log scale) and porosity against depth, one colour per source image; bins no
    image resolves drawn hollow."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=110)
    ax_size, ax_por = fig.subplots(1, 2, sharey=True)
    p = combined.profile
    for k, (name, part) in enumerate(p.groupby("source", sort=False)):
        colour = f"C{k % 10}"
        limit = part["at_resolution_limit"].to_numpy(bool)
        px = float(part["pixel_size_um"].iloc[0])
        label = f"{name} ({px:g} µm/px)"
        ax_size.plot(part["pore_size_um"][~limit], part["depth_um"][~limit], "o", ms=4,
                     color=colour, label=label)
        ax_size.plot(part["pore_size_um"][limit], part["depth_um"][limit], "o", ms=4,
                     mfc="none", color=colour)
        ax_por.plot(part["porosity"], part["depth_um"], "o", ms=4, color=colour)
    c = combined.criteria
    for ax in (ax_size, ax_por):
        ax.axhline(c["surface_zone_um"], color="0.5", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    ax_size.set_xscale("log")
    ax_size.invert_yaxis()
    ax_size.set_xlabel("pore size (local thickness, µm)")
    ax_size.set_ylabel("depth below the surface (µm)")
    ax_por.set_xlabel("porosity")
    ax_por.set_xlim(0, 1)
    ax_size.legend(fontsize=7, loc="lower left")
    ratio = c.get("top_to_bottom_pore_size_ratio")
    title = "combined depth profile"
    if ratio:
        title += f"; top/bottom pore size 1:{1 / ratio:.3g}"
    fig.suptitle(title + " (hollow: no image resolves the pores)", fontsize=9)
    fig.tight_layout()
    return fig


def combine_result_dirs(folders: Sequence[str | Path]) -> CombinedProfile:
    """:func:`combine_profiles` over result folders written by ``sempore analyze``."""
    return combine_profiles([ProfileSource.from_result_dir(f) for f in folders])
