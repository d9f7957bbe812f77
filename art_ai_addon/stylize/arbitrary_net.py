"""The torch modules of Magenta's arbitrary-style networks, built from the tensors arbitrary_graph.read_onnx gives.

Imported only by the functions that run the method (arbitrary.build), so torch comes in with it (and a missing
torch says how to get it); importing the add-on never imports this module.
"""

from __future__ import annotations

from ..core import require_torch
from .arbitrary_graph import (
    BETA, CONTRACT, EPS, EXPAND, GAMMA, MB_BLOCKS, MULTIPLE, RESIDUAL, STYLE_DIM, STYLE_HEAD, UPSAMPLE, mb_block,
    norm_key,
)
from .tiles import FrozenNorms

torch = require_torch("the arbitrary style method")
nn = torch.nn
F = torch.nn.functional


def make_conv(params, key):
    """An nn.Conv2d holding conv `key` of `params`, and its explicit zero padding (F.pad order: l, r, t, b)."""
    w = torch.as_tensor(params[f"{key}|weight"]).float()
    a = [int(v) for v in torch.as_tensor(params[f"{key}|conv"]).tolist()]
    conv = nn.Conv2d(w.shape[1] * a[6], w.shape[0], tuple(w.shape[2:]), stride=(a[0], a[1]), groups=a[6], bias=True)
    with torch.no_grad():
        conv.weight.copy_(w)
        b = params.get(f"{key}|bias")
        conv.bias.copy_(torch.as_tensor(b).float() if b is not None else torch.zeros(w.shape[0]))
    return conv, (a[3], a[5], a[2], a[4])


class ZeroPadConv(nn.Module):
    """A conv with TF 'SAME' zero padding as the graph gives it, optionally followed by ReLU6."""

    def __init__(self, params, key, act):
        super().__init__()
        self.conv, self.pads = make_conv(params, key)
        self.act = act

    def forward(self, x):
        if any(self.pads):
            x = F.pad(x, self.pads)
        x = self.conv(x)
        return F.hardtanh(x, 0.0, 6.0) if self.act else x


class Predictor(nn.Module):
    """MobileNetV2 (TF 'SAME' padding as the graph gives it) -> global mean -> 1x1 conv: the style vector."""

    def __init__(self, params):
        super().__init__()
        self.stem = ZeroPadConv(params, "MobilenetV2/Conv", True)
        self.blocks = nn.ModuleList()
        for i in range(MB_BLOCKS):
            b = mb_block(i)
            layers = ([ZeroPadConv(params, f"{b}/expand", True)] if i else []) + [
                ZeroPadConv(params, f"{b}/depthwise", True), ZeroPadConv(params, f"{b}/project", False)]
            self.blocks.append(nn.Sequential(*layers))
        self.head = ZeroPadConv(params, "MobilenetV2/Conv_1", True)
        self.bottleneck = ZeroPadConv(params, STYLE_HEAD, False)

    def features(self, x, upto: int = MB_BLOCKS):
        """The activations after the stem and after each of the first `upto` inverted residual blocks."""
        x = self.stem(x)
        feats = [x]
        for block in self.blocks[:upto]:
            y = block(x)
            x = x + y if y.shape == x.shape else y  # MobileNetV2's residual where stride 1 and widths agree
            feats.append(x)
        return feats

    def forward(self, x):
        x = self.features(x)[-1]
        x = self.head(x).mean(dim=(2, 3), keepdim=True)
        return self.bottleneck(x).flatten(1)


def _linear_of(params, key: str):
    """The 1x1 conv `key` of the style vector as an nn.Linear."""
    w = torch.as_tensor(params[f"{key}|weight"]).float()
    lin = nn.Linear(STYLE_DIM, w.shape[0])
    b = params.get(f"{key}|bias")
    with torch.no_grad():
        lin.weight.copy_(w[:, :, 0, 0])
        lin.bias.copy_(torch.as_tensor(b).float() if b is not None else torch.zeros(w.shape[0]))
    return lin


# below this many channels, group norm on an NHWC tensor parallelises over the channels alone: the network's last
# norm (3 channels at 576x324) took 4.2 ms there, against 0.6 ms as sums over the pixel rows and one multiply-add
FEW_CHANNELS = 8


def _few_channel_norm(x, gamma, beta):
    """Instance norm with scale `gamma` and shift `beta` of an NHWC float32 (1, C, H, W) with few channels; the
    sums in float64 (E[x^2] - E[x]^2 loses nothing then)."""
    c = x.shape[1]
    rows = x.permute(0, 2, 3, 1).reshape(-1, c)
    mean = rows.sum(0, dtype=torch.float64) / rows.shape[0]
    var = (rows * rows).sum(0, dtype=torch.float64) / rows.shape[0] - mean * mean
    scale = torch.rsqrt(var.clamp_min(0.0) + EPS) * gamma.double()
    shift = beta.double() - mean * scale
    return torch.addcmul(shift.float().view(1, c, 1, 1), x, scale.float().view(1, c, 1, 1))


class StyleNorm(nn.Module):
    """Conditional instance norm: per-channel scale and shift are 1x1 convs (linear maps) of the style vector.

    The scale and shift of a style vector are computed once (kept until another vector comes) and folded with
    the statistics into one multiply-add over the activations (inference only). `stats_mode` (FrozenNorms):
    "live" normalises by the input's own statistics, "record" also saves them, "frozen" uses the saved ones."""

    def __init__(self, params, key):
        super().__init__()
        self.beta = _linear_of(params, norm_key(key, BETA))
        self.gamma = _linear_of(params, norm_key(key, GAMMA))
        self.stats_mode = "live"
        self.saved = None
        self._affine = None  # (the style tensor they were computed from, gamma, beta); vectors are not edited

    def affine(self, style):
        memo = self._affine
        if memo is None or memo[0] is not style:
            s = style.float()
            memo = (style, self.gamma(s)[:, :, None, None], self.beta(s)[:, :, None, None])
            self._affine = memo
        return memo[1], memo[2]

    def _stats(self, x):
        if self.stats_mode == "frozen":
            return self.saved
        var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
        if self.stats_mode == "record":
            self.saved = (mean, var)
        return mean, var

    def forward(self, x, style):
        gamma, beta = self.affine(style)
        if x.shape[0] == 1:  # one image: one fused kernel (group norm with a group per channel; batch norm)
            g, b = gamma.flatten(), beta.flatten()
            if self.stats_mode == "live" and x.shape[1] < FEW_CHANNELS and x.dtype == torch.float32 \
                    and x.is_contiguous(memory_format=torch.channels_last):
                return _few_channel_norm(x, g, b)
            if self.stats_mode == "live":
                return F.group_norm(x, x.shape[1], g.to(x.dtype), b.to(x.dtype), EPS)
            mean, var = self._stats(x)
            return F.batch_norm(x, mean.flatten(), var.flatten(), g, b, False, 0.0, EPS)
        mean, var = self._stats(x)
        scale = torch.rsqrt(var + EPS) * gamma
        return x * scale.to(x.dtype) + (beta - mean * scale).to(x.dtype)


# nearest 2x upsampling, reflection pad 1 and a 3x3 conv are, per output phase (row parity a, column parity b),
# a 2x2 conv of the small input padded by replication: TAPS[a] maps the 3 kernel rows onto the 2 input rows
TAPS = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def interleave_phases(z, n: int, c: int, h: int, w: int):
    """(n, 4c, h+1, w+1) phase-major outputs of the four 2x2 convs -> the (n, c, 2h, 2w) image they make."""
    if z.is_contiguous(memory_format=torch.channels_last) and not z.is_contiguous():
        zl = z.permute(0, 2, 3, 1).view(n, h + 1, w + 1, 4, c)  # NHWC: interleave in that layout
        out = z.new_empty((n, h, 2, w, 2, c))
        for p, (a, b) in enumerate(PHASES):
            out[:, :, a, :, b] = zl[:, a:a + h, b:b + w, p]
        return out.view(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)
    z = z.view(n, 4, c, h + 1, w + 1)
    out = z.new_empty((n, c, h, 2, w, 2))
    for p, (a, b) in enumerate(PHASES):
        out[:, :, :, a, :, b] = z[:, p, :, a:a + h, b:b + w]
    return out.view(n, c, 2 * h, 2 * w)


class ReflectConv(nn.Module):
    """Reflection-padded conv, optionally after a nearest `up`x upsample (done as four phase convs when 2x)."""

    def __init__(self, params, key, up=1):
        super().__init__()
        self.conv, _ = make_conv(params, key)
        self.pad = self.conv.kernel_size[0] // 2
        self.up = up
        self._phases = None

    def phase_weights(self):
        """The four 2x2 phase kernels stacked into one conv of 4 x out_channels (phase-major)."""
        w = self.conv.weight
        key = (w.data_ptr(), w._version, w.device, w.dtype)
        if self._phases is None or self._phases[0] != key:
            t = torch.tensor(TAPS, dtype=w.dtype, device=w.device)
            ks = [torch.einsum("pk,oikl,ql->oipq", t[a], w, t[b]) for a in (0, 1) for b in (0, 1)]
            fmt = torch.channels_last if w.is_contiguous(memory_format=torch.channels_last) else \
                torch.contiguous_format
            self._phases = (key, torch.cat(ks).contiguous(memory_format=fmt), self.conv.bias.repeat(4))
        return self._phases[1], self._phases[2]

    def forward(self, x):
        if self.up == 2 and self.pad == 1 and not torch.is_grad_enabled():
            n, _, h, w = x.shape
            wk, bias = self.phase_weights()
            z = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), wk.to(x.dtype), bias.to(x.dtype))
            return interleave_phases(z, n, self.conv.out_channels, h, w)
        if self.up > 1:
            x = F.interpolate(x, scale_factor=self.up, mode="nearest")
        return self.conv(F.pad(x, (self.pad,) * 4, mode="reflect"))


class Transformer(nn.Module, FrozenNorms):
    """Contract (folded batch norm + ReLU), 5 residual blocks and expand, each conv with a StyleNorm."""

    multiple = MULTIPLE

    def __init__(self, params):
        super().__init__()
        self.contract = nn.ModuleList(ReflectConv(params, k) for k in CONTRACT)
        self.res = nn.ModuleList(ReflectConv(params, k) for k in RESIDUAL)
        self.res_norm = nn.ModuleList(StyleNorm(params, k) for k in RESIDUAL)
        self.expand = nn.ModuleList(ReflectConv(params, k, u) for k, u in zip(EXPAND, UPSAMPLE, strict=True))
        self.expand_norm = nn.ModuleList(StyleNorm(params, k) for k in EXPAND)
        self.style = None  # (1, 100) style vector, set before running

    def forward(self, x, style=None):
        s = self.style if style is None else style
        s = s if s.device == x.device else s.to(x.device)
        inplace = not torch.is_grad_enabled()  # every tensor below is one this forward made
        for conv in self.contract:
            x = F.relu(conv(x), inplace=inplace)
        for i in range(0, len(self.res), 2):
            h = F.relu(self.res_norm[i](self.res[i](x), s), inplace=inplace)
            y = self.res_norm[i + 1](self.res[i + 1](h), s)
            x = x.add_(y) if inplace else x + y
        for i, conv in enumerate(self.expand):
            x = self.expand_norm[i](conv(x), s)
            if i < len(self.expand) - 1:
                x = F.relu(x, inplace=inplace)
        return x.sigmoid_() if inplace else torch.sigmoid(x)
