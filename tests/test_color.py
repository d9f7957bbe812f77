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
