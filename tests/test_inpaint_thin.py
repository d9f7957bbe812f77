"""Thin scratches: `auto` fills them with the smooth fill's shading and PatchMatch's grain, not a blurred line;
and `inpaint` in art_ai_addon.repair is the function whatever was imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from art_ai_addon.repair import inpaint
from test_repair import apply_damage, grad_energy, photo, psnr_in, scratches

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["brick", "gravel", "grass"])
def test_scratches_in_texture_get_grain_not_a_blur(name):
    """Gradient energy inside the scratches against the original's: the plain smooth fill scores 0.25-0.4 on
    these pictures, auto 1.1-1.2 (measured at 128 px); PSNR pays for grain that is not the original's (up
    to 2.1 dB below the smooth fill on grass, as any plausible texture does), and brick gains (its joints)."""
    rng = np.random.default_rng(0)
    clean = photo(name, 128)
    mask = scratches(128, 128, rng, 6, widths=(2, 3))
    damaged = apply_damage(clean, mask, rng)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ref = grad_energy(clean, inner)
    info = {}
    auto = inpaint(damaged, mask, method="auto", info=info)
    smooth = inpaint(damaged, mask, method="smooth")
    assert grad_energy(smooth, inner) / ref < 0.5  # the measure does tell a blur apart
    assert grad_energy(auto, inner) / ref > 0.7, grad_energy(auto, inner) / ref
    assert grad_energy(auto, inner) / ref < 1.6  # grain, not noise
    assert psnr_in(auto, clean, mask) > psnr_in(smooth, clean, mask) - 3.0
    assert info["note"].endswith("thin holes smooth+detail") and info["holes"]["thin"] >= 2, info


def test_inpaint_is_the_function_after_the_submodule_was_imported():
    # a fresh interpreter: here the package was imported long ago
    code = ("import art_ai_addon.repair.inpaint, types\n"
            "from art_ai_addon.repair import inpaint\n"
            "import art_ai_addon as art\n"
            "assert isinstance(inpaint, types.FunctionType) and inpaint.__name__ == 'inpaint', inpaint\n"
            "assert art.inpaint is inpaint\n"
            "import sys; assert sys.modules['art_ai_addon.repair.inpaint'].inpaint is inpaint\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    assert callable(inpaint) and inpaint.__module__ == "art_ai_addon.repair.inpaint"


def test_pull_fill_is_a_local_average_of_the_known_pixels():
    """The thin fill's first guess: known pixels untouched; a hole pixel gets the average of the known pixels near it
    (a thin scratch across a ramp: nearly the ramp; the middle of a wide hole: something between its sides, never the
    zero the pyramid starts from)."""
    from art_ai_addon.repair.smooth import pull_fill

    h, w = 90, 130
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0 * xx], axis=2).astype(np.float32)
    hole = np.zeros((h, w), bool)
    hole[40:42, 10:120] = True  # a 2-px scratch across the picture
    hole[10:30, 60:100] = True  # and a wide hole
    bad = img.copy()
    bad[hole] = 1.0
    got = pull_fill(bad, hole)
    assert np.array_equal(got[~hole], img[~hole])
    scratch = np.zeros_like(hole)
    scratch[40:42, 10:120] = True
    assert np.abs(got - img)[scratch].max() < 0.03
    assert np.abs(got - img)[hole].max() < 0.25 and got[hole].min() > 0.05
    assert np.abs(got[:, :, 2] - 0.5)[hole].max() < 1e-5  # (a constant channel stays constant)
