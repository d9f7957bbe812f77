"""Bridge throughput: a 4K image Blender -> engine array -> Blender, against plain numpy copies of the same bytes.

The peer is the least any bridge must do: copy the pixels out of Blender's buffer and back in, i.e. two
numpy copies of the same float32 bytes. Ratio = our round trip / that.

    .venv/bin/python bench/bridge.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_of(fn, n=7):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    import bpy

    from art_ai_addon.blender import bridge

    w, h = 3840, 2160
    rng = np.random.default_rng(0)
    data = rng.random(w * h * 4, dtype=np.float32)
    rows = []
    for label, float_buffer in (("byte sRGB image", False), ("float linear image", True)):
        img = bpy.data.images.new(label, w, h, alpha=True, float_buffer=float_buffer)
        img.pixels.foreach_set(data)
        out_name = f"{label}.out"

        def ours():
            arr = bridge.image_to_array(img)
            bridge.array_to_image(arr, out_name, float_buffer=float_buffer)

        def engine_result():  # a new (contiguous, top-down) result array, as every engine returns
            arr = np.ascontiguousarray(bridge.image_to_array(img))
            bridge.array_to_image(arr, out_name, float_buffer=float_buffer)

        src = data.copy()
        mid = np.empty_like(src)
        dst = np.empty_like(src)

        def peer():
            np.copyto(mid, src)
            np.copyto(dst, mid)

        ours(), engine_result(), peer()  # warm up (first-touch page faults)
        t_ours, t_res, t_peer = best_of(ours), best_of(engine_result), best_of(peer)
        rows.append((label, t_ours, t_res, t_peer))
    print(f"4K ({w}x{h}) RGBA float32, best of 7; peer = two plain numpy copies of the same {w * h * 16 / 1e6:.0f} MB")
    print(f"{'image':22s} {'round trip s':>12s} {'ratio':>6s} {'with new result s':>18s} {'ratio':>6s} {'peer s':>8s}")
    for label, a, b, p in rows:
        print(f"{label:22s} {a:12.3f} {a / p:6.2f} {b:18.3f} {b / p:6.2f} {p:8.3f}")


if __name__ == "__main__":
    main()
