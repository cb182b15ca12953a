"""Event and state payloads: exact JSON shapes of the MQTT contract."""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest

from focusguard.analysis.infer import DEFAULT_LABELS
from focusguard.common.events import (
    EVENT_TYPES,
    iso_utc,
    make_event,
    make_state,
    probabilities_dict,
)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PROBS = probabilities_dict(DEFAULT_LABELS, np.array([0.05, 0.05, 0.1, 0.1, 0.1, 0.5, 0.05, 0.025, 0.025]))


def test_iso_utc() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


def test_event_shape() -> None:
    event = make_event("focus_lost", "gate", "b_3", PROBS, 1_700_000_000.0)
    assert set(event) == {"id", "type", "camera", "time", "class", "probabilities", "onvif_topic"}
    assert event["onvif_topic"] == "tns1:VideoSource/ImageTooBlurry/AnalyticsService"
    assert uuid.UUID(event["id"]).version == 4
    assert (event["type"], event["camera"], event["class"]) == ("focus_lost", "gate", "b_3")
    assert ISO.match(event["time"])
    assert list(event["probabilities"]) == list(DEFAULT_LABELS)
    assert json.loads(json.dumps(event)) == event


def test_event_ids_are_unique() -> None:
    ids = {make_event("stream_lost", "c", None, None, 0)["id"] for _ in range(100)}
    assert len(ids) == 100


ALL_EVENT_TYPES = (
    "focus_lost", "focus_restored", "stream_lost", "stream_restored",
    "refocus_requested", "refocus_done", "refocus_failed", "tamper_detected", "tamper_cleared",
)  # fmt: skip


def test_event_types_are_the_contract() -> None:
    assert EVENT_TYPES == ALL_EVENT_TYPES


@pytest.mark.parametrize("kind", ALL_EVENT_TYPES)
def test_all_event_types(kind: str) -> None:
    event = make_event(kind, "c", None, None, 0)  # type: ignore[arg-type]
    assert event["type"] == kind and event["class"] is None and event["probabilities"] == {}
    assert set(event) == {"id", "type", "camera", "time", "class", "probabilities", "onvif_topic"}


def test_onvif_topic_per_event_type() -> None:
    blurry = "tns1:VideoSource/ImageTooBlurry/AnalyticsService"
    scene_change = "tns1:VideoSource/GlobalSceneChange/AnalyticsService"
    assert make_event("focus_restored", "c", "sharp", PROBS, 0)["onvif_topic"] == blurry
    for kind in ("tamper_detected", "tamper_cleared"):
        assert make_event(kind, "c", None, None, 0)["onvif_topic"] == scene_change  # type: ignore[arg-type]
    for kind in ("stream_lost", "stream_restored", "refocus_requested", "refocus_done", "refocus_failed"):
        assert make_event(kind, "c", None, None, 0)["onvif_topic"] is None  # type: ignore[arg-type]


def test_tamper_detected_carries_its_reason() -> None:
    for reason in ("covered", "scene_changed"):
        event = make_event("tamper_detected", "gate", None, None, 0, extra={"reason": reason})
        assert (event["type"], event["reason"], event["class"]) == ("tamper_detected", reason, None)
        assert json.loads(json.dumps(event)) == event


def test_extra_keys_are_added_but_never_replace() -> None:
    event = make_event("refocus_done", "c", None, None, 0, extra={"refocus": {"action": "ptz_autofocus"}})
    assert event["refocus"] == {"action": "ptz_autofocus"} and event["type"] == "refocus_done"
    with pytest.raises(ValueError, match="replace"):
        make_event("refocus_done", "c", None, None, 0, extra={"type": "focus_lost"})


def test_unknown_event_type_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        make_event("focus_gone", "c", None, None, 0)  # type: ignore[arg-type]


def test_state_shape() -> None:
    state = make_state("ok", "online", "sharp", PROBS, 0, analysis="ok")
    assert state == {
        "focus": "ok",
        "stream": "online",
        "class": "sharp",
        "probabilities": PROBS,
        "updated": "1970-01-01T00:00:00.000Z",
        "analysis": "ok",
    }
    initial = make_state("unknown", "offline", None, None, 0)
    assert initial["class"] is None and initial["probabilities"] == {} and initial["analysis"] is None
    with pytest.raises(ValueError, match="unknown analysis state"):
        make_state("ok", "online", None, None, 0, analysis="dark")


@pytest.mark.parametrize(("focus", "stream"), [("blurry", "online"), ("ok", "up")])
def test_state_rejects_unknown_values(focus: str, stream: str) -> None:
    with pytest.raises(ValueError):
        make_state(focus, stream, None, None, 0)


def test_probabilities_are_rounded_and_keyed_by_label() -> None:
    probs = probabilities_dict(["a", "b"], np.array([1 / 3, 2 / 3], np.float32))
    assert probs == {"a": 0.3333, "b": 0.6667}
    assert all(type(v) is float for v in probs.values())
