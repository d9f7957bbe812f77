"""Bridge throughput: 4K images Blender <-> engine array, against a plain numpy copy of the same bytes.

The peer is a plain numpy copy (`np.copyto` between two preallocated float32 arrays) of the bytes that move:
a 4K RGBA float32 frame is 133 MB. Every row moves those bytes `moves` times at least, and its ratio is
time / (moves x peer). Blender's own `pixels.foreach_get` / `foreach_set` (into reused buffers, no conversion)
are printed too: they are the floor any bridge pays, whatever it does.

    .venv/bin/python bench/bridge.py            # best of 7
    .venv/bin/python bench/bridge.py --repeat 3 --threads 1
    .venv/bin/python bench/bridge.py --kernels     # ns per value of the kernels a conversion can be made of

Rows: `read` = image_to_array (engine layout, top-down, sRGB-encoded; float images convert from linear
premultiplied), `write` = array_to_image of a new contiguous engine result (float results convert back),
`round trip` = both. The pixels are random (alpha below 1 everywhere, so float images take the un-premultiply
path; opaque renders, alpha 1, skip it: the last image). To add a row (e.g. through the engine worker), append
to the list that `rows_for` returns, see WORKER below.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

W, H = 3840, 2160


def best_of(fn, n=7):
    fn()  # warm up (first-touch page faults, tables)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# The engine worker's round trip: read -> to the worker (one copy into a shared file both keep mapped) -> back (one
# copy, mapped here) -> write: 4 moves of the bytes. Set by main() unless --no-worker.
worker_roundtrip = None


def start_worker():
    """A warm engine worker on this Python; returns (round-trip function, client)."""
    from art_ai_addon.worker import WorkerClient

    client = WorkerClient(sys.executable)
    client.start()
    return (lambda arr: client.run("echo", {"value": arr}, copy=False)[0]), client


def rows_for(bridge, img, float_buffer: bool):
    """[(label, moves, fn)] for one Blender image."""
    n = W * H * img.channels
    raw = np.zeros(n, dtype=np.float32)
    out_name = f"{img.name}.out"
    result = np.ascontiguousarray(bridge.image_to_array(img))  # an engine result: new, contiguous, top-down

    def read():
        bridge.image_to_array(img)

    def write():
        bridge.array_to_image(result, out_name, float_buffer=float_buffer)

    def round_trip():
        bridge.array_to_image(bridge.image_to_array(img), out_name, float_buffer=float_buffer)

    rows = [
        ("Blender foreach_get (floor)", 1, lambda: img.pixels.foreach_get(raw)),
        ("Blender foreach_set (floor)", 1, lambda: img.pixels.foreach_set(raw)),
        ("read  (image_to_array)", 1, read),
        ("write (array_to_image)", 1, write),
        ("round trip", 2, round_trip),
    ]
    if worker_roundtrip is not None:
        def through_worker():
            bridge.array_to_image(worker_roundtrip(bridge.image_to_array(img)), out_name, float_buffer=float_buffer)

        rows.append(("round trip via engine worker", 4, through_worker))
    return rows


def kernels(repeat: int) -> None:
    """ns per value of the numpy kernels a colour conversion can be made of, one thread, 64K-value blocks."""
    from art_ai_addon.core import HIGH_HALF, srgb_tables

    n, block = W * H * 4, 1 << 16
    a = np.random.default_rng(1).random(n, dtype=np.float32)
    b = np.empty_like(a)
    ix = np.empty(block, np.intp)
    table = srgb_tables()[0]
    ops = {
        "copy": lambda s, d, i: np.copyto(d, s),
        "multiply": lambda s, d, i: np.multiply(s, s, out=d),
        "sqrt": lambda s, d, i: np.sqrt(s, out=d),
        "power 1/2.4": lambda s, d, i: np.power(s, np.float32(1 / 2.4), out=d),
        "table index (high 16 bits -> intp)": lambda s, d, i: np.copyto(i, s.view(np.uint16)[HIGH_HALF::2],
                                                                        casting="unsafe"),
        "np.take from the table": lambda s, d, i: np.take(table, i, out=d, mode="wrap"),
    }
    np.copyto(ix, a[:block].view(np.uint16)[HIGH_HALF::2], casting="unsafe")
    print(f"numpy kernels, one thread, {block} values a block: ns per value")
    for label, op in ops.items():
        def run(op=op):
            for k in range(0, n - block + 1, block):
                op(a[k:k + block], b[k:k + block], ix)

        print(f"  {label:36s} {best_of(run, repeat) / (n // block * block) * 1e9:6.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="colour-conversion threads (default: up to 8 cores)")
    ap.add_argument("--no-worker", action="store_true", help="skip the engine worker round trip")
    ap.add_argument("--kernels", action="store_true", help="only time the numpy kernels a conversion is made of")
    args = ap.parse_args(argv)
    if args.kernels:
        kernels(args.repeat)
        return
    global worker_roundtrip
    client = None
    if not args.no_worker:
        worker_roundtrip, client = start_worker()
    import bpy

    from art_ai_addon import core
    from art_ai_addon.blender import bridge

    core.set_threads(args.threads)

    rng = np.random.default_rng(0)
    data = rng.random(W * H * 4, dtype=np.float32)  # random RGBA: every pixel differs, alpha everywhere below 1
    premultiplied = data.copy()  # float buffers hold premultiplied values (colour <= alpha)
    premultiplied.reshape(-1, 4)[:, :3] *= premultiplied.reshape(-1, 4)[:, 3:]
    src, dst = data.copy(), np.empty_like(data)
    peer = best_of(lambda: np.copyto(dst, src), args.repeat)
    print(f"4K ({W}x{H}) RGBA float32 = {data.nbytes / 1e6:.0f} MB, best of {args.repeat}, "
          f"{bridge._threads(data.size)} conversion thread(s); peer = a plain numpy copy of those bytes: {peer:.4f} s")
    print(f"{'image':22s} {'step':30s} {'s':>8s} {'moves':>5s} {'ratio':>6s}")
    opaque = data.copy()  # an opaque render: alpha 1 everywhere
    opaque.reshape(-1, 4)[:, 3] = 1.0
    images = (("byte sRGB", False, data), ("float linear", True, premultiplied),
              ("float linear, alpha 1", True, opaque))
    for label, float_buffer, pixels in images:
        img = bpy.data.images.new(label, W, H, alpha=True, float_buffer=float_buffer)
        img.pixels.foreach_set(pixels)
        for step, moves, fn in rows_for(bridge, img, float_buffer):
            t = best_of(fn, args.repeat)
            print(f"{label:22s} {step:30s} {t:8.4f} {moves:5d} {t / (moves * peer):6.2f}")
        bridge.release_buffers()
    if client is not None:
        client.stop()


if __name__ == "__main__":
    main()
