"""Clean pictures for measuring false alarms and unwanted changes: scikit-image's photos and textures, procedural
textures (noise of several spectral slopes, cells, wood, marble, in grey and colour) and the clean panels of the
repository's docs/gallery sheets. Every picture is undamaged; each generator yields (label, float32 RGB in [0, 1])."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# natural photos and textures (no text, no star fields, no synthetic graphics: their specks and strokes are content
# a damage detector is right to question)
SKIMAGE = ("astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "moon",
           "rocket", "stereo_motorcycle", "immunohistochemistry", "retina", "cell")


def _square(img: np.ndarray, size: int, y: float = 0.5, x: float = 0.5) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = int((h - s) * y), int((w - s) * x)
    img = img[y0:y0 + s, x0:x0 + s]
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def skimage_photo(name: str, size: int, crop: float | None = None) -> np.ndarray:
    """A scikit-image picture as float32 RGB: the whole of it (square, resized) or, with `crop`, a square of
    `crop` of its side at true scale (a texture-sized piece) taken at a fixed place."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):
        img = img[0]
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=2)
    img = img[:, :, :3].astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
    if crop is not None:
        h, w = img.shape[:2]
        s = max(16, int(min(h, w) * crop))
        y0, x0 = (h - s) // 3, (w - s) // 2
        img = img[y0:y0 + s, x0:x0 + s]
    return np.ascontiguousarray(_square(img, size), dtype=np.float32)


def spectral_noise(size: int, slope: float, seed: int, channels: int = 1) -> np.ndarray:
    """Periodic noise by inverse FFT of a random spectrum with power ~ f^-slope, scaled to mean 0.5, std 0.15."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** (-slope / 2.0)
    amp[0, 0] = 0.0
    out = []
    for _ in range(channels):
        spec = amp * (rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size)))
        g = np.real(np.fft.ifft2(spec))
        out.append(0.5 + 0.15 * (g - g.mean()) / max(float(g.std()), 1e-9))
    return np.clip(np.stack(out, axis=2), 0.0, 1.0).astype(np.float32)


def _palette(g: np.ndarray, seed: int) -> np.ndarray:
    """Grey [0, 1] through a random smooth three-colour ramp (earthy to saturated)."""
    rng = np.random.default_rng(seed)
    cols = rng.uniform(0.1, 0.9, (3, 3)).astype(np.float32)
    t = np.clip(g, 0.0, 1.0)[:, :, None]
    lo = cols[0] + (cols[1] - cols[0]) * np.clip(2 * t, 0, 1)
    return np.where(t < 0.5, lo, cols[1] + (cols[2] - cols[1]) * np.clip(2 * t - 1, 0, 1)).astype(np.float32)


def cells(size: int, seed: int, n: int = 40) -> np.ndarray:
    """Stones: Voronoi cells of random grey with darker, soft 1-2 px joints and a little grain."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, size, (n, 2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d = np.stack([np.hypot(yy - p[0], xx - p[1]) for p in pts])
    order = np.sort(d, axis=0)
    label = np.argmin(d, axis=0)
    tone = rng.uniform(0.35, 0.75, n).astype(np.float32)[label]
    joint = np.clip((order[1] - order[0]) / 2.0, 0.0, 1.0)  # 0 on the border between two cells
    g = tone * (0.55 + 0.45 * joint) + 0.04 * spectral_noise(size, 1.5, seed + 1)[:, :, 0]
    return cv2.GaussianBlur(g.astype(np.float32), (0, 0), 0.6)


def wood(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx = rng.uniform(-0.5, 1.5, 2)
    warp = spectral_noise(size, 3.0, seed)[:, :, 0] - 0.5
    r = np.hypot((yy - cy) * 0.3, xx - cx) * rng.uniform(8, 20) + 2.0 * warp
    g = 0.45 + 0.2 * np.sin(2 * np.pi * r) ** 3 + 0.05 * (spectral_noise(size, 2.0, seed + 7)[:, :, 0] - 0.5)
    return g.astype(np.float32)


def marble(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    turb = spectral_noise(size, 2.5, seed)[:, :, 0] - 0.5
    a = rng.uniform(0, np.pi)
    g = 0.6 + 0.25 * np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) * rng.uniform(2, 5) + 8 * turb)
    return g.astype(np.float32)


def procedural(size: int, seeds=range(2)):
    """(label, RGB): spectral noise of five slopes, cells, wood and marble, each in grey and in a colour ramp."""
    for seed in seeds:
        for slope in (1.0, 1.5, 2.0, 2.5, 3.0):
            g = spectral_noise(size, slope, 100 * seed + int(10 * slope))[:, :, 0]
            yield f"noise b{slope} s{seed}", np.repeat(g[:, :, None], 3, axis=2)
            yield f"noise b{slope} s{seed} col", _palette(g, seed + int(10 * slope))
            yield f"noise b{slope} s{seed} rgb", spectral_noise(size, slope, 7 + seed, channels=3)
        for name, fn in (("cells", cells), ("wood", wood), ("marble", marble)):
            g = np.clip(fn(size, seed), 0.0, 1.0)
            yield f"{name} s{seed}", np.repeat(g[:, :, None], 3, axis=2)
            yield f"{name} s{seed} col", _palette(g, 50 + seed)


def gallery_panels(min_side: int = 96):
    """The clean picture panels of docs/gallery/texture_*.png and material_render.png (label bars cut off):
    rectangles that differ from the sheet's flat background, found by their bounding boxes."""
    names = ("texture_patch.png", "texture_neural_gan.png", "texture_seamless.png", "texture_pbr.png",
             "material_render.png")
    for name in names:
        path = ROOT / "docs" / "gallery" / name
        if not path.is_file():
            continue
        sheet = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        bg = np.median(sheet[:4].reshape(-1, 3), axis=0)
        off = (np.abs(sheet - bg).max(axis=2) > 0.02).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(off, connectivity=4)
        for i in range(1, n):
            x, y, w, h = stats[i, :4]
            if min(w, h) < min_side:
                continue
            panel = sheet[y:y + h, x:x + w]
            # the label bar's rows (its flat colour, between the letters), all of them in the top 64
            bar = (np.abs(panel.max(axis=2) - 24 / 255) < 0.01).mean(axis=1)[:64] > 0.15
            top = int(np.nonzero(bar)[0].max()) + 1 if bar.any() else 0
            crop = panel[top + 2:h - 2, 2:w - 2]
            s = min(crop.shape[:2])
            if s < min_side:
                continue
            yield f"gallery {name[:-4]} {x},{y}", np.ascontiguousarray(crop[:s, :s])


def clean_pictures(sizes=(128, 256), seeds=range(2), gallery: bool = True):
    """Every clean picture: the scikit-image set whole and as true-scale crops, procedural textures, gallery."""
    for size in sizes:
        for name in SKIMAGE:
            yield f"{name} {size}", skimage_photo(name, size)
            if size < 512:  # a true-scale piece (at 512 and over, the whole picture is already at true scale)
                yield f"{name} crop {size}", skimage_photo(name, size, crop=size / 512.0)
        for label, img in procedural(size, seeds):
            yield f"{label} {size}", img
    if gallery:
        yield from gallery_panels()
