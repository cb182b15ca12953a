"""Shared fixtures for the unit tests: fake clock, config files, tiny TFLite models."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from focusguard.sources.grab import Frame
from tests.unit.tflite_builder import write_model


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class FakeFrameSource:
    """A grabber double: holds the newest frame; `show(image)` makes it a new Frame at the fake
    clock's time (a new object each time, as a real grabber delivers)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.frame: Frame | None = None
        self.started = self.stopped = False
        self.pushes = 0

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def show(self, image: np.ndarray) -> None:
        self.frame = Frame(image_bgr=image, monotonic=self.clock(), wall=1_700_000_000 + self.clock())

    def latest(self) -> Frame | None:
        return self.frame

    @property
    def last_frame_monotonic(self) -> float | None:
        return self.frame.monotonic if self.frame else None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 1x448x448x3 → 1x9 uint8 model whose outputs are the first 9 input bytes."""
    return write_model(tmp_path_factory.mktemp("model") / "tiny.tflite")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # systemd variables of the machine running the tests must not leak into path resolution.
    for name in ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY", "JOURNAL_STREAM"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write dedented YAML text to a fresh file and return its path."""
    counter = iter(range(1_000_000))

    def write(text: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"config{next(counter)}.yaml")
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
