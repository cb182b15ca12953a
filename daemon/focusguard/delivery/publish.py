"""MQTT side of the contract (docs/DESIGN.md): availability, retained state, events via the outbox.

Owns the paho-mqtt 2.x client (VERSION2 callbacks, QoS 1): the last will
`<p>/available = offline` (retained, set before connecting), `online` after every
connect, the latest state per camera (retained, re-published after every reconnect),
and events, which are committed to the SQLite outbox first and removed only on PUBACK.

Ordering: one worker thread makes every `client.publish` call and owns all bookkeeping;
paho callbacks and the app only post messages to its queue, so no lock is ever held
across a paho call (paho calls `on_publish` under its own lock) and a PUBACK that
arrives before `publish()` returned is matched once the worker records the mid.
Per topic at most one generation is in flight: after a reconnect, paho re-sends what
was unacknowledged (in order) and new messages wait until those are acknowledged, so
an old retained state can never overwrite a newer one and events stay in order.
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from focusguard.delivery.outbox import Outbox
from focusguard.settings.config import MqttConfig

log = logging.getLogger(__name__)

QOS = 1
EVENT_WINDOW = 16  # events in flight at once
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30


@dataclass
class _Inflight:
    kind: str  # "online" | "state" | "event"
    key: str | int | None  # camera name or outbox id
    generation: int


class MqttPublisher:
    """Publishes availability, state and events; survives broker outages and restarts."""

    def __init__(self, cfg: MqttConfig, outbox: Outbox, client: Any = None, availability_topic: str | None = None) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.prefix = cfg.topic_prefix
        # `<p>/available`; one per instance when instances share a site (`<p>/instances/<id>/available`)
        self.availability_topic = availability_topic or f"{self.prefix}/available"
        self.client = client if client is not None else self._make_client()
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._worker: threading.Thread | None = None
        # Worker-owned state (touched only by the worker thread or, in tests, by `process()`).
        self.connected = False
        self._generation = 0
        self._need_online = False
        self._states: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._inflight: dict[int, _Inflight] = {}
        self._last_handed_id = 0  # outbox rows up to this id were given to paho in this process
        self._last_failure: str | None = None  # connection failure last logged (paho's thread)
        # Integrations (Home Assistant discovery, stats, commands), worker-owned like the states.
        self._retained: dict[str, str] = {}
        self._retained_dirty: set[str] = set()
        self._volatile: list[tuple[str, str]] = []
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.cfg.client_id or "", clean_session=True)
        if self.cfg.username is not None:
            client.username_pw_set(self.cfg.username, self.cfg.password)
        tls = self.cfg.tls
        if tls.enabled:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        return client

    # ----------------------------------------------------------------- API (any thread)

    def start(self) -> None:
        """Set the last will, start connecting in the background (never raises for broker trouble)."""
        self.client.will_set(self.availability_topic, "offline", qos=QOS, retain=True)
        self._worker = threading.Thread(target=self._work, name="mqtt-publisher", daemon=True)
        self._worker.start()
        log.info("MQTT: connecting to %s:%d%s", self.cfg.host, self.cfg.port, " (TLS)" if self.cfg.tls.enabled else "")
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def publish_state(self, camera: str, state: dict[str, Any]) -> None:
        """Retained QoS 1 state; only the latest per camera is kept while waiting."""
        self._inbox.put(("state", (camera, json.dumps(state, separators=(",", ":")))))

    def publish_event(self, camera: str, event: dict[str, Any]) -> int:
        """Commit the event to the outbox (durable before anything is sent), then queue it."""
        entry_id = self.outbox.add(f"{self.prefix}/{camera}/events", json.dumps(event, separators=(",", ":")))
        log.info(
            "event %s %s of %s at %s stored (outbox row %d)",
            event.get("id"), event.get("type"), camera, event.get("time"), entry_id,
        )  # fmt: skip
        self._inbox.put(("event", entry_id))
        return entry_id

    def forget_camera(self, camera: str) -> None:
        """Another instance watches `camera` now: never re-send its state (a reconnect would overwrite theirs)."""
        self._inbox.put(("forget", camera))

    def forget_retained(self, topic: str) -> None:
        """Stop re-sending a `publish_retained` message after reconnects (its camera moved to another instance)."""
        self._inbox.put(("forget_retained", topic))

    def publish_retained(self, topic: str, payload: str) -> None:
        """A retained QoS 1 message outside the camera contract (discovery); re-sent after every connect."""
        self._inbox.put(("retained", (topic, payload)))

    def republish_retained(self) -> None:
        """Send every `publish_retained` message again (Home Assistant came back online)."""
        self._inbox.put(("republish", None))

    def publish_volatile(self, topic: str, payload: str) -> None:
        """QoS 1, not retained, not stored: sent if connected, else dropped (periodic stats)."""
        self._inbox.put(("volatile", (topic, payload)))

    def subscribe(self, topic_filter: str, callback: Callable[[str, bytes], None]) -> None:
        """`callback(topic, payload)` for messages matching `topic_filter`, on paho's thread (keep it short)."""
        self._subscriptions[topic_filter] = callback
        self.client.on_message = self._on_message
        self._inbox.put(("subscribe", topic_filter))

    def is_alive(self) -> bool:
        """False once the worker thread ended (the systemd watchdog asks)."""
        return self._worker is None or self._worker.is_alive()

    def stop(self, drain_s: float = 2.0) -> None:
        """Flush briefly, publish retained `offline`, disconnect. Undelivered events stay in the outbox."""
        if self._worker is not None:
            self._inbox.put(("stop", drain_s))
            self._worker.join(drain_s + 3.0)
        if self.client.is_connected():
            info = self.client.publish(self.availability_topic, "offline", qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError) as err:
                log.warning("MQTT: could not publish offline: %s", err)
        self._handle_late_acks()
        self.client.disconnect()
        self.client.loop_stop()
        log.info("MQTT: disconnected")

    def _handle_late_acks(self) -> None:
        """PUBACKs that arrived after the worker ended: remove those events too (no duplicates on restart)."""
        while True:
            try:
                kind, value = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "ack":
                self._acknowledged(int(value))

    # ----------------------------------------------------------------- paho callbacks (network thread)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            # Bad credentials, refused, ...: paho retries on its own with capped backoff.
            self._log_failure(
                logging.ERROR, f"MQTT: broker {self.cfg.host}:{self.cfg.port} refused the connection: {reason_code}; "
                "retrying (check mqtt.username and the password)",
            )  # fmt: skip
            return
        self._last_failure = None
        self._inbox.put(("connect", None))

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        # paho calls this inside its `except OSError:` block: the exception says why.
        err = sys.exc_info()[1]
        reason = f": {err}" if err is not None else ""
        if isinstance(err, ssl.SSLError | ssl.CertificateError):
            self._log_failure(
                logging.ERROR, f"MQTT: TLS handshake with {self.cfg.host}:{self.cfg.port} failed{reason}; retrying "
                "(check mqtt.tls.ca_file, cert_file, key_file and the broker's certificate)",
            )  # fmt: skip
        else:
            self._log_failure(
                logging.WARNING, f"MQTT: cannot connect to {self.cfg.host}:{self.cfg.port}{reason}; retrying"
            )

    def _log_failure(self, level: int, text: str) -> None:
        """Log a connection failure; the same failure again (every retry) only at debug level."""
        log.log(logging.DEBUG if text == self._last_failure else level, text)
        self._last_failure = text

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._inbox.put(("disconnect", reason_code))

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        self._inbox.put(("ack", mid))

    # ----------------------------------------------------------------- worker

    def _work(self) -> None:
        while True:
            kind, value = self._inbox.get()
            if kind == "stop":
                self._drain(float(value))
                return
            self._handle(kind, value)
            self.process()

    def process(self) -> None:
        """Handle everything queued, then hand eligible messages to paho (the worker's step; tests call it)."""
        while True:
            try:
                kind, value = self._inbox.get_nowait()
            except queue.Empty:
                break
            if kind == "stop":
                self._inbox.put((kind, value))  # leave it for the worker loop
                break
            self._handle(kind, value)
        self._pump()

    def _drain(self, drain_s: float) -> None:
        """Keep working until nothing is in flight or `drain_s` passed (on stop)."""
        self.process()
        deadline = time.monotonic() + drain_s
        while self.connected and self._inflight:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                kind, value = self._inbox.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            if kind != "stop":
                self._handle(kind, value)
                self._pump()

    def _handle(self, kind: str, value: Any) -> None:
        if kind == "connect":
            self.connected = True
            self._generation += 1
            self._need_online = True
            self._dirty.update(self._states)  # retained state is re-published after every reconnect
            self._retained_dirty.update(self._retained)
            self._subscribe(list(self._subscriptions))
            log.info("MQTT: connected to %s:%d", self.cfg.host, self.cfg.port)
        elif kind == "disconnect":
            if self.connected:
                log.warning("MQTT: disconnected from %s:%d (%s); reconnecting", self.cfg.host, self.cfg.port, value)
            self.connected = False
        elif kind == "ack":
            self._acknowledged(int(value))
        elif kind == "state":
            camera, payload = value
            self._states[camera] = payload
            self._dirty.add(camera)
        else:
            self._handle_extra(kind, value)
        # "event": already in the outbox; _pump() picks it up.

    def _acknowledged(self, mid: int) -> None:
        done = self._inflight.pop(mid, None)
        if done is not None and done.kind == "event":
            self.outbox.remove(int(done.key or 0))

    def _pump(self) -> None:
        if not self.connected:
            return
        if self._need_online:
            self._need_online = False
            self._send("online", None, self.availability_topic, "online", retain=True)
        busy = {f.key for f in self._inflight.values() if f.kind == "state"}
        for camera in sorted(self._dirty - busy):
            self._dirty.discard(camera)
            self._send("state", camera, f"{self.prefix}/{camera}/state", self._states[camera], retain=True)
        self._pump_extra()
        self._pump_events()

    def _pump_events(self) -> None:
        events = [f for f in self._inflight.values() if f.kind == "event"]
        if any(f.generation != self._generation for f in events):
            return  # paho is re-sending older events: keep the order, wait for their PUBACKs
        room = EVENT_WINDOW - len(events)
        if room <= 0:
            return
        for entry in self.outbox.pending(after_id=self._last_handed_id, limit=room):
            if not self._send("event", entry.id, entry.topic, entry.payload, retain=False):
                break
            self._last_handed_id = entry.id

    def _send(self, kind: str, key: str | int | None, topic: str, payload: str, retain: bool) -> bool:
        try:
            info = self.client.publish(topic, payload, qos=QOS, retain=retain)
        except (ValueError, TypeError) as err:
            log.error("MQTT: cannot publish to %s: %s", topic, err)
            return False
        # NO_CONN still queues the message in paho, which sends it after reconnecting.
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.warning("MQTT: publish to %s failed: %s", topic, mqtt.error_string(info.rc))
            if kind == "state" and isinstance(key, str):
                self._dirty.add(key)
            return False
        self._inflight[info.mid] = _Inflight(kind, key, self._generation)
        return True

    # ----------------------------------------------------------------- integrations (worker)

    def _handle_extra(self, kind: str, value: Any) -> None:
        if kind == "retained":
            topic, payload = value
            self._retained[topic] = payload
            self._retained_dirty.add(topic)
        elif kind == "republish":
            self._retained_dirty.update(self._retained)
        elif kind == "forget":
            self._states.pop(value, None)
            self._dirty.discard(value)
        elif kind == "forget_retained":
            self._retained.pop(value, None)
            self._retained_dirty.discard(value)
        elif kind == "volatile" and self.connected:
            self._volatile.append(value)
        elif kind == "subscribe" and self.connected:
            self._subscribe([value])

    def _pump_extra(self) -> None:
        busy = {f.key for f in self._inflight.values() if f.kind == "retained"}
        for topic in sorted(self._retained_dirty - busy):
            if self._send("retained", topic, topic, self._retained[topic], retain=True):
                self._retained_dirty.discard(topic)
        volatile, self._volatile = self._volatile, []
        for topic, payload in volatile:
            self._send("volatile", None, topic, payload, retain=False)

    def _subscribe(self, topic_filters: list[str]) -> None:
        if not topic_filters:
            return
        try:
            rc, _mid = self.client.subscribe([(f, QOS) for f in topic_filters])
        except ValueError as err:
            log.error("MQTT: cannot subscribe to %s: %s", topic_filters, err)
            return
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("MQTT: subscribe to %s failed: %s", topic_filters, mqtt.error_string(rc))

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """paho's network thread: hand the message to the integration that subscribed (it must not block)."""
        for topic_filter, callback in list(self._subscriptions.items()):
            if mqtt.topic_matches_sub(topic_filter, message.topic):
                try:
                    callback(message.topic, bytes(message.payload))
                except Exception:  # an integration bug must not kill paho's thread
                    log.exception("MQTT: handler for %s failed", message.topic)
