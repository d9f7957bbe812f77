"""Neural (Gram) texture synthesis: the stylize encoders, an exactly periodic objective, exact tiling, scale."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from art_ai_addon import InputError, synthesize_texture
from art_ai_addon.stylize.encoders import RandomEncoder, vgg19_expected_shapes
from art_ai_addon.texture import neural
from test_texture import _tex, chi2, lbp_hist, max_copy_ncc, seam_ratio


def sharpness(img: np.ndarray) -> float:
    g = img.mean(axis=2)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def _loss_and_grad(stats, x, targets, periodic):
    xv = torch.from_numpy(x.transpose(2, 0, 1)[None].copy()).requires_grad_(True)
    loss = stats.loss_backward(xv, targets, periodic)
    return loss, xv.grad[0].numpy().transpose(1, 2, 0)


@pytest.fixture(scope="module")
def gravel_stats():
    ex = _tex("gravel", 96)
    stats = neural._Statistics(RandomEncoder(), RandomEncoder.style_layers, 1, margin=48, tile=4096)
    e = torch.from_numpy(ex.transpose(2, 0, 1)[None].copy())
    targets = {k: g / n for k, (g, n) in stats.grams(e, periodic=False).items()}
    rng = np.random.default_rng(0)
    x = np.clip(0.5 + 0.2 * rng.standard_normal((128, 128, 1)), 0, 1).astype(np.float32)
    return stats, targets, x


def test_objective_is_exactly_periodic_when_tileable(gravel_stats):
    # on the torus every position is alike: rolling the canvas (by a multiple of the encoder's total stride, so
    # its subsampling grid is the same) changes neither the loss nor, up to the roll, its gradient; on a plain
    # image the borders are special and the loss changes
    stats, targets, x = gravel_stats
    rolled = np.roll(x, (32, 48), axis=(0, 1))
    loss, grad = _loss_and_grad(stats, x, targets, periodic=True)
    loss_r, grad_r = _loss_and_grad(stats, rolled, targets, periodic=True)
    assert loss_r == pytest.approx(loss, rel=1e-4)
    np.testing.assert_allclose(grad_r, np.roll(grad, (32, 48), axis=(0, 1)), atol=1e-4 * np.abs(grad).max())
    plain, _ = _loss_and_grad(stats, x, targets, periodic=False)
    plain_r, _ = _loss_and_grad(stats, rolled, targets, periodic=False)
    assert abs(plain_r - plain) > 1e-4 * plain


def test_tiled_gradient_is_the_exact_global_gradient(gravel_stats):
    # memory tiling must not be an approximation (that is what would leave seams): 64 px tiles of a 128 px
    # canvas give the same global loss and the same gradient as one pass over the whole canvas
    stats, targets, x = gravel_stats
    tiled = neural._Statistics(stats.enc, stats.layers, 1, margin=48, tile=64)
    assert tiled.n_tiles(128, 128) == 4
    for periodic in (True, False):
        loss, grad = _loss_and_grad(stats, x, targets, periodic)
        loss_t, grad_t = _loss_and_grad(tiled, x, targets, periodic)
        assert loss_t == pytest.approx(loss, rel=1e-4)
        np.testing.assert_allclose(grad_t, grad, atol=2e-3 * np.abs(grad).max())


def test_neural_tiles_and_matches_statistics():
    ex = _tex("gravel", 64)
    seen, info = [], {}
    out = synthesize_texture(ex, (64, 64), method="neural", steps=10, seed=0, device="cpu", info=info,
                             progress=lambda f, m: seen.append(f))
    assert out.shape == (64, 64, 1)
    assert seen and seen[-1] == pytest.approx(1.0)
    assert seam_ratio(out) < 1.3
    own = chi2(lbp_hist(out), lbp_hist(_tex("gravel", 96, 200, 200)))
    assert own < chi2(lbp_hist(out), lbp_hist(_tex("brick", 96, 200, 200)))
    assert max_copy_ncc(out, ex, 32) < 0.9  # not a pixel copy of the exemplar
    # the stylize encoders are used, and the user is told what is lost without VGG19
    assert info["encoder"] == "builtin" and "vgg19-dcbb9e9d.pth" in info["note"]
    again = synthesize_texture(ex, (64, 64), method="neural", steps=10, seed=0, device="cpu")
    np.testing.assert_array_equal(out, again)  # same seed, same output


def test_coarse_to_fine_output_is_sharp_and_tiles():
    # 128 px from a 96 px exemplar runs on two levels; the upsampled coarse level must be refined to the
    # exemplar's sharpness (not left as a soft enlargement) and stay periodic through the Fourier upsampling
    ex = _tex("gravel", 96)
    assert len(neural._levels((128, 128), ex.shape[:2])) == 2
    out = synthesize_texture(ex, (128, 128), method="neural", steps=20, seed=1, device="cpu")
    ratio = sharpness(out) / sharpness(ex)
    assert 0.75 < ratio < 1.4, ratio
    assert seam_ratio(out) < 1.3


def test_neural_runs_on_vgg19_from_a_weights_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) * (0.5 / np.sqrt(np.prod(s[1:])) if len(s) > 1 else 0.0)
          for k, s in vgg19_expected_shapes(29).items()}
    path = tmp_path / "vgg19_features.pth"
    torch.save(sd, path)
    info = {}
    rgb = np.repeat(_tex("grass", 48), 3, axis=2)
    out = synthesize_texture(rgb, (48, 48), method="neural", steps=4, device="cpu", encoder=str(path), info=info)
    assert info["encoder"] == "vgg19" and "note" not in info
    assert out.shape == (48, 48, 3) and np.isfinite(out).all()


def test_neural_colour_alpha_and_bad_options():
    rgb = skimage.data.astronaut()[200:248, 200:248].astype(np.float32) / 255.0
    alpha = np.tile(np.linspace(0, 1, 48, dtype=np.float32), (48, 1))[:, :, None]
    out = synthesize_texture(np.concatenate([rgb, alpha], 2), (48, 64), method="neural", steps=4, device="cpu")
    assert out.shape == (48, 64, 4)
    # histogram matching gives exactly the exemplar's distribution per channel, alpha included
    assert abs(float(np.median(out[:, :, 3])) - 0.5) < 0.05
    with pytest.raises(InputError, match="spectrum"):
        synthesize_texture(rgb, (32, 32), method="neural", spectrum=-1)
    with pytest.raises(InputError, match="not an option of texture method 'neural'"):
        synthesize_texture(rgb, (32, 32), method="neural", bogus=1)

