"""(a) `<p>/available`: retained `online` while running; the last will `offline` after a
SIGKILL; a clean SIGTERM publishes `offline` and exits 0."""

from __future__ import annotations

import pytest

from tests.support.mqtt import retained, wait_retained

pytestmark = pytest.mark.integration

START_TIMEOUT = 30.0  # imports, model load, MQTT connect on a busy 2-core machine


@pytest.fixture
def camera(rtsp_factory, sharp_clip):
    srv = rtsp_factory({"/cam": sharp_clip})
    return {"cam": {"url": srv.url("/cam")}}


def test_online_retained_then_last_will_offline_after_sigkill(broker, collector, prefix, daemon_factory, camera):
    topic = f"{prefix}/available"
    d = daemon_factory(camera)
    collector.wait_topic(topic, lambda m: m.text == "online", START_TIMEOUT)
    d.assert_running()
    r = retained(broker.host, broker.port, topic)
    assert r is not None and r.retain and r.text == "online"

    mark = collector.mark()
    d.kill9()
    # The broker publishes the will as soon as it sees the socket close.
    collector.wait_topic(topic, lambda m: m.text == "offline", 10.0, start=mark)
    r = wait_retained(broker.host, broker.port, topic, lambda m: m.text == "offline", 5.0)
    assert r.retain


def test_sigterm_publishes_offline_and_exits_0(broker, collector, prefix, daemon_factory, camera):
    topic = f"{prefix}/available"
    d = daemon_factory(camera)
    collector.wait_topic(topic, lambda m: m.text == "online", START_TIMEOUT)
    # Let it analyse a little so SIGTERM meets a busy daemon (grabber, monitor, MQTT).
    collector.wait_topic(f"{prefix}/cam/state", lambda m: m.json().get("stream") == "online", 20.0)
    mark = collector.mark()
    rc = d.terminate(timeout=20.0)
    assert rc == 0, d.log_tail()
    collector.wait_topic(topic, lambda m: m.text == "offline", 5.0, start=mark)
    r = retained(broker.host, broker.port, topic)
    assert r is not None and r.text == "offline"
    # The last retained state still describes the camera (it is not wiped on exit).
    s = retained(broker.host, broker.port, f"{prefix}/cam/state")
    assert s is not None and set(s.json()) >= {"focus", "stream", "class", "probabilities", "updated"}
