"""Secrets and access: MQTT over TLS with a client certificate and a password; a wrong CA or
password is a clear error and a retry, never a crash; no password ever shows anywhere.

The broker (mosquitto 2.0) gets a TLS listener (CA, server certificate for IP 127.0.0.1,
``require_certificate true``) and a password file; certificates are made here with the
openssl CLI.  Every byte the daemon writes (stderr log at debug level), every MQTT
message on ``#``, ``check-config`` and ``--help`` output, and the outbox database are
searched for the secrets.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.integration.fault_fixtures import (  # noqa: F401 (fixtures)
    daemons,
    fault_clip,
    log_text,
    oracle,
    stamps,
    start_daemon,
    wait_log,
)
from tests.support import faults
from tests.support.daemon import focusguard_command
from tests.support.mqtt import Mosquitto, MqttCollector
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

MQTT_PW = "mqtt-Pw-7f3a9c"  # from a file
CAM_PW_URL = "camPw-1b2c3d"  # in the URL
CAM_PW_ENV = "cam@Pw/9e8d:7c"  # from an environment variable; percent-encoded in the URL
CAM_PW_FILE = "camPw-5a4b3c"  # from a file, for a server that does not exist
SECRETS = (MQTT_PW, CAM_PW_URL, CAM_PW_ENV, quote(CAM_PW_ENV, safe=""), CAM_PW_FILE)


@pytest.fixture
def tls_broker(integration_ready, tmp_path: Path):
    tls = faults.make_tls_material(tmp_path / "tls")
    passwords = faults.password_file(tmp_path / "passwd", {"fg": MQTT_PW, "watcher": "watcher-pw"})
    broker = Mosquitto(tmp_path / "mosquitto", extra_config=faults.tls_listener_config(tls, passwords)).start()
    yield broker, tls
    broker.stop()


def tls_collector(broker: Mosquitto, tls: dict[str, Path], topics: list[str]) -> MqttCollector:
    c = MqttCollector(broker.host, broker.port, topics)
    c.client.tls_set(ca_certs=str(tls["ca"]), certfile=str(tls["client_cert"]), keyfile=str(tls["client_key"]))
    c.client.username_pw_set("watcher", "watcher-pw")
    return c.start()


def test_tls_and_passwords_work_errors_retry_and_no_secret_leaks(
        tls_broker, daemons, tmp_path, oracle, fault_clip, rtsp_factory, prefix):
    broker, tls = tls_broker
    srv = rtsp_factory({"/cam": fault_clip("flip")})
    (tmp_path / "mqtt.pw").write_text(MQTT_PW + "\n")
    (tmp_path / "cam.pw").write_text(CAM_PW_FILE + "\n")
    good_tls = {"ca_file": str(tls["ca"]), "cert_file": str(tls["client_cert"]), "key_file": str(tls["client_key"])}
    mqtt = {"username": "fg", "password_file": str(tmp_path / "mqtt.pw"), "tls": good_tls}
    cameras = {
        # credentials in the URL; the test server does not ask for them (FFmpeg never sends them)
        "inline": {"url": srv.url("/cam").replace("rtsp://", f"rtsp://admin:{CAM_PW_URL}@")},
        # username + password_env, a mount that does not exist (RTSP 404: an error message)
        "env": {"url": srv.url("/nope"), "username": "admin", "password_env": "FG_CAM_PW"},
        # username + password_file, nothing listening (connection refused, retried)
        "file": {"url": f"rtsp://127.0.0.1:{free_port()}/s", "username": "op", "password_file": "cam.pw"},
    }
    env = {"FG_CAM_PW": CAM_PW_ENV}
    watcher = tls_collector(broker, tls, ["#"])

    # 1. Everything right: TLS + client certificate + password; all three cameras run or retry.
    good = start_daemon(daemons, tmp_path, port=broker.port, prefix=prefix, oracle=oracle, cameras=cameras,
                        mqtt_extra=mqtt, env=env, name="good")
    watcher.wait_topic(f"{prefix}/available", lambda m: m.text == "online", 40.0)
    watcher.wait_event(f"{prefix}/inline/events", "focus_lost", 20.0)
    watcher.wait_event(f"{prefix}/env/events", "stream_lost", 20.0)
    watcher.wait_event(f"{prefix}/file/events", "stream_lost", 20.0)
    wait_log(good, r"camera env: .*404", 1, 20.0)  # the RTSP error text went through the log
    wait_log(good, r"camera file: .*reconnecting", 2, 20.0)

    # 2. A wrong CA and a wrong password: a clear error, then retries with backoff; alive.
    other_ca = dict(good_tls, ca_file=str(tls["other_ca"]))
    one_camera = {"file": cameras["file"]}
    wrong_ca = start_daemon(daemons, tmp_path, port=broker.port, prefix=prefix + "_ca", oracle=oracle,
                            cameras=one_camera, mqtt_extra=dict(mqtt, tls=other_ca), name="wrong_ca",
                            state_dir=tmp_path / "state_ca")
    (tmp_path / "bad.pw").write_text("not-" + MQTT_PW + "\n")
    wrong_pw = start_daemon(daemons, tmp_path, port=broker.port, prefix=prefix + "_pw", oracle=oracle,
                            cameras=one_camera, mqtt_extra=dict(mqtt, password_file=str(tmp_path / "bad.pw")),
                            name="wrong_pw", state_dir=tmp_path / "state_pw")
    ca_error = r"ERROR focusguard.delivery.publish: MQTT: TLS handshake with 127\.0\.0\.1:\d+ failed: .*CERTIFICATE_VERIFY_FAILED"
    pw_error = r"ERROR focusguard.delivery.publish: MQTT: broker 127\.0\.0\.1:\d+ refused the connection: Not authorized"
    wait_log(wrong_ca, ca_error, 1, 40.0)
    wait_log(wrong_pw, pw_error, 1, 40.0)
    wait_log(wrong_ca, r"MQTT: TLS handshake .* failed", 3, 20.0)  # still trying, less and less often
    wait_log(wrong_pw, r"MQTT: broker .* refused the connection", 3, 20.0)
    for d, what in ((wrong_ca, r"MQTT: TLS handshake"), (wrong_pw, r"refused the connection")):
        d.assert_running()
        t = stamps(d, what)
        gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
        assert 0.9 < gaps[0] < gaps[1] < 31, f"no backoff: {gaps}"  # paho doubles the wait, up to 30 s
        assert len(wait_log(d, ca_error if d is wrong_ca else pw_error, 0)) == 1  # said once, then debug
    assert wrong_ca.terminate() == 0 and wrong_pw.terminate() == 0
    assert good.terminate() == 0
    time.sleep(0.3)
    watcher.stop()

    # 3. What a person sees from the CLI.
    cli = [*focusguard_command()]
    outputs = {}
    for args in (["--help"], ["run", "--help"], ["check-config", "--help"], ["check-config", str(good.config)]):
        r = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=60, env=good.env, check=False)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
        outputs[" ".join(args)] = r.stdout + r.stderr
    summary = outputs[f"check-config {good.config}"]
    assert f"rtsp://admin:***@127.0.0.1:{srv.port}/cam" in summary
    assert "password *** (file " in summary

    # 4. Search everything for the secrets.
    haystacks = {f"log {d.log_path.name}": log_text(d) for d in (good, wrong_ca, wrong_pw)}
    haystacks |= {f"cli {k}": v for k, v in outputs.items()}
    messages = watcher.messages()
    haystacks["mqtt #"] = "\n".join(f"{m.topic} {m.text}" for m in messages)
    for state_dir in ("state", "state_ca", "state_pw"):
        for f in (tmp_path / state_dir).glob("outbox.sqlite3*"):
            haystacks[f"outbox {state_dir}/{f.name}"] = f.read_bytes().decode("latin-1")
    found = {(secret, where): text.count(secret) for secret in SECRETS for where, text in haystacks.items()
             if text.count(secret)}
    debug_lines = sum(text.count(" DEBUG ") for where, text in haystacks.items() if where.startswith("log"))
    print(f"\nFIGURES secrets: searched {len(haystacks)} outputs ({sum(map(len, haystacks.values()))} chars, "
          f"{debug_lines} debug log lines, {len(messages)} MQTT messages) for {len(SECRETS)} secrets: "
          f"{sum(found.values())} found")
    assert found == {}
    # The searches were not vacuous: the secret-bearing URLs did show up, redacted.
    assert "rtsp://admin:***@" in haystacks[f"log {good.log_path.name}"]
    assert len(messages) > 20


def test_help_does_not_need_a_config_and_is_clean() -> None:
    r = subprocess.run([*focusguard_command(sys.executable), "check-config", "--help"], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0 and "PATH" in r.stdout and r.stderr == ""
