"""Shared fixtures for the unit tests: fake clock, config files, tiny TFLite models."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

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
