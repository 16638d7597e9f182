"""The scale bar drawn in a micrograph's data bar or labels: its length in pixels and its label.

Files exported without instrument metadata (a JPEG or BMP out of the microscope software, a
figure panel) still carry their calibration as a drawing: a line with end caps over a label
("50 µm"), or a ruler of equally spaced ticks (Hitachi). Labs calibrate such files by hand in
ImageJ ("Set Scale"): draw a line over the bar, type its length. :func:`find_scale_bar` measures
the drawing; the caller gives the length its label states (``--scale-bar-um UM``), or asks for it
to be read (``--scale-bar-um auto``, :func:`read_scale_bar_label`), and
:func:`pipeline.io.load_micrograph` turns the two into the pixel size. Fonts differ between
instruments and a misread digit would be a confident error of a factor of ten, so the reader
leaves a label unread whenever a glyph's match is in doubt or the reading is not a length on the
1-2-5 series, and a read label is used only when asked.

What is found, in the data bar below the image (or in the labels
:func:`pipeline.burnin.detect_annotations` found in the frame when there is no data bar):

* **bars**: marks of the panel's text contrast, a straight line (at most 3 px or a sixth of its
  length thick) over at least :data:`MIN_BAR_LENGTH_PX` and 2 % of the frame width, with nothing
  else than end caps (the vertical marks of ``|---|``) in its last 15 % at either end. A bar
  interrupted by its own label (``|---- 50 µm ----|``, FEI) is two collinear pieces of equal
  length on one row with a gap shorter than three pieces: it is measured from end to end.
* **rulers**: at least three ticks (thin vertical marks of equal height on one row, free or
  standing on a base line) at equal spacing (each gap within 1.5 px or 3 % of the median):
  measured from the first tick's centre to the last's.

Marks touching the panel's edge or spanning more than half its height (table borders and
separators) are not bars. A bar's length runs between the centres of its end caps (the FEI bar of
the real file in tests/data/real: 370 px between caps 3 px wide, 370.7 px from its metadata), or
to the outer edge of a free end.
When several candidates disagree by more than :data:`AGREEMENT` the result is ambiguous and
nothing is returned (the user gives the pixel size instead).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

#: Shortest scale bar, px.
MIN_BAR_LENGTH_PX = 16
#: A bar is at least this share of the frame's width long.
MIN_BAR_FRACTION = 0.02
#: Marks are pixels this share of the way from the panel's background level to its extreme
#: opposite level (white text on black, black on white).
MARK_LEVEL = 0.5
#: Candidates whose lengths agree within this share are the same bar measured twice.
AGREEMENT = 0.02


@dataclass(frozen=True)
class ScaleBar:
    """A scale bar found in a frame.

    Attributes
    ----------
    length_px : float
        End-to-end length of a bar, or first-to-last tick centre distance of a ruler, px.
    kind : str
        ``bar`` or ``ruler``.
    row : int
        Row of the bar (or of the ticks' middle) in the frame as stored (data bar included).
    col0, col1 : float
        Its ends, px (column coordinates).
    n_ticks : int
        Ticks of a ruler (0 for a bar).
    label : str or None
        Its label as read (:func:`read_scale_bar_label`), when it was read.
    label_um : float or None
        The length that label states, µm, when it reads as one.
    """

    length_px: float
    kind: str
    row: int
    col0: float
    col1: float
    n_ticks: int = 0
    label: str | None = None
    label_um: float | None = None

    def as_dict(self) -> dict:
        return {"length_px": round(float(self.length_px), 3), "kind": self.kind,
                "row": int(self.row), "col0": round(float(self.col0), 2),
                "col1": round(float(self.col1), 2), "n_ticks": int(self.n_ticks),
                "label": self.label, "label_um": self.label_um}


def _marks(panel: np.ndarray) -> np.ndarray | None:
    """Pixels of the panel's marks (text, bars): the far side of its background level."""
    background = float(np.median(panel))
    lo, hi = float(panel.min()), float(panel.max())
    if hi - lo <= 1e-6:
        return None
    if background - lo < hi - background:  # dark panel, light marks
        return panel > background + MARK_LEVEL * (hi - background)
    return panel < background - MARK_LEVEL * (background - lo)


def _components(marks: np.ndarray):
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(marks.view(np.uint8), connectivity=8,
                                                           ltype=cv2.CV_32S)
    return n, labels, stats


def _runs(cols: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive column indices as (first, last)."""
    if cols.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(cols) > 1)
    starts = np.concatenate([[cols[0]], cols[breaks + 1]])
    ends = np.concatenate([cols[breaks], [cols[-1]]])
    return list(zip(starts.tolist(), ends.tolist()))


def _equal_spacing(centres: np.ndarray) -> bool:
    gaps = np.diff(np.sort(centres))
    if gaps.size < 2:
        return False
    med = float(np.median(gaps))
    return med > 2 and bool(np.all(np.abs(gaps - med) <= max(1.5, 0.03 * med)))


def _line_mark(comp: np.ndarray, x: int, y: int) -> tuple | None:
    """A mark read as a line: ``("bar", row, thickness, c0, c1)`` or ``("ruler", row, c0, c1,
    n)`` (a line with ticks standing on it), else None.

    The line is the run of rows the mark fills over 90 % of its width (at most
    ``max(3, width / 6)`` rows: a thin line, not a filled box); everything else of the mark must
    be end caps (within the last 15 % at either end) or equally spaced ticks."""
    h, w = comp.shape
    full = np.flatnonzero(comp.sum(axis=1) >= 0.9 * w)
    if not full.size or full[-1] - full[0] + 1 != full.size or full.size > max(3, w / 6):
        return None
    row = y + int(full.mean())
    rest = comp.copy()
    rest[full] = False
    runs = _runs(np.flatnonzero(rest.any(axis=0)))
    centres = np.array([(a + b) / 2.0 + 0.5 for a, b in runs])
    if all(b < 0.15 * w or a > 0.85 * w for a, b in runs):
        left = [c for c in centres if c < 0.15 * w]
        right = [c for c in centres if c > 0.85 * w]
        # a capped end is the cap's centre (the label's length runs between the caps'
        # centres: FEI draws 370.7 px for 50 µm between caps 3 px wide, Zeiss 36.8 px for
        # 20 nm); a free end is the line's last pixel edge
        c0 = x + (left[0] if left else 0.0)
        c1 = x + (right[-1] if right else float(w))
        return ("bar", row, int(full.size), c0, c1)
    if len(runs) >= 3 and _equal_spacing(centres):
        return ("ruler", row, x + float(centres.min()), x + float(centres.max()), len(runs))
    return None


def _bars_and_ticks(panel: np.ndarray, frame_cols: int
                    ) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Line pieces ``(row, thickness, c0, c1)``, rulers ``(row, first, last, n)`` whose ticks
    stand on a base line, and free ticks ``(r0, r1, centre)`` of a panel."""
    marks = _marks(panel)
    if marks is None:
        return [], [], []
    rows, cols = marks.shape
    n, labels, stats = _components(marks)
    pieces, rulers, ticks = [], [], []
    min_len = max(MIN_BAR_LENGTH_PX, MIN_BAR_FRACTION * frame_cols)
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if x == 0 or y == 0 or x + w == cols or y + h == rows or h > rows // 2:
            continue  # table borders and separators, marks cut by the panel
        if w >= min_len:
            line = _line_mark(labels[y:y + h, x:x + w] == i, x, y)
            if line is not None:
                (pieces if line[0] == "bar" else rulers).append(line[1:])
                continue
        if h >= 5 and w <= max(5, h // 3) and area >= 0.6 * h * w:
            ticks.append((y, y + h, x + w / 2.0))
    return pieces, rulers, ticks


def _join_pieces(pieces: list[tuple]) -> list[tuple[int, float, float]]:
    """Bars from line pieces: two collinear pieces (same row within a pixel, same thickness) of
    equal length (within 10 % or 3 px: the label sits in the middle) with a gap shorter than
    three times a piece are one bar broken by its label."""
    bars = []
    for row, thick, c0, c1 in sorted(pieces, key=lambda p: (p[0], p[2])):
        if bars:
            b_row, b_thick, b0, b1, last_len = bars[-1]
            gap, length = c0 - b1, c1 - c0
            if (abs(row - b_row) <= 1 and thick == b_thick and 0 < gap < 3 * length
                    and last_len == b1 - b0
                    and abs(length - last_len) <= max(3.0, 0.1 * length)):
                bars[-1] = (b_row, b_thick, b0, c1, -1.0)  # joined: takes no third piece
                continue
        bars.append((row, thick, c0, c1, c1 - c0))
    return [(row, float(c0), float(c1)) for row, _, c0, c1, _ in bars]


def _rulers(ticks: list[tuple]) -> list[tuple[int, float, float, int]]:
    """Rulers ``(row, first, last, n)`` from ticks: >= 3 on one row at equal spacing."""
    out = []
    groups: list[list[tuple]] = []
    for t in sorted(ticks):
        for g in groups:
            if abs(g[0][0] - t[0]) <= 1 and abs(g[0][1] - t[1]) <= 1:
                g.append(t)
                break
        else:
            groups.append([t])
    for g in groups:
        centres = np.sort([t[2] for t in g])
        if len(g) >= 3 and _equal_spacing(centres):
            out.append(((g[0][0] + g[0][1]) // 2, float(centres[0]), float(centres[-1]), len(g)))
    return out


def find_scale_bars(frame: np.ndarray, databar_rows: int = 0,
                    labels_px: list[tuple[int, int, int, int]] | None = None) -> list[ScaleBar]:
    """Every scale bar and ruler drawn in the data bar (or, without one, in the labels).

    Parameters
    ----------
    frame : ndarray, shape (rows, cols)
        The whole frame as stored, data bar included (any grey range).
    databar_rows : int
        Rows of the data bar at the bottom of ``frame``; 0 for none.
    labels_px : list of (row0, row1, col0, col1), optional
        Labels burned into the image (:attr:`pipeline.io.Micrograph.annotations_px`, rows of the
        frame above the data bar), searched when there is no data bar.

    Returns
    -------
    list of ScaleBar
        Longest first.
    """
    img = np.asarray(frame, dtype=np.float32)
    rows, cols = img.shape
    panels = []
    if databar_rows > 0:
        panels.append((rows - databar_rows, 0, img[rows - databar_rows:]))
    else:
        for r0, r1, c0, c1 in labels_px or []:
            # a margin of background around the label, so its marks do not touch the edge
            r0, r1, c0, c1 = max(r0 - 3, 0), min(r1 + 3, rows), max(c0 - 3, 0), min(c1 + 3, cols)
            panels.append((r0, c0, img[r0:r1, c0:c1]))
    found: list[ScaleBar] = []
    for r_off, c_off, panel in panels:
        if min(panel.shape) < 5:
            continue
        pieces, rulers, ticks = _bars_and_ticks(panel, cols)
        for row, c0, c1 in _join_pieces(pieces):
            found.append(ScaleBar(c1 - c0, "bar", r_off + row, c_off + c0, c_off + c1))
        for row, first, last, n in rulers + _rulers(ticks):
            found.append(ScaleBar(last - first, "ruler", r_off + row, c_off + first,
                                  c_off + last, n))
    return sorted(found, key=lambda b: -b.length_px)


def find_scale_bar(frame: np.ndarray, databar_rows: int = 0,
                   labels_px: list[tuple[int, int, int, int]] | None = None
                   ) -> tuple[ScaleBar | None, str]:
    """The one scale bar of a frame, or None and why not.

    Returns
    -------
    bar : ScaleBar or None
    reason : str
        Empty when a bar was found; otherwise says what was seen (no bar, or several that
        disagree, with their lengths).
    """
    bars = find_scale_bars(frame, databar_rows, labels_px)
    if not bars:
        where = "the data bar" if databar_rows > 0 else "the labels burned into the image"
        return None, f"no scale bar or ruler found in {where}"
    lengths = [b.length_px for b in bars]
    if max(lengths) > (1 + AGREEMENT) * min(lengths):
        listed = ", ".join(f"{b.kind} of {b.length_px:.0f} px" for b in bars[:4])
        return None, f"several scale bars that disagree ({listed})"
    return bars[0], ""


# ------------------------------------------------------------------------------------------------
# the label's length: "100um", "10.0um", "50 µm", "20 nm"

#: Characters a scale-bar label is read from (digits, the decimal point, the units' letters).
LABEL_CHARS = "0123456789numµ"
#: matplotlib's bundled fonts the glyph templates are rendered from (sans, bold, mono, serif and
#: Computer Modern sans: instrument fonts differ, their digits' shapes much less), and Pillow's
#: default font.
TEMPLATE_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf",
                  "DejaVuSerif.ttf", "cmss10.ttf")
#: Templates and glyphs are compared on this grid (rows, cols) after scaling their bounding boxes.
GLYPH_GRID = (24, 16)
#: A label is read only when every glyph's best character beats its second best by this margin
#: (score units: overlap of the scaled bitmaps, less aspect and position penalties).
MIN_GLYPH_MARGIN = 0.04
#: A length is accepted only on the 1-2-5 series instruments and scale-bar tools use (1, 2, 5,
#: 10, 20, 50, ... times a power of ten; 2.5 and 25 too), so a misread digit is rarely a valid
#: length.
NICE_MANTISSAS = (1.0, 2.0, 2.5, 5.0)


@dataclass(frozen=True)
class _Template:
    char: str
    bitmap: np.ndarray
    top: float
    bottom: float
    aspect: float


def _scaled(bitmap: np.ndarray) -> np.ndarray:
    import cv2

    ys, xs = np.nonzero(bitmap)
    crop = bitmap[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
    return cv2.resize(crop, (GLYPH_GRID[1], GLYPH_GRID[0]), interpolation=cv2.INTER_AREA)


@functools.cache
def _templates() -> tuple[_Template, ...]:
    """Glyph templates of :data:`LABEL_CHARS` in every template font (rendered once): the scaled
    bitmap, the glyph's top and bottom relative to the digit '0' (in units of its height: 'u'
    starts lower, 'µ' reaches below the baseline) and its aspect ratio."""
    import os

    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    fonts = [ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", f), 48)
             for f in TEMPLATE_FONTS]
    fonts.append(ImageFont.load_default(size=48))

    def draw(text: str, face) -> np.ndarray:
        img = Image.new("L", (140, 140), 0)
        ImageDraw.Draw(img).text((30, 30), text, fill=255, font=face)
        return np.asarray(img) > 127

    templates = []
    for face in fonts:
        zero = np.nonzero(draw("0", face))[0]
        top0, height = zero.min(), zero.max() - zero.min() + 1
        for ch in LABEL_CHARS:
            bitmap = draw(ch, face)
            ys, xs = np.nonzero(bitmap)
            if ys.size == 0 or (ch == "µ" and ys.max() - ys.min() < 0.5 * height):
                continue  # a font without the glyph
            templates.append(_Template(
                ch, _scaled(bitmap), (ys.min() - top0) / height,
                (ys.max() - (top0 + height - 1)) / height,
                (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)))
    return tuple(templates)


def _classify(bitmap: np.ndarray, top: float, bottom: float) -> tuple[str, float]:
    """The best template character of a glyph and its margin over the second best character."""
    scaled = _scaled(bitmap)
    ys, xs = np.nonzero(bitmap)
    aspect = (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)
    best: dict[str, float] = {}
    for t in _templates():
        overlap = float(np.minimum(scaled, t.bitmap).sum() / np.maximum(scaled, t.bitmap).sum())
        score = (overlap - 0.5 * abs(math.log(aspect / t.aspect))
                 - abs(top - t.top) - abs(bottom - t.bottom))
        if score > best.get(t.char, -np.inf):
            best[t.char] = score
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    return ranked[0][0], ranked[0][1] - ranked[1][1]


def _words(stats: np.ndarray, keep: list[int]) -> list[list[int]]:
    """Components grouped into words: lines by vertical overlap, split at gaps wider than 0.9
    of the line's tallest glyph."""
    lines: list[list[int]] = []
    for i in sorted(keep, key=lambda k: stats[k][0]):
        y, h = stats[i][1], stats[i][3]
        for line in lines:
            y0 = min(stats[k][1] for k in line)
            y1 = max(stats[k][1] + stats[k][3] for k in line)
            if min(y1, y + h) - max(y0, y) > 0.4 * min(h, y1 - y0):
                line.append(i)
                break
        else:
            lines.append([i])
    words = []
    for line in lines:
        tallest = max(stats[k][3] for k in line)
        word = [line[0]]
        for k in line[1:]:
            prev = word[-1]
            if stats[k][0] - (stats[prev][0] + stats[prev][2]) > 0.9 * tallest:
                words.append(word)
                word = [k]
            else:
                word.append(k)
        words.append(word)
    return words


def parse_length_um(text: str) -> float | None:
    """The length (µm) a scale-bar label states (``"100um"``, ``"10.0 µm"``, ``"20nm"``), or None
    when it is not a number and a unit, or not on the 1-2-5 series (:data:`NICE_MANTISSAS`)."""
    import re

    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(nm|um|µm|μm|mm)\s*", text)
    if not found:
        return None
    value = float(found.group(1))
    if not value > 0:
        return None
    mantissa = value / 10 ** math.floor(math.log10(value))
    if not any(abs(mantissa - m) < 1e-6 for m in NICE_MANTISSAS):
        return None
    from .io import _length_um

    return _length_um(value, found.group(2))


def read_scale_bar_label(frame: np.ndarray, bar: ScaleBar, databar_rows: int = 0,
                         labels_px: list[tuple[int, int, int, int]] | None = None
                         ) -> tuple[float | None, str]:
    """Read the length a scale bar's label states, by matching its glyphs to font templates.

    The label is the word of marks nearest the bar's middle (on its row, above or below it)
    within the bar's panel: the data bar, or the burned-in label holding the bar. Its glyphs are
    matched to :data:`LABEL_CHARS` rendered in :data:`TEMPLATE_FONTS` (scaled bitmap overlap,
    aspect ratio, height relative to the word's digits); dots are the small marks on the
    baseline between them.

    Returns
    -------
    length_um : float or None
        The length read; None when no word reads as a number and a unit on the 1-2-5 series with
        every glyph's best match clear of its second (:data:`MIN_GLYPH_MARGIN`).
    text : str
        What was read from the nearest word ('' when nothing), for the user to check.
    """
    img = np.asarray(frame, dtype=np.float32)
    rows, cols = img.shape
    if databar_rows > 0:
        r0, c0, panel = rows - databar_rows, 0, img[rows - databar_rows:]
    else:
        boxes = [b for b in labels_px or []
                 if b[0] - 3 <= bar.row < b[1] + 3 and b[2] - 3 <= bar.col0 < b[3] + 3]
        if not boxes:
            return None, ""
        b = boxes[0]
        r0, c0 = max(b[0] - 3, 0), max(b[2] - 3, 0)
        panel = img[r0:min(b[1] + 3, rows), c0:min(b[3] + 3, cols)]
    marks = _marks(panel)
    if marks is None:
        return None, ""
    n, labels, stats = _components(marks)
    row, x0, x1 = bar.row - r0, bar.col0 - c0, bar.col1 - c0
    length = x1 - x0
    glyphs = []
    for i in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[i])
        if h < 5 or h > 0.7 * panel.shape[0] or x + w < x0 - 0.3 * length \
                or x > x1 + 0.3 * length:
            continue
        if y <= row + 1 and y + h >= row - 1 and (w > 0.3 * length or w <= 4):
            continue  # the bar, its caps or a ruler's ticks
        glyphs.append(i)
    words = _words(stats, glyphs)
    centre = (x0 + x1) / 2

    def distance(word: list[int]) -> float:
        wx0 = stats[word[0]][0]
        wx1 = stats[word[-1]][0] + stats[word[-1]][2]
        wy = np.mean([stats[k][1] + stats[k][3] / 2 for k in word])
        return abs((wx0 + wx1) / 2 - centre) + 0.5 * abs(wy - row)

    text = ""
    for rank, word in enumerate(sorted(words, key=distance)[:3]):
        top = min(int(stats[k][1]) for k in word)
        base = int(np.median([stats[k][1] + stats[k][3] for k in word]))
        height = max(base - top, 1)
        wx0, wx1 = stats[word[0]][0], stats[word[-1]][0] + stats[word[-1]][2]
        # dots: small marks on the baseline between the word's glyphs
        dots = [i for i in range(1, n) if stats[i][4] >= 2 and stats[i][3] <= 0.35 * height
                and stats[i][2] <= 0.35 * height and wx0 < stats[i][0]
                and stats[i][0] + stats[i][2] < wx1
                and abs(stats[i][1] + stats[i][3] - base) <= 0.2 * height + 1]
        read, margins = "", []
        for i in sorted(word + dots, key=lambda k: stats[k][0]):
            if i in dots:
                read += "."
                continue
            x, y, w, h, _ = (int(v) for v in stats[i])
            ch, margin = _classify(labels[y:y + h, x:x + w] == i, (y - top) / height,
                                   (y + h - base) / height)
            read += ch
            margins.append(margin)
        if rank == 0:
            text = read
        value = parse_length_um(read)
        if value is not None and min(margins) >= MIN_GLYPH_MARGIN:
            return value, read
    return None, text
