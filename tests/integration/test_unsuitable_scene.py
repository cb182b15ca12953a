"""A camera pointed at a plain wall (contrast, but no detail) with the real daemon, RTSP
server and mosquitto: no verdict at all -- focus stays "unknown" (never "lost"), the
retained state says analysis "unsuitable" / "too little detail", no focus_lost -- with the
default detector (fusion) and with ``detector: combined``.  When the clip cuts to a textured
scene the same cameras are judged again: learning their in-focus baseline first (``basis``
"learning").  A wall seen before any view was learnt is not tampering (no ``tamper``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import clips

pytestmark = pytest.mark.integration

# The clip: WALL_S of a plain wall, then TEXTURED_S of the sharp photo (loops after 22 s).
WALL_S = 16
TEXTURED_S = 6


@pytest.fixture(scope="session")
def wall_clip(clip_dir: Path, photo: np.ndarray) -> Path:
    """1280x720, GOP 25 at 25 fps: 16 s a plain wall (clips.plain_wall, sensor noise 2),
    then 6 s the sharp photo."""
    segments = [
        clips.Segment("wall", WALL_S, noise=2.0),
        clips.Segment("sharp", TEXTURED_S),
    ]
    return clips.make_clip(clip_dir / "plain_wall.mp4", photo, segments, gop=25)


def test_plain_wall_is_unsuitable_not_lost(
    broker, collector, prefix, daemon_factory, rtsp_factory, wall_clip
):
    # Two cameras in one daemon, each on its own path (each RTSP client starts at frame 0).
    srv = rtsp_factory({"/wall_fusion": wall_clip, "/wall_combined": wall_clip})
    d = daemon_factory(
        {
            "wall_fusion": {"url": srv.url("/wall_fusion")},  # no detector key: the default, fusion
            "wall_combined": {"url": srv.url("/wall_combined"), "detector": "combined"},
        }
    )
    topics = {cam: f"{prefix}/{cam}/state" for cam in ("wall_fusion", "wall_combined")}
    for topic in topics.values():
        collector.wait_topic(topic, lambda m: m.json()["stream"] == "online", 30.0)

    # The wall lasts 16 s; then the textured scene is judged ("analysis": "ok").
    for topic in topics.values():
        collector.wait_topic(
            topic, lambda m: m.json().get("analysis") == "ok", WALL_S + 20.0
        )
    d.assert_running()

    for cam, topic in topics.items():
        msgs = [
            m for m in collector.messages(topic) if m.json().get("analysis") is not None
        ]
        states = [m.json() for m in msgs]
        first_ok = next(i for i, s in enumerate(states) if s["analysis"] == "ok")
        wall, textured = states[:first_ok], states[first_ok:]
        print(
            cam, "wall states:", len(wall), "first:", wall[:1], "judged:", textured[:1]
        )
        # ~1 analysis a second over the 16 s wall (keyframes only, interval_s 1).
        assert len(wall) >= 10, (cam, len(wall), collector.summary())
        assert msgs[first_ok - 1].t - msgs[0].t >= 10.0, cam
        bad = [
            s
            for s in wall
            if (s["focus"], s["analysis"], s.get("analysis_reason"))
            != ("unknown", "unsuitable", "too little detail")
        ]
        assert not bad, (
            cam,
            [(s["focus"], s["analysis"], s.get("analysis_reason")) for s in bad[:3]],
        )
        assert all(s["class"] is None for s in wall), cam
        # Nothing learnt yet: a featureless picture is not a covered lens (tamper needs a known view).
        assert all(s.get("tamper") is None for s in states), (cam, [s.get("tamper") for s in states])
        # No figures describe an unsuitable frame (they would be stale).
        assert all("basis" not in s for s in wall), (cam, wall[:1])
        # The textured scene gets verdicts again: a class, no reason.
        assert (
            textured[0]["class"] is not None and "analysis_reason" not in textured[0]
        ), (cam, textured[0])
        # The first judged frames of the textured view are learning frames (both detectors).
        assert textured[0]["basis"] == "learning", (cam, textured[0])
        assert all(s["focus"] != "lost" for s in states), cam

    events = [m.json() for m in collector.messages() if m.topic.endswith("/events")]
    assert not [e for e in events if e["type"] in ("focus_lost", "tamper_detected")], events
