"""Home Assistant discovery, `<p>/stats` and the command topic through the real publisher and a real mosquitto."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from focusguard.delivery.discovery import (
    FOCUS_TEMPLATE,
    HomeAssistantDiscovery,
    config_topic,
    focus_sensor_config,
    node_id,
)
from focusguard.delivery.outbox import Outbox
from focusguard.delivery.publish import MqttPublisher
from focusguard.settings.config import MqttConfig
from tests.support.mqtt import Mosquitto, MqttCollector, mosquitto_binary, wait_retained


def test_node_id_and_topic() -> None:
    assert node_id("focusguard") == "focusguard"
    assert node_id("site 1/focus.guard") == "site_1_focus_guard"
    assert config_topic("homeassistant", "site/fg", "gate") == "homeassistant/binary_sensor/site_fg/gate/config"


def test_sensor_config_shape() -> None:
    payload = focus_sensor_config("fg", "gate")
    assert payload["device_class"] == "problem"
    assert payload["unique_id"] == "fg_gate_focus"
    assert payload["state_topic"] == payload["json_attributes_topic"] == "fg/gate/state"
    assert payload["value_template"] == FOCUS_TEMPLATE
    assert payload["availability"] == [
        {"topic": "fg/available", "payload_available": "online", "payload_not_available": "offline"}
    ]
    assert "availability_topic" not in payload  # HA: one of the two, never both
    assert payload["device"]["identifiers"] == ["fg_gate"] and payload["device"]["name"] == "gate"
    assert "payload_on" not in payload  # defaults ON/OFF: what the template renders


@pytest.mark.parametrize(("focus", "rendered"), [("lost", "ON"), ("ok", "OFF"), ("unknown", "None")])
def test_value_template_semantics(focus: str, rendered: str) -> None:
    """The Jinja template, evaluated the way Home Assistant does for `value_json.focus`."""
    jinja2 = pytest.importorskip("jinja2")
    assert jinja2.Template(FOCUS_TEMPLATE).render(value_json={"focus": focus}) == rendered


class RecordingPublisher:
    def __init__(self) -> None:
        self.retained: list[tuple[str, str]] = []
        self.republished = 0
        self.subscriptions: dict[str, Any] = {}

    def publish_retained(self, topic: str, payload: str) -> None:
        self.retained.append((topic, payload))

    def republish_retained(self) -> None:
        self.republished += 1

    def subscribe(self, topic_filter: str, callback: Any) -> None:
        self.subscriptions[topic_filter] = callback


def test_discovery_announces_and_reannounces_on_birth() -> None:
    publisher = RecordingPublisher()
    ha = HomeAssistantDiscovery(publisher, "homeassistant", "fg", ["gate", "yard"])
    ha.start()
    assert [topic for topic, _ in publisher.retained] == [
        "homeassistant/binary_sensor/fg/gate/config",
        "homeassistant/binary_sensor/fg/yard/config",
        "homeassistant/binary_sensor/fg/gate_tamper/config",
        "homeassistant/binary_sensor/fg/yard_tamper/config",
    ]
    tamper = json.loads(publisher.retained[2][1])
    assert (tamper["device_class"], tamper["unique_id"]) == ("tamper", "fg_gate_tamper")
    assert tamper["device"] == json.loads(publisher.retained[0][1])["device"]  # one device, two sensors
    on_status = publisher.subscriptions["homeassistant/status"]
    on_status("homeassistant/status", b"offline")
    assert publisher.republished == 0
    on_status("homeassistant/status", b"online")
    assert publisher.republished == 1


# ----------------------------------------------------------------- with a real broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto not installed")
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as running:
        yield running


@pytest.fixture
def publisher(broker: Mosquitto, tmp_path: Path) -> Iterator[MqttPublisher]:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    pub = MqttPublisher(MqttConfig(host=broker.host, port=broker.port, topic_prefix=f"t{tmp_path.name[-8:]}"), outbox)
    yield pub
    pub.stop(drain_s=0.5)
    outbox.close()


def test_discovery_is_retained_and_reannounced_when_home_assistant_comes_online(
    broker: Mosquitto, publisher: MqttPublisher
) -> None:
    ha_prefix = f"ha_{publisher.prefix}"
    discovery = HomeAssistantDiscovery(publisher, ha_prefix, publisher.prefix, ["gate"])
    topic = config_topic(ha_prefix, publisher.prefix, "gate")
    publisher.start()
    discovery.start()
    announced = wait_retained(broker.host, broker.port, topic, lambda m: True, timeout=10)
    assert json.loads(announced.payload)["unique_id"] == f"{publisher.prefix}_gate_focus"

    with MqttCollector(broker.host, broker.port, [topic]) as watcher:
        mark = watcher.mark()
        watcher.wait_for(lambda m: m.retain, timeout=5)  # the retained copy a new subscriber gets
        watcher.client.publish(f"{ha_prefix}/status", "online", qos=1)  # Home Assistant's birth message
        again = watcher.wait_for(lambda m: m.topic == topic and not m.retain, timeout=10, start=mark)
    assert json.loads(again.payload) == json.loads(announced.payload)


def test_volatile_messages_and_command_subscriptions(broker: Mosquitto, publisher: MqttPublisher) -> None:
    received: list[tuple[str, bytes]] = []
    got = threading.Event()

    def on_command(topic: str, payload: bytes) -> None:
        received.append((topic, payload))
        got.set()

    publisher.subscribe(f"{publisher.prefix}/+/refocus", on_command)
    publisher.start()
    available = f"{publisher.prefix}/available"
    with MqttCollector(broker.host, broker.port, [f"{publisher.prefix}/stats", available]) as watcher:
        # Volatile messages are dropped while disconnected: wait until the publisher is online.
        watcher.wait_for(lambda m: m.topic == available and m.text == "online", timeout=10)
        mark = watcher.mark()
        publisher.publish_volatile(f"{publisher.prefix}/stats", '{"cameras":{}}')
        stats = watcher.wait_for(lambda m: m.topic.endswith("/stats"), timeout=10, start=mark)
        assert (stats.retain, stats.text) == (False, '{"cameras":{}}')
        # the subscription is made after connecting: retry the command until it arrives
        for _ in range(50):
            watcher.client.publish(f"{publisher.prefix}/gate/refocus", "now", qos=1)
            if got.wait(0.2):
                break
    assert received[0] == (f"{publisher.prefix}/gate/refocus", b"now")
    assert publisher.is_alive()


def test_volatile_messages_are_dropped_while_disconnected(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    pub = MqttPublisher(MqttConfig(host="127.0.0.1", port=1), outbox)
    pub.publish_volatile("x/stats", "{}")
    pub.process()
    assert pub._volatile == [] and not pub._inflight
    outbox.close()


def test_daemon_end_to_end_discovery_stats_and_refocus_command(
    broker: Mosquitto, tmp_path: Path, tiny_model: Path
) -> None:
    """`focusguard run` with a real broker: discovery, <p>/stats and a refocus command for a camera without action."""
    import subprocess
    import sys

    import yaml

    prefix = f"e2e{tmp_path.name[-8:]}"
    clip = Path(__file__).resolve().parents[2] / "demo" / "clip_focus_loss.mp4"
    url = f"file://{clip}" if clip.is_file() else f"file://{tmp_path}/missing.mp4"
    config = tmp_path / "fg.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": prefix},
                "model": {"path": str(tiny_model)},
                "state_dir": str(tmp_path / "state"),
                "homeassistant": {"prefix": f"ha{prefix}"},
                "metrics": {"stats_interval_s": 1},
                "cameras": {"gate": {"url": url}},
            }
        )
    )
    with MqttCollector(broker.host, broker.port, [f"{prefix}/#", f"ha{prefix}/#"]) as watcher:
        log = (tmp_path / "daemon.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "focusguard", "run", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            topic = f"ha{prefix}/binary_sensor/{prefix}/gate/config"
            discovery = watcher.wait_topic(topic, timeout=60)
            assert json.loads(discovery.payload)["device_class"] == "problem"
            assert wait_retained(broker.host, broker.port, topic, lambda m: m.payload == discovery.payload)
            stats = watcher.wait_topic(f"{prefix}/stats", timeout=10)
            assert set(json.loads(stats.payload)["cameras"]) == {"gate"}
            mark = watcher.mark()
            for _ in range(50):  # the daemon subscribes after connecting: repeat until it answers
                watcher.client.publish(f"{prefix}/gate/refocus", "", qos=1)
                try:
                    failed = watcher.wait_event(f"{prefix}/gate/events", "refocus_failed", timeout=0.3, start=mark)
                    break
                except TimeoutError:
                    continue
            assert "no refocus action configured" in json.loads(failed.payload)["refocus"]["error"]
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
    assert proc.returncode == 0, (tmp_path / "daemon.log").read_text()


@pytest.mark.parametrize(
    ("state", "rendered"),
    [({"tamper": "covered", "stream": "online"}, "ON"), ({"tamper": "scene_changed", "stream": "offline"}, "ON"),
     ({"tamper": None, "stream": "online"}, "OFF"), ({"stream": "online"}, "OFF"), ({"tamper": None, "stream": "offline"}, "None")],
)  # fmt: skip
def test_tamper_template_renders_like_home_assistant(state: dict[str, Any], rendered: str) -> None:
    from focusguard.delivery.discovery import TAMPER_TEMPLATE

    jinja2 = pytest.importorskip("jinja2")
    assert jinja2.Template(TAMPER_TEMPLATE).render(value_json=state) == rendered
