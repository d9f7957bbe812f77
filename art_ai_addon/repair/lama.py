"""LaMa (Suvorov et al. 2022, "big-lama") from the model store; nothing is downloaded.

Accepted files, as the public releases ship them (looked for in the store in this order of names:
`big-lama`, `big-lama.pth`, `big-lama.pt`, `big-lama.ckpt`, or any file given as `model=`); every one is read with
torch.load(weights_only=True), and nothing that runs code is loaded:
- `big-lama.ckpt`: the official release, big-lama/models/best.ckpt from advimman/lama's big-lama.zip, a PyTorch
  Lightning checkpoint whose state_dict holds the generator as `generator.model.N...` (beside discriminator and
  loss weights, which are ignored). Read with torch.load(weights_only=True); its pickled training metadata
  (OmegaConf config, callback classes) goes into inert stand-ins (models/store.py `_torch_load`), so no code
  of the file's runs. The weights go into our own FFC ResNet generator (lama_net.py) with strict loading.
- `big-lama.pth`: a plain generator state_dict (keys `model.N...`, or the Sequential's own `N...`), same network;
- a TorchScript export (IOPaint's `big-lama.pt`) is refused: torch.jit.load runs the code such an archive carries,
  so it is no weights source (import the official release instead).
The network is fully convolutional and is run on the whole (padded) image: LaMa's Fourier convolutions see the
whole picture, which tiles would cut. Memory grows with the pixel count (about 1.3 GB of activations per
megapixel on the CPU); on a GPU that runs out of memory the work is redone on the CPU with a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..core import reporter, require_torch, resolve_device
from ..errors import ModelError, NotAvailableError

MODEL_NAME = "big-lama"
FILES = ("big-lama.ckpt", "big-lama.pth")  # the official checkpoint, a generator state_dict


def _missing_message(root) -> str:
    return (f"LaMa is not installed: add big-lama to the model store at {root}: the official release "
            "(`python -m art_ai_addon models import big-lama.zip`, from advimman/lama, stores its "
            f"models/best.ckpt as `{FILES[0]}`) or a generator state_dict as `{FILES[1]}` (a TorchScript export "
            "such as big-lama.pt is refused: it runs code when loaded); or set ART_AI_MODELS, "
            "or use method 'patch' (textures) or 'auto', which need no weights")


def load_lama(models_dir=None, device="cpu", model=None):
    """A module on `device` taking (image, mask) and returning the inpainted image: the release / state_dict
    weights in our generator. `model` = an explicit file, else the store's big-lama file (checksum-verified by
    `find`). A TorchScript archive is refused unread. NotAvailableError / ModelError say what to do."""
    from ..models import store_root
    from ..models.layouts import is_torchscript, torchscript_refusal
    from ..models.store import find, load_weights

    torch = require_torch("LaMa inpainting")
    path = find(model or MODEL_NAME, models_dir)
    if path is None and model:
        raise NotAvailableError(f"LaMa: model file {model} does not exist")
    if path is None:
        raise NotAvailableError(_missing_message(store_root(models_dir)))
    path = Path(path)
    if is_torchscript(path):
        raise ModelError(torchscript_refusal(path.name, "LaMa"))
    from . import lama_net

    try:
        sd = load_weights(path, what="LaMa", mmap=True)
    except ModelError as exc:
        raise ModelError(f"LaMa: {path} is not a big-lama checkpoint or generator state_dict "
                         f"that can be read safely ({str(exc).removeprefix('LaMa: ')})") from None
    generator = lama_net.load_generator(torch, sd, name=path.name)
    del sd
    return lama_net.inpainter(torch, generator).to(device)


def _run(module, x, m):
    out = module(x, m)
    if isinstance(out, list | tuple):
        out = out[0]
    return out


def lama_inpaint(rgb, hole, *, models_dir=None, model=None, device="auto", rep=None, **_):
    """Fill `hole` of `rgb` with LaMa; the image is padded to a multiple of 8 as the network expects."""
    torch = require_torch("LaMa inpainting")
    rep = reporter(rep)
    dev = resolve_device(device)
    rep(0.05, "loading LaMa")
    module = load_lama(models_dir, dev, model)
    h, w = hole.shape
    ph, pw = (-h) % 8, (-w) % 8
    img = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 8 else "edge")
    msk = np.pad(hole.astype(np.float32), ((0, ph), (0, pw)), mode="constant")
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))[None]
    m = torch.from_numpy(msk)[None, None]
    rep(0.2, "LaMa")
    with torch.no_grad():
        try:
            try:
                out = _run(module, x.to(dev), m.to(dev))
            except torch.OutOfMemoryError:
                if str(dev) == "cpu":
                    raise
                warnings.warn(f"LaMa: out of memory on {dev} for a {w}x{h} image; running it on the CPU instead",
                              RuntimeWarning, stacklevel=2)
                module = module.to("cpu")
                out = _run(module, x, m)
        except Exception as exc:
            text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            if isinstance(exc, torch.OutOfMemoryError) or "allocate" in text or "out of memory" in text:
                raise ModelError(f"LaMa: not enough memory for a {w}x{h} image ({text}); scale it down or use "
                                 "method 'patch'") from None
            raise ModelError(f"LaMa: the model file does not take (image, mask) as big-lama does: {text}") from None
    if not hasattr(out, "shape") or out.ndim != 4 or out.shape[1] != 3:
        raise ModelError(f"LaMa: the model returned {getattr(out, 'shape', type(out))}, expected (1, 3, H, W)")
    res = out[0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()
    if res.max() > 1.5:  # some exports return 0..255
        res = res / 255.0
    return np.clip(res, 0.0, 1.0).astype(np.float32)
