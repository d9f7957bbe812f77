"""Texture engine: tileable synthesis (patch, neural, gan), make-seamless, PBR maps; measured properties only."""

from __future__ import annotations

import os
import tempfile
import threading

import cv2
import numpy as np
import pytest
import skimage.data
from skimage.feature import local_binary_pattern

from art_ai_addon import Cancelled, InputError, make_seamless, pbr_maps, synthesize_texture


def _tex(name: str, size: int = 64, y: int = 0, x: int = 0) -> np.ndarray:
    return (getattr(skimage.data, name)()[y:y + size, x:x + size].astype(np.float32) / 255.0)[:, :, None]


def seam_ratio(img: np.ndarray) -> float:
    """Mean jump across the wrap-around borders divided by the mean jump between ordinary neighbours."""
    g = img.mean(axis=2)
    jump = (np.abs(g[:, 0] - g[:, -1]).mean() + np.abs(g[0] - g[-1]).mean()) / 2
    inner = (np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean()) / 2
    return float(jump / inner)


def lbp_hist(img: np.ndarray) -> np.ndarray:
    g = np.round(img.mean(axis=2) * 255).astype(np.uint8)
    hists = []
    for r in (1, 3):
        codes = local_binary_pattern(g, 8, r, method="uniform")
        h, _ = np.histogram(codes, bins=10, range=(0, 10), density=True)
        hists.append(h)
    return np.concatenate(hists)


def chi2(a, b) -> float:
    return float(((a - b) ** 2 / (a + b + 1e-9)).sum())


def max_copy_ncc(out: np.ndarray, ex: np.ndarray, part: int) -> float:
    """Best normalised correlation of any `part`-sized window of the exemplar anywhere in the (wrapped) output."""
    o = np.pad(out.mean(axis=2), part, mode="wrap").astype(np.float32)
    best = -1.0
    for y in range(0, ex.shape[0] - part + 1, part // 2):
        for x in range(0, ex.shape[1] - part + 1, part // 2):
            t = np.ascontiguousarray(ex.mean(axis=2)[y:y + part, x:x + part]).astype(np.float32)
            best = max(best, float(cv2.matchTemplate(o, t, cv2.TM_CCOEFF_NORMED).max()))
    return best


def test_exemplar_itself_has_a_wrap_seam():
    # the measure is meaningful: a plain tiling of these photos shows a seam
    for name in ("brick", "gravel", "grass"):
        assert seam_ratio(_tex(name, 96)) > 1.5


@pytest.mark.parametrize("name", ["brick", "gravel", "grass"])
def test_patch_tiles_and_keeps_texture_statistics(name):
    ex = _tex(name, 96)
    out = synthesize_texture(ex, (160, 176), method="patch", seed=3)
    assert out.shape == (160, 176, 1) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    # wraps: no bigger jump across the borders than between neighbours
    assert seam_ratio(out) < 1.3, seam_ratio(out)
    # statistics closer to its exemplar than to the other textures
    others = [n for n in ("brick", "gravel", "grass") if n != name]
    d_own = chi2(lbp_hist(out), lbp_hist(_tex(name, 96, 200, 200)))
    for other in others:
        assert d_own < chi2(lbp_hist(out), lbp_hist(_tex(other, 96, 200, 200))), (name, other)


def test_patch_is_not_a_tiled_copy():
    ex = _tex("gravel", 64)
    out = synthesize_texture(ex, (192, 192), method="patch", seed=0)
    tiled = np.tile(ex, (3, 3, 1))
    # a plain tiling contains the whole exemplar verbatim; the synthesis contains no exemplar-sized copy
    assert max_copy_ncc(tiled, ex, 48) > 0.99
    assert max_copy_ncc(out, ex, 48) < 0.9
    # and it does not repeat with the exemplar's period
    g = out.mean(axis=2)
    assert np.abs(g - np.roll(g, 64, axis=1)).mean() > 0.5 * np.abs(g - g.mean()).mean()


def test_patch_deterministic_colour_alpha_and_non_tileable():
    rgb = skimage.data.coffee()[200:264, 200:264].astype(np.float32) / 255.0
    alpha = np.linspace(0.2, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64, 1)
    ex = np.concatenate([rgb, alpha], axis=2)
    a = synthesize_texture(ex, (96, 80), method="patch", seed=7)
    b = synthesize_texture(ex, (96, 80), method="patch", seed=7)
    c = synthesize_texture(ex, (96, 80), method="patch", seed=8)
    assert a.shape == (96, 80, 4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # alpha travels with its pixels and is not flattened to one value
    assert a[:, :, 3].min() >= 0.2 - 1e-3 and a[:, :, 3].std() > 0.02
    # (the RGBA of most output pixels is an exemplar pixel's RGBA, which fails if alpha were placed apart)
    pixels = {tuple(p) for p in ex.reshape(-1, 4)}
    assert np.mean([tuple(p) in pixels for p in a.reshape(-1, 4)]) > 0.5
    flat = synthesize_texture(ex[:, :, :3], (100, 100), method="patch", seed=1, tileable=False)
    assert flat.shape == (100, 100, 3)


def test_bad_inputs_and_cancel():
    ex = _tex("gravel", 64)
    with pytest.raises(InputError, match="method"):
        synthesize_texture(ex, (64, 64), method="magic")
    with pytest.raises(InputError, match="size"):
        synthesize_texture(ex, (2, 64))
    with pytest.raises(InputError, match="exemplar"):
        synthesize_texture(np.zeros((4, 4, 3)), (64, 64))
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        synthesize_texture(ex, (128, 128), method="patch", cancel=stop)


@pytest.mark.parametrize("name", ["brick", "gravel"])
def test_make_seamless_removes_the_seam_and_keeps_the_look(name):
    img = _tex(name, 128, 30, 50)
    before = seam_ratio(img)
    out = make_seamless(img)
    assert out.shape == img.shape
    assert before > 1.5 and seam_ratio(out) < 1.2
    # the middle (away from the borders, where the seam cross ends up) is the original picture
    m = slice(40, 88)
    assert np.abs(out[m, m] - img[m, m]).mean() < 0.03
    # overall look: same texture statistics
    assert chi2(lbp_hist(out), lbp_hist(img)) < 0.5 * chi2(lbp_hist(out), lbp_hist(_tex("grass", 128)))


def _cross_detail(out: np.ndarray, half: int) -> float:
    """Gradient energy in the band around the old wrap seams (moved to the middle) over the energy elsewhere."""
    g = np.roll(out.mean(axis=2), (out.shape[0] // 2, out.shape[1] // 2), (0, 1))
    e = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1]
    H, W = e.shape
    band = np.zeros(e.shape, bool)
    band[H // 2 - half:H // 2 + half] = True
    band[:, W // 2 - half:W // 2 + half] = True
    return float(e[band].mean() / e[~band].mean())


def test_make_seamless_copies_detail_into_the_seam_instead_of_smearing_it():
    # the seams are covered by strips of the image itself, so the band keeps the grass's detail
    # (re-synthesizing the seam cross from small blocks left it at 0.74-0.86 of the detail elsewhere)
    full = skimage.data.grass().astype(np.float32) / 255.0
    for k in range(3):
        img = np.ascontiguousarray(full[40 * k:40 * k + 128, 60 * k:60 * k + 160, None])
        out = make_seamless(img, seed=k)
        assert seam_ratio(out) < 1.25
        assert _cross_detail(out, 8) > 0.9


def test_make_seamless_follows_brick_courses_at_large_sizes():
    # 512 px runs the coarse search and the full-size refinement; the result still wraps
    img = np.ascontiguousarray(cv2.resize(skimage.data.brick(), (512, 512))[:, :, None].astype(np.float32) / 255)
    out = make_seamless(img)
    assert seam_ratio(img) > 3 and seam_ratio(out) < 1.3
    assert _cross_detail(out, 16) > 0.8


def test_make_seamless_colour_alpha():
    rgb = skimage.data.astronaut()[300:380, 100:196].astype(np.float32) / 255.0
    alpha = np.full((80, 96, 1), 0.5, np.float32)
    out = make_seamless(np.concatenate([rgb, alpha], 2))
    assert out.shape == (80, 96, 4)
    assert np.allclose(out[:, :, 3], 0.5, atol=1e-5)
    assert seam_ratio(out[:, :, :3]) < 1.2


def _decode(normal):
    return normal * 2.0 - 1.0


def test_normals_on_a_height_ramp_point_the_right_way():
    from art_ai_addon.texture.pbr import normal_map

    ramp_right = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))  # rises toward +x
    n = _decode(normal_map(ramp_right, 1.0, wrap=False))
    assert np.allclose(np.linalg.norm(n, axis=2), 1.0, atol=1e-5)
    assert (n[:, :, 0] < -0.01).all() and np.abs(n[:, :, 1]).max() < 1e-6 and (n[:, :, 2] > 0).all()
    ramp_up = np.tile(np.linspace(1, 0, 64, dtype=np.float32)[:, None], (1, 64))  # rises toward the top row
    gl = _decode(normal_map(ramp_up, 1.0, wrap=False))
    dx = _decode(normal_map(ramp_up, 1.0, wrap=False, directx=True))
    # OpenGL (+Y up): a surface rising upward faces down; DirectX flips green
    assert (gl[:, :, 1] < -0.01).all() and (dx[:, :, 1] > 0.01).all()
    assert np.allclose(gl[:, :, 0], dx[:, :, 0]) and np.allclose(gl[:, :, 1], -dx[:, :, 1])


def test_pbr_maps_ranges_units_strength_and_wrap():
    # an exactly periodic albedo (torus quilting), so the wrap measure below tests the maps' own filtering
    albedo = synthesize_texture(_tex("gravel", 96), (96, 96), method="patch", seed=0)
    maps = pbr_maps(albedo)
    assert set(maps) == {"height", "normal", "roughness", "ao"}
    for key, arr in maps.items():
        assert arr.dtype == np.float32 and arr.shape[:2] == (96, 96), key
        assert arr.min() >= 0.0 and arr.max() <= 1.0, key
        assert arr.std() > 0.01, key
    assert maps["normal"].shape[2] == 3 and maps["height"].shape[2] == 1
    n = _decode(maps["normal"])
    assert np.allclose(np.linalg.norm(n, axis=2), 1.0, atol=1e-4) and (n[:, :, 2] > 0).all()
    # the input tiles, so the maps tile too (wrap-aware filtering): their wrap seams are no worse than the albedo's
    # own (which varies with the draw, 0.7-1.4 over seeds)
    for key in ("height", "normal", "ao", "roughness"):
        assert seam_ratio(maps[key]) < 1.3 * max(1.0, seam_ratio(albedo)), key
    # strength: more relief tilts the normals more
    tilt1 = np.linalg.norm(n[:, :, :2], axis=2).mean()
    tilt3 = np.linalg.norm(_decode(pbr_maps(albedo, strength=3.0)["normal"])[:, :, :2], axis=2).mean()
    assert tilt3 > 1.5 * tilt1
    # a bright bump reads as raised: normals on its left side point left, on its right side right
    yy, xx = np.mgrid[0:64, 0:64]
    bump = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 5.0 ** 2)).astype(np.float32)[:, :, None]
    nb = _decode(pbr_maps(np.repeat(0.2 + 0.6 * bump, 3, axis=2))["normal"])
    assert nb[32, 26, 0] < -0.05 and nb[32, 38, 0] > 0.05
    assert nb[26, 32, 1] > 0.05 and nb[38, 32, 1] < -0.05  # OpenGL: upper flank faces up
    # the bump's centre is at the top of the height map, far above the flat surroundings
    hb = pbr_maps(np.repeat(0.2 + 0.6 * bump, 3, axis=2))["height"][:, :, 0]
    assert hb[32, 32] >= hb.max() - 1e-3 and hb[32, 32] > hb[2, 2] + 0.5


def test_pbr_removes_large_scale_shading_and_takes_grey_and_alpha():
    tex = _tex("gravel", 128)[:, :, 0]
    shade = np.linspace(0.4, 1.0, 128, dtype=np.float32)[None, :]  # a light falloff across the photo
    shaded = (tex * shade)[:, :, None]
    h = pbr_maps(shaded, tileable=False)["height"][:, :, 0]
    left, right = h[:, :32].mean(), h[:, -32:].mean()
    lum_left, lum_right = shaded[:, :32].mean(), shaded[:, -32:].mean()
    assert abs(right - left) < 0.25 * abs(lum_right - lum_left) / (shaded.max() - shaded.min())
    rgba = np.concatenate([np.repeat(shaded, 3, 2), np.ones_like(shaded)], 2)
    maps = pbr_maps(rgba)
    assert maps["normal"].shape == (128, 128, 3)
    with pytest.raises(InputError, match="strength"):
        pbr_maps(shaded, strength=-1)


@pytest.mark.parametrize("method", ["neural", "gan", "patch"])
def test_a_grey_texture_in_rgba_stays_grey(method, tmp_path):
    """Blender hands over every image as RGBA: a grey exemplar must not come back with invented colour."""
    grey = _tex("gravel", 48)
    alpha = np.tile(np.linspace(0.2, 1, 48, dtype=np.float32), (48, 1))[:, :, None]
    for ex in (np.repeat(grey, 3, axis=2), np.concatenate([np.repeat(grey, 3, axis=2), alpha], 2)):
        opts = {} if method == "patch" else {"steps": 6, "device": "cpu", "models_dir": str(tmp_path)}
        out = synthesize_texture(ex, (48, 48), method=method, seed=0, **opts)
        assert out.shape == (48, 48, ex.shape[2])
        assert np.abs(out[:, :, 1:3] - out[:, :, :1]).max() == 0.0
        if method == "gan":  # 6 steps train no GAN: only the channels are checked
            continue
        assert out[:, :, 0].std() > 0.5 * grey.std()  # a texture, not a flat grey
        if ex.shape[2] == 4 and method == "neural":  # its histograms are matched to the exemplar's
            assert abs(float(np.median(out[:, :, 3])) - float(np.median(alpha))) < 0.05


@pytest.mark.parametrize("tileable", [True, False])
def test_patch_same_pixels_whatever_the_thread_count(tileable):
    from art_ai_addon.core import get_threads, set_threads

    ex = skimage.data.coffee()[150:246, 150:246].astype(np.float32) / 255.0
    before = get_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            set_threads(n)
            outs.append(synthesize_texture(ex, (150, 230), method="patch", seed=5, tileable=tileable, block=24))
    finally:
        set_threads(before)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])


@pytest.mark.parametrize("tileable", [True, False])
def test_patch_same_pixels_when_helper_processes_place_parts_of_the_waves(monkeypatch, tileable):
    from art_ai_addon.texture import quilt as Q

    monkeypatch.setattr(Q, "HELPER_MIN_WORK", 0)  # helpers even for this small canvas
    sent = []
    submit, ready = Q._Helper.submit, Q._Helper.ready

    def ready_now(self):  # wait for the helper to start (else this small job could end before it is up)
        while self.state == "starting":
            self._take(block=True)
        return ready(self)

    def counted(self, part):
        sent.append(len(part[0]))
        return submit(self, part)

    monkeypatch.setattr(Q._Helper, "ready", ready_now)
    monkeypatch.setattr(Q._Helper, "submit", counted)
    split = Q._split
    monkeypatch.setattr(Q, "_split", lambda wave, speeds: split(wave, [1.0] * len(speeds)))  # even (not by speed)
    monkeypatch.setattr(Q, "GUARD_WAVES", 10 ** 9)  # share every wave, even on a busy machine
    rgb = skimage.data.coffee()[150:246, 150:246].astype(np.float32) / 255.0
    outs = []
    Q.close_idle_helpers()
    for workers in (1, 2, 3):  # 2: a new helper; 3: that one again (kept between jobs) and a new one
        sent.clear()
        outs.append(Q.quilt(rgb, (150, 230), block=24, overlap=6, wrap=tileable, seed=5, threads=workers))
        # the helpers placed their share of the blocks (each wave split evenly here)
        blocks = len(Q.grid(150, 18, tileable)) * len(Q.grid(230, 18, tileable))
        assert (sum(sent) == 0) if workers == 1 else (0.3 * blocks < sum(sent) < blocks)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    assert len(Q._idle_helpers) == 2
    Q.close_idle_helpers()
    assert not [f for f in os.listdir(tempfile.gettempdir()) if f.startswith("art_ai_quilt_")]
    if os.path.isdir("/dev/shm"):
        assert not [f for f in os.listdir("/dev/shm") if f.startswith("art_ai_quilt_")]


def test_patch_a_helper_that_dies_leaves_its_parts_to_this_process(monkeypatch):
    from art_ai_addon.texture import quilt as Q

    monkeypatch.setattr(Q, "HELPER_MIN_WORK", 0)
    submit, ready = Q._Helper.submit, Q._Helper.ready
    sent = []

    def ready_now(self):
        while self.state == "starting":
            self._take(block=True)
        return ready(self)

    def dies_on_the_third(self, part):
        sent.append(part)
        if len(sent) == 3:
            self.proc.kill()
            self.proc.wait()
        return submit(self, part)

    monkeypatch.setattr(Q._Helper, "ready", ready_now)
    monkeypatch.setattr(Q._Helper, "submit", dies_on_the_third)
    split = Q._split
    monkeypatch.setattr(Q, "_split", lambda wave, speeds: split(wave, [1.0] * len(speeds)))  # even (not by speed)
    rgb = skimage.data.coffee()[150:246, 150:246].astype(np.float32) / 255.0
    Q.close_idle_helpers()
    alone = Q.quilt(rgb, (150, 230), block=24, overlap=6, wrap=True, seed=5, threads=1)
    shared = Q.quilt(rgb, (150, 230), block=24, overlap=6, wrap=True, seed=5, threads=2)
    assert len(sent) == 3 and np.array_equal(alone, shared)
    assert not Q._idle_helpers


def test_patch_cancel_ends_the_helper_processes(monkeypatch):
    from art_ai_addon.core import reporter
    from art_ai_addon.texture import quilt as Q

    monkeypatch.setattr(Q, "HELPER_MIN_WORK", 0)
    started = []
    init = Q._Helper.__init__

    def tracked(self):
        init(self)
        started.append(self)

    monkeypatch.setattr(Q._Helper, "__init__", tracked)
    stop = threading.Event()

    def progress(f, m):
        if f > 0.3:
            stop.set()

    rgb = skimage.data.coffee()[150:246, 150:246].astype(np.float32) / 255.0
    Q.close_idle_helpers()
    with pytest.raises(Cancelled):
        Q.quilt(rgb, (300, 300), block=24, overlap=6, wrap=True, seed=0, threads=3, rep=reporter(progress, stop))
    # each helper either ended or let go of the canvas and waits for the next job
    assert len(started) == 2
    assert all(h.proc.poll() is not None or (h in Q._idle_helpers and h.state == "free") for h in started)
    Q.close_idle_helpers()
    assert all(h.proc.poll() is not None for h in started)
    if os.path.isdir("/dev/shm"):
        assert not [f for f in os.listdir("/dev/shm") if f.startswith("art_ai_quilt_")]


def test_patch_waves_never_hold_overlapping_blocks():
    from art_ai_addon.texture.quilt import grid, schedule

    for wrap in (True, False):
        for H, W, block, overlap in ((150, 230, 24, 6), (64, 300, 16, 8), (97, 41, 20, 5)):
            rows, cols = grid(H, block - overlap, wrap), grid(W, block - overlap, wrap)
            bh, bw = [n + overlap for _, n in rows], [n + overlap for _, n in cols]
            ch = rows[-1][0] + rows[-1][1] + (0 if wrap else overlap)
            cw = cols[-1][0] + cols[-1][1] + (0 if wrap else overlap)
            waves = schedule(rows, cols, bh, bw, ch, cw, wrap)
            assert sorted(b for w in waves for b in w) == [(i, j) for i in range(len(rows)) for j in range(len(cols))]
            assert max(len(w) for w in waves) > 1 or len(cols) < 5  # some parallel work (5+ columns: rows offset)
            for wave in waves:  # pixel footprints of one wave's blocks are disjoint (around the torus if wrap)
                cover = np.zeros((ch, cw), np.int32)
                for i, j in wave:
                    r = np.arange(rows[i][0], rows[i][0] + bh[i]) % ch
                    c = np.arange(cols[j][0], cols[j][0] + bw[j]) % cw
                    cover[np.ix_(r, c)] += 1
                assert cover.max() == 1
