"""Frame screening: frames with too little contrast and frozen pictures get no verdict."""

from __future__ import annotations

import numpy as np
import pytest

from focusguard.analysis import quality
from focusguard.sources.grab import Frame
from tests.unit.test_app import BLURRY, SHARP, Rig, rig  # noqa: F401 (rig is a fixture)


def texture(seed: int, value: int) -> np.ndarray:
    """A frame the fake classifier reads as class `value` (top-left block), with contrast."""
    image = np.random.default_rng(seed).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    image[:8, :8] = value
    return image


def show(rig: Rig, camera: str, image: np.ndarray) -> None:
    """Advance one second, make `image` the camera's newest frame (a new Frame object), tick."""
    rig.clock.advance(1.0)
    rig.sources[camera].frame = Frame(image_bgr=image.copy(), monotonic=rig.clock(), wall=1.7e9 + rig.clock())
    rig.app.tick_all()


@pytest.mark.parametrize(
    ("image", "unsuitable"),
    [
        (np.zeros((1080, 1920, 3), np.uint8), True),  # all black
        (np.full((1080, 1920, 3), 128, np.uint8), True),  # uniform grey "no signal"
        (np.full((1080, 1920, 3), 255, np.uint8), True),  # overexposed
        (np.clip(np.random.default_rng(1).normal(20, 2, (1080, 1920, 3)), 0, 255).astype(np.uint8), True),  # cap+noise
        (np.tile(np.linspace(0, 255, 1920, dtype=np.uint8)[None, :, None], (1080, 1, 3)), False),  # smooth gradient
        (texture(3, 0), False),
    ],
    ids=["black", "grey", "white", "dark-noise", "gradient", "texture"],
)
def test_contrast_threshold(image: np.ndarray, unsuitable: bool) -> None:
    view = quality.screen_view(image)
    assert (quality.contrast(view) < quality.MIN_CONTRAST) is unsuitable


def test_a_heavily_defocused_scene_is_still_suitable() -> None:
    import cv2

    # A smooth gradient with structure, blurred as hard as the thesis' worst class and more.
    base = texture(5, 0)
    big = cv2.resize(base, (1920, 1080), interpolation=cv2.INTER_NEAREST)
    blurred = cv2.GaussianBlur(big, (0, 0), 32)
    assert quality.contrast(quality.screen_view(blurred)) >= quality.MIN_CONTRAST


def test_fingerprint_equal_only_for_identical_pictures() -> None:
    a = texture(1, 0)
    b = a.copy()
    b[48, 100, 1] ^= 1  # one LSB of noise (on the stride grid: real noise is everywhere) differs
    view = quality.screen_view
    assert quality.fingerprint(view(a)) == quality.fingerprint(view(a.copy()))
    assert quality.fingerprint(view(a)) != quality.fingerprint(view(b))
    assert quality.fingerprint(view(a[:80])) != quality.fingerprint(view(a))


def test_black_frames_get_no_verdict_and_never_raise_focus_lost(rig: Rig) -> None:
    for n in range(8):
        show(rig, "a", texture(n, SHARP))
    assert rig.publisher.last_state("a")["focus"] == "ok"
    calls = rig.classifier.calls
    black = np.zeros((90, 160, 3), np.uint8)
    black[:8, :8] = BLURRY  # what a classifier would say about it: blurry (here: forced)
    for n in range(20):
        show(rig, "a", black)
        # a passing shadow (shorter than the debounce window) keeps the focus; a lasting one makes it unknown
        assert rig.publisher.last_state("a")["focus"] == ("ok" if n < 7 else "unknown"), n
    assert rig.classifier.calls == calls  # never classified
    assert rig.publisher.event_types("a") == []
    state = rig.publisher.last_state("a")
    assert (state["focus"], state["stream"], state["analysis"]) == ("unknown", "online", "unsuitable")
    assert state["analysis_reason"] == "too little contrast"
    assert state["class"] is None and state["probabilities"] == {}
    show(rig, "a", texture(100, SHARP))
    assert rig.publisher.last_state("a")["analysis"] == "ok"
    assert rig.classifier.calls == calls + 1
    for n in range(6):  # judgeable again: unknown -> ok is silent, as at start-up
        show(rig, "a", texture(101 + n, SHARP))
    assert rig.publisher.last_state("a")["focus"] == "ok"
    assert rig.publisher.event_types("a") == []


def test_an_alarm_is_not_withdrawn_by_an_unjudgeable_view(rig: Rig) -> None:
    for n in range(8):
        show(rig, "a", texture(n, BLURRY))
    assert rig.publisher.event_types("a") == ["focus_lost"]
    wall = np.tile(np.linspace(100, 140, 160, dtype=np.uint8)[None, :, None], (90, 1, 3))
    for _ in range(20):
        show(rig, "a", wall)
    state = rig.publisher.last_state("a")
    assert (state["focus"], state["analysis"], state["analysis_reason"]) == ("lost", "unsuitable", "too little detail")
    assert rig.publisher.event_types("a") == ["focus_lost"]  # no focus_restored without evidence


def test_frozen_picture_is_not_new_evidence(rig: Rig) -> None:
    for n in range(8):
        show(rig, "a", texture(n, SHARP))
    frozen = texture(50, BLURRY)
    calls = rig.classifier.calls
    published = len([c for c, _ in rig.publisher.states if c == "a"])
    for _ in range(5):  # a new Frame every second, always the same picture
        show(rig, "a", frozen)
    assert rig.classifier.calls == calls + 1  # the first one is a real, new picture; repeats are no evidence
    assert rig.publisher.last_state("a")["analysis"] == "ok"  # not yet called frozen: a static scene, maybe
    for _ in range(15):  # unchanged for more than stream_timeout_s (10 s): frozen
        show(rig, "a", frozen)
    assert rig.classifier.calls == calls + 1
    assert rig.publisher.event_types("a") == []  # one blurry vote, never 6
    state = rig.publisher.last_state("a")
    assert (state["focus"], state["analysis"]) == ("ok", "frozen")
    assert len([c for c, _ in rig.publisher.states if c == "a"]) == published + 2  # the analysis, then "frozen" once (not every tick)
    # Moving again: real evidence counts again.
    for n in range(6):
        show(rig, "a", texture(200 + n, BLURRY))
    assert rig.publisher.event_types("a") == ["focus_lost"]
    assert rig.publisher.last_state("a")["analysis"] == "ok"


def test_other_camera_unaffected_by_a_black_one(rig: Rig) -> None:
    black = np.zeros((90, 160, 3), np.uint8)
    for n in range(8):
        show(rig, "a", black)
        show(rig, "b", texture(n, BLURRY))
    assert rig.publisher.event_types("b") == ["focus_lost"]
    assert rig.publisher.event_types("a") == []
    assert rig.publisher.last_state("a")["analysis"] == "unsuitable"
