"""LaMa's generator (Suvorov et al. 2022, FFCResNetGenerator), laid out so the official big-lama weights load as-is.

Written from the paper and from reading the public source (advimman/lama, saicinpainting/training/modules/ffc.py
and trainers/default.py). Module order, attribute names and shapes follow the release's state_dict
(`generator.model.N...` in big-lama/models/best.ckpt), so `load_state_dict(strict=True)` proves that every
weight found its place. big-lama (input 4 = masked RGB + mask, ngf 64, 3 downsamplings, 18 blocks, ratio 0.75):

    model.0       reflection pad 3
    model.1       FFC 7x7 4->64, local only, + BatchNorm + ReLU
    model.2..4    FFC 3x3 stride 2 64->128->256->512; the last one splits 128 local / 384 global channels
    model.5..22   FFC ResNet blocks: two FFC 3x3 + BN + ReLU, residual on the local and the global part
    model.23      local and global channels concatenated (local first)
    model.24..32  three times ConvTranspose 3x3 stride 2 + BN + ReLU: 512->256->128->64
    model.33..35  reflection pad 3, conv 7x7 64->3, sigmoid

An FFC's global->global path (SpectralTransform) works on the 2-D Fourier transform of its channels: a 1x1 conv
over the real and imaginary parts mixes every position with every other, so even the first block sees the whole
picture; that is what lets LaMa fill large holes. The network is fully convolutional (any size that is a
multiple of 8); it is not tiled, because tiles would cut exactly that global context. Imported only by the
functions that load LaMa (torch comes in with it).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError

BIG_LAMA = {"input_nc": 4, "output_nc": 3, "ngf": 64, "n_downsampling": 3, "n_blocks": 18, "ratio": 0.75,
            "max_features": 1024}


class FourierUnit(nn.Module):
    """Real 2-D FFT ('ortho'), 1x1 conv + BN + ReLU over the (real, imaginary) channel pairs, inverse FFT."""

    def __init__(self, channels):
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        b, c, h, w = x.shape
        spec = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        wf = spec.shape[-1]
        # channel order c0.real, c0.imag, c1.real, ... as the release was trained with
        z = torch.stack((spec.real, spec.imag), dim=2).reshape(b, 2 * c, h, wf)
        z = self.relu(self.bn(self.conv_layer(z))).reshape(b, -1, 2, h, wf)
        return torch.fft.irfftn(torch.complex(z[:, :, 0], z[:, :, 1]), s=(h, w), dim=(-2, -1), norm="ortho")

class SpectralTransform(nn.Module):
    """The global->global path: 1x1 conv down to half the channels, + Fourier unit (residual), 1x1 conv up."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        half = cout // 2
        self.downsample = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(True))
        self.fu = FourierUnit(half)
        self.conv2 = nn.Conv2d(half, cout, 1, bias=False)

    def forward(self, x):
        x = self.conv1(self.downsample(x))
        return self.conv2(x + self.fu(x))

class FFC(nn.Module):
    """Fast Fourier convolution: channels split into a local and a global part, four paths between them."""

    def __init__(self, cin, cout, kernel, ratio_gin, ratio_gout, stride=1, padding=0):
        super().__init__()
        in_g, out_g = int(cin * ratio_gin), int(cout * ratio_gout)
        in_l, out_l = cin - in_g, cout - out_g
        if not in_l or not out_l or (ratio_gin and not in_g) or (ratio_gout and not out_g):
            raise ModelError(f"LaMa: an FFC of {cin}->{cout} channels with global ratios {ratio_gin}/"
                             f"{ratio_gout} leaves a part empty; this is not a LaMa generator layout")

        def conv(i, o):
            return nn.Conv2d(i, o, kernel, stride, padding, bias=False, padding_mode="reflect") if i and o else None

        self.convl2l, self.convl2g, self.convg2l = conv(in_l, out_l), conv(in_l, out_g), conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g, stride) if in_g and out_g else None
        self.out_l, self.out_g = out_l, out_g

    def forward(self, x_l, x_g):
        y_l = self.convl2l(x_l)
        if self.convg2l is not None:
            y_l = y_l + self.convg2l(x_g)
        y_g = None
        if self.out_g:
            y_g = self.convl2g(x_l)
            if self.convg2g is not None:
                y_g = y_g + self.convg2g(x_g)
        return y_l, y_g

class FFCNormAct(nn.Module):
    """FFC, then BatchNorm + ReLU on each part (`bn_l`, `bn_g`, as the release names them)."""

    def __init__(self, cin, cout, kernel, ratio_gin, ratio_gout, stride=1, padding=0):
        super().__init__()
        self.ffc = FFC(cin, cout, kernel, ratio_gin, ratio_gout, stride, padding)
        self.bn_l = nn.BatchNorm2d(self.ffc.out_l)
        self.bn_g = nn.BatchNorm2d(self.ffc.out_g) if self.ffc.out_g else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        x_l, x_g = x if isinstance(x, tuple) else (x, None)
        y_l, y_g = self.ffc(x_l, x_g)
        y_l = self.act(self.bn_l(y_l))
        if y_g is not None:
            y_g = self.act(self.bn_g(y_g))
        return y_l, y_g

class FFCResBlock(nn.Module):
    def __init__(self, dim, ratio):
        super().__init__()
        self.conv1 = FFCNormAct(dim, dim, 3, ratio, ratio, padding=1)
        self.conv2 = FFCNormAct(dim, dim, 3, ratio, ratio, padding=1)

    def forward(self, x):
        x_l, x_g = x
        y_l, y_g = self.conv2(self.conv1((x_l, x_g)))
        return x_l + y_l, (x_g + y_g if y_g is not None else x_g)

class Concat(nn.Module):
    def forward(self, x):
        x_l, x_g = x
        return x_l if x_g is None else torch.cat((x_l, x_g), dim=1)

class LamaGenerator(nn.Module):
    """(B, input_nc, H, W) -> (B, output_nc, H, W) in [0, 1]; H and W multiples of 2**n_downsampling."""

    def __init__(self, input_nc=4, output_nc=3, ngf=64, n_downsampling=3, n_blocks=18, ratio=0.75,
                 max_features=1024):
        super().__init__()
        if n_downsampling < 1:
            raise ModelError("LaMa: a generator needs at least one downsampling layer")

        def width(mult):
            return min(max_features, ngf * mult)

        layers = [nn.ReflectionPad2d(3), FFCNormAct(input_nc, ngf, 7, 0, 0)]
        for i in range(n_downsampling):  # only the last one starts the global part
            layers.append(FFCNormAct(width(2 ** i), width(2 ** (i + 1)), 3, 0,
                                     ratio if i == n_downsampling - 1 else 0, stride=2, padding=1))
        layers += [FFCResBlock(width(2 ** n_downsampling), ratio) for _ in range(n_blocks)]
        layers.append(Concat())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += [nn.ConvTranspose2d(width(mult), width(mult // 2), 3, stride=2, padding=1, output_padding=1),
                       nn.BatchNorm2d(width(mult // 2)), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Sigmoid()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)

class LamaInpainter(nn.Module):
    """LaMa's inference step: the generator sees img * (1 - mask) and the mask; the known pixels are kept."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, image, mask):
        predicted = self.generator(torch.cat((image * (1 - mask), mask), dim=1))
        return mask * predicted + (1 - mask) * image




def build_generator(torch, config: dict | None = None):
    """A LaMa generator (big-lama's configuration unless `config` says otherwise), randomly initialised."""
    return LamaGenerator(**{**BIG_LAMA, **(config or {})})


def generator_keys(state_dict: dict) -> tuple[dict, str]:
    """(the generator's weights keyed `model.N...`, the prefix they had in the file).

    Accepts the Lightning checkpoint's state_dict (`generator.model...`, with the discriminator and loss weights
    beside it, which are ignored), a generator's own (`model....`) and a bare Sequential's (`1.ffc...`).
    """
    keys = list(state_dict)
    for prefix in ("generator.", "module.generator."):
        if any(k.startswith(prefix + "model.") for k in keys):
            return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}, prefix
    if keys and all(k.startswith("module.") for k in keys):  # saved from DataParallel
        state_dict, keys = {k[7:]: v for k, v in state_dict.items()}, [k[7:] for k in keys]
    if any(k.startswith("model.") for k in keys):
        return dict(state_dict), ""
    if keys and all(k[:1].isdigit() for k in keys):
        return {f"model.{k}": v for k, v in state_dict.items()}, "model."  # shown without "model."
    return dict(state_dict), ""


def _shown(key: str, prefix: str) -> str:
    """A key as the file spells it, so a message names what the user can find in their file."""
    return key[len("model."):] if prefix == "model." else prefix + key


def infer_config(sd: dict, prefix: str = "", name: str = "the file") -> dict:
    """The generator configuration that `sd` (keys `model.N...`) was saved from, read off a few shapes.

    Only the sizes are read here; `load_generator` then checks every key and shape strictly.
    """
    def shape(key):
        if key not in sd:
            raise ModelError(f"LaMa: {name} has no key {_shown(key, prefix)!r}, so it is not a LaMa generator "
                             "(big-lama's first layer is model.1.ffc.convl2l)")
        return tuple(sd[key].shape)

    first = shape("model.1.ffc.convl2l.weight")  # (ngf, input_nc, 7, 7)
    if len(first) != 4 or first[2:] != (7, 7):
        raise ModelError(f"LaMa: {name} key {_shown('model.1.ffc.convl2l.weight', prefix)!r} has shape {first}, "
                         "expected (ngf, 4, 7, 7)")
    ngf, input_nc = first[0], first[1]
    n_down = 0
    while f"model.{2 + n_down}.ffc.convl2l.weight" in sd:
        n_down += 1
    last = 1 + n_down
    out_l = shape(f"model.{last}.ffc.convl2l.weight")[0]
    out_g = tuple(sd[f"model.{last}.ffc.convl2g.weight"].shape)[0] if f"model.{last}.ffc.convl2g.weight" in sd else 0
    dim = out_l + out_g
    ratio = out_g / dim
    if int(dim * ratio) != out_g:  # keep int(dim * ratio) == out_g despite rounding
        ratio += 1e-9
    n_blocks = 0
    while f"model.{last + 1 + n_blocks}.conv1.ffc.convl2l.weight" in sd:
        n_blocks += 1
    out_index = last + n_blocks + 1 + 3 * n_down + 2
    output_nc = shape(f"model.{out_index}.weight")[0]
    return {"input_nc": input_nc, "output_nc": output_nc, "ngf": ngf, "n_downsampling": n_down,
            "n_blocks": n_blocks, "ratio": ratio, "max_features": max(1024, dim) if dim == ngf * 2 ** n_down else dim}


def load_generator(torch, state_dict: dict, *, name: str = "the file"):
    """A LaMa generator in eval mode holding exactly `state_dict`'s weights, else ModelError naming the key."""
    sd, prefix = generator_keys(state_dict)
    config = infer_config(sd, prefix, name)
    with torch.device("meta"):  # the shapes only; the weights come from the file
        want = build_generator(torch, config).state_dict()
    missing = [k for k in want if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in want]
    wrong = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing key {_shown(missing[0], prefix)!r}" + (f" and {len(missing) - 1} more"
                                                                           if len(missing) > 1 else ""))
        if unexpected:
            parts.append(f"unexpected key {_shown(unexpected[0], prefix)!r}" + (f" and {len(unexpected) - 1} more"
                                                                                 if len(unexpected) > 1 else ""))
        if wrong:
            k = wrong[0]
            parts.append(f"key {_shown(k, prefix)!r} has shape {tuple(sd[k].shape)}, expected {tuple(want[k].shape)}")
        raise ModelError(f"LaMa: {name} does not fit the LaMa generator it describes ({'; '.join(parts)}); "
                         "it is damaged or another network's weights")
    for k in want:  # counters older torch did not save; unused in eval mode
        if k not in sd:
            sd[k] = torch.zeros((), dtype=torch.long)
    net = build_generator(torch, config)
    net.load_state_dict(sd, strict=True)
    return net.eval()


def inpainter(torch, generator):
    """Wrap a generator in LaMa's inference step: forward(image (B, 3, H, W), mask (B, 1, H, W)) -> image."""
    return LamaInpainter(generator).eval()
