"""Every stage parameter in one place, with physical units in the names.

A :class:`Settings` is a tree of small frozen dataclasses, one per stage. It can be read from
and written to TOML (``sempore config --default`` prints a commented default file), turned into a
plain dict for ``result.json`` and hashed, so that a batch can tell whether an existing result was
made with the same settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def parse_region(spec: str) -> tuple[slice, slice]:
    """Parse a rectangle given by hand as ``"ROWS,COLS"`` in numpy slice notation.

    Each side is ``start:stop`` in pixels of the image as analysed (above the data bar, the frame
    of ``annotations_px``), half-open; either end may be left out, and negative numbers count
    from the bottom or right edge, as in Python: ``"-60:,-250:"`` is the last 60 rows of the last
    250 columns, ``"0:120,:"`` the top 120 rows.

    Raises
    ------
    ValueError
        One line naming the spec and what is wrong with it.
    """
    text = str(spec).strip()
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"region {spec!r}: expected ROWS,COLS such as 0:120,-300: "
                         "(numpy slices of the image above the data bar)")
    out = []
    for part in parts:
        ends = part.strip().split(":")
        if len(ends) != 2:
            raise ValueError(f"region {spec!r}: {part.strip()!r} is not START:STOP")
        try:
            lo, hi = (int(e) if e.strip() else None for e in ends)
        except ValueError:
            raise ValueError(f"region {spec!r}: {part.strip()!r} holds something other than "
                             "whole pixel numbers") from None
        out.append(slice(lo, hi))
    return out[0], out[1]


@dataclass(frozen=True)
class IOSettings:
    """Loading and calibration."""

    #: Refuse images whose header declares more pixels than this (before allocating).
    max_pixels: int = 400_000_000
    #: Detect and remove an instrument data bar when no metadata says where it is.
    detect_databar: bool = True
    #: Find labels burned into the frame (scale bars, text boxes) and leave them out of the
    #: analysis (pipeline.burnin).
    detect_labels: bool = True
    #: Rectangles left out of every image by hand, as "ROWS,COLS" numpy slices of the image
    #: above the data bar (negative numbers count from the bottom or right edge), e.g.
    #: ["-60:,-250:"] for a logo in the bottom-right corner; measured like detected labels.
    exclude: tuple[str, ...] = ()
    #: Length in µm that the scale bar (or ruler) drawn in the data bar or in a burned-in label
    #: states; the pixel size is this over the bar's measured length (pipeline.scalebar), for
    #: files without metadata. The same for every image of a run; "auto" reads each image's
    #: label (an image whose label cannot be read fails). None: not used.
    scale_bar_um: float | str | None = None

    def __post_init__(self) -> None:
        value = self.scale_bar_um
        if value is not None and value != "auto" and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
            raise ValueError(f"[io] scale_bar_um must be a positive length in µm or \"auto\", "
                             f"not {value!r}")
        specs = (self.exclude,) if isinstance(self.exclude, str) else tuple(self.exclude)
        for spec in specs:
            try:
                parse_region(spec)
            except ValueError as exc:
                raise ValueError(f"[io] exclude: {exc}") from None
        object.__setattr__(self, "exclude", tuple(str(s) for s in specs))


@dataclass(frozen=True)
class GeometrySettings:
    """Membrane band and reference surface."""

    #: Which surface depth is measured from: auto, top, bottom, left, right or none.
    surface: str = "auto"
    #: Scale of the texture measure that tells membrane from background, in µm
    #: (None: adapt to the image, a fixed fraction of its size in pixels).
    texture_scale_um: float | None = None
    #: Largest surface bend kept when smoothing the surface line, as a fraction of image width.
    surface_smoothing_fraction: float = 0.05


@dataclass(frozen=True)
class SegmentSettings:
    """Pore segmentation."""

    #: auto, dark (material contrast: dark pores) or topographic (secondary electrons: pores
    #: enclosed by bright rims).
    method: str = "auto"
    #: Scale of slow illumination drift removed before thresholding, in µm
    #: (None: adapt, several times the typical pore size).
    background_scale_um: float | None = None
    #: Smallest pore kept, as an equivalent-circle diameter in µm (None: 2 px).
    min_pore_diameter_um: float | None = None
    #: Noise smoothing sigma in µm (None: adapt; dark 0.5-2 px from the noise and the finest
    #: feature; topographic 0.7 px, the partition its basin model was trained on, up to 1.4 px
    #: on images noisier than its training set).
    smoothing_um: float | None = None
    #: Images with more pixels than this are segmented in overlapping tiles (bounded memory on
    #: stitched montages; the tiled result equals the untiled one, tested).
    max_untiled_px: int = 12_000_000
    #: Side of a tile's core in pixels when tiling.
    tile_px: int = 2048
    #: Dark method: Wiener-deconvolve an image whose measured edge blur exceeds 1.6 px to 1 px
    #: (the blur the method's limits were measured at) before thresholding.
    deblur: bool = True
    #: Topographic method: segment again at 2, 4 and 8 times coarser and fill the interiors of
    #: pores too large for the full-resolution partition (its model saw pores of 4-48 px).
    large_pores: bool = True


@dataclass(frozen=True)
class ProfileSettings:
    """Depth profile."""

    #: Width of a depth bin in µm (None: adapt to thickness and pixel size).
    bin_width_um: float | None = None
    #: A bin needs at least this many pore pixels for its pore-size statistics.
    min_pore_pixels: int = 50


@dataclass(frozen=True)
class StructureSettings:
    """Classification of the depth profile."""

    #: Bootstrap resamples of column strips.
    n_bootstrap: int = 200
    #: Number of column strips the image is cut into for the bootstrap.
    n_strips: int = 16
    #: Significance level of the tests behind ``kind``.
    alpha: float = 0.05
    #: Pore sizes within this fraction above the minimum belong to the minimum layer.
    min_layer_tolerance: float = 0.2
    #: Smallest fitted end-to-end pore-size ratio that counts as a gradient.
    min_gradient_ratio: float = 1.5
    #: Random seed of the bootstrap (results are deterministic).
    seed: int = 0


@dataclass(frozen=True)
class IsotropySettings:
    """Network isotropy and topology."""

    #: Directions sampled by the mean-intercept-length analysis.
    n_directions: int = 36
    #: Degree of anisotropy above which the network is called oriented (None: calibrated default).
    da_threshold: float | None = None
    #: Run the intrusion (bubble-point analogue) simulation.
    breakthrough: bool = True


@dataclass(frozen=True)
class ReportSettings:
    """Output files."""

    #: Write overlay.png and profile.png.
    figures: bool = True
    #: Largest side of overlay images in the HTML report, in px.
    thumbnail_px: int = 800


@dataclass(frozen=True)
class Settings:
    """All parameters of an analysis."""

    io: IOSettings = field(default_factory=IOSettings)
    geometry: GeometrySettings = field(default_factory=GeometrySettings)
    segment: SegmentSettings = field(default_factory=SegmentSettings)
    profile: ProfileSettings = field(default_factory=ProfileSettings)
    structure: StructureSettings = field(default_factory=StructureSettings)
    isotropy: IsotropySettings = field(default_factory=IsotropySettings)
    report: ReportSettings = field(default_factory=ReportSettings)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (JSON/TOML friendly)."""
        return dataclasses.asdict(self)

    def replace(self, **sections: dict[str, Any]) -> Settings:
        """Copy with fields changed, e.g. ``replace(segment={"method": "dark"})``."""
        return from_dict(_merge(self.to_dict(), sections))

    def digest(self) -> str:
        """Stable short hash of the settings (for resumable batches)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(data: dict[str, Any]) -> Settings:
    """Build :class:`Settings` from a (partial) nested dict; unknown keys raise ``ValueError``."""
    sections = {}
    for f in fields(Settings):
        cls = f.default_factory  # type: ignore[misc]
        given = dict(data.get(f.name) or {})
        known = {g.name for g in fields(cls)}
        unknown = set(given) - known
        if unknown:
            raise ValueError(
                f"unknown setting(s) in [{f.name}]: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        sections[f.name] = cls(**given)
    unknown_sections = set(data) - {f.name for f in fields(Settings)}
    if unknown_sections:
        raise ValueError(f"unknown settings section(s): {', '.join(sorted(unknown_sections))}")
    return Settings(**sections)


def load_settings(path: str | Path) -> Settings:
    """Read settings from a TOML file (missing keys keep their defaults)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read settings file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from exc
    try:
        return from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def _toml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def default_toml() -> str:
    """A commented TOML file holding every default setting."""
    import inspect

    lines = ["# sempore settings. Lengths are in micrometres (names ending in _um).",
             "# A commented-out key means 'adapt to the image'.", ""]
    settings = Settings()
    for section in fields(Settings):
        sub = getattr(settings, section.name)
        cls = type(sub)
        lines.append(f"[{section.name}]  # {inspect.getdoc(cls).splitlines()[0]}")
        comments = _field_comments(cls)
        for f in fields(cls):
            value = getattr(sub, f.name)
            if f.name in comments:
                lines.append(f"# {comments[f.name]}")
            if value is None:
                lines.append(f"# {f.name} =")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _field_comments(cls: type) -> dict[str, str]:
    """The ``#:`` comment above each field in the class source."""
    import inspect

    try:
        source = inspect.getsource(cls)
    except OSError:  # pragma: no cover - frozen app
        return {}
    comments: dict[str, str] = {}
    pending: list[str] = []
    for raw in source.splitlines():
        line = raw.strip()
        if line.startswith("#:"):
            pending.append(line[2:].strip())
        elif ":" in line and not line.startswith(("#", '"', "class", "@")) and pending:
            comments[line.split(":", 1)[0].strip()] = " ".join(pending)
            pending = []
        else:
            pending = []
    return comments


def is_settings(obj: Any) -> bool:
    return is_dataclass(obj) and isinstance(obj, Settings)
