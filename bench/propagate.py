"""Keyframe propagation against EbSynth (Jamriška et al. 2019, its open-source core), on a measured ground truth.

An animated Cycles scene (camera dolly, a cube sliding off floor it hid, a cone coming into view) is rendered twice:
plain, and with its materials painted in UV space. The painted render of the keyframe is what an artist would paint;
the painted renders of the other frames are the truth. Printed per method: PSNR against the truth (mean over the
non-key frames), temporal flicker (how much more the frame-to-frame change differs from the truth's), time per
frame, and the ratios against EbSynth measured in the same run.

    EBSYNTH=/path/to/bin/ebsynth .venv/bin/python bench/propagate.py [--size 540] [--frames 8] [--keys 1,8]

EbSynth builds on a CPU from github.com/jamriska/ebsynth with its `build-linux-cpu_only.sh` (g++ and OpenMP). It
runs with the guides its users give it (the frame and its edges), and again with Blender's UV pass as a third
guide. Without EBSYNTH set, its rows are skipped and the bench says so.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENE = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import bpy
from art_ai_addon.blender import demo_scene
from art_ai_addon.blender.render import _save_render
from art_ai_addon.blender.style_layers import save_passes
out, size, n = Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for painted in (False, True):
    sc = demo_scene.build_keyframe_scene(size=size, samples=16, frames=n, painted=painted)
    sc.render.resolution_x = int(round(size * 16 / 9))  # 960x540 at --size 540
    for f in range(1, n + 1):
        sc.frame_set(f)
        bpy.ops.render.render(write_still=False)
        _save_render(sc, out / ("painted" if painted else "plain") / f"{f:04d}.png", "PNG")
        if not painted:
            save_passes(sc, out / "passes" / f"{f:04d}.exr")
"""


def psnr(a, b) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-10)))


def flicker(outs, truth) -> float:
    """Mean absolute difference between the result's and the truth's frame-to-frame changes."""
    return float(np.mean([np.abs((outs[t] - outs[t - 1]) - (truth[t] - truth[t - 1])).mean()
                          for t in range(1, len(outs))]))


def edges(img):
    import cv2

    g = cv2.cvtColor((img * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    e = cv2.GaussianBlur(cv2.Canny(g, 50, 150), (3, 3), 0)
    return np.repeat(e[:, :, None], 3, axis=2).astype(np.float32) / 255.0


def uv_image(passes) -> np.ndarray:
    """Blender's UV pass and object id as a picture EbSynth can take as a guide (R = u, G = v, B = object)."""
    uv = passes["uv"]
    ids = passes["object_id"].astype(np.int64)
    obj = (ids % 251).astype(np.float32) / 250.0 * (ids != 0)
    return np.stack([np.clip(uv[:, :, 0], 0, 1), np.clip(uv[:, :, 1], 0, 1), obj], axis=2).astype(np.float32)


def run_ebsynth(exe, work: Path, plain, painted_keys: dict, extra_guides, n) -> tuple[list, float]:
    """EbSynth from each keyframe, blended between the two nearest by distance, as its users do."""
    from art_ai_addon.imageio import read_image, write_image

    t0 = time.perf_counter()
    per_key = {}
    for k, painted in painted_keys.items():
        write_image(work / f"style_{k}.png", painted)
        write_image(work / f"src_{k}.png", plain[k])
        write_image(work / f"srcedge_{k}.png", edges(plain[k]))
        if extra_guides is not None:
            write_image(work / f"srcuv_{k}.png", extra_guides[k])
        outs = {}
        for t in range(n):
            if t in painted_keys:
                continue
            write_image(work / f"tgt_{t}.png", plain[t])
            write_image(work / f"tgtedge_{t}.png", edges(plain[t]))
            cmd = [exe, "-style", str(work / f"style_{k}.png"),
                   "-guide", str(work / f"src_{k}.png"), str(work / f"tgt_{t}.png"), "-weight", "1.0",
                   "-guide", str(work / f"srcedge_{k}.png"), str(work / f"tgtedge_{t}.png"), "-weight", "0.5"]
            if extra_guides is not None:
                write_image(work / f"tgtuv_{t}.png", extra_guides[t])
                cmd += ["-guide", str(work / f"srcuv_{k}.png"), str(work / f"tgtuv_{t}.png"), "-weight", "4.0"]
            out = work / f"out_{k}_{t}.png"
            cmd += ["-output", str(out)]
            subprocess.run(cmd, check=True, capture_output=True)
            outs[t] = read_image(out)[:, :, :3]
        per_key[k] = outs
    elapsed = time.perf_counter() - t0
    results = []
    keys = sorted(painted_keys)
    for t in range(n):
        if t in painted_keys:
            results.append(painted_keys[t])
            continue
        before = [k for k in keys if k < t]
        after = [k for k in keys if k > t]
        if before and after:
            k1, k2 = before[-1], after[0]
            a = (t - k1) / (k2 - k1)
            results.append((1 - a) * per_key[k1][t] + a * per_key[k2][t])
        else:
            results.append(per_key[(before or after)[-1 if before else 0]][t])
    return results, elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=540, help="render height (16:9: 540 gives 960x540)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--keys", default="1", help="painted keyframes, comma-separated frame numbers (1-based)")
    ap.add_argument("--work", help="keep the renders in this folder (default: a temporary one)")
    args = ap.parse_args(argv)
    import art_ai_addon as art
    from art_ai_addon.imageio import read_image

    work = Path(args.work or tempfile.mkdtemp(prefix="art_ai_bench_propagate_"))
    work.mkdir(parents=True, exist_ok=True)
    n = args.frames
    if not (work / "painted" / f"{n:04d}.png").exists():
        t0 = time.perf_counter()
        script = work / "scene.py"
        script.write_text(SCENE)
        subprocess.run([sys.executable, str(script), str(ROOT), str(work), str(args.size), str(n)], check=True,
                       capture_output=True)
        print(f"renders: {2 * n} Cycles frames at {args.size} px in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
    plain = [read_image(work / "plain" / f"{f:04d}.png")[:, :, :3] for f in range(1, n + 1)]
    truth = [read_image(work / "painted" / f"{f:04d}.png")[:, :, :3] for f in range(1, n + 1)]
    passes = [art.read_passes(work / "passes" / f"{f:04d}.exr", masks=()) for f in range(1, n + 1)]
    keys = {int(k) - 1: truth[int(k) - 1] for k in args.keys.split(",")}
    others = [t for t in range(n) if t not in keys]
    h, w = plain[0].shape[:2]
    rows = []

    def add(name, outs, seconds):
        rows.append((name, float(np.mean([psnr(outs[t], truth[t]) for t in others])), flicker(outs, truth),
                     seconds / len(others)))

    guides = [{"uv": p["uv"], "object": p["object_id"], "vector": p["vector"]} for p in passes]
    t0 = time.perf_counter()
    add("ours, guided by the passes (UV, object, Vector)", art.propagate_keyframes(plain, keys, guides=guides),
        time.perf_counter() - t0)
    t0 = time.perf_counter()
    add("ours, optical flow only (no passes)", art.propagate_keyframes(plain, keys), time.perf_counter() - t0)
    add("keyframe copied to every frame", [truth[min(keys, key=lambda k: abs(k - t))] for t in range(n)], 0.0)
    add("plain render (nothing carried)", plain, 0.0)
    exe = os.environ.get("EBSYNTH")
    if exe and Path(exe).is_file():
        outs, sec = run_ebsynth(exe, work, plain, keys, None, n)
        add("EbSynth, frame + edges guides", outs, sec)
        outs, sec = run_ebsynth(exe, work, plain, keys, [uv_image(p) for p in passes], n)
        add("EbSynth, frame + edges + Blender's UV pass", outs, sec)
    else:
        print("EbSynth: not measured (set EBSYNTH to the binary built by jamriska/ebsynth's "
              "build-linux-cpu_only.sh)", file=sys.stderr)
    print(f"{w}x{h}, {n} frames, keyframes {sorted(k + 1 for k in keys)}; PSNR against the painted render (mean "
          "over the other frames), flicker (0 = the truth's own), seconds per frame")
    print("| method | PSNR dB | flicker | s/frame |\n|---|---|---|---|")
    for name, p, fl, sec in rows:
        print(f"| {name} | {p:.2f} | {fl:.4f} | {sec:.2f} |")
    ref = next((r for r in rows if "UV pass" in r[0]), None)
    if ref is not None:
        ours = rows[0]
        print(f"ours (guided) vs EbSynth with the UV guide: {ours[1] - ref[1]:+.2f} dB PSNR, flicker "
              f"{ours[2] / max(ref[2], 1e-9):.2f}x, time per frame {ours[3] / max(ref[3], 1e-9):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
