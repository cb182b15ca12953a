"""Home Assistant MQTT discovery: per camera a focus `binary_sensor` (device class `problem`) and a
tamper one (device class `tamper`).

Owns the discovery payloads and `HomeAssistantDiscovery` (app extension): each config
is published retained on `<ha>/binary_sensor/<node_id>/<camera>/config` (the
publisher re-sends it after every connect) and re-announced when Home Assistant's
birth message (`<ha>/status` = `online`) arrives. The sensor is ON while the
camera's retained state says `"focus": "lost"`, OFF for `ok` and unknown otherwise;
its attributes are the state JSON; it is available while `<p>/available` is
`online`. The tamper sensor (`<camera>_tamper`, same device) is ON while the state's `tamper` is set
(lens covered, view changed: tamper.py), OFF otherwise while the stream is online. `node_id` is the
topic prefix with characters outside `[a-zA-Z0-9_-]`
replaced by `_`, so two daemons with different prefixes never collide.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from focusguard import __version__

log = logging.getLogger(__name__)

FOCUS_TEMPLATE = "{% if value_json.focus == 'lost' %}ON{% elif value_json.focus == 'ok' %}OFF{% else %}None{% endif %}"
TAMPER_TEMPLATE = "{% if value_json.tamper %}ON{% elif value_json.stream == 'online' %}OFF{% else %}None{% endif %}"


def node_id(topic_prefix: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", topic_prefix)


def config_topic(discovery_prefix: str, topic_prefix: str, camera: str) -> str:
    return f"{discovery_prefix}/binary_sensor/{node_id(topic_prefix)}/{camera}/config"


def tamper_sensor_config(topic_prefix: str, camera: str) -> dict[str, Any]:
    """The discovery payload of one camera's tamper `binary_sensor` (same device as its focus sensor)."""
    config = focus_sensor_config(topic_prefix, camera)
    config.update({"name": "Tamper", "unique_id": f"{node_id(topic_prefix)}_{camera}_tamper",
                   "device_class": "tamper", "value_template": TAMPER_TEMPLATE})  # fmt: skip
    return config


def focus_sensor_config(topic_prefix: str, camera: str) -> dict[str, Any]:
    """The discovery payload of one camera's focus `binary_sensor`."""
    node = node_id(topic_prefix)
    state_topic = f"{topic_prefix}/{camera}/state"
    return {
        "name": "Focus",
        "unique_id": f"{node}_{camera}_focus",
        "device_class": "problem",
        "state_topic": state_topic,
        "value_template": FOCUS_TEMPLATE,
        "json_attributes_topic": state_topic,
        "availability": [
            {"topic": f"{topic_prefix}/available", "payload_available": "online", "payload_not_available": "offline"}
        ],
        "qos": 1,
        "device": {
            "identifiers": [f"{node}_{camera}"],
            "name": camera,
            "manufacturer": "focusguard",
            "model": "focusguard focus monitor",
            "sw_version": __version__,
        },
        "origin": {"name": "focusguard", "sw_version": __version__},
    }


class HomeAssistantDiscovery:
    """App extension: announce every camera, again whenever Home Assistant comes online."""

    def __init__(self, publisher: Any, discovery_prefix: str, topic_prefix: str, cameras: Sequence[str]) -> None:
        self.publisher = publisher
        self.status_topic = f"{discovery_prefix}/status"
        self.messages = {
            config_topic(discovery_prefix, topic_prefix, camera): json.dumps(
                focus_sensor_config(topic_prefix, camera), separators=(",", ":")
            )
            for camera in cameras
        }
        self.messages.update({
            config_topic(discovery_prefix, topic_prefix, f"{camera}_tamper"): json.dumps(
                tamper_sensor_config(topic_prefix, camera), separators=(",", ":")
            )
            for camera in cameras
        })  # fmt: skip

    def start(self) -> None:
        for topic, payload in self.messages.items():
            self.publisher.publish_retained(topic, payload)
        self.publisher.subscribe(self.status_topic, self._on_status)

    def stop(self) -> None:
        pass

    def _on_status(self, topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            log.info("Home Assistant is online: re-announcing %d camera(s)", len(self.messages))
            self.publisher.republish_retained()
