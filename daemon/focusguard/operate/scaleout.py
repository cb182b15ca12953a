"""The app side of coordination: ZooKeeper's share of cameras becomes running camera monitors.

Owns `SharedCameras`, the app extension a `coordination` section adds: its Coordinator
(coordination.py) calls `hold` when this instance gets a camera and `release` when it
gives one up. `hold` first takes the camera's shared state from ZooKeeper (baselines,
the last focus verdict: shared_state.py), so a camera keeps its in-focus history and an
active `focus_lost` stays lost without being raised again; then it starts a fresh
monitor whose retained state names this instance as `owner`. `release` stops the
monitor, saves its baselines and puts them and the verdict back into ZooKeeper before the
owner node is deleted. While held, changed baselines go up every `SYNC_S` and every
focus event's verdict at once. Undelivered events stay in this instance's outbox, which
its publisher keeps draining whatever the camera's owner is now.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from focusguard.operate.coordination import Coordinator
from focusguard.operate.shared_state import SharedCameraState
from focusguard.settings.scaleout import CoordinationConfig

log = logging.getLogger(__name__)

SYNC_S = 5.0  # a baseline learnt here reaches ZooKeeper within this (then survives a kill -9)


class SharedCameras:
    def __init__(self, app: Any, cfg: CoordinationConfig, client: Any = None) -> None:
        self.app = app
        self._configs = {c.name: c for c in app.config.cameras}
        self.coordinator = Coordinator(cfg, list(self._configs), self.hold, self.release, sync=self.sync,
                                       client=client)  # fmt: skip
        self.shared = SharedCameraState(self.coordinator.client, cfg.path, app.config.state_dir)
        self._verdicts: dict[str, str] = {}  # camera -> focus verdict last put into ZooKeeper
        self._synced_at = 0.0
        app.coordinator = self.coordinator  # readiness, stats

    def start(self) -> None:
        self.coordinator.start()

    def stop(self) -> None:
        self.coordinator.stop()

    def hold(self, camera: str) -> None:
        focus = self.shared.pull(camera)
        monitor = self.app.build_monitor(self._configs[camera])
        if focus is not None:
            monitor.decider.focus = focus  # lost stays lost: no second focus_lost from the new owner
            self._verdicts[camera] = focus
        monitor.event_listeners.append(self._on_event)
        self.app.watch(monitor)

    def release(self, camera: str, handover: bool) -> None:
        monitor = self.app.unwatch(camera)
        if handover and monitor is not None:
            self.shared.push_changed(camera)
            self._push_verdict(camera, monitor.decider.focus)
        self.shared.forget(camera)
        self._verdicts.pop(camera, None)

    def sync(self, held: set[str]) -> None:
        """Coordinator thread, while connected: changed baselines and verdicts go up every SYNC_S."""
        now = time.monotonic()
        if now - self._synced_at < SYNC_S:
            return
        self._synced_at = now
        for camera in sorted(held):
            monitor = self.app.monitors.get(camera)
            self.shared.push_changed(camera)
            if monitor is not None:
                self._push_verdict(camera, monitor.decider.focus)

    def _push_verdict(self, camera: str, focus: str) -> None:
        if focus in ("ok", "lost") and self._verdicts.get(camera) != focus:
            self.shared.push_verdict(camera, focus)
            self._verdicts[camera] = focus

    def _on_event(self, monitor: Any, event: dict[str, Any]) -> None:
        """Monitor thread: a focus event's verdict reaches ZooKeeper before the camera can move."""
        if event.get("type") in ("focus_lost", "focus_restored"):
            try:
                self._push_verdict(monitor.camera.name, monitor.decider.focus)
            except Exception as err:  # ZooKeeper unreachable: the periodic sync retries
                log.warning("camera %s: cannot share the focus verdict: %s", monitor.camera.name, err)
