"""Export trained weights to a full-integer int8 TFLite model with batch 1 (Edge TPU-compatible).

uint8 input with scale 1/255 and zero point 0, so raw RGB pixels go in directly; uint8 output.
Representative set: real training samples.

Usage: python -m models.training.export --weights W.h5 --dataset models/work/dataset --out models/X.tflite
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

from models.training.net import build_classifier

EDGETPU_OPS = {"CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"}


def to_int8_tflite(model, images: Iterable[np.ndarray]) -> bytes:  # model: a tf_keras Model, batch 1
    """Full-integer int8 conversion with uint8 I/O (scale 1/255, zero point 0); `images` (uint8
    RGB 448x448) are the representative set."""

    def representative():
        for image in images:
            yield [np.asarray(image)[None].astype(np.float32) / 255.0]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter.convert()


def write_int8(model, train_images: np.ndarray, out: Path, samples: int = 200) -> None:  # model: tf_keras, batch 1
    """Convert `model` with `samples` seeded picks of the training images as representatives; write `out`."""
    picks = np.random.default_rng(0).choice(len(train_images), size=min(samples, len(train_images)), replace=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(to_int8_tflite(model, (train_images[i] for i in sorted(picks))))  # sorted: sequential reads
    print(f"wrote {out} ({out.stat().st_size:,} bytes)", file=sys.stderr)


def export_int8(weights: Path | None, dataset: Path, out: Path, samples: int = 200) -> None:
    model = build_classifier(batch_size=1)  # fixed batch: the Edge TPU compiler needs it
    if weights is not None:
        model.load_weights(str(weights))
    write_int8(model, np.load(dataset / "train_x.npy", mmap_mode="r"), out, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=None, help="Keras weights (.h5); none = untrained")
    parser.add_argument("--dataset", type=Path, default=Path("models/work/dataset"))
    parser.add_argument("--out", type=Path, default=Path("daemon/focusguard/analysis/model/focusguard_pix2pix_448_int8.tflite"))
    args = parser.parse_args()
    export_int8(args.weights, args.dataset, args.out)


if __name__ == "__main__":
    main()
