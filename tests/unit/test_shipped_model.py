"""The shipped int8 model, in the real runtime interpreter: spec, ops, and a sanity verdict."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from focusguard.analysis.infer import Classifier, default_model_path, load_labels
from focusguard.analysis.preprocess import to_model_rgb

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sharp_scene.jpg"
# Ops the Edge TPU compiler maps (BN and ReLU are folded into CONV_2D by the converter).
EDGETPU_OPS = {"CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX", "QUANTIZE"}


def _interpreter():
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Without the default XNNPACK delegate, so the op list shows the model's own ops.
    interpreter = Interpreter(
        model_path=str(default_model_path()),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    return interpreter


def test_labels_are_the_nine_thesis_classes() -> None:
    labels = load_labels(default_model_path().parent / "labels.txt")
    assert labels == ["sharp", "b_0.5", "b_0.75", "b_1", "b_2", "b_3", "b_4", "b_5", "b_7"]


def test_input_output_spec_is_fixed_batch_uint8() -> None:
    interpreter = _interpreter()
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    assert list(inp["shape"]) == [1, 448, 448, 3]  # batch fixed at 1 for the Edge TPU compiler
    assert inp["dtype"] == np.uint8
    scale, zero_point = inp["quantization"]
    assert scale == pytest.approx(1 / 255, rel=1e-3) and zero_point == 0  # raw pixels go in
    assert list(out["shape"]) == [1, 9]
    assert out["dtype"] == np.uint8


def test_only_edgetpu_compatible_ops() -> None:
    ops = {op["op_name"] for op in _interpreter()._get_ops_details()}
    assert ops <= EDGETPU_OPS, ops - EDGETPU_OPS
    assert "CONV_2D" in ops and "FULLY_CONNECTED" in ops


def test_sharp_photo_is_sharp_and_its_defocused_version_blurry() -> None:
    classifier = Classifier(default_model_path(), device="cpu")
    sharp = cv2.imread(str(FIXTURE))
    # b_7 at this width: sigma 7 at 1920 px, scaled to the photo's 1280 px.
    sigma = 7 * sharp.shape[1] / 1920
    defocused = cv2.GaussianBlur(sharp, (0, 0), sigma)
    labels = classifier.labels
    sharp_probs = classifier.classify(to_model_rgb(sharp))
    blurry_probs = classifier.classify(to_model_rgb(defocused))
    first_blurry = labels.index("b_0.75")
    assert int(np.argmax(sharp_probs)) < first_blurry, dict(zip(labels, sharp_probs.round(3), strict=True))
    assert int(np.argmax(blurry_probs)) >= first_blurry, dict(zip(labels, blurry_probs.round(3), strict=True))
