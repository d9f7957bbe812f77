"""Damage-detection benchmark: recall / precision of detect_damage() on synthetic scratches, the fraction of pixels it
flags on the clean pictures, and what detect -> inpaint(auto) does to the whole picture (PSNR gain over the damaged
input, against the clean original: negative means the automatic repair made the picture worse).

Images: scikit-image photos (astronaut, camera, coffee, chelsea) and textures (brick, gravel, grass) at each size,
with 6 random polylines 1-3 px wide, each bright (1.0) or dark (0.05), one damaged copy per seed; soft scratches
(anti-aliased, blurred like a scan, blended in: the edges a real scratch has) on astronaut and grass; the gallery's
two cases (docs/gallery/make.py `scratch`: astronaut with 10 scratches, camera with 30 thin ones, 192 px); the
demo's Cycles render (/tmp/demo_out/render.png, or --render PATH) damaged the way scripts/demo.py does (white 0.95
polylines 1-2 px and a disc); and with a reference: camera 30 thin scratches against the clean photo shifted by
3 px and 10 % brighter (the gallery's case), and coffee with scratches and a blob against a version shifted, rotated
by 1 degree, scaled by 1 % and differently exposed. Precision and recall are measured against the drawn ground truth
with a 2-px tolerance (as tests/test_repair.py does). Tune on some seeds and report others: `--first-seed 3`.
`--peer FILE` loads another detect.py (e.g. an older version) and prints its figures in the same run.

`--clean` adds the share of pixels flagged on every clean picture of tests/clean_corpus.py (scikit-image photos and
textures whole and at true scale, procedural textures of five spectral slopes, cells, wood and marble, and the
gallery's panels) at 128, 256 and 512 px: median, 90th percentile, worst, and how many over 1 %, for textures,
photos and the gallery's PBR data maps (height, normal, roughness, AO) apart.

`--hires` (or `--sizes` naming 1080 or 4k) measures instead how detection holds up with the picture's size: the same
damage in pixels at 512x512, 1920x1080 and 3840x2160 (scratches 2-4 px wide, specks 3-7 px across, bright or
dark, over a faint film grain) on photos and textures upscaled to each size (smooth areas and fine texture both),
several seeds; per size the median and worst precision and recall over pictures and seeds and the time per picture
(best of `--repeat`, ours and the peer alternating), and with `--clean` the share flagged on those pictures clean
(with the grain), on the clean corpus's photos upscaled to those sizes and on its procedural textures at 2048 px.

    python bench/detect.py [--sizes 128 256] [--seeds 3] [--first-seed 0] [--sensitivity 0.5] [--peer old.py]
                           [--only camera ...] [--no-extra] [--clean]
    python bench/detect.py --hires [--sizes 512 1080 4k] [--seeds 2] [--repeat 3] [--peer old.py] [--clean]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from art_ai_addon.repair import detect_damage, inpaint  # noqa: E402
from demo import damaged  # noqa: E402  (the demo's own damage, so the demo row measures what the demo shows)

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "brick", "gravel", "grass")


def photo(name, size):
    import skimage.data as sd

    img = getattr(sd, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def gallery_photo(name, long_side=192):
    """As docs/gallery/make.py loads it (aspect kept), always 3 channels."""
    import skimage.data as sd

    a = getattr(sd, name)()
    h, w = a.shape[:2]
    k = long_side / max(h, w)
    a = cv2.resize(a, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a[:, :, :3]


def gallery_scratch(img, n, seed, width=(1, 3)):
    """docs/gallery/make.py's `scratch` (loaded from there, so this row measures what the gallery shows)."""
    spec = importlib.util.spec_from_file_location("_gallery_make", ROOT / "docs" / "gallery" / "make.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out, mask = mod.scratch(img, n, seed=seed, width=width)
    return out, mask > 0.5


def scratch_mask(h, w, rng, n):
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        pts = [rng.integers(0, [w, h])]
        for _ in range(rng.integers(2, 5)):
            pts.append(np.clip(pts[-1] + rng.integers(-w // 3, w // 3 + 1, 2), 0, [w - 1, h - 1]))
        cv2.polylines(m, [np.array(pts, np.int32)], False, 1, int(rng.integers(1, 4)))
    return m.astype(bool)


def soft_scratches(img, rng, n=6):
    """Anti-aliased polylines blurred like a scan (sigma 0.7 px), blended in at their coverage; truth is where
    the coverage reaches a quarter."""
    h, w = img.shape[:2]
    out = img.copy()
    truth = np.zeros((h, w), bool)
    for _ in range(n):
        cover = np.zeros((h, w), np.float32)
        pts = [rng.integers(0, [w, h])]
        for _ in range(rng.integers(2, 5)):
            pts.append(np.clip(pts[-1] + rng.integers(-w // 3, w // 3 + 1, 2), 0, [w - 1, h - 1]))
        cv2.polylines(cover, [np.array(pts, np.int32)], False, 1.0, int(rng.integers(1, 3)), cv2.LINE_AA)
        cover = np.clip(cv2.GaussianBlur(cover, (0, 0), 0.7) * 1.3, 0, 1)[:, :, None]
        out = out * (1 - cover) + (0.95 if rng.random() < 0.5 else 0.08) * cover
        truth |= cover[:, :, 0] > 0.25
    return out.astype(np.float32), truth


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


def psnr(a, b):
    return float(10 * np.log10(1.0 / max(float(np.mean((np.asarray(a, np.float64) - b) ** 2)), 1e-12)))


def reference_cases(seeds, first):
    """(label, clean, [(damaged, truth)], reference) with a reference version of the clean picture."""
    cam = gallery_photo("camera")
    h, w = cam.shape[:2]
    shifted = cv2.warpAffine(cam, np.float32([[1, 0, 3], [0, 1, -2]]), (w, h), borderMode=cv2.BORDER_REFLECT)
    dmg = [gallery_scratch(cam, 30, seed=9, width=(1, 2))]
    yield "ref camera 30 thin", cam, dmg, np.clip(shifted * 1.1 + 0.02, 0, 1).astype(np.float32)
    coffee = photo("coffee", 160)
    rot = cv2.getRotationMatrix2D((80, 80), 1.0, 1.01)
    rot[:, 2] += (3, -2)
    ref = cv2.warpAffine(coffee, rot, (160, 160), borderMode=cv2.BORDER_REFLECT)
    ref = (np.clip(ref * 1.1 + 0.02, 0, 1) ** 1.1).astype(np.float32)
    dmg = []
    for seed in range(first, first + seeds):
        rng = np.random.default_rng(500 + seed)
        gt = scratch_mask(160, 160, rng, 4)
        cv2.circle(gt.view(np.uint8), (int(rng.integers(30, 130)), int(rng.integers(30, 130))), 8, 1, -1)
        dmg.append((bright_or_dark(coffee, gt, rng), gt))
    yield "ref coffee rot+exp", coffee, dmg, ref


def cases(sizes, seeds, first, render_path, only, extra):
    for size in sizes:
        for name in PHOTOS:
            if only and name not in only:
                continue
            clean = photo(name, size)
            dmg = []
            for seed in range(first, first + seeds):
                rng = np.random.default_rng(1000 * size + seed)
                gt = scratch_mask(size, size, rng, 6)
                dmg.append((bright_or_dark(clean, gt, rng), gt))
            yield f"{name} {size}", clean, dmg, None
    if not extra:
        return
    for name in ("astronaut", "grass"):
        clean = photo(name, 256)
        yield f"soft {name} 256", clean, [soft_scratches(clean, np.random.default_rng(77 + seed))
                                          for seed in range(first, first + seeds)], None
    astro = gallery_photo("astronaut")
    yield "gal astronaut 10", astro, [gallery_scratch(astro, 10, seed=5)], None
    cam = gallery_photo("camera")
    yield "gal camera 30 thin", cam, [gallery_scratch(cam, 30, seed=9, width=(1, 2))], None
    if render_path and Path(render_path).is_file():
        from art_ai_addon.imageio import read_image

        clean = read_image(render_path)[:, :, :3].copy()
        dmg = [(img, mask > 0.5) for img, mask in (damaged(clean, seed=3),)]
        dmg += [(img, mask > 0.5) for img, mask in
                (damaged(clean, rng=np.random.default_rng(seed)) for seed in range(first + 10, first + 10 + seeds))]
        yield f"demo render {clean.shape[0]}", clean, dmg, None
    yield from reference_cases(seeds, first)


def load_peer(path):
    spec = importlib.util.spec_from_file_location("art_ai_addon.repair._peer_detect", path,
                                                  submodule_search_locations=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "art_ai_addon.repair"
    spec.loader.exec_module(mod)
    return mod.detect_damage


def measure(fn, clean, dmg, ref, s):
    """Mean precision, recall, clean-image flagged fraction, mean and worst PSNR gain of detect -> inpaint(auto),
    seconds per detection."""
    ps, rs, gains, t = [], [], [], 0.0
    for img, gt in dmg:
        t0 = time.perf_counter()
        m = fn(img, reference=ref, sensitivity=s)
        t += time.perf_counter() - t0
        p, r = precision_recall(m > 0.5, gt)
        ps.append(p)
        rs.append(r)
        fixed = inpaint(img, m, method="auto") if (m > 0.5).any() else img
        gains.append(psnr(fixed, clean) - psnr(img, clean))
    fp = float((fn(clean, reference=ref, sensitivity=s) > 0.5).mean())
    return float(np.mean(ps)), float(np.mean(rs)), fp, float(np.mean(gains)), float(np.min(gains)), t / len(dmg)


def fmt(res):
    p, r, fp, g, gmin, t = res
    return f" | {p:4.2f} {r:4.2f} {100 * fp:6.2f} {g:+6.2f} {gmin:+6.2f} {t:6.3f}"


TEXTURES = ("gravel", "grass", "brick", "noise", "cells", "wood", "marble", "gallery")


def clean_rows(fns, sensitivity):
    """Flagged share on every clean picture of tests/clean_corpus.py, per detector, textures and photos apart."""
    sys.path.insert(0, str(ROOT / "tests"))
    from clean_corpus import clean_pictures

    kinds = ("textures", "photos", "data maps")
    flagged = {n: {k: [] for k in kinds} for n, _ in fns}
    worst = {n: {k: (0.0, "") for k in kinds} for n, _ in fns}
    for label, img in clean_pictures(sizes=(128, 256, 512)):
        # the PBR sheet's height, normal, roughness and AO maps are data maps; the material render is a photo
        kind = ("data maps" if "texture_pbr" in label and not label.endswith(" 4,28") else
                "photos" if "material_render" in label or label.split()[0] not in TEXTURES else "textures")
        for n, fn in fns:
            f = float((fn(img, sensitivity=sensitivity) > 0.5).mean())
            flagged[n][kind].append(f)
            worst[n][kind] = max(worst[n][kind], (f, label))
    for n, _ in fns:
        for kind, vals in flagged[n].items():
            a = 100 * np.array(vals)
            print(f"{n}: clean {kind} ({len(a)}): flagged median {np.median(a):.3f} %, 90th percentile "
                  f"{np.percentile(a, 90):.3f} %, worst {a.max():.2f} % ({worst[n][kind][1]}), over 1 %: "
                  f"{int((a > 1).sum())}")


HIRES = {"512": (512, 512), "1080": (1920, 1080), "1080p": (1920, 1080), "4k": (3840, 2160), "2160": (3840, 2160)}
HIRES_PICTURES = ("astronaut", "coffee", "chelsea", "camera", "brick", "gravel", "grass")


def hires_size(label):
    """'512' -> (512, 512), '1080' -> (1920, 1080), '4k' -> (3840, 2160), any other number -> a square."""
    key = str(label).lower()
    return HIRES[key] if key in HIRES else (int(key), int(key))


def hires_photo(name, w, h):
    """A scikit-image picture cropped to the aspect w:h and resized (upscaled past its own size) to w x h, RGB."""
    import skimage.data as sd

    img = getattr(sd, name)()
    img = np.asarray(img[0] if isinstance(img, tuple) else img)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[:, :, :3].astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
    ih, iw = img.shape[:2]
    if iw / ih > w / h:
        cw = int(round(ih * w / h))
        img = img[:, (iw - cw) // 2:(iw - cw) // 2 + cw]
    else:
        ch = int(round(iw * h / w))
        img = img[(ih - ch) // 2:(ih - ch) // 2 + ch]
    interp = cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC
    return np.clip(cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=interp), 0, 1)


def hires_damage(clean, rng, n_scratches=6, n_specks=10, widths=(2, 4), radii=(1, 3), grain=0.01):
    """Damage of the same size in pixels whatever the picture's size: polylines `widths` px wide (their segments
    a third of the picture's side, as scratch_mask draws them) and discs of `radii` px, each at white (0.97) or
    black (0.05), over a film grain of `grain` (std) so an upscaled picture is not unnaturally smooth. Returns
    (clean with grain, damaged, truth)."""
    h, w = clean.shape[:2]
    base = np.clip(clean + rng.normal(0.0, grain, (h, w, 1)).astype(np.float32), 0, 1) if grain else clean
    truth = np.zeros((h, w), np.uint8)
    out = base.copy()
    for _ in range(n_scratches):
        one = np.zeros((h, w), np.uint8)
        pts = [rng.integers(0, [w, h])]
        for _ in range(rng.integers(2, 5)):
            pts.append(np.clip(pts[-1] + rng.integers(-w // 3, w // 3 + 1, 2), 0, [w - 1, h - 1]))
        cv2.polylines(one, [np.array(pts, np.int32)], False, 1, int(rng.integers(widths[0], widths[1] + 1)))
        out[one > 0] = 0.97 if rng.random() < 0.5 else 0.05
        truth |= one
    for _ in range(n_specks):
        one = np.zeros((h, w), np.uint8)
        cv2.circle(one, (int(rng.integers(8, w - 8)), int(rng.integers(8, h - 8))),
                   int(rng.integers(radii[0], radii[1] + 1)), 1, -1)
        out[one > 0] = 0.97 if rng.random() < 0.5 else 0.05
        truth |= one
    return base, out, truth.astype(bool)


def hires_rows(fns, sizes, seeds, first, sensitivity, repeat, only, clean):
    """The same damage in pixels at every size: per size, precision / recall (median and worst over pictures and
    seeds) and seconds per picture (best of `repeat` on each picture's first seed, the detectors alternating),
    and with `clean` the share flagged on the clean pictures (with the grain) at that size."""
    names = [n for n in HIRES_PICTURES if not only or n in only]
    print(f"same damage in pixels at every size: 6 scratches 2-4 px wide, 10 specks 3-7 px across, white or black, "
          f"grain 0.01; {len(names)} pictures x seeds {first}..{first + seeds - 1}; sensitivity {sensitivity}, "
          "tolerance 2 px; time: best of "
          f"{repeat} on each picture's first seed, detectors alternating")
    head = f"{'size':10s}" + "".join(f" | {n + ': P med/worst  R med/worst    s/img  clean%':>50s}" for n, _ in fns)
    print(head)
    print("-" * len(head))
    summary = {}
    for size in sizes:
        w, h = hires_size(size)
        res = {n: {"p": [], "r": [], "t": [], "fp": [], "worst": (2.0, "")} for n, _ in fns}
        for name in names:
            clean_img = hires_photo(name, w, h)
            for seed in range(first, first + seeds):
                rng = np.random.default_rng(10_000 + 100 * HIRES_PICTURES.index(name) + seed)
                base, img, gt = hires_damage(clean_img, rng)
                for n, fn in fns:
                    m = fn(img, sensitivity=sensitivity) > 0.5
                    p, r = precision_recall(m, gt)
                    res[n]["p"].append(p)
                    res[n]["r"].append(r)
                    res[n]["worst"] = min(res[n]["worst"], (min(p, r), f"{name} seed {seed}"))
                if seed == first:
                    best = {n: float("inf") for n, _ in fns}
                    for _ in range(repeat):
                        for n, fn in fns:
                            t0 = time.perf_counter()
                            fn(img, sensitivity=sensitivity)
                            best[n] = min(best[n], time.perf_counter() - t0)
                    for n, _ in fns:
                        res[n]["t"].append(best[n])
                    if clean:
                        for n, fn in fns:
                            res[n]["fp"].append(float((fn(base, sensitivity=sensitivity) > 0.5).mean()))
        row = f"{f'{w}x{h}':10s}"
        for n, _ in fns:
            p, r = np.array(res[n]["p"]), np.array(res[n]["r"])
            fp = f"{100 * max(res[n]['fp']):6.2f}" if res[n]["fp"] else "     -"
            row += (f" | {np.median(p):5.2f} {p.min():5.2f}  {np.median(r):5.2f} {r.min():5.2f}  "
                    f"{np.median(res[n]['t']):8.2f}  {fp}")
            summary[(n, size)] = res[n]
        print(row, flush=True)
    print("-" * len(head))
    for n, _ in fns:
        for size in sizes:
            r = summary[(n, size)]
            print(f"{n} {size}: mean precision {np.mean(r['p']):.3f}, mean recall {np.mean(r['r']):.3f}, "
                  f"worst case {r['worst'][1]} ({r['worst'][0]:.2f}); times "
                  + " ".join(f"{t:.2f}" for t in r["t"]))
    if len(fns) == 2:
        for size in sizes:
            ta, tb = np.array(summary[(fns[0][0], size)]["t"]), np.array(summary[(fns[1][0], size)]["t"])
            print(f"{size}: time ours / peer (median over pictures) {np.median(ta / tb):.2f}")


def clean_rows_large(fns, sizes, sensitivity):
    """Flagged share on clean pictures at large sizes: tests/clean_corpus.py's scikit-image photos upscaled to each
    size of `sizes` above 512 (16:9; smooth areas and fine texture both) and its procedural textures generated at
    2048 x 2048 (fine texture at full resolution everywhere), per detector."""
    sys.path.insert(0, str(ROOT / "tests"))
    from clean_corpus import SKIMAGE, procedural

    sets = []
    for size in sizes:
        w, h = hires_size(size)
        if max(w, h) > 512:
            sets.append((f"photos {w}x{h}", [(n, hires_photo(n, w, h)) for n in SKIMAGE]))
    sets.append(("textures 2048x2048", list(procedural(2048, seeds=range(1)))))
    for label, pics in sets:
        for n, fn in fns:
            shares = {name: float((fn(img, sensitivity=sensitivity) > 0.5).mean()) for name, img in pics}
            a = 100 * np.array(list(shares.values()))
            worst = max(shares, key=shares.__getitem__)
            print(f"{n}: clean {label} ({len(a)}): flagged median {np.median(a):.3f} %, 90th percentile "
                  f"{np.percentile(a, 90):.3f} %, worst {a.max():.2f} % ({worst}), over 1 %: {int((a > 1).sum())}",
                  flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", help="128 256 (default) or, for --hires, 512 1080 4k (default)")
    ap.add_argument("--hires", action="store_true", help="the same damage in pixels at large sizes (see above)")
    ap.add_argument("--repeat", type=int, default=3, help="--hires: timing runs per picture (best of)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="first damage seed (tune on some, report others)")
    ap.add_argument("--sensitivity", type=float, default=0.5)
    ap.add_argument("--render", default="/tmp/demo_out/render.png")
    ap.add_argument("--only", nargs="*", help="only these photos (names from PHOTOS)")
    ap.add_argument("--no-extra", action="store_true", help="skip the gallery, demo and reference rows")
    ap.add_argument("--peer", help="another detect.py to compare with (e.g. the previous version)")
    ap.add_argument("--clean", action="store_true", help="also the flagged share on many clean pictures")
    args = ap.parse_args(argv)
    fns = [("ours", detect_damage)]
    if args.peer:
        fns.append(("peer", load_peer(args.peer)))
    if args.hires or any(str(x).lower() in HIRES and str(x) != "512" for x in args.sizes or ()):
        sizes = args.sizes or ["512", "1080", "4k"]
        hires_rows(fns, sizes, args.seeds, args.first_seed, args.sensitivity, args.repeat, args.only, args.clean)
        if args.clean:
            clean_rows_large(fns, sizes, args.sensitivity)
        return 0
    args.sizes = [int(x) for x in args.sizes or (128, 256)]
    cols = "prec  rec clean%  dPSNR   worst  s/img"
    head = f"{'image':20s}" + "".join(f" | {n + ': ' + cols:>41s}" for n, _ in fns)
    print(f"sensitivity {args.sensitivity}, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}, "
          "tolerance 2 px; dPSNR = whole-image PSNR of inpaint(auto) on the detected mask minus the damaged "
          "input's (mean, worst over seeds)")
    print(head)
    print("-" * len(head))
    tot = {n: [] for n, _ in fns}
    for label, clean, dmg, ref in cases(args.sizes, args.seeds, args.first_seed, args.render, args.only,
                                        not args.no_extra):
        row = f"{label:20s}"
        for n, fn in fns:
            res = measure(fn, clean, dmg, ref, args.sensitivity)
            tot[n].append(res)
            row += fmt(res)
        print(row, flush=True)
    print("-" * len(head))
    row = f"{'mean':20s}"
    for n, _ in fns:
        row += fmt(np.mean(np.array(tot[n]), axis=0))
    print(row)
    for n, _ in fns:
        a = np.array(tot[n])
        print(f"{n}: worst precision {a[:, 0].min():.2f}, worst recall {a[:, 1].min():.2f}, "
              f"most flagged on a clean picture {100 * a[:, 2].max():.2f} %, worst PSNR gain {a[:, 4].min():+.2f} dB")
    if args.clean:
        clean_rows(fns, args.sensitivity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
