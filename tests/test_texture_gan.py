"""Texture GAN: trains with progress and cancel, is stored under the exemplar's hash and reused, tiles at any
size, and learns the exemplar's sharpness and local statistics (a barely trained pyramid does not have them)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from art_ai_addon import Cancelled, synthesize_texture
from test_texture import _tex, chi2, lbp_hist, seam_ratio


def sharpness(img: np.ndarray) -> float:
    """Gradient energy (squared steps): what a blurry generator lacks."""
    g = img.mean(axis=2)
    return float((np.diff(g, axis=1) ** 2).mean() + (np.diff(g, axis=0) ** 2).mean())


def _run(ex, size, tmp_path, **kw):
    msgs, info = [], {}
    out = synthesize_texture(ex, size, device="cpu", models_dir=str(tmp_path), info=info,
                             progress=lambda f, m: msgs.append(m), **kw)
    return out, msgs, info


def test_gan_trains_stores_reuses_and_tiles(tmp_path):
    from art_ai_addon.texture import gan

    ex = _tex("grass", 64)
    key = gan.exemplar_key(ex)
    # cancel during training: Cancelled, and nothing is stored
    stop = threading.Event()

    def stop_at_step_3(_f, m):
        if "step 3/" in m or "step 6/" in m:
            stop.set()

    with pytest.raises(Cancelled):
        synthesize_texture(ex, (64, 96), method="gan", steps=200, device="cpu", models_dir=str(tmp_path),
                           progress=stop_at_step_3, cancel=stop)
    assert not list(tmp_path.glob("texture_gan_*"))

    out, msgs, info = _run(ex, (64, 96), tmp_path, method="gan", steps=200, seed=0)
    assert info["method"] == "gan" and out.shape == (64, 96, 1) and out.dtype == np.float32
    assert any("training texture GAN" in m for m in msgs)
    saved = sorted(p.name for p in tmp_path.glob("texture_gan_*"))
    assert saved == [f"texture_gan_{key}.json", f"texture_gan_{key}.pth"]
    meta = json.loads((tmp_path / f"texture_gan_{key}.json").read_text())
    assert meta["architecture"] == gan.ARCHITECTURE

    # auto now finds the trained generator and reuses it without training
    big, msgs, info = _run(ex, (256, 256), tmp_path, method="auto", seed=5)
    assert info["method"] == "gan" and not any("training" in m for m in msgs)
    assert any("using the stored texture GAN" in m for m in msgs)
    assert big.shape == (256, 256, 1) and big.std() > 0.01
    assert seam_ratio(big) < 1.3
    again, _, _ = _run(ex, (256, 256), tmp_path, method="gan", seed=5)
    other, _, _ = _run(ex, (256, 256), tmp_path, method="gan", seed=6)
    assert np.array_equal(big, again) and np.abs(big - other).mean() > 0.5 * ex.std()

    # the trained pyramid paints the exemplar's texture: as sharp, with its local statistics
    assert sharpness(big) > 0.6 * sharpness(ex)
    assert chi2(lbp_hist(big), lbp_hist(ex)) < 0.5 * chi2(lbp_hist(_tex("gravel", 128)), lbp_hist(ex))
    # ...and that is the training's doing: the same pyramid after a few steps paints a near-flat field
    barely, _, _ = _run(ex, (256, 256), tmp_path / "barely", method="gan", steps=16, seed=0)
    assert sharpness(barely) < 0.3 * sharpness(big)

    # any size: exact shape, still tiles when asked to
    odd, _, _ = _run(ex, (50, 70), tmp_path, method="gan", seed=1)
    flat, _, _ = _run(ex, (50, 70), tmp_path, method="gan", seed=1, tileable=False)
    assert odd.shape == flat.shape == (50, 70, 1) and seam_ratio(odd) < 1.5

    # another exemplar has no trained model: auto falls back to patch
    _, _, info = _run(_tex("brick", 64), (64, 64), tmp_path)
    assert info["method"] == "patch"


def test_gan_ignores_a_generator_of_an_older_architecture(tmp_path):
    import torch

    from art_ai_addon.models.store import save_user_model
    from art_ai_addon.texture import gan

    ex = _tex("gravel", 64)
    save_user_model({"w": torch.zeros(3)}, gan.model_name(ex), architecture="art_ai.texture.psgan.v1",
                    models_dir_=str(tmp_path))
    assert gan.find_trained(ex, str(tmp_path)) is None
    _, _, info = _run(ex, (64, 64), tmp_path)
    assert info["method"] == "patch"  # auto does not start a training run for an outdated file
    out, msgs, info = _run(ex, (64, 64), tmp_path, method="gan", steps=8)
    assert info["method"] == "gan" and out.shape == (64, 64, 1)
    assert any("older version" in m for m in msgs) and any("training texture GAN" in m for m in msgs)
    meta = json.loads((tmp_path / f"{gan.model_name(ex)}.json").read_text())
    assert meta["architecture"] == gan.ARCHITECTURE and gan.find_trained(ex, str(tmp_path)) is not None


def test_large_gan_outputs_are_made_in_exact_strips():
    # beyond the memory budget each level runs in strips of rows with a wrapped halo: the same pixels as one
    # pass over the whole canvas, so a 4K texture has no strip seams
    import torch

    from art_ai_addon.texture import gan

    pyr, _ = gan.train(_tex("gravel", 64), steps=16, seed=0, device=torch.device("cpu"))
    whole = gan.generate(pyr, (150, 100), seed=3)
    pyr.max_pixels = 100 * 23
    strips = gan.generate(pyr, (150, 100), seed=3)
    assert np.array_equal(whole, strips) and whole.std() > 0
