"""Keyframes only with analyses far apart: only the keyframes the next analysis can use are decoded."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from focusguard.sources.grab import DEMAND_LEAD_GOPS, StreamGrabber, _DecodeDemand
from tests.support.clips import moving_bar_clip


def test_decodes_everything_until_cadence_and_gap_are_known() -> None:
    demand = _DecodeDemand(interval_s=10.0)
    assert demand.keyframe(0.0, now=100.0)  # no gap yet
    demand.taken_at = 100.0
    assert demand.keyframe(None, now=100.5)  # still no gap (pts unknown)
    assert demand.keyframe(1.0, now=101.0) is False  # gap 1 s: next analysis at 110, decode from 108.5
    assert demand.gap == 1.0


def test_skips_until_shortly_before_the_next_analysis() -> None:
    demand = _DecodeDemand(interval_s=10.0)
    demand.keyframe(0.0, 0.0)
    demand.taken_at = 0.2  # the app took a frame
    decoded = [t for t in np.arange(1.0, 10.0, 1.0) if demand.keyframe(float(t), float(t))]
    assert decoded == [9.0]  # 10.2 - 1.5: only the keyframes at 9 (and later) are worth decoding
    assert 10.2 - decoded[-1] <= DEMAND_LEAD_GOPS * 1.0
    # The analyses stopped (app stalled): every keyframe again.
    assert demand.keyframe(30.0, 30.0) and demand.keyframe(31.0, 31.0)


def test_short_intervals_decode_every_keyframe() -> None:
    demand = _DecodeDemand(interval_s=1.0)
    demand.keyframe(0.0, 0.0)
    demand.taken_at = 0.0
    assert all(demand.keyframe(t, t) for t in (1.0, 2.0, 3.0))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of 160x120 H.264 at 10 fps, a keyframe every 0.5 s."""
    return moving_bar_clip(tmp_path_factory.mktemp("clip") / "gop05.mp4", frames=60, gop=5)


def test_grabber_decodes_only_what_the_analyses_use(clip: Path) -> None:
    grabber = StreamGrabber("clip", f"file://{clip}", interval_s=2.0, keyframes_only=True)
    decoded: list[float] = []
    store = grabber._store
    grabber._store = lambda frame: (decoded.append(time.monotonic()), store(frame))  # type: ignore[method-assign]
    grabber.start()
    try:
        deadline = time.monotonic() + 5
        while grabber.latest() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ages = []
        for _ in range(2):  # two analyses, 2 s apart, as the app's loop does
            time.sleep(2.0)
            frame = grabber.latest()
            assert frame is not None
            ages.append(time.monotonic() - frame.monotonic)
    finally:
        grabber.stop()
    assert grabber.skipped_keyframes >= 3  # 8 keyframes in 4 s, at most ~2 per analysis decoded
    assert max(ages) <= DEMAND_LEAD_GOPS * 0.5 + 0.3  # frames stay fresh
    assert grabber.last_frame_monotonic is not None and time.monotonic() - grabber.last_frame_monotonic < 1.0


def test_polling_latest_often_does_not_freeze_the_frame(clip: Path) -> None:
    """Only a *new* frame handed out marks an analysis: a caller polling every 0.1 s still gets fresh frames."""
    grabber = StreamGrabber("clip", f"file://{clip}", interval_s=2.0, keyframes_only=True)
    grabber.start()
    try:
        seen = set()
        end = time.monotonic() + 4.5
        while time.monotonic() < end:
            frame = grabber.latest()
            if frame is not None:
                seen.add(frame.monotonic)
            time.sleep(0.1)
    finally:
        grabber.stop()
    assert len(seen) >= 2  # refreshed about once per interval_s, never stuck on the first frame
