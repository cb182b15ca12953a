"""Precompute the 448x448 uint8 training/validation samples once, so training spends no CPU on
decoding or blurring.

Per source photo and variant one camera-like augmentation is drawn (crop, flip, exposure,
gamma, low light, grayscale/IR look, sensor noise, JPEG compression) and all 9 blur classes are
rendered from it with the same parameters: the classes of one variant differ only by blur, so
the network has to learn blur, not scene content.

Order follows the physics: optical blur on the scene, then sensor and ISP effects (noise, gamma,
compression) at source resolution, then the daemon's own resize to 448x448 (INTER_LINEAR, as in
focusguard.analysis.preprocess). Split is by scene (camera folder / photo), stricter than by photo.

Usage: python -m models.training.build_dataset --out models/work/dataset [--train-variants 4]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from focusguard.analysis.preprocess import to_model_rgb  # one resize, crop and colour rule for training and serving
from models.training.classes import CLASS_NAMES, INPUT_SIZE, REFERENCE_WIDTH, sigma_for

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CROP_FRACTION = (1080 / 1920, 600 / 1080)  # the thesis' 1080x600 crop on a 1920x1080 frame


@dataclass(frozen=True)
class Source:
    path: Path
    scene: str


def find_sources(extra_dirs: list[Path]) -> list[Source]:
    """Sharp sources: shared cctv frames (scene = camera), gopro (one scene), extra photo folders
    (scene = photo)."""
    sources: list[Source] = []
    for cam in sorted((SHARED / "sharp" / "cctv").iterdir()):
        sources += [Source(p, f"cctv/{cam.name}") for p in sorted(cam.glob("*.jpg"))]
    sources += [Source(p, "gopro") for p in sorted((SHARED / "sharp" / "gopro").glob("*.jpg"))]
    for folder in extra_dirs:
        sources += [Source(p, f"photo/{p.stem}") for p in sorted(folder.glob("*.jpg"))]
    return sources


# The demo/test clip is made from this photo: keep it out of training.
ALWAYS_VALIDATION = {"photo/life_by_Aitzol_Berasategi"}


def validation_scenes(sources: list[Source], share: float = 0.2) -> set[str]:
    """Scenes in a fixed pseudo-random order (by hash) are given to validation until they hold
    `share` of the sources."""
    counts: dict[str, int] = {}
    for s in sources:
        counts[s.scene] = counts.get(s.scene, 0) + 1
    chosen = set(ALWAYS_VALIDATION) & counts.keys()
    total = sum(counts[s] for s in chosen)
    for scene in sorted(counts, key=lambda sc: hashlib.sha256(sc.encode()).hexdigest()):
        if total >= share * len(sources):
            break
        if scene not in chosen:
            chosen.add(scene)
            total += counts[scene]
    return chosen


def load_source(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{path}: cannot read image")
    if image.shape[1] > REFERENCE_WIDTH:  # bring big photos to the 1080p scale first (thesis)
        scale = REFERENCE_WIDTH / image.shape[1]
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def random_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    cw, ch = int(w * CROP_FRACTION[0]), int(h * CROP_FRACTION[1])
    x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    return image[y : y + ch, x : x + cw]


@dataclass(frozen=True)
class CameraLook:
    """Sensor/ISP parameters of one variant, shared by its 9 blur classes."""

    gain: float
    contrast: float
    gamma: float
    grayscale: bool
    noise_std: float
    jpeg_quality: int | None
    seed: int

    @staticmethod
    def draw(rng: np.random.Generator) -> CameraLook:
        low_light = rng.random() < 0.2
        return CameraLook(
            gain=float(rng.uniform(0.15, 0.45) if low_light else rng.uniform(0.7, 1.3)),
            contrast=float(rng.uniform(0.7, 1.3)),
            gamma=float(rng.uniform(0.7, 1.4)),
            grayscale=bool(rng.random() < 0.12),  # IR / monochrome night look
            noise_std=float(rng.uniform(4, 12) if low_light else rng.uniform(0, 4)),
            jpeg_quality=int(rng.integers(35, 95)) if rng.random() < 0.7 else None,
            seed=int(rng.integers(1 << 31)),
        )

    def apply(self, image: np.ndarray) -> np.ndarray:
        x = image.astype(np.float32) / 255.0
        x = (x - 0.5) * self.contrast + 0.5
        x = np.clip(x * self.gain, 0, 1) ** self.gamma
        if self.grayscale:
            x = np.repeat(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)[..., None], 3, axis=2)
        x = x * 255.0
        if self.noise_std > 0:
            noise_rng = np.random.default_rng(self.seed)
            x = x + noise_rng.normal(0, self.noise_std, x.shape).astype(np.float32)
        out = np.clip(x + 0.5, 0, 255).astype(np.uint8)
        if self.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return out


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Full Gaussian: kernel radius ceil(3 sigma) (not the thesis' fixed 10x10, which truncates
    sigma >= 3)."""
    if sigma <= 0:
        return image
    radius = int(np.ceil(3 * sigma))
    return cv2.GaussianBlur(image, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma, sigmaY=sigma)


def render_variant(image: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """One augmentation, rendered in all 9 blur classes."""
    width = image.shape[1]  # sigma scales with the full source width, also for crops
    if rng.random() < 0.5:
        image = random_crop(image, rng)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.2:
        image = image[::-1]
    look = CameraLook.draw(rng)
    image = np.ascontiguousarray(image)
    return [to_model_rgb(look.apply(gaussian_blur(image, sigma_for(c, width)))) for c in range(9)]


def build(out: Path, sources: list[Source], train_variants: int, val_variants: int, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    val = validation_scenes(sources)
    for split in ("train", "val"):
        chosen = [s for s in sources if (s.scene in val) == (split == "val")]
        variants = train_variants if split == "train" else val_variants
        count = len(chosen) * variants * 9
        images = np.lib.format.open_memmap(
            out / f"{split}_x.npy", mode="w+", dtype=np.uint8, shape=(count, INPUT_SIZE, INPUT_SIZE, 3)
        )
        labels = np.zeros(count, dtype=np.int64)
        groups: list[str] = []
        i, start = 0, time.time()
        for n, source in enumerate(chosen, 1):
            image = load_source(source.path)
            for _ in range(variants):
                for c, sample in enumerate(render_variant(image, rng)):
                    images[i], labels[i] = sample, c
                    groups.append(str(source.path.relative_to(source.path.parents[1])))
                    i += 1
            rate = n / max(time.time() - start, 1e-6)
            print(f"\r{split}: {n}/{len(chosen)} sources, {i}/{count} samples, "
                  f"eta {(len(chosen) - n) / rate:5.0f}s", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        images.flush()
        np.save(out / f"{split}_y.npy", labels)
        (out / f"{split}_sources.json").write_text(json.dumps(
            {"scenes": sorted({s.scene for s in chosen}), "samples": groups}, indent=0))
    (out / "classes.json").write_text(json.dumps(CLASS_NAMES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("models/work/dataset"))
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="extra folder of sharp photos (e.g. from get_debian_photos.sh, or a site's frames)")
    parser.add_argument("--train-variants", type=int, default=4)
    parser.add_argument("--val-variants", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sources = find_sources(args.extra)
    val_scenes = sorted(validation_scenes(sources))
    print(f"{len(sources)} sources; validation scenes: {val_scenes}", file=sys.stderr)
    build(args.out, sources, args.train_variants, args.val_variants, args.seed)


if __name__ == "__main__":
    main()
