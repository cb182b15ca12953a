"""`detector: combined`: the CNN's verdict confirmed by the camera's own sharpness baseline.

Owns the combined verdict (`combined_verdict`, pure): a frame votes blurry only when the
CNN calls it blurry AND its scale-free sharpness (baseline.tile_sharpness) dropped below
`combined_drop` (default 0.6) x the camera's baseline for the frame's lighting regime
(day / low_light / ir, baseline.lighting_regime). The CNN alone false-alarms on dark and
IR pictures; the sharpness ratio alone moves with the scene; both together must agree.

Learning (`CombinedDetector`): while the camera is not `lost` (start-up, and after every
focus_restored / refocus_done, which also restart learning: the lens may have moved) each
frame of a regime without a baseline is a learning frame (never blurry: a new regime,
e.g. the IR switch at dusk, learns first and cannot alarm); once the regime has a
baseline, in-focus frames keep it current (slow running mean). While `lost`, a regime
without a baseline falls back to the CNN alone. Each verdict leaves `figures`
(`sharpness`, `baseline`, `regime`, `basis`) for the state and events.

`BaselineCommands` (app extension): MQTT `<p>/<cam>/baseline/reset` → that camera's
baselines are forgotten (before its next analysis, on its own thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from focusguard.baseline import (
    REGIME_LEVELS,
    BaselineStore,
    baseline_path,
    lighting_regime,
    tile_sharpness,
)
from focusguard.detectors import ClassifierLike, Detector, Verdict, make_detector

log = logging.getLogger(__name__)

COMBINED_DROP = 0.6


def combined_verdict(
    cnn_blurry: bool, sharpness: float | None, baseline: float | None, drop: float
) -> tuple[bool, str]:
    """(blurry, basis). basis: ``both`` (blurry), ``cnn_only`` (no figure to compare: the CNN decides),
    ``sharpness_ok`` (CNN blurry, sharpness normal), ``cnn_sharp`` (the CNN says sharp)."""
    if baseline is None or sharpness is None:
        return cnn_blurry, "cnn_only"
    if not cnn_blurry:
        return False, "cnn_sharp"
    if sharpness < drop * baseline:
        return True, "both"
    return False, "sharpness_ok"


class CombinedDetector:
    """CNN AND sharpness drop against the per-regime baseline of one camera."""

    name = "combined"

    def __init__(
        self,
        cnn: Detector,
        store: BaselineStore,
        drop: float = COMBINED_DROP,
        learning_allowed: Callable[[], bool] | None = None,
    ) -> None:
        self.cnn, self.store, self.drop = cnn, store, drop
        self._learning_allowed = learning_allowed or (lambda: True)
        self._reset_requested = threading.Event()
        self.figures: dict[str, Any] = {}

    def request_reset(self, why: str = "reset requested") -> None:
        """Forget the baselines before the next analysis (safe from any thread)."""
        self._reset_why = why
        self._reset_requested.set()

    def verdict(self, frame_bgr: npt.NDArray[np.uint8]) -> Verdict:
        if self._reset_requested.is_set():
            self._reset_requested.clear()
            log.info(
                "camera %s: baseline reset (%s): learning again",
                self.store.camera,
                getattr(self, "_reset_why", ""),
            )
            self.store.reset()
        regime = lighting_regime(frame_bgr)
        sharpness = tile_sharpness(frame_bgr, REGIME_LEVELS[regime]).value
        cnn = self.cnn.verdict(frame_bgr)
        baseline = self.store.sharpness(regime)
        learning = self._learning_allowed()
        if baseline is None and learning:
            self.store.learn(regime, sharpness, cnn.probabilities)
            blurry, basis = (
                False,
                "learning",
            )  # a regime's first frames define its normal
        else:
            blurry, basis = combined_verdict(cnn.blurry, sharpness, baseline, self.drop)
            if (
                learning
                and baseline is not None
                and sharpness is not None
                and sharpness >= self.drop * baseline
            ):
                self.store.learn(regime, sharpness, cnn.probabilities)
        self.figures = {
            "sharpness": None if sharpness is None else round(sharpness, 4),
            "baseline": None if baseline is None else round(baseline, 4),
            "regime": regime,
            "basis": basis,
        }
        score = (
            sharpness / baseline if sharpness is not None and baseline else cnn.score
        )
        return Verdict(blurry, cnn.cls, cnn.probabilities, float(score))


def for_camera(
    camera: Any,
    classifier: ClassifierLike,
    state_dir: Path | None,
    learning_allowed: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> CombinedDetector:
    """The combined detector of a camera config (`blurry_from`, `preprocess`, `combined_drop`)."""
    cnn = make_detector(
        "cnn",
        classifier,
        blurry_from=getattr(camera, "blurry_from", "b_0.75"),
        preprocess=getattr(camera, "preprocess", "resize"),
    )
    path = baseline_path(state_dir, camera.name) if state_dir is not None else None
    store = BaselineStore(camera.name, path, clock=clock, wall_clock=wall_clock)
    return CombinedDetector(
        cnn, store, getattr(camera, "combined_drop", COMBINED_DROP), learning_allowed
    )


class BaselineCommands:
    """App extension: `<p>/<cam>/baseline/reset` (any payload) resets that camera's baseline."""

    def __init__(
        self, monitors: dict[str, Any], publisher: Any, topic_prefix: str
    ) -> None:
        self.monitors, self.publisher, self.prefix = monitors, publisher, topic_prefix

    def start(self) -> None:
        if callable(getattr(self.publisher, "subscribe", None)):
            self.publisher.subscribe(f"{self.prefix}/+/baseline/reset", self.on_command)

    def stop(self) -> None:
        pass

    def on_command(self, topic: str, payload: bytes) -> None:
        camera = topic[len(self.prefix) + 1 :].split("/")[0]
        monitor = self.monitors.get(camera)
        detector = getattr(monitor, "detector", None)
        if not callable(getattr(detector, "request_reset", None)):
            log.warning(
                "baseline reset for %r ignored: no such camera with detector combined",
                camera,
            )
            return
        detector.request_reset("MQTT command")  # type: ignore[union-attr]
