"""focusguard.analysis.fusion_model: the calibrated model's JSON, evaluated with numpy (hand-computed cases)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from focusguard.analysis import evidence, fusion_model
from focusguard.analysis.evidence import FEATURES
from focusguard.analysis.fusion_model import Boundary, FusionModel, Logistic, Trees, regime_group
from focusguard.analysis.infer import DEFAULT_LABELS
from focusguard.common.errors import ModelError
from tests.support.scenarios import logistic_entry, model_json, noisy, sharp_view

IDX = {name: i for i, name in enumerate(FEATURES)}
SHIPPED = Path(fusion_model.__file__).with_name(fusion_model.MODEL_FILE)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def vector(**values: float) -> np.ndarray:
    x = np.zeros(len(FEATURES))
    for name, value in values.items():
        x[IDX[name]] = value
    return x


# --------------------------------------------------------------------------- logistic


LOGISTIC = logistic_entry(
    coef={"lap0_median": -2.0, "ncc_global": 1.0},
    intercept=0.3,
    threshold=0.7,
    mean={"lap0_median": 0.1, "ncc_global": 0.5},
    scale={"lap0_median": 0.5, "ncc_global": 0.25},
)


@pytest.mark.parametrize(
    ("values", "z"),
    [
        # (-0.4 - 0.1) / 0.5 * -2 = 2; (0.9 - 0.5) / 0.25 * 1 = 1.6; + 0.3
        ({"lap0_median": -0.4, "ncc_global": 0.9}, 3.9),
        # 0.1 at the mean: 0; (0.5 - 0.5): 0; the intercept alone
        ({"lap0_median": 0.1, "ncc_global": 0.5}, 0.3),
        # (0.6 - 0.1) / 0.5 * -2 = -2; (0.25 - 0.5) / 0.25 = -1; + 0.3; other features have coef 0
        ({"lap0_median": 0.6, "ncc_global": 0.25, "cnn_p": 0.9, "brightness": -3.0}, -2.7),
    ],
)
def test_logistic_probability(values: dict[str, float], z: float) -> None:
    model = FusionModel(model_json(LOGISTIC))
    boundary = model.boundary("day", "b_0.75")
    assert isinstance(boundary.model, Logistic)
    assert boundary.threshold == 0.7
    assert boundary.model.log_odds(vector(**values)) == pytest.approx(z, abs=1e-9)
    assert boundary.probability(vector(**values)) == pytest.approx(sigmoid(z), abs=1e-9)


def test_logistic_by_hand_with_every_feature() -> None:
    rng = np.random.default_rng(0)
    mean, scale, coef = rng.normal(size=len(FEATURES)), rng.uniform(0.5, 2, len(FEATURES)), rng.normal(size=len(FEATURES))
    entry = {"kind": "logistic", "mean": mean.tolist(), "scale": scale.tolist(), "coef": coef.tolist(),
             "intercept": -0.25, "threshold": 0.6}  # fmt: skip
    x = rng.normal(size=len(FEATURES))
    z = sum((x[i] - mean[i]) / scale[i] * coef[i] for i in range(len(FEATURES))) - 0.25
    boundary = FusionModel(model_json(entry)).boundary("day", "b_0.75")
    assert boundary.probability(x) == pytest.approx(sigmoid(z), rel=1e-9)


def test_extreme_log_odds_are_clamped() -> None:
    high = FusionModel(model_json(logistic_entry({}, 1000.0))).boundary("day", "b_0.75")
    low = FusionModel(model_json(logistic_entry({}, -1000.0))).boundary("day", "b_0.75")
    assert high.probability(vector()) == pytest.approx(sigmoid(40.0))  # no OverflowError from exp(1000)
    assert low.probability(vector()) == pytest.approx(sigmoid(-40.0)) and low.probability(vector()) > 0.0


# --------------------------------------------------------------------------- trees


def two_trees() -> dict[str, Any]:
    """Gradient-boosted trees in scikit-learn's tree_ layout (depth first; leaves: feature -2, children -1)."""
    lap, ncc, cnn = IDX["lap0_median"], IDX["ncc_global"], IDX["cnn_p"]
    tree_a = {  # lap0_median <= -0.3 ? 2.0 : (ncc_global <= 0.5 ? 0.4 : -1.5)
        "feature": [lap, -2, ncc, -2, -2],
        "threshold": [-0.3, -2.0, 0.5, -2.0, -2.0],
        "left": [1, -1, 3, -1, -1],
        "right": [2, -1, 4, -1, -1],
        "value": [0.1, 2.0, -0.8, 0.4, -1.5],  # inner nodes' values are never read
    }
    tree_b = {  # cnn_p <= 0.5 ? -0.2 : 1.0
        "feature": [cnn, -2, -2],
        "threshold": [0.5, -2.0, -2.0],
        "left": [1, -1, -1],
        "right": [2, -1, -1],
        "value": [0.3, -0.2, 1.0],
    }
    return {"kind": "trees", "init": -1.0, "learning_rate": 0.5, "trees": [tree_a, tree_b], "threshold": 0.55}


@pytest.mark.parametrize(
    ("values", "z"),
    [
        ({"lap0_median": -0.5, "cnn_p": 0.7}, -1.0 + 0.5 * (2.0 + 1.0)),  # 0.5
        ({"lap0_median": 0.0, "ncc_global": 0.9, "cnn_p": 0.1}, -1.0 + 0.5 * (-1.5 - 0.2)),  # -1.85
        ({"lap0_median": 0.0, "ncc_global": 0.2, "cnn_p": 0.5}, -1.0 + 0.5 * (0.4 - 0.2)),  # -0.9: 0.5 <= 0.5 goes left
        ({"lap0_median": -0.3, "ncc_global": 0.9, "cnn_p": 0.9}, -1.0 + 0.5 * (2.0 + 1.0)),  # at the threshold: left
        ({"lap0_median": -0.2999, "ncc_global": 0.5, "cnn_p": 0.51}, -1.0 + 0.5 * (0.4 + 1.0)),  # 0.4
    ],
)
def test_trees_probability(values: dict[str, float], z: float) -> None:
    model = FusionModel(model_json(two_trees(), kind="trees"))
    assert model.kind == "trees"
    boundary = model.boundary("day", "b_0.75")
    assert isinstance(boundary.model, Trees)
    assert len(boundary.model.trees) == 2 and boundary.threshold == 0.55
    assert boundary.model.log_odds(vector(**values)) == pytest.approx(z, abs=1e-12)
    assert boundary.probability(vector(**values)) == pytest.approx(sigmoid(z), abs=1e-12)


def test_trees_match_hand_values_exactly() -> None:
    boundary = FusionModel(model_json(two_trees(), kind="trees")).boundary("ir", "b_0.75")
    assert boundary.probability(vector(lap0_median=-0.5, cnn_p=0.7)) == pytest.approx(0.6224593312, abs=1e-9)
    assert boundary.probability(vector(lap0_median=0.0, ncc_global=0.9, cnn_p=0.1)) == pytest.approx(
        0.1358728970, abs=1e-9
    )


def test_single_leaf_tree() -> None:
    entry = {"kind": "trees", "init": 0.2, "learning_rate": 0.1,
             "trees": [{"feature": [-2], "threshold": [-2.0], "left": [-1], "right": [-1], "value": [3.0]}],
             "threshold": 0.5}  # fmt: skip
    boundary = FusionModel(model_json(entry)).boundary("day", "b_0.75")
    assert boundary.probability(vector(lap0_median=-5.0)) == pytest.approx(sigmoid(0.5))


# --------------------------------------------------------------------------- the document


def test_wrong_features_raise() -> None:
    good = model_json(LOGISTIC)
    for features in ([], list(FEATURES)[:-1], list(reversed(FEATURES)), [*FEATURES, "extra"]):
        with pytest.raises(ValueError, match="refit"):
            FusionModel({**good, "features": features})
    missing = {k: v for k, v in good.items() if k != "features"}
    with pytest.raises(ValueError, match="other features"):
        FusionModel(missing)


def test_unknown_model_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown model kind 'forest'"):
        FusionModel(model_json({**LOGISTIC, "kind": "forest"}))


def test_boundary_missing_names_it() -> None:
    model = FusionModel(model_json(LOGISTIC, boundaries=("b_0.75", "b_2"), groups=("day",)))
    with pytest.raises(KeyError) as raised:
        model.boundary("day", "b_5")
    message = str(raised.value)
    assert "'b_5'" in message and "day" in message
    assert "b_0.75" in message and "b_2" in message  # what it has
    with pytest.raises(KeyError, match="night model for blurry_from 'b_0.75'"):
        model.boundary("ir", "b_0.75")  # the night group is missing altogether


def test_boundaries_per_group() -> None:
    doc = model_json(LOGISTIC, boundaries=("b_0.75",))
    doc["models"]["night"]["b_0.75"] = logistic_entry({}, 2.0, 0.9)
    model = FusionModel(doc)
    day, night = model.boundary("day", "b_0.75"), model.boundary("low_light", "b_0.75")
    assert model.boundary("ir", "b_0.75") is night
    assert (day.threshold, night.threshold) == (0.7, 0.9)
    assert night.probability(vector()) == pytest.approx(sigmoid(2.0))
    assert sorted(model.classes("day")) == ["b_0.75"] and model.classes("night") == ["b_0.75"]
    assert model.info == {"made": "by hand, for tests"}


@pytest.mark.parametrize(
    ("regime", "group"), [("day", "day"), ("low_light", "night"), ("ir", "night"), ("unknown", "day")]
)
def test_regime_group(regime: str, group: str) -> None:
    assert regime_group(regime) == group


def test_load_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model_json(two_trees(), kind="trees")), encoding="utf-8")
    model = FusionModel.load(path)
    assert model.source == str(path)
    assert isinstance(model.boundary("day", "b_0.75"), Boundary)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        json.dumps({"features": ["x"], "models": {}}),
        json.dumps({"features": list(FEATURES)}),
        json.dumps(model_json({"kind": "logistic", "mean": [0.0], "threshold": 0.5})),
    ],
)
def test_load_unusable_raises_model_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match="unusable fusion model"):
        FusionModel.load(path)


def test_load_missing_file_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unusable fusion model"):
        FusionModel.load(tmp_path / "nope.json")


# --------------------------------------------------------------------------- the shipped model


def test_shipped_model_loads_and_covers_every_boundary() -> None:
    assert SHIPPED.is_file(), f"{SHIPPED} is missing: python -m models.fusion.fit"
    model = fusion_model.shipped()
    assert model is fusion_model.shipped()  # loaded once
    expected = list(DEFAULT_LABELS[1:])  # b_0.5 .. b_7
    assert expected[0] == "b_0.5" and expected[-1] == "b_7"
    for group in ("day", "night"):
        assert sorted(model.classes(group), key=DEFAULT_LABELS.index) == expected, group
    assert fusion_model.supported_classes(DEFAULT_LABELS) == expected
    for (group, blurry_from), boundary in model.boundaries.items():
        assert 0.5 <= boundary.threshold < 1.0, (group, blurry_from, boundary.threshold)
        p = boundary.probability(np.zeros(len(FEATURES)))
        assert 0.0 < p < 1.0


def test_shipped_model_calls_its_own_view_sharp() -> None:
    """A frame against a baseline of its own (noisy) frames is no defocus, at every sensitivity."""
    model = fusion_model.shipped()
    rng = np.random.default_rng(0)
    view = sharp_view()
    base = evidence.median_profile([evidence.profile(noisy(view, rng)) for _ in range(5)])
    now = evidence.profile(noisy(view, rng))
    x = evidence.features(now, base)
    for blurry_from in DEFAULT_LABELS[1:]:
        boundary = model.boundary(now.regime, blurry_from)
        assert boundary.probability(x) < boundary.threshold, blurry_from
