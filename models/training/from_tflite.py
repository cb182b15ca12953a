"""Rebuild the float Keras model (net.py, Table 3.8) from a shipped int8 TFLite file.

Site fine-tuning starts from the model a user actually runs, and a clean clone has no float
checkpoint (only the `.tflite` is shipped). The int8 file holds everything needed: per-channel
int8 conv kernels with BatchNorm folded in, int32 biases, and the two dense layers. Dequantised
(`(q - zero_point) * scale`) they go back into the Keras layers; each BatchNorm is set to the
identity (gamma 1, beta 0, mean 0, var 1 - eps), so re-exporting folds nothing new.

The rebuilt model equals the int8 one up to int8 rounding of the activations
(`tests`-style check: `python -m models.training.from_tflite --check`).

`head_from_model` reads back the global-average head of a structured model (fit-head stage of
train.py: identical per-cell weights / 49 on the structured channels) as a 44 -> 64 -> 9 head.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
import numpy as np
import tensorflow as tf
import tf_keras as keras

from models.training.net import build_classifier

SHIPPED = Path(__file__).resolve().parents[2] / "daemon" / "focusguard" / "analysis" / "model" / "focusguard_pix2pix_448_int8.tflite"


def _dequantize(values: np.ndarray, params: dict, axis: int) -> np.ndarray:
    scales = np.asarray(params["scales"], np.float64)
    zero_points = np.asarray(params["zero_points"], np.float64)
    shape = [1] * values.ndim
    if scales.size > 1:
        shape[axis] = scales.size
    return ((values.astype(np.float64) - zero_points.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def tflite_layers(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(op name, float weights, float bias) of every CONV_2D / FULLY_CONNECTED, in graph order."""
    interpreter = tf.lite.Interpreter(
        str(path), experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    layers = []
    for op in interpreter._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        w_idx, b_idx = op["inputs"][1], op["inputs"][2]
        weights = _dequantize(interpreter.get_tensor(w_idx), details[w_idx]["quantization_parameters"], 0)
        bias = _dequantize(interpreter.get_tensor(b_idx), details[b_idx]["quantization_parameters"], 0)
        layers.append((op["op_name"], weights, bias))
    return layers


def model_from_tflite(path: Path = SHIPPED, batch_size: int | None = None) -> keras.Model:
    """The float Keras model whose weights are the dequantised weights of the int8 file."""
    model = build_classifier(batch_size=batch_size)
    layers = tflite_layers(path)
    convs = [w for w in layers if w[0] == "CONV_2D"]
    denses = [w for w in layers if w[0] == "FULLY_CONNECTED"]
    if len(convs) != 6 or len(denses) != 2:
        raise SystemExit(f"{path}: expected 6 CONV_2D and 2 FULLY_CONNECTED ops, found {len(convs)} and {len(denses)}")
    for i, (_, weights, bias) in enumerate(convs, 1):
        model.get_layer(f"conv{i}").set_weights([weights.transpose(1, 2, 3, 0), bias])  # OHWI -> HWIO
        bn = model.get_layer(f"bn{i}")
        n = bias.size
        bn.set_weights([np.ones(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32),
                        np.full(n, 1.0 - bn.epsilon, np.float32)])
    for name, (_, weights, bias) in zip(("dense", "classes"), denses, strict=True):
        model.get_layer(name).set_weights([weights.T, bias])  # (out, in) -> (in, out)
    return model


def structured_channels(model: keras.Model) -> np.ndarray:
    """Indices of the relu6 channels the dense layer reads (the structured ones)."""
    kernel = model.get_layer("dense").get_weights()[0].reshape(7, 7, 512, 64)
    return np.flatnonzero(np.abs(kernel).sum(axis=(0, 1, 3)) > 0)


def head_from_model(model: keras.Model, channels: np.ndarray) -> list[np.ndarray]:
    """[W1 (k, 64), b1, W2 (64, 9), b2] of the global-average head folded into the dense layer."""
    kernel, bias = model.get_layer("dense").get_weights()
    per_cell = kernel.reshape(7, 7, 512, 64)[:, :, channels, :]
    return [per_cell.sum(axis=(0, 1)), bias, *model.get_layer("classes").get_weights()]


def fold_head(model: keras.Model, channels: np.ndarray, head: list[np.ndarray]) -> None:
    """Write a k -> 64 -> 9 head on globally averaged channels into Dense(25088 -> 64)."""
    w1, b1, w2, b2 = head
    full = np.zeros((7, 7, 512, 64), np.float32)
    full[:, :, channels, :] = (w1 / 49.0)[None, None]
    model.get_layer("dense").set_weights([full.reshape(25088, 64), b1.astype(np.float32)])
    model.get_layer("classes").set_weights([w2.astype(np.float32), b2.astype(np.float32)])


def check(path: Path, images: np.ndarray) -> dict:
    """Compare the rebuilt float model with the int8 interpreter on `images` (uint8 RGB 448)."""
    model = model_from_tflite(path)
    interpreter = tf.lite.Interpreter(str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = out["quantization"]
    agree, max_diff = 0, 0.0
    for image in images:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        p_int8 = (interpreter.get_tensor(out["index"])[0].astype(np.float32) - zero) * scale
        p_float = model(image[None].astype(np.float32) / 255.0, training=False).numpy()[0]
        agree += int(p_int8.argmax() == p_float.argmax())
        max_diff = max(max_diff, float(np.abs(p_int8 - p_float).max()))
    return {"images": len(images), "argmax_agree": agree, "max_prob_diff": max_diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tflite", type=Path, default=SHIPPED)
    parser.add_argument("--check", type=Path, nargs="*", default=None,
                        help="images to compare float vs int8 on (default: a few synthetic scenes)")
    args = parser.parse_args()
    import cv2

    from focusguard.analysis.preprocess import to_model_rgb

    paths = args.check or []
    images = [to_model_rgb(cv2.imread(str(p))) for p in paths]
    if not images:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
        images = [to_model_rgb(cv2.GaussianBlur(base, (0, 0), s)) for s in (0.5, 1, 2, 4)]
    print(check(args.tflite, np.stack(images)))


if __name__ == "__main__":
    main()
