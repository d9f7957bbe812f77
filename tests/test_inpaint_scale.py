"""Inpainting at scale: each damaged area is filled in a window of the picture around it, which must give the fill
the whole picture gives where nothing else is in reach, and must never copy another window's damage; the split
into thin and large damage grows each wide part by its own radius."""

from __future__ import annotations

import sys

import cv2
import numpy as np

from art_ai_addon.repair import inpaint

ip = sys.modules["art_ai_addon.repair.inpaint"]


def picture(size=160, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    base = np.stack([0.3 + 0.4 * yy, 0.5 + 0.2 * np.sin(6 * xx), 0.4 + 0.3 * xx * yy], axis=2)
    grain = cv2.GaussianBlur(rng.normal(0, 0.06, (size, size, 3)).astype(np.float32), (0, 0), 0.8)
    return np.clip(base + grain, 0, 1).astype(np.float32)


def disc(size, cy, cx, r):
    m = np.zeros((size, size), np.uint8)
    cv2.circle(m, (cx, cy), r, 1, -1)
    return m.astype(bool)


def test_each_wide_part_grows_by_its_own_radius():
    size = 160
    big, small = disc(size, 50, 50, 14), disc(size, 110, 110, 8)
    line = np.zeros((size, size), np.uint8)
    cv2.line(line, (50, 50), (50, 150), 1, 2)  # from the big disc's centre down, 2 px wide
    cv2.line(line, (110, 110), (150, 110), 1, 2)  # from the small disc's centre to the right
    hole = big | small | line.astype(bool)
    thin, large = ip.thin_and_large(hole)
    assert not (thin & large).any() and ((thin | large) == hole).all()
    assert large[big].all() and large[small].all()
    # the lines are large next to their disc only: up to its radius (+ about 2 px) from its core, whose edge
    # lies THIN_RADIUS px inside the disc; the old dilation grew every part by the widest radius (14 + 1)
    down = np.nonzero(large[:, 50] & line[:, 50].astype(bool))[0]
    right = np.nonzero(large[110, :] & line[110, :].astype(bool))[0]
    core_big, core_small = 14 - ip.THIN_RADIUS, 8 - ip.THIN_RADIUS
    assert 50 + core_big + 13 <= down.max() <= 50 + core_big + 17, down.max()
    assert 110 + core_small + 6 <= right.max() <= 110 + core_small + 10, right.max()
    assert thin[140, 50] and thin[110, 140]


def plain_thin_and_large(hole, thin_radius=ip.THIN_RADIUS):
    """The split's definition over the whole picture: a hole pixel is large when the wide part nearest to it (one
    distance transform with labels over the picture) is at most its own radius + 1 px away."""
    dist = cv2.distanceTransform(np.pad(hole, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    n, labels, stats, _ = cv2.connectedComponentsWithStats((dist > thin_radius).astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= 2 * thin_radius * thin_radius
    keep[0] = False
    core = keep[labels]
    radius = np.zeros(n)
    np.maximum.at(radius, labels[core], dist[core])
    away, nearest = cv2.distanceTransformWithLabels((~core).astype(np.uint8), cv2.DIST_L2, 5,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
    to_part = np.zeros(nearest.max() + 1, np.int64)
    to_part[nearest[core]] = labels[core]
    large = hole & core.any() & (away <= np.ceil(radius)[to_part[nearest]] + 1.0)
    return hole & ~large, large


def test_the_split_in_clusters_of_wide_parts_is_the_whole_pictures():
    # discs of many radii (some close enough to share a cluster, some alone), scratches running into them
    for seed in range(6):
        rng = np.random.default_rng(seed)
        size = 400
        hole = np.zeros((size, size), np.uint8)
        for _ in range(rng.integers(3, 12)):
            cv2.circle(hole, (int(rng.integers(0, size)), int(rng.integers(0, size))), int(rng.integers(5, 40)), 1, -1)
        for _ in range(8):
            p, q = rng.integers(0, size, 2), rng.integers(0, size, 2)
            cv2.line(hole, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 1, int(rng.integers(1, 4)))
        hole = hole.astype(bool)
        thin, large = ip.thin_and_large(hole)
        want_thin, want_large = plain_thin_and_large(hole)
        assert large.any() and thin.any()
        assert np.array_equal(large, want_large) and np.array_equal(thin, want_thin), seed


def test_windows_fill_as_the_whole_picture_does_where_nothing_else_is_in_reach():
    img = picture()
    holes = disc(160, 40, 40, 9) | disc(160, 120, 120, 9)
    bad = img.copy()
    bad[holes] = 1.0
    got = inpaint(bad, holes, method="telea")
    whole = ip._telea(bad, holes)  # one call on the whole picture
    assert np.abs(got - whole)[holes].max() < 1e-4
    smooth = inpaint(bad, holes, method="smooth")
    whole = ip._smooth(bad, holes)
    assert np.abs(smooth - whole)[holes].max() < 2e-3  # (conjugate gradients stop at a relative residual)
    assert (got[~holes] == bad[~holes]).all() and (smooth[~holes] == bad[~holes]).all()


def test_no_window_copies_the_damage_of_another():
    """Red damage (a colour the picture does not have) next to each hole, outside the mask of the one being filled
    but inside its window: patches must never come from it."""
    size = 200
    img = picture(size, 1)
    img[:, :, 0] *= 0.5  # no strong red anywhere
    red = np.zeros((size, size), bool)
    holes = np.zeros((size, size), bool)
    for cy, cx in ((50, 50), (50, 150), (150, 100)):
        holes |= disc(size, cy, cx, 10)
        red |= disc(size, cy + 24, cx, 6)  # 8 px and more from the hole: another window's damage
    bad = img.copy()
    bad[red] = (1.0, 0.0, 0.0)
    for method in ("patch", "auto"):
        out = inpaint(bad, holes | red, method=method)
        redness = out[:, :, 0] - out[:, :, 1:].max(axis=2)
        assert redness[holes | red].max() < 0.3, (method, redness[holes | red].max())
    # and the windows are what the fill runs on: one per group of nearby damage, each around its damage
    wins = list(ip._windows(holes | red, ip.thin_and_large(holes | red)[1]))
    assert sum(int(own.sum()) for _, _, own in wins) == int((holes | red).sum())
    for ys, xs, own in wins:
        assert own.any() and (ys.stop - ys.start) * (xs.stop - xs.start) <= max(ip._WINDOW_AREA, 200 * 200)


def test_far_apart_damage_in_a_large_picture_is_split_into_windows():
    size = 1400
    hole = np.zeros((size, size), bool)
    for cy in range(100, size, 300):
        for cx in range(100, size, 300):
            hole |= disc(size, cy, cx, 12)
    wins = list(ip._windows(hole, hole))
    assert len(wins) > 4
    covered = np.zeros_like(hole)
    for ys, xs, own in wins:
        assert (ys.stop - ys.start) * (xs.stop - xs.start) <= ip._WINDOW_AREA
        region = covered[ys, xs]
        assert not (region & own).any()  # every hole pixel is filled once
        region |= own
    assert (covered == hole).all()



def test_auto_leaves_kept_out_damage_alone_and_never_reads_it():
    """keep_out (another window's damage inside this one): not filled here, never a source, never under a test copy.
    So the fill of the hole is the same whatever the kept-out pixels hold; were they known picture (as without
    keep_out), the patches that cover them would change the fill."""
    size = 160
    img = picture(size, 2)
    hole = disc(size, 60, 60, 12) | disc(size, 120, 40, 5)  # a large hole and a small compact one
    keep = disc(size, 70, 110, 14) | disc(size, 125, 120, 4)
    fills, plains = [], []
    for colour in ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)):
        bad = img.copy()
        bad[hole] = 0.0
        bad[keep] = colour
        info = {}
        out = ip._auto(bad, hole, keep_out=keep, seed=0, info=info)
        assert (out[~hole] == bad[~hole]).all()  # the kept-out damage is not filled
        assert sum(info["holes"].values()) == 2, info  # only this call's holes are counted
        fills.append(out[hole])
        plains.append(ip._auto(bad, hole, seed=0)[hole])  # the kept-out pixels as known picture
    assert np.array_equal(fills[0], fills[1])
    assert not np.array_equal(plains[0], plains[1])  # (read, they change the fill: the test can tell)


def test_telea_in_8_bits_only_where_the_picture_is_8_bit():
    """8-bit pictures go through OpenCV's 8-bit path (one call for the three channels): the fill is OpenCV's own;
    a float picture keeps its precision (the fill is not rounded to 8-bit levels)."""
    img = picture(120, 3)
    hole = disc(120, 60, 60, 6)
    u8 = (img * 255 + 0.5).astype(np.uint8)
    got = inpaint(u8.astype(np.float32) / 255.0, hole, method="telea")
    ref = cv2.inpaint(u8, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
    assert np.abs(got - ref)[hole].max() < 1e-6
    fine = np.clip(img * 0.25 + 0.3, 0, 1).astype(np.float32)  # values between 8-bit levels
    got = inpaint(fine, hole, method="telea")[hole] * 255.0
    assert np.abs(got - np.rint(got)).max() > 0.1


def test_small_windows_are_filled_together_each_in_its_own_frame():
    """auto's small windows (specks) go through one call in a mosaic: each crop comes back in its place, framed by
    kept-out pixels; and each speck gets the fill of its own surroundings (a crop put back in another's place, or one
    seeing its neighbour, would bring the other half's colour)."""
    rng = np.random.default_rng(4)
    crops = [(rng.random((h, w, 3)).astype(np.float32), rng.random((h, w)) < 0.1, np.zeros((h, w), bool))
             for h, w in ((40, 60), (70, 30), (20, 20), (55, 55))]
    img, own, keep, boxes = ip._mosaic(crops)
    for (c, o, k), box in zip(crops, boxes, strict=True):
        assert np.array_equal(img[box], c) and np.array_equal(own[box], o) and np.array_equal(keep[box], k)
    # (the crops keep nothing out of their own: what is not kept out is the crops, apart from each other)
    assert cv2.connectedComponents((~keep).astype(np.uint8), connectivity=8)[0] - 1 == len(crops)
    assert own.sum() == sum(int(o.sum()) for _, o, _ in crops)

    size = 400
    img = picture(size, 5)
    img[:, :size // 2] *= (0.4, 1.0, 0.4)  # green left, magenta right
    img[:, size // 2:] *= (1.0, 0.4, 1.0)
    hole = np.zeros((size, size), bool)
    for cy in range(40, size - 30, 80):
        for cx in (60, 140, 260, 340):
            hole |= disc(size, cy, cx, 3)
    bad = img.copy()
    bad[hole] = 1.0
    calls = []
    auto = ip._auto
    try:
        ip._auto = lambda *a, **k: calls.append(1) or auto(*a, **k)
        out = inpaint(bad, hole, method="auto")
    finally:
        ip._auto = auto
    assert len(calls) < len(list(ip._windows(hole, hole))) // 4  # (20 specks, each a window of its own)
    assert np.abs(out - img)[hole].mean() < 0.03
    n, labels = cv2.connectedComponents(hole.astype(np.uint8))
    for i in range(1, n):
        speck = labels == i
        assert np.abs(out[speck].mean(0) - img[speck].mean(0)).max() < 0.1
