"""The Axis ACAP: manifest.json and the entry point's parameters → a config the daemon accepts (no Docker here)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from focusguard import __version__
from focusguard.common.errors import ConfigError
from focusguard.settings.config import load_config

ACAP = Path(__file__).resolve().parents[2] / "acap"


def _entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("focusguard_acap_entrypoint", ACAP / "entrypoint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


entrypoint = _entrypoint()


@pytest.fixture(scope="module")
def manifest() -> dict:  # type: ignore[type-arg]
    return json.loads((ACAP / "manifest.json").read_text())


def test_manifest_schema_and_setup(manifest: dict) -> None:  # type: ignore[type-arg]
    assert re.fullmatch(r"1\.\d+(\.\d+)?", manifest["schemaVersion"])  # schema 1.x: AXIS OS 11 era
    setup = manifest["acapPackageConf"]["setup"]
    for key in ("appName", "friendlyName", "vendor", "version", "runMode", "embeddedSdkVersion"):
        assert isinstance(setup[key], str) and setup[key], key
    assert re.fullmatch(r"[A-Za-z0-9_]{1,26}", setup["appName"])  # also the executable's name
    assert (ACAP / setup["appName"]).is_file()
    assert setup["runMode"] in ("respawn", "once", "never")
    assert re.fullmatch(r"\d+\.\d+\.\d+", setup["version"])
    assert setup["version"] == __version__.split("+")[0] or __version__.startswith("0.0.0")
    conf = manifest["acapPackageConf"]
    assert (ACAP / conf["installation"]["postInstallScript"]).is_file()
    assert (ACAP / conf["uninstallation"]["preUninstallScript"]).is_file()


def test_param_config_entries(manifest: dict) -> None:  # type: ignore[type-arg]
    params = manifest["acapPackageConf"]["configuration"]["paramConfig"]
    names = [p["name"] for p in params]
    assert len(names) == len(set(names))
    for param in params:
        assert set(param) == {"name", "default", "type"}, param
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", param["name"])
        assert isinstance(param["default"], str)
        assert re.fullmatch(r"(string(:maxlen=\d+)?|password|bool:no,yes|int:[a-z=0-9;]+|enum:.+)", param["type"])
        if param["type"].startswith("enum:"):
            assert param["default"] in [v.strip() for v in param["type"][5:].split(",")]
        if param["type"] == "bool:no,yes":
            assert param["default"] in ("no", "yes")
    # the settings a camera user expects: MQTT, credentials, sensitivity, interval
    for name in ("MqttHost", "MqttPort", "MqttUser", "MqttPassword", "Sensitivity", "IntervalS"):
        assert name in names


def test_entrypoint_knows_exactly_the_manifest_params_and_defaults(manifest: dict) -> None:  # type: ignore[type-arg]
    params = {p["name"]: p["default"] for p in manifest["acapPackageConf"]["configuration"]["paramConfig"]}
    assert entrypoint.PARAMS == params
    launcher = (ACAP / "focusguard").read_text()
    assert set(re.search(r'PARAMS="([^"]+)"', launcher).group(1).split()) == set(params)  # type: ignore[union-attr]


def _packaged(tmp_path: Path, params: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    config, secrets = entrypoint.build_config({**entrypoint.PARAMS, **params}, state_dir=str(tmp_path / "state"))
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "focusguard.yaml"
    entrypoint.write_config(config, path)
    return path


def test_default_parameters_give_a_valid_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _packaged(tmp_path, {"MqttHost": "broker.lan"}, monkeypatch)
    assert path.stat().st_mode & 0o777 == 0o600
    config = load_config(path)
    (camera,) = config.cameras
    assert camera.name == "camera"
    assert camera.url == "rtsp://127.0.0.1/axis-media/media.amp?resolution=1280x720"
    assert (camera.interval_s, camera.stream_timeout_s, camera.blurry_from) == (5.0, 15.0, "b_0.75")
    assert camera.refocus.action == "none"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.username) == ("broker.lan", 1883, None)
    assert config.model.device == "cpu" and config.homeassistant.discovery
    assert yaml.safe_load(path.read_text()) == json.loads(path.read_text())  # JSON written, read as YAML


def test_every_parameter_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = {
        "MqttHost": "10.0.0.2", "MqttPort": "8883", "MqttUser": "cam", "MqttPassword": "mq'tt\"pw",
        "MqttTopicPrefix": "site/fg", "MqttTls": "yes", "CameraName": "lobby", "StreamUser": "op",
        "StreamPassword": "st:re@m/pw", "StreamPath": "/axis-media/media.amp", "StreamOptions": "?camera=2&fps=2",
        "Sensitivity": "high", "IntervalS": "2", "RefocusAction": "vapix_autofocus", "RefocusMinIntervalS": "600",
        "HomeAssistantDiscovery": "no", "LogLevel": "debug",
    }  # fmt: skip
    path = _packaged(tmp_path, params, monkeypatch)
    text = path.read_text()
    assert "mq'tt" not in text and "st:re@m" not in text  # secrets only in the environment
    config = load_config(path)
    (camera,) = config.cameras
    assert camera.url == "rtsp://op:st%3Are%40m%2Fpw@127.0.0.1/axis-media/media.amp?camera=2&fps=2"
    assert (camera.name, camera.interval_s, camera.stream_timeout_s, camera.blurry_from) == (
        "lobby",
        2.0,
        10.0,
        "b_0.5",
    )
    assert (config.mqtt.port, config.mqtt.topic_prefix, config.mqtt.tls.enabled) == (8883, "site/fg", True)
    assert (config.mqtt.username, config.mqtt.password) == ("cam", "mq'tt\"pw")
    refocus = camera.refocus
    assert (refocus.action, refocus.url, refocus.username, refocus.password) == (
        "vapix_autofocus", "http://127.0.0.1", "op", "st:re@m/pw"
    )  # fmt: skip
    assert refocus.min_interval_s == 600.0
    assert not config.homeassistant.discovery and config.log_level == "debug"


def test_params_from_files_and_environment(tmp_path: Path) -> None:
    folder = tmp_path / "params"
    folder.mkdir()
    (folder / "MqttHost").write_text('"broker.lan"\n')  # as parhandclient prints it
    (folder / "IntervalS").write_text("10\n")
    values = entrypoint.read_params(folder, {"FOCUSGUARD_PARAM_IntervalS": "3"})
    assert (values["MqttHost"], values["IntervalS"], values["CameraName"]) == ("broker.lan", "3", "camera")


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, "MqttHost: not set"),
        ({"MqttHost": "b", "Sensitivity": "extreme"}, "Sensitivity: expected one of low, medium, high"),
        ({"MqttHost": "b", "IntervalS": "fast"}, "IntervalS: expected a whole number"),
        ({"MqttHost": "b", "MqttTls": "maybe"}, "MqttTls: expected yes or no"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict[str, str], problem: str) -> None:
    with pytest.raises(entrypoint.ParamError, match=problem):
        entrypoint.build_config({**entrypoint.PARAMS, **params})


def test_parameters_the_daemon_rejects_are_reported_by_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _packaged(tmp_path, {"MqttHost": "b", "CameraName": "front door"}, monkeypatch)
    with pytest.raises(ConfigError, match=r"cameras\.front door: camera names must match"):
        load_config(path)


def test_main_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FOCUSGUARD_PARAMS", str(tmp_path / "none"))
    monkeypatch.setenv("FOCUSGUARD_CONFIG", str(tmp_path / "fg.yaml"))
    assert entrypoint.main() == 2
    assert capsys.readouterr().err.startswith("focusguard-acap: parameter MqttHost: not set")
    monkeypatch.setenv("FOCUSGUARD_PARAM_MqttHost", "b")
    monkeypatch.setenv("FOCUSGUARD_PARAM_CameraName", "bad name")
    assert entrypoint.main() == 2
    assert "invalid config" in capsys.readouterr().err


def test_compose_file_runs_the_image_the_scripts_load() -> None:
    compose = yaml.safe_load((ACAP / "docker-compose.yml").read_text())
    service = compose["services"]["focusguard"]
    assert service["network_mode"] == "host"
    assert service["image"] in (ACAP / "preuninstall.sh").read_text()
    assert "focusguard-image.tar" in (ACAP / "postinstall.sh").read_text()
    assert "./localdata/params:/run/focusguard-params:ro" in service["volumes"]
    dockerfile = (ACAP / "Dockerfile").read_text()
    assert "acap/entrypoint.py" in dockerfile and "/usr/local/share/focusguard/" in dockerfile
