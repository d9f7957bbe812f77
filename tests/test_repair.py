"""Repair engine and CLI: damage detection (alone / against a reference) and inpainting methods."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data as sd

from art_ai_addon import Cancelled, InputError, ModelError, NotAvailableError
from art_ai_addon.imageio import read_image, write_image
from art_ai_addon.repair import detect_damage, inpaint

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Synthetic damage, made here


def photo(name: str, size: int) -> np.ndarray:
    img = getattr(sd, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def scratches(h, w, rng, n=6, widths=(1, 3)):
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        pts = [rng.integers(0, [w, h])]
        for _ in range(rng.integers(2, 5)):
            pts.append(np.clip(pts[-1] + rng.integers(-w // 3, w // 3 + 1, 2), 0, [w - 1, h - 1]))
        cv2.polylines(m, [np.array(pts, np.int32)], False, 1, int(rng.integers(widths[0], widths[1] + 1)))
    return m.astype(bool)


def blobs(h, w, rng, cover=0.08, rmin=6, rmax=12):
    m = np.zeros((h, w), np.uint8)
    while m.mean() < cover:
        cy, cx = rng.integers(rmax, [h - rmax, w - rmax])
        cv2.circle(m, (int(cx), int(cy)), int(rng.integers(rmin, rmax + 1)), 1, -1)
    return m.astype(bool)


def text_strokes(h, w):
    m = np.zeros((h, w), np.uint8)
    cv2.putText(m, "ART 42", (4, h // 2), cv2.FONT_HERSHEY_SIMPLEX, w / 140.0, 1, 2)
    return m.astype(bool)


def apply_damage(img, mask, rng):
    """Each damaged component becomes bright or dark, as scratches on a print do."""
    out = img.copy()
    n, lab = cv2.connectedComponents(mask.astype(np.uint8))
    for i in range(1, n):
        out[lab == i] = 1.0 if rng.random() < 0.5 else 0.05
    return out


def psnr_in(a, b, mask):
    mse = float(np.mean((a[mask] - b[mask]) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def grad_energy(img, mask):
    g = img.mean(axis=2) if img.ndim == 3 else img
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean((gx * gx + gy * gy)[mask]))


def precision_recall(pred, gt, tol=2):
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1,) * 2)
    gtd = cv2.dilate(gt.astype(np.uint8), k) > 0
    pdd = cv2.dilate(pred.astype(np.uint8), k) > 0
    return (pred & gtd).sum() / max(pred.sum(), 1), (gt & pdd).sum() / max(gt.sum(), 1)


# ---------------------------------------------------------------------------------------------
# inpaint: contract


@pytest.mark.parametrize("method", ["telea", "ns", "smooth", "patch", "auto"])
def test_outside_mask_unchanged_and_alpha_passes(method):
    rng = np.random.default_rng(0)
    rgb = photo("coffee", 64)
    alpha = rng.random((64, 64, 1)).astype(np.float32)
    mask = scratches(64, 64, rng, 3) | blobs(64, 64, rng, 0.04, 4, 7)
    damaged = np.concatenate([apply_damage(rgb, mask, rng), alpha], axis=2)
    out = inpaint(damaged, mask.astype(np.float32), method=method)
    assert out.shape == damaged.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :, 3], alpha[:, :, 0])
    outside = ~mask
    assert np.abs(out[outside][:, :3] - damaged[outside][:, :3]).max() <= 1 / 255
    # and the hole did change: the damage is gone
    assert np.abs(out[mask][:, :3] - rgb[mask]).mean() < np.abs(damaged[mask][:, :3] - rgb[mask]).mean() / 2


def test_empty_full_and_wrong_size_masks():
    img = photo("chelsea", 48)
    out = inpaint(img, np.zeros((48, 48), np.float32))
    np.testing.assert_array_equal(out, img)
    with pytest.raises(InputError, match="whole image"):
        inpaint(img, np.ones((48, 48), np.float32))
    with pytest.raises(InputError, match="does not match"):
        inpaint(img, np.ones((40, 48), np.float32))
    with pytest.raises(InputError, match="unknown"):
        inpaint(img, np.zeros((48, 48), np.float32), method="magic")


def test_nan_inf_grey_and_01_integer_masks():
    img = photo("camera", 48)[:, :, :1].copy()
    img[5, 5, 0] = np.nan
    img[6, 6, 0] = np.inf
    mask = np.zeros((48, 48), np.uint8)
    mask[20:24, 10:40] = 1  # a 0/1 label image, not 0/255
    out = inpaint(img, mask, method="telea")
    assert out.shape == (48, 48, 1) and np.isfinite(out).all()
    assert out[5, 5, 0] == 0.0 and out[6, 6, 0] == 1.0
    assert not np.allclose(out[20:24, 10:40], img[20:24, 10:40])


def test_soft_mask_blends_and_zero_is_exact():
    img = photo("astronaut", 48)
    mask = np.zeros((48, 48), np.float32)
    mask[10:20, 10:20] = 1.0
    mask[30:34, 30:34] = 0.25
    full = inpaint(img, (mask > 0).astype(np.float32), method="telea")
    soft = inpaint(img, mask, method="telea")
    np.testing.assert_allclose(soft[30:34, 30:34], 0.5 * img[30:34, 30:34] + 0.5 * full[30:34, 30:34], atol=1e-5)
    np.testing.assert_array_equal(soft[mask == 0], img[mask == 0])


# ---------------------------------------------------------------------------------------------
# inpaint: quality


@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_thin_scratches_and_text_smooth_at_least_telea(name):
    """The smooth fill is at least as close as Telea; auto adds grain to it inside the wider scratches, which
    costs some PSNR (measured: -0.4 dB against Telea on the astronaut here, with twice its detail)."""
    rng = np.random.default_rng(1)
    clean = photo(name, 96)
    mask = scratches(96, 96, rng, 5) | text_strokes(96, 96)
    damaged = apply_damage(clean, mask, rng)
    ref = cv2.inpaint((damaged * 255).astype(np.uint8), mask.astype(np.uint8), 3, cv2.INPAINT_TELEA) / 255.0
    p_ref = psnr_in(ref, clean, mask)
    p_smooth = psnr_in(inpaint(damaged, mask, method="smooth"), clean, mask)
    assert p_smooth >= p_ref - 0.1, (p_smooth, p_ref)
    p_auto = psnr_in(inpaint(damaged, mask, method="auto"), clean, mask)
    assert p_auto > psnr_in(damaged, clean, mask) + 8  # the scratches are gone, not just dimmed
    assert p_auto > p_ref - 1.5, (p_auto, p_ref)


@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_thin_damage_smooth_beats_telea_by_a_decibel(name):
    """The biharmonic fill continues gradients across scratches and text; Telea only averages values."""
    gains = []
    for seed in (3, 4, 5):
        rng = np.random.default_rng(seed)
        clean = photo(name, 128)
        mask = scratches(128, 128, rng, 6) | text_strokes(128, 128)
        damaged = apply_damage(clean, mask, rng)
        ref = cv2.inpaint((damaged * 255).astype(np.uint8), mask.astype(np.uint8), 3, cv2.INPAINT_TELEA) / 255.0
        smooth = inpaint(damaged, mask, method="smooth")
        gains.append(psnr_in(smooth, clean, mask) - psnr_in(ref, clean, mask))
    assert min(gains) > 0.3 and np.mean(gains) >= 1.0, gains


def test_smooth_reproduces_smooth_shading_and_grey_edges():
    """A bilinear gradient is biharmonic, so the fill must rebuild it; at the image edge (mirrored) nearly."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32) / 63.0
    clean = (0.1 + 0.5 * xx + 0.3 * yy * xx)[:, :, None]
    mask = np.zeros((64, 64), bool)
    mask[30:33, :] = True  # across the whole image, touching both edges
    mask[:, 5:7] = True
    mask[50:, 40] = True
    damaged = clean.copy()
    damaged[mask] = 1.0
    out = inpaint(damaged, mask, method="smooth")
    assert out.shape == (64, 64, 1)
    inner = mask.copy()
    inner[:8], inner[-8:], inner[:, :8], inner[:, -8:] = False, False, False, False
    err = np.abs(out - clean)[:, :, 0]
    assert err[inner].max() < 2e-3 and err[mask].max() < 4 / 255, (err[inner].max(), err[mask].max())
    telea = np.abs(inpaint(damaged, mask, method="telea") - clean)[:, :, 0]
    assert telea[mask].mean() > 5 * err[mask].mean(), (telea[mask].mean(), err[mask].mean())


@pytest.mark.parametrize("name", ["brick", "gravel", "grass"])
def test_large_holes_in_textures_get_texture(name):
    rng = np.random.default_rng(2)
    clean = photo(name, 128)
    mask = blobs(128, 128, rng, 0.10, 9, 16)
    damaged = apply_damage(clean, mask, rng)
    out = inpaint(damaged, mask, method="patch", seed=0)
    telea = inpaint(damaged, mask, method="telea")
    ring = (cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0) & ~mask
    interior = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # no Sobel across the rim
    e_ring = grad_energy(clean, ring)
    e_patch = grad_energy(out, interior)
    e_telea = grad_energy(telea, interior)
    assert e_patch > 1.5 * e_telea, (e_patch, e_telea)
    assert 0.4 < e_patch / e_ring < 1.6, (e_patch, e_ring)
    # colour statistics of the fill match the surroundings
    assert abs(out[mask].mean() - clean[ring].mean()) < 0.05
    assert 0.6 < out[mask].std() / clean[ring].std() < 1.4
    # auto sends these big holes to the patch method too
    auto = inpaint(damaged, mask, method="auto", seed=0)
    assert grad_energy(auto, interior) > 1.5 * e_telea


def test_patch_is_deterministic_per_seed():
    rng = np.random.default_rng(3)
    img = photo("grass", 64)
    mask = blobs(64, 64, rng, 0.06, 6, 9)
    a = inpaint(img, mask, method="patch", seed=4)
    b = inpaint(img, mask, method="patch", seed=4)
    np.testing.assert_array_equal(a, b)


def test_dip_fills_from_context_with_progress_and_cancel():
    clean = photo("astronaut", 64)
    mask = np.zeros((64, 64), bool)
    cv2.circle(mask.view(np.uint8), (40, 22), 6, 1, -1)
    damaged = apply_damage(clean, mask, np.random.default_rng(0))
    seen = []
    out = inpaint(damaged, mask, method="dip", steps=100, seed=0, device="cpu",
                  progress=lambda f, m: seen.append(f))
    mean_fill = damaged.copy()
    mean_fill[mask] = clean[~mask].mean(axis=0)
    assert psnr_in(out, clean, mask) > psnr_in(mean_fill, clean, mask) + 4
    assert np.abs(out[~mask] - damaged[~mask]).max() <= 1 / 255
    assert seen and seen[-1] == pytest.approx(1.0) and all(b >= a for a, b in zip(seen, seen[1:], strict=False))
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        inpaint(damaged, mask, method="dip", steps=50, device="cpu", cancel=ev)


def test_lama_not_installed_names_the_file(tmp_path):
    img = photo("chelsea", 32)
    mask = np.zeros((32, 32), np.float32)
    mask[8:12, 8:20] = 1
    with pytest.raises(NotAvailableError, match=r"big-lama\.pt") as info:
        inpaint(img, mask, method="lama", models_dir=str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_lama_refuses_a_torchscript_archive(tmp_path):
    """A TorchScript archive is a program (its code runs on load), so it is never a weights source."""
    import torch

    class TinyLama(torch.nn.Module):
        def forward(self, image, mask):
            return image * (1.0 - mask)

    model = tmp_path / "tiny-lama.pt"
    torch.jit.script(TinyLama()).save(str(model))
    img = photo("coffee", 30)
    mask = np.zeros((30, 30), np.float32)
    mask[10:16, 5:25] = 1
    with pytest.raises(ModelError, match="TorchScript"):
        inpaint(img, mask, method="lama", model=str(model), device="cpu")


# ---------------------------------------------------------------------------------------------
# Detection


def walk_scratches(img, n, rng, widths=(1, 2)):
    """Random-walk polylines with short, sharply turning segments (as the gallery draws them), 70 % paper white
    and 30 % black; returns (damaged, truth)."""
    h, w = img.shape[:2]
    out = img.copy()
    truth = np.zeros((h, w), np.uint8)
    for _ in range(n):
        one = np.zeros_like(truth)
        pts = np.cumsum(np.vstack([rng.uniform((0, 0), (w, h)), rng.normal(0, w / 12, (4, 2))]), axis=0)
        cv2.polylines(one, [pts.astype(np.int32)], False, 1, int(rng.integers(widths[0], widths[1] + 1)))
        out[one > 0] = 0.97 if rng.random() < 0.7 else 0.05
        truth |= one
    return out, truth.astype(bool)


def backdrop(h, w, rng):
    """A smooth colour gradient with a little noise (a sky, a studio backdrop, a render)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.35 + 0.3 * xx, 0.4 + 0.2 * yy, 0.5 + 0.1 * xx * yy], axis=-1)
    return np.clip(base + rng.normal(0, 0.01, (h, w, 3)), 0, 1).astype(np.float32)


def psnr(a, b):
    return 10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12))


@pytest.mark.parametrize("name", ["chelsea", "grass", "brick", "gravel"])
def test_detects_synthetic_scratches(name):
    """1-3 px bright and dark polylines over a photo or a texture: found, and the clean picture (brick has
    mortar lines, grass and gravel natural thin bright lines) stays almost unmarked."""
    rng = np.random.default_rng(3)
    clean = photo(name, 128)
    gt = scratches(128, 128, rng, 6, (1, 3))
    damaged = apply_damage(clean, gt, rng)
    mask = detect_damage(damaged, sensitivity=0.5)
    assert mask.shape == (128, 128) and mask.dtype == np.float32 and 0 <= mask.min() and mask.max() <= 1
    prec, rec = precision_recall(mask > 0.5, gt)
    assert prec > 0.8 and rec > 0.8, (prec, rec)
    assert (detect_damage(clean, sensitivity=0.5) > 0.5).mean() < 0.01  # clean picture: (almost) nothing
    # sensitivity trades precision for recall
    lo = (detect_damage(damaged, sensitivity=0.1) > 0.5).sum()
    hi = (detect_damage(damaged, sensitivity=0.9) > 0.5).sum()
    assert lo < hi


@pytest.mark.parametrize("name", ["astronaut", "coffee", "camera"])
def test_busy_photos_few_false_alarms(name):
    """Busy photos are full of natural thin lines (a flag, a helmet rim, a cup's rim, a tripod): the clean photo
    stays almost unmarked and scratches over it are found without much else (the previous detector flagged 4-7 %
    of the clean astronaut and coffee, and its precision there was 0.55-0.75)."""
    clean = photo(name, 160)
    assert (detect_damage(clean) > 0.5).mean() < 0.02
    rng = np.random.default_rng(11)
    gt = scratches(160, 160, rng, 6, (1, 3))
    prec, rec = precision_recall(detect_damage(apply_damage(clean, gt, rng)) > 0.5, gt)
    assert prec > 0.75 and rec > 0.65, (prec, rec)


def test_dense_thin_scratches_on_a_busy_photo():
    """30 one-pixel scratches with short, sharply turning segments over the grass and the dark coat: most are
    found (the previous detector found 43 %)."""
    damaged, gt = walk_scratches(photo("camera", 192), 30, np.random.default_rng(9), (1, 1))
    prec, rec = precision_recall(detect_damage(damaged) > 0.5, gt)
    assert rec > 0.65 and prec > 0.8, (prec, rec)


def wide_photo(name, w, h, rng):
    """A picture cropped to w:h and upscaled to w x h (smooth, as an upscaled photo is), with a faint film grain."""
    img = getattr(sd, name)()
    img = np.stack([img] * 3, axis=-1) if img.ndim == 2 else img[:, :, :3]
    ih, iw = img.shape[:2]
    ch = min(ih, round(iw * h / w))
    img = img[(ih - ch) // 2:(ih - ch) // 2 + ch, :round(ch * w / h)]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    return np.clip(img + rng.normal(0, 0.01, (h, w, 1)), 0, 1).astype(np.float32)


@pytest.mark.parametrize("name", ["chelsea", "brick"])
def test_thin_scratches_found_on_a_large_picture(name):
    """Scratches 2 px wide drawn on a 2048 x 1152 picture are found about as well as the same damage (same width
    in px) on a 512 x 288 one: the detector looks for them where they are still lines, not on a copy shrunk below
    their width (the previous detector analysed 768 px at most: recall 0.84 on chelsea, 0.80 on brick, against 0.96
    and 1.0 on the small picture)."""
    found = {}
    for w, h in ((512, 288), (2048, 1152)):
        rng = np.random.default_rng(21)
        clean = wide_photo(name, w, h, rng)
        gt = scratches(h, w, rng, 6, (2, 2))
        mask = detect_damage(apply_damage(clean, gt, rng))
        assert mask.shape == (h, w)
        found[w] = precision_recall(mask > 0.5, gt)
    (p_small, r_small), (p_large, r_large) = found[512], found[2048]
    assert p_large > 0.85 and r_large > 0.9, found
    assert r_large > r_small - 0.05 and p_large > p_small - 0.1, found


@pytest.mark.parametrize("seed", [5, 7])
def test_detect_then_inpaint_improves_a_busy_photo(seed):
    """The whole picture gets better with the automatic repair: PSNR of inpaint(auto) on the detected mask
    against the clean photo, above the damaged input's. On astronaut the previous detector made it worse
    (-0.4 to -1.6 dB): it flagged the flag's stripes and the helmet's rim and missed most scratches."""
    clean = photo("astronaut", 192)
    damaged, _ = walk_scratches(clean, 10, np.random.default_rng(seed))
    fixed = inpaint(damaged, detect_damage(damaged), method="auto")
    assert psnr(fixed, clean) > psnr(damaged, clean) + 1.0


def test_faint_scratch_in_smooth_area_next_to_texture():
    """A faint light scratch on a smooth backdrop right beside a busy texture is still found: the busy
    area's level must not spread onto its smooth neighbour; the texture itself is not marked."""
    rng = np.random.default_rng(7)
    img = np.empty((128, 128, 3), np.float32)
    img[:, :64] = photo("gravel", 128)[:, :64]
    img[:, 64:] = np.clip(0.7 + rng.normal(0, 0.004, (128, 64, 3)), 0, 1)
    gt = np.zeros((128, 128), np.uint8)
    cv2.polylines(gt, [np.array([[70, 10], [80, 60], [72, 118]], np.int32)], False, 1, 1)
    gt = gt.astype(bool)
    damaged = img.copy()
    damaged[gt] = 0.95  # 0.25 above the backdrop: fainter than the gravel's own grain
    mask = detect_damage(damaged) > 0.5
    prec, rec = precision_recall(mask, gt)
    assert rec > 0.85 and prec > 0.8, (prec, rec)  # the previous detector found none of it
    assert mask[:, :56].mean() < 0.01


def test_detected_mask_repairs_the_scratches():
    """detect -> inpaint(auto) removes most of the scratch error: the mask covers the scratches' pixels."""
    rng = np.random.default_rng(8)
    clean = photo("chelsea", 128)
    gt = scratches(128, 128, rng, 5, (1, 3))
    damaged = apply_damage(clean, gt, rng)
    mask = detect_damage(damaged)
    fixed = inpaint(damaged, mask, method="auto")
    assert psnr_in(fixed, clean, gt) > psnr_in(damaged, clean, gt) + 8
    # where the mask reached, the scratch is gone: no residue of the damaged value
    found = gt & (mask > 0.5)
    assert found.mean() > 0.8 * gt.mean()
    assert np.abs(fixed[found] - clean[found]).mean() < 0.3 * np.abs(damaged[found] - clean[found]).mean()


@pytest.mark.parametrize("where", ["backdrop", "chelsea"])
def test_soft_scratch_mask_covers_its_edges(where):
    """A scanned scratch fades out over a pixel or two (anti-aliasing, blur). Left outside the mask, that edge
    is what the inpainting continues inwards, and the scratch comes back as a ghost: the repair must remove
    most of the error over the whole faded line (a mask of the line's core alone leaves ~85 % of it)."""
    rng = np.random.default_rng(2)
    img = backdrop(128, 128, rng) if where == "backdrop" else photo("chelsea", 128)
    cover = np.zeros((128, 128), np.float32)
    cv2.line(cover, (10, 20), (118, 100), 1.0, 2, cv2.LINE_AA)
    cv2.line(cover, (20, 110), (100, 12), 1.0, 1, cv2.LINE_AA)
    cover = np.clip(cv2.GaussianBlur(cover, (0, 0), 0.7) * 1.3, 0, 1)
    damaged = (img * (1 - cover[..., None]) + 0.95 * cover[..., None]).astype(np.float32)
    mask = detect_damage(damaged)
    assert precision_recall(mask > 0.5, cover > 0.25)[1] > 0.6
    fixed = inpaint(damaged, mask, method="auto")
    faded = cover > 0.1
    assert np.abs(fixed - img)[faded].mean() < 0.5 * np.abs(damaged - img)[faded].mean()


def test_detects_flat_holes_and_streaks():
    rng = np.random.default_rng(4)
    img = np.clip(photo("gravel", 96) + rng.normal(0, 0.01, (96, 96, 3)), 0, 1).astype(np.float32)
    img[20:34, 50:70] = 1.0               # a blanked-out area
    img[:, 12] = [1.0, 0.0, 1.0]          # a dead column in magenta
    mask = detect_damage(img) > 0.5
    assert mask[20:34, 50:70].mean() > 0.98  # all of it, edge included
    assert mask[:, 12].mean() > 0.8
    # a flat blob on a noisy render-like backdrop (the demo's damage): all of it, and nothing around
    img = backdrop(128, 128, rng)
    disc = np.zeros((128, 128), np.uint8)
    cv2.circle(disc, (80, 40), 7, 1, -1)
    img[disc > 0] = 0.95
    mask = detect_damage(img) > 0.5
    assert mask[disc > 0].all()
    assert mask[cv2.dilate(disc, np.ones((7, 7), np.uint8)) == 0].mean() < 0.002


@pytest.mark.parametrize("border", [cv2.BORDER_REFLECT, cv2.BORDER_CONSTANT])
def test_detects_against_shifted_rotated_reference(border):
    """Against another version shifted by (3, -2) px, rotated by 1 degree, scaled by 1 % and exposed differently
    (brighter, another gamma, clipped): the damage is found, and nothing along the border that the motion
    uncovered (padding, black or reflected) is flagged."""
    rng = np.random.default_rng(5)
    clean = photo("coffee", 160)
    rot = cv2.getRotationMatrix2D((80, 80), 1.0, 1.01)
    rot[:, 2] += (3, -2)
    ref = cv2.warpAffine(clean, rot, (160, 160), borderMode=border)
    ref = np.clip(ref * 1.1 + 0.02, 0, 1).astype(np.float32) ** 1.1   # other exposure
    gt = scratches(160, 160, rng, 4, (1, 3))
    cv2.circle(gt.view(np.uint8), (100, 60), 8, 1, -1)
    damaged = apply_damage(clean, gt, rng)
    mask = detect_damage(damaged, reference=ref) > 0.5
    prec, rec = precision_recall(mask, gt)
    assert prec > 0.85 and rec > 0.75, (prec, rec)  # the previous detector: precision 0.71
    frame = np.ones((160, 160), bool)
    frame[6:-6, 6:-6] = False
    near_damage = cv2.dilate(gt.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert not (mask & frame & ~near_damage).any()
    clean_mask = detect_damage(clean, reference=ref) > 0.5
    assert clean_mask.mean() < 0.005 and not (clean_mask & frame).any()


def test_reference_exposure_fit_is_not_bent_by_the_damage():
    """Dense white scratches are 5 % of the picture: matching histograms would push the reference's brightest
    5 % (the sky) to white and flag a block of sky. The tone curve is fitted on aligned pixel pairs instead,
    so almost nothing but the scratches is marked."""
    cam = photo("camera", 192)
    damaged, gt = walk_scratches(cam, 30, np.random.default_rng(9), (1, 1))
    ref = cv2.warpAffine(cam, np.float32([[1, 0, 3], [0, 1, -2]]), (192, 192), borderMode=cv2.BORDER_REFLECT)
    ref = np.clip(ref * 1.1 + 0.02, 0, 1).astype(np.float32)
    mask = detect_damage(damaged, reference=ref) > 0.5
    near_damage = cv2.dilate(gt.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert (mask & ~near_damage).mean() < 0.003
    assert precision_recall(mask, gt)[1] > 0.7


def test_detect_rejects_bad_sensitivity():
    with pytest.raises(InputError):
        detect_damage(photo("camera", 32), sensitivity=2.0)


# ---------------------------------------------------------------------------------------------
# CLI


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "art_ai_addon", "-q", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_detect_and_inpaint(tmp_path):
    rng = np.random.default_rng(6)
    clean = photo("chelsea", 128)
    gt = scratches(128, 128, rng, 4, (2, 3))
    damaged = apply_damage(clean, gt, rng)
    src = write_image(tmp_path / "in.png", damaged)
    r = _cli("detect", str(src), "-o", str(tmp_path / "mask.png"))
    assert r.returncode == 0, r.stderr
    mask = read_image(tmp_path / "mask.png", data=True)[:, :, 0] > 0.5
    assert precision_recall(mask, gt)[1] > 0.5
    r = _cli("inpaint", str(src), "--mask", str(tmp_path / "mask.png"), "-o", str(tmp_path / "out.png"),
             "--method", "telea")
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).name == "out.png"
    out = read_image(tmp_path / "out.png")
    assert psnr_in(out, clean, gt) > psnr_in(damaged, clean, gt) + 6
    r = _cli("inpaint", str(src), "--detect", "-o", str(tmp_path / "out2.png"))
    assert r.returncode == 0, r.stderr and (tmp_path / "out2.png").is_file()


def test_cli_wrong_size_mask_is_a_one_line_usage_error(tmp_path):
    src = write_image(tmp_path / "in.png", photo("camera", 64))
    bad = write_image(tmp_path / "mask.png", np.ones((32, 48, 1), np.float32))
    r = _cli("inpaint", str(src), "--mask", str(bad), "-o", str(tmp_path / "out.png"))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "mask" in lines[0] and "48x32" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out.png").exists()
