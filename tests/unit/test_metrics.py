"""`<p>/stats` snapshots, the stats reporter, the optional Prometheus endpoint and which extensions run."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from typing import Any

import pytest

from focusguard.common.errors import ConfigError
from focusguard.delivery.discovery import HomeAssistantDiscovery
from focusguard.delivery.metrics import StatsCollector, StatsReporter
from focusguard.operate.extensions import build_extensions
from focusguard.operate.refocus import RefocusService
from focusguard.operate.watchdog import SystemdWatchdog
from focusguard.settings.config import parse_config
from tests.unit.conftest import FakeClock
from tests.unit.test_app import BLURRY, CNN_CONFIG, SHARP, Rig, scene

CONFIG = CNN_CONFIG


class Outbox:
    dropped = 3

    def __len__(self) -> int:
        return 7


def make_rig(**extra: Any) -> Rig:
    rig = Rig(parse_config({**CONFIG, **extra}))
    rig.publisher.outbox = Outbox()  # type: ignore[attr-defined]
    rig.volatile: list[tuple[str, str]] = []  # type: ignore[misc]
    rig.publisher.publish_volatile = lambda topic, payload: rig.volatile.append((topic, payload))  # type: ignore[attr-defined]
    return rig


def test_snapshot_rates_over_the_last_period() -> None:
    rig = make_rig()
    clock = FakeClock()
    collector = StatsCollector(rig.app, clock=clock, wall_clock=lambda: 0.0)
    rig.steps(10, a=SHARP)
    clock.advance(10)
    first = collector.snapshot()
    assert first["time"] == "1970-01-01T00:00:00.000Z" and first["uptime_s"] == 10.0
    assert (first["outbox_depth"], first["outbox_dropped"]) == (7, 3)
    a, b = first["cameras"]["a"], first["cameras"]["b"]
    assert (a["analyses"], a["analyses_per_s"], a["stream"], a["focus"]) == (10, 1.0, "online", "ok")
    assert a["inference_ms"] is not None and a["inference_ms"] >= 0
    assert (b["analyses"], b["analyses_per_s"], b["inference_ms"], b["focus"]) == (0, 0.0, None, "unknown")
    assert a["reconnects"] is None  # the fake source does not count them

    rig.sources["a"].reconnects = 4  # type: ignore[attr-defined]
    rig.steps(10, a=BLURRY)
    clock.advance(20)
    second = collector.snapshot()["cameras"]["a"]
    assert (second["analyses"], second["analyses_per_s"], second["focus"]) == (20, 0.5, "lost")
    assert second["reconnects"] == 4
    assert json.loads(json.dumps(second)) == second


def test_snapshot_counts_the_cascades_cnn_runs_and_skips(tmp_path: Any) -> None:
    """The default detector (fusion): its learning frames run the CNN, settled sharp frames skip it;
    a camera with another detector reports None."""
    import numpy as np

    rig = Rig(parse_config({"state_dir": str(tmp_path / "state"),
                            "cameras": {"a": {"url": "rtsp://h/a"}, "b": {"url": "rtsp://h/b", "detector": "cnn"}}}))
    view = scene(np.random.default_rng(3))
    noise = np.random.default_rng(4)
    for _ in range(12):
        image = np.clip(view + noise.normal(0, 1.0, view.shape), 0, 255).astype(np.uint8)
        image[:8, :8] = SHARP
        rig.clock.advance(1.0)
        rig.sources["a"].show(image)
        rig.app.tick_all()
    a, b = (StatsCollector(rig.app, clock=rig.clock).snapshot()["cameras"][n] for n in ("a", "b"))
    assert a["cnn_runs"] >= 5 and a["cnn_skipped"] >= 1 and a["cnn_runs"] + a["cnn_skipped"] == 12, a
    assert (b["cnn_runs"], b["cnn_skipped"]) == (None, None)


def test_reporter_publishes_on_the_stats_topic() -> None:
    rig = make_rig()
    reporter = StatsReporter(rig.app, "focusguard/stats", 60)
    snapshot = reporter.publish_once()
    ((topic, payload),) = rig.volatile  # type: ignore[attr-defined]
    assert topic == "focusguard/stats" and json.loads(payload) == snapshot
    assert set(snapshot["cameras"]) == {"a", "b"}


def test_reporter_thread_publishes_every_interval() -> None:
    rig = make_rig()
    reporter = StatsReporter(rig.app, "focusguard/stats", 0.05)
    reporter.start()
    try:
        deadline = time.monotonic() + 5
        while len(rig.volatile) < 2 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
    finally:
        reporter.stop()
    assert len(rig.volatile) >= 2  # type: ignore[attr-defined]


def test_extensions_from_config() -> None:
    class FullPublisher:
        def publish_retained(self, topic: str, payload: str) -> None: ...
        def republish_retained(self) -> None: ...
        def publish_volatile(self, topic: str, payload: str) -> None: ...
        def subscribe(self, topic_filter: str, callback: Any) -> None: ...

    rig = make_rig()
    rig.app.publisher = FullPublisher()  # type: ignore[assignment]
    kinds = [type(e) for e in build_extensions(rig.app)]
    assert kinds == [RefocusService, HomeAssistantDiscovery, StatsReporter, SystemdWatchdog]  # watchdog last: READY

    rig = make_rig(homeassistant={"discovery": False}, metrics={"stats_interval_s": 0})
    rig.app.publisher = FullPublisher()  # type: ignore[assignment]
    assert [type(e) for e in build_extensions(rig.app)] == [RefocusService, SystemdWatchdog]

    rig = Rig(parse_config(CONFIG))  # a publisher without the MQTT extras (test doubles) gets none of them
    assert [type(e) for e in build_extensions(rig.app)] == [RefocusService, SystemdWatchdog]


def test_app_start_and_shutdown_run_the_extensions() -> None:
    rig = make_rig()
    calls: list[str] = []

    class Probe:
        def __init__(self, name: str) -> None:
            self.name = name

        def start(self) -> None:
            calls.append(f"start {self.name}")

        def stop(self) -> None:
            calls.append(f"stop {self.name}")
            raise RuntimeError("a failing stop must not block the others")

    rig.app.extensions = [Probe("one"), Probe("two")]
    rig.app.start()
    rig.app.shutdown()
    assert calls == ["start one", "start two", "stop two", "stop one"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_prometheus_endpoint() -> None:
    pytest.importorskip("prometheus_client")  # the optional extra [metrics]
    port = _free_port()
    rig = make_rig(metrics={"prometheus_port": port, "prometheus_host": "127.0.0.1"})
    rig.steps(10, a=BLURRY)
    rig.sources["a"].reconnects = 2  # type: ignore[attr-defined]
    (exporter,) = [e for e in build_extensions(rig.app) if type(e).__name__ == "PrometheusExporter"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        exporter.stop()
    assert 'focusguard_analyses_total{camera="a"} 10.0' in text
    assert 'focusguard_analyses_total{camera="b"} 0.0' in text
    assert 'focusguard_inference_seconds_total{camera="a"}' in text
    assert 'focusguard_stream_reconnects_total{camera="a"} 2.0' in text
    assert 'focusguard_stream_up{camera="a"} 1.0' in text and 'focusguard_stream_up{camera="b"} 0.0' in text
    assert 'focusguard_focus_lost{camera="a"} 1.0' in text
    assert 'focusguard_focus_state{camera="b",state="unknown"} 1.0' in text
    assert "focusguard_outbox_depth 7.0" in text and "focusguard_outbox_dropped_total 3.0" in text
    assert "focusguard_build_info{version=" in text
    assert "focusguard_cnn_inferences_total{camera=" not in text  # no fusion camera in this config


def test_prometheus_port_taken_is_a_config_error() -> None:
    pytest.importorskip("prometheus_client")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rig = make_rig(metrics={"prometheus_port": port, "prometheus_host": "127.0.0.1"})
        with pytest.raises(ConfigError) as info:
            build_extensions(rig.app)
    assert info.value.key == "metrics.prometheus_port" and "cannot listen on 127.0.0.1" in info.value.problem


def test_missing_prometheus_client_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails like when not installed
    rig = make_rig(metrics={"prometheus_port": _free_port()})
    with pytest.raises(ConfigError, match=r"metrics\.prometheus_port: needs prometheus-client"):
        build_extensions(rig.app)
