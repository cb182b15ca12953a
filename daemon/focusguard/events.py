"""JSON payloads of the MQTT contract: events (`<p>/<cam>/events`) and state (`<p>/<cam>/state`).

Owns the exact shapes and formats: ISO-8601 UTC times with a `Z` suffix and
millisecond precision, probabilities keyed by label and rounded to 4 decimals, a
uuid4 `id` per event so consumers can drop the duplicates QoS 1 allows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

EventType = Literal["focus_lost", "focus_restored", "stream_lost", "stream_restored"]
EVENT_TYPES: tuple[str, ...] = ("focus_lost", "focus_restored", "stream_lost", "stream_restored")

Probabilities = Mapping[str, float]


def iso_utc(wall_time: float) -> str:
    """`time.time()` value → ``2024-05-01T12:00:00.123Z``."""
    stamp = datetime.fromtimestamp(wall_time, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def probabilities_dict(labels: Sequence[str], probs: npt.NDArray[np.floating]) -> dict[str, float]:
    """Label → probability, rounded for compact, stable JSON."""
    return {label: round(float(p), 4) for label, p in zip(labels, probs, strict=True)}


def make_event(
    type: EventType,
    camera: str,
    cls: str | None,
    probs: Probabilities | None,
    wall_time: float,
) -> dict[str, Any]:
    """One event: ``{"id", "type", "camera", "time", "class", "probabilities"}``."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return {
        "id": str(uuid.uuid4()),
        "type": type,
        "camera": camera,
        "time": iso_utc(wall_time),
        "class": cls,
        "probabilities": dict(probs or {}),
    }


def make_state(
    focus: str,
    stream: str,
    cls: str | None,
    probs: Probabilities | None,
    wall_time: float,
) -> dict[str, Any]:
    """Retained camera state: ``{"focus", "stream", "class", "probabilities", "updated"}``."""
    if focus not in ("ok", "lost", "unknown"):
        raise ValueError(f"unknown focus state {focus!r}")
    if stream not in ("online", "offline"):
        raise ValueError(f"unknown stream state {stream!r}")
    return {
        "focus": focus,
        "stream": stream,
        "class": cls,
        "probabilities": dict(probs or {}),
        "updated": iso_utc(wall_time),
    }
