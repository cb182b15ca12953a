"""Wiring and supervision: one monitor per camera, a shared classifier, one publisher, one stop event.

Owns the per-camera loop (every `interval_s`: newest frame → preprocess → classify →
decide → publish), stream liveness (`stream_lost` after `stream_timeout_s` without
frames, `stream_restored` when they return; a dead stream resets the debounce window
so it can never produce `focus_lost`), camera isolation (each monitor runs in its own
thread and an error in one never stops the others) and orderly shutdown.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from focusguard.analysis import combined, fusion, quality
from focusguard.analysis.decide import Decision, FocusDecider
from focusguard.analysis.detectors import Detector, detector_for_camera
from focusguard.analysis.fair import FairClassifier
from focusguard.analysis.tamper import TamperReason, TamperWatch
from focusguard.common.errors import ConfigError
from focusguard.common.events import EventType, make_event, make_state
from focusguard.common.identity import camera_identity, delivery_identity
from focusguard.delivery.metrics import CameraStats
from focusguard.operate.extensions import build_extensions
from focusguard.operate.statelock import StateDirBusy, StateLock
from focusguard.operate.watchdog import Heartbeat
from focusguard.settings.config import AppConfig, CameraConfig
from focusguard.sources.grab import Frame, FrameSource

log = logging.getLogger(__name__)


class ClassifierLike(Protocol):
    @property
    def labels(self) -> Sequence[str]: ...

    def classify(self, rgb448: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]: ...


class PublisherLike(Protocol):
    def start(self) -> None: ...

    def publish_state(self, camera: str, state: dict[str, Any]) -> None: ...

    def publish_event(self, camera: str, event: dict[str, Any]) -> Any: ...

    def stop(self) -> None: ...


GrabberFactory = Callable[[CameraConfig], FrameSource]


def default_grabber_factory(camera: CameraConfig) -> FrameSource:
    from focusguard.sources.grab import StreamGrabber

    return StreamGrabber(camera.name, camera.url, camera.interval_s, camera.keyframes_only)


class CameraMonitor:
    """The analysis loop of one camera; `tick()` is one step (driven by a thread or by tests)."""

    def __init__(
        self,
        camera: CameraConfig,
        source: FrameSource,
        classifier: ClassifierLike,
        publisher: PublisherLike,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        state_dir: Path | None = None,
        identity: str | None = None,  # binds the baselines to this camera (identity.py)
    ) -> None:
        self.camera, self.source, self.classifier, self.publisher = camera, source, classifier, publisher
        self._clock, self._wall_clock = clock, wall_clock
        self.decider = FocusDecider(
            classifier.labels,
            blurry_from=camera.blurry_from,
            window=camera.window,
            lost_votes=camera.lost_votes,
            restore_votes=camera.restore_votes,
            max_gap_s=camera.stream_timeout_s,
        )
        # fusion (default) | combined | cnn | dft | laplacian; baselines are only learnt while focus is not lost
        def learning_allowed() -> bool:
            return self.decider.focus != "lost"

        self.detector: Detector
        if camera.detector == "fusion":  # per-regime evidence baseline in <state_dir>/baseline/ (fusion.py)
            self.detector = fusion.for_camera(camera, classifier, state_dir, learning_allowed, clock,
                                              identity=identity)
        elif camera.detector == "combined":  # per-regime sharpness baseline (combined.py)
            self.detector = combined.for_camera(camera, classifier, state_dir, learning_allowed, clock, wall_clock,
                                                identity=identity)
        else:
            self.detector = detector_for_camera(camera, classifier, learning_allowed)
        # A covered lens or a changed view is tampering, not focus loss (tamper.py). Validated over twice
        # the focus window: passing glare or a parked truck must not read as a camera turned away.
        self.tamper = TamperWatch(2 * camera.window, 2 * camera.lost_votes, 2 * camera.restore_votes)
        self.stream = "offline"  # until the first frame
        self._lost_reported = False
        self._waiting_since = clock()
        self._last_frame: Frame | None = None
        self._last_cls: str | None = None
        self._last_probs: dict[str, float] = {}
        self.analysis: str | None = None  # ok | unsuitable | frozen (focusguard.analysis.quality), in the state
        self.analysis_reason: str | None = None  # why unsuitable: "too little contrast" | "too little detail"
        self._last_fingerprint: bytes | None = None
        self._unsuitable_run = 0  # consecutive unsuitable frames: a window of them makes focus unknown
        self._changed_at = 0.0  # monotonic time of the last new picture
        self.last_error: str | None = None  # for log de-duplication in _guarded_tick
        self.stats = CameraStats()  # analyses and their time: <p>/stats, Prometheus (metrics.py)
        self.heartbeat = Heartbeat(clock)  # progress of this loop, for the systemd watchdog (watchdog.py)
        # Called with (monitor, event) after each event is published, e.g. refocus on focus_lost.
        self.event_listeners: list[Callable[[CameraMonitor, dict[str, Any]], None]] = []
        self.owner: str | None = None  # with coordination: the instance watching this camera, in the state

    def publish_initial_state(self) -> None:
        self._publish_state(self._wall_clock())

    def tick(self) -> Decision | None:
        """Check liveness, analyse the newest frame if it is new; returns the decision made, if any."""
        now = self._clock()
        last = self.source.last_frame_monotonic
        if now - (last if last is not None else self._waiting_since) > self.camera.stream_timeout_s:
            if not self._lost_reported:
                self._stream_lost()
            return None
        frame = self.source.latest()
        if frame is None or frame is self._last_frame:
            return None  # nothing new since the last analysis
        self._last_frame = frame
        if self.stream == "offline":
            self._stream_up()
        if not self._suitable(frame):
            return None  # no verdict: the debounce window gets no vote
        return self._analyse(frame, now)

    def _suitable(self, frame: Frame) -> bool:
        """Screen a new frame: too little contrast or a frozen picture gets no verdict (focusguard.analysis.quality)."""
        view = quality.screen_view(frame.image_bgr)
        reason = quality.unsuitable_reason(view)
        if reason is not None:
            if (self.analysis, self.analysis_reason) != ("unsuitable", reason):
                log.warning("camera %s: %s to judge focus (dark, covered, uniform or featureless): no verdict",
                            self.camera.name, reason)
            self.analysis, self.analysis_reason, self._last_fingerprint = "unsuitable", reason, None
            self._last_cls, self._last_probs = None, {}
            self._unsuitable_run += 1
            self._observe_tamper("covered" if self._has_history() else None, frame.wall)
            if self._unsuitable_run == self.camera.window and self.decider.focus == "ok":
                # As long as a debounce window: not a passing shadow, the scene cannot be judged now.
                log.warning("camera %s: focus unknown (%s for %d frames)", self.camera.name, reason,
                            self._unsuitable_run)
                self.decider.forget()
            self._publish_state(frame.wall)
            return False
        self._unsuitable_run = 0
        fingerprint = quality.fingerprint(view)
        if fingerprint == self._last_fingerprint:
            # The same picture again is not new evidence (no vote). Unchanged for longer than
            # stream_timeout_s it is a frozen picture, and the state says so.
            unchanged_s = frame.monotonic - self._changed_at
            if self.analysis != "frozen" and unchanged_s > self.camera.stream_timeout_s:
                log.warning("camera %s: picture frozen (identical frames for %.0f s): no verdict until it changes",
                            self.camera.name, unchanged_s)
                self.analysis = "frozen"
                self._publish_state(frame.wall)
            return False
        if self.analysis in ("unsuitable", "frozen"):
            log.info("camera %s: picture usable again (was %s)", self.camera.name, self.analysis)
        self.analysis, self._last_fingerprint, self._changed_at = "ok", fingerprint, frame.monotonic
        self.analysis_reason = None
        return True

    def _analyse(self, frame: Frame, now: float) -> Decision:
        started = time.perf_counter()
        verdict = self.detector.verdict(frame.image_bgr)
        self.stats.record(time.perf_counter() - started)
        figures = getattr(self.detector, "figures", None) or {}
        scene_changed = bool(figures.get("scene_change"))
        self._observe_tamper("scene_changed" if scene_changed else None, frame.wall)
        if scene_changed or self.tamper.active:
            # A changed or covered view says nothing about the lens: no vote either way.
            self._last_cls, self._last_probs = verdict.cls, verdict.probabilities
            self._publish_state(frame.wall)
            return Decision(self.decider.focus, None, verdict.cls, bool(verdict.blurry))
        decision = self.decider.vote(verdict.blurry, now, verdict.cls)
        self._last_cls = verdict.cls
        self._last_probs = verdict.probabilities
        self._publish_state(frame.wall)
        if decision.event is not None:
            level = logging.WARNING if decision.event == "focus_lost" else logging.INFO
            log.log(level, "camera %s: %s (class %s)", self.camera.name, decision.event, decision.cls)
            self._event(decision.event, frame.wall, with_class=True)
            if decision.event == "focus_restored":
                self.relearn_baseline("focus_restored")
        return decision

    def _has_history(self) -> bool:
        """Whether the detector knows this camera's in-focus view (fusion: a learnt baseline)."""
        has = getattr(self.detector, "has_history", None)
        return bool(has()) if callable(has) else False

    def _observe_tamper(self, evidence: TamperReason | None, wall: float) -> None:
        event = self.tamper.observe(evidence)
        if event == "tamper_detected":
            reason = self.tamper.reason
            if reason == "scene_changed" and self.camera.scene_change == "relearn":
                # PTZ presets: a new view is the camera's new normal, learnt like at start-up.
                self.tamper.reason = None
                self.tamper.reset()
                log.info("camera %s: the view changed: learning it (scene_change: relearn)", self.camera.name)
                self.relearn_baseline("the view changed (scene_change: relearn)")
                self.decider.forget()
                return
            log.warning("camera %s: tamper detected (%s): focus cannot be judged", self.camera.name, reason)
            self.decider.forget()  # ok -> unknown, never a silent ok; an active focus_lost stays
            self._event("tamper_detected", wall, with_class=False, extra={"reason": reason})
            self._publish_state(wall)
        elif event == "tamper_cleared":
            log.info("camera %s: tamper cleared: the view is back", self.camera.name)
            self._event("tamper_cleared", wall, with_class=False)
            self._publish_state(wall)

    def relearn_baseline(self, why: str) -> None:
        """The detector (fusion, combined) learns this camera's baselines again (after focus_restored, refocus_done)."""
        request = getattr(self.detector, "request_reset", None)
        if callable(request):
            request(why)

    def _stream_lost(self) -> None:
        self._lost_reported = True
        self.stream = "offline"
        self.decider.reset()  # a dead stream must never count towards focus_lost
        self.tamper.reset()
        self._last_fingerprint = None  # a new connection's first picture is new evidence
        self._waiting_since = self._clock()
        log.warning("camera %s: no frames for %.1f s: stream lost", self.camera.name, self.camera.stream_timeout_s)
        wall = self._wall_clock()
        self._event("stream_lost", wall, with_class=False)
        self._publish_state(wall)

    def _stream_up(self) -> None:
        self.stream = "online"
        if self._lost_reported:
            self._lost_reported = False
            log.info("camera %s: frames again: stream restored", self.camera.name)
            self._event("stream_restored", self._wall_clock(), with_class=False)

    def _event(self, kind: EventType, wall: float, with_class: bool, extra: dict[str, Any] | None = None) -> None:
        cls, probs = (self._last_cls, self._last_probs) if with_class else (None, None)
        figures = dict(getattr(self.detector, "figures", None) or {}) if with_class else {}
        figures.update(extra or {})
        event = make_event(kind, self.camera.name, cls, probs, wall, extra=figures or None)
        self.publisher.publish_event(self.camera.name, event)
        for listener in self.event_listeners:
            try:
                listener(self, event)
            except Exception:  # an integration must not break the analysis loop
                log.exception("camera %s: event listener failed", self.camera.name)

    def _publish_state(self, wall: float) -> None:
        state = make_state(
            self.decider.focus, self.stream, self._last_cls, self._last_probs, wall, analysis=self.analysis
        )
        if self.analysis == "ok":  # the figures describe the last judged frame: not an unsuitable one
            state.update(getattr(self.detector, "figures", None) or {})  # fusion: p_defocus, regime, basis, ...
        state["tamper"] = self.tamper.reason
        if self.analysis_reason is not None:
            state["analysis_reason"] = self.analysis_reason
        if self.owner is not None:
            state["owner"] = self.owner
        self.publisher.publish_state(self.camera.name, state)


class FocusGuard:
    """The daemon: builds monitors for every camera and runs them until `stop_event` is set."""

    def __init__(
        self,
        config: AppConfig,
        classifier: ClassifierLike | None = None,
        publisher: PublisherLike | None = None,
        grabber_factory: GrabberFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        # Every camera analyses in its own thread: OpenCV's own worker threads only add overhead here
        # (1080p evidence profile 20.4 -> 15.3 ms of CPU, same result; bench/RESULTS_cascade.md).
        cv2.setNumThreads(1)
        mqtt = config.mqtt
        self.delivery = delivery_identity(mqtt.host, mqtt.port, mqtt.topic_prefix)  # whose outbox rows are ours
        self.stop_event = threading.Event()
        self._clock = clock
        self._closers: list[Callable[[], None]] = []
        self.classifier = classifier if classifier is not None else self._make_classifier()
        # cameras take turns round-robin (fair.py), on a pool of CPU interpreters when configured
        pool = self._make_pool() if classifier is None else []
        self.inference = FairClassifier(self.classifier, pool=pool)
        self.publisher = publisher if publisher is not None else self._make_publisher()
        self._factory = grabber_factory or default_grabber_factory
        self._wall_clock = wall_clock
        # The cameras watched here: all of them on a single box; with `coordination`, the share
        # ZooKeeper gives this instance, changing at run time (scaleout.py).
        self.monitors: dict[str, CameraMonitor] = {}
        for camera in config.cameras:
            if config.coordination is None:
                self.monitors[camera.name] = self.build_monitor(camera)
            else:  # monitors come with ZooKeeper's share; check every camera's threshold now
                self._check_blurry_from(camera)
        self._threads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        # start()/stop() add-ons (extensions.py: watchdog, discovery, refocus, stats); None: from config
        self.extensions: list[Any] | None = None
        self.coordinator: Any = None  # with `coordination`: the Coordinator (scaleout.py), for readiness and stats

    @property
    def instance_id(self) -> str | None:
        """This instance's name in its group (`coordination.instance_id`); None on a single box."""
        return self.config.coordination.instance_id if self.config.coordination else None

    def build_monitor(self, camera: CameraConfig) -> CameraMonitor:
        """A fresh monitor of `camera` (its baselines loaded from `state_dir`); ConfigError for a bad `blurry_from`."""
        try:
            monitor = CameraMonitor(
                camera, self._factory(camera), self.inference.for_camera(camera.name), self.publisher, self._clock,
                self._wall_clock, state_dir=self.config.state_dir,
                identity=camera_identity(self.delivery, camera.name, camera.url),
            )
        except ValueError as err:  # blurry_from not among the model's own labels
            raise ConfigError(self.config.source, f"cameras.{camera.name}.blurry_from", str(err)) from err
        monitor.owner = self.instance_id
        return monitor

    def _check_blurry_from(self, camera: CameraConfig) -> None:
        from focusguard.analysis.decide import blurry_index

        try:
            blurry_index(self.classifier.labels, camera.blurry_from)
        except ValueError as err:
            raise ConfigError(self.config.source, f"cameras.{camera.name}.blurry_from", str(err)) from err

    def _make_classifier(self) -> ClassifierLike:
        from focusguard.analysis.infer import Classifier

        model = self.config.model
        return Classifier(model.path, model.labels, device=model.device, threads=model.threads)

    def _make_pool(self) -> list[ClassifierLike]:
        """The interpreters beyond the first (`model.interpreters`): CPU only (one Edge TPU, one delegate)."""
        from focusguard.analysis.infer import Classifier

        model = self.config.model
        if getattr(self.classifier, "backend", "cpu") != "cpu" or model.interpreters <= 1:
            return []
        return [Classifier(model.path, model.labels, device="cpu", threads=model.threads)
                for _ in range(model.interpreters - 1)]  # fmt: skip

    def _make_publisher(self) -> PublisherLike:
        from focusguard.delivery.outbox import Outbox
        from focusguard.delivery.publish import MqttPublisher

        state_dir = self.config.state_dir
        lock = StateLock(state_dir)  # one daemon per state directory (statelock.py)
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock.acquire()
            outbox = Outbox(state_dir / "outbox.sqlite3", limit=self.config.mqtt.outbox_limit,
                            identity=self.delivery)
        except StateDirBusy as err:
            raise ConfigError(self.config.source, "state_dir", str(err)) from None
        except Exception as err:  # OSError, sqlite3.Error: both mean "state_dir is unusable"
            raise ConfigError(self.config.source, "state_dir", f"cannot use {state_dir}: {err}") from err
        self._closers += [outbox.close, lock.release]
        for other, count in outbox.foreign.items():
            log.warning("outbox: %d undelivered event(s) of %s (another config) kept in %s, not sent to %s",
                        count, other, state_dir, self.delivery)
        if outbox.dropped:
            log.warning("outbox: %d undelivered event(s) were dropped so far (outbox full)", outbox.dropped)
        if len(outbox):
            log.info("outbox: %d undelivered event(s) from before will be re-sent", len(outbox))
        return MqttPublisher(self.config.mqtt, outbox, availability_topic=self.availability_topic)

    @property
    def availability_topic(self) -> str:
        """`<p>/available`; with coordination one per instance: `<p>/instances/<id>/available`."""
        prefix = self.config.mqtt.topic_prefix
        return f"{prefix}/instances/{self.instance_id}/available" if self.instance_id else f"{prefix}/available"

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start publisher, grabbers and one monitor thread per camera."""
        backend = getattr(self.classifier, "backend", "?")
        reason = getattr(self.classifier, "backend_reason", "")
        model = getattr(self.classifier, "model_path", None)  # which net answers (model.path selects one)
        log.info("inference backend: %s (%s), model %s", backend, reason, model.name if model else "?")
        if self.extensions is None:
            self.extensions = build_extensions(self)  # may fail (a taken metrics port) before anything starts
        self.publisher.start()
        for monitor in list(self.monitors.values()):
            self._start_monitor(monitor)
        if self.config.coordination is None:
            log.info("watching %d camera(s)", len(self.monitors))
        for extension in self.extensions:
            extension.start()

    def _start_monitor(self, monitor: CameraMonitor) -> None:
        monitor.publish_initial_state()
        monitor.source.start()
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(monitor, stop), name=f"monitor-{monitor.camera.name}")
        thread.daemon = True
        thread.start()
        self._threads[monitor.camera.name] = (thread, stop)

    def watch(self, monitor: CameraMonitor) -> None:
        """Start watching one more camera at run time (coordination gave it to this instance)."""
        self.monitors[monitor.camera.name] = monitor
        for extension in self.extensions or []:
            added = getattr(extension, "camera_added", None)
            if callable(added):
                added(monitor)
        self._start_monitor(monitor)

    def unwatch(self, name: str) -> CameraMonitor | None:
        """Stop watching a camera at run time: its loop ends, its baselines are saved, its grabber stops
        in the background; the publisher forgets its state so a reconnect never re-sends it."""
        monitor = self.monitors.get(name)
        thread, stop = self._threads.pop(name, (None, None))
        if stop is not None:
            stop.set()
        if thread is not None:
            thread.join(10.0)
        if monitor is None:
            return None
        del self.monitors[name]
        save_baselines(monitor.detector)
        threading.Thread(target=monitor.source.stop, name=f"stop-{name}", daemon=True).start()
        forget = getattr(self.publisher, "forget_camera", None)
        if callable(forget):
            forget(name)
        for extension in self.extensions or []:
            removed = getattr(extension, "camera_removed", None)
            if callable(removed):
                removed(name)
        return monitor

    def tick_all(self) -> None:
        """One step for every camera, each isolated from the others' errors (tests, tools)."""
        for monitor in self.monitors.values():
            _guarded_tick(monitor)

    def request_stop(self, *_args: object) -> None:
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> None:
        """Run until SIGTERM/SIGINT (or `request_stop`), then shut down cleanly."""
        if threading.current_thread() is threading.main_thread():
            self.install_signal_handlers()
        self.start()
        try:
            while not self.stop_event.wait(1.0):
                pass
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        log.info("stopping")
        self.stop_event.set()
        for extension in reversed(self.extensions or []):  # the watchdog's STOPPING=1 goes first
            try:
                extension.stop()
            except Exception:
                log.exception("stopping %s failed", type(extension).__name__)
        for thread, stop in list(self._threads.values()):
            stop.set()
            thread.join(5.0)
        # Grabbers may sit in a blocking open/read for a few seconds: stop them in parallel.
        stoppers = [threading.Thread(target=m.source.stop, daemon=True) for m in self.monitors.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(10.0)
        self.publisher.stop()
        for close in self._closers:
            close()

    def _loop(self, monitor: CameraMonitor, stop: threading.Event) -> None:
        interval = monitor.camera.interval_s
        due = self._clock()
        while not self.stop_event.is_set() and not stop.is_set():
            _guarded_tick(monitor)
            due += interval
            now = self._clock()
            if due < now:  # fell behind (slow inference): skip, do not burst
                due = now + interval
            stop.wait(due - now)


def save_baselines(detector: Any) -> None:
    """Write a detector's learnt baselines now (fusion: `baselines`, combined: `store`), e.g. before a hand-over."""
    for store in (getattr(detector, "baselines", None), getattr(detector, "store", None)):
        save = getattr(store, "save", None)
        if callable(save):
            save()


def _guarded_tick(monitor: CameraMonitor) -> None:
    monitor.heartbeat.begin()
    try:
        monitor.tick()
    except Exception as err:
        # The same failure every interval would flood the log: traceback once, then debug.
        signature = f"{type(err).__name__}: {err}"
        if signature != monitor.last_error:
            log.exception("camera %s: analysis failed", monitor.camera.name)
        else:
            log.debug("camera %s: analysis failed again: %s", monitor.camera.name, signature)
        monitor.last_error = signature
    else:
        monitor.last_error = None
    finally:
        monitor.heartbeat.end()
