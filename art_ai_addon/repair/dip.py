"""Deep Image Prior inpainting (Ulyanov, Vedaldi, Lempitsky 2018): no weights, only an untrained CNN.

An encoder-decoder with skip connections maps a fixed noise image to a picture; it is fitted to the
known pixels only. Convolutional networks fit natural structure long before they fit noise, so the
hole is filled with what the network "expects" from the context. The work is done on a crop around
the hole (and at most `max_side` pixels), then pasted back.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import reporter, require_torch, resolve_device
from ..errors import InputError

MIN_SIDE = 16  # the encoder halves the picture 3-4 times; below this its deepest layers hold one value


def _build(torch, in_ch: int, width: int, depth: int):
    nn = torch.nn

    def block(i, o, stride=1):
        return nn.Sequential(nn.Conv2d(i, o, 3, stride, 1, padding_mode="reflect"), nn.BatchNorm2d(o),
                             nn.LeakyReLU(0.2, inplace=True))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            chans = [width * min(2 ** i, 4) for i in range(depth)]
            self.down = nn.ModuleList()
            self.skip = nn.ModuleList()
            self.up = nn.ModuleList()
            c = in_ch
            for co in chans:
                self.down.append(nn.Sequential(block(c, co, 2), block(co, co)))
                self.skip.append(block(c, 4))
                c = co
            for i in reversed(range(depth)):
                prev = chans[i]
                out = chans[i - 1] if i > 0 else width
                self.up.append(nn.Sequential(block(prev + 4, out), block(out, out)))
            self.head = nn.Conv2d(width, 3, 1)

        def forward(self, x):
            skips = []
            for d, s in zip(self.down, self.skip, strict=True):
                skips.append(s(x))
                x = d(x)
            for u, s in zip(self.up, reversed(skips), strict=True):
                x = nn.functional.interpolate(x, size=s.shape[-2:], mode="bilinear", align_corners=False)
                x = u(torch.cat([x, s], 1))
            return torch.sigmoid(self.head(x))

    return Net()


def dip_inpaint(rgb, hole, *, steps=None, seed=0, device="auto", rep=None, lr=0.01,
                max_side=None, margin=None, **_):
    """Fill `hole` of `rgb` (H, W, 3) by fitting an untrained CNN to the known pixels for `steps` steps."""
    if steps is not None:
        from ..validate import check_steps

        check_steps(steps)
    torch = require_torch("Deep Image Prior inpainting")
    rep = reporter(rep)
    dev = resolve_device(device)
    gpu = dev.type != "cpu"
    steps = int(steps) if steps else (2000 if gpu else 400)
    max_side = int(max_side or (512 if gpu else 192))
    h, w = hole.shape
    if min(h, w) < MIN_SIDE:
        raise InputError(f"image: {w}x{h} pixels is too small for dip, which needs at least {MIN_SIDE} pixels on "
                         "each side; use the telea or patch method")
    ys, xs = np.nonzero(hole)
    span = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    pad = int(margin if margin is not None else max(16, span // 2))
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + pad + 1)
    crop = rgb[y0:y1, x0:x1]
    chole = hole[y0:y1, x0:x1]
    ch, cw = chole.shape
    if min(ch, cw) < MIN_SIDE:
        raise InputError(f"margin: the region around the hole is {cw}x{ch} pixels, too small for dip, which needs "
                         f"at least {MIN_SIDE} on each side; give a larger margin")
    scale = min(1.0, max_side / max(ch, cw))
    sh, sw = max(8, int(round(ch * scale))), max(8, int(round(cw * scale)))
    small = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else crop
    known = cv2.resize((~chole).astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else (
        (~chole).astype(np.float32))
    known = (known > 0.999).astype(np.float32)

    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    depth = 4 if min(sh, sw) >= 48 else 3
    net = _build(torch, 16, 32, depth).to(dev)
    z = torch.rand((1, 16, sh, sw), generator=gen).mul_(0.1).to(dev)
    target = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)))[None].to(dev)
    m = torch.from_numpy(known)[None, None].to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    noise_gen = torch.Generator(device="cpu").manual_seed(int(seed) + 1)
    net.train()
    for step in range(steps):
        if step % 10 == 0:
            rep(step / steps, f"Deep Image Prior {step}/{steps}")
        jitter = torch.randn(z.shape, generator=noise_gen).mul_(1.0 / 30.0).to(dev)
        out = net(z + jitter)
        loss = (((out - target) ** 2) * m).sum() / (m.sum() * 3 + 1e-8)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():  # stays in train mode: batch statistics, as during fitting
        res = net(z)[0].permute(1, 2, 0).float().cpu().numpy()
    if scale < 1:
        res = cv2.resize(res, (cw, ch), interpolation=cv2.INTER_CUBIC)
    out = rgb.copy()
    region = out[y0:y1, x0:x1]
    region[chole] = np.clip(res[chole], 0.0, 1.0)
    rep(1.0, "Deep Image Prior done")
    return out
