"""`detector: combined`: the CNN's verdict confirmed by the camera's own sharpness baseline.

Owns the combined verdict (`combined_verdict`, pure). The frame's lighting regime (day /
low_light / ir, baseline.lighting_regime) picks the rule; the scale-free sharpness
(baseline.tile_sharpness) is compared with the camera's baseline for that regime:

* ``day``: a frame votes blurry only when the CNN calls it blurry AND its sharpness dropped
  below `combined_drop` (default 0.6) x the day baseline (basis ``both``). The CNN alone
  false-alarms on some scenes; the sharpness ratio alone moves with the scene; both together
  must agree.
* ``low_light`` and ``ir`` (night): the CNN is not trusted there. The shipped model calls
  noisy IR / low-light frames sharp even at sigma 7 (and the thesis reports it at 20.9% on
  IR), so requiring its vote would make `combined` blind at night. A frame votes blurry when
  its sharpness is below `night_drop` (default `NIGHT_DROP`, 0.7) x that regime's own baseline,
  whatever the CNN says (basis ``sharpness_night``, blurry or not). The night measure runs one
  pyrDown step (baseline.REGIME_LEVELS) so the sensor noise does not hide the defocus.

No baseline for the regime, or no measure (too little detail): the CNN alone (``cnn_only``).

Learning (`CombinedDetector`): while the camera is not `lost` (start-up, and after every
focus_restored / refocus_done, which also restart learning: the lens may have moved) each
frame of a regime without a baseline is a learning frame (never blurry: a new regime,
e.g. the IR switch at dusk, learns first and cannot alarm) — except a day frame the CNN
calls blurry: it is not learnt and votes as the CNN says (``cnn_only``), so a camera that
starts out of focus is still reported; once the regime has a
baseline, in-focus frames (sharpness at least the regime's drop x the baseline) keep it
current (slow running mean). While `lost`, a regime without a baseline falls back to the
CNN alone. Each verdict leaves `figures` (`sharpness`, `baseline`, `regime`, `basis`) for
the state and events: the basis says which rule decided.

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

from focusguard.analysis.baseline import (
    REGIME_LEVELS,
    BaselineStore,
    baseline_path,
    lighting_regime,
    tile_sharpness,
)
from focusguard.analysis.detectors import ClassifierLike, Detector, Verdict, cnn_for_camera

log = logging.getLogger(__name__)

COMBINED_DROP = 0.6
NIGHT_REGIMES = ("low_light", "ir")  # the CNN is not trusted there: the sharpness ratio decides
# Night: blurry when sharpness < NIGHT_DROP x the regime's baseline. Measured (tile_sharpness at
# REGIME_LEVELS["ir"], ratio to the median of 5 in-focus frames) on clips._night frames, 1280x720
# crops of tests/fixtures/sharp_scene.jpg and of the 1920 px source photo, defocus sigma at 1080p
# scale, views across the clips' pan range (240x40 px) x 3 noise seeds; "h264": the fixture's
# frames after clips.make_clip + PyAV decoding:
#   level/noise     in focus    sigma 2     sigma 3     sigma 4     sigma 7
#   0.6 / 2         0.98-1.07   0.53-0.58   0.35-0.39   0.25-0.28   0.14-0.15
#   0.45 / 4        0.97-1.07   0.57-0.61   0.41-0.46   0.33-0.37   0.27-0.30
#   0.45 / 4 h264   0.98-1.02   0.57-0.58   0.40-0.42   0.30-0.34   0.21-0.27
#   0.3 / 4         0.96-1.08   0.59-0.67   0.47-0.52   0.40-0.45   0.37-0.42
#   0.45 / 8        0.97-1.06   0.64-0.71   0.52-0.58   0.48-0.52   0.47-0.52
#   0.3 / 8         0.97-1.06   0.71-0.76   0.63-0.68   0.61-0.66   0.64-0.69
#   0.3 / 8 h264    0.97-1.01   0.70-0.73   0.62-0.65   0.61-0.64   0.65-0.67
# Wider in-focus spread: views 132 px apart 0.90-1.00, half a frame apart 0.78-1.00; the
# lighting moving within the regime (baseline learnt at 0.3/8, frame at 0.6/2) 0.84. Colour
# low_light frames (level 0.2-0.3, noise 4-8): in focus 0.90-1.00, sigma 4 <= 0.50. 0.7 keeps
# in-focus frames >= 0.78 well above it and catches sigma >= 4 everywhere measured (at 0.3/8
# the noise floor caps the drop at ~0.69: just caught); sigma 2-3 at noise <= 4 too.
# The daemon on the RTSP test clip (0.45/4, tests/integration/test_combined_night.py): in
# focus 0.97-1.05, sigma 7 0.27.
# Re-measure (fixture photo, no H.264 step): .venv/bin/python -m bench.night_ratios
NIGHT_DROP = 0.7


def combined_verdict(
    cnn_blurry: bool,
    sharpness: float | None,
    baseline: float | None,
    drop: float,
    regime: str = "day",
    night_drop: float = NIGHT_DROP,
) -> tuple[bool, str]:
    """(blurry, basis). basis: ``cnn_only`` (no figure to compare: the CNN decides);
    night (`NIGHT_REGIMES`): ``sharpness_night`` (blurry iff sharpness < night_drop x baseline,
    the CNN ignored); day: ``both`` (blurry), ``sharpness_ok`` (CNN blurry, sharpness normal),
    ``cnn_sharp`` (the CNN says sharp)."""
    if baseline is None or sharpness is None:
        return cnn_blurry, "cnn_only"
    if regime in NIGHT_REGIMES:
        return sharpness < night_drop * baseline, "sharpness_night"
    if not cnn_blurry:
        return False, "cnn_sharp"
    if sharpness < drop * baseline:
        return True, "both"
    return False, "sharpness_ok"


class CombinedDetector:
    """One camera: by day CNN AND sharpness drop, at night the sharpness drop alone, against
    the per-regime baseline."""

    name = "combined"

    def __init__(
        self,
        cnn: Detector,
        store: BaselineStore,
        drop: float = COMBINED_DROP,
        learning_allowed: Callable[[], bool] | None = None,
        night_drop: float = NIGHT_DROP,
    ) -> None:
        self.cnn, self.store, self.drop, self.night_drop = cnn, store, drop, night_drop
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
        if baseline is None and learning and regime not in NIGHT_REGIMES and cnn.blurry:
            # Never learn "day" from a picture the CNN calls blurry: a camera installed (or
            # restarted) out of focus is reported like with `cnn`, not taken as its normal.
            blurry, basis = True, "cnn_only"
        elif baseline is None and learning:
            self.store.learn(regime, sharpness, cnn.probabilities)
            blurry, basis = (
                False,
                "learning",
            )  # a regime's first frames define its normal
        else:
            blurry, basis = combined_verdict(
                cnn.blurry, sharpness, baseline, self.drop, regime, self.night_drop
            )
            drop = self.night_drop if regime in NIGHT_REGIMES else self.drop
            if (
                learning
                and baseline is not None
                and sharpness is not None
                and sharpness >= drop * baseline
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
    identity: str | None = None,
) -> CombinedDetector:
    """The combined detector of a camera config (`blurry_from`, `preprocess`, `combined_drop`,
    `night_drop`)."""
    cnn = cnn_for_camera(camera, classifier)
    path = baseline_path(state_dir, camera.name) if state_dir is not None else None
    store = BaselineStore(camera.name, path, clock=clock, wall_clock=wall_clock, identity=identity)
    return CombinedDetector(
        cnn,
        store,
        getattr(camera, "combined_drop", COMBINED_DROP),
        learning_allowed,
        night_drop=getattr(camera, "night_drop", NIGHT_DROP),
    )


class BaselineCommands:
    """App extension: `<p>/<cam>/baseline/reset` (any payload) resets that camera's baseline."""

    def __init__(
        self, monitors: dict[str, Any], publisher: Any, topic_prefix: str
    ) -> None:
        self.monitors, self.publisher, self.prefix = monitors, publisher, topic_prefix
        self.foreign: Callable[[str], bool] = lambda _camera: False  # coordination: a site camera not held here

    def start(self) -> None:
        if callable(getattr(self.publisher, "subscribe", None)):
            self.publisher.subscribe(f"{self.prefix}/+/baseline/reset", self.on_command)

    def stop(self) -> None:
        pass

    def on_command(self, topic: str, payload: bytes) -> None:
        camera = topic[len(self.prefix) + 1 :].split("/")[0]
        monitor = self.monitors.get(camera)
        detector = getattr(monitor, "detector", None)
        if monitor is None and self.foreign(camera):
            log.debug("baseline reset for %s: another instance watches it", camera)
            return
        if not callable(getattr(detector, "request_reset", None)):
            log.warning(
                "baseline reset for %r ignored: no such camera with detector combined",
                camera,
            )
            return
        detector.request_reset("MQTT command")  # type: ignore[union-attr]
