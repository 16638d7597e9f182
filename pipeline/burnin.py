"""Labels burned into the frame: scale bars, their text and the boxes behind them.

Besides the instrument data bar below the image (:func:`pipeline.io.detect_databar`), many
micrographs carry a scale bar, a text label or a filled box drawn INTO the frame, usually in a
corner (ImageJ's "Scale Bar..." tool, instrument overlays, figure exports). Over the membrane a
black box reads as one huge pore and white marks as polymer; measured, they shift the porosity
and the pore size of the depth bins they cover (a 200 x 44 px black box in the bottom corner of a
512 x 768 phantom: porosity of those bins +0.12, their mean pore size +60 %).

What tells a drawn label from the micrograph is that it is drawn: its pixels hold exactly one
grey value over whole neighbourhoods, while every part of a micrograph carries shot noise (even a
clipped background is only flat where it is clipped). :func:`detect_annotations` finds the flat
regions that are axis-aligned rectangles (boxes and bars), adds the marks of the bar's own grey
level around a bar (its text) when that level is rare elsewhere in the image, and returns their
bounding rectangles with a small margin. :func:`fill_annotations` replaces them with a mirror
image of their surroundings along the membrane, so that the texture-based membrane finder and the
segmentation see no artificial edges; :func:`pipeline.analyze` then leaves the rectangles out of
the membrane (they are measured as unknown, like the space outside the frame: pores that run into
them are flagged as cut, and their local thickness does not treat the label as a wall).

On JPEG files a flat region is one that a 3 x 3 median leaves within 10 grey levels, and a bar
must also hold its own level to a few grey levels (smooth background flattened into the codec's
blocks does not: 0 false labels on 116 JPEG renderings at quality 60 and 85).

Not detected: free-standing text with no bar or box (thin strokes hold no flat neighbourhood; on
the measured phantom a white label changed the mask by under 0.5 % of Dice), and
semi-transparent boxes (not flat).
"""

from __future__ import annotations

import numpy as np

#: Rectangles whose flat area fills at least this share of their bounding box are drawn boxes or
#: bars (a disc fills 0.785, a clipped blob rarely more than 0.8).
MIN_RECTANGULARITY = 0.92
#: Flatness tolerance on lossy (JPEG) images, as a share of the grey range (after a 3 x 3 median),
#: and the largest standard deviation of a bar's own pixels there.
LOSSY_TOLERANCE = 10 / 255
LOSSY_BAR_SD = 3.5 / 255
#: A bar's text is antialiased: its strokes are taken within this share of the grey range of the
#: bar's level, and only when at most ``MAX_TEXT_LEVEL_SHARE`` of the rest of the frame is that
#: bright (or dark): otherwise the picture's own saturated pixels cannot be told from the text.
TEXT_TOLERANCE = 0.1
MAX_TEXT_LEVEL_SHARE = 0.002
#: Margin added around every label, px: antialiased text and lossy compression smear the label's
#: edge over a pixel or two.
ANNOTATION_MARGIN_PX = 2
#: A micrograph whose unclipped pixels are flat over more than this share is not noisy (a drawing,
#: a rendered mask, a heavily denoised export): there a flat rectangle is no sign of a label.
MAX_FLAT_SHARE = 0.3
#: Pixels around a drawn box or bar differ from its level by more than this share of the image's
#: grey range on at least ``MIN_RING_CONTRAST_SHARE`` of its outline (a clipped background fades
#: into unclipped background of nearly the same level).
MIN_EDGE_CONTRAST = 0.05
MIN_RING_CONTRAST_SHARE = 0.6
MIN_RING_CONTRAST_SHARE_MARKED = 0.2
#: A box counts as a label when it holds marks (text, a bar) differing from its level by this share
#: of the grey range; a bar when it is at least this share of the frame's side long.
MARK_CONTRAST = 0.3
MIN_BAR_FRACTION = 0.04
#: More rectangles than this, or rectangles covering more than ``max_area_fraction`` of the frame,
#: are the picture itself, not labels.
MAX_LABELS = 8


def _flat_pixels(img: np.ndarray, tol: float, *, median: bool = False,
                 band_rows: int = 1024) -> np.ndarray:
    """Pixels whose 3 x 3 neighbourhood spans at most ``tol`` grey levels (after a 3 x 3 median
    when ``median``), computed in bands of rows to bound the memory on large frames."""
    import cv2

    rows = img.shape[0]
    out = np.empty(img.shape, bool)
    kernel = np.ones((3, 3), np.uint8)
    halo = 2 if median else 1
    for r0 in range(0, rows, band_rows):
        r1 = min(r0 + band_rows, rows)
        a0, a1 = max(r0 - halo, 0), min(r1 + halo, rows)
        part = np.ascontiguousarray(img[a0:a1], dtype=np.float32)
        if median:
            part = cv2.medianBlur(part, 3)
        hi = cv2.dilate(part, kernel, borderType=cv2.BORDER_REPLICATE)
        hi -= cv2.erode(part, kernel, borderType=cv2.BORDER_REPLICATE)
        out[r0:r1] = hi[r0 - a0:r1 - a0] <= tol
    return out


def _merge(boxes: list[list[int]]) -> list[list[int]]:
    """Union overlapping or touching rectangles until none overlap."""
    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]:
                    boxes[i] = [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]),
                                max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _bar_shaped(h: int, w: int) -> bool:
    """A rectangle of h x w px shaped like a scale bar: long and thin."""
    long_side, short_side = max(h, w), min(h, w)
    return long_side >= 4 * short_side and short_side <= max(3, long_side // 8)


def _bar_text(box: list[int], rare: np.ndarray) -> list[int]:
    """Grow a bar's rectangle over the marks of its own grey level next to it (its text).

    Marks are searched within half the bar's length across it and a quarter along it; a mark
    counts when it lies wholly inside that window. ``rare`` (the frame's shape) holds the pixels
    of the bar's level that the search may use (the caller checked that the level is rare
    elsewhere)."""
    import cv2

    r0, r1, c0, c1 = box
    rows, cols = rare.shape
    horizontal = (c1 - c0) >= (r1 - r0)
    length = max(c1 - c0, r1 - r0)
    across, along = length // 2, length // 4
    if horizontal:
        w0, w1, v0, v1 = r0 - across, r1 + across, c0 - along, c1 + along
    else:
        w0, w1, v0, v1 = r0 - along, r1 + along, c0 - across, c1 + across
    w0, w1, v0, v1 = max(w0, 0), min(w1, rows), max(v0, 0), min(v1, cols)
    window = rare[w0:w1, v0:v1].astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(window, connectivity=8)
    out = list(box)
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area < 3:
            continue
        inside = ((y > 0 or w0 == 0) and (x > 0 or v0 == 0)
                  and (y + h < window.shape[0] or w1 == rows)
                  and (x + w < window.shape[1] or v1 == cols))
        if inside:
            out = [min(out[0], w0 + y), max(out[1], w0 + y + h), min(out[2], v0 + x),
                   max(out[3], v0 + x + w)]
    return out


def detect_annotations(
    image: np.ndarray,
    *,
    lossy: bool = False,
    max_area_fraction: float = 0.1,
    min_length_px: int = 12,
) -> list[tuple[int, int, int, int]]:
    """Rectangles of labels burned into a micrograph (boxes, scale bars and their text).

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Grey micrograph (any range), data bar already removed.
    lossy : bool
        The pixels went through lossy compression (JPEG): flat means within
        :data:`LOSSY_TOLERANCE` of the grey range after a 3 x 3 median, instead of exactly equal.
    max_area_fraction : float
        Largest share of the frame that labels may cover together.
    min_length_px : int
        Shortest long side of a box or bar, px.

    Returns
    -------
    list of (row0, row1, col0, col1)
        Half-open pixel rectangles, margin of :data:`ANNOTATION_MARGIN_PX` included, clipped to
        the frame; empty when nothing drawn was found.
    """
    import cv2
    from scipy import ndimage as ndi

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2 or min(img.shape) < 32:
        return []
    rows, cols = img.shape
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return []
    tol = LOSSY_TOLERANCE * (hi - lo) if lossy else 0.0
    # lossy compression rings around a label's marks: the median takes the isolated spikes out
    flat = _flat_pixels(img, tol, median=lossy)
    unclipped = (img > lo + tol) & (img < hi - tol)
    if unclipped.any() and flat[unclipped].mean() > MAX_FLAT_SHARE:
        return []
    n, lab, stats, _ = cv2.connectedComponentsWithStats(flat.view(np.uint8), connectivity=4,
                                                        ltype=cv2.CV_32S)
    contrast = MIN_EDGE_CONTRAST * (hi - lo)
    boxes: list[list[int]] = []
    levels: list[float] = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        # the flat test erodes a region by one pixel: its true extent is one more each side
        hh, ww = h + 2, w + 2
        if (min(hh, ww) < 3 or max(hh, ww) < min_length_px or hh > rows // 2 or ww > cols // 2
                or hh * ww > max_area_fraction * rows * cols or area < 0.5 * h * w):
            continue
        sub = lab[y:y + h, x:x + w] == i
        grown = ndi.binary_dilation(np.pad(sub, 1), np.ones((3, 3), bool))
        # a label cut by the frame continues beyond it: its marks there are enclosed too
        closed = grown.copy()
        closed[0] |= y == 0
        closed[-1] |= y + h == rows
        closed[:, 0] |= x == 0
        closed[:, -1] |= x + w == cols
        filled = ndi.binary_fill_holes(closed)
        filled[0], filled[-1] = grown[0], grown[-1]
        filled[:, 0], filled[:, -1] = grown[:, 0], grown[:, -1]
        if filled.mean() < MIN_RECTANGULARITY:
            continue
        r0, r1, c0, c1 = max(y - 1, 0), min(y + h + 1, rows), max(x - 1, 0), min(x + w + 1, cols)
        level = float(np.median(img[y:y + h, x:x + w][sub]))
        # a drawn shape stands against the picture on every side inside the frame
        ring = np.concatenate([img[r0 - 1, c0:c1] if r0 > 0 else [],
                               img[r1, c0:c1] if r1 < rows else [],
                               img[r0:r1, c0 - 1] if c0 > 0 else [],
                               img[r0:r1, c1] if c1 < cols else []])
        ring_share = (float(np.mean(np.abs(ring - level) > contrast)) if ring.size else 0.0)
        holes = (filled & ~grown)[1:-1, 1:-1]
        inside = img[y:y + h, x:x + w]
        marks = int(np.count_nonzero(holes & (np.abs(inside - level) > MARK_CONTRAST * (hi - lo))))
        marked = marks >= max(10, 0.005 * hh * ww)  # text or a bar drawn inside it
        bar = (_bar_shaped(hh, ww)
               and max(hh, ww) >= MIN_BAR_FRACTION * (cols if ww >= hh else rows))
        if bar and lossy:
            # after compression a drawn bar still holds its level to a grey level or two; a
            # strip of smooth background flattened by the codec's blocks does not
            bar = float(np.std(img[y:y + h, x:x + w][sub])) <= LOSSY_BAR_SD * (hi - lo)
        # plain flat rectangles are clipped backgrounds more often than labels; a box holding
        # marks may lie partly over a background of its own level (a black box over vacuum)
        if not ((marked and ring_share >= MIN_RING_CONTRAST_SHARE_MARKED)
                or (bar and ring_share >= MIN_RING_CONTRAST_SHARE)):
            continue
        boxes.append([r0, r1, c0, c1])
        levels.append(level)
    if not boxes or len(boxes) > MAX_LABELS:
        return []
    for k, (box, level) in enumerate(zip(boxes, levels)):
        if not _bar_shaped(box[1] - box[0], box[3] - box[2]):
            continue  # a box: its text lies inside it
        same = np.abs(img - level) <= max(tol, TEXT_TOLERANCE * (hi - lo))
        same &= ~annotation_mask(same.shape, boxes)
        if same.mean() > MAX_TEXT_LEVEL_SHARE:
            continue  # the level is common in the picture (saturated rims): text not separable
        boxes[k] = _bar_text(box, same)
    m = ANNOTATION_MARGIN_PX
    boxes = [[max(b[0] - m, 0), min(b[1] + m, rows), max(b[2] - m, 0), min(b[3] + m, cols)]
             for b in boxes]
    boxes = _merge(boxes)
    if sum((b[1] - b[0]) * (b[3] - b[2]) for b in boxes) > max_area_fraction * rows * cols:
        return []
    return sorted((int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in boxes)


def as_boxes(values) -> list[tuple[int, int, int, int]]:
    """Label rectangles as int 4-tuples (row0, row1, col0, col1), from any sequence of 4-sequences
    (e.g. the lists result.json or a napari layer's metadata hold)."""
    return [tuple(int(v) for v in b) for b in values]


def region_boxes(specs, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Rectangles (row0, row1, col0, col1; half-open) of the ``"ROWS,COLS"`` specs (see
    :func:`pipeline.settings.parse_region`) on an image of ``shape``; a spec that holds no pixel
    of it is left out (the caller can tell by the count)."""
    from .settings import parse_region

    rows, cols = shape
    boxes = []
    for spec in specs:
        rs, cs = parse_region(spec)
        r0, r1, _ = rs.indices(rows)
        c0, c1, _ = cs.indices(cols)
        if r1 > r0 and c1 > c0:
            boxes.append((r0, r1, c0, c1))
    return boxes


def annotation_mask(shape: tuple[int, int], boxes) -> np.ndarray:
    """Bool mask (shape) of the rectangles ``boxes`` (row0, row1, col0, col1; half-open)."""
    out = np.zeros(shape, bool)
    for r0, r1, c0, c1 in boxes:
        out[r0:r1, c0:c1] = True
    return out


def _fold(index: np.ndarray, n: int) -> np.ndarray:
    """Reflect indices into [0, n) (a triangle wave: 0..n-1, n-1..0, ...)."""
    if n <= 1:
        return np.zeros_like(index)
    period = 2 * n
    k = np.mod(index, period)
    return np.where(k < n, k, period - 1 - k)


def _mirror_columns(img: np.ndarray, c0: int, c1: int, r0: int, r1: int) -> None:
    """Fill columns [c0, c1) of rows [r0, r1) in place with mirror images of the columns beside
    them: the left half from the left, the right half from the right (the seam in the middle);
    from one side only when the other is the frame's edge."""
    cols = img.shape[1]
    left, right = c0, cols - c1  # room on each side
    if left == 0 and right == 0:
        return
    j = np.arange(c0, c1)
    if left == 0 or right == 0:
        from_left = np.full(j.shape, left > 0)
    else:
        from_left = j < (c0 + c1) / 2
    src = np.empty_like(j)
    if left:
        src[from_left] = c0 - 1 - _fold(j[from_left] - c0, left)
    if right:
        src[~from_left] = c1 + _fold(c1 - 1 - j[~from_left], right)
    img[r0:r1, c0:c1] = img[r0:r1][:, src]


def fill_annotations(image: np.ndarray, boxes, *, along: str = "rows") -> np.ndarray:
    """The image with each label rectangle replaced by a mirror image of its surroundings.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
    boxes : sequence of (row0, row1, col0, col1)
    along : {"rows", "columns"}
        ``rows`` mirrors the columns beside each rectangle (for a horizontal membrane: the fill
        holds the same depths as the rectangle, so the surface line and the depth structure run
        through it unbroken); ``columns`` mirrors the rows above and below (vertical membranes).

    Returns
    -------
    ndarray, a copy of ``image``.
    """
    out = np.array(image, copy=True)
    if along not in ("rows", "columns"):
        raise ValueError(f"along must be 'rows' or 'columns', got {along!r}")
    work = out if along == "rows" else out.T
    for r0, r1, c0, c1 in boxes:
        if along == "columns":
            r0, r1, c0, c1 = c0, c1, r0, r1
        _mirror_columns(work, c0, c1, r0, r1)
    return out
