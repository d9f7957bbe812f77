"""Periodic spatial GAN (after SGAN / PSGAN, Jetchev & Bergmann 2016-17) trained on one exemplar.

The generator is fully convolutional with circular padding and is fed a spatial noise field: local i.i.d.
noise plus plane waves sin(k . p + phase) with learned wave vectors. At generation time the wave vectors are
rounded so a whole number of periods fits the field, so any output size tiles and is one forward pass.
The discriminator is a patch discriminator on random crops. A small Gram-matrix term (the neural method's
random encoder) is added to the adversarial loss so a few hundred CPU steps already give a usable texture.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from ..core import require_torch, resolve_device

ARCHITECTURE = "art_ai.texture.psgan.v1"
LOCAL = 20  # i.i.d. noise channels
WAVES = 8  # periodic channels
UP = 4  # upsampling stages: noise field is 1/16 of the output
WIDTHS = (128, 64, 32, 16)


def exemplar_key(ex: np.ndarray) -> str:
    """Name part that identifies an exemplar: hash of its 8-bit pixels and shape."""
    q = np.round(np.clip(ex, 0, 1) * 255).astype(np.uint8)
    h = hashlib.sha256(str(q.shape).encode() + q.tobytes()).hexdigest()
    return h[:16]


def model_name(ex: np.ndarray) -> str:
    return f"texture_gan_{exemplar_key(ex)}"


def find_trained(ex: np.ndarray, models_dir=None):
    """Path of a generator trained on exactly this exemplar, or None."""
    from ..models.store import find

    return find(model_name(ex), models_dir)


def _build(torch, channels: int):
    nn = torch.nn
    F = nn.functional

    class Up(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="circular")
            # batch statistics at training and generation alike (no running averages): one big generated
            # image has plenty of pixels for its own statistics
            self.norm = nn.BatchNorm2d(cout, track_running_stats=False)

        def forward(self, x):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            return F.leaky_relu(self.norm(self.conv(x)), 0.2)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.waves = nn.Parameter(torch.randn(WAVES, 2) * 0.8)
            chans = (LOCAL + WAVES,) + WIDTHS
            self.ups = nn.ModuleList(Up(chans[i], chans[i + 1]) for i in range(UP))
            self.out = nn.Conv2d(WIDTHS[-1], channels, 3, padding=1, padding_mode="circular")

        def field(self, b, h, w, gen, device, quantise: bool):
            z = torch.randn(b, LOCAL, h, w, generator=gen).to(device)
            phase = (torch.rand(b, WAVES, 1, 1, generator=gen) * 2 * math.pi).to(device)
            k = self.waves
            if quantise:  # whole periods across the field: the generated image wraps
                ky = torch.round(k[:, 0] * h / (2 * math.pi)) * 2 * math.pi / h
                kx = torch.round(k[:, 1] * w / (2 * math.pi)) * 2 * math.pi / w
            else:
                ky, kx = k[:, 0], k[:, 1]
            yy = torch.arange(h, device=device, dtype=torch.float32).view(1, 1, h, 1)
            xx = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, 1, w)
            s = torch.sin(ky.view(1, -1, 1, 1) * yy + kx.view(1, -1, 1, 1) * xx + phase)
            return torch.cat([z, s], 1)

        def forward(self, z):
            x = z
            for up in self.ups:
                x = up(x)
            return torch.sigmoid(self.out(x))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            sn = nn.utils.spectral_norm
            self.net = nn.Sequential(
                sn(nn.Conv2d(channels, 32, 4, 2, 1)), nn.LeakyReLU(0.2),
                sn(nn.Conv2d(32, 64, 4, 2, 1)), nn.LeakyReLU(0.2),
                sn(nn.Conv2d(64, 128, 4, 2, 1)), nn.LeakyReLU(0.2),
                sn(nn.Conv2d(128, 1, 3, 1, 1)),
            )

        def forward(self, x):
            return self.net(x * 2 - 1)

    return Generator, Discriminator


def train(ex: np.ndarray, *, steps: int = 1500, seed: int = 0, device="cpu", rep=None, batch: int = 4,
          crop: int = 64, gram_weight: float = 1.0):
    """Train a generator on random crops of `ex` (H, W, C); returns the generator module."""
    torch = require_torch("the texture GAN")
    from .neural import RandomTextureEncoder, gram

    dev = resolve_device(device) if isinstance(device, str) else device
    torch.manual_seed(int(seed))
    C = ex.shape[2]
    Gcls, Dcls = _build(torch, C)
    G, D = Gcls().to(dev), Dcls().to(dev)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.99))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.99))
    H, W = ex.shape[:2]
    crop = int(max(16, min(crop, H, W)) // 16 * 16)
    field = crop * 2 // 16  # generated images twice the crop: the wrap period never shows inside a crop
    exemplar = torch.from_numpy(ex.transpose(2, 0, 1)[None].copy()).to(dev)
    enc = RandomTextureEncoder(channels=C, device=dev, levels=3, width=12)
    with torch.no_grad():
        targets = [gram(f) for f in enc.features(exemplar - 0.5, circular=False)]
    gen = torch.Generator().manual_seed(int(seed) + 1)
    steps = max(1, int(steps))
    for step in range(steps):
        ys = torch.randint(0, H - crop + 1, (batch,), generator=gen).tolist()
        xs = torch.randint(0, W - crop + 1, (batch,), generator=gen).tolist()
        real = torch.cat([exemplar[:, :, y:y + crop, x:x + crop] for y, x in zip(ys, xs)], 0)
        fake_full = G(G.field(batch, field, field, gen, dev, quantise=False))
        oy, ox = torch.randint(0, crop + 1, (2,), generator=gen).tolist()
        fake = fake_full[:, :, oy:oy + crop, ox:ox + crop]
        # discriminator (hinge loss)
        optD.zero_grad()
        loss_d = torch.relu(1 - D(real)).mean() + torch.relu(1 + D(fake.detach())).mean()
        loss_d.backward()
        optD.step()
        # generator: adversarial + Gram statistics of a few generated crops
        optG.zero_grad()
        loss_g = -D(fake).mean()
        if gram_weight > 0:
            feats = enc.features(fake[:4] - 0.5, circular=False)
            gl = sum(((gram(f) - t) ** 2).sum() / (t * t).sum().clamp_min(1e-8) / f.shape[0]
                     for f, t in zip(feats, targets))
            loss_g = loss_g + gram_weight * gl
        loss_g.backward()
        optG.step()
        if rep is not None and (step % 5 == 0 or step == steps - 1):
            rep((step + 1) / steps, f"training texture GAN: step {step + 1}/{steps}")
    return G


def load(path, channels: int, device):
    torch = require_torch("the texture GAN")
    from ..models.store import load_weights

    Gcls, _ = _build(torch, channels)
    G = Gcls()
    expected = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    G.load_state_dict(load_weights(path, expected=expected, what="texture GAN"))
    return G.to(device)


def generate(G, size, *, seed: int, device, tileable: bool = True):
    """One forward pass for any size; the noise field is rounded up to a multiple of 16 and cropped."""
    torch = require_torch("the texture GAN")
    H, W = size
    h, w = math.ceil(H / 16), math.ceil(W / 16)
    gen = torch.Generator().manual_seed(int(seed))
    G.eval()
    with torch.no_grad():
        z = G.field(1, h, w, gen, device, quantise=tileable)
        out = G(z)[0].cpu().numpy().transpose(1, 2, 0)
    if tileable and (h * 16 != H or w * 16 != W):
        import cv2

        # the field wraps at its own size: resample the wrapped image to the asked size
        out = cv2.resize(out, (W, H), interpolation=cv2.INTER_AREA)
        if out.ndim == 2:
            out = out[:, :, None]
    return np.ascontiguousarray(out[:H, :W], dtype=np.float32)


def synthesize_gan(ex: np.ndarray, size, *, tileable: bool = True, seed: int = 0, device="auto", models_dir=None,
                   rep=None, steps: int = 1500, retrain: bool = False, **options) -> np.ndarray:
    """Generate with the stored generator for this exemplar, training (and storing) it first if needed."""
    from ..errors import InputError
    from ..models.store import save_user_model

    opts = {k: options.pop(k) for k in ("batch", "crop", "gram_weight") if k in options}
    if options:
        raise InputError(f"texture method 'gan' has no option(s) {', '.join(sorted(options))}")
    dev = resolve_device(device)
    C = ex.shape[2]
    path = None if retrain else find_trained(ex, models_dir)
    if path is not None:
        G = load(path, C, dev)
        if rep is not None:
            rep(0.9, "using the stored texture GAN")
    else:
        G = train(ex, steps=steps, seed=seed, device=dev, rep=rep.sub(0.0, 0.9) if rep else None, **opts)
        save_user_model(G.state_dict(), model_name(ex), architecture=ARCHITECTURE,
                        trained_on=f"exemplar {ex.shape[1]}x{ex.shape[0]} sha {exemplar_key(ex)}",
                        extra={"channels": C, "steps": int(steps)}, models_dir_=models_dir)
    return generate(G, size, seed=seed, device=dev, tileable=tileable)
