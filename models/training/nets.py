"""The thesis' three CNNs for the patch-training pipeline: Pix2Pix (Table 3.8), MANN (Table 3.9), MFF (Table 3.7).

Each net has a crop model (fully convolutional trunk + global-average-pooling head: it trains on
crops of any multiple of 32/64 px, `patch_train`) and its 448x448, batch-1 form for int8 export
(`patch_export`) that gives the same outputs on a whole frame:
- `pix2pix`: patch_net (six Conv 4x4/2 + BN + ReLU; the GAP head folds into Flatten -> Dense 64).
- `mann`: six Conv 3x3 + BN + ReLU blocks, a 2x2 max-pool after each of the first five, Flatten,
  Dense 35 ReLU, Dense 9 softmax. FACTS gives the outline (6 conv 3x3 + 5 max-pool, 3,350,713
  parameters), not the table: the widths below are ours, chosen to land near that count (3,329,063).
  Its GAP head folds into Flatten -> Dense exactly as Pix2Pix's does (14x14 cells at 448).
- `mff`: a multi-scale feature-fusion ResNet: Conv 7x7/2 + BN + ReLU, 3x3/2 max-pool, four stages
  of two basic residual blocks (64, 96, 192, 320 filters; stride 2 and a 1x1 projection on entry),
  an FPN (1x1 laterals to 128, nearest 2x upsampling, add, 3x3 smoothing), each level pooled
  globally and concatenated, Dense 9 softmax; Kaiming (He-normal) init. FACTS gives the outline
  and 5,768,773 parameters: the widths are ours, chosen near it (5,720,905). Global pooling is
  already its head, so the 448 form is the same network with a fixed input.
Every op is one the Edge TPU runs: CONV_2D, MAX_POOL_2D, ADD, RESIZE_NEAREST_NEIGHBOR, MEAN,
CONCATENATION, FULLY_CONNECTED, RESHAPE, SOFTMAX, QUANTIZE (tests/unit/test_nets.py checks the
exported op lists against EDGETPU_OPS).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 3 breaks tfmot pruning (FACTS §3)

from models.training.patch_net import fold_dense_kernel

# Edge TPU-supported TFLite ops used by these nets (coral.ai "TensorFlow models on the Edge TPU", op list).
EDGETPU_OPS = {"CONV_2D", "MAX_POOL_2D", "ADD", "RESIZE_NEAREST_NEIGHBOR", "MEAN", "CONCATENATION",
               "FULLY_CONNECTED", "RESHAPE", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"}  # fmt: skip

MANN_FILTERS = (32, 64, 128, 256, 256, 256)
MANN_DENSE = 35
MFF_WIDTHS = (64, 96, 192, 320)
FPN_WIDTH = 128


def _he(seed: int) -> Any:
    import tf_keras as keras

    return keras.initializers.HeNormal(seed=seed)


# ----------------------------------------------------------------------------- MANN


def build_mann(crop: int | None = None, batch_size: int | None = None, flatten: bool = False,
               bn_momentum: float = 0.9, seed: int = 0) -> Any:
    """`flatten` False: the crop model (GAP head); True: the 448 network of the thesis' outline."""
    import tf_keras as keras

    side = 448 if flatten else crop
    inputs = keras.Input(shape=(side, side, 3), batch_size=batch_size, name="image")
    x = inputs
    for i, filters in enumerate(MANN_FILTERS, 1):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}", kernel_initializer=_he(seed + i))(x)
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        if i < len(MANN_FILTERS):
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x) if flatten else keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(MANN_DENSE, activation="relu", name="dense", kernel_initializer=_he(seed + 7))(x)
    outputs = keras.layers.Dense(9, activation="softmax", name="classes",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 8))(x)
    return keras.Model(inputs, outputs, name="mann_flatten" if flatten else "mann_gap")


def mann_448(crop_model: Any, batch_size: int | None = 1) -> Any:
    model = build_mann(batch_size=batch_size, flatten=True)
    for layer in model.layers:
        if layer.name.startswith(("conv", "bn")) or layer.name == "classes":
            layer.set_weights(crop_model.get_layer(layer.name).get_weights())
    kernel, bias = crop_model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([fold_dense_kernel(kernel, cells=14 * 14), bias])
    return model


# ----------------------------------------------------------------------------- MFF


def _basic_block(x: Any, filters: int, stride: int, name: str, seed: int, bn_momentum: float) -> Any:
    import tf_keras as keras

    shortcut = x
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1",
                            kernel_initializer=_he(seed))(x)
    y = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn1")(y)
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2",
                            kernel_initializer=_he(seed + 1))(y)
    y = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj",
                                       kernel_initializer=_he(seed + 2))(x)
        shortcut = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_proj_bn")(shortcut)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def build_mff(crop: int | None = None, batch_size: int | None = None, bn_momentum: float = 0.9, seed: int = 0) -> Any:
    import tf_keras as keras

    inputs = keras.Input(shape=(crop, crop, 3), batch_size=batch_size, name="image")
    x = keras.layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="stem_conv",
                            kernel_initializer=_he(seed))(inputs)
    x = keras.layers.BatchNormalization(momentum=bn_momentum, name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    levels = []
    for s, filters in enumerate(MFF_WIDTHS, 1):
        x = _basic_block(x, filters, 1 if s == 1 else 2, f"s{s}b1", seed + 10 * s, bn_momentum)
        x = _basic_block(x, filters, 1, f"s{s}b2", seed + 10 * s + 5, bn_momentum)
        levels.append(x)
    # FPN: top-down, each level = its 1x1 lateral + the coarser level upsampled, then 3x3 smoothing
    top = None
    pooled = []
    for s in range(len(levels), 0, -1):
        lateral = keras.layers.Conv2D(FPN_WIDTH, 1, name=f"fpn_lat{s}", kernel_initializer=_he(seed + 100 + s))(
            levels[s - 1])
        if top is not None:
            lateral = keras.layers.Add(name=f"fpn_add{s}")(
                [lateral, keras.layers.UpSampling2D(2, interpolation="nearest", name=f"fpn_up{s}")(top)])
        top = lateral
        smooth = keras.layers.Conv2D(FPN_WIDTH, 3, padding="same", activation="relu", name=f"fpn_smooth{s}",
                                     kernel_initializer=_he(seed + 200 + s))(lateral)
        pooled.append(keras.layers.GlobalAveragePooling2D(name=f"fpn_gap{s}")(smooth))
    x = keras.layers.Concatenate(name="fusion")(pooled)
    outputs = keras.layers.Dense(9, activation="softmax", name="classes",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 300))(x)
    return keras.Model(inputs, outputs, name="mff")


def mff_448(crop_model: Any, batch_size: int | None = 1) -> Any:
    model = build_mff(crop=448, batch_size=batch_size)
    model.set_weights(crop_model.get_weights())
    return model


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Net:
    build_crop: Callable[..., Any]  # (seed=...) -> the crop model (any input size)
    to_448: Callable[[Any], Any]  # crop model -> the 448, batch-1 model for export
    probe_layers: tuple[str, ...]  # watched for dead units during training
    thesis_params: int


def _pix2pix_crop(seed: int = 0, bn_momentum: float = 0.9) -> Any:
    from models.training.patch_net import build_patch_model

    return build_patch_model(seed=seed, bn_momentum=bn_momentum)


def _pix2pix_448(crop_model: Any) -> Any:
    from models.training.patch_net import fold_into_classifier

    return fold_into_classifier(crop_model, batch_size=1)


NETS: dict[str, Net] = {
    "pix2pix": Net(_pix2pix_crop, _pix2pix_448, tuple(f"relu{i}" for i in range(1, 7)) + ("dense",), 12_760_393),
    "mann": Net(lambda seed=0, bn_momentum=0.9: build_mann(seed=seed, bn_momentum=bn_momentum), mann_448,
                tuple(f"relu{i}" for i in range(1, 7)) + ("dense",), 3_350_713),
    "mff": Net(lambda seed=0, bn_momentum=0.9: build_mff(seed=seed, bn_momentum=bn_momentum), mff_448,
               ("stem_relu", "s1b2_out", "s2b2_out", "s3b2_out", "s4b2_out", "fusion"), 5_768_773),
}
