"""Damage-detection benchmark: recall / precision of detect_damage() on synthetic scratches, and the fraction of
pixels it flags on the clean pictures.

Images: scikit-image photos (astronaut, camera, coffee, chelsea) and textures (brick, gravel, grass) at two sizes,
with random polylines 1-3 px wide, each bright (1.0) or dark (0.05); plus the demo's Cycles render (if
/tmp/demo_out/render.png exists, or --render PATH) damaged the way scripts/demo.py does (white 0.95 polylines
1-2 px and a disc). Precision and recall are measured against the drawn ground truth with a 2-px tolerance
(the same measure as tests/test_repair.py). `--peer FILE` loads another detect.py (e.g. an older version) and
prints its figures and the ratios ours / peer, measured in the same run.

    python bench/detect.py [--sizes 128 256] [--seeds 3] [--sensitivity 0.5] [--peer /path/to/old/detect.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from art_ai_addon.repair import detect_damage  # noqa: E402
from demo import damaged  # noqa: E402  (the demo's own damage, so the demo row measures what the demo shows)

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "brick", "gravel", "grass")


def photo(name, size):
    import skimage.data as sd

    img = getattr(sd, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def scratch_mask(h, w, rng, n):
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        pts = [rng.integers(0, [w, h])]
        for _ in range(rng.integers(2, 5)):
            pts.append(np.clip(pts[-1] + rng.integers(-w // 3, w // 3 + 1, 2), 0, [w - 1, h - 1]))
        cv2.polylines(m, [np.array(pts, np.int32)], False, 1, int(rng.integers(1, 4)))
    return m.astype(bool)


def bright_or_dark(img, mask, rng):
    out = img.copy()
    n, lab = cv2.connectedComponents(mask.astype(np.uint8))
    for i in range(1, n):
        out[lab == i] = 1.0 if rng.random() < 0.5 else 0.05
    return out


def precision_recall(pred, gt, tol=2):
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1,) * 2)
    gtd = cv2.dilate(gt.astype(np.uint8), k) > 0
    pdd = cv2.dilate(pred.astype(np.uint8), k) > 0
    return (pred & gtd).sum() / max(pred.sum(), 1), (gt & pdd).sum() / max(gt.sum(), 1)


def cases(sizes, seeds, render_path):
    for size in sizes:
        for name in PHOTOS:
            clean = photo(name, size)
            dmg = []
            for seed in range(seeds):
                rng = np.random.default_rng(1000 * size + seed)
                gt = scratch_mask(size, size, rng, 6)
                dmg.append((bright_or_dark(clean, gt, rng), gt))
            yield f"{name} {size}", clean, dmg
    if render_path and Path(render_path).is_file():
        from art_ai_addon.imageio import read_image

        clean = read_image(render_path)[:, :, :3].copy()
        dmg = [(img, mask > 0.5) for img, mask in
               (damaged(clean, rng=np.random.default_rng(seed)) for seed in range(3, 3 + seeds))]
        yield f"demo render {clean.shape[0]}", clean, dmg


def load_peer(path):
    spec = importlib.util.spec_from_file_location("art_ai_addon.repair._peer_detect", path,
                                                  submodule_search_locations=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "art_ai_addon.repair"
    spec.loader.exec_module(mod)
    return mod.detect_damage


def measure(fn, clean, dmg, s):
    ps, rs, t = [], [], 0.0
    for img, gt in dmg:
        t0 = time.perf_counter()
        m = fn(img, sensitivity=s) > 0.5
        t += time.perf_counter() - t0
        p, r = precision_recall(m, gt)
        ps.append(p)
        rs.append(r)
    fp = float((fn(clean, sensitivity=s) > 0.5).mean())
    return float(np.mean(ps)), float(np.mean(rs)), fp, t / len(dmg)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sensitivity", type=float, default=0.5)
    ap.add_argument("--render", default="/tmp/demo_out/render.png")
    ap.add_argument("--peer", help="another detect.py to compare with (e.g. the previous version)")
    args = ap.parse_args(argv)
    fns = [("ours", detect_damage)]
    if args.peer:
        fns.append(("peer", load_peer(args.peer)))
    head = f"{'image':18s}" + "".join(f" | {n:>4s} prec  rec  clean%   s/img" for n, _ in fns)
    if args.peer:
        head += " | rec ratio  prec ratio"
    print(f"sensitivity {args.sensitivity}, {args.seeds} damaged copies per image, tolerance 2 px")
    print(head)
    print("-" * len(head))
    tot = {n: [] for n, _ in fns}
    for label, clean, dmg in cases(args.sizes, args.seeds, args.render):
        row = f"{label:18s}"
        res = {}
        for n, fn in fns:
            res[n] = measure(fn, clean, dmg, args.sensitivity)
            tot[n].append(res[n])
            p, r, fp, t = res[n]
            row += f" |      {p:4.2f} {r:4.2f} {100 * fp:6.2f} {t:7.3f}"
        if args.peer:
            o, q = res["ours"], res["peer"]
            row += f" | {o[1] / max(q[1], 1e-6):9.2f} {o[0] / max(q[0], 1e-6):11.2f}"
        print(row)
    print("-" * len(head))
    row = f"{'mean':18s}"
    for n, _ in fns:
        p, r, fp, t = np.mean(np.array(tot[n]), axis=0)
        row += f" |      {p:4.2f} {r:4.2f} {100 * fp:6.2f} {t:7.3f}"
    if args.peer:
        a, b = np.mean(np.array(tot["ours"]), axis=0), np.mean(np.array(tot["peer"]), axis=0)
        row += f" | {a[1] / max(b[1], 1e-6):9.2f} {a[0] / max(b[0], 1e-6):11.2f}"
    print(row)
    worst = {n: np.min(np.array(tot[n])[:, :2], axis=0) for n, _ in fns}
    print("worst image: " + ", ".join(f"{n} prec {w[0]:.2f} rec {w[1]:.2f}" for n, w in worst.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
