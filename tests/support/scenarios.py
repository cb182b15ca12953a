"""Small helpers for the evidence / fusion / false-alarm unit tests: the sharp test view, sensor noise,
a fake CNN detector and a hand-made fusion model.

The sharp view is a 1280x720 crop of the committed fixture ``tests/fixtures/sharp_scene.jpg`` (the
Debian photo "life" reduced from 1920 to 1280 px wide, so one of its pixels is 1.5 pixels of the
1920 px scale: exactly the scaling `models.synth.psf.defocus` applies to a 1280 px frame). It needs
neither the photo cache nor apt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from focusguard.analysis.detectors import Verdict
from focusguard.analysis.evidence import FEATURES
from focusguard.analysis.infer import DEFAULT_LABELS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sharp_scene.jpg"


@lru_cache(maxsize=4)
def _sharp_view(width: int, height: int) -> npt.NDArray[np.uint8]:
    photo = cv2.imread(str(FIXTURE), cv2.IMREAD_COLOR)
    if photo is None:
        raise RuntimeError(f"cannot read {FIXTURE}")
    ph, pw = photo.shape[:2]
    if pw < width or ph < height:
        scale = max(width / pw, height / ph)
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ph, pw = photo.shape[:2]
    y0, x0 = (ph - height) // 2, (pw - width) // 2
    view = np.ascontiguousarray(photo[y0 : y0 + height, x0 : x0 + width])
    view.setflags(write=False)
    return view


def sharp_view(width: int = 1280, height: int = 720) -> npt.NDArray[np.uint8]:
    """A pixel-exact (never resampled, unless the fixture is smaller) in-focus crop, read-only."""
    return _sharp_view(width, height)


def noisy(image: npt.NDArray[np.uint8], rng: np.random.Generator, sigma: float = 1.0) -> npt.NDArray[np.uint8]:
    """The image plus fresh Gaussian sensor noise (luma-like: the same for B, G, R), rounded."""
    noise = rng.standard_normal(image.shape[:2], dtype=np.float32) * np.float32(sigma)
    out = image.astype(np.float32) + (noise[..., None] if image.ndim == 3 else noise)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def gray_bgr(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """An IR-like monochrome frame (B = G = R)."""
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def covered_frame(rng: np.random.Generator, shape: tuple[int, int] = (720, 1280), level: float = 12.0,
                  sigma: float = 1.5) -> npt.NDArray[np.uint8]:  # fmt: skip
    """A lens cap / hand: a nearly uniform dark frame with sensor noise (luma std well below 4)."""
    h, w = shape
    yy = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    field = level + 1.0 * yy + rng.standard_normal((h, w), dtype=np.float32) * np.float32(sigma)
    gray = np.clip(np.rint(field), 0, 255).astype(np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


# --------------------------------------------------------------------------- a CNN detector double


def cnn_probabilities(cls: str) -> dict[str, float]:
    """9 probabilities peaking at `cls` (0.84 there, 0.02 elsewhere)."""
    probs = {label: 0.02 for label in DEFAULT_LABELS}
    probs[cls] = 0.84
    return probs


class FakeCnn:
    """A `Detector` whose verdict the test sets: `blurry` True answers b_3, False answers sharp."""

    name = "cnn"

    def __init__(self, blurry: bool = False) -> None:
        self.blurry = blurry
        self.calls = 0

    def verdict(self, frame_bgr: npt.NDArray[np.uint8]) -> Verdict:
        self.calls += 1
        cls = "b_3" if self.blurry else "sharp"
        probs = cnn_probabilities(cls)
        score = float(sum(v for k, v in probs.items() if DEFAULT_LABELS.index(k) >= DEFAULT_LABELS.index("b_0.75")))
        return Verdict(self.blurry, cls, probs, score)


# --------------------------------------------------------------------------- hand-made fusion models


def logistic_entry(coef: Mapping[str, float], intercept: float, threshold: float = 0.5,
                   mean: Mapping[str, float] | None = None,
                   scale: Mapping[str, float] | None = None) -> dict[str, Any]:  # fmt: skip
    """One boundary's JSON entry: a logistic model on the named features (others: coefficient 0)."""
    mean, scale = mean or {}, scale or {}
    return {
        "kind": "logistic",
        "mean": [float(mean.get(name, 0.0)) for name in FEATURES],
        "scale": [float(scale.get(name, 1.0)) for name in FEATURES],
        "coef": [float(coef.get(name, 0.0)) for name in FEATURES],
        "intercept": float(intercept),
        "threshold": float(threshold),
    }


def model_json(entry: Mapping[str, Any], boundaries: Sequence[str] = ("b_0.75",),
               groups: Sequence[str] = ("day", "night"), kind: str = "logistic") -> dict[str, Any]:  # fmt: skip
    """A whole fusion-model document with the same entry for every group and boundary."""
    return {
        "features": list(FEATURES),
        "kind": kind,
        "models": {g: {b: dict(entry) for b in boundaries} for g in groups},
        "info": {"made": "by hand, for tests"},
    }


def sharpness_model() -> dict[str, Any]:
    """P(defocus) = sigmoid(-10 lap0_median - 3): 0.047 at the baseline's sharpness, 0.98 at half of it."""
    return model_json(logistic_entry({"lap0_median": -10.0}, -3.0, 0.5))
