"""Nothing lost: events survive a broker outage, a kill -9 and repeated broker restarts.

Real mosquitto on a fixed port (no persistence) stopped and started again, the real
daemon killed with SIGKILL, the GStreamer RTSP server, the oracle model (focus events on
cue) -- see tests/integration/fault_fixtures.py.  "Produced" is the daemon's own record:
its ``event <id> <type> of <camera> at <time> stored (outbox row N)`` log lines and the
SQLite outbox; "delivered" is what a subscriber on ``<prefix>/#`` received.

A subscriber must be subscribed before the daemon (re)connects, or the broker drops
the events (QoS 1, not retained) after acknowledging them.  So the broker is started
right after one of the daemon's failed connection attempts (its log says when): the
next attempt comes 2 s or more later (paho's backoff), long after the subscriber is in.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.integration.fault_fixtures import (  # noqa: F401 (fixtures)
    daemons,
    events_of,
    fault_clip,
    log_text,
    oracle,
    own_broker,
    start_daemon,
    wait_for,
    wait_log,
)
from tests.support.faults import produced_events, read_outbox
from tests.support.mqtt import MqttCollector, wait_retained

pytestmark = pytest.mark.integration

CANNOT_CONNECT = r"MQTT: cannot connect to"
CONNECTED = r"MQTT: connected to"


def by_camera(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """camera -> event ids in order, duplicates (QoS 1 re-deliveries) after the first dropped."""
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for e in events:
        if e["id"] not in seen:
            seen.add(e["id"])
            out.setdefault(e["camera"], []).append(e["id"])
    return out


def broker_back(broker, daemon, attempts: int, prefix: str, timeout: float = 40.0) -> MqttCollector:
    """Wait for ``attempts`` more failed connection attempts of ``daemon``, then start the
    broker and a subscriber at once (before the daemon's next attempt)."""
    failed = len(wait_log(daemon, CANNOT_CONNECT, 0))
    wait_log(daemon, CANNOT_CONNECT, failed + attempts, timeout)
    broker.start()
    return MqttCollector(broker.host, broker.port, [f"{prefix}/#"]).start()


def test_kill9_during_outage_then_broker_back_delivers_events_as_produced(
        own_broker, daemons, tmp_path, oracle, fault_clip, rtsp_factory, prefix):
    """Broker stopped while a camera goes out of focus and another stream dies; daemon
    killed (-9) and restarted while the broker is still down; broker back: every event
    arrives once, with the id and time recorded in the outbox, in order per camera, and
    the retained state is the latest truth."""
    focus_srv = rtsp_factory({"/focus": fault_clip("focus_loss")})  # 6 s sharp, then defocused
    door_srv = rtsp_factory({"/door": fault_clip("sharp")})
    cameras = {"focus": {"url": focus_srv.url("/focus")}, "door": {"url": door_srv.url("/door")}}
    state_dir = tmp_path / "state"
    run = {"port": own_broker.port, "prefix": prefix, "oracle": oracle, "cameras": cameras,
           "state_dir": state_dir}
    before = MqttCollector(own_broker.host, own_broker.port, [f"{prefix}/#"]).start()
    a = start_daemon(daemons, tmp_path, name="a", **run)
    before.wait_topic(f"{prefix}/focus/state", lambda m: m.json()["focus"] == "ok", 40.0)
    before.wait_topic(f"{prefix}/door/state", lambda m: m.json()["stream"] == "online", 10.0)

    own_broker.stop()
    before.stop()
    assert events_of([before], prefix) == [], "events before the outage: the clip timing was missed"
    door_srv.stop()
    # Both events happen while the broker is down and land in the outbox.
    wait_for(lambda: {e["type"] for e in read_outbox(state_dir)} >= {"focus_lost", "stream_lost"}, 30.0,
             "focus_lost and stream_lost in the outbox")
    a.kill9()
    recorded = read_outbox(state_dir)
    produced_a = produced_events(log_text(a))
    assert [e["id"] for e in recorded] == [e["id"] for e in produced_a]
    assert [e["type"] for e in recorded] == ["focus_lost", "stream_lost"] or \
        [e["type"] for e in recorded] == ["stream_lost", "focus_lost"], recorded

    # Restart while the broker is still down: the old rows wait; the new process adds its own.
    b = start_daemon(daemons, tmp_path, name="b", **run)
    wait_log(b, rf"outbox: {len(recorded)} undelivered event\(s\) from before will be re-sent", 1, 30.0)
    wait_log(b, r"event \S+ stream_lost of door", 1, 30.0)  # door never comes back for b
    after = broker_back(own_broker, b, 1, prefix)
    wait_log(b, r"event \S+ focus_lost of focus", 1, 30.0)  # a new session: sharp, then defocused
    wait_log(b, CONNECTED, 1, 40.0)

    produced = recorded + [dict(e) for e in produced_events(log_text(b))]
    ids = [e["id"] for e in produced]
    wait_for(lambda: {e["id"] for e in events_of([after], prefix)} >= set(ids), 20.0,
             f"delivery of all {len(ids)} events")
    delivered = events_of([after], prefix)
    print(f"\nFIGURES kill9: produced {len(ids)} (a: {len(recorded)} in the outbox at the kill, "
          f"b: {len(ids) - len(recorded)}), delivered {len(delivered)}, distinct {len({e['id'] for e in delivered})}")
    assert len(delivered) == len(ids), Counter(e["id"] for e in delivered)  # exactly once here
    assert by_camera(delivered) == by_camera(produced)  # in order per camera
    got = {e["id"]: e for e in delivered}
    for row in recorded:  # exactly as produced before the kill: same id, time, class, ...
        assert got[row["id"]] == {k: v for k, v in row.items() if k not in ("row", "topic")}
    for e in produced[len(recorded):]:
        assert (got[e["id"]]["type"], got[e["id"]]["time"]) == (e["type"], e["time"])
    wait_for(lambda: read_outbox(state_dir) == [], 10.0, "an empty outbox")

    # Retained state after the reconnect is the latest truth (the broker lost everything).
    wait_retained(own_broker.host, own_broker.port, f"{prefix}/focus/state",
                  lambda m: (m.json()["focus"], m.json()["stream"]) == ("lost", "online"))
    wait_retained(own_broker.host, own_broker.port, f"{prefix}/door/state",
                  lambda m: m.json()["stream"] == "offline")
    after.stop()
    b.assert_running()
    assert b.terminate() == 0


def test_repeated_broker_restarts_deliver_every_event(
        own_broker, daemons, tmp_path, oracle, fault_clip, rtsp_factory, prefix):
    """Three cameras whose focus flips every 2 s (plus stream_lost/restored from an RTSP
    restart during one outage) while the broker is restarted four times: every event
    produced is delivered, in order per camera; retained state follows the truth."""
    srv = rtsp_factory({f"/c{i}": fault_clip("flip") for i in (1, 2, 3)})
    cameras = {f"c{i}": {"url": srv.url(f"/c{i}")} for i in (1, 2, 3)}
    collectors = [MqttCollector(own_broker.host, own_broker.port, [f"{prefix}/#"]).start()]
    d = start_daemon(daemons, tmp_path, port=own_broker.port, prefix=prefix, oracle=oracle,
                     cameras=cameras)
    for cam in cameras:
        collectors[0].wait_event(f"{prefix}/{cam}/events", "focus_lost", 40.0)

    # (failed attempts to wait for, RTSP server down during this outage)
    for attempts, rtsp_down in ((1, False), (1, True), (1, False), (2, False)):
        connects = len(wait_log(d, CONNECTED, 0))
        own_broker.stop()
        collectors[-1].stop()
        if rtsp_down:
            since = len(log_text(d))
            srv.stop()
            wait_for(lambda: all(f"stream_lost of {cam} " in log_text(d)[since:] for cam in cameras), 20.0,  # noqa: B023
                     "stream_lost of every camera")
        collectors.append(broker_back(own_broker, d, attempts, prefix))
        wait_log(d, CONNECTED, connects + 1, 40.0)
        if rtsp_down:
            # Retained state after the reconnect: the truth of the outage (streams offline).
            for cam in cameras:
                wait_retained(own_broker.host, own_broker.port, f"{prefix}/{cam}/state",
                              lambda m: m.json()["stream"] == "offline")
            srv.start()
            for cam in cameras:
                collectors[-1].wait_event(f"{prefix}/{cam}/events", "stream_restored", 30.0)
        time.sleep(1.5)  # connected for a while: events flow live

    for cam in cameras:
        wait_retained(own_broker.host, own_broker.port, f"{prefix}/{cam}/state",
                      lambda m: m.json()["stream"] == "online")
    assert d.terminate() == 0  # drains what is in flight, then exits
    time.sleep(0.5)
    collectors[-1].stop()
    left = read_outbox(tmp_path / "state")
    produced = produced_events(log_text(d))
    delivered = events_of(collectors, prefix)
    counts = Counter(e["id"] for e in delivered)
    kinds = Counter(e["type"] for e in produced)
    print(f"\nFIGURES restarts: 4 broker restarts, 1 RTSP restart; produced {len(produced)} {dict(kinds)}, "
          f"delivered {len(delivered)} ({len(counts)} distinct, "
          f"{sum(n - 1 for n in counts.values())} duplicate deliveries), left in outbox {len(left)}")
    assert left == []
    assert set(counts) == {e["id"] for e in produced}, "lost: " + str({e["id"] for e in produced} - set(counts))
    assert by_camera(delivered) == by_camera(produced)
    assert kinds["stream_lost"] == kinds["stream_restored"] >= 3 and kinds["focus_lost"] >= 9
