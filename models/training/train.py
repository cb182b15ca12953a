"""Train the Pix2Pix classifier on the precomputed samples; resumable, with progress.

Two stages (each resumes from `--work`):
1. `head`: the thesis recipe (Adam 1e-3 on everything) kills the 64-unit dense layer here within
   ~20 steps (FACTS §3). So first calibrate BatchNorm on training batches, extract the flatten
   features of the (random) convolution stack once (forward only, ~4x cheaper than a training
   step) and fit the dense head on them: training starts from a live, non-chance head.
2. `full`: end-to-end Adam with a larger learning rate for the convolutions than for the head
   (warm-up from 1e-5), categorical cross-entropy, validation every `--eval-every` steps, best
   weights kept (`best.weights.h5`), checkpoint (weights + optimiser state + step) every
   `--ckpt-every` steps, so a stopped run resumes where it was.

Usage: python -m models.training.train --stage head|full [--minutes 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np
import tensorflow as tf
import tf_keras as keras
from tqdm import tqdm

from models.training.net import build_classifier, zero_mean_first_layer
from models.training.structured_init import apply_structured_init

HEAD_LAYERS = ("dense", "classes")


def load_split(dataset: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    return np.load(dataset / f"{split}_x.npy", mmap_mode="r"), np.load(dataset / f"{split}_y.npy")


def batch(images: np.ndarray, idx: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(np.stack([images[i] for i in idx]).astype(np.float32) / 255.0)


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> dict:
    """Inference-mode accuracy, loss and share of dead dense units on the given samples."""
    features = keras.Model(model.input, model.get_layer("dense").output)
    correct, loss, alive = 0, 0.0, np.zeros(64, bool)
    for start in range(0, len(idx), 32):
        part = idx[start : start + 32]
        dense = features(batch(images, part), training=False).numpy()
        probs = model.get_layer("classes")(dense).numpy()
        alive |= (dense > 0).any(axis=0)
        correct += int((probs.argmax(1) == labels[part]).sum())
        loss += float(-np.log(probs[np.arange(len(part)), labels[part]] + 1e-7).sum())
    return {"acc": correct / len(idx), "loss": loss / len(idx), "dead_units": int((~alive).sum())}


def make_head(n_inputs: int, lr: float) -> keras.Model:
    """The thesis' Dense 64 ReLU + Dense 9 softmax head on its own, to fit on cached features."""
    head_in = keras.Input((n_inputs,))
    hidden = keras.layers.Dense(64, activation="relu", name="dense")(head_in)
    head_out = keras.layers.Dense(9, activation="softmax", name="classes")(hidden)
    head = keras.Model(head_in, head_out)
    head.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", ["accuracy"])
    return head


def stage_head(args: argparse.Namespace) -> None:
    """BN calibration + head fitted on the frozen random features."""
    train_x, train_y = load_split(args.dataset, "train")
    val_x, val_y = load_split(args.dataset, "val")
    model = build_classifier()
    zero_mean_first_layer(model)
    rng = np.random.default_rng(0)
    for _ in tqdm(range(args.bn_batches), desc="BN calibration", file=sys.stderr):
        model(batch(train_x, rng.choice(len(train_x), 16, replace=False)), training=True)
    trunk = keras.Model(model.input, model.get_layer("flatten").output)

    def features(images: np.ndarray, idx: np.ndarray, desc: str) -> np.ndarray:
        out = np.zeros((len(idx), 25088), np.float32)
        for s in tqdm(range(0, len(idx), 32), desc=desc, file=sys.stderr):
            out[s : s + 32] = trunk(batch(images, idx[s : s + 32]), training=False).numpy()
        return out

    train_idx = rng.permutation(len(train_x))[: args.head_samples]
    f_train, y_train = features(train_x, train_idx, "train features"), train_y[train_idx]
    val_idx = np.arange(len(val_x))
    f_val = features(val_x, val_idx, "val features")
    # Standardise per feature inside the head's first layer weights afterwards: fit on z-scores.
    mean, std = f_train.mean(0), f_train.std(0) + 1e-3
    head = make_head(25088, args.head_lr)
    head.fit((f_train - mean) / std, y_train, batch_size=64, epochs=args.head_epochs, verbose=2,
             validation_data=((f_val - mean) / std, val_y),
             callbacks=[keras.callbacks.EarlyStopping("val_accuracy", patience=8, restore_best_weights=True)])
    # Fold the standardisation into the dense layer: W' = W / std, b' = b - (mean / std) @ W.
    kernel, bias = head.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([kernel / std[:, None], bias - (mean / std) @ kernel])
    model.get_layer("classes").set_weights(head.get_layer("classes").get_weights())
    args.work.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(args.work / "head.weights.h5"))
    result = evaluate(model, val_x, val_y, val_idx)
    print(f"head stage: val {result}", file=sys.stderr)
    (args.work / "head.json").write_text(json.dumps(result))


def stage_structured(args: argparse.Namespace) -> None:
    """Analytic multi-scale energy front end (structured_init.py) + BN calibration; caches the
    structured 7x7 maps of a training subset and the validation split for `fit-head`."""
    train_x, train_y = load_split(args.dataset, "train")
    val_x, val_y = load_split(args.dataset, "val")
    model = build_classifier()
    n_struct = apply_structured_init(model)["structured_channels"]
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.8
    for _ in tqdm(range(args.bn_batches), desc="BN calibration", file=sys.stderr):
        model(batch(train_x, rng.choice(len(train_x), 16, replace=False)), training=True)
    args.work.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(args.work / "calibrated.weights.h5"))
    trunk = keras.Model(model.input, model.get_layer("relu6").output)

    def maps(images: np.ndarray, idx: np.ndarray, desc: str) -> np.ndarray:
        out = np.zeros((len(idx), 7, 7, n_struct), np.float32)
        for s in tqdm(range(0, len(idx), 32), desc=desc, file=sys.stderr):
            out[s : s + 32] = trunk(batch(images, idx[s : s + 32]), training=False).numpy()[..., :n_struct]
        return out

    train_idx = np.sort(rng.permutation(len(train_x))[: args.head_samples])
    val_idx = np.arange(len(val_x))[: args.val_samples]
    np.savez(args.work / "maps.npz", train=maps(train_x, train_idx, "train maps"), train_y=train_y[train_idx],
             val=maps(val_x, val_idx, "val maps"), val_y=val_y[val_idx], val_idx=val_idx)


def stage_fit_head(args: argparse.Namespace) -> None:
    """Fit the dense head on the globally averaged structured maps (44 numbers per image: the
    energy spectrum E1..E5 per direction, mean gray and colour) and fold it into Dense(25088->64)
    as identical per-cell weights / 49, i.e. global average pooling expressed in the thesis' layer.
    Averaging over cells keeps the head from learning scene layout (it overfitted on 7x7 maps).
    A bias on `sharp`/`b_0.5` is then set on the training maps to hold the false-alarm rate."""
    data = np.load(args.work / "maps.npz")
    n_struct = data["train"].shape[-1]
    f_train, f_val = data["train"].mean((1, 2)), data["val"].mean((1, 2))
    y_train, y_val = data["train_y"], data["val_y"]
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    keras.utils.set_random_seed(0)
    head = make_head(n_struct, args.head_lr)
    head.fit((f_train - mean) / std, y_train, batch_size=64, epochs=args.head_epochs, verbose=0,
             validation_data=((f_val - mean) / std, y_val),
             callbacks=[keras.callbacks.EarlyStopping("val_loss", patience=40, restore_best_weights=True)])
    probs_train = head.predict((f_train - mean) / std, verbose=0)
    sharp_bias = calibrate_sharp_bias(probs_train, y_train, args.target_far)
    model = build_classifier()
    model.load_weights(str(args.work / "calibrated.weights.h5"))
    kernel, bias = head.get_layer("dense").get_weights()
    full = np.zeros((7, 7, 512, 64), np.float32)
    full[:, :, :n_struct, :] = (kernel / std[:, None] / 49.0)[None, None]
    model.get_layer("dense").set_weights([full.reshape(25088, 64), bias - (mean / std) @ kernel])
    w_cls, b_cls = head.get_layer("classes").get_weights()
    b_cls = b_cls.copy()
    b_cls[:2] += sharp_bias
    model.get_layer("classes").set_weights([w_cls, b_cls])
    model.save_weights(str(args.work / "best.weights.h5"))
    val_x, val_y = load_split(args.dataset, "val")
    result = evaluate(model, val_x, val_y, data["val_idx"])
    result["sharp_bias"] = sharp_bias
    print(f"fit-head: val {result}", file=sys.stderr)
    (args.work / "best.json").write_text(json.dumps({"acc": result["acc"], "step": 0}))


def calibrate_sharp_bias(probs: np.ndarray, labels: np.ndarray, target_far: float) -> float:
    """Smallest log-bias added to the two sharp classes that brings the false-alarm rate on these
    samples to `target_far` (argmax in the blurry classes counts as an alarm)."""
    sharp = labels < 2
    logits = np.log(probs + 1e-9)
    for bias in np.arange(0.0, 6.01, 0.1):
        shifted = logits.copy()
        shifted[:, :2] += bias
        if (shifted[sharp].argmax(1) >= 2).mean() <= target_far:
            return float(bias)
    return 6.0


def learning_rate(step: int, peak: float, warmup: int) -> float:
    if step < warmup:  # geometric warm-up from 1e-5 keeps the dense layer alive
        return 1e-5 * (peak / 1e-5) ** (step / warmup) if peak > 1e-5 else peak
    return peak


def stage_full(args: argparse.Namespace) -> None:
    train_x, train_y = load_split(args.dataset, "train")
    val_x, val_y = load_split(args.dataset, "val")
    model = build_classifier()
    step_var = tf.Variable(0, dtype=tf.int64)
    trunk_opt = keras.optimizers.Adam(1e-5)
    head_opt = keras.optimizers.Adam(1e-5)
    ckpt = tf.train.Checkpoint(model=model, trunk_opt=trunk_opt, head_opt=head_opt, step=step_var)
    manager = tf.train.CheckpointManager(ckpt, str(args.work / "ckpt"), max_to_keep=2)
    history_path = args.work / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        print(f"resumed from {manager.latest_checkpoint} at step {int(step_var)}", file=sys.stderr)
    elif args.init == "head":
        model.load_weights(str(args.work / "head.weights.h5"))
    elif args.init == "structured":
        model.load_weights(str(args.work / "best.weights.h5"))
    else:
        zero_mean_first_layer(model)
    best_file = args.work / "best.json"
    best = json.loads(best_file.read_text())["acc"] if best_file.exists() else 0.0
    head_vars = [v for name in HEAD_LAYERS for v in model.get_layer(name).trainable_variables]
    head_ids = {id(v) for v in head_vars}
    trunk_vars = [v for v in model.trainable_variables if id(v) not in head_ids]
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def train_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            # Frozen BN (inference mode) keeps calibrated statistics; batches of 16 are noisy.
            loss = loss_fn(y, model(x, training=not args.freeze_bn))
        grads = tape.gradient(loss, trunk_vars + head_vars)
        trunk_opt.apply_gradients(zip(grads[: len(trunk_vars)], trunk_vars, strict=True))
        head_opt.apply_gradients(zip(grads[len(trunk_vars) :], head_vars, strict=True))
        return loss

    rng = np.random.default_rng(int(step_var) + 1)
    val_idx = np.random.default_rng(0).permutation(len(val_x))[: args.val_samples]
    deadline = time.time() + args.minutes * 60
    bar = tqdm(initial=int(step_var), desc="train", file=sys.stderr, unit="step")
    running = []
    while time.time() < deadline:
        step = int(step_var)
        trunk_opt.learning_rate.assign(learning_rate(step, args.trunk_lr, args.warmup))
        head_opt.learning_rate.assign(learning_rate(step, args.head_lr_full, args.warmup))
        idx = rng.choice(len(train_x), args.batch, replace=False)
        loss = float(train_step(batch(train_x, idx), tf.convert_to_tensor(train_y[idx])))
        running.append(loss)
        step_var.assign_add(1)
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(running[-20:]):.3f}")
        if int(step_var) % args.ckpt_every == 0:
            manager.save()
        if int(step_var) % args.eval_every == 0:
            result = evaluate(model, val_x, val_y, val_idx)
            entry = {"step": int(step_var), "train_loss": float(np.mean(running[-args.eval_every:])),
                     "val_acc": result["acc"], "val_loss": result["loss"], "dead_units": result["dead_units"],
                     "time": time.time()}
            history.append(entry)
            history_path.write_text(json.dumps(history, indent=1))
            tqdm.write(json.dumps(entry), file=sys.stderr)
            if result["acc"] > best:
                best = result["acc"]
                model.save_weights(str(args.work / "best.weights.h5"))
                best_file.write_text(json.dumps({"acc": best, "step": int(step_var)}))
                tqdm.write(f"new best val acc {best:.4f}", file=sys.stderr)
    manager.save()
    bar.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=["head", "structured", "fit-head", "full"], required=True)
    parser.add_argument("--dataset", type=Path, default=Path("models/work/dataset"))
    parser.add_argument("--work", type=Path, default=Path("models/work/run"))
    parser.add_argument("--init", choices=["random", "head", "structured"], default="random",
                        help="full stage start: fresh init, or the head stage's weights")
    parser.add_argument("--freeze-bn", action="store_true", help="BatchNorm in inference mode while training")
    parser.add_argument("--target-far", type=float, default=0.02, help="fit-head: FAR on training maps")
    parser.add_argument("--bn-batches", type=int, default=30)
    parser.add_argument("--head-samples", type=int, default=100_000)
    parser.add_argument("--head-epochs", type=int, default=60)
    parser.add_argument("--head-lr", type=float, default=3e-4)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--trunk-lr", type=float, default=3e-4)
    parser.add_argument("--head-lr-full", type=float, default=3e-5)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--val-samples", type=int, default=252)
    parser.add_argument("--ckpt-every", type=int, default=50)
    args = parser.parse_args()
    {"head": stage_head, "structured": stage_structured, "fit-head": stage_fit_head, "full": stage_full}[args.stage](args)


if __name__ == "__main__":
    main()
