"""(d) stream_lost then stream_restored when the RTSP server goes away and comes back
on the same URL; the retained state follows (`stream` offline/online)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.support.mqtt import wait_retained

pytestmark = pytest.mark.integration

# stream_timeout_s for these tests: above the grabber's 3 s read timeout, at which FFmpeg
# hands over the last partial packet of a frozen stream (one stale frame).
TIMEOUT_S = 5.0


@pytest.mark.parametrize("how", ["sigterm", "sigkill", "freeze"])
def test_stream_lost_and_restored(broker, collector, prefix, daemon_factory, rtsp_factory, sharp_clip, how):
    """sigterm/sigkill: the server closes (the client sees EOF or a reset); freeze: the
    server is SIGSTOPped, its TCP connection stays open but no frame comes (then it is
    killed and restarted).  Clients join mid-GOP, as with a real camera."""
    srv = rtsp_factory({"/door": sharp_clip}, start_frame=7)
    d = daemon_factory({"door": {"url": srv.url("/door"), "stream_timeout_s": TIMEOUT_S}})
    events, state = f"{prefix}/door/events", f"{prefix}/door/state"
    collector.wait_topic(state, lambda m: m.json()["stream"] == "online", 30.0)
    url_before = srv.url("/door")

    mark = collector.mark()
    t_stop = time.monotonic()
    if how == "freeze":
        assert srv.proc is not None
        os.kill(srv.proc.pid, signal.SIGSTOP)
    else:
        srv.stop(kill=how == "sigkill")
    lost = collector.wait_event(events, "stream_lost", TIMEOUT_S + 15.0, start=mark)
    waited = time.monotonic() - t_stop
    assert waited >= TIMEOUT_S - 1.5, f"stream_lost after {waited:.1f}s"
    ev = lost.json()
    assert ev["camera"] == "door" and ev["class"] is None
    s = wait_retained(broker.host, broker.port, state, lambda m: m.json()["stream"] == "offline")
    assert s.json()["focus"] in ("ok", "lost", "unknown")
    # Still offline a while later: one stream_lost per outage.
    time.sleep(2.0)
    kinds = [e["type"] for e in collector.events(events, start=mark)]
    assert kinds == ["stream_lost"], kinds
    d.assert_running()

    if how == "freeze":
        srv.stop(kill=True)  # SIGKILL works on a stopped process
    mark = collector.mark()
    srv.start()
    assert srv.url("/door") == url_before
    collector.wait_event(events, "stream_restored", 45.0, start=mark)
    wait_retained(broker.host, broker.port, state, lambda m: m.json()["stream"] == "online")
    d.assert_running()
    assert d.terminate() == 0


def test_long_gop_stream_gives_frames_from_the_first_keyframe(
    broker, collector, prefix, daemon_factory, rtsp_factory, demo_clip
):
    """The demo clip has one keyframe per 20 s (as cameras with a long or dynamic GOP);
    the server starts each client on it.  The daemon must analyse from that first
    keyframe on, not from the next one 20 s later (which would also raise a spurious
    stream_lost at every connect whenever the GOP exceeds stream_timeout_s)."""
    srv = rtsp_factory({"/lobby": demo_clip})
    d = daemon_factory({"lobby": {"url": srv.url("/lobby")}})
    state = f"{prefix}/lobby/state"
    collector.wait_topic(f"{prefix}/available", lambda m: m.text == "online", 30.0)
    t0 = time.monotonic()
    collector.wait_topic(state, lambda m: m.json()["stream"] == "online", 8.0)
    assert time.monotonic() - t0 < 8.0
    assert not collector.messages(f"{prefix}/lobby/events"), collector.summary()
    d.assert_running()
