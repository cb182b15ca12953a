"""Magnitude pruning (tensorflow-model-optimization) of the shipped model, then int8 export.

The thesis prunes toward 40% sparsity while fine-tuning (polynomial decay) before quantising.
Fine-tuning the trunk degraded this model on this CPU (MODEL_CARD.md), so pruning is applied in
one shot: `prune_low_magnitude` with a constant 40% target on every Conv2D/Dense, one optimiser
step at learning rate 0 so only the masks change (BatchNorm frozen), `strip_pruning`, then the
same int8 export as export.py. Whether it "keeps accuracy" is for evaluate.py to say.

Writes `<out>` (int8 TFLite), `<out stem>.weights.h5` (float, pruned) and prints the sparsity per
layer and the zipped sizes (the thesis' size measure: int8 TFLite stores weights densely, so
pruning shows in the compressed size only).

Usage: python -m models.training.prune --out models/work/pruned/model_int8.tflite [--sparsity 0.4]
"""

from __future__ import annotations

import argparse
import os
import zlib
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from models.training.from_tflite import SHIPPED, model_from_tflite


def prune(model: keras.Model, sparsity: float, sample: np.ndarray) -> keras.Model:
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False  # inference mode: one batch must not move the statistics
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(keras.optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy")
    labels = np.zeros(len(sample), np.int64)
    pruned.fit(sample, labels, batch_size=len(sample), epochs=1, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(pruned)


def zipped_size(path: Path) -> int:
    return len(zlib.compress(path.read_bytes(), 9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tflite", type=Path, default=SHIPPED, help="model to prune (rebuilt from its int8 weights)")
    parser.add_argument("--dataset", type=Path, default=Path("models/work/dataset"))
    parser.add_argument("--sparsity", type=float, default=0.4)
    parser.add_argument("--out", type=Path, default=Path("models/work/pruned/model_int8.tflite"))
    args = parser.parse_args()
    images = np.load(args.dataset / "train_x.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    sample = images[np.sort(rng.choice(len(images), 8, replace=False))].astype(np.float32) / 255.0
    model = prune(model_from_tflite(args.tflite), args.sparsity, sample)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense):
            kernel = layer.get_weights()[0]
            print(f"{layer.name:8s} sparsity {np.mean(kernel == 0):.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    weights = args.out.with_suffix(".weights.h5")
    model.save_weights(str(weights))
    from models.training.export import export_int8

    export_int8(weights, args.dataset, args.out)
    print(f"zipped int8 size: {args.tflite.name} {zipped_size(args.tflite):,} B -> pruned {zipped_size(args.out):,} B")
    print(f"check it: python -m models.training.evaluate --weights {weights} --tflite {args.out} --out {args.out.parent}/eval")


if __name__ == "__main__":
    main()
