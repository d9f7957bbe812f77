"""Frames per second of `batch` stylizing a 100-frame folder (96 px, method color): one process, `--chunk` over
two processes at once, and Ray on this machine. Ratios are against the single process, measured in the same run.

    python bench/batch.py [--frames 100] [--size 96] [--no-ray]

Each run starts from an empty output folder and includes interpreter start-up (and Ray's start-up), as a farm
sees it; the Ray row also shows the time with the instance already running.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_frames(folder: Path, n: int, size: int) -> None:
    import cv2
    import skimage.data as skd

    from art_ai_addon.imageio import write_image

    bg = cv2.resize(skd.coffee(), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    for t in range(n):
        f = bg.copy()
        x = int((size - size // 4) * t / max(1, n - 1))
        f[size // 3:size // 3 + size // 4, x:x + size // 4] = (0.9, 0.1, 0.1)
        write_image(folder / "frames" / f"{t:04d}.png", f)
    style = cv2.resize(skd.astronaut(), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    write_image(folder / "style.png", style)


JOB = """
[[step]]
task = "stylize"
input = "frames"
output = "{out}"
style = "style.png"
method = "color"
"""


def _cmd(job: Path, *extra):
    return [sys.executable, "-m", "art_ai_addon", "-q", "batch", str(job), *extra]


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def run_single(folder: Path) -> float:
    job = folder / "single.toml"
    job.write_text(JOB.format(out="single"))
    t = time.perf_counter()
    subprocess.run(_cmd(job), check=True, env=_env(), stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def run_chunks(folder: Path, n: int = 2) -> float:
    job = folder / "chunks.toml"
    job.write_text(JOB.format(out="chunks"))
    t = time.perf_counter()
    procs = [subprocess.Popen(_cmd(job, "--chunk", f"{i}/{n}"), env=_env(), stdout=subprocess.DEVNULL)
             for i in range(1, n + 1)]
    codes = [p.wait() for p in procs]
    assert codes == [0] * n, codes
    return time.perf_counter() - t


def run_ray(folder: Path) -> tuple[float, float]:
    """(with start-up, instance already up)."""
    import ray

    from art_ai_addon.cli import main

    job = folder / "ray.toml"
    job.write_text(JOB.format(out="ray"))
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        t1 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # output paths
            assert main(["-q", "batch", str(job), "--ray"]) == 0
        t2 = time.perf_counter()
    finally:
        ray.shutdown()
    return t2 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--no-ray", action="store_true")
    a = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="art_ai_bench_batch_"))
    try:
        make_frames(folder, a.frames, a.size)
        os.chdir(folder)
        rows = [("1 process", run_single(folder))]
        rows.append(("--chunk over 2 processes", run_chunks(folder)))
        if not a.no_ray:
            try:
                with_start, warm = run_ray(folder)
                rows.append(("Ray, incl. start-up", with_start))
                rows.append(("Ray, instance running", warm))
            except ImportError:
                print("(ray is not installed: pip install -r requirements-ray.txt)")
        for sub in ("single", "chunks", "ray"):
            if (folder / sub).exists():
                assert len(list((folder / sub).glob("*.png"))) == a.frames, sub
        base = rows[0][1]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\nbatch stylize, {a.frames} frames of {a.size} px, method color, {os.cpu_count()} CPU core(s), "
              f"load average {load:.1f} at the end\n")
        print(f"{'runner':<28}{'seconds':>9}{'frames/s':>10}{'vs 1 process':>14}")
        for name, sec in rows:
            print(f"{name:<28}{sec:>9.2f}{a.frames / sec:>10.1f}{base / sec:>13.2f}x")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
