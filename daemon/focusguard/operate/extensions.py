"""Which add-ons run beside the pipeline, from the config: each has `start()` and `stop()`.

Owns the list `FocusGuard.start()` starts (in this order) and `shutdown()` stops (in
reverse): Prometheus exporter (`metrics.prometheus_port`; built first, so a taken port
fails the start before anything runs), refocus (`refocus.py`: per-camera actions and
the `<p>/<cam>/refocus` command topic), Home Assistant discovery
(`homeassistant.discovery`), `<p>/stats` (`metrics.stats_interval_s`) and last the
systemd watchdog, so READY=1 follows everything else and STOPPING=1 comes first.
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
    from focusguard.operate.refocus import RefocusService
    from focusguard.operate.watchdog import SystemdWatchdog

    config, publisher = app.config, app.publisher
    prefix = config.mqtt.topic_prefix
    extensions: list[Any] = []
    if config.metrics.prometheus_port is not None:
        extensions.append(_prometheus(app, PrometheusExporter))
    refocus = RefocusService({c.name: c.refocus for c in config.cameras}, publisher, prefix)
    refocus.attach(app.monitors)
    refocus.done_listeners.append(lambda camera: _relearn(app, camera))  # the lens moved: new baseline
    extensions.append(refocus)
    if any(c.detector in ("combined", "fusion") for c in config.cameras) and _has(publisher, "subscribe"):
        extensions.append(BaselineCommands(app.monitors, publisher, prefix))  # <p>/<cam>/baseline/reset
    if config.homeassistant.discovery and _has(publisher, "publish_retained", "republish_retained", "subscribe"):
        ha = config.homeassistant
        extensions.append(HomeAssistantDiscovery(publisher, ha.prefix, prefix, [c.name for c in config.cameras]))
    if config.metrics.stats_interval_s > 0 and _has(publisher, "publish_volatile"):
        extensions.append(StatsReporter(app, f"{prefix}/stats", config.metrics.stats_interval_s))
    extensions.append(SystemdWatchdog(app))
    return extensions


def _relearn(app: Any, camera: str) -> None:
    monitor = app.monitors.get(camera)
    if monitor is not None and callable(getattr(monitor, "relearn_baseline", None)):
        monitor.relearn_baseline("refocus_done")


def _has(obj: Any, *names: str) -> bool:
    return all(callable(getattr(obj, name, None)) for name in names)


def _prometheus(app: Any, exporter: Any) -> Any:
    metrics = app.config.metrics
    try:
        return exporter(app, metrics.prometheus_host, metrics.prometheus_port)
    except ImportError as err:
        raise ConfigError(
            app.config.source, "metrics.prometheus_port", "needs prometheus-client: pip install 'focusguard[metrics]'"
        ) from err
    except OSError as err:
        raise ConfigError(
            app.config.source,
            "metrics.prometheus_port",
            f"cannot listen on {metrics.prometheus_host}:{metrics.prometheus_port}: {err.strerror or err}",
        ) from err
