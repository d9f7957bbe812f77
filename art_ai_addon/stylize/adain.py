"""Arbitrary style in one pass (Huang & Belongie 2017, AdaIN).

Reads naoto0804/pytorch-AdaIN's `vgg_normalised.pth` (an nn.Sequential state_dict, keys `0.weight`,
`2.weight`, ...; the first layer is a 1x1 colour conversion, the rest reflection-padded 3x3 convs;
only the part up to relu4_1 is used) and `decoder.pth` (the mirrored decoder, keys `1.weight`, ...).
The content's relu4_1 features take the per-channel mean and spread of the style's; `strength` is
AdaIN's alpha; several styles mix their statistics with weights.
"""

from __future__ import annotations


import numpy as np

from ..core import require_torch
from ..errors import ModelError
from .tiles import FrozenNorms, forward_image

ENCODER_FILE = "vgg_normalised.pth"
DECODER_FILE = "decoder.pth"
_BYTES_PER_PIXEL = 1400

# layer lists: ("conv", cin, cout, k) with a reflection pad before 3x3, "relu", "pool", "up"
_ENC = [("conv", 3, 3, 1), ("conv", 3, 64, 3), "relu", ("conv", 64, 64, 3), "relu", "pool",
        ("conv", 64, 128, 3), "relu", ("conv", 128, 128, 3), "relu", "pool",
        ("conv", 128, 256, 3), "relu", ("conv", 256, 256, 3), "relu", ("conv", 256, 256, 3), "relu",
        ("conv", 256, 256, 3), "relu", "pool", ("conv", 256, 512, 3), "relu"]
_DEC = [("conv", 512, 256, 3), "relu", "up", ("conv", 256, 256, 3), "relu", ("conv", 256, 256, 3), "relu",
        ("conv", 256, 256, 3), "relu", ("conv", 256, 128, 3), "relu", "up", ("conv", 128, 128, 3), "relu",
        ("conv", 128, 64, 3), "relu", "up", ("conv", 64, 64, 3), "relu", ("conv", 64, 3, 3)]


def _sequential_keys(spec):
    """Key -> shape in the original nn.Sequential numbering (pads and pools take an index too)."""
    keys, idx = {}, 0
    for item in spec:
        if isinstance(item, tuple):
            _, cin, cout, k = item
            if k == 3:
                idx += 1  # the ReflectionPad2d before it
            keys[f"{idx}.weight"] = (cout, cin, k, k)
            keys[f"{idx}.bias"] = (cout,)
        idx += 1
    return keys


def encoder_shapes():
    return _sequential_keys(_ENC)


def decoder_shapes():
    return _sequential_keys(_DEC)


def _make_stack(spec, sd, nn, torch):
    """nn.ModuleList mirroring `spec`, filled from the state_dict `sd` in sequential numbering."""
    F = torch.nn.functional

    class Pad(nn.Module):
        def forward(self, x):
            return F.pad(x, (1, 1, 1, 1), mode="reflect")

    class Up(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2, mode="nearest")

    mods, idx = [], 0
    for item in spec:
        if isinstance(item, tuple):
            _, cin, cout, k = item
            if k == 3:
                mods.append(Pad())
                idx += 1
            conv = nn.Conv2d(cin, cout, k)
            with torch.no_grad():
                conv.weight.copy_(sd[f"{idx}.weight"].float())
                conv.bias.copy_(sd[f"{idx}.bias"].float())
            mods.append(conv)
        elif item == "relu":
            mods.append(nn.ReLU())
        elif item == "pool":
            mods.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            mods.append(Up())
        idx += 1
    return nn.Sequential(*mods)


def _load_checked(path, shapes, what):
    from ..models.store import load_weights

    return load_weights(path, expected=shapes, what=what)


def find_weights(encoder=None, decoder=None, models_dir=None):
    """(encoder path, decoder path), either None when absent."""
    from ..models.store import find

    enc = find(encoder, models_dir) if encoder else find(ENCODER_FILE, models_dir)
    dec = find(decoder, models_dir) if decoder else find(DECODER_FILE, models_dir)
    if encoder and enc is None:
        raise ModelError(f"encoder: {encoder} was not found (as a file or in the model store)")
    if decoder and dec is None:
        raise ModelError(f"decoder: {decoder} was not found (as a file or in the model store)")
    return enc, dec


def build(encoder_path, decoder_path):
    """(AdaINNet) with weights loaded and checked."""
    torch = require_torch("AdaIN")
    nn = torch.nn
    esd = _load_checked(encoder_path, encoder_shapes(), "AdaIN encoder")
    dsd = _load_checked(decoder_path, decoder_shapes(), "AdaIN decoder")

    class AdaINNet(nn.Module, FrozenNorms):
        multiple = 8

        def __init__(self):
            super().__init__()
            self.encoder = _make_stack(_ENC, esd, nn, torch)
            self.decoder = _make_stack(_DEC, dsd, nn, torch)
            self.adain = _AdaIN()
            self.target = None  # (mean, std) of the style features, mixed over styles
            self.alpha = 1.0

        def forward(self, x):
            f = self.encoder(x)
            t = self.adain(f, *(v.to(f.device) for v in self.target))
            t = self.alpha * t + (1.0 - self.alpha) * f
            return self.decoder(t)

    class _AdaIN(nn.Module):
        """Content features normalised to the style's statistics; the content's own can be frozen."""

        def __init__(self):
            super().__init__()
            self.stats_mode = "live"
            self.saved = None

        def forward(self, f, s_mean, s_std):
            if self.stats_mode == "frozen":
                mean, std = self.saved
            else:
                mean, std = _mean_std(f)
                if self.stats_mode == "record":
                    self.saved = (mean, std)
            return (f - mean) / std * s_std + s_mean

    net = AdaINNet()
    net.eval().requires_grad_(False)
    return net


def _mean_std(f, eps=1e-5):
    n, c = f.shape[:2]
    flat = f.float().reshape(n, c, -1)
    var = flat.var(dim=2, unbiased=True) + eps
    return flat.mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def adain(content: np.ndarray, styles: list, *, style_weights=None, strength: float = 1.0, encoder=None,
          decoder=None, models_dir=None, device=None, memory_mb: float = 4096, tile=None, overlap: int = 32,
          half: bool = True, style_size: int = 512, rep=None) -> np.ndarray:
    from ._util import fit_long_side, to_numpy, to_tensor
    from .fast import _pad_to

    torch = require_torch("AdaIN")
    enc_p, dec_p = find_weights(encoder, decoder, models_dir)
    if enc_p is None or dec_p is None:
        missing = ENCODER_FILE if enc_p is None else DECODER_FILE
        raise ModelError(f"adain: {missing} is not in the model store; import pytorch-AdaIN's {ENCODER_FILE} and "
                         f"{DECODER_FILE} (`python -m art_ai_addon models import PATH`) or use method 'gatys'")
    net = build(enc_p, dec_p).to(device)
    weights = np.asarray(style_weights if style_weights is not None else [1.0] * len(styles), dtype=np.float64)
    weights = weights / weights.sum()
    means, stds = 0.0, 0.0
    with torch.inference_mode():
        for sty, wt in zip(styles, weights, strict=True):
            s = sty if max(sty.shape[:2]) <= style_size else fit_long_side(sty, style_size)
            m, sd = _mean_std(net.encoder(to_tensor(s, device)))
            means, stds = means + float(wt) * m, stds + float(wt) * sd
    net.target = (means, stds)
    net.alpha = float(np.clip(strength, 0.0, 1.0))
    if rep is not None:
        rep(0.2, "AdaIN")
    x, h, w = _pad_to(to_tensor(content, "cpu"), net.multiple)
    if tile is not None:
        tile = max(64, int(tile) // 8 * 8)
    max_pixels = int(memory_mb * 1024 * 1024 / _BYTES_PER_PIXEL)
    y, _ = forward_image(net, x, device=device, max_pixels=max_pixels, tile=tile, overlap=overlap, half=half)
    return to_numpy(y[:, :, :h, :w])
