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

The cascade (CPU): the CNN is the costly part of an analysis (~30-80 ms of a core on 2 threads;
the evidence profile ~10 ms at 1080p), and with a baseline its answer only matters when it can
change the verdict. So, with a baseline, the evidence vector is first built without it and the
calibrated model is bounded over every value the CNN's features can take (`Boundary.
probability_bounds`: exact extreme leaves per tree). When even the most alarming CNN answer keeps
P(defocus) below the threshold, the CNN is skipped and its last result is reused (its age in the figures, `cnn_age_s`). The CNN runs
on every frame of a regime without a baseline (learning, `cnn_only`), whenever the evidence could
point to defocus, while its last answer was blurry (so a sharp vote, e.g. the focus_restored
event, never carries a blurry class), and at least every `cnn_refresh_s` (default 60 s) so the
state's class stays honest; `cnn_refresh_s: 0` runs it on every analysis. The verdicts equal those of always running
the CNN (tests/unit/test_cascade.py replays the evaluation sets through both), with two deliberate
differences in learning, both on the safe side: a frame that skipped the CNN is learnt only when
no CNN answer could have kept it out (P(defocus) bound below `LEARN_BELOW`); otherwise it waits
for a frame with a CNN result (at worst the refresh: the baseline then follows the scene more
slowly, never towards what might be defocus). And a learnt frame that skipped the CNN moves the
baseline's evidence but not its CNN part; the next learnt frame with a CNN result moves it by the
weight of all the frames in between (1 - (1 - ALPHA)^k), so the usual P(blurry) follows as before.

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
from focusguard.fusion_model import Boundary, FusionModel, regime_group, shipped
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
CNN_REFRESH_S = 60.0  # the CNN runs at least this often with a baseline (config: cnn_refresh_s)
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

    def learn(self, regime: str, profile: evidence.Profile, cnn_alpha: float | None = None) -> bool:
        """Take one in-focus frame; True when this set the regime's first baseline. `cnn_alpha`: the
        weight of its CNN part (the cascade's catch-up for learnt frames that skipped the CNN)."""
        if regime in self.profiles:
            self.profiles[regime] = evidence.blend(self.profiles[regime], profile, ALPHA, cnn_alpha)
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
        cnn_refresh_s: float = CNN_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cnn, self.baselines, self.blurry_from = cnn, baselines, blurry_from
        self.cnn_refresh_s, self._clock = cnn_refresh_s, clock
        self._last_cnn: Verdict | None = None
        self._last_cnn_at = 0.0
        self._learnt_without_cnn = 0  # learnt frames whose CNN part the baseline still owes
        self.cnn_runs = 0
        self.cnn_skips = 0
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
        return self.boundary_of(regime).probability(x), self.threshold_for(regime)

    def _run_cnn(self, frame_bgr: npt.NDArray[np.uint8]) -> Verdict:
        self._last_cnn, self._last_cnn_at = self.cnn.verdict(frame_bgr), self._clock()
        self.cnn_runs += 1
        return self._last_cnn

    def _cnn_due(self) -> bool:
        """The CNN runs anyway: cascade off, no result yet, or the last one is too old."""
        return (self.cnn_refresh_s <= 0 or self._last_cnn is None
                or self._clock() - self._last_cnn_at >= self.cnn_refresh_s)  # fmt: skip

    def _skip_cnn(self, regime: str, x: npt.NDArray[np.float64], base: evidence.Profile) -> tuple[bool, bool]:
        """(skip the CNN, and if so whether the frame may be learnt): skipped only when no CNN answer
        could make it vote blurry; learnt only when no CNN answer could stop it from being learnt."""
        _lowest, highest = self.boundary_of(regime).probability_bounds(x, evidence.cnn_unknown_ranges(base.cnn))
        if highest >= self.threshold_for(regime):
            return False, False  # the evidence may point to defocus: the CNN has its say (and the class is fresh)
        return True, highest < LEARN_BELOW

    def boundary_of(self, regime: str) -> Boundary:
        return self.model.boundary(regime, self.blurry_from)

    def verdict(self, frame_bgr: npt.NDArray[np.uint8]) -> Verdict:
        if self._reset_requested.is_set():
            self._reset_requested.clear()
            log.info("camera %s: baseline reset (%s): learning again", self.baselines.camera, self._reset_why)
            self.baselines.reset()
        regime = lighting_regime(frame_bgr)
        base = self.baselines.get(regime)
        learning = self._learning_allowed()
        ran = base is None or self._cnn_due()
        cnn = self._run_cnn(frame_bgr) if ran else self._last_cnn
        assert cnn is not None  # _cnn_due() runs it when there is no result yet
        now = evidence.profile(frame_bgr, _probabilities(cnn) if ran else None, regime)
        figures: dict[str, Any] = {"regime": regime}
        if base is None:
            if learning and not (cnn.blurry and regime_group(regime) == "day"):
                self.baselines.learn(regime, now)
                blurry, basis, p = False, "learning", None  # a regime's first frames define its normal
            else:  # no history to compare with: the CNN is the absolute judge
                blurry, basis, p = bool(cnn.blurry), "cnn_only", None
        else:
            x = evidence.features(now, base)
            ncc = float(x[FEATURE_INDEX["ncc_global"]])
            learnable_without_cnn = False
            if not ran:
                skip, learnable_without_cnn = self._skip_cnn(regime, x, base)
                # A sharp vote must not carry a blurry class (focus_restored after a focus loss): the
                # CNN runs until its own answer agrees again.
                if not skip or cnn.blurry:
                    cnn, ran = self._run_cnn(frame_bgr), True
                    now.cnn = _probabilities(cnn)
            # skipped: the last result stands in (the bound says any answer gives the same verdict)
            x = evidence.with_cnn(x, _probabilities(cnn), base.cnn)
            p, threshold = self.probability(regime, x)
            blurry, basis = p >= threshold, "fusion"
            figures.update({
                "sharpness_ratio": round(float(np.exp(x[FEATURE_INDEX["lap0_median"]])), 3),
                "structure": round(ncc, 3), "changed_tiles": round(float(x[FEATURE_INDEX["ncc_changed"]]), 3),
                "scene_change": bool(ncc < SCENE_CHANGED_NCC and x[FEATURE_INDEX["ncc_changed"]] >= SCENE_CHANGED_TILES),
            })  # fmt: skip
            # Skipped, a frame whose learning hangs on the CNN's answer is not learnt (deliberate: never
            # learn what might be defocus); the next frame with a CNN result decides again.
            if learning and ncc >= LEARN_MIN_NCC and p < LEARN_BELOW and (ran or learnable_without_cnn):
                self._learn_with_catch_up(regime, now)
        if not ran:
            self.cnn_skips += 1
        figures["p_defocus"] = None if p is None else round(p, 4)
        figures["basis"] = basis
        figures["cnn_age_s"] = round(self._clock() - self._last_cnn_at, 1)
        self.figures = figures
        score = p if p is not None else cnn.score
        return Verdict(bool(blurry), cnn.cls, cnn.probabilities, float(score))

    def _learn_with_catch_up(self, regime: str, now: evidence.Profile) -> None:
        """Learn `now`; its CNN part, when it has one, also carries the learnt frames that had none."""
        if now.cnn is None:
            self._learnt_without_cnn += 1
            self.baselines.learn(regime, now)
            return
        steps = self._learnt_without_cnn + 1
        self._learnt_without_cnn = 0
        self.baselines.learn(regime, now, cnn_alpha=1.0 - (1.0 - ALPHA) ** steps)


def _probabilities(cnn: Verdict) -> npt.NDArray[np.float32] | None:
    return np.array(list(cnn.probabilities.values()), np.float32) if cnn.probabilities else None


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
                          getattr(camera, "fusion_threshold", None), getattr(camera, "cnn_refresh_s", CNN_REFRESH_S),
                          clock)  # fmt: skip
