"""Operational numbers: `<p>/stats` over MQTT every `stats_interval_s` and an optional Prometheus endpoint.

Owns `CameraStats` (counted by each camera loop), `StatsCollector.snapshot()` (the
JSON of `<p>/stats`: per camera analyses/s and mean inference ms since the previous
snapshot, totals, reconnects, stream and focus state, the fusion cascade's CNN runs and skips;
outbox depth and drops),
`StatsReporter` (app extension publishing it) and `PrometheusExporter` (app
extension; `prometheus-client` is the optional extra `[metrics]`, imported only when
`metrics.prometheus_port` is set). Both read the same live objects; nothing here
touches the analysis path beyond two additions per analysis.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from focusguard import __version__
from focusguard.common.events import iso_utc

log = logging.getLogger(__name__)

FOCUS_STATES = ("ok", "lost", "unknown")


@dataclass
class CameraStats:
    """Written by one camera loop, read by the reporters (plain attribute reads: no lock needed)."""

    analyses: int = 0
    inference_s_total: float = 0.0
    last_inference_s: float | None = None

    def record(self, inference_s: float) -> None:
        self.inference_s_total += inference_s
        self.last_inference_s = inference_s
        self.analyses += 1


def _outbox(app: Any) -> Any:
    return getattr(app.publisher, "outbox", None)


def reconnects(monitor: Any) -> int | None:
    """Connection attempts after a disconnect or failed open, when the frame source counts them."""
    value = getattr(monitor.source, "reconnects", None)
    return int(value) if isinstance(value, int) else None


class StatsCollector:
    """Builds `<p>/stats` payloads; rates are over the time since the previous snapshot."""

    def __init__(
        self, app: Any, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self._clock, self._wall_clock = clock, wall_clock
        self._started = clock()
        self._previous: dict[str, tuple[float, int, float]] = {}

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        cameras: dict[str, Any] = {}
        for name, monitor in list(self.app.monitors.items()):
            stats: CameraStats = monitor.stats
            since, count, spent = self._previous.get(name, (self._started, 0, 0.0))
            done = stats.analyses - count
            elapsed = now - since
            cameras[name] = {
                "analyses_per_s": round(done / elapsed, 3) if elapsed > 0 else 0.0,
                "inference_ms": round((stats.inference_s_total - spent) / done * 1000, 1) if done else None,
                "analyses": stats.analyses,
                "reconnects": reconnects(monitor),
                "stream": monitor.stream,
                "focus": monitor.decider.focus,
                # the fusion cascade (analysis/fusion.py): CNN inferences run and skipped, since start
                "cnn_runs": getattr(monitor.detector, "cnn_runs", None),
                "cnn_skipped": getattr(monitor.detector, "cnn_skips", None),
            }
            self._previous[name] = (now, stats.analyses, stats.inference_s_total)
        outbox = _outbox(self.app)
        return {
            "time": iso_utc(self._wall_clock()),
            "version": __version__,
            "uptime_s": round(now - self._started, 1),
            "outbox_depth": len(outbox) if outbox is not None else None,
            "outbox_dropped": getattr(outbox, "dropped", None),
            # undelivered events of another config in this state directory: kept, never sent here
            "outbox_foreign": sum(getattr(outbox, "foreign", {}).values()) if outbox is not None else None,
            "cameras": cameras,
        }


class StatsReporter:
    """App extension: publishes a snapshot on `<p>/stats` every `interval_s` (not retained)."""

    def __init__(self, app: Any, topic: str, interval_s: float) -> None:
        self.app, self.topic, self.interval_s = app, topic, interval_s
        self.collector = StatsCollector(app)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def publish_once(self) -> dict[str, Any]:
        snapshot = self.collector.snapshot()
        self.app.publisher.publish_volatile(self.topic, json.dumps(snapshot, separators=(",", ":")))
        return snapshot

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.publish_once()
            except Exception:  # a reporting bug must never take the daemon down
                log.exception("stats: cannot publish")


class PrometheusExporter:
    """App extension: `/metrics` on `host:port`, collected from the live objects at each scrape."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        from prometheus_client import CollectorRegistry, start_http_server  # optional extra [metrics]

        self.app = app
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(app))
        # Binding now (at app start) makes a taken port fail the start, not a later thread.
        self.server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self.server.server_address[1])
        log.info("Prometheus metrics on http://%s:%d/metrics", host, self.port)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Collector:
    def __init__(self, app: Any) -> None:
        self.app = app

    def describe(self) -> list[Any]:
        return []  # collected dynamically; no fixed descriptions

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        analyses = CounterMetricFamily("focusguard_analyses", "Frames analysed", labels=["camera"])
        inference = CounterMetricFamily(
            "focusguard_inference_seconds", "Time spent in the classifier", labels=["camera"]
        )
        last = GaugeMetricFamily(
            "focusguard_last_inference_seconds", "Duration of the last inference", labels=["camera"]
        )
        recon = CounterMetricFamily("focusguard_stream_reconnects", "Stream reconnection attempts", labels=["camera"])
        stream_up = GaugeMetricFamily("focusguard_stream_up", "1 while frames arrive", labels=["camera"])
        lost = GaugeMetricFamily("focusguard_focus_lost", "1 while the camera is out of focus", labels=["camera"])
        state = GaugeMetricFamily("focusguard_focus_state", "Current focus state", labels=["camera", "state"])
        cnn_runs = CounterMetricFamily("focusguard_cnn_inferences", "CNN inferences the fusion ran", labels=["camera"])
        cnn_skips = CounterMetricFamily("focusguard_cnn_skipped",
                                        "Analyses the fusion settled without the CNN (cascade)", labels=["camera"])
        for name, monitor in list(self.app.monitors.items()):
            stats: CameraStats = monitor.stats
            analyses.add_metric([name], stats.analyses)
            inference.add_metric([name], stats.inference_s_total)
            if stats.last_inference_s is not None:
                last.add_metric([name], stats.last_inference_s)
            count = reconnects(monitor)
            if count is not None:
                recon.add_metric([name], count)
            stream_up.add_metric([name], 1.0 if monitor.stream == "online" else 0.0)
            focus = monitor.decider.focus
            lost.add_metric([name], 1.0 if focus == "lost" else 0.0)
            for value in FOCUS_STATES:
                state.add_metric([name, value], 1.0 if focus == value else 0.0)
            if hasattr(monitor.detector, "cnn_runs"):
                cnn_runs.add_metric([name], monitor.detector.cnn_runs)
                cnn_skips.add_metric([name], monitor.detector.cnn_skips)
        yield from (analyses, inference, last, recon, stream_up, lost, state, cnn_runs, cnn_skips)
        outbox = _outbox(self.app)
        if outbox is not None:
            depth = GaugeMetricFamily("focusguard_outbox_depth", "Events waiting for their PUBACK")
            depth.add_metric([], len(outbox))
            dropped = CounterMetricFamily("focusguard_outbox_dropped", "Events dropped because the outbox was full")
            dropped.add_metric([], getattr(outbox, "dropped", 0))
            foreign = GaugeMetricFamily("focusguard_outbox_foreign",
                                        "Undelivered events of another config kept in this state directory")
            foreign.add_metric([], sum(getattr(outbox, "foreign", {}).values()))
            yield from (depth, dropped, foreign)
        info = InfoMetricFamily("focusguard_build", "focusguard version")
        info.add_metric([], {"version": __version__})
        yield info
