"""sd_notify and the systemd watchdog: real datagrams on a unix socket, pings only while the pipeline is alive."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from focusguard.operate.app import FocusGuard
from focusguard.operate.notify import notify, watchdog_timeout_s
from focusguard.operate.watchdog import Heartbeat, SystemdWatchdog, pipeline_problems
from focusguard.settings.config import CameraConfig, parse_config
from focusguard.sources.grab import Frame
from tests.unit.conftest import FakeClock
from tests.unit.test_app import FakeClassifier, FakePublisher, Rig


class NotifySocket:
    """What systemd does: a bound unix datagram socket; collects every notification line."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.05)
        self.address = address
        self.lines: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            now = time.monotonic()
            self.lines.extend((now, line) for line in data.decode().split("\n"))

    def wait_for(self, line: str, timeout: float = 5.0, after: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, got in list(self.lines):
                if got == line and when >= after:
                    return when
            time.sleep(0.01)
        raise TimeoutError(f"no {line!r} within {timeout} s; got {[line for _, line in self.lines]}")

    def count(self, line: str, after: float = 0.0) -> int:
        return sum(1 for when, got in list(self.lines) if got == line and when >= after)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    receiver = NotifySocket(str(tmp_path / "notify.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", receiver.address)
    yield receiver
    receiver.close()


def test_notify_sends_one_datagram_to_a_path_socket(notify_socket: NotifySocket) -> None:
    assert notify("READY=1", "STATUS=hello")
    notify_socket.wait_for("READY=1")
    notify_socket.wait_for("STATUS=hello")


def test_notify_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = NotifySocket(f"@focusguard-test-{uuid.uuid4().hex}")
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", receiver.address)
        assert notify("WATCHDOG=1")
        receiver.wait_for("WATCHDOG=1")
    finally:
        receiver.close()


def test_notify_outside_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify("READY=1") is False  # logged at debug, never raised
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert notify("READY=1") is False


def test_watchdog_timeout_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_timeout_s() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_timeout_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_timeout_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_timeout_s() is None
    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("WATCHDOG_USEC", "garbage")
    assert watchdog_timeout_s() is None


def test_heartbeat_stall_rules() -> None:
    clock = FakeClock()
    beat = Heartbeat(clock)
    assert beat.stalled(interval_s=1, stall_s=30) is None
    clock.advance(30.5)
    assert beat.stalled(interval_s=1, stall_s=30) is None  # idle up to interval + stall is fine
    clock.advance(1)
    assert "no analysis step for 31.5 s" in (beat.stalled(interval_s=1, stall_s=30) or "")
    beat.begin()
    clock.advance(29)
    assert beat.stalled(interval_s=1, stall_s=30) is None  # a slow step is not yet a hang
    clock.advance(2)
    assert "inside one analysis step for 31.0 s" in (beat.stalled(interval_s=1, stall_s=30) or "")
    beat.end()
    assert beat.stalled(interval_s=1, stall_s=30) is None


def test_lost_stream_keeps_the_pipeline_alive_but_a_hang_does_not() -> None:
    rig = Rig(parse_config({"cameras": {"a": {"url": "rtsp://h/a"}}}))
    rig.steps(5, a=0)
    assert pipeline_problems(rig.app, stall_s=10) == []
    rig.steps(40)  # no frames at all: stream_lost, yet every tick completes
    assert "stream_lost" in rig.publisher.event_types("a")
    assert pipeline_problems(rig.app, stall_s=10) == []
    rig.app.monitors["a"].heartbeat.begin()  # a tick that never returns
    rig.clock.advance(11)
    assert pipeline_problems(rig.app, stall_s=10) == ["camera a: inside one analysis step for 11.0 s"]


def test_a_dead_publisher_worker_stalls_the_pipeline() -> None:
    rig = Rig(parse_config({"cameras": {"a": {"url": "rtsp://h/a"}}}))
    rig.publisher.is_alive = lambda: False  # type: ignore[attr-defined]
    assert pipeline_problems(rig.app, stall_s=10) == ["the MQTT publisher's worker thread has ended"]


def test_check_pings_only_while_alive(notify_socket: NotifySocket) -> None:
    rig = Rig(parse_config({"cameras": {"a": {"url": "rtsp://h/a"}}}))
    watchdog = SystemdWatchdog(rig.app, timeout_s=None, stall_s=5)
    assert watchdog.check()
    notify_socket.wait_for("WATCHDOG=1")
    rig.app.monitors["a"].heartbeat.begin()
    rig.clock.advance(6)
    assert not watchdog.check() and watchdog.stalled
    notify_socket.wait_for("STATUS=stalled: camera a: inside one analysis step for 6.0 s")
    rig.app.monitors["a"].heartbeat.end()
    resumed = time.monotonic()
    assert watchdog.check()
    notify_socket.wait_for("WATCHDOG=1", after=resumed)
    assert notify_socket.count("WATCHDOG=1") == 2


class LiveSource:
    """A camera with a fresh textured frame at every look (real clock)."""

    def __init__(self) -> None:
        self.n = 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def latest(self) -> Frame:
        self.n += 1
        image = np.random.default_rng(self.n).integers(0, 256, (90, 160, 3), dtype=np.uint8)
        image[:8, :8] = 0  # FakeClassifier: sharp
        return Frame(image_bgr=image, monotonic=time.monotonic(), wall=time.time())

    @property
    def last_frame_monotonic(self) -> float:
        return time.monotonic()


class StallableClassifier(FakeClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.go.set()

    def classify(self, rgb448: np.ndarray) -> np.ndarray:
        self.go.wait()  # cleared by the test: inference hangs like a wedged accelerator
        return super().classify(rgb448)


def test_running_app_sends_ready_pings_while_alive_and_stops_when_stalled(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # WatchdogSec=1: ping every 0.5 s, a step stuck 1 s is a hang
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    classifier = StallableClassifier()
    # cnn_refresh_s 0: inference on every analysis, so the test can wedge it (the cascade skips it)
    config = parse_config({"cameras": {"a": {"url": "rtsp://h/a", "interval_s": 0.05, "stream_timeout_s": 5,
                                             "cnn_refresh_s": 0}}})

    def source(camera: CameraConfig) -> LiveSource:
        return LiveSource()

    app = FocusGuard(config, classifier=classifier, publisher=FakePublisher(), grabber_factory=source)
    app.start()
    try:
        ready = notify_socket.wait_for("READY=1")
        notify_socket.wait_for("WATCHDOG=1", after=ready)
        deadline = time.monotonic() + 10
        while notify_socket.count("WATCHDOG=1") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert classifier.calls > 3 and notify_socket.count("WATCHDOG=1") >= 3

        classifier.go.clear()  # the pipeline hangs inside inference
        stalled_at = _wait_status_prefix(notify_socket, "STATUS=stalled: camera a: inside one analysis step")
        quiet_from = stalled_at + 0.05
        time.sleep(1.6)  # three ping periods
        assert notify_socket.count("WATCHDOG=1", after=quiet_from) == 0

        classifier.go.set()  # it recovers: pings resume
        notify_socket.wait_for("WATCHDOG=1", after=time.monotonic(), timeout=3)
    finally:
        classifier.go.set()
        app.shutdown()
    notify_socket.wait_for("STOPPING=1")


def _wait_status_prefix(receiver: NotifySocket, prefix: str, timeout: float = 5.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for when, line in list(receiver.lines):
            if line.startswith(prefix):
                return when
        time.sleep(0.01)
    raise TimeoutError(f"no {prefix!r}; got {[line for _, line in receiver.lines]}")
