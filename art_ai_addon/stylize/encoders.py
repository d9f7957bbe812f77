"""Feature encoders for optimisation-based style transfer.

Two encoders share one interface (`encoder(x, layers) -> {name: features}`, x an (N, 3, H, W) tensor of
sRGB values in [0, 1]):

- `VGG19Encoder`: the VGG19 `features` stack, read from torchvision's published `vgg19-dcbb9e9d.pth`
  (keys `features.N.weight/bias`), with ImageNet normalisation. Built here in plain torch, because
  torchvision is not importable inside Blender's Python.
- `RandomEncoder`: a deterministic, download-free layer of random filters over an image pyramid.
  Random convolutions followed by rectification keep the second-order statistics that describe
  texture (Ustyuzhaninov et al. 2017), so Gram losses on them transfer texture and palette.
"""

from __future__ import annotations

from ..core import require_torch
from ..errors import ModelError

VGG19_FILE = "vgg19-dcbb9e9d.pth"

# (in, out) channels of the 16 convolutions in VGG19's `features`, "M" = 2x2 max pool
_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_names():
    """Index in `features` -> layer name (conv1_1, relu1_1, pool1, ...), as in the Gatys paper."""
    names, block, conv = {}, 1, 1
    idx = 0
    for v in _VGG19_CFG:
        if v == "M":
            names[idx] = f"pool{block}"
            idx += 1
            block += 1
            conv = 1
        else:
            names[idx] = f"conv{block}_{conv}"
            names[idx + 1] = f"relu{block}_{conv}"
            idx += 2
            conv += 1
    return names


def vgg19_expected_shapes(last_index: int = 34) -> dict:
    """`features.N.weight/bias` -> shape for every conv up to features[last_index]."""
    shapes, idx, cin = {}, 0, 3
    for v in _VGG19_CFG:
        if idx > last_index:
            break
        if v == "M":
            idx += 1
            continue
        shapes[f"features.{idx}.weight"] = (v, cin, 3, 3)
        shapes[f"features.{idx}.bias"] = (v,)
        cin = v
        idx += 2
    return shapes


class _Stack:
    """Runs a list of (name, module) in order and collects the named outputs that were asked for."""

    def __init__(self, torch, layers, mean, std):
        self.layers = layers
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def to(self, device, dtype=None):
        for _, m in self.layers:
            m.to(device=device, dtype=dtype)
        self.mean = self.mean.to(device=device, dtype=dtype)
        self.std = self.std.to(device=device, dtype=dtype)
        return self

    def parameters(self):
        for _, m in self.layers:
            yield from m.parameters()

    def __call__(self, x, wanted):
        wanted = set(wanted)
        out = {}
        if "rgb" in wanted:
            out["rgb"] = x
        h = (x - self.mean) / self.std
        for name, module in self.layers:
            if len(out) == len(wanted):
                break
            h = module(h)
            if name in wanted:
                out[name] = h
        return out


class VGG19Encoder(_Stack):
    """VGG19 features from torchvision's weights file (only as deep as relu5_1 is built)."""

    style_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    pyramid = 1
    content_layers = ("relu4_2",)
    content_weight = 0.05
    bytes_per_pixel = 5000  # (4.1 KB measured at 384 px)
    min_side = 16  # relu5_1 is after four 2x poolings
    name = "vgg19"

    def __init__(self, path):
        from ..models.store import load_weights

        torch = require_torch("the VGG19 encoder")
        nn = torch.nn
        last = 29  # relu5_1
        expected = vgg19_expected_shapes(last)
        sd = load_weights(path, expected=expected, what="VGG19 encoder")
        names = _vgg19_names()
        layers, idx, cin = [], 0, 3
        for v in _VGG19_CFG:
            if idx > last:
                break
            if v == "M":
                # average pooling gives smoother gradients than max pooling (Gatys et al.)
                layers.append((names[idx], nn.AvgPool2d(2, 2)))
                idx += 1
                continue
            conv = nn.Conv2d(cin, v, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(sd[f"features.{idx}.weight"].float())
                conv.bias.copy_(sd[f"features.{idx}.bias"].float())
            layers.append((names[idx], conv))
            layers.append((names[idx + 1], nn.ReLU(inplace=False)))
            cin = v
            idx += 2
        for _, m in layers:
            m.requires_grad_(False).eval()
        super().__init__(torch, layers, _IMAGENET_MEAN, _IMAGENET_STD)


class RandomEncoder:
    """One layer of random filters applied to an image pyramid (Ustyuzhaninov et al. 2017, made cheap).

    Large random filters (up to ~55 px) are what lets a single random layer describe texture; the same
    reach comes far cheaper from 7x7 filters on the image at 1, 1/2, 1/4 and 1/8 size. Each scale has
    its own filters; the raw colour is a style layer too, so the palette is matched directly.
    """

    style_layers = ("rgb", "s0", "s1", "s2", "s3")
    content_layers = ("s1",)
    content_weight = 0.01
    bytes_per_pixel = 4000  # forward + backward of one optimisation step (3.7 KB measured at 512 px)
    min_side = 16  # s3 is at 1/8 size and needs 2 pixels
    name = "builtin"
    pyramid = 1

    def __init__(self, seed: int = 1234, width: int = 96, k: int = 7, scales: int = 4):
        torch = require_torch("the built-in encoder")
        gen = torch.Generator().manual_seed(seed)
        self.torch = torch
        self.k = k
        self.weights = []
        for _ in range(scales):
            w = torch.randn(width, 3, k, k, generator=gen)
            w -= w.mean(dim=(1, 2, 3), keepdim=True)
            w /= w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            self.weights.append(w)
        self.biases = [torch.zeros(width) for _ in range(scales)]
        self.mean = 0.5
        # binomial low-pass before each 2x decimation: plain 2x2 averaging leaves a block grid in the result
        b = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        self.blur = (b[:, None] * b[None, :] / 256.0).expand(3, 1, 5, 5).contiguous()

    def to(self, device, dtype=None):
        self.weights = [w.to(device=device, dtype=dtype) for w in self.weights]
        self.blur = self.blur.to(device=device, dtype=dtype)
        self.biases = [b.to(device=device, dtype=dtype) for b in self.biases]
        return self

    def parameters(self):
        return iter(())

    def __call__(self, x, wanted):
        F = self.torch.nn.functional
        out = {}
        if "rgb" in wanted:
            out["rgb"] = x
        h = (x - self.mean) / 0.25
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if i:
                mode = "reflect" if min(h.shape[2:]) > 2 else "replicate"
                h = F.conv2d(F.pad(h, (2, 2, 2, 2), mode=mode), self.blur, stride=2, groups=3)
            name = f"s{i}"
            if name in wanted and min(h.shape[2:]) >= 2:
                hp = F.pad(h, (self.k // 2,) * 4, mode="reflect") if min(h.shape[2:]) > self.k // 2 else \
                    F.pad(h, (self.k // 2,) * 4, mode="replicate")
                out[name] = F.relu(F.conv2d(hp, w, b))
        return out


def load_encoder(name: str = "auto", models_dir=None, path=None):
    """(encoder, note): VGG19 when its weights are in the store (or `path` is given), else the built-in one."""
    from ..models.store import find

    want = (name or "auto").lower()
    if want not in ("auto", "vgg19", "builtin"):
        raise ModelError(f"encoder: unknown encoder {name!r}; use auto, vgg19 or builtin")
    if want != "builtin":
        p = find(path, models_dir) if path else find(VGG19_FILE, models_dir)
        if p is None and path:
            raise ModelError(f"encoder: {path} was not found (as a file or in the model store)")
        if p is not None:
            return VGG19Encoder(p), ""
        if want == "vgg19":
            raise ModelError(f"encoder: {VGG19_FILE} is not in the model store; import it with "
                             "`python -m art_ai_addon models import` or use the built-in encoder")
    note = (f"gatys ran on the built-in encoder; add {VGG19_FILE} to the model store for better quality "
            "(`python -m art_ai_addon models import PATH`)")
    return RandomEncoder(), note
