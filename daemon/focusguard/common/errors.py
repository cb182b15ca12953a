"""Exception hierarchy shared by every focusguard module.

The CLI turns any `FocusguardError` into one stderr line and exit status 2, so each
message must say on its own which file, which key and what is wrong.
"""

from __future__ import annotations

from pathlib import Path


class FocusguardError(Exception):
    """Base class for errors caused by bad input (config, model, image), not by bugs."""


class ConfigError(FocusguardError):
    """A configuration problem: `str()` is ``"<file>: <key>: <problem>"``."""

    def __init__(self, file: str | Path, key: str, problem: str) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.file}: {key}: {problem}")


class ModelError(FocusguardError):
    """The model file is missing or unusable: `str()` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ImageError(FocusguardError):
    """An image given to ``focusguard check`` cannot be read: ``"<path>: <problem>"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
