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

EventType = Literal[
    "focus_lost", "focus_restored", "stream_lost", "stream_restored",
    "refocus_requested", "refocus_done", "refocus_failed", "tamper_detected", "tamper_cleared",
]  # fmt: skip
EVENT_TYPES: tuple[str, ...] = (
    "focus_lost", "focus_restored", "stream_lost", "stream_restored",
    "refocus_requested", "refocus_done", "refocus_failed", "tamper_detected", "tamper_cleared",
)  # fmt: skip
# The ONVIF (Profile T) tampering topic a VMS maps each event to; None: no ONVIF counterpart.
ONVIF_BLURRY = "tns1:VideoSource/ImageTooBlurry/AnalyticsService"
ONVIF_SCENE_CHANGE = "tns1:VideoSource/GlobalSceneChange/AnalyticsService"  # tamper_detected: State true
ONVIF_TOPICS: dict[str, str | None] = {"focus_lost": ONVIF_BLURRY, "focus_restored": ONVIF_BLURRY,
                                       "tamper_detected": ONVIF_SCENE_CHANGE, "tamper_cleared": ONVIF_SCENE_CHANGE}
ANALYSIS_STATES: tuple[str | None, ...] = (None, "ok", "unsuitable", "frozen")

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
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One event: ``{"id", "type", "camera", "time", "class", "probabilities", "onvif_topic"}``.

    `onvif_topic` is the ONVIF tampering topic of the event (`focus_lost` is
    ImageTooBlurry with State true, `focus_restored` the same topic with State false),
    None for the others. `extra` adds keys (e.g. `refocus` details) but never replaces one.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event = {
        "id": str(uuid.uuid4()),
        "type": type,
        "camera": camera,
        "time": iso_utc(wall_time),
        "class": cls,
        "probabilities": dict(probs or {}),
        "onvif_topic": ONVIF_TOPICS.get(type),
    }
    clash = set(extra or {}) & set(event)
    if clash:
        raise ValueError(f"extra keys would replace {sorted(clash)}")
    event.update(extra or {})
    return event


def make_state(
    focus: str,
    stream: str,
    cls: str | None,
    probs: Probabilities | None,
    wall_time: float,
    analysis: str | None = None,
) -> dict[str, Any]:
    """Retained camera state: ``{"focus", "stream", "class", "probabilities", "updated", "analysis"}``.

    `analysis` describes the newest frame: ``ok`` (it got a verdict), ``unsuitable`` (too
    little contrast: no verdict), ``frozen`` (the same picture again: not new evidence),
    None before the first frame.
    """
    if focus not in ("ok", "lost", "unknown"):
        raise ValueError(f"unknown focus state {focus!r}")
    if stream not in ("online", "offline"):
        raise ValueError(f"unknown stream state {stream!r}")
    if analysis not in ANALYSIS_STATES:
        raise ValueError(f"unknown analysis state {analysis!r}")
    return {
        "focus": focus,
        "stream": stream,
        "class": cls,
        "probabilities": dict(probs or {}),
        "updated": iso_utc(wall_time),
        "analysis": analysis,
    }
