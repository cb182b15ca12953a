"""A private mosquitto broker and an MQTT collector for tests and the demo.

``Mosquitto`` runs Debian's broker in the foreground on a free loopback port with a
generated config (``listener PORT 127.0.0.1``, anonymous, no persistence, log to
stderr, ``user <current user>`` so that running as root does not drop to user
``mosquitto``).  ``MqttCollector`` is a paho-mqtt 2.x (VERSION2 callbacks) subscriber
that keeps every message and lets a test wait for one matching a predicate.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import free_port, stop_process, wait_port


def mosquitto_binary() -> str | None:
    for cand in ("mosquitto", "/usr/sbin/mosquitto"):
        p = shutil.which(cand)
        if p:
            return p
    return None


class Mosquitto:
    """``with Mosquitto(workdir) as broker: broker.port``"""

    def __init__(self, workdir: Path | str, port: int = 0, host: str = "127.0.0.1", extra_config: str = "") -> None:
        self.workdir = Path(workdir)
        self.host = host
        self.port = port
        self.extra_config = extra_config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto not installed (apt-get install mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        fixed = self.port != 0
        last = ""
        for _attempt in range(1 if fixed else 5):
            port = self.port if fixed else free_port(self.host)
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(
                f"listener {port} {self.host}\n"
                "allow_anonymous true\n"
                "persistence false\n"
                "log_dest stderr\n"
                "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                f"user {pwd.getpwuid(os.geteuid()).pw_name}\n" + self.extra_config
            )
            log = self.log_path.open("ab")
            self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            log.close()
            if wait_port(self.host, port, timeout, self.proc):
                self.port = port
                return self
            last = self.log_tail()
            stop_process(self.proc)
            self.proc = None
        raise RuntimeError(f"mosquitto did not start: {last}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    t: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.payload)

    def __repr__(self) -> str:
        body = self.text if len(self.text) < 160 else self.text[:157] + "..."
        return f"<{self.topic} retain={int(self.retain)} {body}>"


class MqttCollector:
    """Subscribes to ``topics`` and records every message (thread-safe).

    ``wait_for(pred, timeout, start=0)`` returns the first recorded message (from index
    ``start`` on) for which ``pred(msg)`` is true, waiting up to ``timeout`` seconds;
    raises ``TimeoutError`` listing what did arrive.  ``mark()`` is the current count, to
    wait only for messages that arrive after it.
    """

    def __init__(self, host: str, port: int, topics: Iterable[str] = ("#",), client_id: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.host = host
        self.port = port
        self.topics = list(topics)
        self._cond = threading.Condition()
        self._msgs: list[Message] = []
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self._sub_mid: int | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"fgtest-{uuid.uuid4().hex[:10]}"
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # paho callbacks (network thread)
    def _on_connect(self, client: Any, _ud: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        if reason_code.is_failure:
            return
        self._connected.set()
        _rc, self._sub_mid = client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, _c: Any, _ud: Any, mid: int, _codes: Any, _props: Any) -> None:
        if mid == self._sub_mid:
            self._subscribed.set()

    def _on_message(self, _c: Any, _ud: Any, msg: Any) -> None:
        m = Message(msg.topic, bytes(msg.payload), bool(msg.retain), int(msg.qos))
        with self._cond:
            self._msgs.append(m)
            self._cond.notify_all()

    # API
    def start(self, timeout: float = 5.0) -> MqttCollector:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(
                f"MQTT subscribe to {self.topics} on {self.host}:{self.port} did not complete in {timeout}s"
            )
        return self

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def __enter__(self) -> MqttCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mark(self) -> int:
        with self._cond:
            return len(self._msgs)

    def messages(self, topic: str | None = None, start: int = 0) -> list[Message]:
        with self._cond:
            return [m for m in self._msgs[start:] if topic is None or m.topic == topic]

    def by_topic(self) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = {}
        for m in self.messages():
            out.setdefault(m.topic, []).append(m)
        return out

    def last(self, topic: str) -> Message | None:
        ms = self.messages(topic)
        return ms[-1] if ms else None

    def wait_for(
        self, pred: Callable[[Message], bool], timeout: float, start: int = 0, what: str = "message"
    ) -> Message:
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self._msgs):
                    m = self._msgs[i]
                    i += 1
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        raise TimeoutError(f"no {what} within {timeout:g}s; got:\n" + self.summary(start))

    def wait_topic(
        self, topic: str, pred: Callable[[Message], bool] | None = None, timeout: float = 10.0, start: int = 0
    ) -> Message:
        return self.wait_for(
            lambda m: m.topic == topic and (pred is None or pred(m)), timeout, start, what=f"message on {topic}"
        )

    def wait_event(self, topic: str, event_type: str, timeout: float, start: int = 0) -> Message:
        """Wait for a JSON event ``{"type": event_type, ...}`` on ``topic``."""

        def pred(m: Message) -> bool:
            if m.topic != topic:
                return False
            try:
                return bool(m.json().get("type") == event_type)
            except (ValueError, AttributeError):
                return False

        return self.wait_for(pred, timeout, start, what=f"{event_type} event on {topic}")

    def events(self, topic: str, start: int = 0) -> list[dict[str, Any]]:
        out = []
        for m in self.messages(topic, start):
            try:
                out.append(m.json())
            except ValueError:
                out.append({"type": None, "raw": m.text})
        return out

    def summary(self, start: int = 0, limit: int = 40) -> str:
        ms = self.messages(start=start)
        lines = [f"  {m!r}" for m in ms[-limit:]]
        if len(ms) > limit:
            lines.insert(0, f"  ... {len(ms) - limit} earlier")
        return "\n".join(lines) or "  (nothing)"


def retained(host: str, port: int, topic: str, timeout: float = 2.0) -> Message | None:
    """The retained message on ``topic`` as a fresh subscriber sees it (None if none)."""
    with MqttCollector(host, port, [topic]) as c:
        try:
            return c.wait_for(lambda m: m.retain and m.topic == topic, timeout)
        except TimeoutError:
            return None


def wait_retained(host: str, port: int, topic: str, pred: Callable[[Message], bool], timeout: float = 5.0) -> Message:
    """Poll with fresh subscribers until the retained message on ``topic`` matches."""
    deadline = time.monotonic() + timeout
    last: Message | None = None
    while True:
        last = retained(host, port, topic, timeout=0.5)
        if last is not None and pred(last):
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"retained {topic} never matched in {timeout:g}s; last: {last!r}")
        time.sleep(0.2)


def mqtt_connectable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
