"""Site fine-tuning: adapt the shipped model to a site's own sharp frames (issue 9).

Input: a folder of sharp frames, e.g. the output of `focusguard collect` (OUT/<camera>/*.jpg +
manifest.csv), or any folder of images (the parent folder names the camera). Per camera the
latest `--holdout` share of the frames (by file name: collect names frames by UTC time) is held
out; the rest are rendered in the 9 synthetic blur classes exactly like the training set
(build_dataset.render_variant: crop/flip/exposure/noise/JPEG, blur at the source's scale, the
daemon's resize).

What is tuned: the shipped model is rebuilt from its int8 file (from_tflite.py), so a site never
needs the original float checkpoint. Its front end is the analytic multi-scale gradient-energy
pyramid (structured_init.py) and its head reads the 44 globally averaged energy channels; the
head (44 -> 64 -> 9, the thesis' Dense 64 + Dense 9 folded as identical per-cell weights) is
fine-tuned from the shipped head on the site's samples, a sharp-class bias is set for
`--target-far` on them, and the result is exported int8 (representative set: the site's samples).
End-to-end training of the convolutions is not done: on this CPU it degraded the model
(MODEL_CARD.md).

Report (`<out stem>.report.json` + confusion PNGs): 9-class accuracy and binary figures at the
sharp/b_0.5 threshold, before (shipped) and after (site), both int8, on the held-out frames.
Adopt the new model with one config line: `model: {path: <out>}`.

Usage: python -m models.training.finetune_site SITE_DIR --out models/site/site_int8.tflite
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np
from tqdm import tqdm

from focusguard.analysis.infer import default_model_path
from models.training.build_dataset import load_source, render_variant
from models.training.classes import LABELS_PATH
from models.training.evaluate import class_metrics, plot_confusion

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
FEATURE_BATCH = 16


@dataclass(frozen=True)
class SiteFrame:
    path: Path
    camera: str


def site_frames(folder: Path) -> list[SiteFrame]:
    """Frames of a site folder: manifest.csv rows when present, else every image below it
    (camera = parent folder name). Sorted by camera, then file name (= time for collect)."""
    manifest = folder / "manifest.csv"
    frames: list[SiteFrame] = []
    if manifest.is_file():
        with manifest.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                path = folder / row["file"]
                if path.is_file():
                    frames.append(SiteFrame(path, row.get("camera") or path.parent.name))
    else:
        frames = [SiteFrame(p, p.parent.name) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    if not frames:
        raise SystemExit(f"{folder}: no frames found (expected images or a manifest.csv from focusguard collect)")
    return sorted(frames, key=lambda fr: (fr.camera, fr.path.name))


def split_by_time(frames: list[SiteFrame], holdout: float) -> tuple[list[SiteFrame], list[SiteFrame]]:
    """(train, held out): per camera, the latest `holdout` share (at least one frame when the
    camera has two or more) is held out."""
    train, held = [], []
    cameras = sorted({f.camera for f in frames})
    for cam in cameras:
        own = [f for f in frames if f.camera == cam]
        n_held = 0 if len(own) < 2 or holdout <= 0 else max(1, round(len(own) * holdout))
        train += own[: len(own) - n_held]
        held += own[len(own) - n_held :]
    return train, held


def render_samples(frames: list[SiteFrame], variants: int, seed: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """(N*variants*9, 448, 448, 3) uint8 RGB samples and their class labels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for frame in tqdm(frames, desc=desc, file=sys.stderr, unit="frame"):
        source = load_source(frame.path)
        for _ in range(variants):
            for c, sample in enumerate(render_variant(source, rng)):
                images.append(sample)
                labels.append(c)
    return np.stack(images), np.array(labels, np.int64)


class FeatureExtractor:
    """The rebuilt model's trunk up to relu6, globally averaged over the head's channels."""

    def __init__(self, model) -> None:
        import tf_keras as keras

        from models.training.from_tflite import head_from_model, structured_channels

        self.model = model
        self.channels = structured_channels(model)
        self.head = head_from_model(model, self.channels)
        self.trunk = keras.Model(model.input, model.get_layer("relu6").output)

    def __call__(self, images: np.ndarray, desc: str = "features") -> np.ndarray:
        out = np.zeros((len(images), len(self.channels)), np.float32)
        for s in tqdm(range(0, len(images), FEATURE_BATCH), desc=desc, file=sys.stderr, unit="batch"):
            x = images[s : s + FEATURE_BATCH].astype(np.float32) / 255.0
            maps = self.trunk(x, training=False).numpy()[..., self.channels]
            out[s : s + FEATURE_BATCH] = maps.mean(axis=(1, 2))
        return out


def head_probs(head: list[np.ndarray], features: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = head
    hidden = np.maximum(features @ w1 + b1, 0.0)
    logits = hidden @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def sharp_bias_for(probs: np.ndarray, labels: np.ndarray, target_far: float) -> float:
    """Smallest log-bias (may be negative) on sharp/b_0.5 that holds the false-alarm rate of
    these samples at `target_far` (an alarm: argmax in b_0.75 and above)."""
    sharp = labels < 2
    logits = np.log(probs + 1e-9)
    for bias in np.arange(-4.0, 8.01, 0.1):
        shifted = logits.copy()
        shifted[:, :2] += bias
        if (shifted[sharp].argmax(1) >= 2).mean() <= target_far:
            return float(round(bias, 2))
    return 8.0


def fine_tune_head(head: list[np.ndarray], features: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                   epochs: int, lr: float, target_far: float, seed: int = 0) -> tuple[list[np.ndarray], dict]:
    """Continue training the shipped head on the site's features (standardised inside the first
    layer), early stopping on 15% of the frames (`groups`: frame index per sample), then the
    sharp-class bias. Returns the new head and what happened."""
    import tf_keras as keras

    from models.training.train import make_head

    keras.utils.set_random_seed(seed)
    mean, std = features.mean(0), features.std(0) + 1e-6
    w1, b1, w2, b2 = head
    net = make_head(features.shape[1], lr)
    # The same function in standardised coordinates: x = z*std + mean.
    net.get_layer("dense").set_weights([w1 * std[:, None], b1 + mean @ w1])
    net.get_layer("classes").set_weights([w2, b2])
    frames = np.unique(groups)
    rng = np.random.default_rng(seed)
    inner_val = set(rng.choice(frames, max(1, len(frames) * 15 // 100), replace=False).tolist()) if len(frames) > 3 else set()
    is_val = np.array([g in inner_val for g in groups])
    z = (features - mean) / std
    fit_kwargs = {}
    if is_val.any():
        fit_kwargs["validation_data"] = (z[is_val], labels[is_val])
        fit_kwargs["callbacks"] = [keras.callbacks.EarlyStopping("val_loss", patience=15, restore_best_weights=True)]
    before = float(net.evaluate(z, labels, verbose=0)[1])
    history = net.fit(z[~is_val], labels[~is_val], batch_size=64, epochs=epochs, verbose=0, **fit_kwargs)
    k1, c1 = net.get_layer("dense").get_weights()
    k2, c2 = net.get_layer("classes").get_weights()
    new = [k1 / std[:, None], c1 - (mean / std) @ k1, k2, c2.copy()]
    bias = sharp_bias_for(head_probs(new, features), labels, target_far)
    new[3][:2] += bias
    return new, {"site_train_acc_before": before, "epochs_run": len(history.history["loss"]),
                 "sharp_bias": bias, "inner_val_frames": len(inner_val)}


def export_site_model(base_tflite: Path, head: list[np.ndarray], representative: np.ndarray, out: Path) -> None:
    """Rebuild the base model, fold the new head in, convert to int8 (batch 1, uint8 I/O)."""
    from models.training.export import to_int8_tflite
    from models.training.from_tflite import fold_head, model_from_tflite, structured_channels

    model = model_from_tflite(base_tflite, batch_size=1)
    fold_head(model, structured_channels(model), head)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(to_int8_tflite(model, representative))
    shutil.copyfile(LABELS_PATH, out.with_suffix(".labels.txt"))  # found by the daemon beside the model


def predict_int8(tflite: Path, images: np.ndarray, desc: str) -> np.ndarray:
    from focusguard.analysis.infer import Classifier

    classifier = Classifier(tflite, device="cpu", threads=2)
    return np.array([classifier.classify(im).argmax() for im in tqdm(images, desc=desc, file=sys.stderr)])


def summary_line(name: str, metrics: dict) -> str:
    b = metrics["binary"]
    return (f"{name:8s} 9-class {metrics['accuracy_9class']:.3f} | binary acc {b['accuracy']:.3f} "
            f"recall {b['recall']:.3f} precision {b['precision']:.3f} FAR {b['false_alarm_rate']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="folder of sharp frames (focusguard collect output)")
    parser.add_argument("--out", type=Path, default=Path("models/site/site_int8.tflite"))
    parser.add_argument("--base", type=Path, default=default_model_path())
    parser.add_argument("--holdout", type=float, default=0.3, help="latest share of each camera's frames held out")
    parser.add_argument("--variants", type=int, default=3, help="augmented renderings per training frame")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--target-far", type=float, default=0.0, help="false-alarm rate on the site's training samples")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from models.training.from_tflite import model_from_tflite

    start = time.time()
    frames = site_frames(args.site)
    train, held = split_by_time(frames, args.holdout)
    cameras = sorted({f.camera for f in frames})
    print(f"{len(frames)} frames from {len(cameras)} cameras: {len(train)} to tune on, {len(held)} held out",
          file=sys.stderr)
    train_x, train_y = render_samples(train, args.variants, args.seed, "render train")
    groups = np.repeat(np.arange(len(train)), args.variants * 9)
    extractor = FeatureExtractor(model_from_tflite(args.base))
    features = extractor(train_x, "site features")
    head, info = fine_tune_head(extractor.head, features, train_y, groups, args.epochs, args.lr, args.target_far, args.seed)
    export_site_model(args.base, head, train_x[np.random.default_rng(0).permutation(len(train_x))[:200]], args.out)
    minutes = (time.time() - start) / 60
    report = {"site": str(args.site), "cameras": cameras, "frames_tuned": len(train), "frames_held_out": len(held),
              "samples_tuned": len(train_y), "fine_tune": info, "minutes": round(minutes, 1), "model": str(args.out)}
    if held:
        held_x, held_y = render_samples(held, 1, args.seed + 1, "render held out")
        report["held_out_samples"] = len(held_y)
        for name, model in (("shipped", args.base), ("site", args.out)):
            report[name] = class_metrics(held_y, predict_int8(model, held_x, name))
            plot_confusion(report[name]["confusion"], f"{name} int8 on held-out site frames: 9-class "
                           f"{report[name]['accuracy_9class']:.3f}", args.out.with_suffix(f".{name}.png"))
            print(summary_line(name, report[name]))
    report_path = args.out.with_suffix(".report.json")
    report_path.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes) and {report_path} in {minutes:.1f} min")
    print(f"adopt it with one config line:  model: {{path: {args.out.resolve()}}}")


if __name__ == "__main__":
    main()
