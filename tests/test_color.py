"""Colour transfer (stylize method='color'), measured with independent tools (skimage Lab, OpenCV Sobel)."""

import cv2
import numpy as np
import pytest
from skimage.color import rgb2lab

import art_ai_addon as art
from conftest import skimage_rgb


def hist_distance(a, b, bins=8):
    """L1 distance between normalised 3-D colour histograms."""
    ha, _ = np.histogramdd(a.reshape(-1, 3), bins=bins, range=[(0, 1)] * 3)
    hb, _ = np.histogramdd(b.reshape(-1, 3), bins=bins, range=[(0, 1)] * 3)
    return np.abs(ha / ha.sum() - hb / hb.sum()).sum()


def edges(img):
    g = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


@pytest.fixture(scope="module")
def pair():
    return skimage_rgb("astronaut", 128), skimage_rgb("coffee", 96)


def test_palette_moves_to_style_and_edges_survive(pair):
    content, style = pair
    out = art.stylize(content, style, method="color")
    assert out.shape == content.shape and out.dtype == np.float32
    before, after = hist_distance(content, style), hist_distance(out, style)
    assert after < 0.5 * before, (before, after)
    corr = np.corrcoef(edges(content).ravel(), edges(out).ravel())[0, 1]
    assert corr > 0.8, corr


def test_strength_is_monotonic_and_zero_is_identity(pair):
    content, style = pair
    dists = [hist_distance(art.stylize(content, style, method="color", strength=s), style)
             for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in zip(dists, dists[1:])), dists
    same = art.stylize(content, style, method="color", strength=0.0)
    assert np.abs(same - content).max() <= 1 / 255


def test_mask_limits_the_change(pair):
    content, style = pair
    mask = np.zeros(content.shape[:2], np.float32)
    mask[:, 64:] = 1.0
    out = art.stylize(content, style, method="color", mask=mask)
    assert np.abs(out[:, :64] - content[:, :64]).max() <= 1 / 255
    assert np.abs(out[:, 64:] - content[:, 64:]).mean() > 0.03


def test_alpha_passes_through_and_grey_stays_grey(pair):
    content, style = pair
    alpha = np.linspace(0, 1, content.shape[0] * content.shape[1], dtype=np.float32).reshape(content.shape[:2])
    rgba = np.dstack([content, alpha])
    out = art.stylize(rgba, style, method="color")
    assert out.shape[2] == 4 and np.array_equal(out[:, :, 3], rgba[:, :, 3])
    grey = content.mean(axis=2, keepdims=True)
    assert art.stylize(grey, style, method="color").shape == grey.shape


def test_preserve_color_keeps_chroma(pair):
    content, style = pair
    out = art.stylize(content, style, method="color", preserve_color=True)
    lab_c, lab_o, lab_s = rgb2lab(content), rgb2lab(out), rgb2lab(style)
    # hue/chroma of the content stays (a, b within a few units), lightness moves towards the style's
    assert np.median(np.abs(lab_o[..., 1:] - lab_c[..., 1:])) < 4.0
    assert abs(lab_o[..., 0].mean() - lab_s[..., 0].mean()) < abs(lab_c[..., 0].mean() - lab_s[..., 0].mean())


def test_deterministic_and_bad_inputs(pair):
    content, style = pair
    a = art.stylize(content, style, method="color", seed=3)
    b = art.stylize(content, style, method="color", seed=3)
    assert np.array_equal(a, b)
    with pytest.raises(art.InputError, match="mask"):
        art.stylize(content, style, method="color", mask=np.ones((10, 10), np.float32))
    with pytest.raises(art.InputError, match="method"):
        art.stylize(content, style, method="picasso")


def test_cancel_and_progress(pair):
    import threading

    content, style = pair
    seen = []
    art.stylize(content, style, method="color", progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == pytest.approx(1.0) and all(0 <= f <= 1 for f in seen)
    ev = threading.Event()
    ev.set()
    with pytest.raises(art.Cancelled):
        art.stylize(content, style, method="color", cancel=ev)


def _gradient_render(h, w):
    """A render-like frame: smooth sky gradient and a shaded ball (no edges but the ball's outline)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / h, xx / w
    img = np.stack([0.3 + 0.3 * yy, 0.5 + 0.3 * yy, 0.9 - 0.2 * yy], -1)
    d = np.sqrt(((xx - 0.5) * w / h) ** 2 + (yy - 0.5) ** 2)
    shade = np.clip(0.2 + 0.8 * np.sqrt(np.clip(1 - (d / 0.3) ** 2, 0, 1)) * (1.4 - xx), 0, 1)[..., None]
    return np.where((d < 0.3)[..., None], shade * np.array([0.8, 0.25, 0.1], np.float32), img).astype(np.float32)


def test_large_pictures_mapping_learned_small_applied_full_size():
    """Above ~130k pixels the mapping is learned on a small copy and applied at full size: the palette still
    moves, gradients stay smooth (no banding or blocks), mask, alpha and grey behave as at small sizes."""
    content, style = _gradient_render(520, 540), skimage_rgb("coffee", 160)
    out = art.stylize(content, style, method="color")
    assert hist_distance(out, style) < 0.5 * hist_distance(content, style)
    # the sky is a smooth gradient: so is the result (second differences along rows and columns stay tiny, as
    # they are in the content; banding or 2-px blocks from the small grid would show as steps)
    sky = out[:100, :200]
    for axis in (0, 1):
        step = np.abs(np.diff(sky, n=2, axis=axis)).max()
        assert step < 4 / 255, (axis, step)
    mask = np.zeros(content.shape[:2], np.float32)
    mask[:, 270:] = 1.0
    masked = art.stylize(content, style, method="color", mask=mask)
    assert np.array_equal(masked[:, :270], content[:, :270])
    assert np.abs(masked[:, 300:] - content[:, 300:]).mean() > 0.03
    rgba = np.dstack([content, np.linspace(0, 1, 540, dtype=np.float32)[None].repeat(520, 0)])
    out4 = art.stylize(rgba, style, method="color")
    assert np.array_equal(out4[:, :, 3], rgba[:, :, 3]) and np.allclose(out4[:, :, :3], out, atol=1e-6)
    grey = art.stylize(content.mean(axis=2, keepdims=True), style, method="color")
    assert grey.shape == (520, 540, 1) and 0 <= grey.min() and grey.max() <= 1
    exact = art.stylize(content, style, method="color", regrain=False)  # the mapping on every pixel
    lab_o, lab_e = rgb2lab(out), rgb2lab(exact)
    assert np.median(np.abs(lab_o - lab_e)) < 3.0  # the smoothed change follows the exact mapping closely
