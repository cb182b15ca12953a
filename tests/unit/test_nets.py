"""The thesis' other two CNNs (models/training/nets.py) and the models shipped from them.

TensorFlow part (skipped without the `train` extra): each net's 448 export form gives the crop
model's outputs on a whole frame, and the parameter counts are within 1% of the thesis'.
Shipped part (always): each `models/{mann,mff}/*_int8.tflite` loads in the daemon's
interpreter, takes 448x448 uint8 with batch 1, answers 9 classes, and uses Edge TPU ops only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {"mann": REPO / "models" / "mann" / "focusguard_mann_448_int8.tflite",
           "mff": REPO / "models" / "mff" / "focusguard_mff_448_int8.tflite"}  # fmt: skip


@pytest.mark.parametrize("name", ["mann", "mff"])
def test_the_448_form_is_the_crop_model_on_a_whole_frame(name: str) -> None:
    pytest.importorskip("tensorflow")
    from models.training.nets import NETS

    net = NETS[name]
    crop_model = net.build_crop(seed=3)
    whole = net.to_448(crop_model)
    frames = np.random.default_rng(0).random((2, 448, 448, 3), dtype=np.float32)
    expected = crop_model.predict(frames, verbose=0)
    got = np.concatenate([whole.predict(f[None], verbose=0) for f in frames])
    assert np.abs(expected - got).max() < 1e-4
    assert abs(whole.count_params() - net.thesis_params) / net.thesis_params < 0.01, whole.count_params()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_is_448_uint8_batch_1_with_edgetpu_ops_only(name: str) -> None:
    from focusguard.analysis.infer import Classifier

    path = SHIPPED[name]
    assert path.is_file() and (path.parent / "labels.txt").is_file(), f"{path} (and labels.txt) must be shipped"
    classifier = Classifier(path, device="cpu", threads=1)  # labels.txt beside it
    assert classifier.labels[0] == "sharp" and len(classifier.labels) == 9
    probs = classifier.classify(np.zeros((448, 448, 3), np.uint8))
    assert probs.shape == (9,) and abs(float(probs.sum()) - 1.0) < 0.05
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from models.training.nets import EDGETPU_OPS

    # Without the default XNNPACK delegate, so the op list shows the model's own ops.
    bare = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    bare.allocate_tensors()
    ops = {op["op_name"] for op in bare._get_ops_details()}
    assert ops <= EDGETPU_OPS, ops - EDGETPU_OPS
    assert "CONV_2D" in ops and "FULLY_CONNECTED" in ops
    print(name, "ops:", sorted(ops))
    details = classifier._interpreter.get_input_details()[0]
    assert list(details["shape"]) == [1, 448, 448, 3] and details["dtype"] == np.uint8


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_check_and_eval_take_each_model(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`focusguard check --model` and `focusguard eval --model` run the net through the daemon's own pipeline."""
    import json

    import cv2

    from focusguard.commands.cli import main

    fixture = REPO / "tests" / "fixtures" / "sharp_scene.jpg"
    assert main(["check", "--json", "--model", str(SHIPPED[name]), str(fixture)]) == 0
    verdict = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert verdict["class"] in ("sharp", "b_0.5", "b_0.75", "b_1", "b_2", "b_3", "b_4", "b_5", "b_7")
    for kind, sigma in (("sharp", 0.0), ("blurry", 6.0)):
        (tmp_path / kind).mkdir()
        image = cv2.imread(str(fixture))
        cv2.imwrite(str(tmp_path / kind / "a.jpg"), cv2.GaussianBlur(image, (0, 0), sigma) if sigma else image)
    out = tmp_path / "eval.json"
    assert main(["eval", str(tmp_path), "--detector", "cnn", "--model", str(SHIPPED[name]), "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["detector"] for r in results] == ["cnn/resize"]
    assert len(json.loads(out.read_text())["items"]["cnn/resize"]) == 2


def test_recall_at_equal_false_alarm_rate_moves_the_threshold_not_the_model() -> None:
    """compare_nets' equal-FAR figure: the margin is the daemon's rule (blurry above 0), and the
    threshold chosen lets through at most the reference share of sharp samples."""
    from models.training.evaluate import at_equal_far, blurry_margin

    probs = np.array([[0.6, 0.1, 0.3] + [0.0] * 6,  # sharp, argmax sharp
                      [0.2, 0.1, 0.7] + [0.0] * 6,  # says b_0.75
                      [0.4, 0.0, 0.6] + [0.0] * 6])
    margins = blurry_margin(probs)
    assert margins[0] < 0 < margins[1] and margins[2] > 0
    rng = np.random.default_rng(1)
    blurry = np.r_[np.zeros(100, bool), np.ones(100, bool)]
    scores = np.r_[rng.normal(0, 1, 100), rng.normal(2, 1, 100)]
    loose, strict = at_equal_far(scores, blurry, 0.2), at_equal_far(scores, blurry, 0.05)
    assert loose["far"] <= 0.2 and strict["far"] <= 0.05
    assert strict["threshold"] > loose["threshold"] and strict["recall"] < loose["recall"]
    assert at_equal_far(scores, blurry, 1.0)["recall"] == 1.0


def test_a_sharp_bias_lowers_the_blurry_margin_by_exactly_that_bias() -> None:
    """patch_export --target-far: the operating point is a bias on the sharp logits, nothing else moves."""
    pytest.importorskip("tensorflow")
    from models.training.evaluate import blurry_margin
    from models.training.nets import NETS
    from models.training.patch_export import add_sharp_bias

    model = NETS["mann"].build_crop(seed=5)
    frames = np.random.default_rng(2).random((3, 64, 64, 3), dtype=np.float32)
    before = model.predict(frames, verbose=0)
    add_sharp_bias(model, 1.5)
    after = model.predict(frames, verbose=0)
    np.testing.assert_allclose(blurry_margin(before) - blurry_margin(after), 1.5, atol=0.05)
    np.testing.assert_allclose(after[:, 2:] / after[:, 2:].sum(1, keepdims=True),
                               before[:, 2:] / before[:, 2:].sum(1, keepdims=True), rtol=1e-4)  # fmt: skip
