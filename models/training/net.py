"""The thesis' Pix2Pix-discriminator classifier, exactly Table 3.8 (12,760,393 parameters)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # Keras 3 breaks tfmot pruning (FACTS §3)

import numpy as np
import tf_keras as keras

try:  # run as a package module (python -m models.training...) or as a script from its folder
    from models.training.classes import INPUT_SIZE
except ImportError:
    from models.training.classes import INPUT_SIZE  # type: ignore[no-redef]

FILTERS = (64, 128, 256, 512, 512, 512)
EXPECTED_PARAMS = 12_760_393


def build_classifier(batch_size: int | None = None, bn_momentum: float = 0.9, seed: int = 0) -> keras.Model:
    """Six Conv(4x4, stride 2, same)+BN+ReLU blocks, Flatten, Dense 64 ReLU, Dense 9 softmax.

    A new seeded initialiser per layer: one shared RandomNormal instance gives same-shaped layers
    identical weights (FACTS §3). BN momentum 0.9: 0.99 lags in short trainings (FACTS §3).
    """
    inputs = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 3), batch_size=batch_size, name="image")
    x = inputs
    for i, filters in enumerate(FILTERS, 1):
        x = keras.layers.Conv2D(
            filters, 4, strides=2, padding="same", use_bias=True, name=f"conv{i}",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=seed + i),
        )(x)
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="dense",
                           kernel_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=seed + 7))(x)
    outputs = keras.layers.Dense(9, activation="softmax", name="classes",
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=0.02, seed=seed + 8))(x)
    model = keras.Model(inputs, outputs, name="pix2pix_classifier")
    assert model.count_params() == EXPECTED_PARAMS, model.count_params()
    return model


def zero_mean_first_layer(model: keras.Model) -> None:
    """Remove each first-layer filter's DC response so the random start already responds to
    edges and texture (what blur removes) rather than to brightness."""
    kernel, bias = model.get_layer("conv1").get_weights()
    kernel = kernel - kernel.mean(axis=(0, 1, 2), keepdims=True)
    model.get_layer("conv1").set_weights([kernel.astype(np.float32), bias])
