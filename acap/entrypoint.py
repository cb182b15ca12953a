#!/usr/bin/env python3
"""Container entry point of the focusguard ACAP: the app's parameters → the daemon's YAML config → `focusguard run`.

The ACAP launcher (`acap/focusguard`, on the camera) writes each parameter of
manifest.json to a file named after it (raw value, as `parhandclient get` prints it) in
a folder mounted at `$FOCUSGUARD_PARAMS` (default /run/focusguard-params); for local
tests `FOCUSGUARD_PARAM_<Name>` environment variables override. The config watches the
camera's own stream on 127.0.0.1 (the container runs with the host network). Secrets
stay out of the file: the config names environment variables (`password_env`) that
this process sets before it execs the daemon. The config is validated here, so a bad
parameter stops the container with one line naming it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Every parameter of manifest.json → its default (a test keeps the two in step).
PARAMS: dict[str, str] = {
    "MqttHost": "",
    "MqttPort": "1883",
    "MqttUser": "",
    "MqttPassword": "",
    "MqttTopicPrefix": "focusguard",
    "MqttTls": "no",
    "CameraName": "camera",
    "StreamUser": "",
    "StreamPassword": "",
    "StreamPath": "axis-media/media.amp",
    "StreamOptions": "resolution=1280x720",
    "Sensitivity": "medium",
    "IntervalS": "5",
    "RefocusAction": "none",
    "RefocusMinIntervalS": "300",
    "HomeAssistantDiscovery": "yes",
    "LogLevel": "info",
}
SENSITIVITY = {"low": "b_1", "medium": "b_0.75", "high": "b_0.5"}  # first class counted as blurry
MQTT_PASSWORD_ENV = "FOCUSGUARD_MQTT_PASSWORD"
STREAM_PASSWORD_ENV = "FOCUSGUARD_STREAM_PASSWORD"
CAMERA_HOST = "127.0.0.1"  # the camera itself (host network)


class ParamError(Exception):
    """A parameter the daemon cannot use: `str()` names it."""


def _clean(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':  # parhandclient quotes strings
        value = value[1:-1]
    return value


def read_params(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Parameter values: file `<folder>/<Name>`, overridden by `FOCUSGUARD_PARAM_<Name>`, else the default."""
    values = dict(PARAMS)
    for name in PARAMS:
        path = folder / name
        if path.is_file():
            values[name] = _clean(path.read_text(encoding="utf-8", errors="replace"))
        if f"FOCUSGUARD_PARAM_{name}" in environ:
            values[name] = _clean(environ[f"FOCUSGUARD_PARAM_{name}"])
    return values


def _yes(params: Mapping[str, str], name: str) -> bool:
    value = params[name].lower()
    if value not in ("yes", "no", "true", "false", "1", "0"):
        raise ParamError(f"{name}: expected yes or no, got {params[name]!r}")
    return value in ("yes", "true", "1")


def _int(params: Mapping[str, str], name: str) -> int:
    try:
        return int(params[name])
    except ValueError:
        raise ParamError(f"{name}: expected a whole number, got {params[name]!r}") from None


def build_config(
    params: Mapping[str, str], state_dir: str = "/var/lib/focusguard"
) -> tuple[dict[str, Any], dict[str, str]]:
    """The daemon's config (as YAML data) and the environment variables holding its secrets."""
    if not params["MqttHost"]:
        raise ParamError("MqttHost: not set (the MQTT broker's host name or address; app settings on the camera)")
    secrets: dict[str, str] = {}
    mqtt: dict[str, Any] = {
        "host": params["MqttHost"],
        "port": _int(params, "MqttPort"),
        "topic_prefix": params["MqttTopicPrefix"],
        "tls": {"enabled": _yes(params, "MqttTls")},
    }
    if params["MqttUser"]:
        mqtt["username"] = params["MqttUser"]
        if params["MqttPassword"]:
            mqtt["password_env"] = MQTT_PASSWORD_ENV
            secrets[MQTT_PASSWORD_ENV] = params["MqttPassword"]
    sensitivity = params["Sensitivity"].lower()
    if sensitivity not in SENSITIVITY:
        raise ParamError(f"Sensitivity: expected one of {', '.join(SENSITIVITY)}, got {params['Sensitivity']!r}")
    interval = _int(params, "IntervalS")
    query = f"?{params['StreamOptions'].lstrip('?')}" if params["StreamOptions"] else ""
    camera: dict[str, Any] = {
        "url": f"rtsp://{CAMERA_HOST}/{quote(params['StreamPath'].lstrip('/'), safe='/')}{query}",
        "interval_s": float(interval),
        "stream_timeout_s": float(max(10, 3 * interval)),
    }
    if params["StreamUser"]:
        camera["username"] = params["StreamUser"]
        if params["StreamPassword"]:
            camera["password_env"] = STREAM_PASSWORD_ENV
            secrets[STREAM_PASSWORD_ENV] = params["StreamPassword"]
    action = params["RefocusAction"].lower()
    if action != "none":
        refocus: dict[str, Any] = {
            "action": action,
            "url": f"http://{CAMERA_HOST}",
            "min_interval_s": float(_int(params, "RefocusMinIntervalS")),
        }
        if params["StreamUser"]:  # the same account (an operator may autofocus)
            refocus["username"] = params["StreamUser"]
            if params["StreamPassword"]:
                refocus["password_env"] = STREAM_PASSWORD_ENV
        camera["refocus"] = refocus
    config = {
        "mqtt": mqtt,
        "model": {"device": "cpu"},  # the Edge TPU/DLPU is reachable only through larod (README)
        "state_dir": state_dir,
        "log_level": params["LogLevel"].lower(),
        "homeassistant": {"discovery": _yes(params, "HomeAssistantDiscovery")},
        "defaults": {"blurry_from": SENSITIVITY[sensitivity]},
        "cameras": {params["CameraName"]: camera},
    }
    return config, secrets


def write_config(config: Mapping[str, Any], path: Path) -> None:
    """YAML is a superset of JSON: one JSON document is a valid config file (no PyYAML needed here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)


def main() -> int:
    folder = Path(os.environ.get("FOCUSGUARD_PARAMS", "/run/focusguard-params"))
    path = Path(os.environ.get("FOCUSGUARD_CONFIG", "/tmp/focusguard.yaml"))
    try:
        config, secrets = build_config(
            read_params(folder, os.environ), os.environ.get("STATE_DIRECTORY", "/var/lib/focusguard")
        )
    except ParamError as err:
        print(f"focusguard-acap: parameter {err}", file=sys.stderr)
        return 2
    write_config(config, path)
    env = {**os.environ, **secrets}
    os.environ.update(secrets)  # load_config resolves password_env now
    from focusguard.common.errors import FocusguardError
    from focusguard.settings.config import load_config

    try:
        load_config(path)
    except FocusguardError as err:
        print(f"focusguard-acap: the parameters give an invalid config: {err}", file=sys.stderr)
        return 2
    os.execvpe("focusguard", ["focusguard", "run", "--config", str(path)], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
