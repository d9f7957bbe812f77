"""Frames per second of `python -m art_ai_addon render` on a small Cycles scene: raw render vs render + stylize.

Peer: the same command without --style (raw frames only), measured in the same run. Rows: method color,
color with --temporal (Vector pass + motion compensation), and fast with a random-weights TransformerNet
checkpoint saved in pytorch/examples' layout (the speed of a real checkpoint is the same).

    /tmp/venv0/bin/python bench/stylize_render.py [--size 128] [--frames 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def run(args, env):
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "art_ai_addon", "-q", "render", *args], capture_output=True, text=True,
                       cwd=str(ROOT), env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"render failed: {r.stderr[-2000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--frames", type=int, default=10)
    a = ap.parse_args()
    from test_temporal_render import SCENE_SCRIPT, STYLE

    from art_ai_addon.imageio import write_image

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="art_ai_bench_") as tmp:
        d = Path(tmp)
        (d / "scene.py").write_text(SCENE_SCRIPT)
        subprocess.run([sys.executable, str(d / "scene.py"), str(d / "scene.blend"), str(a.size), str(a.frames)],
                       capture_output=True, check=True)
        write_image(d / "style.png", STYLE)
        blend, style = str(d / "scene.blend"), str(d / "style.png")
        frames = ["--frames", f"1-{a.frames}"]
        # each configuration renders from scratch into its own folder (process start + .blend load included)
        rows = [("raw render only (peer)", run([blend, "-o", str(d / "raw"), *frames], env))]
        rows.append(("render + color", run([blend, "-o", str(d / "c"), *frames, "--style", style,
                                             "--method", "color"], env)))
        rows.append(("render + color --temporal", run([blend, "-o", str(d / "ct"), *frames, "--style", style,
                                                        "--method", "color", "--temporal"], env)))
        try:
            import torch

            from art_ai_addon.stylize.fast import transformer_net

            torch.manual_seed(0)
            ckpt = d / "random_style.pth"
            torch.save(transformer_net().state_dict(), ckpt)
            rows.append(("render + fast (TransformerNet)", run([blend, "-o", str(d / "f"), *frames, "--method",
                                                                 "fast", "--model", str(ckpt)], env)))
            rows.append(("render + fast --temporal", run([blend, "-o", str(d / "ft"), *frames, "--method", "fast",
                                                           "--model", str(ckpt), "--temporal"], env)))
        except ImportError as exc:
            print(f"(fast skipped: {exc})")
    peer = rows[0][1]
    print(f"\n`render` on a {a.size}x{a.size} Cycles scene (4 samples, CPU), {a.frames} frames, "
          f"{os.cpu_count()} CPU cores")
    print(f"{'configuration':34s} {'seconds':>8s} {'frames/s':>9s} {'fps / raw fps':>14s}")
    for name, dt in rows:
        print(f"{name:34s} {dt:8.2f} {a.frames / dt:9.2f} {peer / dt:14.2f}")


if __name__ == "__main__":
    main()
