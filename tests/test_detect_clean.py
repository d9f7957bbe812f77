"""Detect Damage on clean pictures (issue 29.6): an undamaged texture comes back with (almost) nothing flagged, at
every size up to full resolution, while scratches and dust are still found. Many pictures, not two: scikit-image's
photos and textures (whole and at true scale), procedural textures (noise of five spectral slopes, cells, wood,
marble, grey and in colour) and the texture panels of the docs/gallery sheets; the figures asserted are medians and
worst cases over all of them."""

from __future__ import annotations

import cv2
import numpy as np

from art_ai_addon import detect_damage
from clean_corpus import SKIMAGE, gallery_panels, procedural, skimage_photo

TEXTURES = ("gravel", "grass", "brick")
PHOTOS = tuple(n for n in SKIMAGE if n not in TEXTURES)


def flagged(img: np.ndarray) -> float:
    return float((detect_damage(img) > 0.5).mean())


def clean_textures():
    for size in (128, 256, 512):
        for name in TEXTURES:
            yield f"{name} {size}", skimage_photo(name, size)
            if size < 512:
                yield f"{name} crop {size}", skimage_photo(name, size, crop=size / 512)
        for label, img in procedural(size, seeds=range(2) if size < 512 else range(1)):
            yield f"{label} {size}", img
    for label, img in gallery_panels():
        # the texture sheets' panels and the PBR sheet's albedo (its height, normal, roughness and AO maps are data,
        # not pictures: the height map's black joint network reads as a net of cracks); the material render is a
        # photo of a scene
        if "texture_" in label and ("texture_pbr" not in label or label.endswith(" 4,28")):
            yield label, img


def test_clean_textures_flag_almost_nothing():
    """Gravel and grass at full size had 3.3 % and 3.8 % flagged (their bright stone tops and blades as dust)."""
    shares = {label: flagged(img) for label, img in clean_textures()}
    values = 100 * np.array(list(shares.values()))
    worst = max(shares, key=shares.__getitem__)
    print(f"{len(values)} clean textures: flagged median {np.median(values):.3f} %, worst {values.max():.2f} % "
          f"({worst})")
    assert len(values) > 90
    assert np.median(values) < 0.01
    assert values.max() < 0.5, (worst, 100 * shares[worst])


def test_clean_photos_flag_little():
    """Photos hold thin real things a scratch detector must question (a tripod leg, a brake cable at 128 px):
    a few are marked, most nothing."""
    shares = {}
    for size in (128, 256, 512):
        for name in PHOTOS:
            shares[f"{name} {size}"] = flagged(skimage_photo(name, size))
            if size < 512:
                shares[f"{name} crop {size}"] = flagged(skimage_photo(name, size, crop=size / 512))
    for label, img in gallery_panels():
        if "material_render" in label:
            shares[label] = flagged(img)
    values = 100 * np.array(list(shares.values()))
    worst = max(shares, key=shares.__getitem__)
    print(f"{len(values)} clean photos: flagged median {np.median(values):.3f} %, 90th percentile "
          f"{np.percentile(values, 90):.2f} %, worst {values.max():.2f} % ({worst})")
    assert np.median(values) < 0.05
    assert np.percentile(values, 90) < 1.0
    assert values.max() < 3.5


def test_clean_large_photos_flag_little():
    """Photos upscaled to 1920 x 1080 (smooth areas, and their thin real lines a few px wide): a large picture is
    searched at full resolution for damage a few px wide, which must not make its own details damage."""
    import skimage.data

    shares = {}
    for name in ("astronaut", "camera", "coffee", "chelsea", "rocket"):
        img = getattr(skimage.data, name)()
        img = np.stack([img] * 3, axis=2) if img.ndim == 2 else img[:, :, :3]
        h, w = img.shape[:2]
        ch = min(h, round(w * 9 / 16))
        img = img[(h - ch) // 2:(h - ch) // 2 + ch, :round(ch * 16 / 9)]
        img = np.clip(cv2.resize(img, (1920, 1080), interpolation=cv2.INTER_CUBIC) / 255.0, 0, 1).astype(np.float32)
        shares[name] = 100 * flagged(img)
    print("clean photos at 1920 x 1080, % flagged:", {k: round(v, 3) for k, v in shares.items()})
    assert np.median(list(shares.values())) < 0.5
    assert max(shares.values()) < 1.0, shares


def specks(img: np.ndarray, rng: np.random.Generator, n: int = 10):
    """Dust: soft-edged specks 2-5 px across at white or black."""
    h, w = img.shape[:2]
    out = img.copy()
    truth = np.zeros((h, w), bool)
    for _ in range(n):
        cover = np.zeros((h, w), np.float32)
        r = rng.uniform(1.0, 2.5)
        c = (int(rng.integers(10, w - 10)) * 16, int(rng.integers(10, h - 10)) * 16)
        cv2.ellipse(cover, c, (int(16 * r * rng.uniform(0.7, 1.3)), int(16 * r)), float(rng.uniform(0, 180)), 0,
                    360, 1.0, -1, cv2.LINE_AA, 4)
        out = out * (1 - cover[:, :, None]) + (0.97 if rng.random() < 0.6 else 0.03) * cover[:, :, None]
        truth |= cover > 0.5
    return out.astype(np.float32), truth


def found(mask: np.ndarray, truth: np.ndarray) -> float:
    near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return float((truth & near).sum() / truth.sum())


def test_dust_and_scratches_are_still_found_where_the_texture_was_quieted():
    """The dust test now asks more where the surroundings glint of their own (gravel, foliage); dust on smooth
    surroundings is found as before, dust at white or black on gravel and grass still for the most part (its share
    found there went from 0.53-0.74 to 0.38-0.74 on these specks: a white speck the size of a stone top is what
    gravel is made of), and scratches over gravel and grass at full size are all found."""
    rng = np.random.default_rng(4)
    smooth, busy = [], []
    for name in ("camera", "coffee", "moon", "chelsea", "gravel", "grass"):
        for size in (256, 512):
            damaged, truth = specks(skimage_photo(name, size), rng)
            (busy if name in TEXTURES else smooth).append(found(detect_damage(damaged) > 0.5, truth))
    print(f"dust found: on photos {np.round(smooth, 2)}, on gravel and grass {np.round(busy, 2)}")
    assert np.mean(smooth) > 0.5 and min(smooth) > 0.1  # (specks of 1-2 px are below what is looked for)
    assert min(busy) > 0.3
    for name in ("gravel", "grass"):
        clean = skimage_photo(name, 512)
        truth = np.zeros((512, 512), np.uint8)
        for _ in range(5):
            pts = np.cumsum(np.vstack([rng.uniform(60, 450, 2), rng.normal(0, 50, (3, 2))]), axis=0)
            cv2.polylines(truth, [pts.astype(np.int32)], False, 1, int(rng.integers(1, 4)))
        damaged = clean.copy()
        damaged[truth > 0] = 0.97
        mask = detect_damage(damaged) > 0.5
        assert found(mask, truth > 0) > 0.8
        near = cv2.dilate(truth, np.ones((5, 5), np.uint8)) > 0
        assert mask[~near].mean() < 0.005  # and hardly anything else
