"""Refocus against a local fake Axis camera: VAPIX Optics Control and PTZ with HTTP digest auth."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from focusguard.operate.refocus import Outcome, RefocusService, optics_request, perform
from focusguard.settings.config import parse_config
from focusguard.settings.config_extras import RefocusConfig
from tests.unit.conftest import FakeClock
from tests.unit.test_app import BLURRY, SHARP, FakePublisher, Rig

USER, PASSWORD, REALM = "operator", "pa55-Wörd!", "AXIS_ACCC8E123456"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class FakeCamera(ThreadingHTTPServer):
    """Implements the documented requests and replies, behind a digest challenge."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CameraHandler)
        self.nonces: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.methods = {"performAutofocus", "performAutoFocus"}  # Axis documents both spellings
        self.optics_error: dict[str, Any] | None = None
        self.delay_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class CameraHandler(BaseHTTPRequestHandler):
    server: FakeCamera

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        fields = urllib.request.parse_keqv_list(urllib.request.parse_http_list(header[7:]))
        if fields.get("username") != USER or fields.get("nonce") not in self.server.nonces:
            return False
        ha1 = _md5(f"{USER}:{REALM}:{PASSWORD}")
        ha2 = _md5(f"{self.command}:{fields['uri']}")
        expected = _md5(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:{fields['qop']}:{ha2}")
        return fields.get("response") == expected and fields.get("uri") == self.path

    def _reply(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        if status == 401:
            nonce = secrets.token_hex(16)
            self.server.nonces.add(nonce)
            self.send_header("WWW-Authenticate", f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"')
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self, body: bytes) -> bool:
        authorized = self._authorized()
        self.server.requests.append(
            {"method": self.command, "path": self.path, "authorized": authorized, "body": body,
             "auth": self.headers.get("Authorization", ""), "thread": threading.current_thread().name}
        )  # fmt: skip
        if not authorized:
            self._reply(401, b"Unauthorized", "text/plain")
        return authorized

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self._record(body):
            return
        if self.path != "/axis-cgi/opticscontrol.cgi":
            self._reply(404, b"", "text/plain")
            return
        request = json.loads(body)
        time.sleep(self.server.delay_s)
        reply: dict[str, Any] = {
            "apiVersion": "1.1",
            "context": request.get("context"),
            "method": request.get("method"),
        }
        if request.get("method") not in self.server.methods:
            reply["error"] = {"code": 2002, "message": "Method not supported"}
        elif request.get("params") != {"optics": [{"opticsId": "0"}]} or request.get("apiVersion") != "1.1":
            reply["error"] = {"code": 2003, "message": "Invalid parameter"}
        elif self.server.optics_error:
            reply["error"] = self.server.optics_error
        else:
            reply["data"] = {}
        self._reply(200, json.dumps(reply).encode())

    def do_GET(self) -> None:
        if not self._record(b""):
            return
        if self.path == "/axis-cgi/com/ptz.cgi?autofocus=on":
            self._reply(204)
        else:
            self._reply(200, b"Error: unknown request", "text/plain")


@pytest.fixture
def camera() -> Iterator[FakeCamera]:
    server = FakeCamera()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def cfg(camera: FakeCamera, **kw: Any) -> RefocusConfig:
    values: dict[str, Any] = {"action": "vapix_autofocus", "url": camera.url, "username": USER, "password": PASSWORD}
    return RefocusConfig(**{**values, **kw})


def test_vapix_autofocus_with_digest_auth(camera: FakeCamera) -> None:
    outcome = perform(cfg(camera), "vapix_autofocus")
    assert outcome == Outcome(True, 200)
    first, second = camera.requests
    assert (first["authorized"], second["authorized"]) == (False, True)  # challenged, then answered
    assert second["auth"].startswith("Digest ") and PASSWORD not in second["auth"]
    assert json.loads(second["body"]) == {
        "apiVersion": "1.1",
        "context": "focusguard",
        "method": "performAutofocus",
        "params": {"optics": [{"opticsId": "0"}]},
    }
    assert json.loads(second["body"]) == optics_request()


def test_vapix_falls_back_to_the_method_tables_spelling(camera: FakeCamera) -> None:
    camera.methods = {"performAutoFocus"}
    assert perform(cfg(camera), "vapix_autofocus").ok
    methods = [json.loads(r["body"])["method"] for r in camera.requests if r["authorized"]]
    assert methods == ["performAutofocus", "performAutoFocus"]


def test_camera_error_reply_is_a_failure(camera: FakeCamera) -> None:
    camera.optics_error = {"code": 2104, "message": "Autofocus not supported"}
    outcome = perform(cfg(camera), "vapix_autofocus")
    assert (outcome.ok, outcome.http_status) == (False, 200)
    assert outcome.error == "camera error 2104: Autofocus not supported"


def test_ptz_autofocus(camera: FakeCamera) -> None:
    assert perform(cfg(camera), "ptz_autofocus") == Outcome(True, 204)
    assert [(r["method"], r["path"], r["authorized"]) for r in camera.requests] == [
        ("GET", "/axis-cgi/com/ptz.cgi?autofocus=on", False),
        ("GET", "/axis-cgi/com/ptz.cgi?autofocus=on", True),
    ]


def test_wrong_password_fails_without_leaking_it(camera: FakeCamera) -> None:
    outcome = perform(cfg(camera, password="wrong-secret"), "vapix_autofocus")
    assert (outcome.ok, outcome.http_status) == (False, 401)
    assert "wrong-secret" not in str(outcome)


def test_unreachable_camera(camera: FakeCamera) -> None:
    camera.shutdown()
    camera.server_close()
    outcome = perform(cfg(camera, timeout_s=2), "ptz_autofocus")
    assert not outcome.ok and outcome.http_status is None and outcome.error


def service_for(camera: FakeCamera, publisher: FakePublisher, clock: FakeClock, **kw: Any) -> RefocusService:
    cameras = {"gate": cfg(camera, **kw), "yard": RefocusConfig(url=camera.url)}
    return RefocusService(cameras, publisher, "site/fg", clock=clock, wall_clock=lambda: 1_700_000_000.0)


def wait_events(publisher: FakePublisher, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(publisher.events) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(publisher.events) >= count, publisher.events
    return [event for _, event in publisher.events]


def test_service_reports_requested_then_done_and_rate_limits(
    camera: FakeCamera, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    publisher, clock = FakePublisher(), FakeClock()
    refocus = service_for(camera, publisher, clock, min_interval_s=300)
    refocus.start()
    try:
        assert refocus.request("gate", "command")
        requested, done = wait_events(publisher, 2)
        assert (requested["type"], done["type"]) == ("refocus_requested", "refocus_done")
        assert requested["refocus"] == {"action": "vapix_autofocus", "trigger": "command", "url": camera.url}
        assert (done["refocus"]["http_status"], done["camera"]) == (200, "gate")
        assert done["onvif_topic"] is None and done["class"] is None

        clock.advance(299)
        assert not refocus.request("gate", "focus_lost")
        limited = wait_events(publisher, 3)[2]
        assert limited["type"] == "refocus_failed" and "rate limited" in limited["refocus"]["error"]
        clock.advance(2)
        assert refocus.request("gate", "focus_lost")
        assert [e["type"] for e in wait_events(publisher, 5)][3:] == ["refocus_requested", "refocus_done"]
        assert all(r["thread"] for r in camera.requests)
    finally:
        refocus.stop()
    everything = json.dumps([e for _, e in publisher.events]) + caplog.text
    assert PASSWORD not in everything and USER + ":" not in everything


def test_failure_is_an_event_with_the_reason(camera: FakeCamera) -> None:
    publisher, clock = FakePublisher(), FakeClock()
    refocus = service_for(camera, publisher, clock, password="wrong-secret")
    refocus.start()
    try:
        refocus.request("gate", "command")
        failed = wait_events(publisher, 2)[1]
    finally:
        refocus.stop()
    assert failed["type"] == "refocus_failed"
    assert failed["refocus"]["http_status"] == 401 and "401" in failed["refocus"]["error"]
    assert "wrong-secret" not in json.dumps(failed)


def test_camera_without_action_refuses_and_one_request_at_a_time(camera: FakeCamera) -> None:
    publisher, clock = FakePublisher(), FakeClock()
    camera.delay_s = 0.5
    refocus = service_for(camera, publisher, clock, min_interval_s=0)
    refocus.start()
    try:
        assert not refocus.request("yard", "command")
        assert "no refocus action configured" in publisher.events[0][1]["refocus"]["error"]
        assert refocus.request("gate", "command")
        assert not refocus.request("gate", "command")  # the first is still on the wire
        assert "still in progress" in publisher.events[-1][1]["refocus"]["error"]
        assert wait_events(publisher, 4)[3]["type"] == "refocus_done"
    finally:
        refocus.stop()


def test_command_topic(camera: FakeCamera) -> None:
    calls: list[tuple[str, str]] = []

    def fake_perform(config: RefocusConfig, action: str) -> Outcome:
        calls.append((threading.current_thread().name, action))
        return Outcome(True, 204)

    publisher = FakePublisher()
    refocus = RefocusService(
        {"gate": cfg(camera, min_interval_s=0)}, publisher, "site/fg", clock=FakeClock(), perform=fake_perform
    )
    refocus.start()
    try:
        refocus._on_command("site/fg/gate/refocus", b"")
        wait_events(publisher, 2)  # one request at a time: let each finish
        refocus._on_command("site/fg/gate/refocus", b'{"action": "ptz_autofocus"}')
        wait_events(publisher, 4)
        refocus._on_command("site/fg/nope/refocus", b"go")  # unknown camera: ignored
        refocus._on_command("site/fg/gate/refocus", b"\xff not json")
        wait_events(publisher, 6)
    finally:
        refocus.stop()
    assert [action for _, action in calls] == ["vapix_autofocus", "ptz_autofocus", "vapix_autofocus"]
    assert {name for name, _ in calls} == {"refocus"}  # never on an analysis or paho thread
    assert {c for c, _ in publisher.events} == {"gate"}


def test_focus_lost_triggers_refocus_off_the_analysis_thread(camera: FakeCamera) -> None:
    config = parse_config(
        {
            "defaults": {"detector": "cnn"},  # the fake CNN drives the focus events
            "cameras": {
                "a": {"url": "rtsp://h/a", "refocus": {"action": "vapix_autofocus", "url": camera.url,
                                                      "username": USER, "password": PASSWORD}},
                "b": {"url": "rtsp://h/b", "refocus": {"action": "ptz_autofocus", "url": camera.url,
                                                      "on_focus_lost": False}},
            }
        }
    )  # fmt: skip
    rig = Rig(config)
    refocus = RefocusService({c.name: c.refocus for c in config.cameras}, rig.publisher, "focusguard")
    refocus.attach(rig.app.monitors)
    refocus.start()
    try:
        rig.steps(8, a=SHARP, b=SHARP)
        rig.steps(8, a=BLURRY, b=BLURRY)
        deadline = time.monotonic() + 10
        while "refocus_done" not in rig.publisher.event_types("a") and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        refocus.stop()
    assert rig.publisher.event_types("a") == ["focus_lost", "refocus_requested", "refocus_done"]
    assert rig.publisher.event_types("b") == ["focus_lost"]  # on_focus_lost: false
    assert [r["thread"] for r in camera.requests]  # the camera saw the request
    requested = next(e for c, e in rig.publisher.events if e["type"] == "refocus_requested")
    assert requested["refocus"]["trigger"] == "focus_lost"
