"""Evaluate the float (Keras) and int8 (TFLite) classifiers, and the shipped pipeline on real defocus.

Prints and writes `<out>/metrics.json` and confusion-matrix PNGs:
- validation split (synthetic blur, scenes never trained on): 9-class accuracy and confusion
  matrix; binary accuracy, recall, precision and false-alarm rate at the sharp/b_0.5 threshold
  (positive = blurry = b_0.75 and above), for the float and the int8 model;
- `../shared/data/real_defocus/`: the same binary figures through the daemon's own
  preprocessing and threshold (`focusguard check --json`).

Usage: python -m models.training.evaluate --weights W.h5 --tflite M.tflite [--out models/eval]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.training.classes import CLASS_NAMES

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
FIRST_BLURRY = CLASS_NAMES.index("b_0.75")


def binary_metrics(truth_blurry: np.ndarray, pred_blurry: np.ndarray) -> dict:
    tp = int((truth_blurry & pred_blurry).sum())
    tn = int((~truth_blurry & ~pred_blurry).sum())
    fp = int((~truth_blurry & pred_blurry).sum())
    fn = int((truth_blurry & ~pred_blurry).sum())
    return {
        "accuracy": (tp + tn) / max(tp + tn + fp + fn, 1),
        "recall": tp / max(tp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "false_alarm_rate": fp / max(fp + tn, 1),
        "tp": tp, "tn": tn, "fp": fp, "fn": fn,
    }


def blurry_margin(probs: np.ndarray) -> np.ndarray:
    """log P(likeliest blurry class) - log P(likeliest sharp one): the daemon says blurry above 0."""
    logs = np.log(probs.astype(np.float64) + 1e-4)
    return logs[:, FIRST_BLURRY:].max(1) - logs[:, :FIRST_BLURRY].max(1)


def at_equal_far(margins: np.ndarray, blurry: np.ndarray, target_far: float) -> dict[str, float]:
    """Recall at the lowest margin threshold whose false-alarm rate is at most `target_far` (the
    operating point a bias on the sharp classes would give; chosen on the same validation set)."""
    sharp_margins = np.sort(margins[~blurry])[::-1]
    allowed = int(np.floor(target_far * len(sharp_margins) + 1e-9))
    threshold = float(sharp_margins[allowed]) if allowed < len(sharp_margins) else -np.inf
    return {"threshold": threshold, "recall": float((margins[blurry] > threshold).mean()),
            "far": float((margins[~blurry] > threshold).mean())}


def class_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict:
    confusion = np.zeros((9, 9), int)
    np.add.at(confusion, (labels, predicted), 1)
    return {
        "accuracy_9class": float((labels == predicted).mean()),
        "confusion": confusion.tolist(),
        "binary": binary_metrics(labels >= FIRST_BLURRY, predicted >= FIRST_BLURRY),
    }


def plot_confusion(confusion: list[list[int]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.array(confusion)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(9), CLASS_NAMES, rotation=45)
    ax.set_yticks(range(9), CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > matrix.max() / 2 else "black")
    ax.axhline(FIRST_BLURRY - 0.5, color="red", lw=0.8)
    ax.axvline(FIRST_BLURRY - 0.5, color="red", lw=0.8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def predict_float(weights: Path, images: np.ndarray) -> np.ndarray:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from models.training.net import build_classifier

    model = build_classifier()
    model.load_weights(str(weights))
    out = []
    for s in tqdm(range(0, len(images), 32), desc="float", file=sys.stderr):
        out.append(model(images[s : s + 32].astype(np.float32) / 255.0, training=False).numpy())
    return np.concatenate(out).argmax(1)


def int8_probabilities(tflite: Path, images: np.ndarray) -> np.ndarray:
    """(n, 9) class probabilities of the int8 model, through the daemon's interpreter."""
    from focusguard.analysis.infer import Classifier

    classifier = Classifier(tflite, device="cpu", threads=2)
    return np.stack([classifier.classify(np.asarray(im)) for im in tqdm(images, desc="int8", file=sys.stderr)])


def predict_int8(tflite: Path, images: np.ndarray) -> np.ndarray:
    return int8_probabilities(tflite, images).argmax(1)


def real_defocus(tflite: Path) -> dict:
    """Binary figures on real optical defocus, through `focusguard check` (daemon preprocessing)."""
    with open(SHARED / "MANIFEST.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["file"].startswith("real_defocus/")]
    paths = [str(SHARED / r["file"]) for r in rows]
    out = subprocess.run([sys.executable, "-m", "focusguard", "check", "--json", "--model", str(tflite), *paths],
                         check=True, capture_output=True, text=True).stdout
    verdicts = {json.loads(line)["path"]: json.loads(line) for line in out.splitlines() if line.strip()}
    files = []
    for row, path in zip(rows, paths, strict=True):
        v = verdicts[path]
        files.append({"file": row["file"], "label": row["label"], "class": v["class"], "blurry": v["blurry"]})
    truth = np.array([not f["label"].startswith("sharp") for f in files])
    pred = np.array([f["blurry"] for f in files])
    pairs = [f for f in files if "/pairs/" in f["file"]]
    pairs_right = sum(f["blurry"] == (not f["label"].startswith("sharp")) for f in pairs)
    return {"binary": binary_metrics(truth, pred), "pairs_files_right": f"{pairs_right}/{len(pairs)}",
            "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=Path("models/work/dataset"))
    parser.add_argument("--weights", type=Path, help="float Keras weights (needs TensorFlow)")
    parser.add_argument("--tflite", type=Path, default=Path("daemon/focusguard/analysis/model/focusguard_pix2pix_448_int8.tflite"))
    parser.add_argument("--out", type=Path, default=Path("models/eval"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    images = np.load(args.dataset / "val_x.npy", mmap_mode="r")
    labels = np.load(args.dataset / "val_y.npy")
    report: dict = {"validation_samples": len(labels)}
    if args.weights:
        report["float"] = class_metrics(labels, predict_float(args.weights, images))
    report["int8"] = class_metrics(labels, predict_int8(args.tflite, images))
    report["real_defocus"] = real_defocus(args.tflite)
    for kind in ("float", "int8"):
        if kind in report:
            r = report[kind]
            plot_confusion(r["confusion"], f"{kind}: 9-class acc {r['accuracy_9class']:.3f} "
                           f"(validation, {len(labels)} samples)", args.out / f"confusion_{kind}.png")
            b = r["binary"]
            print(f"{kind:6s} 9-class acc {r['accuracy_9class']:.4f} | binary acc {b['accuracy']:.4f} "
                  f"recall {b['recall']:.4f} precision {b['precision']:.4f} FAR {b['false_alarm_rate']:.4f}")
    b = report["real_defocus"]["binary"]
    print(f"real defocus (focusguard check): acc {b['accuracy']:.4f} recall {b['recall']:.4f} "
          f"precision {b['precision']:.4f} FAR {b['false_alarm_rate']:.4f}; "
          f"pairs right {report['real_defocus']['pairs_files_right']}")
    for f in report["real_defocus"]["files"]:
        print(f"  {f['file']:55s} {f['label']:35s} -> {f['class']:6s} {'blurry' if f['blurry'] else 'sharp'}")
    (args.out / "metrics.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
