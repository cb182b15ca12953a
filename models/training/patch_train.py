"""Train the Pix2Pix trunk on random crops of the lens-blur cache (`lens_data`), resumably.

Why crops: the six conv blocks are fully convolutional and blur is local, and a 128-px crop
trains ~10x faster per sample than a whole 448 frame on this CPU (FACTS §3). The GAP head
(`patch_net.build_patch_model`) folds exactly into the Table 3.8 Flatten head afterwards.

Recipe (issue 19): He-normal init, BatchNorm (momentum 0.9), AdamW (decoupled weight decay, not
on BN or biases) with a geometric warm-up from 1e-5 (keeps the dense layer alive: FACTS §3) and
cosine decay, global gradient clipping, soft ordinal labels (the classes are ordered: a b_1
crop called b_0.75 is less wrong than one called sharp), class-weighted sampling that spends
more of the budget near the sharp/b_0.75 boundary. A crop's label is the blur it holds: in
partial-defocus variants a crop in the sharp part is `sharp`, a crop across the edge is skipped.
Flat crops (sky, walls) hold no blur evidence and are mostly skipped.

Every run keeps in `--work`: config.json (the schedule, fixed at the first start), ckpt/
(weights + optimiser + step every `--ckpt-minutes`), history.jsonl (crop eval every
`--eval-every` steps: loss, 9-class and binary accuracy, dead units per layer; whole-frame 448
validation every `--frame-eval-minutes`), best.weights.h5 (best whole-frame validation),
final.weights.h5 (where the last sitting stopped).
A stopped run resumes where it was; `--minutes` bounds one sitting.

Usage:
  python -m models.training.patch_train --bench            # samples/s per crop, batch, precision
  python -m models.training.patch_train --minutes 150      # train (resumes)
  python -m models.training.patch_train --net mann --work models/work/mannrun   # the thesis' MANN (nets.py)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import numpy.typing as npt

from models.training.classes import CLASS_NAMES

FIRST_BLURRY = CLASS_NAMES.index("b_0.75")  # the daemon's sharp/b_0.5 | blurry threshold
# Sampling weight per class: the boundary classes teach the verdict most.
CLASS_WEIGHTS = np.array([1.5, 1.5, 1.5, 1.25, 1.0, 1.0, 1.0, 1.0, 1.0])
MASK_STRIDE = 8  # 448 px / 56 mask cells
FLAT_STD = 4.0  # luma std below which a crop counts as flat
FLAT_KEEP = 0.2  # share of flat crops kept (they still occur in service)


@dataclass
class Cache:
    images: npt.NDArray[np.uint8]  # (n, 448, 448, 3) RGB, 9 consecutive classes per variant
    labels: npt.NDArray[np.int64]
    masks: npt.NDArray[np.uint8]  # (variants, 56, 56), 255 = defocused

    @classmethod
    def load(cls, folder: Path, split: str) -> Cache:
        return cls(np.load(folder / f"{split}_x.npy", mmap_mode="r"), np.load(folder / f"{split}_y.npy"),
                   np.load(folder / f"{split}_masks.npy"))

    @property
    def variants(self) -> int:
        return len(self.masks)


def soft_ordinal(labels: npt.NDArray[np.int64], true_mass: float = 0.8) -> npt.NDArray[np.float32]:
    """Targets with (1 - true_mass) / 2 on each neighbouring class (all of it on the one neighbour
    at the ends): an ordinal-aware label smoothing."""
    out = np.zeros((len(labels), 9), np.float32)
    rest = 1.0 - true_mass
    for row, label in enumerate(labels):
        neighbours = [n for n in (label - 1, label + 1) if 0 <= n < 9]
        out[row, label] = true_mass
        for n in neighbours:
            out[row, n] = rest / len(neighbours)
    return out


def sample_crops(cache: Cache, count: int, crop: int, rng: np.random.Generator
                 ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """`count` class-weighted random crops and the class each one actually holds."""
    side = cache.images.shape[1]
    weights = CLASS_WEIGHTS / CLASS_WEIGHTS.sum()
    crops = np.empty((count, crop, crop, 3), np.uint8)
    labels = np.empty(count, np.int64)
    filled = 0
    while filled < count:
        klass = int(rng.choice(9, p=weights))
        variant = int(rng.integers(cache.variants))
        y, x = (int(v) for v in rng.integers(0, side - crop + 1, 2))
        cells = cache.masks[variant, y // MASK_STRIDE : (y + crop) // MASK_STRIDE,
                            x // MASK_STRIDE : (x + crop) // MASK_STRIDE]
        defocused = float(cells.mean()) / 255.0
        if 0.1 <= defocused <= 0.75:
            continue  # across the focus edge: no single class
        label = klass if defocused > 0.75 else 0
        patch = cache.images[9 * variant + klass, y : y + crop, x : x + crop]
        luma = patch @ np.array([0.299, 0.587, 0.114], np.float32)
        if luma.std() < FLAT_STD and rng.random() > FLAT_KEEP:
            continue
        crops[filled], labels[filled] = patch, label
        filled += 1
    return crops, labels


def lr_at(step: int, peak: float, warmup: int, total: int, floor: float = 0.02) -> float:
    """Geometric warm-up 1e-5 -> peak, then cosine down to floor * peak at `total`."""
    if step < warmup:
        return 1e-5 * (peak / 1e-5) ** (step / warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def binary_figures(labels: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64]) -> dict[str, float]:
    truth, said = labels >= FIRST_BLURRY, predicted >= FIRST_BLURRY
    return {"binary_acc": float((truth == said).mean()),
            "far": float(said[~truth].mean()) if (~truth).any() else 0.0,
            "recall": float(said[truth].mean()) if truth.any() else 0.0}


class Trainer:
    def __init__(self, args: argparse.Namespace, config: dict[str, object]) -> None:
        import tensorflow as tf
        import tf_keras as keras

        from models.training.nets import NETS

        tf.config.threading.set_inter_op_parallelism_threads(1)
        if getattr(args, "threads", 0):  # two runs side by side: one core each
            tf.config.threading.set_intra_op_parallelism_threads(int(args.threads))
        if config["precision"] == "bfloat16":
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        self.tf, self.keras, self.args, self.config = tf, keras, args, config
        self.net = NETS[str(config.get("net", "pix2pix"))]  # runs from before --net are Pix2Pix
        self.model = self.net.build_crop(seed=int(config["seed"]))
        peak, warmup, total = float(config["peak_lr"]), int(config["warmup"]), int(config["total_steps"])

        class Schedule(keras.optimizers.schedules.LearningRateSchedule):
            def __call__(self, step):
                step = tf.cast(step, tf.float32)
                warm = 1e-5 * tf.pow(peak / 1e-5, step / warmup)
                progress = tf.minimum(1.0, (step - warmup) / max(1, total - warmup))
                cosine = peak * (0.02 + 0.98 * 0.5 * (1 + tf.cos(math.pi * progress)))
                return tf.where(step < warmup, warm, cosine)

        self.optimizer = keras.optimizers.AdamW(learning_rate=Schedule(), weight_decay=float(config["weight_decay"]),
                                                global_clipnorm=1.0)
        self.optimizer.exclude_from_weight_decay(var_names=["bn", "bias"])
        self.ckpt = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(args.work / "ckpt"), max_to_keep=2)
        if self.manager.latest_checkpoint:
            self.ckpt.restore(self.manager.latest_checkpoint)
            print(f"resumed from {self.manager.latest_checkpoint} at step {self.step}", file=sys.stderr)
        loss_fn = keras.losses.CategoricalCrossentropy()
        model, optimizer = self.model, self.optimizer

        @tf.function(reduce_retracing=True)
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        self.train_step = train_step
        names = self.net.probe_layers
        self.probe = keras.Model(model.input, [model.get_layer(n).output for n in names] + [model.output])
        # Whole frames: the 448 conv maps are too big to watch cheaply; the last probed layer and output only.
        self.head_probe = keras.Model(model.input, [model.get_layer(names[-1]).output, model.output])

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def fit_batch(self, crops: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64]) -> float:
        x = self.tf.convert_to_tensor(crops.astype(np.float32) / 255.0)
        y = self.tf.convert_to_tensor(soft_ordinal(labels, float(self.config["true_mass"])))
        return float(self.train_step(x, y))

    def evaluate(self, images: npt.NDArray[np.uint8], labels: npt.NDArray[np.int64], batch: int = 32,
                 every_layer: bool = True) -> dict[str, object]:
        """Inference-mode figures and dead units (a channel or unit that is 0 for every input)."""
        probe = self.probe if every_layer else self.head_probe
        alive: list[npt.NDArray[np.bool_]] | None = None
        predicted, loss = [], 0.0
        for start in range(0, len(images), batch):
            x = images[start : start + batch].astype(np.float32) / 255.0
            outs = [o.numpy() for o in probe(x, training=False)]
            live = [(o.reshape(-1, o.shape[-1]) > 0).any(axis=0) for o in outs[:-1]]
            alive = live if alive is None else [a | b for a, b in zip(alive, live, strict=True)]
            probs = outs[-1].astype(np.float64)
            part = labels[start : start + batch]
            loss += float(-np.log(probs[np.arange(len(part)), part] + 1e-7).sum())
            predicted.append(probs.argmax(1))
        assert alive is not None
        said = np.concatenate(predicted)
        names = list(self.net.probe_layers) if every_layer else [self.net.probe_layers[-1]]
        return {"loss": loss / len(labels), "acc": float((said == labels).mean()), **binary_figures(labels, said),
                "dead": {n: float((~a).mean()) for n, a in zip(names, alive, strict=True)}}


def load_config(args: argparse.Namespace) -> dict[str, object]:
    """The schedule is fixed at the first start so that a resumed run continues the same curve."""
    path = args.work / "config.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    config: dict[str, object] = {k: getattr(args, k) for k in
                                 ("net", "crop", "batch", "peak_lr", "warmup", "total_steps", "weight_decay",
                                  "true_mass", "precision", "seed")}
    config["data"] = str(args.data)
    args.work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1))
    return config


def log(work: Path, entry: dict[str, object]) -> None:
    with (work / "history.jsonl").open("a") as f:
        f.write(json.dumps(entry) + "\n")


def train(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    config = load_config(args)
    crop, batch = int(config["crop"]), int(config["batch"])
    train_cache, val_cache = Cache.load(args.data, "train"), Cache.load(args.data, "val")
    trainer = Trainer(args, config)
    eval_crops, eval_labels = sample_crops(val_cache, args.eval_crops, crop, np.random.default_rng(7))
    frame_idx = np.arange(len(val_cache.labels))
    best_path = args.work / "best.json"
    best = json.loads(best_path.read_text())["score"] if best_path.exists() else -1.0
    rng = np.random.default_rng(int(config["seed"]) * 100_003 + trainer.step)
    total = int(config["total_steps"])
    deadline = time.time() + args.minutes * 60
    last_ckpt = last_frames = time.time()
    bar = tqdm(initial=trainer.step, total=total, desc="patch-train", unit="step", file=sys.stderr)
    losses: list[float] = []
    tick = time.time()
    while trainer.step < total and time.time() < deadline:
        crops, labels = sample_crops(train_cache, batch, crop, rng)
        losses.append(trainer.fit_batch(crops, labels))
        bar.update(1)
        step = trainer.step
        rate = batch / max(1e-6, time.time() - tick)
        tick = time.time()
        lr = lr_at(step, float(config["peak_lr"]), int(config["warmup"]), total)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{lr:.1e}", sps=f"{rate:.1f}")
        if step % args.eval_every == 0:
            result = trainer.evaluate(eval_crops, eval_labels)
            entry = {"step": step, "time": time.time(), "train_loss": float(np.mean(losses[-args.eval_every:])),
                     "samples_per_s": rate, "crops": result}
            log(args.work, entry)
            tqdm.write(f"step {step}: crop val acc {result['acc']:.3f} binary {result['binary_acc']:.3f} "
                       f"far {result['far']:.3f} loss {result['loss']:.3f} dead head {list(result['dead'].values())[-1]:.2f}",  # type: ignore[union-attr]
                       file=sys.stderr)
        if time.time() - last_ckpt > args.ckpt_minutes * 60:
            trainer.manager.save()
            last_ckpt = time.time()
        if time.time() - last_frames > args.frame_eval_minutes * 60:
            best = frame_eval(trainer, val_cache, frame_idx, args.work, best)
            last_frames = time.time()
    bar.close()
    trainer.manager.save()
    trainer.model.save_weights(str(args.work / "final.weights.h5"))  # where the sitting stopped, for patch_export
    best = frame_eval(trainer, val_cache, frame_idx, args.work, best)
    print(f"stopped at step {trainer.step}/{total}; best whole-frame score {best:.4f}", file=sys.stderr)


def frame_eval(trainer: Trainer, cache: Cache, idx: npt.NDArray[np.int64], work: Path, best: float) -> float:
    """Whole 448 validation frames through the GAP model (= the folded Table 3.8 network)."""
    start = time.time()
    images = np.asarray(cache.images[idx])
    result = trainer.evaluate(images, cache.labels[idx], batch=16, every_layer=False)
    score = float(result["acc"]) + float(result["binary_acc"]) - 2 * float(result["far"])  # type: ignore[arg-type]
    log(work, {"step": trainer.step, "time": time.time(), "frames": result, "score": score,
               "seconds": time.time() - start})
    print(f"\nstep {trainer.step}: whole-frame val acc {result['acc']:.4f} binary {result['binary_acc']:.4f} "
          f"far {result['far']:.4f} recall {result['recall']:.4f} ({time.time() - start:.0f}s)", file=sys.stderr)
    if score > best:
        trainer.model.save_weights(str(work / "best.weights.h5"))
        (work / "best.json").write_text(json.dumps({"score": score, "step": trainer.step, **result}))
        best = score
    return best


def bench_one(crop: int, batch: int, precision: str, steps: int, net: str = "pix2pix") -> float:
    """Samples/s of training steps on real cache crops (after 3 warm-up steps)."""
    import tempfile

    args = argparse.Namespace(work=Path(tempfile.mkdtemp(prefix="patch-bench-")))
    config = {"net": net, "precision": precision, "seed": 0, "peak_lr": 1e-4, "warmup": 10, "total_steps": 100,
              "weight_decay": 0.01, "true_mass": 0.8}
    trainer = Trainer(args, config)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (batch, crop, crop, 3), dtype=np.uint8)
    y = rng.integers(0, 9, batch)
    for _ in range(3):
        trainer.fit_batch(x, y)
    start = time.time()
    for _ in range(steps):
        trainer.fit_batch(x, y)
    return steps * batch / (time.time() - start)


def bench(configs: list[str], steps: int, net: str = "pix2pix") -> None:
    """Each configuration in a fresh process (a precision policy is global to TensorFlow)."""
    for spec in configs:
        crop, batch, precision = spec.split(":")
        out = subprocess.run([sys.executable, "-m", "models.training.patch_train", "--bench-one", spec,
                              "--bench-steps", str(steps), "--net", net], capture_output=True, text=True, check=False)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr.strip()[-300:]
        print(f"crop {crop:>3} batch {batch:>3} {precision:8s}: {line}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("models/work/lens"))
    parser.add_argument("--net", choices=("pix2pix", "mann", "mff"), default="pix2pix",
                        help="which of the thesis' CNNs (models/training/nets.py); fixed at a run's first start")
    parser.add_argument("--work", type=Path, default=Path("models/work/patchrun"))
    parser.add_argument("--minutes", type=float, default=60.0, help="bound on this sitting")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: all cores)")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--peak-lr", type=float, default=6e-4)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--total-steps", type=int, default=3000)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--true-mass", type=float, default=0.8)
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--eval-crops", type=int, default=1024)
    parser.add_argument("--ckpt-minutes", type=float, default=5.0)
    parser.add_argument("--frame-eval-minutes", type=float, default=25.0)
    parser.add_argument("--bench", nargs="*", metavar="CROP:BATCH:PRECISION",
                        help="default: 128:32:float32 128:64:float32 96:64:float32 128:32:bfloat16")
    parser.add_argument("--bench-one", help=argparse.SUPPRESS)
    parser.add_argument("--bench-steps", type=int, default=8)
    args = parser.parse_args()
    if args.bench_one:
        crop, batch, precision = args.bench_one.split(":")
        print(f"{bench_one(int(crop), int(batch), precision, args.bench_steps, args.net):.1f} samples/s")
    elif args.bench is not None:
        bench(args.bench or ["128:32:float32", "128:64:float32", "96:64:float32", "128:32:bfloat16"],
              args.bench_steps, args.net)
    else:
        train(args)


if __name__ == "__main__":
    main()
