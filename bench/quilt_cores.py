"""Patch synthesis (image quilting) on 1 thread against 2 threads, and where its CPU time goes.

    python bench/quilt_cores.py [--sizes 2048,4096] [--reps 3] [--exemplars brick,coffee] [--threads 1,2] [--warm]
    python bench/quilt_cores.py --profile [--sizes 2048] [--exemplars brick,coffee]

Timing: `synthesize_texture(method="patch")` from a 256x256 exemplar (skimage brick: grey; the coffee photo:
colour), the thread counts interleaved in one run (the add-on's CPU Threads setting: with 2, one helper process
places half of each wave), best of `--reps` wall seconds with the CPU seconds of this process (the helper's are
not counted), the 1-minute load average before each call, and whether every thread count gave the same pixels.
Each call starts its helpers afresh (as the first synthesis in a new engine worker does) unless `--warm`, which
lets them wait between calls as the add-on does. The machine may be shared: read the ratio of best times, and
the load beside it.

--profile: one single-thread run per exemplar with every stage timed in thread CPU seconds (the Quilter's
methods and each OpenCV call), and the share spent inside OpenCV calls, which release the GIL (a lower bound on
the GIL-free share: large numpy passes release it too).
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def exemplar(name: str) -> np.ndarray:
    import cv2
    import skimage.data as sd

    img = getattr(sd, name)()
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def load() -> float:
    return os.getloadavg()[0]


def timing(sizes, reps: int, names, threads, warm: bool) -> None:
    import art_ai_addon as art
    from art_ai_addon.core import get_threads, set_threads
    from art_ai_addon.texture.quilt import close_idle_helpers

    before = get_threads()
    print(f"patch synthesis from 256x256 exemplars, tileable, seed 0: threads {threads} interleaved, best of {reps}, "
          f"helpers {'kept between calls' if warm else 'started by each call'}")
    print(f"{'exemplar':9s} {'size':>5s} {'threads':>7s} {'best s':>7s} {'cpu s':>6s} {'ratio':>6s}  "
          f"runs (wall/cpu @load)")
    try:
        for name in names:
            ex = exemplar(name)
            for side in sizes:
                runs: dict = {n: [] for n in threads}
                outs = {}
                for _ in range(reps):
                    for n in threads:
                        set_threads(n)
                        if not warm:
                            close_idle_helpers()
                        lo = load()
                        t, c = time.perf_counter(), time.process_time()
                        outs[n] = art.synthesize_texture(ex, (side, side), method="patch", seed=0)
                        runs[n].append((time.perf_counter() - t, time.process_time() - c, lo))
                base = min(r[0] for r in runs[threads[0]])
                for n in threads:
                    best = min(runs[n])
                    cells = " ".join(f"{w:.2f}/{c:.2f}@{lo:.1f}" for w, c, lo in runs[n])
                    print(f"{name:9s} {side:5d} {n:7d} {best[0]:7.2f} {best[1]:6.2f} {best[0] / base:6.3f}  {cells}")
                same = all(np.array_equal(outs[threads[0]], o) for o in outs.values())
                print(f"{'':9s} {side:5d} same pixels on every thread count: {same}")
    finally:
        set_threads(before)
        close_idle_helpers()


def profile(sizes, names) -> None:
    """Thread CPU seconds per stage of a single-thread run (inclusive; OpenCV calls also counted on their own)."""
    import cv2

    from art_ai_addon.core import get_threads, set_threads
    from art_ai_addon.texture import quilt as Q

    acc: collections.Counter = collections.Counter()
    tt = time.thread_time

    def timed(key, f):
        @functools.wraps(f)
        def g(*a, **k):
            t = tt()
            try:
                return f(*a, **k)
            finally:
                acc[key] += tt() - t
        return g

    class Timed:
        def __getattr__(self, name):
            f = getattr(cv2, name)
            return timed("cv2." + name, f) if callable(f) and not name.isupper() else f

    saved = {"_cv2": Q._cv2, "schedule": Q.schedule, "min_cut_columns": Q.min_cut_columns}
    methods = {n: getattr(Q.Quilter, n) for n in ("match_many", "paste_many", "_scores", "_forbid_continuation",
                                                   "_choose", "_cut", "_mask_term")}
    proxy = Timed()
    Q._cv2 = lambda: proxy
    Q.schedule = timed("schedule", Q.schedule)
    Q.min_cut_columns = timed("min_cut_columns", Q.min_cut_columns)
    for n, f in methods.items():
        setattr(Q.Quilter, n, timed(n, f))
    before = get_threads()
    set_threads(1)
    try:
        for name in names:
            ex = exemplar(name)
            ex = ex[:, :, None] if ex.ndim == 2 else ex
            for side in sizes:
                acc.clear()
                t = tt()
                Q.quilt(ex, (side, side), block=64, overlap=16, wrap=True, seed=0, threads=1)
                total = tt() - t
                free = sum(v for k, v in acc.items() if k.startswith("cv2."))
                print(f"{name} {side}x{side}, {ex.shape[2]} channel(s), 1 thread: {total:.3f} CPU s")
                for k, v in sorted(acc.items(), key=lambda kv: -kv[1]):
                    print(f"  {k:22s} {v:7.3f} s {100 * v / total:5.1f}%")
                print(f"  inside OpenCV calls (GIL released): {100 * free / total:.1f}%")
    finally:
        set_threads(before)
        for n, f in methods.items():
            setattr(Q.Quilter, n, f)
        for n, f in saved.items():
            setattr(Q, n, f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2048,4096")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--exemplars", default="brick,coffee")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--warm", action="store_true", help="keep the helper processes between calls")
    ap.add_argument("--profile", action="store_true", help="CPU seconds per stage on one thread instead")
    args = ap.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    names = args.exemplars.split(",")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.profile:
        profile(sizes, names)
    else:
        timing(sizes, args.reps, names, [int(v) for v in args.threads.split(",")], args.warm)
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
