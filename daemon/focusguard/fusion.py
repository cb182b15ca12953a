"""`detector: fusion` (the default): one probability of defocus from the camera's own history and the CNN.

Owns the per-camera verdict of the default detector. Per analysis: the frame's lighting regime
(day / low_light / ir, baseline.lighting_regime), its evidence profile (focusguard.evidence), the
CNN's probabilities; against the camera's in-focus baseline *for that regime* the evidence
vector goes through the calibrated model (fusion_model.py, fitted offline by models/fusion/fit.py
on synthetic lens defocus and nuisances made from the shared sharp frames) for the camera's
sensitivity (`blurry_from`): P(defocus). The frame votes blurry when P >= the model's threshold
(or the camera's `fusion_threshold`); `decide.FocusDecider` debounces the votes as for any detector.

The CNN's two roles:
* **absolute judge while there is no history**: a regime without a baseline learns from its first
  `LEARN_FRAMES` frames (they define its normal and vote sharp), except a day frame the CNN calls
  blurry: it is not learnt and votes as the CNN says (basis ``cnn_only``), so a camera installed
  out of focus is still reported. While the camera is `lost`, nothing is learnt and a regime
  without a baseline is judged by the CNN alone.
* **one witness after that**: its P(blurry) now and as usual for this camera are features.

Learning after that: frames with P(defocus) below `LEARN_BELOW` whose coarse structure matches the
baseline (no scene change) move the baseline slowly (running mean, `ALPHA`), so it follows the
seasons and the scene's furniture. Baselines are JSON in ``<state_dir>/baseline/<camera>.fusion.json``
(atomic writes), reset like combined's (MQTT ``<p>/<cam>/baseline/reset``, ``focusguard
baseline-reset``, after focus_restored / refocus_done).

Scene evidence for tampering (tamper.py reads `figures`): ``scene_change`` = the thumbnail's
structure correlation with the baseline below `SCENE_CHANGED_NCC` in most tiles
(`SCENE_CHANGED_TILES`): turned away, a PTZ preset move, sprayed opaque; and ``changed_tiles``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from focusguard import evidence
from focusguard.baseline import (
    LEARN_FRAMES,
    REGIMES,
    lighting_regime,
    write_json_atomic,
)
from focusguard.detectors import ClassifierLike, Detector, Verdict, cnn_for_camera
from focusguard.fusion_model import FusionModel, regime_group, shipped
from focusguard.identity import baseline_is_ours, stamp

log = logging.getLogger(__name__)

# LEARN_FRAMES (baseline.py, as combined's): first frames of a regime whose median profile is its baseline
ALPHA = 0.02  # running mean once set
LEARN_BELOW = 0.2  # only clearly in-focus frames move the baseline
LEARN_MIN_NCC = 0.8  # ... and only when the scene's coarse structure is the baseline's
# The view itself changed (tamper evidence, not defocus): the structure correlation below this AND
# most tiles changed; glare of headlights or a truck changes a part of the view, not most of it.
SCENE_CHANGED_NCC = 0.5
SCENE_CHANGED_TILES = 0.6
SAVE_INTERVAL_S = 60.0
FEATURE_INDEX = {name: i for i, name in enumerate(evidence.FEATURES)}


class FusionBaselines:
    """A camera's in-focus profile per lighting regime; `path` None keeps it in memory."""

    def __init__(self, camera: str, path: Path | None = None, clock: Callable[[], float] = time.monotonic,
                 identity: str | None = None) -> None:
        self.camera, self.path, self._clock, self.identity = camera, path, clock, identity
        self.profiles: dict[str, evidence.Profile] = {}
        self._pending: dict[str, list[evidence.Profile]] = {}
        self._saved_at: float | None = None
        self._dirty = False
        self.load()

    def get(self, regime: str) -> evidence.Profile | None:
        return self.profiles.get(regime)

    def has_any(self) -> bool:
        return bool(self.profiles)

    def learn(self, regime: str, profile: evidence.Profile) -> bool:
        """Take one in-focus frame; True when this set the regime's first baseline."""
        if regime in self.profiles:
            self.profiles[regime] = evidence.blend(self.profiles[regime], profile, ALPHA)
            self._dirty = True
            self._maybe_save()
            return False
        pending = self._pending.setdefault(regime, [])
        pending.append(profile)
        if len(pending) < LEARN_FRAMES:
            return False
        self.profiles[regime] = evidence.median_profile(pending)
        del self._pending[regime]
        log.info("camera %s: %s in-focus baseline learnt from %d frames", self.camera, regime, LEARN_FRAMES)
        self.save()
        return True

    def reset(self) -> None:
        self.profiles.clear()
        self._pending.clear()
        self.save()

    def load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not baseline_is_ours(self.path, data, self.identity, self.camera):
                return
            self.profiles = {r: evidence.Profile.from_json(p) for r, p in data["regimes"].items() if r in REGIMES}
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("camera %s: ignoring unreadable baseline %s: %s", self.camera, self.path, err)
            self.profiles = {}
            return
        log.info("camera %s: fusion baseline loaded from %s: %s", self.camera, self.path,
                 ", ".join(sorted(self.profiles)) or "none yet")  # fmt: skip

    def _maybe_save(self) -> None:
        if self._dirty and (self._saved_at is None or self._clock() - self._saved_at >= SAVE_INTERVAL_S):
            self.save()

    def save(self) -> None:
        """Atomic write (temp file, fsync, rename); errors are logged, never raised."""
        self._saved_at, self._dirty = self._clock(), False
        if self.path is None:
            return
        payload = stamp({"version": 1, "camera": self.camera,
                         "regimes": {r: p.to_json() for r, p in self.profiles.items()}}, self.identity)
        try:
            write_json_atomic(self.path, payload)
        except OSError as err:
            log.warning("camera %s: cannot save baseline %s: %s", self.camera, self.path, err)


def fusion_baseline_path(state_dir: Path, camera: str) -> Path:
    """``<state_dir>/baseline/<camera>.fusion.json``."""
    return Path(state_dir) / "baseline" / f"{camera}.fusion.json"


class FusionDetector:
    """One camera's default detector: evidence vs its own history, through the calibrated model."""

    name = "fusion"

    def __init__(
        self,
        cnn: Detector,
        baselines: FusionBaselines,
        blurry_from: str = "b_0.75",
        model: FusionModel | None = None,
        learning_allowed: Callable[[], bool] | None = None,
        threshold: float | None = None,
    ) -> None:
        self.cnn, self.baselines, self.blurry_from = cnn, baselines, blurry_from
        self.model = model or shipped()
        for regime in ("day", "ir"):
            self.model.boundary(regime, blurry_from)  # KeyError now, not at the first frame
        self.threshold = threshold
        self._learning_allowed = learning_allowed or (lambda: True)
        self._reset_requested = threading.Event()
        self._reset_why = ""
        self.figures: dict[str, Any] = {}

    def request_reset(self, why: str = "reset requested") -> None:
        """Forget the baselines before the next analysis (safe from any thread)."""
        self._reset_why = why
        self._reset_requested.set()

    def has_history(self) -> bool:
        """A learnt in-focus view (tamper evidence needs one: app.py)."""
        return self.baselines.has_any()

    def threshold_for(self, regime: str) -> float:
        """The P(defocus) at and above which a frame of this regime votes blurry."""
        return self.model.boundary(regime, self.blurry_from).threshold if self.threshold is None else self.threshold

    def probability(self, regime: str, x: npt.NDArray[np.float64]) -> tuple[float, float]:
        """(P(defocus), the threshold it is compared with) for an evidence vector."""
        return self.model.boundary(regime, self.blurry_from).probability(x), self.threshold_for(regime)

    def verdict(self, frame_bgr: npt.NDArray[np.uint8]) -> Verdict:
        if self._reset_requested.is_set():
            self._reset_requested.clear()
            log.info("camera %s: baseline reset (%s): learning again", self.baselines.camera, self._reset_why)
            self.baselines.reset()
        regime = lighting_regime(frame_bgr)
        cnn = self.cnn.verdict(frame_bgr)
        probs = np.array(list(cnn.probabilities.values()), np.float32) if cnn.probabilities else None
        now = evidence.profile(frame_bgr, probs, regime)
        base = self.baselines.get(regime)
        learning = self._learning_allowed()
        figures: dict[str, Any] = {"regime": regime}
        if base is None:
            if learning and not (cnn.blurry and regime_group(regime) == "day"):
                self.baselines.learn(regime, now)
                blurry, basis, p = False, "learning", None  # a regime's first frames define its normal
            else:  # no history to compare with: the CNN is the absolute judge
                blurry, basis, p = bool(cnn.blurry), "cnn_only", None
        else:
            x = evidence.features(now, base)
            p, threshold = self.probability(regime, x)
            blurry, basis = p >= threshold, "fusion"
            ncc = float(x[FEATURE_INDEX["ncc_global"]])
            figures.update({
                "sharpness_ratio": round(float(np.exp(x[FEATURE_INDEX["lap0_median"]])), 3),
                "structure": round(ncc, 3), "changed_tiles": round(float(x[FEATURE_INDEX["ncc_changed"]]), 3),
                "scene_change": bool(ncc < SCENE_CHANGED_NCC and x[FEATURE_INDEX["ncc_changed"]] >= SCENE_CHANGED_TILES),
            })  # fmt: skip
            if learning and p < LEARN_BELOW and ncc >= LEARN_MIN_NCC:
                self.baselines.learn(regime, now)
        figures["p_defocus"] = None if p is None else round(p, 4)
        figures["basis"] = basis
        self.figures = figures
        score = p if p is not None else cnn.score
        return Verdict(bool(blurry), cnn.cls, cnn.probabilities, float(score))


def for_camera(
    camera: Any,
    classifier: ClassifierLike,
    state_dir: Path | None,
    learning_allowed: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    model: FusionModel | None = None,
    identity: str | None = None,
) -> FusionDetector:
    """The fusion detector of a camera config (`blurry_from`, `preprocess`, `fusion_threshold`)."""
    blurry_from = getattr(camera, "blurry_from", "b_0.75")
    cnn = cnn_for_camera(camera, classifier)
    path = fusion_baseline_path(state_dir, camera.name) if state_dir is not None else None
    return FusionDetector(cnn, FusionBaselines(camera.name, path, clock, identity), blurry_from, model, learning_allowed,
                          getattr(camera, "fusion_threshold", None))  # fmt: skip
