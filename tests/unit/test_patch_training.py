"""The patch trainer's pieces: the GAP -> Flatten fold, crop labels, soft ordinal targets, the
learning-rate curve. The Keras parity test runs where TensorFlow is installed (training extra)."""

from __future__ import annotations

import numpy as np
import pytest

from models.training.patch_net import CELLS, fold_dense_kernel
from models.training.patch_train import Cache, lr_at, sample_crops, soft_ordinal


def test_folded_kernel_on_a_flattened_map_equals_gap_then_dense() -> None:
    rng = np.random.default_rng(0)
    gap_kernel = rng.normal(size=(512, 64)).astype(np.float32)
    feature_map = rng.normal(size=(7, 7, 512)).astype(np.float32)
    via_gap = feature_map.mean(axis=(0, 1)) @ gap_kernel
    via_flatten = feature_map.reshape(-1) @ fold_dense_kernel(gap_kernel)  # NHWC flatten order
    assert fold_dense_kernel(gap_kernel).shape == (CELLS * 512, 64)
    np.testing.assert_allclose(via_flatten, via_gap, rtol=1e-4, atol=1e-4)


def test_soft_ordinal_targets_put_the_rest_on_neighbours() -> None:
    targets = soft_ordinal(np.array([0, 4, 8]), true_mass=0.8)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0)
    assert targets[0, 0] == pytest.approx(0.8) and targets[0, 1] == pytest.approx(0.2)
    assert targets[1, 3] == pytest.approx(0.1) and targets[1, 5] == pytest.approx(0.1)
    assert targets[2, 7] == pytest.approx(0.2) and targets[2, :7].sum() == 0


def test_learning_rate_warms_up_from_1e5_then_decays_by_cosine() -> None:
    assert lr_at(0, 6e-4, 300, 3000) == pytest.approx(1e-5)
    assert lr_at(300, 6e-4, 300, 3000) == pytest.approx(6e-4)
    assert lr_at(150, 6e-4, 300, 3000) == pytest.approx((1e-5 * 6e-4) ** 0.5)
    assert lr_at(3000, 6e-4, 300, 3000) == pytest.approx(0.02 * 6e-4)
    curve = [lr_at(s, 6e-4, 300, 3000) for s in range(300, 3001, 100)]
    assert all(a >= b for a, b in zip(curve, curve[1:], strict=False))


def textured_cache(partial_left_sharp: bool) -> Cache:
    """One variant, 9 classes of random texture; optionally only the right half defocused."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (9, 448, 448, 3), dtype=np.uint8)
    masks = np.full((1, 56, 56), 255, np.uint8)
    if partial_left_sharp:
        masks[0, :, :28] = 0
    return Cache(images, np.arange(9), masks)


def test_crops_of_whole_frame_defocus_carry_the_class_they_were_drawn_from() -> None:
    cache = textured_cache(partial_left_sharp=False)
    crops, labels = sample_crops(cache, 200, 128, np.random.default_rng(2))
    assert crops.shape == (200, 128, 128, 3)
    for crop, label in zip(crops, labels, strict=True):  # each crop is a window of its class image
        assert (cache.images[label] == crop[0, 0]).all(axis=-1).any()
    assert set(labels.tolist()) == set(range(9))


def test_a_crop_in_the_sharp_part_of_partial_defocus_is_labelled_sharp() -> None:
    cache = textured_cache(partial_left_sharp=True)
    crops, labels = sample_crops(cache, 300, 128, np.random.default_rng(3))
    share_sharp = float((labels == 0).mean())
    assert 0.3 < share_sharp < 0.9  # the left half's crops, whatever class they were drawn from
    assert set(labels.tolist()) - {0}  # right-half crops keep their class


def test_the_folded_448_network_gives_the_gap_models_outputs() -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf_keras")
    from models.training.patch_net import build_patch_model, fold_into_classifier

    patch = build_patch_model(seed=5)
    rng = np.random.default_rng(4)
    for layer in patch.layers:  # non-trivial BN statistics, as after training
        if layer.name.startswith("bn"):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
    folded = fold_into_classifier(patch, batch_size=1)
    assert folded.count_params() == 12_760_393
    x = rng.random((2, 448, 448, 3)).astype(np.float32)
    np.testing.assert_allclose(folded.predict(x, batch_size=1, verbose=0), patch.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-5)
