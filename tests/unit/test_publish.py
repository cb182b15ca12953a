"""Publisher logic against a fake paho client: will, online, state, events via the outbox, ordering."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import MQTTMessageInfo
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from focusguard.common.events import make_event, make_state
from focusguard.delivery.outbox import Outbox
from focusguard.delivery.publish import MqttPublisher
from focusguard.settings.config import MqttConfig

SUCCESS = ReasonCode(PacketTypes.CONNACK, "Success")
NOT_AUTHORIZED = ReasonCode(PacketTypes.CONNACK, "Not authorized")


@dataclass
class Sent:
    mid: int
    topic: str
    payload: str
    qos: int
    retain: bool


@dataclass
class FakeClient:
    """Records calls; `ack_inside_publish` simulates a PUBACK processed before publish() returns."""

    calls: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    connected: bool = False
    ack_inside_publish: bool = False
    next_mid: int = 1
    on_connect: Any = None
    on_connect_fail: Any = None
    on_disconnect: Any = None
    on_publish: Any = None

    def will_set(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        self.calls.append(f"will_set {topic} {payload} {qos} {retain}")

    def connect_async(self, host: str, port: int, keepalive: int) -> None:
        self.calls.append(f"connect_async {host}:{port}")

    def loop_start(self) -> None:
        self.calls.append("loop_start")

    def loop_stop(self) -> None:
        self.calls.append("loop_stop")

    def disconnect(self) -> None:
        self.calls.append("disconnect")

    def is_connected(self) -> bool:
        return self.connected

    def publish(self, topic: str, payload: str, qos: int = 0, retain: bool = False) -> MQTTMessageInfo:
        info = MQTTMessageInfo(self.next_mid)
        self.next_mid += 1
        info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS if self.connected else MQTTErrorCode.MQTT_ERR_NO_CONN
        self.sent.append(Sent(info.mid, topic, payload, qos, retain))
        if self.connected:
            info._set_as_published()  # lets wait_for_publish() return at once (the broker is instant)
        if self.ack_inside_publish:
            self.ack(info.mid)
        return info

    # broker side
    def connect(self, reason: ReasonCode = SUCCESS) -> None:
        self.connected = not reason.is_failure
        self.on_connect(self, None, None, reason, None)

    def drop(self) -> None:
        self.connected = False
        self.on_disconnect(self, None, None, ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"), None)

    def ack(self, mid: int) -> None:
        self.on_publish(self, None, mid, ReasonCode(PacketTypes.PUBACK, "Success"), None)

    def topics(self) -> list[str]:
        return [s.topic for s in self.sent]


def make(
    tmp_path: Path, client: FakeClient | None = None, limit: int = 100
) -> tuple[MqttPublisher, FakeClient, Outbox]:
    client = client or FakeClient()
    outbox = Outbox(tmp_path / "outbox.sqlite3", limit=limit)
    publisher = MqttPublisher(MqttConfig(host="broker", port=1999, topic_prefix="fg"), outbox, client=client)
    return publisher, client, outbox


def event(n: int) -> dict[str, Any]:
    return make_event("focus_lost", "gate", "b_3", {"sharp": 0.1}, 1_700_000_000 + n)


def state(focus: str) -> dict[str, Any]:
    return make_state(focus, "online", "sharp", {}, 0)


def test_last_will_is_set_before_connecting(tmp_path: Path) -> None:
    publisher, client, _ = make(tmp_path)
    publisher.start()
    try:
        assert client.calls[:3] == ["will_set fg/available offline 1 True", "connect_async broker:1999", "loop_start"]
    finally:
        publisher.stop()


def test_online_then_retained_state_then_events_after_connect(tmp_path: Path) -> None:
    publisher, client, outbox = make(tmp_path)
    publisher.publish_state("gate", state("unknown"))
    first = event(1)
    publisher.publish_event("gate", first)
    publisher.process()
    assert client.sent == []  # nothing goes out before the broker accepted us
    assert len(outbox) == 1  # but the event is already durable
    client.connect()
    publisher.process()
    assert client.topics() == ["fg/available", "fg/gate/state", "fg/gate/events"]
    online, st, ev = client.sent
    assert (online.payload, online.retain, online.qos) == ("online", True, 1)
    assert (json.loads(st.payload)["focus"], st.retain, st.qos) == ("unknown", True, 1)
    assert (ev.retain, ev.qos) == (False, 1)
    assert json.loads(ev.payload) == first


def test_event_removed_from_outbox_only_on_puback(tmp_path: Path) -> None:
    publisher, client, outbox = make(tmp_path)
    client.connect()
    publisher.publish_event("gate", event(1))
    publisher.process()
    assert len(outbox) == 1
    client.ack(client.sent[-1].mid)
    publisher.process()
    assert len(outbox) == 0


def test_puback_before_publish_returns_is_matched(tmp_path: Path) -> None:
    publisher, client, outbox = make(tmp_path, FakeClient(ack_inside_publish=True))
    client.connect()
    publisher.publish_event("gate", event(1))
    publisher.process()
    publisher.process()
    assert len(outbox) == 0


def test_events_queued_while_offline_go_out_in_order_after_connect(tmp_path: Path) -> None:
    publisher, client, _ = make(tmp_path)
    events = [event(n) for n in range(5)]
    for e in events:
        publisher.publish_event("gate", e)
    publisher.process()
    client.connect()
    publisher.process()
    sent = [json.loads(s.payload) for s in client.sent if s.topic == "fg/gate/events"]
    assert sent == events  # same ids and times, same order


def test_reconnect_resends_nothing_twice_and_keeps_order(tmp_path: Path) -> None:
    publisher, client, outbox = make(tmp_path)
    client.connect()
    publisher.publish_event("gate", event(1))
    publisher.process()
    first = client.sent[-1]
    client.drop()  # event 1 unacknowledged: paho itself re-sends it after reconnecting
    publisher.publish_event("gate", event(2))
    publisher.process()
    assert client.sent[-1] is first  # nothing handed over while disconnected
    client.connect()
    publisher.process()
    assert [s.topic for s in client.sent[client.sent.index(first) + 1 :]] == ["fg/available"]  # event 2 waits
    client.ack(first.mid)
    publisher.process()
    times = [json.loads(s.payload)["time"] for s in client.sent if s.topic.endswith("events")]
    assert times == [event(1)["time"], event(2)["time"]]
    client.ack(client.sent[-1].mid)
    publisher.process()
    assert len(outbox) == 0


def test_state_republished_after_every_reconnect_latest_only(tmp_path: Path) -> None:
    publisher, client, _ = make(tmp_path)
    client.connect()
    publisher.publish_state("gate", state("unknown"))
    publisher.process()
    client.ack(client.sent[-1].mid)
    publisher.process()
    client.drop()
    publisher.publish_state("gate", state("ok"))
    publisher.publish_state("gate", state("lost"))
    publisher.process()
    client.connect()
    publisher.process()
    states = [json.loads(s.payload)["focus"] for s in client.sent if s.topic == "fg/gate/state"]
    assert states == ["unknown", "lost"]  # the stale "ok" never goes out
    client.ack(client.sent[-1].mid)
    client.drop()
    client.connect()
    publisher.process()
    states = [json.loads(s.payload)["focus"] for s in client.sent if s.topic == "fg/gate/state"]
    assert states == ["unknown", "lost", "lost"]  # re-published after reconnecting


def test_new_state_waits_for_unacked_older_state(tmp_path: Path) -> None:
    publisher, client, _ = make(tmp_path)
    client.connect()
    publisher.publish_state("gate", state("unknown"))
    publisher.process()
    publisher.publish_state("gate", state("ok"))
    publisher.process()
    assert [s.topic for s in client.sent].count("fg/gate/state") == 1
    client.ack(client.sent[-1].mid)
    publisher.process()
    assert json.loads(client.sent[-1].payload)["focus"] == "ok"


def test_restart_resends_outbox_with_original_ids(tmp_path: Path) -> None:
    publisher, _, outbox = make(tmp_path)
    publisher.publish_event("gate", event(1))
    publisher.publish_event("gate", event(2))
    outbox.close()  # daemon stops before the broker ever saw them
    publisher2, client2, _ = make(tmp_path)
    client2.connect()
    publisher2.process()
    payloads = [json.loads(s.payload) for s in client2.sent if s.topic == "fg/gate/events"]
    assert payloads == [event_from(1, payloads[0]), event_from(2, payloads[1])]


def event_from(n: int, sent: dict[str, Any]) -> dict[str, Any]:
    expected = event(n)
    expected["id"] = sent["id"]  # uuid4 differs per make_event call; compare the rest
    return expected


def test_refused_connection_is_logged_and_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    publisher, client, outbox = make(tmp_path)
    with caplog.at_level(logging.ERROR):
        client.connect(NOT_AUTHORIZED)
    publisher.publish_event("gate", event(1))
    publisher.process()
    assert "refused the connection: Not authorized" in caplog.text
    assert not publisher.connected and client.sent == [] and len(outbox) == 1
    client.on_connect_fail(client, None)  # broker down: also just logged


def test_event_window_limits_inflight(tmp_path: Path) -> None:
    publisher, client, _ = make(tmp_path)
    client.connect()
    for n in range(40):
        publisher.publish_event("gate", event(n))
    publisher.process()
    events = [s for s in client.sent if s.topic.endswith("events")]
    assert len(events) == 16
    for s in events:
        client.ack(s.mid)
    publisher.process()
    assert len([s for s in client.sent if s.topic.endswith("events")]) == 32


def test_stop_publishes_offline_retained(tmp_path: Path) -> None:
    publisher, client, _ = make(tmp_path)
    publisher.start()
    client.connect()
    publisher.stop(drain_s=0.2)
    assert client.sent[-1].topic == "fg/available" and client.sent[-1].payload == "offline"
    assert client.sent[-1].retain and client.calls[-2:] == ["disconnect", "loop_stop"]


def test_real_client_configuration(tmp_path: Path) -> None:
    cfg = MqttConfig(host="h", port=1, topic_prefix="x", username="u", password="pw", client_id="cam-box")
    publisher = MqttPublisher(cfg, Outbox(tmp_path / "o.sqlite3"))
    assert publisher.client._client_id == b"cam-box"
    assert publisher.client._username == b"u" and publisher.client._password == b"pw"
