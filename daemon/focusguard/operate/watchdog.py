"""Liveness of the pipeline and the systemd side of it: READY, WATCHDOG pings, STOPPING.

Owns `Heartbeat` (each camera loop marks the start and end of every analysis step)
and `SystemdWatchdog`, an app extension: `READY=1` once the app has started, then
every half `WatchdogSec=` a `WATCHDOG=1` ping, but only while the pipeline is alive:
no camera loop stuck inside one step for longer than the stall limit, none that
stopped stepping (its interval plus the stall limit without a finished step), and the
MQTT publisher's worker thread still running. A stalled pipeline gets no ping, so
systemd kills and restarts the service (`Restart=on-failure`). The stall limit
defaults to `WatchdogSec=` itself, so a hang is acted on within about twice that.
A camera whose stream is down still steps (its liveness check is the step), so a lost
camera never restarts the daemon; only a hang (a wedged Edge TPU, a deadlock) does.
`STOPPING=1` goes out first on shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from focusguard.operate.notify import notify, watchdog_timeout_s

log = logging.getLogger(__name__)

DEFAULT_STALL_S = 60.0  # without a systemd watchdog (tools, tests): what counts as a hang


class Heartbeat:
    """When a camera loop last finished a step and since when it is inside one (None: idle)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.busy_since: float | None = None
        self.last_done = clock()

    def begin(self) -> None:
        self.busy_since = self._clock()

    def end(self) -> None:
        self.last_done = self._clock()
        self.busy_since = None

    def stalled(self, interval_s: float, stall_s: float) -> str | None:
        """Why this loop counts as hung, or None while it makes progress."""
        now, busy = self._clock(), self.busy_since
        if busy is not None:
            return f"inside one analysis step for {now - busy:.1f} s" if now - busy > stall_s else None
        idle = now - self.last_done
        return f"no analysis step for {idle:.1f} s" if idle > interval_s + stall_s else None


def pipeline_problems(app: Any, stall_s: float) -> list[str]:
    """What keeps the pipeline from being alive; empty when every part made progress recently."""
    problems = []
    for name, monitor in list(app.monitors.items()):  # coordination changes it at run time
        why = monitor.heartbeat.stalled(monitor.camera.interval_s, stall_s)
        if why:
            problems.append(f"camera {name}: {why}")
    is_alive = getattr(app.publisher, "is_alive", None)
    if callable(is_alive) and not is_alive():
        problems.append("the MQTT publisher's worker thread has ended")
    return problems


class SystemdWatchdog:
    """App extension speaking sd_notify; without `$NOTIFY_SOCKET` it does nothing."""

    def __init__(self, app: Any, timeout_s: float | None = None, stall_s: float | None = None) -> None:
        self.app = app
        self.timeout_s = watchdog_timeout_s() if timeout_s is None else timeout_s
        self.stall_s = stall_s if stall_s is not None else (self.timeout_s or DEFAULT_STALL_S)
        self.stalled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        notify("READY=1", f"STATUS=watching {len(self.app.monitors)} camera(s)")
        if self.timeout_s:
            log.info("systemd watchdog: %.1f s, pinged while no step is stuck for %.1f s", self.timeout_s, self.stall_s)
            self._thread = threading.Thread(target=self._run, name="systemd-watchdog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        notify("STOPPING=1", "STATUS=stopping")
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        period = max(0.05, (self.timeout_s or 0.0) / 2)
        while True:
            self.check()
            if self._stop.wait(period):
                return

    def check(self) -> bool:
        """Ping systemd if the pipeline is alive; returns whether it is."""
        problems = pipeline_problems(self.app, self.stall_s)
        if problems:
            if not self.stalled:
                log.error("pipeline stalled (%s): withholding the watchdog ping", "; ".join(problems))
                notify("STATUS=stalled: " + "; ".join(problems))
            self.stalled = True
            return False
        if self.stalled:
            log.warning("pipeline alive again: watchdog pings resumed")
            notify(f"STATUS=watching {len(self.app.monitors)} camera(s)")
        self.stalled = False
        notify("WATCHDOG=1")
        return True
