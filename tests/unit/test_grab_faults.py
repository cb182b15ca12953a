"""The grabber never hands out a frame smeared by damaged or truncated slice data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from focusguard.sources import grab
from focusguard.sources.grab import StreamGrabber
from tests.support.faults import damage_clip, encode

SIZE = (320, 176)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[int, np.ndarray]]:
    """A 2 s 25 fps clip (GOP 10) of a moving texture, a damaged copy, and the clean frames by pts."""
    d = tmp_path_factory.mktemp("grabfaults")
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, (SIZE[1] + 10, SIZE[0] + 60, 3), dtype=np.uint8)
    frames = [np.ascontiguousarray(texture[5 : 5 + SIZE[1], i : i + SIZE[0]]) for i in range(50)]
    clean = encode(d / "clean.mp4", frames, SIZE, fps=25, gop=10)
    damaged = d / "damaged.mp4"
    stats = damage_clip(clean, damaged, every=4)
    assert stats["corrupted"] + stats["truncated"] >= 8
    with av.open(str(clean)) as c:
        reference = {int(f.pts): f.to_ndarray(format="bgr24") for f in c.decode(video=0)}
    return clean, damaged, reference


class Recording(StreamGrabber):
    """Records every frame the grabber would hand to the analysis."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored: list[tuple[int, np.ndarray]] = []
        self.sessions = 0

    def _session(self) -> bool:
        self.sessions += 1
        return super()._session()

    def _store(self, frame: Any) -> None:
        self.stored.append((int(frame.pts), frame.to_ndarray(format="bgr24")))
        super()._store(frame)


def read_once(path: Path) -> Recording:
    grabber = Recording("cam", str(path), interval_s=1.0, keyframes_only=False)
    grabber.start()
    deadline = time.monotonic() + 15
    while grabber.sessions < 2 and time.monotonic() < deadline:  # EOF ends the first session
        time.sleep(0.05)
    grabber.stop()
    return grabber


def test_damaged_slices_never_reach_the_analysis(clips: tuple[Path, Path, dict[int, np.ndarray]]) -> None:
    clean, damaged, reference = clips
    grabber = read_once(damaged)
    first = [(pts, img) for pts, img in grabber.stored][: len(reference)]
    assert first, "no frame at all from the damaged clip"
    for pts, image in first:
        mad = float(np.abs(image.astype(np.int16) - reference[pts].astype(np.int16)).mean())
        assert mad < 1.0, f"frame {pts} differs from the clean one by {mad:.1f} on average (smeared)"
    assert len({pts for pts, _ in first}) < len(reference)  # the damaged stretches were skipped
    assert len(read_once(clean).stored) >= len(reference)  # the clean clip loses nothing


def test_slice_threading_would_let_smeared_frames_through(
    clips: tuple[Path, Path, dict[int, np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why grab.py decodes with one thread: with slice threads (PyAV's default) nothing is flagged."""
    _clean, damaged, reference = clips
    monkeypatch.setattr(grab, "DECODE_THREAD_TYPE", "SLICE")
    monkeypatch.setattr(grab, "DECODE_THREADS", 2)
    stored = read_once(damaged).stored[: len(reference)]
    worst = max(float(np.abs(img.astype(np.int16) - reference[pts].astype(np.int16)).mean()) for pts, img in stored)
    assert worst > 3.0
