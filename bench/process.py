"""OpenMP wait policy for torch's CPU threads: libgomp's default (spin, then sleep) against OMP_WAIT_POLICY=PASSIVE
and shorter spins, on the arbitrary-style call at 1080p, on a free CPU and (--busy) while another process keeps one
core busy (as Blender, a render or another job would).

    python bench/process.py [--runs 8] [--busy] [--spins 1000,10000]

Peer: the same call under libgomp's default policy, in its own fresh process. Median and best of `--runs` calls after
one warm-up call. The engine keeps the default (faster on a free CPU); this says what a shared machine gains by
setting the variable in the worker's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, statistics, sys, time
import cv2, numpy as np, skimage.data, torch
torch.set_num_threads(2)
from art_ai_addon.stylize import stylize
content = cv2.resize(skimage.data.coffee(), (1920, 1080), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
style = skimage.data.immunohistochemistry().astype(np.float32) / 255
call = lambda: stylize(content, style, method="arbitrary", device="cpu")
call()
times = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    call()
    times.append(time.perf_counter() - t)
print(json.dumps([statistics.median(times), min(times)]))
"""


def child(runs: int, env_extra: dict) -> list:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_extra)
    env["PYTHONPATH"] = str(ROOT)
    said = subprocess.run([sys.executable, "-c", CHILD, str(runs)], env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(said.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--busy", action="store_true", help="keep one core busy with another process meanwhile")
    ap.add_argument("--spins", default="", help="also these GOMP_SPINCOUNT values, e.g. 1000,10000")
    args = ap.parse_args(argv)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        cpu = "one core busy" if args.busy else "free CPU"
        print(f"arbitrary style, 1920x1080, 2 torch threads, {cpu}; s per call")
        print(f"{'policy':<30}{'default median':>16}{'this median':>13}{'speed-up':>10}{'default best':>14}"
              f"{'this best':>11}")
        peer = child(args.runs, {})
        cases = [("OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"})]
        cases += [(f"GOMP_SPINCOUNT={n}", {"GOMP_SPINCOUNT": n}) for n in filter(None, args.spins.split(","))]
        for label, env in cases:
            ours = child(args.runs, env)
            print(f"{label:<30}{peer[0]:>16.3f}{ours[0]:>13.3f}{peer[0] / ours[0]:>9.2f}x{peer[1]:>14.3f}"
                  f"{ours[1]:>11.3f}")
    finally:
        if hog is not None:
            hog.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
