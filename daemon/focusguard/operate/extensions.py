"""Which add-ons run beside the pipeline, from the config: each has `start()` and `stop()`.

Owns the list `FocusGuard.start()` starts (in this order) and `shutdown()` stops (in
reverse): Prometheus exporter (`metrics.prometheus_port`; built first, so a taken port
fails the start before anything runs), refocus (`refocus.py`: per-camera actions and
the `<p>/<cam>/refocus` command topic), Home Assistant discovery
(`homeassistant.discovery`), `<p>/stats` (`metrics.stats_interval_s`) and last the
systemd watchdog, so READY=1 follows everything else and STOPPING=1 comes first.
`health.port`: the HTTP liveness/readiness endpoint (health.py); `coordination`: the
cameras this instance watches come and go with ZooKeeper (scaleout.py); extensions with
`camera_added(monitor)` / `camera_removed(name)` hear of each such change.
MQTT add-ons need the full publisher API (`publish_retained`, `publish_volatile`,
`subscribe`); test doubles without it simply get none of them.
"""

from __future__ import annotations

import logging
from typing import Any

from focusguard.common.errors import ConfigError

log = logging.getLogger(__name__)


def build_extensions(app: Any) -> list[Any]:
    from focusguard.analysis.combined import BaselineCommands
    from focusguard.delivery.discovery import HomeAssistantDiscovery
    from focusguard.delivery.metrics import PrometheusExporter, StatsReporter
    from focusguard.operate.health import HealthServer
    from focusguard.operate.refocus import RefocusService
    from focusguard.operate.scaleout import SharedCameras
    from focusguard.operate.watchdog import SystemdWatchdog

    config, publisher = app.config, app.publisher
    prefix = config.mqtt.topic_prefix
    extensions: list[Any] = []
    if config.metrics.prometheus_port is not None:
        extensions.append(_prometheus(app, PrometheusExporter))
    coordinated = config.coordination is not None
    refocus = RefocusService({c.name: c.refocus for c in config.cameras}, publisher, prefix)
    refocus.attach(app.monitors)
    if coordinated:  # commands for cameras another instance watches are theirs
        refocus.holds = lambda camera: camera in app.monitors
    refocus.done_listeners.append(lambda camera: _relearn(app, camera))  # the lens moved: new baseline
    extensions.append(refocus)
    if any(c.detector in ("combined", "fusion") for c in config.cameras) and _has(publisher, "subscribe"):
        commands = BaselineCommands(app.monitors, publisher, prefix)  # <p>/<cam>/baseline/reset
        if coordinated:
            site = {c.name for c in config.cameras}
            commands.foreign = lambda camera: camera in site and camera not in app.monitors
        extensions.append(commands)
    if config.homeassistant.discovery and _has(publisher, "publish_retained", "republish_retained", "subscribe"):
        ha = config.homeassistant
        cameras = [] if coordinated else [c.name for c in config.cameras]  # coordinated: those it takes
        extensions.append(HomeAssistantDiscovery(publisher, ha.prefix, prefix, cameras,
                                                 availability_topic=app.availability_topic, dynamic=coordinated))
    if config.metrics.stats_interval_s > 0 and _has(publisher, "publish_volatile"):
        topic = f"{prefix}/instances/{app.instance_id}/stats" if coordinated else f"{prefix}/stats"
        extensions.append(StatsReporter(app, topic, config.metrics.stats_interval_s))
    if config.health.port is not None:
        extensions.append(_listening(app, "health.port", config.health.host, config.health.port, HealthServer))
    if coordinated:  # last but the watchdog: cameras start once everything else runs
        extensions.append(SharedCameras(app, config.coordination))
    extensions.append(SystemdWatchdog(app))
    return extensions


def _relearn(app: Any, camera: str) -> None:
    monitor = app.monitors.get(camera)
    if monitor is not None and callable(getattr(monitor, "relearn_baseline", None)):
        monitor.relearn_baseline("refocus_done")


def _has(obj: Any, *names: str) -> bool:
    return all(callable(getattr(obj, name, None)) for name in names)


def _listening(app: Any, key: str, host: str, port: int, server: Any) -> Any:
    try:
        return server(app, host, port)
    except OSError as err:
        raise ConfigError(app.config.source, key, f"cannot listen on {host}:{port}: {err.strerror or err}") from err


def _prometheus(app: Any, exporter: Any) -> Any:
    metrics = app.config.metrics
    try:
        return _listening(app, "metrics.prometheus_port", metrics.prometheus_host, metrics.prometheus_port, exporter)
    except ImportError as err:
        raise ConfigError(
            app.config.source, "metrics.prometheus_port", "needs prometheus-client: pip install 'focusguard[metrics]'"
        ) from err
