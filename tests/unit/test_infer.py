"""Classifier: validation, dequantisation, backend fallback, thread safety, the shipped model."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from focusguard.analysis.infer import (
    DEFAULT_LABELS,
    Classifier,
    default_model_path,
    dequantize_probs,
    load_labels,
    validate_model,
)
from focusguard.analysis.preprocess import quantize_input
from focusguard.common.errors import ModelError
from tests.unit.tflite_builder import write_model


def image_with_head(values: list[int]) -> np.ndarray:
    """A 448x448 RGB image whose first bytes (row 0, pixels 0..2, RGB) are `values`."""
    image = np.zeros((448, 448, 3), np.uint8)
    image.reshape(-1)[: len(values)] = values
    return image


def test_classify_dequantises_and_renormalises(tiny_model: Path) -> None:
    classifier = Classifier(tiny_model, device="cpu", threads=1)
    head = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    probs = classifier.classify(image_with_head(head))
    assert probs.dtype == np.float32 and probs.shape == (9,)
    # Tiny model input scale 1/256: q = round(p / 255 * 256); output scale 1/256.
    q = np.rint(np.array(head) / 255 * 256)
    np.testing.assert_allclose(probs, q / q.sum(), rtol=1e-5)
    assert probs.sum() == pytest.approx(1.0)
    assert classifier.labels == DEFAULT_LABELS
    assert (classifier.backend, classifier.backend_reason) == ("cpu", "device: cpu")


@pytest.mark.parametrize(
    ("raw", "scale", "zero_point", "expected"),
    [
        (np.array([0, 64, 192], np.uint8), 1 / 256, 0, [0.0, 0.25, 0.75]),
        (np.array([-128, -64, 64], np.int8), 1 / 256, -128, [0.0, 0.25, 0.75]),
        (np.array([0, 0, 0], np.uint8), 1 / 256, 0, [1 / 3, 1 / 3, 1 / 3]),  # no information: uniform
        (np.array([2, 1, 5], np.uint8), 0.1, 3, [0.0, 0.0, 1.0]),  # below zero point clips to 0
        (np.array([0.2, 0.6], np.float32), 0.0, 0, [0.25, 0.75]),  # float output: renormalised only
    ],
)
def test_dequantize_probs(raw: np.ndarray, scale: float, zero_point: int, expected: list[float]) -> None:
    out = dequantize_probs(raw, scale, zero_point)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)


def test_validate_model_ok(tiny_model: Path) -> None:
    info = validate_model(tiny_model)
    assert info.labels == DEFAULT_LABELS and info.input_dtype == "uint8" and info.runtime == "ai_edge_litert"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p, "model file not found"),
        (lambda p: (p.write_text("hello, not a model"), p)[1], "not a TFLite model"),
        (lambda p: (p.write_bytes(b"\0\0\0\0TFL3" + b"\xff" * 64), p)[1], "cannot load model"),
        (lambda p: write_model(p, side=224), "input shape must be 1x448x448x3, got 1x224x224x3"),
        (lambda p: write_model(p, classes=5), "output shape must be 1x9 (one score per label), got 1x5"),
    ],
    ids=["missing", "not-tflite", "corrupt", "wrong-input", "wrong-classes"],
)
def test_validate_model_errors(tmp_path: Path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / "m.tflite")
    for check in (lambda: validate_model(path), lambda: Classifier(path)):
        with pytest.raises(ModelError) as info:
            check()
        assert str(info.value).startswith(f"{path}: {problem}")


def test_labels_beside_the_model(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m.tflite", classes=3)
    (tmp_path / "labels.txt").write_text("sharp\nsoft\nmush\n\n")
    assert Classifier(model).labels == ("sharp", "soft", "mush")
    (tmp_path / "m.labels.txt").write_text("a\nb\n")  # <stem>.labels.txt wins, and must match
    with pytest.raises(ModelError, match="output shape must be 1x2"):
        Classifier(model)


def test_load_labels_errors(tmp_path: Path) -> None:
    (tmp_path / "dup.txt").write_text("a\na\n")
    with pytest.raises(ModelError, match="duplicate labels"):
        load_labels(tmp_path / "dup.txt")
    with pytest.raises(ModelError, match="cannot read labels"):
        load_labels(tmp_path / "missing.txt")


def test_edgetpu_fallback_and_explicit_request(tmp_path: Path, tiny_model: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_model.read_bytes())
    auto = Classifier(model)
    assert auto.backend == "cpu" and "no Edge TPU model m_edgetpu.tflite" in auto.backend_reason
    with pytest.raises(ModelError, match="device edgetpu requested but no Edge TPU model"):
        Classifier(model, device="edgetpu")
    (tmp_path / "m_edgetpu.tflite").write_bytes(tiny_model.read_bytes())  # compiled model, but no TPU here
    fallback = Classifier(model)
    assert fallback.backend == "cpu"
    assert "CPU fallback: Edge TPU unavailable (libedgetpu.so.1" in fallback.backend_reason


def test_classify_is_thread_safe(tiny_model: Path) -> None:
    classifier = Classifier(tiny_model, threads=1)
    errors: list[str] = []

    def worker(k: int) -> None:
        head = [0] * 9
        head[k] = 255
        results = [int(np.argmax(classifier.classify(image_with_head(head)))) for _ in range(10)]
        errors.extend(f"thread {k}: got class {r}" for r in results if r != k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_classify_rejects_wrong_input(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="448, 448, 3"):
        Classifier(tiny_model).classify(np.zeros((224, 224, 3), np.uint8))


SHIPPED = default_model_path()


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped model not built yet")
def test_shipped_model_runs_and_its_quantisation_is_raw_pixels() -> None:
    classifier = Classifier(device="cpu", threads=2)
    assert classifier.model_path == SHIPPED
    assert classifier.labels == tuple(load_labels(SHIPPED.parent / "labels.txt"))
    assert len(classifier.labels) == 9
    # Golden: the shipped model's input quantisation (scale 1/255, zero point 0) maps pixels to themselves.
    pixels = np.arange(256, dtype=np.uint8)
    q = quantize_input(pixels, classifier._input_scale, classifier._input_zero, classifier._input_dtype)
    np.testing.assert_array_equal(q, pixels)
    probs = classifier.classify(np.random.default_rng(3).integers(0, 256, (448, 448, 3), dtype=np.uint8))
    assert probs.shape == (9,) and probs.min() >= 0 and probs.sum() == pytest.approx(1.0, abs=1e-5)
