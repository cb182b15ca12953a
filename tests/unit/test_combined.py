"""`detector: combined`: CNN AND a sharpness drop against the camera's per-regime baseline."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from focusguard.analysis.baseline import LEARN_FRAMES, BaselineStore, baseline_path
from focusguard.analysis.combined import (
    NIGHT_DROP,
    BaselineCommands,
    CombinedDetector,
    combined_verdict,
)
from focusguard.analysis.detectors import Verdict
from focusguard.settings.config import parse_config
from focusguard.sources.grab import Frame
from tests.unit.test_app import BLURRY, SHARP, Rig
from tests.unit.test_baseline import scene


@pytest.mark.parametrize(
    ("cnn_blurry", "sharpness", "baseline", "blurry", "basis"),
    [
        (True, 0.3, 1.0, True, "both"),  # both agree: blurry
        (True, 0.59, 1.0, True, "both"),
        (True, 0.6, 1.0, False, "sharpness_ok"),  # at the fraction: not dropped
        (
            True,
            0.9,
            1.0,
            False,
            "sharpness_ok",
        ),  # the CNN alone (dark, IR) is not enough
        (True, 1.4, 1.0, False, "sharpness_ok"),
        (
            False,
            0.1,
            1.0,
            False,
            "cnn_sharp",
        ),  # a sharpness drop alone (scene change) is not enough
        (False, 1.0, 1.0, False, "cnn_sharp"),
        (
            True,
            0.3,
            None,
            True,
            "cnn_only",
        ),  # no baseline for the regime: the CNN decides
        (False, 0.3, None, False, "cnn_only"),
        (True, None, 1.0, True, "cnn_only"),  # no measure (too little detail)
    ],
)
def test_combined_verdict_table(cnn_blurry, sharpness, baseline, blurry, basis) -> None:
    assert combined_verdict(cnn_blurry, sharpness, baseline, 0.6) == (blurry, basis)


@pytest.mark.parametrize("regime", ["low_light", "ir"])
@pytest.mark.parametrize(
    ("cnn_blurry", "sharpness", "baseline", "blurry", "basis"),
    [
        (False, 0.3, 1.0, True, "sharpness_night"),  # the CNN is blind at night: the drop decides
        (False, 0.69, 1.0, True, "sharpness_night"),
        (True, 0.7, 1.0, False, "sharpness_night"),  # at the fraction: not dropped, CNN or not
        (True, 0.9, 1.0, False, "sharpness_night"),  # noise, a little scene change
        (False, 1.2, 1.0, False, "sharpness_night"),
        (True, 0.3, None, True, "cnn_only"),  # no baseline for the regime: the CNN decides
        (False, None, 1.0, False, "cnn_only"),  # no measure (too little detail)
    ],
)
def test_combined_verdict_night_table(
    regime, cnn_blurry, sharpness, baseline, blurry, basis
) -> None:
    assert NIGHT_DROP == 0.7
    verdict = combined_verdict(cnn_blurry, sharpness, baseline, 0.6, regime, 0.7)
    assert verdict == (blurry, basis)


def test_combined_verdict_day_ignores_night_drop() -> None:
    assert combined_verdict(False, 0.1, 1.0, 0.6, "day", 0.7) == (False, "cnn_sharp")
    assert combined_verdict(True, 0.65, 1.0, 0.6, "day", 0.7) == (False, "sharpness_ok")
    assert combined_verdict(True, 0.5, 1.0, 0.6, "day", 0.7) == (True, "both")


class FakeCnn:
    name = "cnn"

    def __init__(self) -> None:
        self.blurry = False

    def verdict(self, frame_bgr: np.ndarray) -> Verdict:
        cls = "b_2" if self.blurry else "sharp"
        return Verdict(
            self.blurry,
            cls,
            {"sharp": 0.0 if self.blurry else 1.0, "b_2": 1.0 if self.blurry else 0.0},
            0.5,
        )


def frame(seed: int, blur: float = 0.0, ir: bool = False) -> np.ndarray:
    image = scene()
    if blur:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    noise = np.random.default_rng(seed).normal(0, 1.5, image.shape)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    if ir:  # IR night mode: grayscale, darker, noisy
        g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) * 0.45 + 8
        g += np.random.default_rng(seed + 1).normal(0, 4, g.shape)
        image = cv2.cvtColor(np.clip(g, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return image


def test_detector_learns_each_regime_first_and_falls_back_to_cnn_while_lost(
    tmp_path: Path,
) -> None:
    cnn, learning = FakeCnn(), [True]
    store = BaselineStore("gate", tmp_path / "gate.json")
    detector = CombinedDetector(cnn, store, 0.6, lambda: learning[0])
    cnn.blurry = False
    for i in range(LEARN_FRAMES):
        assert detector.verdict(frame(i)).blurry is False
        assert (
            detector.figures["basis"] == "learning"
            and detector.figures["regime"] == "day"
        )
    assert store.sharpness("day") is not None
    cnn.blurry = True  # from now on the CNN says blurry: the sharpness must confirm it
    assert (
        detector.verdict(frame(10)).blurry is False
    )  # in focus: the sharpness did not drop
    assert detector.figures["basis"] == "sharpness_ok"
    assert detector.verdict(frame(11, blur=3.0)).blurry is True
    assert detector.figures["basis"] == "both"
    assert detector.figures["sharpness"] < 0.6 * detector.figures["baseline"]
    # A new regime while lost (no learning): the CNN alone decides.
    learning[0] = False
    assert detector.verdict(frame(12, ir=True)).blurry is True
    assert detector.figures == {
        **detector.figures,
        "regime": "ir",
        "basis": "cnn_only",
        "baseline": None,
    }
    # Reset (MQTT command, focus_restored): everything is learnt again.
    learning[0] = True
    cnn.blurry = False
    detector.request_reset("test")
    assert (
        detector.verdict(frame(13)).blurry is False
        and detector.figures["basis"] == "learning"
    )
    assert (
        json.loads((tmp_path / "gate.json").read_text())["regimes"]["day"]["sharpness"]
        is None
    )


def test_a_camera_starting_out_of_focus_by_day_is_reported_not_learnt(tmp_path: Path) -> None:
    cnn = FakeCnn()
    store = BaselineStore("gate", tmp_path / "gate.json")
    detector = CombinedDetector(cnn, store, 0.6, lambda: True)
    cnn.blurry = True  # defocused from the start: the CNN says so
    for i in range(LEARN_FRAMES + 2):
        assert detector.verdict(frame(i, blur=3.0)).blurry is True
        assert detector.figures["basis"] == "cnn_only"
    assert store.sharpness("day") is None  # a blurry picture never becomes the day normal
    for i in range(LEARN_FRAMES):  # at night the CNN is not trusted: its verdict does not block learning
        assert detector.verdict(frame(20 + i, ir=True)).blurry is False
        assert detector.figures["basis"] == "learning"
    assert store.sharpness("ir") is not None


def test_night_regime_sharpness_drop_alone_votes_blurry_day_unchanged(
    tmp_path: Path,
) -> None:
    cnn = FakeCnn()  # the shipped CNN calls night frames sharp, defocused or not
    store = BaselineStore("gate", tmp_path / "gate.json")
    detector = CombinedDetector(cnn, store, 0.6, lambda: True, night_drop=0.7)
    for i in range(LEARN_FRAMES):  # day, then IR: each regime learns first
        assert detector.verdict(frame(i)).blurry is False
    for i in range(LEARN_FRAMES):
        assert detector.verdict(frame(20 + i, ir=True)).blurry is False
        assert detector.figures["basis"] == "learning"
        assert detector.figures["regime"] == "ir"
    assert store.sharpness("ir") is not None
    # In focus at night: new sensor noise every frame is not a drop.
    for i in range(6):
        assert detector.verdict(frame(40 + i, ir=True)).blurry is False
        figures = detector.figures
        assert (figures["regime"], figures["basis"]) == ("ir", "sharpness_night")
        assert figures["sharpness"] >= 0.7 * figures["baseline"]
    # Defocused at night: blurry although the CNN says sharp.
    assert detector.verdict(frame(50, blur=4.0, ir=True)).blurry is True
    figures = detector.figures
    assert (figures["regime"], figures["basis"]) == ("ir", "sharpness_night")
    assert figures["sharpness"] < 0.7 * figures["baseline"]
    ir_baseline = store.sharpness("ir")
    assert detector.verdict(frame(51, blur=4.0, ir=True)).blurry is True
    assert store.sharpness("ir") == ir_baseline  # a dropped frame is not learnt
    # Day is unchanged: a sharpness drop the CNN does not confirm is not blurry.
    assert detector.verdict(frame(60, blur=3.0)).blurry is False
    assert (detector.figures["regime"], detector.figures["basis"]) == (
        "day",
        "cnn_sharp",
    )


def test_night_regime_without_baseline_learns_first(tmp_path: Path) -> None:
    cnn, learning = FakeCnn(), [True]
    store = BaselineStore("gate", tmp_path / "gate.json")
    detector = CombinedDetector(cnn, store, 0.6, lambda: learning[0])
    for i in range(LEARN_FRAMES):
        assert detector.verdict(frame(i)).blurry is False
    # The first IR frames (defocused or not) define the IR normal: learning, never blurry.
    assert detector.verdict(frame(10, blur=4.0, ir=True)).blurry is False
    assert (detector.figures["regime"], detector.figures["basis"]) == ("ir", "learning")
    assert store.sharpness("ir") is None
    # While lost (no learning) a regime without a baseline: the CNN alone.
    learning[0] = False
    store.reset("ir")
    assert detector.verdict(frame(11, blur=4.0, ir=True)).blurry is False
    assert detector.figures["basis"] == "cnn_only"


# --------------------------------------------------------------------------- in the app


def combined_rig(tmp_path: Path, detector: str = "combined") -> Rig:
    return Rig(
        parse_config(
            {
                "state_dir": str(tmp_path / "state"),
                "cameras": {"a": {"url": "rtsp://h/a", "detector": detector}},
            }
        )
    )


def show(rig: Rig, image: np.ndarray, cls: int) -> None:
    """One second later the camera shows `image`, which the fake classifier reads as class `cls`."""
    image = image.copy()
    image[:8, :8] = cls
    rig.clock.advance(1.0)
    rig.sources["a"].frame = Frame(
        image_bgr=image, monotonic=rig.clock(), wall=1.7e9 + rig.clock()
    )
    rig.app.tick_all()


def day_then_ir(rig: Rig, ir_frames: int = 14) -> None:
    for i in range(8):
        show(rig, frame(i), SHARP)
    assert rig.publisher.last_state("a")["focus"] == "ok"
    for i in range(ir_frames):  # lights off, IR on: the CNN calls every frame blurry
        show(rig, frame(100 + i, ir=True), BLURRY)


def test_regime_change_alone_never_raises_focus_lost(tmp_path: Path) -> None:
    rig = combined_rig(tmp_path)
    day_then_ir(rig)
    assert rig.publisher.event_types("a") == []
    state = rig.publisher.last_state("a")
    assert (
        state["focus"] == "ok" and state["regime"] == "ir" and state["class"] == "b_3"
    )
    assert state["sharpness"] >= 0.6 * state["baseline"]
    saved = json.loads(baseline_path(tmp_path / "state", "a").read_text())["regimes"]
    assert saved["day"]["sharpness"] and saved["ir"]["sharpness"]
    # The CNN alone raises focus_lost on the same frames.
    cnn = combined_rig(tmp_path / "cnn", detector="cnn")
    day_then_ir(cnn)
    assert cnn.publisher.event_types("a") == ["focus_lost"]


def test_defocus_at_night_raises_focus_lost_with_figures_then_relearns(
    tmp_path: Path,
) -> None:
    rig = combined_rig(tmp_path)
    day_then_ir(rig, ir_frames=8)
    for i in range(8):
        show(rig, frame(200 + i, blur=4.0, ir=True), BLURRY)
    assert rig.publisher.event_types("a") == ["focus_lost"]
    lost = rig.publisher.events[0][1]
    assert lost["regime"] == "ir" and lost["sharpness"] < 0.6 * lost["baseline"]
    assert lost["class"] == "b_3"
    state = rig.publisher.last_state("a")
    assert state["focus"] == "lost" and {"sharpness", "baseline"} <= set(state)
    for i in range(8):
        show(rig, frame(300 + i, ir=True), SHARP)
    assert rig.publisher.event_types("a") == ["focus_lost", "focus_restored"]
    show(
        rig, frame(400, ir=True), SHARP
    )  # focus_restored: the baseline is learnt again
    assert rig.publisher.last_state("a")["basis"] == "learning"


def test_mqtt_baseline_reset_command(tmp_path: Path) -> None:
    rig = combined_rig(tmp_path)
    for i in range(8):
        show(rig, frame(i), SHARP)
    assert rig.publisher.last_state("a")["baseline"] is not None
    commands = BaselineCommands(rig.app.monitors, rig.publisher, "focusguard")
    commands.on_command("focusguard/a/baseline/reset", b"")
    commands.on_command(
        "focusguard/nope/baseline/reset", b""
    )  # unknown camera: logged, ignored
    show(rig, frame(50), SHARP)
    state = rig.publisher.last_state("a")
    assert state["basis"] == "learning" and state["baseline"] is None


def test_defocus_at_night_with_the_cnn_saying_sharp_raises_focus_lost(
    tmp_path: Path,
) -> None:
    rig = combined_rig(tmp_path)
    for i in range(8):
        show(rig, frame(i), SHARP)
    for i in range(10):  # IR night, in focus: learnt, then judged in focus
        show(rig, frame(100 + i, ir=True), SHARP)
    assert rig.publisher.last_state("a")["basis"] == "sharpness_night"
    for i in range(8):  # defocused: the (night-blind) CNN still says sharp
        show(rig, frame(200 + i, blur=4.0, ir=True), SHARP)
    assert rig.publisher.event_types("a") == ["focus_lost"]
    lost = rig.publisher.events[0][1]
    assert (lost["regime"], lost["basis"], lost["class"]) == (
        "ir",
        "sharpness_night",
        "sharp",
    )
    assert lost["sharpness"] < 0.7 * lost["baseline"]


def test_too_little_detail_is_unsuitable_with_reason(tmp_path: Path) -> None:
    rig = combined_rig(tmp_path)
    for i in range(8):
        show(rig, frame(i), SHARP)
    wall = np.tile(
        np.linspace(100, 140, 640, dtype=np.uint8)[None, :, None], (360, 1, 3)
    )
    show(rig, wall, BLURRY)
    state = rig.publisher.last_state("a")
    assert (state["focus"], state["analysis"], state["analysis_reason"]) == (
        "ok",
        "unsuitable",
        "too little detail",
    )
    assert state["class"] is None
    show(rig, frame(60), SHARP)
    state = rig.publisher.last_state("a")
    assert state["analysis"] == "ok" and "analysis_reason" not in state


def test_config_combined_detector_and_drop(write_config) -> None:
    from focusguard.common.errors import ConfigError
    from focusguard.settings.config import load_config

    config = load_config(
        write_config(
            'defaults: {combined_drop: 0.5}\ncameras: {a: {url: "rtsp://h/a", detector: combined}}\n'
        )
    )
    assert (config.cameras[0].detector, config.cameras[0].combined_drop) == (
        "combined",
        0.5,
    )
    path = write_config(
        'cameras: {a: {url: "rtsp://h/a", detector: combined, combined_drop: 1.5}}\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: cameras.a.combined_drop: ")


def test_config_night_drop(write_config) -> None:
    from focusguard.common.errors import ConfigError
    from focusguard.settings.config import load_config

    config = load_config(
        write_config(
            "defaults: {night_drop: 0.5}\n"
            "cameras:\n"
            "  a: {url: rtsp://h/a, detector: combined}\n"
            "  b: {url: rtsp://h/b, detector: combined, night_drop: 0.8}\n"
            "  c: {url: rtsp://h/c}\n"
        )
    )
    assert [c.night_drop for c in config.cameras] == [0.5, 0.8, 0.5]
    default = load_config(write_config("cameras: {a: {url: rtsp://h/a}}\n"))
    assert default.cameras[0].night_drop == NIGHT_DROP == 0.7
    for bad, problem in [
        ("1.5", "must be between 0.05 and 0.95, got 1.5"),
        ("0", "must be between 0.05 and 0.95, got 0"),
        ("high", "expected a number, got string 'high'"),
        ("true", "expected a number, got boolean True"),
    ]:
        path = write_config(
            f"cameras: {{a: {{url: rtsp://h/a, detector: combined, night_drop: {bad}}}}}\n"
        )
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert str(err.value) == f"{path}: cameras.a.night_drop: {problem}"
    path = write_config("defaults: {night_drop: -1}\ncameras: {a: {url: rtsp://h/a}}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: defaults.night_drop: ")
