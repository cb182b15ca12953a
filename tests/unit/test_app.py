"""The app with a fake clock, fake frame sources, a fake classifier and a fake publisher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from focusguard.analysis.infer import DEFAULT_LABELS
from focusguard.operate.app import FocusGuard
from focusguard.settings.config import AppConfig, CameraConfig, parse_config
from focusguard.sources.grab import Frame
from tests.unit.conftest import FakeClock, FakeFrameSource

SHARP, BLURRY, BROKEN = 0, 5, 99  # frame pixel value = class index the fake classifier reports


class FakeSource(FakeFrameSource):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.fail: Exception | None = None

    def push(self, value: int) -> None:
        # The top-left block carries the class for FakeClassifier; the rest is a texture with
        # enough contrast to be judged, new at every push (so never a frozen picture).
        self.pushes += 1
        image = np.random.default_rng(self.pushes).integers(0, 256, (90, 160, 3), dtype=np.uint8)
        image[:8, :8] = value
        self.show(image)

    def latest(self) -> Frame | None:
        if self.fail is not None:
            raise self.fail
        return self.frame


class FakeClassifier:
    labels = DEFAULT_LABELS
    backend, backend_reason = "fake", "test double"

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, rgb448: np.ndarray) -> np.ndarray:
        assert rgb448.shape == (448, 448, 3)
        self.calls += 1
        value = int(rgb448[0, 0, 0])
        if value == BROKEN:
            raise RuntimeError("interpreter exploded")
        probs = np.full(len(self.labels), 0.01, np.float32)
        probs[value] = 0.92
        return probs / probs.sum()


@dataclass
class FakePublisher:
    states: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    started: bool = False
    stopped: bool = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def publish_state(self, camera: str, state: dict[str, Any]) -> None:
        self.states.append((camera, state))

    def publish_event(self, camera: str, event: dict[str, Any]) -> int:
        self.events.append((camera, event))
        return len(self.events)

    def event_types(self, camera: str) -> list[str]:
        return [e["type"] for c, e in self.events if c == camera]

    def last_state(self, camera: str) -> dict[str, Any]:
        return [s for c, s in self.states if c == camera][-1]


# The app's own logic (debounce, events, states) runs on the fake CNN: `detector: cnn`
# (the default `fusion` would also compare each frame with its learnt in-focus baseline and
# check the view for tampering: tested below and in test_fusion_detector.py / test_false_alarms.py;
# `combined` in test_combined.py).
STATE_KEYS = {"focus", "stream", "class", "probabilities", "updated", "analysis", "tamper"}
CNN_CONFIG: dict[str, Any] = {
    "defaults": {"detector": "cnn"},
    "cameras": {"a": {"url": "rtsp://h/a"}, "b": {"url": "rtsp://h/b"}},
}


class Rig:
    def __init__(self, config: AppConfig) -> None:
        self.clock = FakeClock()
        self.sources: dict[str, FakeSource] = {}
        self.classifier = FakeClassifier()
        self.publisher = FakePublisher()
        self.app = FocusGuard(
            config,
            classifier=self.classifier,
            publisher=self.publisher,
            grabber_factory=self._source,
            clock=self.clock,
            wall_clock=lambda: 1_700_000_000 + self.clock(),
        )

    def _source(self, camera: CameraConfig) -> FakeSource:
        self.sources[camera.name] = FakeSource(self.clock)
        return self.sources[camera.name]

    def step(self, **values: int | None) -> None:
        """Advance one second, push the given frames (None: no frame), tick every camera."""
        self.clock.advance(1.0)
        for name, value in values.items():
            if value is not None:
                self.sources[name].push(value)
        self.app.tick_all()

    def steps(self, count: int, **values: int | None) -> None:
        for _ in range(count):
            self.step(**values)


@pytest.fixture
def rig() -> Rig:
    return Rig(parse_config(CNN_CONFIG))


def test_focus_lost_then_restored(rig: Rig) -> None:
    rig.steps(8, a=SHARP)
    assert rig.publisher.last_state("a")["focus"] == "ok"
    rig.steps(10, a=BLURRY)
    rig.steps(8, a=SHARP)
    assert rig.publisher.event_types("a") == ["focus_lost", "focus_restored"]
    lost = next(e for c, e in rig.publisher.events if c == "a")
    assert (lost["camera"], lost["class"], lost["probabilities"]["b_3"]) == ("a", "b_3", pytest.approx(0.92, abs=0.01))
    state = rig.publisher.last_state("a")
    assert (state["focus"], state["stream"], state["class"]) == ("ok", "online", "sharp")
    assert set(state) == STATE_KEYS
    assert state["analysis"] == "ok" and state["tamper"] is None


def test_short_blur_never_alarms(rig: Rig) -> None:
    rig.steps(8, a=SHARP)
    rig.steps(3, a=BLURRY)
    rig.steps(10, a=SHARP)
    assert rig.publisher.event_types("a") == []


def test_no_new_frame_no_analysis(rig: Rig) -> None:
    rig.step(a=SHARP)
    calls = rig.classifier.calls
    rig.steps(3)  # the same frame stays newest
    assert rig.classifier.calls == calls


def test_stream_lost_and_restored(rig: Rig) -> None:
    rig.steps(8, a=SHARP)
    rig.steps(10)  # 10 s of silence: not yet more than stream_timeout_s
    assert rig.publisher.event_types("a") == []
    rig.step()
    assert rig.publisher.event_types("a") == ["stream_lost"]
    assert rig.publisher.last_state("a")["stream"] == "offline"
    assert rig.publisher.last_state("a")["focus"] == "ok"  # not a focus alarm
    rig.steps(20)
    assert rig.publisher.event_types("a") == ["stream_lost"]  # once
    rig.step(a=SHARP)
    assert rig.publisher.event_types("a") == ["stream_lost", "stream_restored"]
    assert rig.publisher.last_state("a")["stream"] == "online"
    stream_event = next(e for c, e in rig.publisher.events if c == "a")
    assert stream_event["class"] is None and stream_event["probabilities"] == {}


def test_dead_stream_resets_window_and_never_raises_focus_lost(rig: Rig) -> None:
    rig.steps(8, a=SHARP)
    rig.steps(5, a=BLURRY)  # one short of the alarm
    rig.steps(12)  # stream lost: the window is reset
    rig.step(a=BLURRY)
    assert rig.publisher.event_types("a") == ["stream_lost", "stream_restored"]
    rig.steps(4, a=BLURRY)
    assert "focus_lost" not in rig.publisher.event_types("a")
    rig.step(a=BLURRY)  # 6 fresh blurry analyses: now it is real
    assert rig.publisher.event_types("a")[-1] == "focus_lost"


def test_camera_that_never_connects_reports_stream_lost(rig: Rig) -> None:
    rig.steps(12, b=SHARP)
    assert rig.publisher.event_types("a") == ["stream_lost"]
    assert rig.publisher.event_types("b") == []


def test_cameras_are_isolated(rig: Rig) -> None:
    rig.sources["a"].fail = OSError("grabber broke")
    rig.steps(8, b=SHARP)
    rig.steps(6, b=BLURRY)
    assert rig.publisher.event_types("b") == ["focus_lost"]
    rig.sources["a"].fail = None
    rig.steps(3, a=BROKEN, b=BLURRY)  # a's classification fails every time
    rig.steps(8, b=SHARP)
    assert rig.publisher.event_types("b") == ["focus_lost", "focus_restored"]
    assert "focus_lost" not in rig.publisher.event_types("a")


def test_one_camera_blurry_other_sharp(rig: Rig) -> None:
    rig.steps(12, a=BLURRY, b=SHARP)
    assert rig.publisher.event_types("a") == ["focus_lost"]
    assert rig.publisher.event_types("b") == []
    assert rig.publisher.last_state("b")["focus"] == "ok"


def test_per_camera_sensitivity() -> None:
    config = parse_config(
        {"defaults": {"detector": "cnn"},
         "cameras": {"strict": {"url": "rtsp://h/a", "blurry_from": "b_0.5"}, "lax": {"url": "rtsp://h/b"}}}
    )
    rig = Rig(config)
    rig.steps(8, strict=1, lax=1)  # b_0.5 frames
    assert rig.publisher.event_types("strict") == ["focus_lost"]
    assert rig.publisher.event_types("lax") == []


def test_start_and_shutdown_wire_everything(rig: Rig) -> None:
    rig.app.start()
    rig.app.request_stop()
    rig.app.shutdown()
    assert rig.publisher.started and rig.publisher.stopped
    assert all(s.started and s.stopped for s in rig.sources.values())
    initial = next(s for c, s in rig.publisher.states if c == "a")
    assert (initial["focus"], initial["stream"], initial["class"]) == ("unknown", "offline", None)


def test_blurry_from_missing_from_model_labels_is_a_config_error() -> None:
    config = parse_config({"cameras": {"a": {"url": "rtsp://h/a", "blurry_from": "b_7"}}})

    class FewLabels(FakeClassifier):
        labels = ("sharp", "b_1", "b_3")

    from focusguard.common.errors import ConfigError

    with pytest.raises(ConfigError, match=r"cameras\.a\.blurry_from"):
        FocusGuard(
            config, classifier=FewLabels(), publisher=FakePublisher(), grabber_factory=lambda c: FakeSource(FakeClock())
        )


def scene(rng: np.random.Generator) -> np.ndarray:
    """A fixed, detailed 640x360 view (smooth random blobs at several scales), the class block at the top left."""
    import cv2

    image = np.zeros((360, 640, 3), np.float32)
    for cells in (8, 40, 160):
        small = rng.uniform(0, 255, (max(1, cells * 360 // 640), cells, 3)).astype(np.float32)
        image += cv2.resize(small, (640, 360), interpolation=cv2.INTER_CUBIC) / 3
    return np.clip(image, 0, 255).astype(np.uint8)


def test_default_detector_is_fusion_with_its_figures_in_the_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No `detector:` key: fusion. Its first frames are learning, then it judges against the learnt
    view; the state carries its figures (and `tamper`, null while the view is the camera's own)."""
    rig = Rig(parse_config({"state_dir": str(tmp_path / "state"), "cameras": {"a": {"url": "rtsp://h/a"}}}))
    monitor = rig.app.monitors["a"]
    assert monitor.camera.detector == "fusion" and monitor.detector.name == "fusion"
    view = scene(np.random.default_rng(3))
    noise = np.random.default_rng(4)
    bases = []
    for _ in range(10):  # the same view, fresh sensor noise per frame (never a frozen picture)
        image = np.clip(view + noise.normal(0, 1.0, view.shape), 0, 255).astype(np.uint8)
        image[:8, :8] = SHARP
        rig.clock.advance(1.0)
        rig.sources["a"].show(image)
        rig.app.tick_all()
        bases.append(rig.publisher.last_state("a")["basis"])
    assert bases[:5] == ["learning"] * 5 and set(bases[5:]) == {"fusion"}, bases
    state = rig.publisher.last_state("a")
    fusion_keys = {"p_defocus", "basis", "regime", "sharpness_ratio", "structure", "changed_tiles", "scene_change",
                   "cnn_age_s"}
    assert set(state) == STATE_KEYS | fusion_keys, state
    assert (state["focus"], state["regime"], state["tamper"], state["scene_change"]) == ("ok", "day", None, False)
    threshold = monitor.detector.model.boundary("day", "b_0.75").threshold
    assert state["structure"] > 0.9 and 0 <= state["p_defocus"] < threshold, state
    assert rig.publisher.event_types("a") == []
    assert (tmp_path / "state" / "baseline" / "a.fusion.json").is_file()
