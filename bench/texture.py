"""Texture benchmark: 128 -> 1024x1024 tileable per method; seam vs a plain tiling, speed vs a naive quilter.

    python bench/texture.py [--size 1024] [--neural-steps 20] [--gan-steps 100] [--skip-naive]

The reference quilter is a straightforward image-quilting implementation (Python loops over candidate
positions and over the cut), written here only as the speed peer; it does no wrap and no masked matching.

    python bench/texture.py --scaling [--sizes 1024,2048,4096] [--reps 3] [--big-exemplars brick,photo]

Patch synthesis on 1 thread against 2 threads (the add-on's CPU Threads setting), interleaved, best of `--reps`,
wall and CPU seconds, from 256x256 exemplars (skimage brick, gravel, grass, and a crop of the coffee photo); the
4096 size runs on `--big-exemplars` only (it takes minutes). Also checks both thread counts give the same pixels.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import skimage.data  # noqa: E402

from art_ai_addon.texture import synthesize_texture  # noqa: E402


def seam_ratio(img: np.ndarray) -> float:
    g = img.mean(axis=2)
    jump = (np.abs(g[:, 0] - g[:, -1]).mean() + np.abs(g[0] - g[-1]).mean()) / 2
    inner = (np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean()) / 2
    return float(jump / inner)


def naive_quilt(ex: np.ndarray, size: int, block: int = 32, overlap: int = 8, seed: int = 0, stride: int = 1):
    """Unvectorised image quilting: loop over every candidate, SSD in the overlaps, DP cut with loops."""
    rng = np.random.default_rng(seed)
    h, w = ex.shape[:2]
    step = block - overlap
    n = int(np.ceil((size - overlap) / step))
    out = np.zeros((n * step + overlap, n * step + overlap, ex.shape[2]), np.float32)
    for by in range(n):
        for bx in range(n):
            y, x = by * step, bx * step
            best = []
            for sy in range(0, h - block + 1, stride):
                for sx in range(0, w - block + 1, stride):
                    cand = ex[sy:sy + block, sx:sx + block]
                    e = 0.0
                    if bx:
                        e += float(((cand[:, :overlap] - out[y:y + block, x:x + overlap]) ** 2).sum())
                    if by:
                        e += float(((cand[:overlap] - out[y:y + overlap, x:x + block]) ** 2).sum())
                    best.append((e, sy, sx))
            best.sort()
            lim = best[0][0] * 1.1 + 1e-9
            pool = [b for b in best if b[0] <= lim][:64]
            _, sy, sx = pool[rng.integers(len(pool))]
            patch = ex[sy:sy + block, sx:sx + block].copy()
            mask = np.ones((block, block), bool)
            if bx:
                err = ((patch[:, :overlap] - out[y:y + block, x:x + overlap]) ** 2).sum(2)
                cost = err.copy()
                for r in range(1, block):
                    for c in range(overlap):
                        cost[r, c] += min(cost[r - 1, max(c - 1, 0):c + 2])
                c = int(np.argmin(cost[-1]))
                for r in range(block - 1, -1, -1):
                    mask[r, :c] = False
                    if r:
                        lo = max(c - 1, 0)
                        c = lo + int(np.argmin(cost[r - 1, lo:c + 2]))
            if by:
                err = ((patch[:overlap] - out[y:y + overlap, x:x + block]) ** 2).sum(2).T
                cost = err.copy()
                for r in range(1, block):
                    for c in range(overlap):
                        cost[r, c] += min(cost[r - 1, max(c - 1, 0):c + 2])
                c = int(np.argmin(cost[-1]))
                for r in range(block - 1, -1, -1):
                    mask[:c, r] = False
                    if r:
                        lo = max(c - 1, 0)
                        c = lo + int(np.argmin(cost[r - 1, lo:c + 2]))
            region = out[y:y + block, x:x + block]
            region[mask] = patch[mask]
    return out[:size, :size]


def _exemplars():
    ex = {}
    for name in ("brick", "gravel", "grass"):
        g = getattr(skimage.data, name)()[:256, :256].astype(np.float32) / 255.0
        ex[name] = np.ascontiguousarray(g[:, :, None])
    ex["photo"] = skimage.data.coffee()[100:356, 150:406].astype(np.float32) / 255.0
    return ex


def scaling(sizes, reps: int, big_names) -> None:
    """Patch synthesis, 1 thread vs 2 threads, interleaved in one run: best wall seconds and their CPU seconds."""
    from art_ai_addon.core import set_threads

    print("patch synthesis from 256x256 exemplars, tileable: 1 thread vs 2 threads (interleaved, best of "
          f"{reps}); CPU s = process CPU time of that best run")
    print(f"{'exemplar':10s} {'size':>6s} {'1 thr s':>9s} {'CPU s':>7s} {'2 thr s':>9s} {'CPU s':>7s} {'speed-up':>9s}"
          f" {'same':>5s}")
    for name, ex in _exemplars().items():
        for size in sizes:
            if size > 2048 and name not in big_names:
                continue
            best = {1: (np.inf, 0.0), 2: (np.inf, 0.0)}
            outs = {}
            for _ in range(reps):
                for n in (1, 2):
                    set_threads(n)
                    t, c = time.perf_counter(), time.process_time()
                    outs[n] = synthesize_texture(ex, (size, size), method="patch", seed=0)
                    t, c = time.perf_counter() - t, time.process_time() - c
                    if t < best[n][0]:
                        best[n] = (t, c)
            set_threads(0)
            same = "yes" if np.array_equal(outs[1], outs[2]) else "NO"
            print(f"{name:10s} {size:6d} {best[1][0]:9.2f} {best[1][1]:7.2f} {best[2][0]:9.2f} {best[2][1]:7.2f}"
                  f" {best[1][0] / best[2][0]:8.2f}x {same:>5s}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scaling", action="store_true", help="patch synthesis on 1 vs 2 threads only")
    ap.add_argument("--sizes", default="1024,2048,4096")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--big-exemplars", default="brick,photo", help="exemplars also run above 2048")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--neural-steps", type=int, default=20)
    ap.add_argument("--gan-steps", type=int, default=100)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.scaling:
        scaling([int(v) for v in args.sizes.split(",")], args.reps, set(args.big_exemplars.split(",")))
        return 0
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    size = args.size
    ex = np.repeat((skimage.data.gravel()[:128, :128].astype(np.float32) / 255.0)[:, :, None], 3, axis=2)
    rows = []
    tiled = np.tile(ex, (size // 128, size // 128, 1))
    rows.append(("plain tiling (peer)", 0.0, seam_ratio(tiled)))

    t = time.perf_counter()
    out = synthesize_texture(ex, (size, size), method="patch", seed=0)
    t_patch = time.perf_counter() - t
    rows.append(("patch (vectorised quilting)", t_patch, seam_ratio(out)))

    t_naive = None
    if not args.skip_naive:
        # the naive reference is timed on a 256x256 output and scaled by area (it is far too slow for 1024)
        t = time.perf_counter()
        ref = naive_quilt(ex, 256)
        t_small = time.perf_counter() - t
        t_naive = t_small * (size / 256) ** 2
        rows.append((f"naive quilting (ref; 256 px x{(size // 256) ** 2})", t_naive, seam_ratio(ref)))

    if torch is not None:
        t = time.perf_counter()
        out = synthesize_texture(ex, (size, size), method="neural", steps=args.neural_steps, seed=0, device="cpu")
        rows.append((f"neural ({args.neural_steps} steps, coarse-to-fine)", time.perf_counter() - t, seam_ratio(out)))
        with tempfile.TemporaryDirectory() as models:
            t = time.perf_counter()
            synthesize_texture(ex, (128, 128), method="gan", steps=args.gan_steps, seed=0, device="cpu",
                               models_dir=models)
            t_train = time.perf_counter() - t
            t = time.perf_counter()
            out = synthesize_texture(ex, (size, size), method="gan", seed=0, device="cpu", models_dir=models)
            rows.append((f"gan generate {size} (trained {args.gan_steps} steps in {t_train:.0f} s)",
                         time.perf_counter() - t, seam_ratio(out)))
            t = time.perf_counter()
            big = synthesize_texture(ex, (2048, 2048), method="gan", seed=0, device="cpu", models_dir=models)
            rows.append(("gan generate 2048x2048 (one forward pass)", time.perf_counter() - t, seam_ratio(big)))

    seam_rows = seamless_rows(size)

    print(f"128x128 gravel exemplar -> {size}x{size} tileable, CPU")
    print(f"{'method':58s} {'seconds':>9s} {'seam ratio':>11s} {'seam vs tiling':>15s} {'speed vs naive':>15s}")
    base_seam = rows[0][2]
    for name, sec, seam in rows:
        speed = f"{t_naive / sec:14.1f}x" if (t_naive and sec) else f"{'':>15s}"
        print(f"{name:58s} {sec:9.2f} {seam:11.2f} {seam / base_seam:14.2f}x {speed}")
    print("seam ratio = mean jump across the wrap / mean jump between neighbours (1.0 = invisible)")
    print()
    print(f"make_seamless on {size}x{size} photos (skimage brick / grass, resized), CPU")
    print(f"{'image':14s} {'seconds':>8s} {'seam before':>12s} {'seam after':>11s} {'detail in band':>15s}")
    for row in seam_rows:
        print(f"{row[0]:14s} {row[1]:8.2f} {row[2]:12.2f} {row[3]:11.2f} {row[4]:15.2f}")
    print("detail in band = gradient energy in the band over the old seams / elsewhere (1.0 = as sharp as the rest;"
          " a blurred re-synthesis is below 1)")
    return 0


def seamless_rows(size: int):
    """make_seamless: time, seam ratio before (= plain tiling of the photo, the peer) and after, detail kept."""
    import cv2

    from art_ai_addon.texture import make_seamless

    rows = []
    for name in ("brick", "grass"):
        img = cv2.resize(getattr(skimage.data, name)(), (size, size), interpolation=cv2.INTER_CUBIC)
        img = np.ascontiguousarray(img[:, :, None].astype(np.float32) / 255.0)
        t = time.perf_counter()
        out = make_seamless(img)
        sec = time.perf_counter() - t
        g = np.roll(out.mean(axis=2), (size // 2, size // 2), (0, 1))
        e = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1]
        band = np.zeros(e.shape, bool)
        half = max(4, size // 64)
        band[size // 2 - half:size // 2 + half] = True
        band[:, size // 2 - half:size // 2 + half] = True
        rows.append((name, sec, seam_ratio(img), seam_ratio(out), float(e[band].mean() / e[~band].mean())))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
