"""Config keys of the integrations: `homeassistant`, `metrics`, per-camera `refocus`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from focusguard.common.errors import ConfigError
from focusguard.settings.config import load_config
from focusguard.settings.config_extras import HomeAssistantConfig, MetricsConfig, RefocusConfig

WriteConfig = Callable[..., Path]


def test_defaults(write_config: WriteConfig) -> None:
    config = load_config(write_config('cameras: {gate: {url: "rtsp://10.0.0.5/s"}}'))
    assert config.homeassistant == HomeAssistantConfig(discovery=True, prefix="homeassistant")
    assert config.metrics == MetricsConfig(prometheus_port=None, prometheus_host="0.0.0.0", stats_interval_s=60.0)
    refocus = config.cameras[0].refocus
    assert refocus.action == "none" and refocus.on_focus_lost and refocus.min_interval_s == 300.0
    assert refocus.url == "http://10.0.0.5"  # derivable even while off (the command topic may choose an action)


def test_every_key_set(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "vapix.pw").write_text("s3cret\n")
    config = load_config(
        write_config(
            """
            homeassistant: {discovery: false, prefix: ha}
            metrics: {prometheus_port: 9108, prometheus_host: 127.0.0.1, stats_interval_s: 0}
            cameras:
              gate:
                url: "rtsp://10.0.0.5/s"
                refocus: {action: VAPIX_AUTOFOCUS, url: "https://cam.local:8443/", username: op,
                          password_file: vapix.pw, min_interval_s: 0, timeout_s: 3, verify_tls: false,
                          on_focus_lost: false}
            """
        )
    )
    assert config.homeassistant == HomeAssistantConfig(discovery=False, prefix="ha")
    assert config.metrics == MetricsConfig(prometheus_port=9108, prometheus_host="127.0.0.1", stats_interval_s=0.0)
    assert config.cameras[0].refocus == RefocusConfig(
        action="vapix_autofocus",
        on_focus_lost=False,
        url="https://cam.local:8443",
        username="op",
        password="s3cret",
        min_interval_s=0.0,
        timeout_s=3.0,
        verify_tls=False,
    )
    assert "s3cret" not in repr(config.cameras[0].refocus)


@pytest.mark.parametrize(
    ("camera_url", "expected"),
    [
        ("rtsp://root:p%40ss@10.0.0.5:554/axis-media/media.amp", ("http://10.0.0.5", "root", "p@ss")),
        ("rtsps://cam.local/s", ("https://cam.local", None, None)),
        ("http://[fe80::1]:8080/mjpg", ("http://[fe80::1]:8080", None, None)),
    ],
)
def test_url_and_credentials_default_to_the_camera_urls(
    write_config: WriteConfig, camera_url: str, expected: tuple[str, str | None, str | None]
) -> None:
    config = load_config(
        write_config(f'cameras: {{gate: {{url: "{camera_url}", refocus: {{action: ptz_autofocus}}}}}}')
    )
    refocus = config.cameras[0].refocus
    assert (refocus.url, refocus.username, refocus.password) == expected


def test_camera_credential_keys_also_become_the_default(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATE_PW", "pw")
    config = load_config(
        write_config(
            'cameras: {gate: {url: "rtsp://10.0.0.5/s", username: op, password_env: GATE_PW,'
            " refocus: {action: vapix_autofocus}}}"
        )
    )
    refocus = config.cameras[0].refocus
    assert (refocus.username, refocus.password) == ("op", "pw")


def test_own_username_without_password_does_not_inherit_the_cameras(write_config: WriteConfig) -> None:
    config = load_config(
        write_config('cameras: {gate: {url: "rtsp://a:b@10.0.0.5/s", refocus: {action: vapix_autofocus, username: c}}}')
    )
    refocus = config.cameras[0].refocus
    assert (refocus.username, refocus.password) == ("c", None)


@pytest.mark.parametrize(
    ("yaml_text", "key", "problem"),
    [
        ("homeassistant: {discovery: yes please}", "homeassistant.discovery", "expected true or false"),
        ("homeassistant: {prefix: 'ha/'}", "homeassistant.prefix", "invalid MQTT topic prefix"),
        ("homeassistant: {discover: true}", "homeassistant.discover", "did you mean 'discovery'"),
        ("metrics: {prometheus_port: 0}", "metrics.prometheus_port", "between 1 and 65535"),
        ("metrics: {prometheus_port: '9108'}", "metrics.prometheus_port", "expected an integer"),
        ("metrics: {stats_interval_s: 0.5}", "metrics.stats_interval_s", "0 (off) or at least 1"),
        ("metrics: {stats_interval_s: -1}", "metrics.stats_interval_s", "between 0 and 86400"),
        ("metrics: {prometheus_host: ''}", "metrics.prometheus_host", "non-empty"),
        ("metrics: {port: 1}", "metrics.port", "unknown key"),
    ],
)
def test_bad_root_sections(write_config: WriteConfig, yaml_text: str, key: str, problem: str) -> None:
    path = write_config(yaml_text + '\ncameras: {gate: {url: "rtsp://h/s"}}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.file, info.value.key) == (str(path), key)
    assert problem in info.value.problem


@pytest.mark.parametrize(
    ("refocus", "camera_url", "key", "problem"),
    [
        ("{action: autofocus}", "rtsp://h/s", "refocus.action", "must be one of none, vapix_autofocus, ptz_autofocus"),
        ("{action: ptz_autofocus}", "file:///clip.mp4", "refocus.url", "no network host"),
        ("{url: 'ftp://h'}", "rtsp://h/s", "refocus.url", "expected http://HOST"),
        ("{url: 'http://u:p@h'}", "rtsp://h/s", "refocus.url", "not in the URL"),
        ("{url: 'http://h/?a=1'}", "rtsp://h/s", "refocus.url", "query"),
        ("{url: 'http://h:99999'}", "rtsp://h/s", "refocus.url", "malformed"),
        ("{password: x}", "rtsp://h/s", "refocus.password", "needs refocus.username"),
        ("{username: u, password: x, password_env: Y}", "rtsp://h/s", "refocus.password_env", "set only one"),
        ("{password_env: NOPE_NOT_SET, username: u}", "rtsp://h/s", "refocus.password_env", "is not set"),
        ("{min_interval_s: -1}", "rtsp://h/s", "refocus.min_interval_s", "between 0 and 86400"),
        ("{timeout_s: 0}", "rtsp://h/s", "refocus.timeout_s", "between 1 and 120"),
        ("{verify_tls: maybe}", "rtsp://h/s", "refocus.verify_tls", "expected true or false"),
        ("{actoin: none}", "rtsp://h/s", "refocus.actoin", "did you mean 'action'"),
        ("on", "rtsp://h/s", "refocus", "expected a mapping"),
    ],
)
def test_bad_refocus(write_config: WriteConfig, refocus: str, camera_url: str, key: str, problem: str) -> None:
    path = write_config(f'cameras: {{gate: {{url: "{camera_url}", refocus: {refocus}}}}}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == f"cameras.gate.{key}"
    assert problem in info.value.problem


def test_refocus_is_per_camera_not_a_default(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError, match=r"defaults\.refocus: unknown key"):
        load_config(write_config('defaults: {refocus: {action: none}}\ncameras: {gate: {url: "rtsp://h/s"}}'))


def test_check_config_summary_shows_integrations_without_secrets(write_config: WriteConfig) -> None:
    from focusguard.commands.cli import summary

    config = load_config(
        write_config(
            """
            metrics: {prometheus_port: 9108, stats_interval_s: 0}
            homeassistant: {discovery: false}
            cameras:
              gate: {url: "rtsp://root:hunter22@10.0.0.5/s", refocus: {action: vapix_autofocus}}
              yard: {url: "rtsp://10.0.0.6/s"}
            """
        )
    )
    text = "\n".join(summary(config, model_line="model.tflite"))
    assert "integrations: Home Assistant discovery off, <p>/stats off, Prometheus 0.0.0.0:9108" in text
    assert "gate refocus: vapix_autofocus via http://10.0.0.5 on focus_lost, at most every 300 s, user root" in text
    assert "yard refocus" not in text and "hunter22" not in text
