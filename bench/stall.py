"""Main-thread stalls while a long job runs: in a thread of this process (the peer: what the add-on did before the
engine worker) versus in the engine worker. Blender's UI runs on the main thread; numpy work in a thread of the
same process holds the GIL in stretches, which the UI feels as stutter.

The "main thread" here is a loop that asks to sleep 1 ms and records how late it wakes up (the longest and the
99th-percentile delay), while a 1024x1024 patch synthesis (`synthesize_texture`, method patch) runs.

    python bench/stall.py [--size 1024] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from art_ai_addon import tasks, worker  # noqa: E402


def exemplar() -> np.ndarray:
    import skimage.data

    img = skimage.data.gravel() if hasattr(skimage.data, "gravel") else skimage.data.grass()
    img = np.asarray(img, dtype=np.float32)[:128, :128] / 255.0
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3]


def watch(job) -> tuple[float, float, float]:
    """(longest delay ms, p99 delay ms, job seconds) of a 1 ms sleep loop on this thread while `job` runs."""
    done = threading.Event()
    err: list = []

    def run():
        try:
            job()
        except BaseException as exc:  # noqa: BLE001
            err.append(exc)
        finally:
            done.set()

    delays = []
    t0 = time.perf_counter()
    threading.Thread(target=run, daemon=True).start()
    while not done.is_set():
        a = time.perf_counter()
        time.sleep(0.001)
        delays.append((time.perf_counter() - a - 0.001) * 1000)
    seconds = time.perf_counter() - t0
    if err:
        raise err[0]
    d = np.array(delays)
    return float(d.max()), float(np.percentile(d, 99)), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    ex = exemplar()
    kwargs = dict(exemplar=ex, size=(args.size, args.size), method="patch", seed=1)
    client = worker.WorkerClient(sys.executable)
    client.start()  # start-up is paid once per session, not per job
    client.run("synthesize_texture", dict(kwargs, size=(64, 64)))  # warm: imports done
    rows = []
    for _ in range(args.repeat):
        rows.append(("in-process thread (peer)", *watch(lambda: tasks.run("synthesize_texture", kwargs))))
        rows.append(("engine worker", *watch(lambda: client.run("synthesize_texture", kwargs))))
    client.stop()
    print(f"main-thread delay while a {args.size}x{args.size} patch synthesis runs (1 ms sleep loop):")
    print(f"{'where':28s} {'longest ms':>11s} {'p99 ms':>8s} {'job s':>7s}")
    best = {}
    for name, longest, p99, sec in rows:
        print(f"{name:28s} {longest:11.1f} {p99:8.1f} {sec:7.2f}")
        b = best.setdefault(name, [0.0, 0.0])
        b[0], b[1] = max(b[0], longest), max(b[1], p99)
    peer, ours = best["in-process thread (peer)"], best["engine worker"]
    print(f"longest stall: worker {ours[0]:.1f} ms vs thread {peer[0]:.1f} ms = {peer[0] / max(ours[0], 1e-3):.1f}x "
          f"shorter; p99 {ours[1]:.1f} vs {peer[1]:.1f} ms")


if __name__ == "__main__":
    main()
