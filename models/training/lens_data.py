"""Cache 448x448 training/validation samples with lens-like defocus, for the patch trainer.

Per source and variant one camera look (crop, flips, exposure, gamma, low light / IR grey,
sensor noise, JPEG) and one point-spread function are drawn, and all 9 classes are rendered
from them, so the classes of a variant differ only by the amount of blur:

1. optics: the PSF (`models.synth.psf`: Gaussian 30%, soft disc 30%, ring 20%, elliptic 20%,
   each scaled to the class sigma by equal second moment) on the source at its own scale
   (b_s = sigma s at 1920 px wide; narrower sources get proportionally less, as the daemon sees
   them); in 25% of the variants only behind a depth-like mask (partial defocus);
2. sensor and ISP: the camera look (`build_dataset.CameraLook`), at source resolution;
3. the daemon's own `focusguard.analysis.preprocess.to_model_rgb` (one resize rule, one crop rule,
   one colour order for training and serving).

Partial-defocus variants also store their mask at 56x56 (uint8, 255 = defocused), so the
patch trainer labels a crop by the blur it actually holds (a crop in the sharp part is
`sharp`). The split is by scene, as `build_dataset.validation_scenes`.

Usage: python -m models.training.lens_data --out models/work/lens [--extra DIR ...] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from focusguard.analysis.preprocess import to_model_rgb
from models.synth import psf
from models.training.build_dataset import (
    ALWAYS_VALIDATION,
    CameraLook,
    Source,
    find_sources,
    load_source,
    random_crop,
    validation_scenes,
)
from models.training.classes import CLASS_NAMES, CLASS_SIGMAS, INPUT_SIZE

PSF_KINDS = (("gaussian", 0.3), ("disc", 0.3), ("ring", 0.2), ("elliptic", 0.2))
PARTIAL_SHARE = 0.25
MASK_SIDE = 56  # 448 / 8: the resolution of the crop labels


@dataclass(frozen=True)
class Job:
    source: Source
    seed: int


def draw_kind(rng: np.random.Generator) -> str:
    names, weights = zip(*PSF_KINDS, strict=True)
    return str(rng.choice(names, p=np.asarray(weights) / sum(weights)))


def render_lens_variant(image: npt.NDArray[np.uint8], rng: np.random.Generator
                        ) -> tuple[list[npt.NDArray[np.uint8]], npt.NDArray[np.uint8] | None, str]:
    """One look and one PSF, rendered in all 9 classes (448x448 RGB uint8), the partial mask
    (56x56, or None for whole-frame defocus) and the PSF kind."""
    width = image.shape[1]  # sigma scales with the full source width, also for crops
    if rng.random() < 0.5:
        image = random_crop(image, rng)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.2:
        image = image[::-1]
    image = np.ascontiguousarray(image)
    look = CameraLook.draw(rng)
    kind = draw_kind(rng)
    kernel_rng_seed = int(rng.integers(1 << 31))  # same PSF shape (ring ratio, ellipse) for all classes
    mask = psf.depth_mask(*image.shape[:2], rng) if rng.random() < PARTIAL_SHARE else None
    samples = []
    for sigma_1080p in CLASS_SIGMAS:
        sigma = psf.sigma_pixels(sigma_1080p, width)
        optics = psf.blur(image, kind, sigma, np.random.default_rng(kernel_rng_seed))
        if mask is not None and sigma > 0:
            m = mask[..., None]
            optics = np.clip(np.rint(optics * m + image * (1.0 - m)), 0, 255).astype(np.uint8)
        samples.append(to_model_rgb(look.apply(optics)))
    small = None
    if mask is not None:
        small = np.clip(cv2.resize(mask, (MASK_SIDE, MASK_SIDE), interpolation=cv2.INTER_AREA) * 255 + 0.5,
                        0, 255).astype(np.uint8)
    return samples, small, kind


def _render(job: Job) -> tuple[list[npt.NDArray[np.uint8]], npt.NDArray[np.uint8] | None, str]:
    return render_lens_variant(load_source(job.source.path), np.random.default_rng(job.seed))


def build(out: Path, sources: list[Source], train_variants: int, val_variants: int, seed: int,
          workers: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    val = validation_scenes(sources)
    seeds = np.random.default_rng(seed)
    for split in ("train", "val"):
        chosen = [s for s in sources if (s.scene in val) == (split == "val")]
        variants = train_variants if split == "train" else val_variants
        jobs = [Job(s, int(seeds.integers(1 << 31))) for s in chosen for _ in range(variants)]
        count = len(jobs) * 9
        images = np.lib.format.open_memmap(out / f"{split}_x.npy", mode="w+", dtype=np.uint8,
                                           shape=(count, INPUT_SIZE, INPUT_SIZE, 3))
        masks = np.full((len(jobs), MASK_SIDE, MASK_SIDE), 255, np.uint8)
        labels = np.tile(np.arange(9), len(jobs))
        meta: list[dict[str, object]] = []
        start = time.time()
        with multiprocessing.Pool(workers) as pool:
            for v, (samples, mask, kind) in enumerate(pool.imap(_render, jobs, chunksize=2)):
                images[9 * v : 9 * v + 9] = np.stack(samples)
                if mask is not None:
                    masks[v] = mask
                meta.append({"scene": jobs[v].source.scene, "source": jobs[v].source.path.name,
                             "kind": kind, "partial": mask is not None})
                done = v + 1
                eta = (len(jobs) - done) * (time.time() - start) / done
                print(f"\r{split}: {done}/{len(jobs)} variants ({9 * done} samples), eta {eta:4.0f}s",
                      end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        images.flush()
        np.save(out / f"{split}_y.npy", labels)
        np.save(out / f"{split}_masks.npy", masks)
        (out / f"{split}_variants.json").write_text(json.dumps(meta))
    (out / "classes.json").write_text(json.dumps(CLASS_NAMES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("models/work/lens"))
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="extra folder of sharp photos (get_debian_photos.sh, get_more_photos.sh, a site's frames)")
    parser.add_argument("--train-variants", type=int, default=10)
    parser.add_argument("--val-variants", type=int, default=3)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sources = find_sources(args.extra)
    scenes = sorted(validation_scenes(sources))
    print(f"{len(sources)} sources; validation scenes ({len(scenes)}): {scenes}; "
          f"always validation: {sorted(ALWAYS_VALIDATION)}", file=sys.stderr)
    build(args.out, sources, args.train_variants, args.val_variants, args.seed, args.workers)


if __name__ == "__main__":
    main()
