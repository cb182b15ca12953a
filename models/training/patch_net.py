"""The Table 3.8 trunk with a global-average-pooling head, for training on crops, and its fold
into the exact 448x448 Table 3.8 network.

The six Conv(4x4, stride 2, same)+BN+ReLU blocks are fully convolutional, so they train on
crops of any multiple of 64 px. The crop head is GAP -> Dense 64 ReLU -> Dense 9 softmax. On a
448 frame the trunk gives a 7x7x512 map; GAP over it equals Flatten -> Dense(25088 -> 64) whose
kernel holds, for each of the 49 cells, the GAP kernel / 49 (`fold_dense_kernel`): the folded
network is the thesis' architecture, parameter for parameter, and gives the same outputs.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 3 breaks tfmot pruning (FACTS §3)

import numpy as np
import numpy.typing as npt

FILTERS = (64, 128, 256, 512, 512, 512)
CELLS = 7 * 7  # the trunk's output grid on a 448 frame


def fold_dense_kernel(gap_kernel: npt.NDArray[np.float32], cells: int = CELLS) -> npt.NDArray[np.float32]:
    """(512, 64) GAP-head kernel -> (cells * 512, 64) Flatten kernel. Flatten of an NHWC
    (7, 7, 512) map puts cell-major, channel-minor: row cell * 512 + c gets gap_kernel[c] / cells."""
    return np.tile(gap_kernel / cells, (cells, 1)).astype(np.float32)


def build_patch_model(crop: int | None = None, bn_momentum: float = 0.9, seed: int = 0):  # -> keras.Model
    """Trunk (He-normal init, a new seeded initialiser per layer: FACTS §3) + GAP head.
    crop None: any input size (crops for training, 448 for whole-frame checks)."""
    import tf_keras as keras

    inputs = keras.Input(shape=(crop, crop, 3), name="image")
    x = inputs
    for i, filters in enumerate(FILTERS, 1):
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=True, name=f"conv{i}",
                                kernel_initializer=keras.initializers.HeNormal(seed=seed + i))(x)
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense",
                           kernel_initializer=keras.initializers.HeNormal(seed=seed + 7))(x)
    outputs = keras.layers.Dense(9, activation="softmax", name="classes",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 8))(x)
    return keras.Model(inputs, outputs, name="pix2pix_trunk_gap")


def fold_into_classifier(patch_model, batch_size: int | None = None):  # -> keras.Model (Table 3.8)
    """The exact Table 3.8 448x448 network carrying the patch model's weights."""
    from models.training.net import build_classifier

    model = build_classifier(batch_size=batch_size)
    for i in range(1, len(FILTERS) + 1):
        model.get_layer(f"conv{i}").set_weights(patch_model.get_layer(f"conv{i}").get_weights())
        model.get_layer(f"bn{i}").set_weights(patch_model.get_layer(f"bn{i}").get_weights())
    kernel, bias = patch_model.get_layer("dense").get_weights()
    model.get_layer("dense").set_weights([fold_dense_kernel(kernel), bias])
    model.get_layer("classes").set_weights(patch_model.get_layer("classes").get_weights())
    return model
