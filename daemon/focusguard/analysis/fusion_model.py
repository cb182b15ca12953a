"""The fusion's calibrated model: a small JSON file of coefficients or trees, evaluated with numpy.

Owns loading and evaluating the model that turns the evidence vector (focusguard.analysis.evidence
`FEATURES`) into one probability of defocus. The file (`fusion_model.json` in this package, made
offline by `python -m models.fusion.fit`) holds, per regime group (``day``; ``night`` = low_light
and IR) and per sensitivity boundary (the camera's `blurry_from`: P(defocus at least that class)),
either

* ``logistic``: standardisation (`mean`, `scale`), `coef`, `intercept`; or
* ``trees``: gradient-boosted regression trees on the log-odds (`init`, `learning_rate`, and per
  tree the arrays `feature`, `threshold`, `left`, `right`, `value`, as scikit-learn stores them),

and the `threshold` on the probability chosen offline for the false-alarm target. Nothing here
fits: the numbers come from the file, so the daemon needs no scikit-learn.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from focusguard.analysis.evidence import FEATURES
from focusguard.common.errors import ModelError

MODEL_FILE = "fusion_model.json"
NIGHT_REGIMES = ("low_light", "ir")


def regime_group(regime: str) -> str:
    return "night" if regime in NIGHT_REGIMES else "day"


@dataclass(frozen=True)
class Logistic:
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    coef: npt.NDArray[np.float64]
    intercept: float

    def log_odds(self, x: npt.NDArray[np.float64]) -> float:
        return float(((x - self.mean) / self.scale) @ self.coef + self.intercept)

    def log_odds_bounds(self, x: npt.NDArray[np.float64], free: Mapping[int, tuple[float, float]]) -> tuple[float, float]:
        """The least and greatest log-odds while each feature in `free` ranges over its (lo, hi)."""
        z = self.log_odds(x)
        lo = hi = z
        for i, (a, b) in free.items():
            w = self.coef[i] / self.scale[i]
            span = (w * (a - x[i]), w * (b - x[i]))
            lo, hi = lo + min(span), hi + max(span)
        return lo, hi


@dataclass(frozen=True)
class Trees:
    init: float
    learning_rate: float
    trees: tuple[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64],
                       npt.NDArray[np.int64], npt.NDArray[np.float64]], ...]  # fmt: skip

    def log_odds(self, x: npt.NDArray[np.float64]) -> float:
        total = 0.0
        for feature, threshold, left, right, value in self.trees:
            node = 0
            while left[node] >= 0:  # scikit-learn: children -1 at a leaf; go left when x <= threshold
                node = int(left[node] if x[feature[node]] <= threshold[node] else right[node])
            total += float(value[node])
        return self.init + self.learning_rate * total

    def log_odds_bounds(self, x: npt.NDArray[np.float64], free: Mapping[int, tuple[float, float]]) -> tuple[float, float]:
        """The least and greatest log-odds while each feature in `free` ranges over its (lo, hi),
        the others fixed at `x`: per tree the extreme leaves a path can reach (exact per tree, so
        the sum is a sure bound; the cascade skips the CNN only when the bound decides)."""
        low = high = 0.0
        for feature, threshold, left, right, value in self.trees:
            leaves: list[float] = []
            stack = [0]
            while stack:
                node = stack.pop()
                if left[node] < 0:
                    leaves.append(float(value[node]))
                    continue
                f, t = int(feature[node]), threshold[node]
                a, b = free.get(f, (x[f], x[f]))
                if a <= t:  # some value of the range goes left
                    stack.append(int(left[node]))
                if b > t:  # some goes right
                    stack.append(int(right[node]))
            low += min(leaves)
            high += max(leaves)
        return self.init + self.learning_rate * low, self.init + self.learning_rate * high


@dataclass(frozen=True)
class Boundary:
    """P(defocus at least `blurry_from`) for one regime group, and its decision threshold."""

    model: Logistic | Trees
    threshold: float

    def probability(self, x: npt.NDArray[np.float64]) -> float:
        return _sigmoid(self.model.log_odds(x))

    def probability_bounds(self, x: npt.NDArray[np.float64], free: Mapping[int, tuple[float, float]]) -> tuple[float, float]:
        """(least, greatest) P(defocus) over every value the `free` features can take."""
        lo, hi = self.model.log_odds_bounds(x, free)
        return _sigmoid(lo), _sigmoid(hi)


def _sigmoid(z: float) -> float:
    z = max(-40.0, min(40.0, z))
    return 1.0 / (1.0 + math.exp(-z))


def _parse_model(data: Mapping[str, Any]) -> Logistic | Trees:
    if data["kind"] == "logistic":
        return Logistic(np.asarray(data["mean"], np.float64), np.asarray(data["scale"], np.float64),
                        np.asarray(data["coef"], np.float64), float(data["intercept"]))  # fmt: skip
    if data["kind"] == "trees":
        trees = tuple(
            (np.asarray(t["feature"], np.int64), np.asarray(t["threshold"], np.float64),
             np.asarray(t["left"], np.int64), np.asarray(t["right"], np.int64), np.asarray(t["value"], np.float64))
            for t in data["trees"]
        )  # fmt: skip
        return Trees(float(data["init"]), float(data["learning_rate"]), trees)
    raise ValueError(f"unknown model kind {data['kind']!r}")


class FusionModel:
    """All boundaries of both regime groups, as read from the JSON file."""

    def __init__(self, data: Mapping[str, Any], source: str = MODEL_FILE) -> None:
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError(f"{source}: fitted on other features than focusguard.analysis.evidence.FEATURES: refit it")
        self.source = source
        self.kind = str(data.get("kind", "?"))
        self.info: dict[str, Any] = dict(data.get("info", {}))
        self.boundaries: dict[tuple[str, str], Boundary] = {}
        for group, by_class in data["models"].items():
            for blurry_from, entry in by_class.items():
                self.boundaries[(group, blurry_from)] = Boundary(_parse_model(entry), float(entry["threshold"]))

    @classmethod
    def load(cls, path: str | Path | None = None) -> FusionModel:
        """The given file, else the one shipped in the package; `ModelError` when unusable."""
        source = str(path) if path is not None else f"focusguard/analysis/{MODEL_FILE}"
        try:
            if path is None:
                text = resources.files("focusguard.analysis").joinpath(MODEL_FILE).read_text(encoding="utf-8")
            else:
                text = Path(path).read_text(encoding="utf-8")
            return cls(json.loads(text), source)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(source, f"unusable fusion model: {err}") from err

    def classes(self, group: str = "day") -> list[str]:
        return [b for g, b in self.boundaries if g == group]

    def boundary(self, regime: str, blurry_from: str) -> Boundary:
        """The model for this lighting regime and sensitivity; KeyError names what is missing."""
        key = (regime_group(regime), blurry_from)
        if key not in self.boundaries:
            raise KeyError(f"the fusion model has no {key[0]} model for blurry_from {blurry_from!r} "
                           f"(has: {', '.join(self.classes(key[0]))})")  # fmt: skip
        return self.boundaries[key]


def supported_classes(labels: Sequence[str] | None = None) -> list[str]:
    """The `blurry_from` values the shipped model covers (both regime groups)."""
    model = shipped()
    day, night = set(model.classes("day")), set(model.classes("night"))
    return [c for c in (labels or sorted(day)) if c in day and c in night]


_SHIPPED: FusionModel | None = None


def shipped() -> FusionModel:
    """The packaged model, loaded once per process (it is read-only)."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = FusionModel.load()
    return _SHIPPED
