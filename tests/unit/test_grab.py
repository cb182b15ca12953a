"""Grabber: keyframes-only policy, URL handling, a real file stream, reconnect backoff and redaction."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from focusguard.sources.grab import (
    BACKOFF_MAX_S,
    BACKOFF_START_S,
    RTSP_OPTIONS,
    StreamGrabber,
    _AutoKeyframes,
    open_target,
)
from tests.support.clips import moving_bar_clip


@pytest.mark.parametrize(
    ("interval", "keyframes", "expected"),
    [
        (1.0, [0.0, 1.0, 2.0, 3.0], [None, True, None, None]),  # GOP 1 s fits 1 s analyses
        (1.0, [0.0, 0.5, 1.0], [None, True, None]),
        (0.5, [0.0, 1.0, 2.0], [None, False, None]),  # GOP too long: full decoding for good
        (1.0, [0.0, 1.0, 2.0, 4.0, 5.0], [None, True, None, False, None]),  # GOP grew: fall back
        (1.0, [0.0, 1.0, 2.4], [None, True, None]),  # within tolerance: stay
        (1.0, [5.0, 5.0, 4.0, 5.0], [None, None, None, True]),  # repeated/backwards pts ignored
    ],
)
def test_auto_keyframes_policy(interval: float, keyframes: list[float], expected: list[bool | None]) -> None:
    auto = _AutoKeyframes(interval)
    assert [auto.keyframe(t) for t in keyframes] == expected


def test_open_target() -> None:
    assert open_target("rtsp://u:p@h/s") == ("rtsp://u:p@h/s", RTSP_OPTIONS, False)
    assert open_target("rtsps://h/s")[1]["rtsp_transport"] == "tcp"
    _target, options, is_file = open_target("http://h/mjpg")
    assert "rtsp_transport" not in options and not is_file
    assert open_target("file:///tmp/a%20b.mp4") == ("/tmp/a b.mp4", {}, True)
    assert open_target("/tmp/clip.mp4") == ("/tmp/clip.mp4", {}, True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.5 s of 160x120 H.264 at 10 fps with a keyframe every second."""
    return moving_bar_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=25, gop=10)


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_reads_a_file_at_native_speed_and_switches_to_keyframes(clip: Path) -> None:
    grabber = StreamGrabber("clip", f"file://{clip}", interval_s=1.0)
    grabber.start()
    try:
        assert _wait_for(lambda: grabber.latest() is not None, 5.0)
        frame = grabber.latest()
        assert frame is not None and frame.image_bgr.shape == (120, 160, 3) and frame.image_bgr.dtype == np.uint8
        assert grabber.connected and not grabber.keyframes_mode  # measuring
        assert _wait_for(lambda: grabber.keyframes_mode, 4.0)  # second keyframe at 1 s: GOP fits
        first = grabber.last_frame_monotonic
        assert _wait_for(lambda: grabber.last_frame_monotonic != first, 3.0)  # newer frames keep coming
    finally:
        grabber.stop()
    newest = grabber.latest()
    assert newest is grabber.latest()  # converted once, then cached


def test_keyframes_only_true_and_false(clip: Path) -> None:
    for setting in (True, False):
        grabber = StreamGrabber("clip", str(clip), interval_s=1.0, keyframes_only=setting)
        grabber.start()
        try:
            assert _wait_for(lambda g=grabber: g.latest() is not None, 5.0)  # type: ignore[misc]
            assert grabber.keyframes_mode is setting
        finally:
            grabber.stop()


def test_errors_reconnect_with_backoff_and_never_log_credentials(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[float] = []
    url = "rtsp://admin:hunter22@127.0.0.1:1/stream"

    def opener(target: str, **kwargs: Any) -> Any:
        attempts.append(time.monotonic())
        assert kwargs["options"]["rtsp_transport"] == "tcp" and kwargs["timeout"] == (5.0, 3.0)
        raise ConnectionRefusedError(111, "Connection refused", target)

    grabber = StreamGrabber("cam", url, opener=opener)
    with caplog.at_level(logging.DEBUG, logger="focusguard.sources.grab"):
        grabber.start()
        _wait_for(lambda: len(attempts) >= 3, 5.0)
        grabber.stop()
    assert len(attempts) >= 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] == pytest.approx(BACKOFF_START_S, abs=0.3)
    assert gaps[1] == pytest.approx(2 * BACKOFF_START_S, abs=0.3)  # doubling
    assert BACKOFF_MAX_S == 10.0
    assert "hunter22" not in caplog.text
    assert "rtsp://admin:***@127.0.0.1:1/stream" in caplog.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # the same failure again is not repeated at WARNING
    assert grabber.latest() is None and grabber.last_frame_monotonic is None
    assert grabber.reconnects >= len(attempts) - 1  # counted for <p>/stats and Prometheus


def test_stop_is_prompt_during_backoff() -> None:
    def opener(target: str, **kwargs: Any) -> Any:
        raise OSError("down")

    grabber = StreamGrabber("cam", "rtsp://h/s", opener=opener)
    grabber.start()
    time.sleep(0.1)
    started = time.monotonic()
    grabber.stop()
    assert time.monotonic() - started < 1.0
    assert not any(t.name == "grab-cam" for t in threading.enumerate())
