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


def tamper_sensor_config(topic_prefix: str, camera: str, availability_topic: str | None = None) -> dict[str, Any]:
    """The discovery payload of one camera's tamper `binary_sensor` (same device as its focus sensor)."""
    config = focus_sensor_config(topic_prefix, camera, availability_topic)
    config.update({"name": "Tamper", "unique_id": f"{node_id(topic_prefix)}_{camera}_tamper",
                   "device_class": "tamper", "value_template": TAMPER_TEMPLATE})  # fmt: skip
    return config


def focus_sensor_config(topic_prefix: str, camera: str, availability_topic: str | None = None) -> dict[str, Any]:
    """The discovery payload of one camera's focus `binary_sensor`; available while `availability_topic`
    (default `<p>/available`; with coordination the owner instance's) says `online`."""
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
            {"topic": availability_topic or f"{topic_prefix}/available", "payload_available": "online", "payload_not_available": "offline"}
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
    """App extension: announce every camera, again whenever Home Assistant comes online.

    With coordination, an instance announces only the cameras it watches, with its own
    availability topic, at the moment it takes one (`camera_added`): Home Assistant then shows
    a camera unavailable exactly while no live instance watches it. `camera_removed` stops
    re-sending a camera's configs here (the next owner's replace them)."""

    def __init__(self, publisher: Any, discovery_prefix: str, topic_prefix: str, cameras: Sequence[str],
                 availability_topic: str | None = None, dynamic: bool = False) -> None:
        self.publisher = publisher
        self.status_topic = f"{discovery_prefix}/status"
        self.discovery_prefix, self.topic_prefix, self.availability_topic = discovery_prefix, topic_prefix, \
            availability_topic
        self.dynamic = dynamic
        self.messages: dict[str, str] = {}
        for part in (0, 1):  # every focus sensor first, then the tamper ones
            for camera in cameras:
                self.messages.update([list(self._configs(camera).items())[part]])
        self._started = False

    def _configs(self, camera: str) -> dict[str, str]:
        prefixes, avail = (self.discovery_prefix, self.topic_prefix), self.availability_topic
        return {
            config_topic(*prefixes, camera): _compact(focus_sensor_config(self.topic_prefix, camera, avail)),
            config_topic(*prefixes, f"{camera}_tamper"): _compact(tamper_sensor_config(self.topic_prefix, camera, avail)),
        }

    def start(self) -> None:
        for topic, payload in self.messages.items():
            self.publisher.publish_retained(topic, payload)
        self.publisher.subscribe(self.status_topic, self._on_status)
        self._started = True

    def stop(self) -> None:
        pass

    def camera_added(self, monitor: Any) -> None:
        if not self.dynamic:
            return
        configs = self._configs(monitor.camera.name)
        self.messages.update(configs)
        for topic, payload in configs.items():
            self.publisher.publish_retained(topic, payload)

    def camera_removed(self, camera: str) -> None:
        if not self.dynamic:
            return
        for topic in self._configs(camera):
            self.messages.pop(topic, None)
            self.publisher.forget_retained(topic)

    def _on_status(self, topic: str, payload: bytes) -> None:
        if payload.strip().lower() == b"online":
            log.info("Home Assistant is online: re-announcing %d camera(s)", len(self.messages) // 2)
            self.publisher.republish_retained()


def _compact(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))
