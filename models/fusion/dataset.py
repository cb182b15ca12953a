"""The fusion's fitting and evaluation table, made from the shared sharp frames (never real_defocus/).

Each *camera* is a time-ordered list of in-focus frames: the 15 CCTV cameras and the GoPro scene
of `../shared/data/sharp/` (10 frames each, spread over time: traffic, light and weather move
between them), and each Debian photograph (`get_debian_photos.sh`) as a 1920x1080 camera whose
frames differ by sensor noise, exposure and compression only. For each camera and *role*:

* ``canonical``: frames 0-4 are its start-up, frames 5-9 are judged (the leave-cameras-out
  protocol of models/training/leave_cameras_out.py);
* ``swapped`` (fitting only, doubles the data): frames 5-9 start, 0-4 are judged.

The start-up frames give the baselines: a day baseline (the frames as they are) and an IR night
one (the same frames through `nuisances.ir_switch`, the camera's own IR look). Every judged
frame becomes, by day and at IR night:

* the 9 classes (sharp .. b_7, sigma at the 1920 px scale scaled to the frame's width), each
  once over the whole frame and once behind a depth-like mask (partial), with a PSF kind drawn
  from psf.KINDS (optics first, then the night look, then a mild ISP pass: noise + JPEG);
* each nuisance of `nuisances.NUISANCES` on the sharp frame (label: not defocused), severity
  drawn; night nuisances go before the IR look when they are in the scene (fog, rain, a truck)
  and after it when they are in the sensor (noise, compression, headlights' glare).

Per sample the table keeps the fusion features (focusguard.analysis.evidence, against the baseline of the
sample's own lighting regime, as the daemon does) and every other detector's verdict and score
through the daemon's own rules: the CNN (shipped int8 model, `focusguard.analysis.infer.Classifier`),
the DFT and relative Laplacian (reference from the day start-up, as in the daemon) and the old
`combined` (its per-regime tile-sharpness baselines). A sample whose regime has no baseline
(e.g. a day frame darkened into `low_light`) is what the daemon learns from, not judges: it is
kept with ``has_baseline`` False and counted as a sharp verdict for every relative detector.

Run: python -m models.fusion.dataset [--out models/work/fusion/table.npz] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from focusguard.analysis import evidence
from focusguard.analysis.baseline import REGIME_LEVELS, lighting_regime, tile_sharpness
from focusguard.analysis.combined import COMBINED_DROP, NIGHT_DROP, combined_verdict
from focusguard.analysis.detectors import (
    LAPLACIAN_RATIO,
    dft_threshold,
    high_frequency_energy,
    laplacian_variance,
)
from focusguard.analysis.infer import DEFAULT_LABELS, Classifier
from focusguard.analysis.preprocess import to_model_rgb
from models.synth import nuisances, psf

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
PHOTOS = REPO / "models" / "work" / "photos"
SIGMAS = (0.0, 0.5, 0.75, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0)  # the 9 classes' sigma at 1920 px wide
FIRST_BLURRY = DEFAULT_LABELS.index("b_0.75")
START = 5  # start-up frames per camera
# Nuisances that live in the scene or the optics go before the night look; the others after it.
SCENE_NUISANCES = {"lights", "fog", "rain", "snow", "truck", "person_near", "ptz_move", "vibration", "exposure"}
NIGHT_SKIP = {"ir_switch"}  # already at night


def camera_frames() -> dict[str, list[Path]]:
    """camera → time-ordered frame paths (CCTV cameras, the GoPro scene, one camera per photo)."""
    cams: dict[str, list[Path]] = {}
    cctv = SHARED / "sharp" / "cctv"
    for cam in sorted(p for p in cctv.iterdir() if p.is_dir()):
        cams[cam.name] = sorted(cam.glob("*.jpg"))
    cams["gopro"] = sorted((SHARED / "sharp" / "gopro").glob("*.jpg"))
    for photo in sorted(PHOTOS.glob("*.jpg")):
        cams[f"photo_{photo.stem}"] = [photo] * 10
    return cams


def monochrome(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def isp(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mild camera pass on every frame (start-up and judged alike): sensor noise, JPEG."""
    # Real sensors are noisier than stock photographs shrunk to 1080p: up to sigma 3.5 by day.
    noisy = image.astype(np.float32) + rng.normal(0, rng.uniform(0.0, 3.5), image.shape[:2])[..., None]
    out = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out


def jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The judged view a little off the start-up's, as cameras are: half the samples shifted by up to
    1.5% of the width (mast sway, a re-seated housing; integer pixels, no resampling), a quarter
    magnified by 0.5-3% (focus breathing: a lens changes its field of view as its focus moves;
    Lanczos, the least blurring resampling). Applied alike to sharp and defocused samples, so
    neither the shift nor the resampling becomes a cue."""
    h, w = image.shape[:2]
    out = image
    if rng.random() < 0.25:
        scale = float(rng.uniform(1.005, 1.03))
        big = cv2.resize(out, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LANCZOS4)
        y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
        out = big[y0 : y0 + h, x0 : x0 + w]
    if rng.random() < 0.5:
        limit = max(1, int(0.015 * w))
        dx, dy = int(rng.integers(-limit, limit + 1)), int(rng.integers(-limit // 2, limit // 2 + 1))
        padded = cv2.copyMakeBorder(out, max(dy, 0), max(-dy, 0), max(dx, 0), max(-dx, 0), cv2.BORDER_REFLECT)
        out = padded[max(-dy, 0) : max(-dy, 0) + h, max(-dx, 0) : max(-dx, 0) + w]
    return np.ascontiguousarray(out)


def load_frame(path: Path, photo: bool, rng: np.random.Generator) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read {path}")
    if photo:  # a 1920x1080 view, exposure wobble between "frames"
        h, w = image.shape[:2]
        if w >= 1920 and h >= 1080:
            y0, x0 = (h - 1080) // 2, (w - 1920) // 2
            image = image[y0 : y0 + 1080, x0 : x0 + 1920]
        image = np.clip(image.astype(np.float32) * rng.uniform(0.95, 1.05), 0, 255).astype(np.uint8)
    return image


@dataclass
class Measured:
    regime: str
    profile: evidence.Profile
    probs: np.ndarray
    dft: float
    laplacian: float
    sharpness: float | None


class Measurer:
    """Every detector's raw measure of one frame (the CNN once, shared)."""

    def __init__(self, threads: int = 1) -> None:
        self.classifier = Classifier(None, None, device="cpu", threads=threads)

    def __call__(self, frame: np.ndarray) -> Measured:
        regime = lighting_regime(frame)
        probs = self.classifier.classify(to_model_rgb(frame))
        return Measured(
            regime=regime, profile=evidence.profile(frame, probs, regime), probs=probs,
            dft=high_frequency_energy(frame), laplacian=laplacian_variance(frame),
            sharpness=tile_sharpness(frame, REGIME_LEVELS[regime]).value,
        )  # fmt: skip


@dataclass
class Baselines:
    """A camera's start-up: fusion profiles and combined's sharpness per regime, DFT/Laplacian references."""

    profiles: dict[str, evidence.Profile]
    sharpness: dict[str, float]
    dft: float
    laplacian: float
    ir_strength: float


def start_up(measure: Measurer, frames: list[np.ndarray], rng: np.random.Generator) -> Baselines:
    ir_strength = float(rng.uniform(0.0, 1.0))
    by_regime: dict[str, list[Measured]] = {}
    day = [measure(f) for f in frames]
    night = [measure(isp(nuisances.ir_switch(f, rng, ir_strength), rng)) for f in frames]
    for m in day + night:
        by_regime.setdefault(m.regime, []).append(m)
    profiles = {r: evidence.median_profile([m.profile for m in ms]) for r, ms in by_regime.items() if len(ms) >= 3}
    sharpness = {}
    for r, ms in by_regime.items():
        values = [m.sharpness for m in ms if m.sharpness is not None]
        if len(values) >= 3:
            sharpness[r] = float(np.median(values))
    return Baselines(profiles, sharpness, float(np.median([m.dft for m in day])),
                     float(np.median([m.laplacian for m in day])), ir_strength)  # fmt: skip


def judged_variants(frame: np.ndarray, group: str, base: Baselines,
                    rng: np.random.Generator) -> list[tuple[dict[str, Any], np.ndarray]]:  # fmt: skip
    """(labels, image) of every sample made from one judged frame in `group` (day | night)."""
    def night(image: np.ndarray) -> np.ndarray:
        return nuisances.ir_switch(image, rng, float(np.clip(base.ir_strength + rng.normal(0, 0.1), 0, 1)))

    out = []
    h, w = frame.shape[:2]
    for cls, sigma in enumerate(SIGMAS):
        for partial in (False, True):
            kind = str(rng.choice(psf.KINDS))
            mask = psf.depth_mask(h, w, rng) if partial else None
            image = psf.defocus(jitter(frame, rng), kind, sigma, rng, mask)
            if group == "night":
                image = night(image)
            labels = {"cls": cls, "kind": kind, "partial": partial, "nuisance": ""}
            out.append((labels, isp(image, rng)))
    for name in nuisances.NUISANCES:
        if group == "night" and name in NIGHT_SKIP:
            continue
        if group == "night" and name in SCENE_NUISANCES:
            image = night(nuisances.apply(name, frame, rng))
        elif group == "night":  # in the sensor, after the IR look; an IR stream stays monochrome
            image = monochrome(nuisances.apply(name, night(frame), rng))
        else:
            image = nuisances.apply(name, frame, rng)
        out.append(({"cls": 0, "kind": "", "partial": False, "nuisance": name}, isp(image, rng)))
    return out


def other_verdicts(m: Measured, base: Baselines) -> dict[str, Any]:
    """The single detectors' verdicts and scores (lower score = blurrier) through the daemon's rules."""
    cnn_p = float(np.sum(m.probs[FIRST_BLURRY:]))
    cnn_blurry = int(np.argmax(m.probs)) >= FIRST_BLURRY
    dft_ratio = m.dft / base.dft
    lap_ratio = m.laplacian / base.laplacian
    baseline = base.sharpness.get(m.regime)
    if baseline is None:  # learning: a new regime's first frames define its normal (day: unless CNN-blurry)
        comb_blurry = cnn_blurry and m.regime == "day"
        comb_score = 1.0 - cnn_p
    else:
        comb_blurry, _ = combined_verdict(cnn_blurry, m.sharpness, baseline, COMBINED_DROP, m.regime, NIGHT_DROP)
        comb_score = (m.sharpness or 0.0) / baseline
    return {
        "cnn": cnn_blurry, "cnn_score": 1.0 - cnn_p,
        "dft": m.dft <= dft_threshold(base.dft) * base.dft, "dft_score": dft_ratio,
        "laplacian": m.laplacian <= LAPLACIAN_RATIO * base.laplacian, "laplacian_score": lap_ratio,
        "combined": bool(comb_blurry), "combined_score": comb_score,
    }  # fmt: skip


def camera_rows(task: tuple[str, list[str], str, int]) -> list[dict[str, Any]]:
    """All samples of one camera in one role (a worker's unit of work)."""
    camera, paths, role, seed = task
    rng = np.random.default_rng(seed)
    measure = Measurer(threads=1)
    photo = camera.startswith("photo_")
    frames = [isp(load_frame(Path(p), photo, rng), rng) for p in paths]
    start_idx = list(range(START)) if role == "canonical" else list(range(START, len(frames)))
    judged_idx = [i for i in range(len(frames)) if i not in start_idx]
    base = start_up(measure, [frames[i] for i in start_idx], rng)
    rows = []
    for i in judged_idx:
        for group in ("day", "night"):
            for labels, image in judged_variants(frames[i], group, base, rng):
                m = measure(image)
                profile_base = base.profiles.get(m.regime)
                feats = evidence.features(m.profile, profile_base) if profile_base is not None \
                    else np.zeros(len(evidence.FEATURES))  # fmt: skip
                rows.append({
                    "camera": camera, "role": role, "frame": i, "group": group, "regime": m.regime,
                    "has_baseline": profile_base is not None, "features": feats, "probs": m.probs,
                    "width": image.shape[1], **labels, **other_verdicts(m, base),
                    **profile_columns("now", m.profile), **profile_columns("base", profile_base or m.profile),
                    "base_cnn": (profile_base.cnn if profile_base is not None and profile_base.cnn is not None
                                 else np.zeros(len(m.probs), np.float32)),
                })  # fmt: skip
    return rows


def profile_columns(prefix: str, p: evidence.Profile) -> dict[str, np.ndarray]:
    """A profile as table columns, so features can be recomputed without re-rendering (`featurize`)."""
    return {f"{prefix}_tile_std": p.tile_std, f"{prefix}_tile_lap": p.tile_lap,
            f"{prefix}_thumb": p.thumb.astype(np.float16),
            f"{prefix}_scalars": np.array([p.highpass, p.brightness, p.contrast, p.colour], np.float32)}  # fmt: skip


def stored_profile(table: dict[str, np.ndarray], prefix: str, i: int) -> evidence.Profile:
    hp, brightness, contrast, colour = (float(v) for v in table[f"{prefix}_scalars"][i])
    return evidence.Profile(
        tile_std=table[f"{prefix}_tile_std"][i], tile_lap=table[f"{prefix}_tile_lap"][i], highpass=hp,
        thumb=table[f"{prefix}_thumb"][i].astype(np.float32), brightness=brightness, contrast=contrast,
        colour=colour, regime=str(table["regime"][i]), cnn=table["probs"][i] if prefix == "now" else None,
    )  # fmt: skip


def featurize(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The table with its features recomputed from the stored profiles by the current focusguard.analysis.evidence
    (a feature change needs no new rendering). The base's CNN mean is the start-up's, as stored."""
    out = dict(table)
    base_cnn = table.get("base_cnn")
    feats = []
    for i in range(len(table["cls"])):
        base = stored_profile(table, "base", i)
        if base_cnn is not None:
            base.cnn = base_cnn[i]
        feats.append(evidence.features(stored_profile(table, "now", i), base) if table["has_baseline"][i]
                     else np.zeros(len(evidence.FEATURES)))  # fmt: skip
    out["features"] = np.stack(feats)
    out["feature_names"] = np.asarray(evidence.FEATURES)
    return out


def save(rows: list[dict[str, Any]], out: Path) -> None:
    columns: dict[str, np.ndarray] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        columns[key] = np.stack(values) if isinstance(values[0], np.ndarray) else np.asarray(values)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, feature_names=np.asarray(evidence.FEATURES), **columns)


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "models" / "work" / "fusion" / "table.npz")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--roles", default="canonical,swapped")
    parser.add_argument("--cameras", help="comma list (default: all)")
    args = parser.parse_args(argv)
    if not any(PHOTOS.glob("*.jpg")):
        print(f"note: no photographs in {PHOTOS} (bash ../shared/data/get_debian_photos.sh {PHOTOS})", file=sys.stderr)
    cams = camera_frames()
    if args.cameras:
        cams = {k: v for k, v in cams.items() if k in set(args.cameras.split(","))}
    roles = args.roles.split(",")
    # A photograph's "frames" differ only by noise: one role of it is enough.
    tasks = [(cam, [str(p) for p in paths], role, 1000 * i + j)
             for i, (cam, paths) in enumerate(sorted(cams.items())) for j, role in enumerate(roles)
             if role == "canonical" or not cam.startswith("photo_")]  # fmt: skip
    rows: list[dict[str, Any]] = []
    started = time.time()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for n, result in enumerate(pool.imap_unordered(camera_rows, tasks), 1):
            rows.extend(result)
            eta = (time.time() - started) / n * (len(tasks) - n)
            print(f"[{n}/{len(tasks)}] {result[0]['camera']} {result[0]['role']}: {len(result)} samples "
                  f"({time.time() - started:.0f} s, eta {eta:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    save(rows, args.out)
    with open(args.out.with_suffix(".cameras.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["camera", "frames"])
        for cam, paths in sorted(cams.items()):
            writer.writerow([cam, len(paths)])
    print(f"wrote {len(rows)} samples to {args.out} in {time.time() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
