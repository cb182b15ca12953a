"""Build 2160p test frames from native pixels for the `tiles` vs `resize` comparison.

No 3840x2160 photograph with real defocus exists in the shared data, and upscaling a
2048-px photo would make every frame soft (upscaling is blur). So each 3840x2160 frame is a
2x2 mosaic of native-resolution crops (no resampling at all) of 2048-px photographs:

* `gauss/`: panels cropped from the five sharp native photos (focus_sweep_pcb steps 003,
  004 and the three `_S` shots of real_defocus/pairs), seams at random positions (not on
  the tile grid); each mosaic in 5 versions: Gaussian sigma 0 and 0.5 (labelled sharp) and
  0.75, 1, 2 (labelled blurry), sigma in *native 2160p pixels* (the 8 MP weakness of the
  thesis: at the 1080p scale the model was trained on these are sigma 0.375-1, partly
  below its own b_0.75 boundary);
* `pcb/`: the same four crop positions of every step of the real focal sweep
  (focus_sweep_pcb, 2048x1536, MANIFEST labels: 003/004 sharp, 002/005/006 slight optical
  defocus, the rest strong): real optical blur, in native pixels.

Files: JPEG quality 95, `sharp/` and `blurry/` folders, scene = mosaic id (`--scene '(m\\d+)_'`).
    python -m bench.frames4k [OUT]   # default bench/results/frames_2160p
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from bench.common import RESULTS

DATA = Path("/work/shared/data/real_defocus")
SHARP_NATIVE = ["focus_sweep_pcb/depthmap_pcb_003.JPG", "focus_sweep_pcb/depthmap_pcb_004.JPG",
                "pairs/106_NIKON-D3400-35MM_S.JPG", "pairs/176_HONOR-7X_S.jpg", "pairs/180_HONOR-10_S.jpg"]
PCB_LABELS = {"003": "sharp", "004": "sharp", "002": "blurry", "005": "blurry", "006": "blurry",
              "000": "blurry", "001": "blurry", "007": "blurry", "008": "blurry", "009": "blurry"}
GAUSS = [(0.0, "sharp"), (0.5, "sharp"), (0.75, "blurry"), (1.0, "blurry"), (2.0, "blurry")]
W, H = 3840, 2160


def _layout(rng: np.random.Generator) -> tuple[list[int], list[int]]:
    w1 = int(rng.integers(1792, 2049))
    h1 = int(rng.integers(900, 1261))
    return [w1, W - w1], [h1, H - h1]


def _mosaic(images: list[np.ndarray], widths: list[int], heights: list[int], origins: list[tuple[float, float]]
            ) -> np.ndarray:
    out = np.zeros((H, W, 3), np.uint8)
    y = 0
    k = 0
    for h in heights:
        x = 0
        for w in widths:
            im = images[k]
            fx, fy = origins[k]
            top = int(fy * (im.shape[0] - h))
            left = int(fx * (im.shape[1] - w))
            out[y : y + h, x : x + w] = im[top : top + h, left : left + w]
            x += w
            k += 1
        y += h
    return out


def build(out: Path, mosaics: int = 6, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    sharp = [cv2.imread(str(DATA / p), cv2.IMREAD_COLOR) for p in SHARP_NATIVE]
    for label in ("sharp", "blurry"):
        (out / label).mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    for m in range(mosaics):
        widths, heights = _layout(rng)
        picks = [sharp[int(i)] for i in rng.choice(len(sharp), 4, replace=False)]
        origins = [(float(rng.random()), float(rng.random())) for _ in range(4)]
        frame = _mosaic(picks, widths, heights, origins)
        for sigma, label in GAUSS:
            img = frame if sigma == 0 else cv2.GaussianBlur(frame, (0, 0), sigma)
            cv2.imwrite(str(out / label / f"m{m:02d}_gauss_s{sigma:.2f}.jpg"), img, params)
    steps = {k: cv2.imread(str(DATA / f"focus_sweep_pcb/depthmap_pcb_{k}.JPG"), cv2.IMREAD_COLOR) for k in PCB_LABELS}
    for m in range(mosaics, mosaics + 2):
        widths, heights = _layout(rng)
        origins = [(float(rng.random()), float(rng.random())) for _ in range(4)]
        for step, label in sorted(PCB_LABELS.items(), key=lambda kv: kv[0] != "003"):  # reference first
            frame = _mosaic([steps[step]] * 4, widths, heights, origins)
            tag = "a" if step == "003" else "b"  # sorts the reference (003) first within the scene
            cv2.imwrite(str(out / label / f"m{m:02d}_pcb{tag}_{step}.jpg"), frame, params)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "frames_2160p"
    print(build(target))
