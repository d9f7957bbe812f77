"""The torch modules of Magenta's arbitrary-style networks, built from the tensors arbitrary_graph.read_onnx gives.

Imported only by the functions that run the method (arbitrary.build), so torch comes in with it (and a missing
torch says how to get it); importing the add-on never imports this module.

The transformer's first two convs and its last two layers see 3 to 32 channels at full resolution, where a CPU conv
is memory-bound and slow; at inference they run on 2x2 blocks (space-to-depth) at half resolution, with the same
weights rearranged, and the full-resolution picture before the last conv is never made (Transformer.blocks_ok says
when; the plain layers are the reference and are used for training and odd sizes).
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

    def scale_shift(self, style, stats):
        """The per-channel (scale, shift) that normalise one image whose (mean, var) per channel `stats()` gives
        (called only when the mode needs them): for layouts the other paths do not take."""
        gamma, beta = self.affine(style)
        if self.stats_mode == "frozen":
            mean, var = (t.flatten() for t in self.saved)
        else:
            mean, var = stats()
            if self.stats_mode == "record":
                self.saved = (mean.view(1, -1, 1, 1), var.view(1, -1, 1, 1))
        scale = torch.rsqrt(var + EPS) * gamma.flatten()
        return scale, beta.flatten() - mean * scale

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


# Space-to-depth (s2d): a full-resolution picture as its 2x2 blocks, (n, C, H, W) -> (n, 4C, H/2, W/2) with the
# channels in (row parity, column parity, channel) order. A 9x9 conv with few channels (3->8 in, 8->3 out) runs
# on the blocks as one 5x5 conv of 4x the channels (each output parity its own channels): about a third more
# multiplies, but oneDNN vectorises 12-32 channels where it cannot 3 or 8, so 2-3x faster (576x324 on 2 cores:
# 4.4 -> 2.2 ms in, 11 -> 4.5 ms out). The first stride-2 conv then reads the blocks directly (its reflection pad
# of 1 is a replication of the first block row and column there), so the first layer's output never goes back to
# full resolution.


def reflect_pad_nhwc(x, p: int):
    """F.pad(x, (p,) * 4, mode="reflect") of an NHWC tensor, as slice copies (torch's kernel takes 4x as long on
    these few-channel NHWC pictures)."""
    n, c, h, w = x.shape
    v = x.permute(0, 2, 3, 1)
    out = v.new_empty((n, h + 2 * p, w + 2 * p, c))
    out[:, p:p + h, p:p + w] = v
    out[:, :p, p:p + w] = v[:, 1:p + 1].flip(1)
    out[:, p + h:, p:p + w] = v[:, h - p - 1:h - 1].flip(1)
    out[:, :, :p] = out[:, :, p + 1:2 * p + 1].flip(2)
    out[:, :, p + w:] = out[:, :, w - 1:w + p - 1].flip(2)
    return out.permute(0, 3, 1, 2)


def to_blocks(x):
    """NHWC (n, C, H, W), H and W even -> NHWC (n, 4C, H/2, W/2) in (p, q, c) channel order."""
    n, c, h, w = x.shape
    m = x.permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5)
    return m.reshape(n, h // 2, w // 2, 4 * c).permute(0, 3, 1, 2)


def from_blocks(y, c: int):
    """NHWC (n, 4C, h, w) in (a, b, c) channel order -> NHWC (n, C, 2h, 2w)."""
    n, _, h, w = y.shape
    m = y.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, c).permute(0, 1, 3, 2, 4, 5)
    return m.reshape(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)


def blocks_kernel(w, stride: int):
    """The kernel on blocks of the conv with weights `w` (O, C, k, k), k odd, applied with reflection pad k // 2:
    stride 1 -> ((k + 1) / 2)^2 taps, 4C in, 4O out, on the blocks of the padded input; stride 2 (k == 3) -> 2x2
    taps, 4C in, O out, on the blocks padded by one replicated block above and to the left."""
    o, c, k, _ = w.shape
    if stride == 1:
        kt = (k + 1) // 2
        out = w.new_zeros((2, 2, o, 2, 2, c, kt, kt))  # a, b, o, p, q, c, di, dj
        for a in (0, 1):
            for b in (0, 1):
                for p in (0, 1):
                    for q in (0, 1):
                        for di in range(kt):
                            u = 2 * di + p - a
                            for dj in range(kt):
                                v = 2 * dj + q - b
                                if 0 <= u < k and 0 <= v < k:
                                    out[a, b, :, p, q, :, di, dj] = w[:, :, u, v]
        return out.reshape(4 * o, 4 * c, kt, kt)
    out = w.new_zeros((o, 2, 2, c, 2, 2))  # o, p, q, c, di, dj
    tap = ((0, 1), (1, 0), (1, 1))  # kernel row u of rows 2i-1, 2i, 2i+1 -> (block offset, parity)
    for u, (di, p) in enumerate(tap):
        for v, (dj, q) in enumerate(tap):
            out[:, p, q, :, di, dj] = w[:, :, u, v]
    return out.reshape(o, 4 * c, 2, 2)


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
        self._blocks = None

    def blocks_weights(self):
        """(first conv's kernel and bias, second's, last's) on blocks, made once per set of weights."""
        convs = (self.contract[0].conv, self.contract[1].conv, self.expand[-1].conv)
        key = tuple((c.weight.data_ptr(), c.weight._version, c.weight.device, c.weight.dtype) for c in convs)
        if self._blocks is None or self._blocks[0] != key:
            cl = torch.channels_last
            made = [(blocks_kernel(c.weight, st).contiguous(memory_format=cl), c.bias.repeat(4) if st == 1 else c.bias)
                    for c, st in zip(convs, (1, 2, 1), strict=True)]
            self._blocks = (key, made)
        return self._blocks[1]

    def blocks_ok(self, x) -> bool:
        """The blocks path: inference on an NHWC picture of even size, with the layers it is made for."""
        c0, c1, last = self.contract[0].conv, self.contract[1].conv, self.expand[-1].conv
        up = self.expand[-2]
        return (not torch.is_grad_enabled() and up.up == 2 and up.pad == 1 and self.expand[-1].pad % 2 == 0
                and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
                and x.is_contiguous(memory_format=torch.channels_last) and self.expand[-1].up == 1
                and c0.stride == (1, 1) and last.stride == (1, 1) and c1.stride == (2, 2) and c1.kernel_size == (3, 3)
                and c0.kernel_size[0] % 2 == 1 and last.kernel_size[0] % 2 == 1
                and min(x.shape[2:]) > max(c0.kernel_size[0], last.kernel_size[0]) // 2)

    def _last_on_blocks(self, x, s, k2, b2):
        """The last upsampling layer, its norm and ReLU, and the last conv, at half resolution on blocks: the
        upsampling's four phase outputs are the blocks of its full-resolution output, so they go straight into the
        reflection-padded blocks the last conv reads (the full-resolution picture is never made, nor padded, nor
        cut into blocks: three copies of it less). Returns the last conv's full-resolution output, before its norm.
        """
        up, norm, conv = self.expand[-2], self.expand_norm[-2], self.expand[-1]
        n, _, h, w = x.shape
        c, p = up.conv.out_channels, conv.pad // 2  # the pad in blocks (conv.pad is even: checked by blocks_ok)
        wk, bias = up.phase_weights()
        z = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), wk.to(x.dtype), bias.to(x.dtype))
        zl = z.permute(0, 2, 3, 1).view(n, h + 1, w + 1, 4, c)
        blk = z.new_empty((n, h + 2 * p, w + 2 * p, 2, 2, c))
        for k, (a, b) in enumerate(PHASES):
            blk[:, p:p + h, p:p + w, a, b] = zl[:, a:a + h, b:b + w, k]
        # the full-resolution reflection, in blocks: parity 0 rows reflect about the first block row, parity 1 rows
        # about the edge between blocks (and the mirror of that at the far side); the same for columns
        for a in (0, 1):
            top = torch.arange(p) if a else torch.arange(1, p + 1)  # distance-1 of each border row from the edge
            rows = blk[:, :, :, a]
            rows[:, p - 1 - torch.arange(p)] = rows[:, p + top]
            bottom = torch.arange(1, p + 1) if a else torch.arange(p)
            rows[:, p + h + torch.arange(p)] = rows[:, p + h - 1 - bottom]
        for b in (0, 1):
            left = torch.arange(p) if b else torch.arange(1, p + 1)
            cols = blk[:, :, :, :, b]
            cols[:, :, p - 1 - torch.arange(p)] = cols[:, :, p + left]
            right = torch.arange(1, p + 1) if b else torch.arange(p)
            cols[:, :, p + w + torch.arange(p)] = cols[:, :, p + w - 1 - right]

        def stats():  # over each phase's valid part of z: all of z less its one spare row and column
            shift = zl.reshape(-1, 4 * c).float().mean(0).view(4, c).mean(0)  # about the mean: no cancellation

            def sums(t):
                r = t.reshape(-1, 4, c).float() - shift
                return torch.stack([r.sum(0), (r * r).sum(0)])

            total, rows, cols = sums(zl), (sums(zl[:, 0]), sums(zl[:, h])), (sums(zl[:, :, 0]), sums(zl[:, :, w]))
            corner = [[sums(zl[:, i, j]) for j in (0, w)] for i in (0, h)]
            valid = torch.stack([total[:, k] - rows[1 - a][:, k] - cols[1 - b][:, k] + corner[1 - a][1 - b][:, k]
                                 for k, (a, b) in enumerate(PHASES)], dim=1).sum(1) / float(4 * n * h * w)
            return valid[0] + shift, (valid[1] - valid[0] * valid[0]).clamp_min(0.0)

        scale, shift = norm.scale_shift(s, stats)
        torch.addcmul(shift.to(blk.dtype), blk, scale.to(blk.dtype), out=blk).clamp_min_(0.0)
        y = blk.view(n, h + 2 * p, w + 2 * p, 4 * c).permute(0, 3, 1, 2)
        return from_blocks(F.conv2d(y, k2, b2), conv.conv.out_channels)

    def forward(self, x, style=None):
        s = self.style if style is None else style
        s = s if s.device == x.device else s.to(x.device)
        inplace = not torch.is_grad_enabled()  # every tensor below is one this forward made
        blocks = self.blocks_ok(x)
        if blocks:
            (k0, b0), (k1, b1), (k2, b2) = self.blocks_weights()
            y = to_blocks(reflect_pad_nhwc(x, self.contract[0].pad))
            y = F.relu(F.conv2d(y, k0.to(x.dtype), b0.to(x.dtype)), inplace=True)
            y = F.conv2d(F.pad(y, (1, 0, 1, 0), mode="replicate"), k1.to(x.dtype), b1.to(x.dtype))
            x = F.relu(y, inplace=True)
            contract = self.contract[2:]
        else:
            contract = self.contract
        for conv in contract:
            x = F.relu(conv(x), inplace=inplace)
        for i in range(0, len(self.res), 2):
            h = F.relu(self.res_norm[i](self.res[i](x), s), inplace=inplace)
            y = self.res_norm[i + 1](self.res[i + 1](h), s)
            x = x.add_(y) if inplace else x + y
        last = len(self.expand) - 1
        for i, conv in enumerate(self.expand):
            if blocks and i == last - 1:
                x = self._last_on_blocks(x, s, k2.to(x.dtype), b2.to(x.dtype))
                continue
            if not (blocks and i == last):
                x = conv(x)
            x = self.expand_norm[i](x, s)
            if i < last:
                x = F.relu(x, inplace=inplace)
        return x.sigmoid_() if inplace else torch.sigmoid(x)
