"""Real-ESRGAN's two generators as our own torch modules (imported only where torch is).

RRDBNet follows ESRGAN (Wang et al. 2018) as Real-ESRGAN's x4plus models use it: conv_first, `num_block`
residual-in-residual dense blocks (three 5-conv dense blocks each, outputs scaled by 0.2 before the skip),
conv_body added to conv_first's features, two (nearest 2x + conv + leaky ReLU 0.2) upsamplings, conv_hr, conv_last.
SRVGGNetCompact (Real-ESRGAN's realesr-animevideov3): a plain stack of 3x3 convs with per-channel PReLU, a pixel
shuffle, plus the nearest-upsampled input. Parameter names are the state_dict keys ncnn.read_bin produces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ncnn import ARCHITECTURES


class _RDB(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        for i in range(5):
            setattr(self, f"conv{i + 1}", nn.Conv2d(nf + i * gc, nf if i == 4 else gc, 3, 1, 1))

    def forward(self, x):
        feats = [x]
        for i in range(4):
            feats.append(F.leaky_relu_(getattr(self, f"conv{i + 1}")(torch.cat(feats, 1)), 0.2))
        return torch.add(x, self.conv5(torch.cat(feats, 1)), alpha=0.2)


class _RRDB(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = _RDB(nf, gc), _RDB(nf, gc), _RDB(nf, gc)

    def forward(self, x):
        return torch.add(x, self.rdb3(self.rdb2(self.rdb1(x))), alpha=0.2)


class RRDBNet(nn.Module):
    scale = 4

    def __init__(self, num_block: int = 23, num_feat: int = 64, num_grow: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(_RRDB(num_feat, num_grow) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x):
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu_(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu_(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu_(self.conv_hr(feat), 0.2))


class SRVGGNetCompact(nn.Module):
    def __init__(self, num_conv: int = 16, num_feat: int = 64, scale: int = 4):
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, 3 * scale * scale, 3, 1, 1))
        self.body = nn.Sequential(*layers)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x):
        out = self.upsampler(self.body(x))
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def build(architecture: str, state: dict) -> nn.Module:
    """The module for `architecture` with `state` (numpy arrays from ncnn.read_bin) loaded, in eval mode."""
    cfg = ARCHITECTURES[architecture]
    net: nn.Module
    if cfg["kind"] == "rrdb":
        net = RRDBNet(cfg["num_block"], cfg["num_feat"], cfg["num_grow"])
    else:
        net = SRVGGNetCompact(cfg["num_conv"], cfg["num_feat"], cfg["scale"])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return net.eval().requires_grad_(False)
