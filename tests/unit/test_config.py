"""Config loading: defaults, overrides, secrets, and many malformed configs via the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from focusguard.commands.cli import main
from focusguard.common.errors import ConfigError
from focusguard.settings.config import CAMERA_DEFAULTS, CameraSettings, load_config

WriteConfig = Callable[..., Path]

MINIMAL = """
mqtt: {host: broker.local, port: 1884}
cameras:
  gate: {url: "rtsp://10.0.0.5/stream1"}
"""


def test_minimal_config_gets_design_defaults(write_config: WriteConfig) -> None:
    config = load_config(write_config(MINIMAL))
    assert (config.mqtt.host, config.mqtt.port) == ("broker.local", 1884)
    assert config.mqtt.topic_prefix == "focusguard"
    assert config.mqtt.keepalive_s == 30
    assert config.mqtt.username is None and config.mqtt.password is None
    assert config.mqtt.tls.enabled is False
    assert config.model.path is None and config.model.device == "auto" and (config.model.threads, config.model.interpreters) == (1, 2)
    assert config.log_level == "info"
    assert config.state_dir == Path.home() / ".local" / "state" / "focusguard"
    (gate,) = config.cameras
    assert gate.name == "gate" and gate.url == "rtsp://10.0.0.5/stream1"
    assert gate.interval_s == 1.0
    assert gate.blurry_from == "b_0.75"
    assert (gate.window, gate.lost_votes, gate.restore_votes) == (8, 6, 6)
    assert gate.stream_timeout_s == 10.0
    assert gate.keyframes_only == "auto"
    assert config.defaults == CameraSettings()
    assert config.labels[0] == "sharp" and len(config.labels) == 9


def test_mqtt_section_is_optional(write_config: WriteConfig) -> None:
    config = load_config(write_config('cameras: {gate: {url: "file:///tmp/clip.mp4"}}'))
    assert (config.mqtt.host, config.mqtt.port) == ("127.0.0.1", 1883)


def test_defaults_and_per_camera_overrides_of_every_key(write_config: WriteConfig) -> None:
    config = load_config(
        write_config(
            """
            defaults: {interval_s: 2, blurry_from: b_1, window: 10, lost_votes: 7, restore_votes: 5,
                       stream_timeout_s: 30, keyframes_only: true}
            cameras:
              a: {url: "rtsp://h/a"}
              b: {url: "rtsp://h/b", interval_s: 0.5, blurry_from: b_0.5, window: 4, lost_votes: 3,
                  restore_votes: 2, stream_timeout_s: 5, keyframes_only: false}
            """
        )
    )
    a, b = config.cameras
    assert (a.interval_s, a.blurry_from, a.window, a.lost_votes, a.restore_votes) == (2.0, "b_1", 10, 7, 5)
    assert (a.stream_timeout_s, a.keyframes_only) == (30.0, True)
    assert (b.interval_s, b.blurry_from, b.window, b.lost_votes, b.restore_votes) == (0.5, "b_0.5", 4, 3, 2)
    assert (b.stream_timeout_s, b.keyframes_only) == (5.0, False)
    assert isinstance(a.interval_s, float)
    assert set(CAMERA_DEFAULTS) == {
        "interval_s", "blurry_from", "window", "lost_votes", "restore_votes", "stream_timeout_s", "keyframes_only",
        "detector", "preprocess", "laplacian_threshold",  # tests/unit/test_detectors.py covers these
        "combined_drop", "night_drop",  # tests/unit/test_combined.py
        "fusion_threshold", "scene_change", "cnn_refresh_s",  # tests/unit/test_config_fusion.py
    }  # fmt: skip


def test_password_sources(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FG_TEST_PW", "from-env")
    env = load_config(write_config(MINIMAL + "\n" + ""))  # baseline: no password
    assert env.mqtt.password is None
    text = 'mqtt: {host: h, username: u, password_env: FG_TEST_PW}\ncameras: {g: {url: "rtsp://h/s"}}\n'
    config = load_config(write_config(text))
    assert (config.mqtt.username, config.mqtt.password, config.mqtt.password_source) == (
        "u",
        "from-env",
        "env FG_TEST_PW",
    )
    assert "from-env" not in repr(config)

    (tmp_path / "mqtt.pw").write_text("from-file\n")
    config = load_config(write_config('mqtt: {username: u, password_file: mqtt.pw}\ncameras: {g: {url: "rtsp://h/s"}}'))
    assert config.mqtt.password == "from-file"  # relative to the config file, newline stripped

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt.pw").write_text("from-credentials")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = load_config(write_config('mqtt: {username: u, password_file: mqtt.pw}\ncameras: {g: {url: "rtsp://h/s"}}'))
    assert config.mqtt.password == "from-credentials"  # systemd LoadCredential=


def test_camera_credentials_are_injected_into_the_url(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAM_PW", "p@ss:word")
    config = load_config(
        write_config('cameras: {gate: {url: "rtsp://10.0.0.5:554/s1", username: admin, password_env: CAM_PW}}')
    )
    (gate,) = config.cameras
    assert gate.url == "rtsp://admin:p%40ss%3Aword@10.0.0.5:554/s1"
    assert gate.redacted_url == "rtsp://admin:***@10.0.0.5:554/s1"
    assert "p%40ss" not in repr(config) and "p@ss" not in repr(config)


def test_state_dir_from_systemd(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/focusguard:/var/lib/other")
    assert load_config(write_config(MINIMAL)).state_dir == Path("/var/lib/focusguard")


def test_tls_files_are_loaded_at_start(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    path = write_config('mqtt: {tls: {ca_file: ca.pem}}\ncameras: {g: {url: "rtsp://h/s"}}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "mqtt.tls.ca_file"
    assert str(info.value).startswith(f"{path}: mqtt.tls.ca_file: cannot load CA certificates")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: \(file\): cannot read"):
        load_config(tmp_path / "missing.yaml")


# (id, YAML, key path named in the message, part of the problem text)
MALFORMED: list[tuple[str, str, str, str]] = [
    ("yaml-syntax", "cameras: [\n", "line 2, column 1", "invalid YAML"),
    ("yaml-tab", "cameras:\n\tgate: {}\n", "line 2, column 1", "invalid YAML"),
    ("empty-file", "", "(document)", "empty"),
    ("top-level-list", "- a\n- b\n", "(document)", "expected a mapping"),
    ("unknown-top-key", "mqt: {}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqt", "did you mean 'mqtt'"),
    ("unknown-mqtt-key", "mqtt: {hots: x}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.hots", "did you mean 'host'"),
    ("mqtt-not-mapping", "mqtt: [1]\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt", "expected a mapping"),
    ("port-string", "mqtt: {port: abc}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.port", "expected an integer"),
    ("port-zero", "mqtt: {port: 0}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.port", "between 1 and 65535"),
    ("port-too-big", "mqtt: {port: 70000}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.port", "between 1 and 65535"),
    ("port-bool", "mqtt: {port: true}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.port", "expected an integer"),
    ("port-float", "mqtt: {port: 1883.5}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.port", "expected an integer"),
    ("host-empty", "mqtt: {host: ''}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.host", "non-empty"),
    ("keepalive", "mqtt: {keepalive_s: 1}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.keepalive_s", "between 5"),
    (
        "prefix-wildcard",
        "mqtt: {topic_prefix: 'a/#'}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "mqtt.topic_prefix",
        "invalid",
    ),
    (
        "password-no-user",
        "mqtt: {password: x}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "mqtt.password",
        "needs mqtt.username",
    ),
    (
        "two-passwords",
        "mqtt: {username: u, password: x, password_env: Y}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "mqtt.password_env",
        "only one",
    ),
    (
        "env-unset",
        "mqtt: {username: u, password_env: FG_SURELY_UNSET_VAR}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "mqtt.password_env",
        "is not set",
    ),
    (
        "password-file-missing",
        "mqtt: {username: u, password_file: /nonexistent/pw}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "mqtt.password_file",
        "cannot read",
    ),
    (
        "tls-ca-missing",
        "mqtt: {tls: {ca_file: /nonexistent/ca.pem}}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "mqtt.tls.ca_file",
        "not found",
    ),
    (
        "tls-unknown-key",
        "mqtt: {tls: {verify: false}}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "mqtt.tls.verify",
        "unknown key",
    ),
    ("outbox-limit", "mqtt: {outbox_limit: 0}\ncameras: {g: {url: 'rtsp://h/s'}}", "mqtt.outbox_limit", "between 1"),
    (
        "duplicate-mqtt-key",
        "mqtt: {port: 1}\nmqtt: {port: 2}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "mqtt",
        "duplicate key",
    ),
    ("device", "model: {device: gpu}\ncameras: {g: {url: 'rtsp://h/s'}}", "model.device", "auto, cpu, edgetpu"),
    ("threads", "model: {threads: 0}\ncameras: {g: {url: 'rtsp://h/s'}}", "model.threads", "between 1 and 64"),
    (
        "labels-missing",
        "model: {labels: /nonexistent/labels.txt}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "model.labels",
        "cannot read labels",
    ),
    ("log-level", "log_level: loud\ncameras: {g: {url: 'rtsp://h/s'}}", "log_level", "must be one of"),
    ("state-dir-type", "state_dir: 5\ncameras: {g: {url: 'rtsp://h/s'}}", "state_dir", "expected a string"),
    ("no-cameras", "mqtt: {host: h}\n", "cameras", "required"),
    ("cameras-empty", "cameras: {}\n", "cameras", "expected a mapping of camera"),
    ("cameras-list", "cameras: [gate]\n", "cameras", "expected a mapping of camera"),
    (
        "duplicate-camera",
        "cameras:\n  gate: {url: 'rtsp://a/s'}\n  gate: {url: 'rtsp://b/s'}\n",
        "cameras.gate",
        "duplicate camera name (lines 2 and 3)",
    ),
    ("camera-name", "cameras: {'front door': {url: 'rtsp://h/s'}}", "cameras.front door", "[A-Za-z0-9_-]+"),
    ("camera-not-mapping", "cameras: {gate: 'rtsp://h/s'}", "cameras.gate", "expected a mapping"),
    ("camera-no-url", "cameras: {gate: {interval_s: 2}}", "cameras.gate.url", "required"),
    ("camera-unknown-key", "cameras: {gate: {url: 'rtsp://h/s', urll: x}}", "cameras.gate.urll", "unknown key"),
    ("url-scheme", "cameras: {gate: {url: 'ftp://h/s'}}", "cameras.gate.url", "unsupported URL scheme 'ftp'"),
    ("url-no-scheme", "cameras: {gate: {url: '10.0.0.5/stream'}}", "cameras.gate.url", "unsupported URL scheme"),
    ("url-no-host", "cameras: {gate: {url: 'rtsp:///s'}}", "cameras.gate.url", "no host"),
    ("url-type", "cameras: {gate: {url: 554}}", "cameras.gate.url", "expected a string"),
    (
        "interval-negative",
        "cameras: {gate: {url: 'rtsp://h/s', interval_s: -1}}",
        "cameras.gate.interval_s",
        "between 0.05 and 3600",
    ),
    (
        "interval-string",
        "cameras: {gate: {url: 'rtsp://h/s', interval_s: fast}}",
        "cameras.gate.interval_s",
        "expected a number",
    ),
    ("interval-nan", "cameras: {gate: {url: 'rtsp://h/s', interval_s: .nan}}", "cameras.gate.interval_s", "between"),
    ("window-zero", "cameras: {gate: {url: 'rtsp://h/s', window: 0}}", "cameras.gate.window", "between 1"),
    (
        "lost-votes-over-window",
        "cameras: {gate: {url: 'rtsp://h/s', lost_votes: 9}}",
        "cameras.gate.lost_votes",
        "<= window (8)",
    ),
    (
        "votes-no-hysteresis",
        "cameras: {gate: {url: 'rtsp://h/s', lost_votes: 4, restore_votes: 4}}",
        "cameras.gate.restore_votes",
        "must exceed window",
    ),
    (
        "blurry-from-unknown",
        "cameras: {gate: {url: 'rtsp://h/s', blurry_from: b_9}}",
        "cameras.gate.blurry_from",
        "unknown class 'b_9'",
    ),
    (
        "blurry-from-sharp",
        "cameras: {gate: {url: 'rtsp://h/s', blurry_from: sharp}}",
        "cameras.gate.blurry_from",
        "every frame",
    ),
    (
        "keyframes-only",
        "cameras: {gate: {url: 'rtsp://h/s', keyframes_only: sometimes}}",
        "cameras.gate.keyframes_only",
        "auto, true or false",
    ),
    (
        "timeout-below-interval",
        "cameras: {gate: {url: 'rtsp://h/s', interval_s: 5, stream_timeout_s: 5}}",
        "cameras.gate.stream_timeout_s",
        "greater than interval_s",
    ),
    (
        "defaults-unknown-key",
        "defaults: {intervall: 1}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "defaults.intervall",
        "did you mean 'interval_s'",
    ),
    (
        "defaults-type",
        "defaults: {window: '8'}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "defaults.window",
        "expected an integer",
    ),
    (
        "defaults-blurry-from",
        "defaults: {blurry_from: b_11}\ncameras: {g: {url: 'rtsp://h/s'}}",
        "defaults.blurry_from",
        "unknown class",
    ),
    (
        "url-and-username",
        "cameras: {gate: {url: 'rtsp://a:b@h/s', username: c}}",
        "cameras.gate.username",
        "both in the url",
    ),
    (
        "file-url-credentials",
        "cameras: {gate: {url: 'file:///x.mp4', username: c}}",
        "cameras.gate.username",
        "no credentials",
    ),
]


@pytest.mark.parametrize(("yaml_text", "key", "problem"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_config_one_line_exit_2(
    yaml_text: str, key: str, problem: str, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(yaml_text)
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"focusguard: error: {path}: {key}: "), lines[0]
    assert problem in lines[0]
    assert "Traceback" not in captured.err


def test_at_least_thirty_distinct_malformed_configs() -> None:
    assert len({m[1] for m in MALFORMED}) >= 30


def test_secret_values_are_never_echoed(write_config: WriteConfig, capsys: pytest.CaptureFixture[str]) -> None:
    # A non-string password (YAML reads 987654 as an int) must be rejected without showing it.
    path = write_config("mqtt: {username: u, password: 987654}\ncameras: {g: {url: 'rtsp://h/s'}}")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mqtt.password: expected a string" in err and "987654" not in err
    # Nor are URL credentials in a URL error.
    path = write_config("cameras: {g: {url: 'rtsp://admin:topsecret@/s'}}")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cameras.g.url" in err and "topsecret" not in err and "admin:***@" in err


SUBPROCESS_CASES = [
    m for m in MALFORMED if m[0] in ("yaml-syntax", "duplicate-camera", "interval-negative", "url-scheme")
]


@pytest.mark.parametrize(
    ("yaml_text", "key", "problem"), [m[1:] for m in SUBPROCESS_CASES], ids=[m[0] for m in SUBPROCESS_CASES]
)
def test_malformed_config_via_python_m(yaml_text: str, key: str, problem: str, write_config: WriteConfig) -> None:
    path = write_config(yaml_text)
    result = subprocess.run(
        [sys.executable, "-m", "focusguard", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert f"{path}: {key}: " in result.stderr and problem in result.stderr
    assert "Traceback" not in result.stderr
