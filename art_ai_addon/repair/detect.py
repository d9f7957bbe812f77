"""detect_damage(): scratches, cracks, spots, flat holes and streaks, alone or against another version.

Alone. A scratch is a thin line that differs from BOTH sides of it (an edge does not), near white or black
and neutral (print scratches show the paper or the emulsion), straight on at least one side over ~15 px and
not bending steadily (rims, highlights and folds curve), of about the same value all along (it shows the
paper whatever it crosses) and long. Per pixel, 16 oriented two-sided contrasts over a 7 px segment give a
score and a centre line (non-maximum suppression across it); the seed threshold drops where the
neighbourhood is smooth (skies, saucers, a render's floor) and stays high in texture; seeds are linked into
curves among pixels of similar value, kept when long, extended by weaker pixels within a few px; the mask
is the line's own pixels (half-maximum width) plus its soft edge where it has one, so inpainting has clean
surroundings to continue and no more to guess than the damage. Dust is small specks near white or black
standing out of smooth surroundings; holes are patches of one exact colour in an otherwise noisy picture;
streaks are rows or columns of clipped colour.

Large pictures (over 768 px): damage is looked for at the resolution it lives at. Scratches and specks, a few px
wide whatever the picture's size, on k x k block maxima (bright damage) and minima (dark damage) of the picture,
where they keep their full value and contrast, then redrawn at full resolution; holes on the block means; streaks
on the picture itself (_detect_large).

With a reference: aligned to the image (SIFT / ORB / AKAZE features + RANSAC homography, each refined with
ECC; the candidate with the smallest median misfit wins), its tone curve fitted per channel on aligned pixel
pairs with medians (so neither the exposure change nor the damage bends it), where the reference is clipped
only the other side is compared, and the mask marks where the image leaves the reference's local range by
more than the noise; where the aligned reference has no data (the border the motion uncovered) and a band
of ~1 % along the image's borders are ignored.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import as_image, grey8, luminance, reporter, split_alpha
from ..errors import InputError

_ANGLES = 16
_SHORT = 7              # px along the line the local contrast averages over (localises; follows gentle curves)
_OFFSETS = (2.0, 3.0)   # px to the side references: 2 for 1-2 px scratches, 3 for 3 px ones
_LONG = 15              # px of straight centre line wanted through (or on one side of) a scratch pixel
_WINDOWS = (-1.0, -0.5, 0.5, 1.0)  # window positions along the line, in half-lengths of _LONG
_STRAIGHT = (0.55, 0.85)  # straight support / own response: nothing kept below the first, all above the second
_BEND = 10.0            # degrees a line may turn _BEND_AT px ahead AND behind before it counts as a curve
_BEND_AT = 10.0
_EXT_B, _EXT_D = 0.78, 0.25  # line values from which a bright / dark line starts to count as paper / emulsion
_BASE = 0.15            # weight of a mid-tone line (1 for one at white or black)
_SEED = 0.2             # seed threshold in weighted luminance contrast, in busy areas, at sensitivity 0.5
_SMOOTH = 0.5           # ... falling to this fraction of it in smooth surroundings
_BUSY = 5.0             # how fast it rises with the neighbourhood's texture level
_GROW = 0.5             # weaker pixels (this fraction of the seed threshold) extend a found scratch ...
_REACH = 4              # ... within this many px of it
_MINLEN = 0.15          # strong centre-line pixels a scratch needs, as a fraction of the image side
_VALUE_BAND = 0.12      # a scratch's centre line keeps its value within this band
_SOFT = 0.15            # a line whose profile 2 px out keeps this much of it is soft-edged ...
_SOFT_RING = -0.08      # ... if the pixels around its core are not plain background either
_SPOT = 0.35            # contrast of a dust speck (at sensitivity 0.5)
_SPOT_TEXTURE = 5.0     # ... plus this many times the surroundings' median top-hat above _SPOT_FLOOR (glinting
_SPOT_FLOOR = 0.05      #     gravel and foliage: specks there are its own) ...
_SPOT_Z = 3.0           # ... unless it lies this many standard deviations beyond the surroundings' values
_SPOT_WINDOW = 4        # neighbourhoods of this many speck sizes
_REF_EDGE = 1.0         # with a reference: pixels near what was found must differ by this much of the low threshold
# large pictures (see _detect_large)
_SMALL = 768            # up to this side the whole analysis runs on the picture as it is
_POOLED = 4.5e5         # above it, the analysis runs on k x k block maxima / minima of at most this many pixels
_FULL_MIN = 0.03        # ... and a pixel redrawn at full resolution differs from its background by at least this
_MAX_WIDTH = 8          # px: a scratch or speck in a large picture is at most this wide at full resolution


def _line_kernel(length: int, angle: float) -> np.ndarray:
    """Normalised averaging kernel along a segment of `length` px at `angle` (anti-aliased, cached)."""
    cache = _line_kernel.__dict__.setdefault("cache", {})
    key = (length, round(angle, 6))
    if key not in cache:
        size = length | 1
        c = size // 2
        half = (length - 1) / 2.0
        dx, dy = np.cos(angle) * half, np.sin(angle) * half
        k = np.zeros((size, size), np.float32)
        cv2.line(k, (int(round((c - dx) * 16)), int(round((c - dy) * 16))),
                 (int(round((c + dx) * 16)), int(round((c + dy) * 16))), 1.0, 1, cv2.LINE_AA, 4)
        cache[key] = k / max(float(k.sum()), 1e-6)
    return cache[key]


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img moved by a sub-pixel (dx, dy): out(x, y) = img(x - dx, y - dy)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def _scratch_score(rgb: np.ndarray):
    """Per polarity (bright, dark): (score, centre, fade) maps — how much each pixel looks like part of a
    scratch, whether it is the centre of its line across the line's direction, and how much of the line is
    left 2 px out (its soft edge) — and the unweighted line contrast.

    For each of _ANGLES directions: the mean along a _SHORT px segment against the means of the parallel
    segments _OFFSETS px to either side; contrast = the smaller of the two differences (a line differs from
    BOTH sides, an edge from one). Weighted by two priors of real print damage: the line's value near white or
    black (paper, emulsion), and neutral. Then scaled by its straight support (the centre line followed _LONG
    px along the direction) and by how little it bends (_unbent), so grain (short) and rims, highlights and
    folds (curved) lose what straight scratches keep. No pre-blur: a 1 px line would lose a third of its
    contrast, and the segment average already tames noise.
    """
    return _scratch_finish(luminance(rgb), *_scratch_maps(rgb))


def _scratch_maps(rgb: np.ndarray, polarities=(0, 1)):
    """The per-pixel part of _scratch_score: per polarity (0 bright, 1 dark; only those in `polarities`, the
    others stay 0) the best weighted, straightness-scaled response over the angles and, at that angle, the centre
    flag, the unweighted contrast, the angle and the fade; and the unweighted line contrast `raw` of those
    polarities."""
    lum = luminance(rgb)
    box = np.ones((3, 3), np.uint8)
    chroma = np.ascontiguousarray(rgb.max(axis=2) - rgb.min(axis=2))
    neutral = cv2.erode(chroma, box)  # a neutral scratch pixel nearby keeps this low on colourful ground
    peaks = (cv2.dilate(lum, box), cv2.erode(lum, box))  # the line's own value, not diluted by its surroundings
    h, w = lum.shape
    best = [np.zeros((h, w), np.float32) for _ in range(2)]
    centre = [np.zeros((h, w), bool) for _ in range(2)]
    contrast = [np.zeros((h, w), np.float32) for _ in range(2)]
    angle = [np.zeros((h, w), np.float32) for _ in range(2)]
    fade = [np.zeros((h, w), np.float32) for _ in range(2)]
    raw = np.zeros((h, w), np.float32)  # unweighted line contrast, best over angles and polarities
    half = (_LONG - 1) / 2.0
    for ai in range(_ANGLES):
        a = np.pi * ai / _ANGLES
        k = _line_kernel(_SHORT, a)
        nx, ny = -np.sin(a), np.cos(a)
        ux, uy = np.cos(a), np.sin(a)
        c = cv2.filter2D(lum, -1, k, borderType=cv2.BORDER_REFLECT)
        bright = np.full_like(c, -1.0)
        dark = np.full_like(c, -1.0)
        for off in _OFFSETS:
            left = _shift(c, off * nx, off * ny) - c
            right = _shift(c, -off * nx, -off * ny) - c
            np.maximum(bright, -np.maximum(left, right), out=bright)
            np.maximum(dark, np.minimum(left, right), out=dark)
        np.maximum(raw, np.maximum(bright, dark) if len(polarities) == 2 else (bright, dark)[polarities[0]],
                   out=raw)
        # how much of the line is left 2 px out, on the nearer-to-background side, relative to 4 px out: about 0
        # for a hard-edged line up to 3 px wide, a fifth or more for a blurred or anti-aliased one
        far = 0.5 * (_shift(c, 4 * nx, 4 * ny) + _shift(c, -4 * nx, -4 * ny))
        two = (_shift(c, 2 * nx, 2 * ny), _shift(c, -2 * nx, -2 * ny))
        fades = ((np.minimum(*two) - far) / np.maximum(c - far, 1e-3),
                 (far - np.maximum(*two)) / np.maximum(far - c, 1e-3))
        colour = cv2.filter2D(neutral, -1, k, borderType=cv2.BORDER_REFLECT)
        for pi, (r, peak) in enumerate(zip((bright, dark), peaks, strict=True)):
            if pi not in polarities:
                continue
            v = cv2.filter2D(peak, -1, k, borderType=cv2.BORDER_REFLECT)
            ext = (v - _EXT_B) / (0.95 - _EXT_B) if pi == 0 else (_EXT_D - v) / (_EXT_D - 0.1)
            s = np.maximum(np.maximum(r, 0.0) * (_BASE + (1.0 - _BASE) * np.clip(ext, 0.0, 1.0)) - 0.5 * colour, 0.0)
            # straight support: the centre line (1 px, widened to 3 so a line between two of the _ANGLES still
            # counts) followed along the direction, best of five windows of _LONG px (behind, centred, ahead and
            # between): every pixel of a straight stretch _LONG px long lies in one of them; a curve leaves it
            across = (s >= _shift(s, nx, ny)) & (s >= _shift(s, -nx, -ny))
            m = cv2.filter2D(cv2.dilate(np.where(across, s, 0.0).astype(np.float32), box), -1,
                             _line_kernel(_LONG, a), borderType=cv2.BORDER_REFLECT)
            support = m.copy()
            for f in _WINDOWS:
                np.maximum(support, _shift(m, f * half * ux, f * half * uy), out=support)
            s *= np.clip((support / np.maximum(s, 1e-6) - _STRAIGHT[0]) / (_STRAIGHT[1] - _STRAIGHT[0]), 0.0, 1.0)
            better = s > best[pi]
            best[pi][better] = s[better]
            contrast[pi][better] = r[better]
            centre[pi][better] = (across & (s > 0))[better]
            angle[pi][better] = a
            fade[pi][better] = fades[pi][better]
    return best, centre, contrast, angle, fade, raw


def _scratch_finish(lum, best, centre, contrast, angle, fade, raw):
    """The neighbourhood part of _scratch_score, on the whole picture's maps (see _scratch_maps). `lum`: the
    luminance, or a (bright, dark) pair of them when each polarity was scored on its own copy."""
    box = np.ones((3, 3), np.uint8)
    lums = lum if isinstance(lum, tuple) else (lum, lum)
    peaks = (cv2.dilate(lums[0], box), cv2.erode(lums[1], box))
    for pi in (0, 1):
        best[pi] *= _unbent(best[pi], centre[pi], angle[pi])
    # between two bright scratches a dark background reads as a dark line (and beside a dark one, vice
    # versa): a polarity counts where it beats the other polarity's response nearby, or where the line stands
    # out of its wider surroundings (a 9x9 median) as it does across (a gap between scratches does not)
    near = np.ones((7, 7), np.uint8)
    back = _median(lums[0], 9)
    sb = np.where((best[0] >= cv2.dilate(best[1], near)) | (peaks[0] - back >= 0.5 * contrast[0]), best[0], 0.0)
    back = back if lums[1] is lums[0] else _median(lums[1], 9)
    sd = np.where((best[1] >= cv2.dilate(best[0], near)) | (back - peaks[1] >= 0.5 * contrast[1]), best[1], 0.0)
    return (sb, centre[0], fade[0]), (sd, centre[1], fade[1]), raw


def _median(lum: np.ndarray, k: int) -> np.ndarray:
    """k x k median of a [0, 1] image (through 8 bits: OpenCV's float median stops at 5 x 5)."""
    q = np.clip(lum * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.medianBlur(q, k).astype(np.float32) / 255.0


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Keep the weak components that contain at least one strong pixel."""
    n, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(weak, bool)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[strong & weak])] = True
    keep[0] = False
    return keep[labels]


def _drop_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[labels]


def _flat_holes(rgb: np.ndarray, min_area: int) -> np.ndarray:
    """Patches of one exact colour, sharply different from their surroundings, in an image that is otherwise
    textured or noisy (lost or blanked areas). Smooth 8-bit skies are flat too, but blend into their rim."""
    h, w = rgb.shape[:2]
    k = 5
    mean = cv2.blur(rgb, (k, k))
    var = cv2.blur(rgb * rgb, (k, k)) - mean * mean
    local = np.sqrt(np.maximum(var.max(axis=2), 0.0))
    flat = local < 0.5 / 255.0
    out = np.zeros((h, w), bool)
    if flat.mean() > 0.5:
        return out  # a clean render or graphic: flat colour is part of the picture
    flat = cv2.dilate(flat.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:200] + 1
    ring_k = np.ones((5, 5), np.uint8)
    for i in order:
        if stats[i, cv2.CC_STAT_AREA] < min_area:
            break
        x, y, bw, bh = stats[i, :4]
        x0, y0, x1, y1 = max(0, x - 4), max(0, y - 4), min(w, x + bw + 4), min(h, y + bh + 4)
        comp = labels[y0:y1, x0:x1] == i
        ring = (cv2.dilate(comp.astype(np.uint8), ring_k) > 0) & ~comp
        if not ring.any():
            continue
        sub = rgb[y0:y1, x0:x1]
        inner = np.median(sub[comp], axis=0)
        rim = sub[ring]
        step = np.abs(rim - inner).max(axis=1)
        # different all around: a natural flat shadow or clipped sky merges into its surroundings somewhere
        if np.percentile(step, 20) > 0.12:
            # with its edge: the pixels around still a fifth of the way to the hole's colour (the flatness
            # test leaves a rim, and a rim left unmasked is what the inpainting would continue inwards)
            close = np.abs(sub - inner).max(axis=2) < 0.8 * float(np.median(step))
            grown = cv2.dilate(comp.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))) > 0
            out[y0:y1, x0:x1] |= comp | (grown & close)
    return out


def _streaks(rgb: np.ndarray, sensitivity: float) -> np.ndarray:
    """Rows or columns of clipped, out-of-place colour (dead pixels, transmission errors, render fireflies)."""
    h, w = rgb.shape[:2]
    clipped = ((rgb >= 0.995) | (rgb <= 0.005)).any(axis=2)
    out = np.zeros((h, w), bool)
    for axis in (0, 1):
        # difference to the neighbours across the streak direction
        a = rgb
        prev = np.roll(a, 1, axis=1 - axis)
        nxt = np.roll(a, -1, axis=1 - axis)
        odd = np.abs(a - 0.5 * (prev + nxt)).max(axis=2) > 0.25
        cand = clipped & odd
        frac = cand.mean(axis=axis)  # per column (axis 0) or per row (axis 1)
        lines = frac > (0.5 - 0.3 * sensitivity)
        if lines.any():
            if axis == 0:
                out[:, lines] |= cand[:, lines]
            else:
                out[lines, :] |= cand[lines, :]
    return out


def _local_level(score: np.ndarray, side: int) -> np.ndarray:
    """How busy the neighbourhood is: the line response eroded by 5 px (thin lines, damage included, vanish;
    texture, which responds everywhere, stays), then its per-pixel median over a window of ~1/8 of the
    image side (per pixel rather than per block, so a busy area does not spread its level over a smooth
    neighbour). Even dense scratches hardly raise it."""
    q = np.clip(cv2.erode(score, np.ones((5, 5), np.uint8)) * 500.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.medianBlur(q, max(15, side // 8) | 1).astype(np.float32) / 500.0


def _unbent(score: np.ndarray, centre: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Weight in [0, 1]: 1 where the line through a pixel keeps its direction on at least one side, falling to
    0 where it turns by _BEND degrees or more _BEND_AT px ahead AND behind. Rims, highlights and folds curve
    steadily; a scratch is straight, or a polyline whose corner turns on one side only.

    Directions are averaged as doubled-angle vectors over the nearby centre pixels (sub-bin precision), then
    compared with the directions _BEND_AT px along the line; where no line continues, nothing is penalised.
    """
    wgt = np.where(centre, score, 0.0).astype(np.float32)
    vx = cv2.GaussianBlur(wgt * np.cos(2 * angle), (0, 0), 1.5)
    vy = cv2.GaussianBlur(wgt * np.sin(2 * angle), (0, 0), 1.5)
    norm = cv2.GaussianBlur(wgt, (0, 0), 1.5)
    h, w = score.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    here = 0.5 * np.arctan2(vy, vx)
    ux, uy = np.cos(here), np.sin(here)
    turns = []
    for sgn in (1.0, -1.0):
        mx, my = xs + sgn * _BEND_AT * ux, ys + sgn * _BEND_AT * uy
        ax = cv2.remap(vx, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        ay = cv2.remap(vy, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        an = cv2.remap(norm, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        # signed angle from here to there (doubled-angle vectors, halved); no line there -> no turn
        turn = 0.5 * np.arctan2(vx * ay - vy * ax, vx * ax + vy * ay)
        turns.append(np.where(np.hypot(ax, ay) > 0.3 * np.maximum(an, 1e-6), turn, 0.0))
    # an arc turns one way ahead and the other way behind (seen from here); a zigzag's or a polyline's
    # neighbouring stretches both lie to the same side, or one of them is straight
    arc = turns[0] * turns[1] < 0
    bend = np.where(arc, np.degrees(np.minimum(np.abs(turns[0]), np.abs(turns[1]))), 0.0)
    return np.clip((_BEND - bend) / (0.5 * _BEND), 0.0, 1.0).astype(np.float32)


def _lines(score: np.ndarray, centre: np.ndarray, value: np.ndarray, hi: np.ndarray, lo: np.ndarray,
           min_len: float, reach: int = _REACH) -> np.ndarray:
    """Centre-line pixels of the scratches. Ridge centres above `hi` are linked into curves (8-connected after
    bridging 1 px gaps) among pixels of about the same line `value` (overlapping bands _VALUE_BAND wide: a
    scratch shows the paper or the emulsion all along, whatever it crosses, so the mortar, the tripod leg or
    the fold it crosses is not linked to it); a curve is kept when it is long (at least `min_len` strong centre
    pixels: grain and most natural details are short). Weaker centre pixels (above `lo`) extend a kept curve,
    but only within `reach` px of it: fainter stretches of the same scratch are taken, what it crosses is not."""
    strong = centre & (score > hi)
    kept = np.zeros(score.shape, bool)
    bridge = np.ones((3, 3), np.uint8)
    for start in np.arange(0.0, 1.0, 0.5 * _VALUE_BAND):
        band = strong & (value >= start) & (value <= start + _VALUE_BAND)
        if np.count_nonzero(band) < min_len:
            continue
        n, labels = cv2.connectedComponents(cv2.dilate(band.astype(np.uint8), bridge), connectivity=8)
        count = np.bincount(np.where(band, labels, 0).ravel(), minlength=n)
        keep = count >= min_len
        keep[0] = False
        kept |= keep[labels] & band
    if not kept.any():
        return kept
    near = cv2.dilate(kept.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    return kept | (centre & (score > lo) & (near > 0))


def _line_pixels(lum: np.ndarray, centre: np.ndarray, fade: np.ndarray, sign: float) -> np.ndarray:
    """The scratch's own pixels around its centre line.

    Core: pixels within 2 px of it that are at least halfway from the background (a 7x7 median, which a line
    up to 3 px wide does not move) to the line's value (the 3x3 extreme at the centre): its half-maximum width;
    where scratches cross, all of the crossing. Edge: a scanned or anti-aliased scratch fades out over a pixel
    or two, and an edge left outside the mask becomes the boundary the inpainting continues, so the scratch
    comes back as a ghost. Whether a line fades is judged over each whole line (the mean of `fade`, its
    profile 2 px out, over its centre pixels: texture beside one pixel says nothing, along a line it averages
    out): a soft line gets the ring of pixels around its core plus those beyond still a twentieth of the way to
    its value; a hard-edged one only single pixels still a fifth of the way, as every background pixel masked
    is one the inpainting can only get wrong.
    """
    v = sign * lum
    box = np.ones((3, 3), np.uint8)
    back = sign * _median(lum, 7)
    line = cv2.dilate(v, box)

    def spread(at_centre, size):
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        return -cv2.dilate(np.where(centre, -at_centre, -np.inf).astype(np.float32), k)

    near = cv2.dilate(centre.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    core = (near & (v >= spread(0.5 * (line + back), 5))) | centre
    # soft lines, judged per connected line: its profile 2 px out (`fade`, over its centre pixels) still shows
    # a good part of the line, and the ring of pixels just around its core is on average not on the far side
    # of the background (a hard-edged line's ring is plain background, which the 7x7 median, pulled a little
    # towards the line, places there)
    ring = (cv2.dilate(core.astype(np.uint8), box) > 0) & ~core
    n, labels = cv2.connectedComponents(cv2.dilate(core.astype(np.uint8), box), connectivity=8)
    peak = -spread(-line, 9)
    frac = np.clip((v - back) / np.maximum(peak - back, 1e-3), -1.0, 1.0)

    def mean(where, values):
        return np.bincount(labels[where], weights=values[where], minlength=n) / np.maximum(
            np.bincount(labels[where], minlength=n), 1)

    soft = ((mean(centre, np.clip(fade, -1.0, 1.0)) > _SOFT) & (mean(ring, frac) > _SOFT_RING))[labels]
    edge = ring & ((v >= spread(back + 0.2 * (line - back), 7)) | soft)
    outer = (cv2.dilate(edge.astype(np.uint8), box) > 0) & ~core & ~edge & soft
    outer &= v >= spread(back + 0.05 * (line - back), 9)
    return core | edge | outer


def _spots(rgb: np.ndarray, level: float, polarities=(0, 1), min_area: int = 4) -> np.ndarray:
    """Dust: small compact specks near white or black, standing out of their surroundings (a top-hat /
    black-hat) by more than `level` plus six times the surroundings' own variation plus, where the surroundings
    are full of specks of their own (gravel and foliage glint everywhere: the median top-hat around is high),
    that much more, unless the speck lies beyond the values those surroundings hold at all. Only small ones (up
    to ~2.5 % of the image side): a larger bright blob on a photo is as often a highlight or a window's
    reflection; large blanked patches are holes."""
    h, w = rgb.shape[:2]
    lum = luminance(rgb)
    d = max(5, min(h, w) // 40) | 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d + 2, d + 2))
    out = np.zeros((h, w), bool)
    win = (_SPOT_WINDOW * 2 * d) | 1
    mu = cv2.blur(lum, (win, win), borderType=cv2.BORDER_REFLECT)
    sd = np.sqrt(np.maximum(cv2.blur(lum * lum, (win, win), borderType=cv2.BORDER_REFLECT) - mu * mu, 0.0))
    for pi, (op, own) in enumerate(((cv2.MORPH_OPEN, lum >= 0.8), (cv2.MORPH_CLOSE, lum <= 0.2))):
        if pi not in polarities:
            continue
        base = cv2.morphologyEx(lum, op, disk, borderType=cv2.BORDER_REFLECT)  # the picture without specks
        hat = np.abs(lum - base)
        m = cv2.blur(base, (15, 15))
        busy = np.sqrt(np.maximum(cv2.blur(base * base, (15, 15)) - m * m, 0.0))
        # the surroundings' own specks: the opening removes gravel's and foliage's bright tops along with the
        # dust, so `busy` (of what is left) misses them; the median top-hat over a few speck sizes does not
        texture = _median(hat, _SPOT_WINDOW * d | 1)
        plain = hat > level + 6.0 * busy + _SPOT_TEXTURE * np.maximum(texture - _SPOT_FLOOR, 0.0)
        # ... unless the speck is beyond anything that texture holds (dust at white on gravel whose tops reach 0.85)
        beyond = (lum - mu if op == cv2.MORPH_OPEN else mu - lum) > _SPOT_Z * sd
        cand = (plain | (beyond & (hat > level + 6.0 * busy))) & own
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
        if n <= 1:
            continue
        area = stats[:, cv2.CC_STAT_AREA]
        bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        keep = (area >= min_area) & (np.maximum(bw, bh) <= d) & (area >= 0.45 * bw * bh)
        keep[0] = False
        core = keep[labels]
        # with its soft rim: the neighbours still a fifth of the speck's contrast above their surroundings
        rim = (cv2.dilate(core.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & (hat > 0.2 * level)
        out |= core | rim
    return out


def _trace(lum, scores, raw: np.ndarray, strict: float, centres: bool = False, reach: int = _REACH):
    """(bright, dark) scratch pixels from the line scores (_scratch_finish) of a picture of luminance `lum` (or a
    (bright, dark) pair of luminances, as for _scratch_finish); with `centres`, their centre lines instead."""
    lums = lum if isinstance(lum, tuple) else (lum, lum)
    h, w = lums[0].shape
    # smooth surroundings (a sky, a saucer, a render's floor) show fainter scratches: the seed threshold falls
    # to _SMOOTH of its value where the neighbourhood's texture level is low
    top = _SEED * strict
    hi = np.minimum(top, _SMOOTH * top + _BUSY * _local_level(raw, min(h, w)))
    box = np.ones((3, 3), np.uint8)
    found = (np.zeros((h, w), bool), np.zeros((h, w), bool))
    for (score, centre, fade), sign, lum, out in zip(scores, (1.0, -1.0), lums, found, strict=True):
        value = cv2.dilate(lum, box) if sign > 0 else cv2.erode(lum, box)
        line = _lines(score, centre, value, hi, _GROW * hi, max(12.0, _MINLEN * strict * min(h, w)), reach)
        if line.any():
            out |= line if centres else _line_pixels(lum, line, fade, sign)
    return found


def _detect_alone(rgb: np.ndarray, sensitivity: float, rep) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) > _SMALL:
        return _detect_large(rgb, sensitivity, rep)
    s = float(sensitivity)
    strict = 1.6 - 1.2 * s  # 1 at the default sensitivity 0.5; thresholds and lengths scale with it
    rep(0.1, "looking for scratches")
    lum = luminance(rgb)
    *scores, raw = _scratch_score(rgb)
    rep(0.6, "tracing scratches")
    bright, dark = _trace(lum, scores, raw, strict)
    scratches = bright | dark
    rep(0.7, "looking for spots")
    spots = _spots(rgb, _SPOT * strict)
    rep(0.8, "looking for holes and streaks")
    holes = _flat_holes(rgb, max(16, int(64 * (1.0 - s))))
    streaks = _streaks(rgb, s)
    return scratches | spots | holes | streaks


def _pool(img: np.ndarray, k: int, op: str) -> np.ndarray:
    """`img` reduced k x k over each block by its "max", "min" or "mean" (ceil(h / k) x ceil(w / k))."""
    h, w = img.shape[:2]
    if op == "mean":
        return cv2.resize(img, (-(-w // k), -(-h // k)), interpolation=cv2.INTER_AREA)
    square = np.ones((k, k), np.uint8)
    morph = cv2.dilate if op == "max" else cv2.erode
    band = 64 * k  # a band of rows at a time: no full-size temporary
    return np.concatenate([morph(img[y:y + band], square, anchor=(0, 0))[::k, ::k] for y in range(0, h, band)])


def _blocks(mask: np.ndarray, k: int, h: int, w: int) -> np.ndarray:
    """A mask of k x k blocks back at h x w."""
    return np.repeat(np.repeat(mask, k, axis=0), k, axis=1)[:h, :w]


def _full_res_pixels(rgb: np.ndarray, found, k: int, back: np.ndarray, grow: int, min_area: int = 1) -> np.ndarray:
    """The damaged pixels at full resolution within `grow` px of the k x k blocks where (bright, dark) damage was
    `found` (a scratch's centre line, a speck): those at least halfway from the background (`back`, a median of
    the block means, interpolated) to the value the damage reaches within k px, and around them those still a
    fifth of the way (a scratch's or a speck's edge); no part wider than _MAX_WIDTH, none of fewer than `min_area`
    px. A tile of blocks at a time, only where something was found."""
    h, w = rgb.shape[:2]
    ph, pw = found[0].shape
    out = np.zeros((h, w), bool)
    box = np.ones((3, 3), np.uint8)
    near = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
    around = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)
    step = max(1, 512 // k)
    for py in range(0, ph, step):
        for px in range(0, pw, step):
            m = 1 + -(-(grow + k) // k)  # blocks of margin: the region's growth and the reach
            py0, px0, py1, px1 = max(0, py - m), max(0, px - m), min(ph, py + step + m), min(pw, px + step + m)
            parts = [f[py0:py1, px0:px1] for f in found]
            if not any(p.any() for p in parts):
                continue
            y0, x0, y1, x1 = py0 * k, px0 * k, min(h, py1 * k), min(w, px1 * k)
            lum = luminance(rgb[y0:y1, x0:x1])
            th, tw = lum.shape
            b = cv2.resize(back[py0:py1, px0:px1], ((px1 - px0) * k, (py1 - py0) * k),
                           interpolation=cv2.INTER_LINEAR)[:th, :tw]
            got = np.zeros((th, tw), bool)
            for sign, part in zip((1.0, -1.0), parts, strict=True):
                if not part.any():
                    continue
                seeds = _blocks(part, k, th, tw)
                region = cv2.dilate(seeds.astype(np.uint8), around) > 0
                above = sign * (lum - b)
                reach = cv2.dilate(np.where(region, above, -1.0).astype(np.float32), near)
                core = region & (above >= 0.5 * reach) & (above >= _FULL_MIN)
                # scratches and specks are a few px across whatever the picture's size: what is wider at full
                # resolution (a rim's highlight, the dark gaps between stones) is the picture's own
                dt = cv2.distanceTransform(core.astype(np.uint8), cv2.DIST_L2, 3)
                thick = dt >= 0.5 * _MAX_WIDTH + 0.5
                if thick.any():
                    r = _MAX_WIDTH
                    core &= cv2.dilate(thick.astype(np.uint8),
                                       cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) == 0
                # only what is connected to the found damage itself (texture beside a scratch is not)
                n, labels, stats, _ = cv2.connectedComponentsWithStats(core.astype(np.uint8), connectivity=8)
                keep = np.zeros(n, bool)
                keep[labels[seeds & core]] = True
                keep &= stats[:, cv2.CC_STAT_AREA] >= min_area
                keep[0] = False
                core = keep[labels]
                edge = (cv2.dilate(core.astype(np.uint8), box) > 0) & region & (above >= 0.2 * reach)
                got |= core | edge
            cy, cx = py * k, px * k
            ey, ex = min(h, (py + step) * k), min(w, (px + step) * k)
            out[cy:ey, cx:ex] |= got[cy - y0:ey - y0, cx - x0:ex - x0]
    return out


def _streaks_large(rgb: np.ndarray, hi: np.ndarray, lo: np.ndarray, k: int, sensitivity: float) -> np.ndarray:
    """_streaks on a large picture, only in the columns (rows) of the bands of k whose block maxima / minima `hi` /
    `lo` are clipped and differ from the neighbouring blocks across often enough that one of its columns (rows)
    could be a streak (most pictures: none), a few hundred at a time."""
    h, w = rgb.shape[:2]
    need = 0.5 - 0.3 * sensitivity
    clipped = (hi.max(axis=2) >= 0.995) | (lo.min(axis=2) <= 0.005)
    out = np.zeros((h, w), bool)
    for axis in (0, 1):
        # a streak pixel differs by more than 0.25 from its neighbours across: its block and the two beside it span
        # more than that
        across = np.ones((1, 3) if axis == 0 else (3, 1), np.uint8)
        odd = (cv2.dilate(hi, across) - cv2.erode(lo, across)).max(axis=2) > 0.25
        n = w if axis == 0 else h
        blocks = np.flatnonzero((clipped & odd).mean(axis=axis) > need)
        lines = (blocks[:, None] * k + np.arange(k)[None, :]).ravel()
        lines = lines[lines < n]
        for i in range(0, lines.size, 256):
            at = lines[i:i + 256]
            take = (lambda j: rgb[:, j]) if axis == 0 else (lambda j: rgb[j])  # noqa: E731
            mid, prev, nxt = take(at), take((at - 1) % n), take((at + 1) % n)  # wrapping, as _streaks rolls
            cand = ((mid >= 0.995) | (mid <= 0.005)).any(axis=2) & (np.abs(mid - 0.5 * (prev + nxt)).max(axis=2) > 0.25)
            keep = cand.mean(axis=axis) > need
            if axis == 0:
                out[:, at[keep]] |= cand[:, keep]
            else:
                out[at[keep]] |= cand[keep]
    return out


def _detect_large(rgb: np.ndarray, sensitivity: float, rep) -> np.ndarray:
    """A picture larger than _SMALL px: each kind of damage looked for at the resolution it lives at.

    Scratches and specks are a few px wide whatever the picture's size, so an averaged copy of it at analysis
    size would dilute them below a pixel (and below the near-white / near-black value the score asks of them).
    Instead the picture is reduced k x k (k: the smallest integer bringing it to at most _POOLED pixels) by the
    block maximum for bright damage and the block minimum for dark damage: a bright line or speck of any width
    keeps its full value and contrast, 1-3 px wide at that size as the line score wants it, and the lengths,
    windows and texture levels keep their meaning as fractions of the side. What is found there is then
    re-drawn at full resolution (_full_res_pixels), a tile at a time. Holes on the block means; streaks (dead
    rows and columns, 1 px) on the picture itself, in the bands the block maxima / minima leave possible. Memory:
    the reduced copies, tiles and a few full-size masks besides the picture (which is read, not copied)."""
    h, w = rgb.shape[:2]
    s = float(sensitivity)
    strict = 1.6 - 1.2 * s
    k = 2
    while h * w > _POOLED * k * k:
        k += 1
    rep(0.05, "looking for scratches")
    hi, lo = _pool(rgb, k, "max"), _pool(rgb, k, "min")
    lums = (luminance(hi), luminance(lo))
    mb, md = _scratch_maps(hi, (0,)), _scratch_maps(lo, (1,))  # bright lines on the maxima, dark on the minima
    maps = [[b[0], d[1]] for b, d in zip(mb[:5], md[:5], strict=True)]
    raw = np.maximum(mb[5], md[5])
    del mb, md
    rep(0.5, "tracing scratches")
    *scores, _ = _scratch_finish(lums, *maps, raw)
    # weaker stretches join a scratch within _REACH px at full resolution, not _REACH blocks (a blade of grass
    # beside it)
    lines = _trace(lums, scores, raw, strict, centres=True, reach=max(1, round(_REACH / k)))
    del maps, scores, raw
    rep(0.6, "looking for spots")
    # a speck of 4 px or more at full resolution may be a single block here (_full_res_pixels checks its size)
    spots = (_spots(hi, _SPOT * strict, (0,), 1), _spots(lo, _SPOT * strict, (1,), 1))
    mean = _pool(rgb, k, "mean")
    rep(0.7, "drawing them at full resolution")
    back = _median(luminance(mean), 7)
    out = _full_res_pixels(rgb, lines, k, back, _MAX_WIDTH // 2) | _full_res_pixels(rgb, spots, k, back, 1, 4)
    rep(0.8, "looking for holes and streaks")
    out |= _blocks(_flat_holes(mean, max(16, int(64 * (1.0 - s)))), k, h, w)
    out |= _streaks_large(rgb, hi, lo, k, s)
    return out


# ---------------------------------------------------------------------------------------------
# Against a reference


def _feature_homography(img8: np.ndarray, ref8: np.ndarray):
    """Homographies mapping reference pixels onto image pixels from SIFT, ORB and AKAZE matches (ratio test,
    RANSAC), one per detector that finds enough; the caller keeps the one that aligns best."""
    found = []
    makers = ((lambda: cv2.SIFT_create(nfeatures=4000), cv2.NORM_L2),
              (lambda: cv2.ORB_create(nfeatures=4000, fastThreshold=10), cv2.NORM_HAMMING),
              (cv2.AKAZE_create, cv2.NORM_HAMMING))
    for make, norm in makers:
        det = make()
        k1, d1 = det.detectAndCompute(ref8, None)
        k2, d2 = det.detectAndCompute(img8, None)
        if d1 is None or d2 is None or len(k1) < 8 or len(k2) < 8:
            continue
        pairs = cv2.BFMatcher(norm).knnMatch(d1, d2, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if len(good) < 12:
            continue
        src = np.float32([k1[m.queryIdx].pt for m in good])
        dst = np.float32([k2[m.trainIdx].pt for m in good])
        hmat, inl = cv2.findHomography(src, dst, cv2.RANSAC, 2.0)
        if hmat is not None and inl is not None and inl.sum() >= 10:
            found.append(hmat)
    return found


def _misfit(img: np.ndarray, ref: np.ndarray, warp: np.ndarray) -> float:
    """How badly `warp` (image -> reference coordinates) aligns two grey images: median absolute difference
    after a robust tone match, over the overlap. A median, so the damage itself does not count."""
    h, w = img.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    moved = cv2.warpPerspective(ref, warp, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    ok = cv2.erode((moved >= 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if ok.mean() < 0.2:
        return float("inf")
    tone = _match_exposure(moved[:, :, None], img[:, :, None], ok)[:, :, 0]
    return float(np.median(np.abs(tone - img)[ok]))


def _align(rgb: np.ndarray, ref: np.ndarray):
    """Warp `ref` onto `rgb`; returns (warped ref, valid-pixel mask).

    Candidates: no motion, the feature homographies, and each of those refined by ECC (on a copy of at most
    512 px: it is slow and needs no more); the one with the smallest misfit wins, so a refinement that drifts
    (ECC can, on damaged or differently exposed pictures) is simply not used."""
    h, w = rgb.shape[:2]
    if ref.shape[:2] != (h, w):
        # another resolution of the same picture: bring it to the same size first
        ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
    s = min(1.0, 512.0 / max(h, w))
    size = (max(8, int(w * s)), max(8, int(h * s)))
    img_s = cv2.resize(luminance(rgb), size, interpolation=cv2.INTER_AREA)
    ref_s = cv2.resize(luminance(ref), size, interpolation=cv2.INTER_AREA)
    smat = np.diag([size[0] / w, size[1] / h, 1.0])
    starts = [np.eye(3)] + [smat @ np.linalg.inv(hm) @ np.linalg.inv(smat)
                            for hm in _feature_homography(grey8(rgb), grey8(ref))]
    cands = list(starts)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
    for start in starts:
        try:
            _, warp = cv2.findTransformECC(img_s, ref_s, (start / start[2, 2]).astype(np.float32),
                                           cv2.MOTION_HOMOGRAPHY, crit, None, 5)
            cands.append(warp.astype(np.float64))
        except cv2.error:
            pass  # ECC did not converge from there
    best = min(cands, key=lambda m: _misfit(img_s, ref_s, m))
    full = np.linalg.inv(smat) @ best @ smat
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(ref, full, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if warped.ndim == 2:
        warped = warped[:, :, None]
    valid = cv2.warpPerspective(np.ones((h, w), np.float32), full, (w, h), flags=flags,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.999
    return warped, valid


def _match_exposure(src: np.ndarray, dst: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Tone curve per channel mapping the aligned `src` onto `dst` (exposure, gamma, white balance): the median
    of `dst` over the valid pixels in each of 64 equally populated bins of `src`, made monotone. Fitted on
    pixel pairs, with medians, so the damage in `dst` does not bend it (matching histograms would: 5 % of
    white scratches push the brightest 5 % of the reference to white)."""
    out = np.empty_like(src)
    for c in range(src.shape[2]):
        a = src[:, :, c][valid]
        b = dst[:, :, c][valid]
        if a.size < 64:
            out[:, :, c] = src[:, :, c]
            continue
        order = np.argsort(a, kind="stable")
        groups = np.array_split(order, 64)
        xa = np.array([np.median(a[g]) for g in groups])
        yb = np.maximum.accumulate(np.array([np.median(b[g]) for g in groups]))
        xa = np.maximum.accumulate(xa + np.arange(xa.size) * 1e-7)
        out[:, :, c] = np.interp(src[:, :, c], xa, yb)
    return out


def _expected(warped: np.ndarray, rgb: np.ndarray, valid: np.ndarray, blur: float = 0.0):
    """(lowest, highest) value each pixel of the image may have, per channel, from the aligned reference: its
    tone-matched value, blurred by `blur` like the image it is compared with. Where the reference is clipped at
    white (black), it says only that the picture is at least (at most) about that bright: the bound on that
    side goes, the other is what the image shows under the clipped area (its 5th / 95th percentile there)."""
    matched = _match_exposure(warped, rgb, valid)
    if blur > 0:
        matched = cv2.GaussianBlur(matched, (0, 0), blur)
        if matched.ndim == 2:
            matched = matched[:, :, None]
    low, high = matched.copy(), matched.copy()
    grow = np.ones((5, 5), np.uint8)
    for c in range(warped.shape[2]):
        ch = warped[:, :, c]
        vals = ch[valid]
        top, bottom = float(vals.max()), float(vals.min())
        for side, clipped in ((1, ch >= top - 1.0 / 255.0), (-1, ch <= bottom + 1.0 / 255.0)):
            if (top < 0.98 if side > 0 else bottom > 0.02) or np.mean(clipped[valid]) < 0.002:
                continue  # not clipped, or too little of it to matter
            region = cv2.dilate(clipped.astype(np.uint8), grow) > 0
            under = rgb[:, :, c][region & valid]
            if side > 0:
                high[:, :, c][region] = 10.0
                low[:, :, c][region] = np.minimum(low[:, :, c][region], np.percentile(under, 5))
            else:
                low[:, :, c][region] = -10.0
                high[:, :, c][region] = np.maximum(high[:, :, c][region], np.percentile(under, 95))
    return low, high


def _outside(img: np.ndarray, low: np.ndarray, high: np.ndarray, tol: int) -> np.ndarray:
    """How far `img` is outside the range [low, high] found within `tol` px (tolerated misalignment)."""
    if tol > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1,) * 2)
        low, high = cv2.erode(low, k), cv2.dilate(high, k)
        if low.ndim == 2:
            low, high = low[:, :, None], high[:, :, None]
    return np.maximum(np.maximum(img - high, low - img), 0.0).max(axis=2).astype(np.float32)


def _likeness(rgb: np.ndarray, warped: np.ndarray, valid: np.ndarray) -> float:
    """Correlation of the two pictures' luminance over the aligned pixels (1: the same picture; about 0: unrelated;
    0 for a flat reference). Exposure and contrast changes do not lower it; a few damaged pixels barely do."""
    a = cv2.GaussianBlur(luminance(rgb), (0, 0), 1.0)[valid].astype(np.float64)
    b = cv2.GaussianBlur(luminance(warped), (0, 0), 1.0)[valid].astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def _detect_reference(rgb: np.ndarray, ref: np.ndarray, sensitivity: float, rep) -> np.ndarray:
    rep(0.1, "aligning the reference")
    h, w = rgb.shape[:2]
    warped, valid = _align(rgb, ref)
    rep(0.6, "comparing")
    # ignore where the warped reference has no data (what the motion uncovered) and a few px more, and a band
    # along the image's borders (interpolation, framing)
    valid = cv2.erode(valid.astype(np.uint8), np.ones((7, 7), np.uint8), borderType=cv2.BORDER_CONSTANT,
                      borderValue=0) > 0
    band = max(3, int(0.01 * max(h, w)))
    valid[:band] = valid[-band:] = False
    valid[:, :band] = valid[:, -band:] = False
    if valid.mean() < 0.2 or _likeness(rgb, warped, valid) < 0.5:
        # a black or flat reference, another picture, or one the alignment could not bring onto this one: an
        # empty mask would read as "no damage", so say it instead
        raise InputError("reference: could not align it with the image (too different, or another picture); "
                         "use a version of the same picture")
    # found on copies blurred alike (the reference went through one more resampling than the image, so fine
    # texture is softer in it), with 2 px of misalignment tolerated
    low, high = _expected(warped, rgb, valid, blur=0.8)
    diff = _outside(cv2.GaussianBlur(rgb, (0, 0), 0.8), low, high, 2)
    d = diff[valid]
    noise = 1.4826 * float(np.median(np.abs(d - np.median(d)))) + float(np.median(d))
    s = float(sensitivity)
    t_hi = max(noise * (10.0 - 6.0 * s), 0.1 - 0.06 * s)
    t_lo = 0.5 * t_hi
    found = _drop_small(_hysteresis(diff > t_hi, diff > t_lo) & valid, 4)
    # the damaged pixels themselves: within 2 px of what was found, unblurred and at 1 px tolerance
    low, high = _expected(warped, rgb, valid)
    near = cv2.dilate(found.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    return near & (_outside(rgb, low, high, 1) > _REF_EDGE * t_lo)


def detect_damage(image, *, reference=None, sensitivity: float = 0.5, progress=None, cancel=None, **options):
    """Float mask (H, W) in [0, 1], 1 where the image looks damaged; paint over it to correct it.

    sensitivity 0..1: higher finds fainter and shorter damage (more recall), lower marks only clear
    damage (more precision). With `reference` (another version of the same picture, may be shifted,
    slightly rotated or scaled, differently exposed) the mask marks where the two differ beyond noise.
    The mask is sized for inpainting: the damage's own pixels and, where it fades out (scans, anti-aliasing),
    its soft edge, since an edge left outside becomes a ghost; no more, since every sound pixel masked is one
    the fill can only get wrong.
    options: `grow` (pixels to widen the mask by; default 0 alone, where the detector sizes the mask itself,
    and 1 with a reference, whose difference mask misses the faintest part of soft edges).
    Alpha is ignored; NaN / inf pixels are treated as 0 / clipped (core.as_image).
    """
    img = as_image(image, "image", copy=False)  # read only: no copy of a 4K picture
    from ..validate import check_number

    s = check_number(sensitivity, "sensitivity", 0.0, 1.0)
    rep = reporter(progress, cancel)
    rgb, _ = split_alpha(img)
    rgb = np.ascontiguousarray(rgb)
    if reference is not None:
        ref, _ = split_alpha(as_image(reference, "reference"))
        mask = _detect_reference(rgb, np.ascontiguousarray(ref), s, rep)
    else:
        mask = _detect_alone(rgb, s, rep)
    grow = int(options.get("grow", 1 if reference is not None else 0))
    if grow > 0 and mask.any():
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)
        mask = cv2.dilate(mask.astype(np.uint8), disk) > 0
    rep(1.0, "done")
    return mask.astype(np.float32)
