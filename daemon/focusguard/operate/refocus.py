"""Closing the loop: ask the camera to autofocus, on `focus_lost` or on a `<p>/<cam>/refocus` command.

Owns the VAPIX requests (HTTP digest auth, no proxies): Optics Control
`POST /axis-cgi/opticscontrol.cgi` with `performAutofocus` (Axis' method table spells
it `performAutoFocus`: a "method" error retries once with that spelling), or PTZ
`GET /axis-cgi/com/ptz.cgi?autofocus=on`; and `RefocusService` (app extension): one
worker thread (HTTP never runs on a camera's analysis thread), a per-camera rate
limit (`min_interval_s`, also one request at a time), and the outcome as events
`refocus_requested` → `refocus_done` | `refocus_failed` with a `refocus` object
(action, trigger, url, http_status, duration_ms, error). Credentials never appear in
events or logs: the URL carries none and error texts are scrubbed of the password.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from focusguard.common.events import make_event
from focusguard.settings.config_extras import RefocusConfig

log = logging.getLogger(__name__)

ACTIONS = ("vapix_autofocus", "ptz_autofocus")
OPTICS_PATH = "/axis-cgi/opticscontrol.cgi"
PTZ_PATH = "/axis-cgi/com/ptz.cgi?autofocus=on"
METHODS = ("performAutofocus", "performAutoFocus")  # examples' spelling first, then the method table's
MAX_REPLY = 65_536


@dataclass(frozen=True)
class Outcome:
    ok: bool
    http_status: int | None
    error: str | None = None


def optics_request(method: str = METHODS[0]) -> dict[str, Any]:
    return {"apiVersion": "1.1", "context": "focusguard", "method": method, "params": {"optics": [{"opticsId": "0"}]}}


class _DigestAuth(urllib.request.HTTPDigestAuthHandler):
    """urllib's digest handler hashes ASCII only; RFC 7616 (and non-ASCII passwords) need UTF-8."""

    def get_algorithm_impls(self, algorithm: str) -> tuple[Callable[[str], str], Callable[[str, str], str]]:
        names = {"MD5": "md5", "SHA": "sha1", "SHA-256": "sha256"}
        if algorithm not in names:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")

        def h(text: str) -> str:
            return hashlib.new(names[algorithm], text.encode("utf-8")).hexdigest()

        return h, lambda secret, data: h(f"{secret}:{data}")


def _opener(cfg: RefocusConfig) -> urllib.request.OpenerDirector:
    handlers: list[Any] = [urllib.request.ProxyHandler({})]  # cameras are local: never via a proxy
    if cfg.username is not None:
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, cfg.url or "", cfg.username, cfg.password or "")
        handlers.append(_DigestAuth(passwords))
    if not cfg.verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def _scrub(text: str, cfg: RefocusConfig) -> str:
    return text.replace(cfg.password, "***") if cfg.password else text


def perform(cfg: RefocusConfig, action: str) -> Outcome:
    """One refocus request (blocking, at most about `timeout_s` per HTTP exchange)."""
    if cfg.url is None:
        return Outcome(False, None, "no camera URL to send the request to (set refocus.url)")
    opener = _opener(cfg)
    try:
        if action == "ptz_autofocus":
            return _ptz(opener, cfg)
        outcome = _optics(opener, cfg, METHODS[0])
        if not outcome.ok and outcome.error and "method" in outcome.error.lower():
            outcome = _optics(opener, cfg, METHODS[1])
        return outcome
    except urllib.error.HTTPError as err:
        return Outcome(False, err.code, _scrub(f"HTTP {err.code} {err.reason}", cfg))
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return Outcome(False, None, _scrub(f"{type(err).__name__}: {reason}", cfg))


def _optics(opener: urllib.request.OpenerDirector, cfg: RefocusConfig, method: str) -> Outcome:
    body = json.dumps(optics_request(method)).encode()
    request = urllib.request.Request(
        f"{cfg.url}{OPTICS_PATH}", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with opener.open(request, timeout=cfg.timeout_s) as response:
        status, text = response.status, response.read(MAX_REPLY).decode("utf-8", "replace")
    try:
        reply = json.loads(text) if text.strip() else {}
    except ValueError:
        return Outcome(False, status, "the camera's reply is not JSON")
    error = reply.get("error") if isinstance(reply, dict) else None
    if error:
        detail = error.get("message", error) if isinstance(error, dict) else error
        code = f" {error.get('code')}" if isinstance(error, dict) and "code" in error else ""
        return Outcome(False, status, _scrub(f"camera error{code}: {detail}", cfg))
    return Outcome(True, status)


def _ptz(opener: urllib.request.OpenerDirector, cfg: RefocusConfig) -> Outcome:
    request = urllib.request.Request(f"{cfg.url}{PTZ_PATH}", method="GET")
    with opener.open(request, timeout=cfg.timeout_s) as response:
        status, text = response.status, response.read(MAX_REPLY).decode("utf-8", "replace").strip()
    if text.lower().startswith("error"):
        return Outcome(False, status, _scrub(f"camera error: {text[:200]}", cfg))
    return Outcome(True, status)


class RefocusService:
    """App extension: rate-limited refocus requests off the analysis threads, reported as events."""

    def __init__(
        self,
        cameras: dict[str, RefocusConfig],
        publisher: Any,
        topic_prefix: str,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        perform: Callable[[RefocusConfig, str], Outcome] = perform,
    ) -> None:
        self.cameras, self.publisher, self.prefix = cameras, publisher, topic_prefix
        self._clock, self._wall_clock, self._perform = clock, wall_clock, perform
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._busy: set[str] = set()
        self._jobs: queue.Queue[tuple[str, str, str, RefocusConfig] | None] = queue.Queue()
        self.holds: Callable[[str], bool] = lambda _camera: True  # coordination: only cameras watched here
        self._thread: threading.Thread | None = None
        self.done_listeners: list[Callable[[str], None]] = []  # camera name, after refocus_done (worker thread)

    def camera_added(self, monitor: Any) -> None:
        """Coordination gave this instance one more camera: refocus it on its `focus_lost` too."""
        self.attach({monitor.camera.name: monitor})

    def attach(self, monitors: dict[str, Any]) -> None:
        """Refocus automatically on `focus_lost` for cameras with an action and `on_focus_lost`."""
        for name, monitor in monitors.items():
            cfg = self.cameras.get(name)
            if cfg is not None and cfg.action != "none" and cfg.on_focus_lost:
                monitor.event_listeners.append(self._on_event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="refocus", daemon=True)
        self._thread.start()
        if callable(getattr(self.publisher, "subscribe", None)):
            self.publisher.subscribe(f"{self.prefix}/+/refocus", self._on_command)

    def stop(self) -> None:
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(2.0)  # an HTTP request in progress ends on its own timeout (daemon thread)

    # ----------------------------------------------------------------- triggers

    def _on_event(self, monitor: Any, event: dict[str, Any]) -> None:
        if event.get("type") == "focus_lost":
            self.request(monitor.camera.name, "focus_lost")

    def _on_command(self, topic: str, payload: bytes) -> None:
        camera = topic[len(self.prefix) + 1 : -len("/refocus")]
        if camera not in self.cameras:
            log.warning("refocus command for unknown camera %r ignored", camera)
            return
        if not self.holds(camera):
            log.debug("refocus command for %s: another instance watches it", camera)
            return
        action = None
        try:
            body = json.loads(payload) if payload.strip() else None
        except ValueError:
            body = None  # any payload triggers; JSON may choose the action
        if isinstance(body, dict) and body.get("action") in ACTIONS:
            action = str(body["action"])
        self.request(camera, "command", action)

    def request(self, camera: str, trigger: str, action: str | None = None) -> bool:
        """Queue a refocus of `camera`; False (with a `refocus_failed` event) when refused."""
        cfg = self.cameras[camera]
        action = action or cfg.action
        details: dict[str, Any] = {"action": action, "trigger": trigger, "url": cfg.url}
        refusal = None
        with self._lock:
            now = self._clock()
            last = self._last.get(camera)
            if action not in ACTIONS:
                refusal = "no refocus action configured for this camera (refocus.action)"
            elif camera in self._busy:
                refusal = "a refocus of this camera is still in progress"
            elif last is not None and now - last < cfg.min_interval_s:
                refusal = f"rate limited: last request {now - last:.0f} s ago (min_interval_s {cfg.min_interval_s:g})"
            else:
                self._last[camera] = now
                self._busy.add(camera)
        if refusal is not None:
            log.info("camera %s: refocus (%s) not sent: %s", camera, trigger, refusal)
            self._publish("refocus_failed", camera, {**details, "error": refusal})
            return False
        log.info("camera %s: requesting %s (%s)", camera, action, trigger)
        self._publish("refocus_requested", camera, details)
        self._jobs.put((camera, action, trigger, cfg))
        return True

    # ----------------------------------------------------------------- worker

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            camera, action, trigger, cfg = job
            started = time.perf_counter()
            try:
                outcome = self._perform(cfg, action)
            except Exception as err:  # a bug here must not end the worker
                log.exception("camera %s: refocus failed unexpectedly", camera)
                outcome = Outcome(False, None, _scrub(f"{type(err).__name__}: {err}", cfg))
            finally:
                with self._lock:
                    self._busy.discard(camera)
            details = {
                "action": action,
                "trigger": trigger,
                "url": cfg.url,
                "http_status": outcome.http_status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            if outcome.ok:
                log.info("camera %s: %s done (HTTP %s)", camera, action, outcome.http_status)
                self._publish("refocus_done", camera, details)
                for listener in self.done_listeners:
                    try:
                        listener(camera)
                    except Exception:
                        log.exception("camera %s: refocus_done listener failed", camera)
            else:
                log.warning("camera %s: %s failed: %s", camera, action, outcome.error)
                self._publish("refocus_failed", camera, {**details, "error": outcome.error})

    def _publish(self, kind: str, camera: str, details: dict[str, Any]) -> None:
        event = make_event(kind, camera, None, None, self._wall_clock(), extra={"refocus": details})  # type: ignore[arg-type]
        self.publisher.publish_event(camera, event)
