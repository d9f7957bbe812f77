"""Gram-matrix texture synthesis (Gatys et al. 2015) with circular padding so the result tiles.

The encoder here is a small interface: anything with `features(x, circular) -> list[tensor]` works.
The built-in one is an offline, fixed-seed random-filter multi-scale network (random shallow CNNs carry
enough texture statistics for Gram synthesis, Ustyuzhaninov et al. 2016); the shared stylize encoders
(VGG19 when its weights are present) can be passed as `encoder=` once they expose the same call.
"""

from __future__ import annotations

import numpy as np

from ..core import require_torch, resolve_device
from ..stylize.gatys import gram


class RandomTextureEncoder:
    """Image pyramid x (3x3, 5x5, 7x7 random conv bank + a 3x3 mixing layer), ReLUs, fixed seed."""

    def __init__(self, channels: int = 3, width: int = 24, levels: int = 4, seed: int = 1234, device="cpu"):
        torch = require_torch("neural texture synthesis")
        g = torch.Generator().manual_seed(seed)
        self.levels = levels
        self.banks = []
        for k in (3, 5, 7):
            w = torch.randn(width, channels, k, k, generator=g) * (2.0 / (channels * k * k)) ** 0.5
            w -= w.mean(dim=(1, 2, 3), keepdim=True)  # zero-mean filters see structure, not brightness
            self.banks.append(w.to(device))
        c1 = 3 * width
        self.mix = (torch.randn(c1, c1, 3, 3, generator=g) * (2.0 / (c1 * 9)) ** 0.5).to(device)

    def features(self, x, circular: bool):
        """List of feature maps (B, C, h, w) over all pyramid levels."""
        torch = require_torch()
        F = torch.nn.functional
        mode = "circular" if circular else "reflect"
        out = []
        for level in range(self.levels):
            if level:
                if min(x.shape[-2:]) < 16:
                    break
                # binomial blur before subsampling: plain 2x2 pooling leaves a 2-pixel grid in the result
                k = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
                k = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
                x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), k, stride=2, groups=x.shape[1])
            maps = []
            for w in self.banks:
                p = w.shape[-1] // 2
                maps.append(F.conv2d(F.pad(x, (p, p, p, p), mode=mode), w))
            h1 = torch.relu(torch.cat(maps, 1))
            h2 = torch.relu(F.conv2d(F.pad(h1, (1, 1, 1, 1), mode=mode), self.mix))
            out += [h1, h2]
        return out


def match_histograms(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-channel sort-based histogram matching: exact colour distribution of the exemplar."""
    out = np.empty_like(img)
    for c in range(img.shape[2]):
        src = img[:, :, c].ravel()
        order = np.argsort(src, kind="stable")
        vals = np.sort(ref[:, :, c].ravel())
        idx = np.linspace(0, vals.size - 1, src.size).round().astype(np.int64)
        res = np.empty_like(src)
        res[order] = vals[idx]
        out[:, :, c] = res.reshape(img.shape[:2])
    return out


def _upsample(torch, x, size, periodic: bool):
    """Coarse level -> next size; Fourier resampling keeps a tileable image tileable (bilinear clamps edges)."""
    if not periodic:
        return torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    from scipy.signal import resample

    a = x.cpu().numpy()
    a = resample(resample(a, size[0], axis=2), size[1], axis=3)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(x.device)


def synthesize_neural(ex: np.ndarray, size, *, tileable: bool = True, seed: int = 0, device="auto", rep=None,
                      steps: int = 200, encoder=None, min_side: int = 128, **options) -> np.ndarray:
    """Optimise pixels so their Gram matrices match the exemplar's; coarse-to-fine for big outputs."""
    from ..errors import InputError

    if options:
        raise InputError(f"texture method 'neural' has no option(s) {', '.join(sorted(options))}")
    torch = require_torch("neural texture synthesis")
    dev = resolve_device(device)
    steps = max(1, int(steps))
    H, W = size
    C = ex.shape[2]
    enc = encoder or RandomTextureEncoder(channels=C, device=dev)
    with torch.no_grad():
        e = torch.from_numpy(ex.transpose(2, 0, 1)[None].copy()).to(dev) - 0.5
        # the exemplar does not wrap: its statistics come from mirrored borders
        targets = [gram(f) for f in enc.features(e, circular=False)]
    # pyramid of output sizes, coarsest first
    sizes = [(H, W)]
    while min(sizes[-1]) >= 2 * min_side:
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    sizes.reverse()
    g = torch.Generator().manual_seed(int(seed))
    x = None
    total = len(sizes) * steps
    done = 0
    mean = e.mean(dim=(2, 3), keepdim=True)
    for li, (h, w) in enumerate(sizes):
        if x is None:
            init = mean + 0.2 * torch.randn(1, C, h, w, generator=g).to(dev)
        else:
            init = _upsample(torch, x.detach(), (h, w), periodic=tileable)
        x = init.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=20)
        level_steps = max(2, steps // 4 ** li) if li else steps  # finer levels only refine

        def closure(x=x, opt=opt):
            opt.zero_grad()
            feats = enc.features(x, circular=tileable)
            loss = sum(((gram(f) - t) ** 2).sum() / (t * t).sum().clamp_min(1e-8) for f, t in zip(feats, targets))
            loss = loss + 10.0 * ((x.mean(dim=(2, 3), keepdim=True) - mean) ** 2).sum()
            loss.backward()
            return loss

        for s in range(level_steps):
            opt.step(closure)
            done += 1
            if rep is not None and (s % 5 == 0 or s == level_steps - 1):
                rep(done / total, f"neural texture {h}x{w}: step {s + 1}/{level_steps}")
    out = (x.detach() + 0.5).clamp(0, 1)[0].cpu().numpy().transpose(1, 2, 0)
    return match_histograms(out.astype(np.float32), ex)
