"""Feed-forward style transfer (Johnson et al. 2016): one pass of a trained transformer network.

The network has exactly the state_dict layout that pytorch/examples' fast_neural_style publishes and
trains (`conv1.conv2d.*`, `in1.*`, `res1..res5`, `deconv1..3`), so its checkpoints load unchanged;
the 2017 files' `in*.running_mean/var` entries (left by an old InstanceNorm) are dropped.
`train_fast_style` trains a new network for a style on the user's images and saves it in the same layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import require_torch, resolve_device, split_alpha
from ..errors import InputError, ModelError
from .tiles import FrozenNorms, forward_image

ARCHITECTURE = "transformer_net"
# fast_neural_style works on 0..255 values
_SCALE = 255.0
# activations at peak are about 32 channels x fp32 x a few copies per pixel
_BYTES_PER_PIXEL = 1200
# imported only by the functions that run this method, so torch comes in with it (and a missing torch says how)
torch = require_torch("fast style transfer")
nn = torch.nn
F = torch.nn.functional


class InstanceNorm(nn.Module):
    """Affine instance norm whose statistics can be recorded once and frozen (for seamless tiles)."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.stats_mode = "live"
        self.saved = None

    def forward(self, x):
        if self.stats_mode == "live":
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=1e-5)
        if self.stats_mode == "record":
            xf = x.float()
            self.saved = (xf.mean(dim=(2, 3), keepdim=True), xf.var(dim=(2, 3), keepdim=True, unbiased=False))
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=1e-5)
        mean, var = self.saved
        scale = self.weight.view(1, -1, 1, 1) / torch.sqrt(var + 1e-5)
        return ((x.float() - mean) * scale + self.bias.view(1, -1, 1, 1)).to(x.dtype)

# nearest 2x upsampling, reflection pad 1 and a 3x3 conv equal four 2x2 convs on the small image
# (one per output phase), interleaved: 16 instead of 36 multiply-adds per input pixel and channel
taps = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])

class ConvLayer(nn.Module):
    def __init__(self, cin, cout, k, stride=1, upsample=None):
        super().__init__()
        self.upsample = upsample
        self.pad = k // 2
        self.conv2d = nn.Conv2d(cin, cout, k, stride)
        self._phases = None

    def _phase_kernels(self):
        w = self.conv2d.weight
        key = (w.data_ptr(), w._version, w.device, w.dtype)
        if self._phases is None or self._phases[0] != key:
            t = taps.to(w.device, w.dtype)
            ks = [torch.einsum("pk,oikl,ql->oipq", t[a], w, t[b]).contiguous() for a in (0, 1) for b in (0, 1)]
            self._phases = (key, ks)
        return self._phases[1]

    def forward(self, x):
        if self.upsample == 2 and self.pad == 1 and not torch.is_grad_enabled():
            xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
            n, _, h, w = x.shape
            out = torch.empty((n, self.conv2d.out_channels, h, 2, w, 2), dtype=x.dtype, device=x.device)
            for (a, b), k in zip(((0, 0), (0, 1), (1, 0), (1, 1)), self._phase_kernels(), strict=True):
                out[:, :, :, a, :, b] = F.conv2d(xp[:, :, a:a + h + 1, b:b + w + 1], k, self.conv2d.bias)
            return out.view(n, -1, 2 * h, 2 * w)
        if self.upsample:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return self.conv2d(x)

class ResidualBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = ConvLayer(c, c, 3)
        self.in1 = InstanceNorm(c)
        self.conv2 = ConvLayer(c, c, 3)
        self.in2 = InstanceNorm(c)

    def forward(self, x):
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))

class TransformerNet(nn.Module, FrozenNorms):
    """Johnson's image transformation network; input and output in [0, 1] (scaled to 0..255 inside)."""

    multiple = 4

    def __init__(self):
        super().__init__()
        self.conv1 = ConvLayer(3, 32, 9)
        self.in1 = InstanceNorm(32)
        self.conv2 = ConvLayer(32, 64, 3, 2)
        self.in2 = InstanceNorm(64)
        self.conv3 = ConvLayer(64, 128, 3, 2)
        self.in3 = InstanceNorm(128)
        for i in range(1, 6):
            setattr(self, f"res{i}", ResidualBlock(128))
        self.deconv1 = ConvLayer(128, 64, 3, 1, upsample=2)
        self.in4 = InstanceNorm(64)
        self.deconv2 = ConvLayer(64, 32, 3, 1, upsample=2)
        self.in5 = InstanceNorm(32)
        self.deconv3 = ConvLayer(32, 3, 9)

    def forward(self, x, scaled=False):
        inplace = not torch.is_grad_enabled()  # saves a full-size copy per layer at inference
        y = x if scaled else x * _SCALE
        y = F.relu(self.in1(self.conv1(y)), inplace=inplace)
        y = F.relu(self.in2(self.conv2(y)), inplace=inplace)
        y = F.relu(self.in3(self.conv3(y)), inplace=inplace)
        for i in range(1, 6):
            y = getattr(self, f"res{i}")(y)
        y = F.relu(self.in4(self.deconv1(y)), inplace=inplace)
        y = F.relu(self.in5(self.deconv2(y)), inplace=inplace)
        y = self.deconv3(y)
        return y if scaled else y / _SCALE


def transformer_net():
    """A new, randomly initialised TransformerNet."""
    return TransformerNet()


def load_transformer(model, models_dir=None):
    """The network for `model` (a path or a store name), checked key by key against the public layout."""
    from ..models.store import find, load_weights

    path = find(model, models_dir)
    if path is None:
        raise ModelError(f"model: fast-style checkpoint {model!r} was not found as a file or in the model store; "
                         "give a path to a .pth file (pytorch/examples fast_neural_style) or train one")
    sd = load_weights(path, what="fast-style checkpoint")
    # 2017 checkpoints carry running statistics of a non-tracking InstanceNorm; they are unused
    sd = {k: v for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    net = transformer_net()
    want = net.state_dict()
    for key, ref in want.items():
        if key not in sd:
            raise ModelError(f"model: {Path(path).name} is not a fast_neural_style TransformerNet checkpoint "
                             f"(key {key!r} is missing)")
        if tuple(sd[key].shape) != tuple(ref.shape):
            raise ModelError(f"model: {Path(path).name} key {key!r} has shape {tuple(sd[key].shape)}, "
                             f"expected {tuple(ref.shape)} (another architecture)")
    extra = sorted(set(sd) - set(want))
    if extra:
        raise ModelError(f"model: {Path(path).name} has keys a TransformerNet does not have (first: {extra[0]!r})")
    net.load_state_dict({k: v.float() for k, v in sd.items()})
    net.eval().requires_grad_(False)
    return net, Path(path)


def _pad_to(x, multiple: int):
    torch = require_torch()
    h, w = x.shape[2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if h > ph and w > pw else "replicate"
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def apply_network(net, rgb: np.ndarray, *, device, memory_mb: float = 4096, tile: int | None = None,
                  overlap: int = 32, half: bool = True) -> np.ndarray:
    """Run a FrozenNorms image network on (H, W, 3) with padding to its multiple and tiling."""
    from ._util import to_numpy, to_tensor

    x = to_tensor(rgb, "cpu")
    x, h, w = _pad_to(x, net.multiple)
    if tile is not None:
        tile = max(net.multiple * 8, int(tile) // net.multiple * net.multiple)
    max_pixels = int(memory_mb * 1024 * 1024 / _BYTES_PER_PIXEL)
    y, _ = forward_image(net, x, device=device, max_pixels=max_pixels, tile=tile, overlap=overlap, half=half)
    return to_numpy(y[:, :, :h, :w])


def fast(content: np.ndarray, *, model, models_dir=None, device=None, memory_mb: float = 4096, tile=None,
         overlap: int = 32, half: bool = True, rep=None) -> np.ndarray:
    if model is None:
        raise InputError("model: method 'fast' needs a trained checkpoint; pass model=PATH or a name in the store")
    net, _ = load_transformer(model, models_dir)
    if rep is not None:
        rep(0.1, "fast style network")
    return apply_network(net, content, device=device, memory_mb=memory_mb, tile=tile, overlap=overlap, half=half)


# ---------------------------------------------------------------------------------------------
# Training


def train_fast_style(style, content_images, *, steps: int = 2000, name: str | None = None, models_dir=None,
                     progress=None, cancel=None, device: str = "auto", size: int = 256, batch_size: int = 4,
                     lr: float = 1e-3, style_weight: float = 1.0, content_weight: float = 1.0, seed: int = 0,
                     encoder: str = "auto", init_model=None) -> Path:
    """Train a TransformerNet for `style` on `content_images` (arrays or paths); save it in the model store.

    The perceptual loss uses the same encoder as gatys (VGG19 when in the store, else the built-in one)
    and the same per-layer normalised Gram/content losses. `init_model` continues from a checkpoint.
    Returns the path of the saved `<name>.pth`; a `<name>.json` sidecar records how it was made.
    """
    from ..imageio import image_or_path

    from ..core import reporter
    from ..models.store import save_user_model
    from ._util import fit_long_side, resize, to_tensor
    from .encoders import load_encoder
    from .gatys import gram

    from ..validate import check_model_name, check_models_dir, check_steps

    check_steps(steps)
    if not name:  # checked now, not after the training
        import re

        stem = Path(style).stem if isinstance(style, (str, Path)) else "custom"
        name = "fast_style_" + re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80]
    check_model_name(name, "name")
    check_models_dir(models_dir, "models_dir")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 32 <= size <= 4096:
        raise InputError(f"size: {size!r} is not a training crop size; give 32 to 4096 pixels (256 is usual)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size: {batch_size!r}; give 1 or more images per step")
    torch = require_torch("training a fast-style network")
    rep = reporter(progress, cancel)
    sty_rgb, _ = split_alpha(image_or_path(style, "style"))
    if isinstance(content_images, (str, Path)) and Path(content_images).is_dir():
        from ..imageio import list_images

        content_images = list_images(content_images)
    if isinstance(content_images, np.ndarray) and content_images.ndim == 3:
        content_images = [content_images]
    contents = [split_alpha(image_or_path(c, "content image"))[0] for c in content_images]
    if not contents:
        raise InputError("content_images: no training images given")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    enc, note = load_encoder("auto" if encoder is None else encoder, models_dir)
    enc.to(dev)
    style_layers, content_layers = list(enc.style_layers), list(enc.content_layers)
    net = load_transformer(init_model, models_dir)[0] if init_model else transformer_net()
    net.to(dev).train().requires_grad_(True)
    net.set_norm_mode("live")
    with torch.no_grad():
        s_t = to_tensor(fit_long_side(sty_rgb, size), dev)
        s_feats = enc(s_t, style_layers)
        targets = {n: gram(s_feats[n]) for n in style_layers}
        s_norm = {n: targets[n].pow(2).sum().clamp_min(1e-12) for n in style_layers}
    # training crops: each image scaled so its short side is at least `size`, then random crops
    pool = []
    for c in contents:
        h, w = c.shape[:2]
        k = max(1.0, size / min(h, w))
        pool.append(resize(c, round(h * k), round(w * k)) if k > 1.0 else c)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    last = 0.0
    for step in range(steps):
        rep(step / steps, f"training step {step + 1}/{steps} (loss {last:.3g})")
        batch = []
        for _ in range(batch_size):
            img = pool[rng.integers(len(pool))]
            y0 = rng.integers(0, img.shape[0] - size + 1)
            x0 = rng.integers(0, img.shape[1] - size + 1)
            batch.append(img[y0:y0 + size, x0:x0 + size].transpose(2, 0, 1))
        x = torch.from_numpy(np.ascontiguousarray(np.stack(batch))).to(dev)
        opt.zero_grad(set_to_none=True)
        y = net(x)
        fy = enc(y.clamp(0, 1) * 0.98 + y * 0.02, style_layers + content_layers)
        with torch.no_grad():
            fx = enc(x, content_layers)
        loss_s = sum(((gram(fy[n]) - targets[n]).pow(2).sum(dim=(1, 2)) / s_norm[n]).mean() for n in style_layers)
        loss_c = sum(((fy[n] - fx[n]).pow(2).sum(dim=(1, 2, 3)) / fx[n].pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-12))
                     .mean() for n in content_layers)
        loss = style_weight * loss_s / len(style_layers) + content_weight * loss_c
        loss.backward()
        opt.step()
        last = float(loss.detach())
    rep(0.99, "saving")
    net.eval()
    path = save_user_model(net.state_dict(), name, architecture=ARCHITECTURE, models_dir_=models_dir,
                           trained_on=f"{len(contents)} images",
                           extra={"method": "fast", "steps": steps, "size": size, "final_loss": last,
                                  "encoder": enc.name, "style": str(style) if isinstance(style, (str, Path)) else "",
                                  "note": note})
    rep(1.0, "done")
    return path
