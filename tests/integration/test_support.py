"""The test infrastructure itself: clips, the RTSP server (real time, looping, restart on
the same port), the broker and the collector.  When a daemon test fails and these pass,
look at the daemon."""

from __future__ import annotations

import time
from itertools import pairwise

import av
import pytest

from tests.support import clips
from tests.support.mqtt import MqttCollector, retained

pytestmark = pytest.mark.integration


def read_frames(url: str, seconds: float) -> list[tuple[int | None, bool, float, float]]:
    """(pts, keyframe, mean luma, arrival s) of the frames decoded from ``url`` for
    ``seconds``."""
    out = []
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=(5, 3)) as c:
        t0 = time.monotonic()
        for f in c.decode(video=0):
            t = time.monotonic() - t0
            out.append((f.pts, bool(f.key_frame), float(f.to_ndarray(format="gray").mean()), t))
            if t > seconds:
                break
    return out


def test_demo_clip_is_within_budget(demo_clip):
    info = clips.probe(demo_clip)
    assert info["codec"] == "h264"
    assert (info["width"], info["height"]) in ((1280, 720), (1920, 1080))
    assert 36 <= info["frames"] / info["fps"] <= 44
    assert info["bytes"] <= 3 * 1024 * 1024


def test_clips_are_a_fixed_camera_that_drifts_a_few_pixels(demo_clip):
    """The default drift stays well inside the fusion's shift tolerance (~5 % of the width): a
    fixed camera, not a pan (which the fusion rightly reads as a scene change)."""
    import inspect

    import cv2
    import numpy as np

    assert inspect.signature(clips.make_clip).parameters["pan_px"].default == (32, 8)
    with av.open(str(demo_clip)) as c:
        frames = [f.to_ndarray(format="gray") for _, f in zip(range(251), c.decode(video=0), strict=False)]
    first, later = (np.float32(frames[i]) for i in (0, 250))  # 0 s and 10 s: both in focus
    (dx, dy), _ = cv2.phaseCorrelate(first, later)
    assert 1 <= abs(dx) + abs(dy) and abs(dx) <= 0.05 * first.shape[1] and abs(dy) <= 0.05 * first.shape[0], (dx, dy)


def test_transient_clip_has_fixed_gop(transient_clips):
    info = clips.probe(transient_clips["ir"])
    assert info["frames"] == 16 * 25
    assert info["keyframes"] == list(range(0, 400, 25))


def test_rtsp_server_streams_in_real_time_loops_and_restarts_on_same_port(rtsp_factory, transient_clips):
    clip = transient_clips["dark"]
    srv = rtsp_factory({"/a": clip, "/b": clip})
    frames = read_frames(srv.url("/a"), 4.0)
    # Real time after a start-up burst of about 1 s (the server's preroll): 25 fps,
    # one frame per timestamp, a keyframe every 25 frames.
    steady = [f for f in frames if 1.5 <= f[3] < 3.5]
    assert 42 <= len(steady) <= 58, len(steady)
    pts = [f[0] for f in frames if f[0] is not None]
    assert all(b > a for a, b in pairwise(pts)), "pts not increasing"
    keys = [i for i, f in enumerate(frames) if f[1]]
    assert keys[:3] == [0, 25, 50], keys

    port = srv.port
    srv.stop()
    with pytest.raises(av.error.ConnectionRefusedError):
        read_frames(srv.url("/b"), 0.5)
    srv.start()
    assert srv.port == port
    assert len(read_frames(srv.url("/b"), 1.0)) >= 15


def test_rtsp_server_loops_forever(rtsp_factory, clip_dir, photo):
    short = clips.make_clip(
        clip_dir / "short.mp4", photo, [clips.Segment("sharp", 1), clips.Segment("dark", 1)], gop=25
    )
    srv = rtsp_factory({"/s": short})
    frames = read_frames(srv.url("/s"), 4.5)
    pts = [f[0] for f in frames if f[0] is not None]
    assert len(frames) >= 100 and all(b > a for a, b in pairwise(pts))
    luma = [f[2] for f in frames]
    # bright, dark, bright, dark: the 2 s clip looped at least twice
    dark = [m < 0.6 * max(luma) for m in luma]
    flips = sum(1 for a, b in pairwise(dark) if a != b)
    assert flips >= 3, flips


def test_broker_retains_and_collector_waits(broker, prefix):
    with MqttCollector(broker.host, broker.port, [f"{prefix}/#"]) as c:
        c.client.publish(f"{prefix}/x", "1", qos=1, retain=True).wait_for_publish(5)
        c.client.publish(f"{prefix}/y", '{"type": "focus_lost"}', qos=1).wait_for_publish(5)
        assert c.wait_event(f"{prefix}/y", "focus_lost", 5).json()["type"] == "focus_lost"
        with pytest.raises(TimeoutError):
            c.wait_topic(f"{prefix}/z", timeout=0.2)
    r = retained(broker.host, broker.port, f"{prefix}/x")
    assert r is not None and r.retain and r.text == "1"
