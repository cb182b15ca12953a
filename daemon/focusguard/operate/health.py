"""HTTP liveness and readiness for orchestrators (Kubernetes probes, load balancers): `health.port`.

Owns a small threaded HTTP server (standard library) with two read-only endpoints:
- ``GET /healthz`` (liveness): 200 while the pipeline makes progress, the same rule as
  the systemd watchdog (watchdog.pipeline_problems: no camera loop hung, the MQTT
  worker alive); 503 with the problems otherwise, so the orchestrator restarts the pod.
- ``GET /readyz`` (readiness): 200 once the MQTT broker is connected and, with
  coordination, the instance has joined its ZooKeeper group; 503 otherwise.
Both answer JSON. Nothing secret is shown: camera names and the group state only.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from focusguard.operate.watchdog import DEFAULT_STALL_S, pipeline_problems

log = logging.getLogger(__name__)


def liveness(app: Any, stall_s: float = DEFAULT_STALL_S) -> tuple[bool, dict[str, Any]]:
    problems = pipeline_problems(app, stall_s)
    return not problems, {"alive": not problems, "problems": problems}


def readiness(app: Any) -> tuple[bool, dict[str, Any]]:
    mqtt = bool(getattr(app.publisher, "connected", True))
    coordinator = getattr(app, "coordinator", None)
    group = None if coordinator is None else coordinator.status
    ready = mqtt and (coordinator is None or coordinator.ready)
    return ready, {"ready": ready, "mqtt_connected": mqtt, "group": group, "cameras": sorted(app.monitors)}


class HealthServer:
    """App extension: binds at construction (a taken port fails the start), serves from start() to stop()."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.app = app
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        app = self.app

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server calls do_<METHOD>
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    ok, body = liveness(app)
                elif path == "/readyz":
                    ok, body = readiness(app)
                else:
                    self.send_error(404, "try /healthz or /readyz")
                    return
                data = json.dumps(body).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no log lines
                pass

        return Handler

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="health", daemon=True)
        self._thread.start()
        log.info("health endpoint on http://%s:%d/healthz and /readyz", *self.server.server_address[:2])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
