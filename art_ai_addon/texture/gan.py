"""Multi-scale single-image texture GAN (after SinGAN, Shaham, Dekel & Michaeli 2019), periodic like PSGAN.

Why multi-scale: one big generator trained on a single exemplar for the few hundred steps a CPU affords
paints a blurry, grid-patterned impression. A pyramid of small fully convolutional generators, each adding
the detail of one scale to the upsampled output of the coarser one, learns in minutes: every level only
has to learn the patch statistics of one scale (a patch discriminator of ~11 px receptive field per level),
and each level starts from the weights of the previous one.

- Level n: x_n = up(x_{n-1}) + G_n(up(x_{n-1}) + amp_n * z_n), z_n i.i.d. noise of the level's size.
- Training: hinge loss against random crops of the exemplar at that scale (spectral-norm patch
  discriminator), plus SinGAN's reconstruction term (a fixed noise map at the coarsest level and none above
  must give a fixed crop back), which anchors the levels and sets each level's noise amplitude.
- Periodic: every convolution pads circularly and levels are upsampled in Fourier space, so the output of
  any size tiles and no position is special; the discriminator sees the fake through its wrap too.
- Any size is one pass through the pyramid with noise maps of that size (the levels are convolutional);
  the trained pyramid is stored under the exemplar's hash and reused; the seed gives variations.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from ..core import require_torch, resolve_device
from .periodic import fourier_resize

ARCHITECTURE = "art_ai.texture.singan.v3"
OPTIONS = ("d_steps", "lr", "recon_weight", "crop")


def exemplar_key(ex: np.ndarray) -> str:
    """Name part that identifies an exemplar: hash of its 8-bit pixels and shape."""
    q = np.round(np.clip(ex, 0, 1) * 255).astype(np.uint8)
    h = hashlib.sha256(str(q.shape).encode() + q.tobytes()).hexdigest()
    return h[:16]


def model_name(ex: np.ndarray) -> str:
    return f"texture_gan_{exemplar_key(ex)}"


def _stored(ex: np.ndarray, models_dir=None):
    """(path, sidecar) of whatever generator is stored under this exemplar's name, or (None, None)."""
    from ..models.store import find, read_sidecar

    path = find(model_name(ex), models_dir)
    return (path, read_sidecar(path) or {}) if path is not None else (None, None)


def _current(meta: dict | None) -> bool:
    return bool(meta) and meta.get("architecture") == ARCHITECTURE and isinstance(meta.get("config"), dict)


def find_trained(ex: np.ndarray, models_dir=None):
    """Path of a generator of this architecture trained on exactly this exemplar, or None."""
    path, meta = _stored(ex, models_dir)
    return path if path is not None and _current(meta) else None


RATIO = 0.75  # size ratio between levels
COARSEST = 16  # px, short side of the coarsest level: big structures (cells, bricks) must fit its 11 px view
MAX_LEVELS = 10
LAYERS = 5  # convolutions per generator / discriminator (receptive field 11 px per level)


def level_sizes(h: int, w: int, levels: int | None = None) -> list[tuple[int, int]]:
    """Sizes coarsest first, the last (h, w), each RATIO of the next."""
    if levels is None:
        levels = 1
        while levels < MAX_LEVELS and min(h, w) * RATIO ** levels >= COARSEST:
            levels += 1
    out = []
    for k in range(levels - 1, -1, -1):
        f = RATIO ** k
        out.append((max(8, round(h * f)), max(8, round(w * f))))
    return out


def build(torch, channels: int, width: int):
    """(Generator, Discriminator) classes for one level."""
    nn = torch.nn
    sn = nn.utils.spectral_norm

    def conv(cin, cout):
        return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="circular")

    class Level(nn.Module):
        def __init__(self):
            super().__init__()
            chans = [channels] + [width] * (LAYERS - 1)
            body = []
            for i in range(LAYERS - 1):
                body += [conv(chans[i], chans[i + 1]), nn.BatchNorm2d(width), nn.LeakyReLU(0.2)]
            self.body = nn.Sequential(*body)
            self.tail = conv(width, channels)

        def forward(self, prev, noise):
            return prev + torch.tanh(self.tail(self.body(prev + noise)))

    class Critic(nn.Module):
        def __init__(self):
            super().__init__()
            chans = [channels] + [width] * (LAYERS - 1)
            layers = []
            for i in range(LAYERS - 1):
                layers += [sn(nn.Conv2d(chans[i], chans[i + 1], 3)), nn.LeakyReLU(0.2)]
            layers.append(sn(nn.Conv2d(width, 1, 3)))
            self.net = nn.Sequential(*layers)

        def forward(self, x):
            return self.net(x)

    return Level, Critic


def widths_for(n_levels: int) -> list[int]:
    """32 channels at the coarse levels, 64 at the finest ones (more detail to model there)."""
    return [32 if i < n_levels - 2 else 64 for i in range(n_levels)]


class Pyramid:
    """The trained levels plus what generation needs (sizes of the training pyramid, noise amplitudes)."""

    def __init__(self, torch, channels: int, sizes, amps, widths, device):
        self.torch, self.channels, self.sizes, self.amps = torch, channels, [tuple(s) for s in sizes], list(amps)
        self.levels = torch.nn.ModuleList(build(torch, channels, wd)[0]() for wd in widths).to(device)
        self.device = device
        self.max_pixels = 1 << 20  # per strip at generation: ~1 GB of features at the widest levels

    def state_dict(self):
        return self.levels.state_dict()

    def load_state_dict(self, sd):
        self.levels.load_state_dict(sd)

    def generate(self, size, gen, upto: int | None = None):
        """An image (1, C, H, W) in [-1, 1] of `size` at the finest level (or level `upto`)."""
        torch = self.torch
        H, W = size
        n = len(self.levels) if upto is None else upto + 1
        eh, ew = self.sizes[-1]
        for lvl in self.levels[:n]:
            lvl.eval()
        x = None
        with torch.no_grad():
            for i in range(n):
                sh, sw = self.sizes[i]
                h, w = max(4, round(H * sh / eh)), max(4, round(W * sw / ew))
                prev = torch.zeros(1, self.channels, h, w, device=self.device) if x is None else \
                    fourier_resize(x, (h, w))
                z = torch.randn(1, self.channels, h, w, generator=gen).to(self.device)
                x = self._level(self.levels[i], prev, self.amps[i] * z)
        return x

    def _level(self, lvl, prev, noise):
        """One level; large canvases in strips of rows with a halo as wide as the level's field (exact: the
        level is local, only its wide intermediate features would not fit), wrapping like the level's padding."""
        torch = self.torch
        _, _, h, w = prev.shape
        rows = max(16, int(self.max_pixels // max(1, w)))
        if h <= rows:
            return lvl(prev, noise)
        m = LAYERS
        out = torch.empty_like(prev)
        for y0 in range(0, h, rows):
            y1 = min(h, y0 + rows)
            idx = torch.arange(y0 - m, y1 + m, device=prev.device) % h
            part = lvl(prev.index_select(2, idx), noise.index_select(2, idx))
            out[:, :, y0:y1] = part[:, :, m:m + y1 - y0]
        return out


TRAIN_MAX = 160  # px: the pyramid is trained on crops of at most this size (the scale is kept, not shrunk)


def train(ex: np.ndarray, *, steps: int = 4000, seed: int = 0, device="cpu", rep=None, recon_weight: float = 10.0,
          lr: float = 5e-4, d_steps: int = 1, crop: int = TRAIN_MAX):
    """Train the pyramid on `ex` (H, W, C) in [0, 1]; `steps` are spread over the levels. Returns (Pyramid, config).

    Each level trains on random crops of the exemplar at that level's scale, so a large photo costs no more
    than a `crop`-sized one; the reconstruction anchor is the exemplar's top-left crop.
    """
    import cv2

    torch = require_torch("the texture GAN")
    F = torch.nn.functional
    torch.manual_seed(int(seed))
    gen = torch.Generator().manual_seed(int(seed) + 1)
    C = ex.shape[2]
    EH, EW = ex.shape[:2]
    ch, cw = min(EH, int(crop)), min(EW, int(crop))
    sizes = level_sizes(ch, cw)
    n = len(sizes)
    widths = widths_for(n)
    reals = []  # the whole exemplar at each level's scale
    for h, w in sizes:
        size = (max(w, round(EW * w / cw)), max(h, round(EH * h / ch)))
        r = cv2.resize(ex, size, interpolation=cv2.INTER_AREA)
        r = r[:, :, None] if r.ndim == 2 else r
        reals.append(torch.from_numpy(np.ascontiguousarray(r.transpose(2, 0, 1)))[None].to(device) * 2 - 1)
    pyr = Pyramid(torch, C, sizes, [1.0] * n, widths, device)
    z_rec = torch.randn((1, C) + tuple(sizes[0]), generator=gen).to(device)
    per_level = max(1, int(steps) // n)
    total = per_level * n
    done = 0
    rec_prev, prev_critic = None, None
    for i in range(n):
        h, w = sizes[i]
        full = reals[i]
        anchor = full[:, :, :h, :w]
        G = pyr.levels[i]
        D = build(torch, C, widths[i])[1]().to(device)
        if i and widths[i] == widths[i - 1]:  # start from the coarser level: it already knows the texture
            G.load_state_dict(pyr.levels[i - 1].state_dict())
            if prev_critic is not None:
                D.load_state_dict(prev_critic.state_dict())
        with torch.no_grad():
            rec_in = torch.zeros_like(anchor) if i == 0 else fourier_resize(rec_prev, (h, w))
        # noise amplitude: as large as what the coarser levels get wrong at this scale (SinGAN's rule)
        amp = 1.0 if i == 0 else 0.1 * float(torch.sqrt(F.mse_loss(rec_in, anchor)))
        pyr.amps[i] = amp
        optG = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
        optD = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
        schG = torch.optim.lr_scheduler.MultiStepLR(optG, [int(per_level * 0.8)], 0.1)
        schD = torch.optim.lr_scheduler.MultiStepLR(optD, [int(per_level * 0.8)], 0.1)
        G.train()
        pad = LAYERS  # the critic sees the fake around its wrap: a circular pad as wide as its field
        for it in range(per_level):
            y0 = int(torch.randint(0, full.shape[2] - h + 1, (1,), generator=gen))
            x0 = int(torch.randint(0, full.shape[3] - w + 1, (1,), generator=gen))
            real = full[:, :, y0:y0 + h, x0:x0 + w]
            with torch.no_grad():
                prev = torch.zeros_like(real) if i == 0 else fourier_resize(
                    pyr.generate((ch, cw), gen, upto=i - 1), (h, w))
            z = torch.randn(real.shape, generator=gen).to(device) * amp
            fake = G(prev, z)
            fake_seen = F.pad(fake, (pad, pad, pad, pad), mode="circular")
            for _ in range(int(d_steps)):
                optD.zero_grad(set_to_none=True)
                loss_d = torch.relu(1 - D(real)).mean() + torch.relu(1 + D(fake_seen.detach())).mean()
                loss_d.backward()
                optD.step()
            optG.zero_grad(set_to_none=True)
            rec = G(rec_in, z_rec if i == 0 else torch.zeros_like(anchor))
            loss_g = -D(fake_seen).mean() + recon_weight * F.mse_loss(rec, anchor)
            loss_g.backward()
            optG.step()
            schG.step()
            schD.step()
            done += 1
            if rep is not None and (it % 5 == 0 or it == per_level - 1):
                rep(done / total, f"training texture GAN: level {i + 1}/{n}, step {done}/{total}")
        G.eval()
        with torch.no_grad():
            rec_prev = G(rec_in, z_rec if i == 0 else torch.zeros_like(anchor))
        prev_critic = D if i + 1 < n and widths[i + 1] == widths[i] else None
    config = {"sizes": [list(s) for s in sizes], "amps": pyr.amps, "widths": widths, "channels": C}
    return pyr, config


def load(torch, path, config: dict, device):
    from ..models.store import load_weights

    pyr = Pyramid(torch, int(config["channels"]), config["sizes"], config["amps"], config["widths"], device)
    expected = {k: tuple(v.shape) for k, v in pyr.state_dict().items()}
    pyr.load_state_dict(load_weights(path, expected=expected, what="texture GAN"))
    return pyr


def generate(pyr: Pyramid, size, *, seed: int, tileable: bool = True) -> np.ndarray:
    """(H, W, C) in [0, 1]: one pass through the pyramid with noise maps of the asked size."""
    torch = pyr.torch
    gen = torch.Generator().manual_seed(int(seed))
    H, W = size
    if not tileable:  # generate a wrapping field a little larger and crop: the crop does not wrap
        m = max(8, int(math.ceil(0.1 * max(H, W))))
        x = pyr.generate((H + m, W + m), gen)[:, :, :H, :W]
    else:
        x = pyr.generate((H, W), gen)
    out = ((x.clamp(-1, 1) + 1) / 2)[0].cpu().numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(out, dtype=np.float32)


def synthesize_gan(ex: np.ndarray, size, *, tileable: bool = True, seed: int = 0, device="auto", models_dir=None,
                   rep=None, steps: int = 4000, retrain: bool = False, **options) -> np.ndarray:
    """Generate with the stored pyramid for this exemplar, training (and storing) it first if needed.

    Options: `steps` (training steps over all levels), `crop` (training crop, px), `d_steps`, `lr`,
    `recon_weight`, `retrain`.
    """
    from ..errors import InputError
    from ..models.store import save_user_model

    opts = {k: options.pop(k) for k in OPTIONS if k in options}
    if options:
        raise InputError(f"texture method 'gan' has no option(s) {', '.join(sorted(options))}")
    from ..validate import check_steps

    check_steps(steps)
    torch = require_torch("the texture GAN")
    dev = resolve_device(device)
    path, meta = (None, None) if retrain else _stored(ex, models_dir)
    if path is not None and _current(meta):
        pyr = load(torch, path, meta["config"], dev)
        if rep is not None:
            rep(0.9, "using the stored texture GAN")
    else:
        sub = rep.sub(0.0, 0.9) if rep is not None else None
        if path is not None and sub is not None:
            sub(0.0, f"the stored texture GAN {path.name} is from an older version "
                     f"({(meta or {}).get('architecture', 'unknown')}); training a new one")
        pyr, config = train(ex, steps=steps, seed=seed, device=dev, rep=sub, **opts)
        save_user_model(pyr.state_dict(), model_name(ex), architecture=ARCHITECTURE,
                        trained_on=f"exemplar {ex.shape[1]}x{ex.shape[0]} sha {exemplar_key(ex)}",
                        extra={"channels": config["channels"], "steps": int(steps), "config": config},
                        models_dir_=models_dir)
    if rep is not None:
        rep(0.92, "generating the texture")
    return generate(pyr, size, seed=seed, tileable=tileable)
