"""YAML configuration → typed, validated, frozen dataclasses.

Owns the config schema (keys, types, ranges, defaults: docs/DESIGN.md), the per-camera
overlay of `defaults`, secret resolution (`password`, `password_env`, `password_file`,
the latter relative to systemd's `$CREDENTIALS_DIRECTORY` when set; cameras may also
take `username` + one of those instead of credentials in the URL). Every problem raises
`ConfigError(file, key.path, problem)`. `redact_url` lives in `redact` and is re-exported.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from focusguard.analysis import infer
from focusguard.common.errors import ConfigError, ModelError
from focusguard.common.redact import redact_url as redact_url  # re-exported: config.redact_url
from focusguard.settings.config_extras import (
    HomeAssistantConfig,
    MetricsConfig,
    RefocusConfig,
    parse_homeassistant,
    parse_metrics,
    parse_refocus,
)
from focusguard.settings.scaleout import CoordinationConfig, HealthConfig, parse_coordination, parse_health
from focusguard.settings.yamlconf import Section, kind, parse_yaml, show

KeyframesOnly = Literal["auto"] | bool

URL_SCHEMES = ("rtsp", "rtsps", "http", "https", "file")
CAMERA_NAME = re.compile(r"[A-Za-z0-9_-]+")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEVICES = ("auto", "cpu", "edgetpu")
# focusguard.analysis.detectors; combined: focusguard.analysis.combined; fusion (default): focusguard.analysis.fusion
SCENE_CHANGE_POLICIES = ("tamper", "relearn")  # fusion: what a lasting change of the view is (tamper.py)
DETECTORS = ("fusion", "cnn", "dft", "laplacian", "combined")
PREPROCESS_MODES = ("resize", "tiles")  # focusguard.analysis.preprocess: whole frame, or native-scale tiles
_SECRET_KEYS = ("password", "password_env", "password_file")
_FLOAT_RANGES = {"interval_s": (0.05, 3600.0), "stream_timeout_s": (0.1, 86_400.0)}


@dataclass(frozen=True)
class TlsConfig:
    enabled: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "focusguard"
    client_id: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_source: str | None = None  # "password", "env NAME" or "file PATH", for summaries
    keepalive_s: int = 30
    outbox_limit: int = 10_000
    tls: TlsConfig = field(default_factory=TlsConfig)


@dataclass(frozen=True)
class ModelConfig:
    path: Path | None = None  # None: the shipped model
    labels: Path | None = None  # None: beside the model, else the built-in class list
    device: str = "auto"
    threads: int = 1  # per interpreter
    interpreters: int = 2  # CPU: cameras' inferences run on this many interpreters at once (bench/RESULTS_cascade.md)


@dataclass(frozen=True)
class CameraSettings:
    """The per-camera keys that `defaults` provides and each camera may override."""

    interval_s: float = 1.0
    blurry_from: str = "b_0.75"
    window: int = 8
    lost_votes: int = 6
    restore_votes: int = 6
    stream_timeout_s: float = 10.0
    keyframes_only: KeyframesOnly = "auto"
    detector: str = "fusion"  # fusion (default: measured best, models/MODEL_CARD.md) | cnn | dft | laplacian | combined
    preprocess: str = "resize"  # cnn only: resize (thesis) | tiles (native-scale tiles, 4K cameras)
    laplacian_threshold: float | None = None  # laplacian: absolute variance threshold; None: relative
    combined_drop: float = 0.6  # combined, day: blurry needs the CNN AND sharpness < combined_drop x baseline
    night_drop: float = 0.7  # combined, low_light/ir: blurry when sharpness < night_drop x that regime's baseline
    fusion_threshold: float | None = None  # fusion: vote blurry at P(defocus) >= this; None: the model's own
    cnn_refresh_s: float = 60.0  # fusion: the CNN runs at least this often (else only when it can change the verdict); 0 = every analysis
    scene_change: str = "tamper"  # fusion: a lasting change of the view is reported (tamper) | relearnt (relearn: PTZ)


@dataclass(frozen=True, kw_only=True)
class CameraConfig(CameraSettings):
    name: str
    url: str = field(repr=False)  # may carry credentials: use `redacted_url` anywhere visible
    refocus: RefocusConfig = field(default_factory=RefocusConfig)  # config_extras: VAPIX/PTZ autofocus

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)


CAMERA_DEFAULTS: dict[str, Any] = asdict(CameraSettings())


@dataclass(frozen=True)
class AppConfig:
    cameras: tuple[CameraConfig, ...]
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    labels: tuple[str, ...] = infer.DEFAULT_LABELS
    defaults: CameraSettings = field(default_factory=CameraSettings)
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    log_level: str = "info"
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    coordination: CoordinationConfig | None = None  # None: a single box (scaleout.py)
    health: HealthConfig = field(default_factory=HealthConfig)
    source: str = "<config>"


# --------------------------------------------------------------------------- loading


def default_state_dir() -> Path:
    """systemd's `$STATE_DIRECTORY` (first entry), else ``~/.local/state/focusguard``."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else Path.home() / ".local" / "state" / "focusguard"


def load_config(path: str | Path) -> AppConfig:
    """Read and validate a YAML config file; raises `ConfigError`."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(file, "(file)", f"cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(file, "(file)", "not UTF-8 text") from err
    return parse_config(parse_yaml(text, file), file)


def parse_config(data: Any, file: str = "<config>") -> AppConfig:
    """Validate already-parsed YAML data (a mapping) into an `AppConfig`."""
    if data is None:
        raise ConfigError(file, "(document)", "empty; expected a mapping with at least 'cameras'")
    root = Section(file, "", data)
    root.allow("mqtt", "model", "state_dir", "log_level", "defaults", "cameras", "homeassistant", "metrics",
               "coordination", "health")
    base_dir = Path(file).resolve().parent if not file.startswith("<") else Path.cwd()
    mqtt = _parse_mqtt(root.section("mqtt"), base_dir)
    model = _parse_model(root.section("model"), base_dir)
    labels = _resolve_labels(root, model)
    dsec = root.section("defaults")
    dsec.allow(*CAMERA_DEFAULTS)
    defaults = {**CAMERA_DEFAULTS, **_camera_settings(dsec)}
    _check_camera(defaults, labels, lambda _key: dsec)
    cameras_node = root.get("cameras", required=True)
    if not isinstance(cameras_node, Mapping) or not cameras_node:
        raise root.error("cameras", f"expected a mapping of camera name → settings, got {kind(cameras_node)}")
    cameras = tuple(
        _parse_camera(root, name, value, defaults, labels, dsec, base_dir) for name, value in cameras_node.items()
    )
    state_raw = root.opt_str("state_dir")
    state_dir = _resolve_path(state_raw, base_dir) if state_raw else default_state_dir()
    log_level = root.choice("log_level", LOG_LEVELS, "info", lower=True)
    return AppConfig(
        cameras=cameras,
        mqtt=mqtt,
        model=model,
        labels=labels,
        defaults=CameraSettings(**defaults),
        state_dir=state_dir,
        log_level=log_level,
        homeassistant=parse_homeassistant(root.section("homeassistant")),
        metrics=parse_metrics(root.section("metrics")),
        coordination=parse_coordination(root.section("coordination")),
        health=parse_health(root.section("health")),
        source=file,
    )


def _parse_mqtt(sec: Section, base_dir: Path) -> MqttConfig:
    sec.allow(
        "host", "port", "topic_prefix", "client_id", "username", *_SECRET_KEYS, "keepalive_s", "outbox_limit", "tls"
    )
    host = sec.str_("host", "127.0.0.1")
    if not host or any(c.isspace() for c in host):
        raise sec.error("host", "must be a non-empty host name or address without spaces")
    prefix = sec.str_("topic_prefix", "focusguard")
    if not prefix or any(c in prefix for c in "+#\0") or prefix.startswith(("/", "$")) or prefix.endswith("/"):
        raise sec.error("topic_prefix", f"invalid MQTT topic prefix {prefix!r} (no + # or leading $ or / )")
    client_id = sec.opt_str("client_id")
    if client_id == "":
        raise sec.error("client_id", "must not be empty (use null for a generated id)")
    username = sec.opt_str("username")
    password, source = _secret(sec, base_dir)
    if password is not None and username is None:
        raise sec.error(_source_key(sec), "a password needs mqtt.username")
    tls_sec = sec.section("tls")
    tls_sec.allow("enabled", "ca_file", "cert_file", "key_file")
    files = {k: _readable_file(tls_sec, k, base_dir) for k in ("ca_file", "cert_file", "key_file")}
    if files["key_file"] and not files["cert_file"]:
        raise tls_sec.error("key_file", "needs mqtt.tls.cert_file")
    tls = TlsConfig(enabled=tls_sec.bool_("enabled", any(files.values())), **files)
    if tls.enabled:
        _check_tls(tls_sec, tls)
    return MqttConfig(
        host=host,
        port=sec.int_("port", 1883, 1, 65535),
        topic_prefix=prefix,
        client_id=client_id,
        username=username,
        password=password,
        password_source=source,
        keepalive_s=sec.int_("keepalive_s", 30, 5, 3600),
        outbox_limit=sec.int_("outbox_limit", 10_000, 1, 1_000_000),
        tls=tls,
    )


def _check_tls(sec: Section, tls: TlsConfig) -> None:
    """Load the CA and client certificate now, so a bad file fails at start with its key path."""
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    except (ssl.SSLError, OSError) as err:
        raise sec.error("ca_file", f"cannot load CA certificates: {err}") from err
    if tls.cert_file:
        key = str(tls.key_file) if tls.key_file else None
        try:  # an empty password makes an encrypted key fail here instead of prompting on a tty
            context.load_cert_chain(str(tls.cert_file), key, password=lambda: b"")
        except (ssl.SSLError, OSError) as err:
            raise sec.error("cert_file", f"cannot load client certificate/key: {err}") from err


def _source_key(sec: Section) -> str:
    return next((k for k in _SECRET_KEYS if sec.data.get(k) is not None), "password")


def _secret(sec: Section, base_dir: Path) -> tuple[str | None, str | None]:
    """The password from exactly one of `password`, `password_env`, `password_file`."""
    given = [k for k in _SECRET_KEYS if sec.data.get(k) is not None]
    if len(given) > 1:
        raise sec.error(given[1], f"set only one of {', '.join(_SECRET_KEYS)} (also set: {given[0]})")
    if not given:
        return None, None
    if not isinstance(sec.data[given[0]], str):  # never echo a secret's value
        raise sec.error(given[0], f"expected a string, got {kind(sec.data[given[0]])} (quote it in YAML)")
    if given[0] == "password":
        return str(sec.data["password"]), "password"
    if given[0] == "password_env":
        name = sec.str_("password_env", "")
        value = os.environ.get(name)
        if value is None:
            raise sec.error("password_env", f"environment variable {name!r} is not set")
        return value, f"env {name}"
    raw = sec.str_("password_file", "")
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (Path(creds) if creds else base_dir) / path
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as err:
        raise sec.error("password_file", f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from err
    if not value:
        raise sec.error("password_file", f"{path} is empty")
    return value, f"file {path}"


def _parse_model(sec: Section, base_dir: Path) -> ModelConfig:
    sec.allow("path", "labels", "device", "threads", "interpreters")
    path, labels = sec.opt_str("path"), sec.opt_str("labels")
    return ModelConfig(
        path=_resolve_path(path, base_dir) if path else None,
        labels=_resolve_path(labels, base_dir) if labels else None,
        device=sec.choice("device", DEVICES, "auto", lower=True),
        threads=sec.int_("threads", 1, 1, 64),
        interpreters=sec.int_("interpreters", 2, 1, 16),
    )


def _resolve_labels(root: Section, model: ModelConfig) -> tuple[str, ...]:
    labels_path = infer.labels_path_for(model.path or infer.default_model_path(), model.labels)
    if labels_path is None:
        return infer.DEFAULT_LABELS
    try:
        return tuple(infer.load_labels(labels_path))
    except ModelError as err:
        raise ConfigError(root.file, "model.labels", str(err)) from err


def _camera_settings(sec: Section) -> dict[str, Any]:
    """Validated camera settings present in `sec` (the `defaults` or one camera's section)."""
    values: dict[str, Any] = {}
    for key in CAMERA_DEFAULTS:
        raw = sec.data.get(key)
        if raw is None:
            continue
        if key in _FLOAT_RANGES:
            values[key] = sec.float_(key, 0.0, *_FLOAT_RANGES[key])
        elif key in ("window", "lost_votes", "restore_votes"):
            values[key] = sec.int_(key, 0, 1, 1000)
        elif key == "blurry_from":
            values[key] = sec.str_(key, "")
        elif key == "detector":
            values[key] = sec.choice(key, DETECTORS, "fusion", lower=True)
        elif key == "preprocess":
            values[key] = sec.choice(key, PREPROCESS_MODES, "resize", lower=True)
        elif key == "laplacian_threshold":
            values[key] = sec.float_(key, 0.0, 0.0, 1e9)
        elif key == "combined_drop":
            values[key] = sec.float_(key, 0.6, 0.05, 0.95)
        elif key == "night_drop":
            values[key] = sec.float_(key, 0.7, 0.05, 0.95)
        elif key == "fusion_threshold":
            values[key] = sec.float_(key, 0.5, 0.01, 0.99)
        elif key == "cnn_refresh_s":
            values[key] = sec.float_(key, 60.0, 0.0, 86_400.0)
        elif key == "scene_change":
            values[key] = sec.choice(key, SCENE_CHANGE_POLICIES, "tamper", lower=True)
        elif isinstance(raw, bool) or raw == "auto":  # keyframes_only
            values[key] = raw
        else:
            raise sec.error(key, f"expected auto, true or false, got {show(raw)}")
    return values


def _parse_camera(
    root: Section,
    name: Any,
    value: Any,
    defaults: dict[str, Any],
    labels: tuple[str, ...],
    dsec: Section,
    base_dir: Path,
) -> CameraConfig:
    if not isinstance(name, str) or not CAMERA_NAME.fullmatch(name):
        raise root.error(f"cameras.{name}", "camera names must match [A-Za-z0-9_-]+")
    sec = Section(root.file, f"cameras.{name}", value)
    sec.allow("url", "username", *_SECRET_KEYS, *CAMERA_DEFAULTS, "refocus")
    url = _camera_url(sec, base_dir)
    merged = {**defaults, **_camera_settings(sec)}
    _check_camera(merged, labels, lambda key: sec if sec.data.get(key) is not None else dsec)
    refocus = parse_refocus(sec.section("refocus"), url, lambda s: _secret(s, base_dir))
    return CameraConfig(name=name, url=url, refocus=refocus, **merged)


def _check_camera(merged: dict[str, Any], labels: tuple[str, ...], owner: Callable[[str], Section]) -> None:
    """Cross-key rules on the merged settings; `owner(key)` is the section that set `key`."""
    blurry_from = merged["blurry_from"]
    if blurry_from not in labels:
        raise owner("blurry_from").error("blurry_from", f"unknown class {blurry_from!r} (classes: {', '.join(labels)})")
    if blurry_from == labels[0]:
        raise owner("blurry_from").error("blurry_from", f"{blurry_from!r} would count every frame as blurry")
    if merged["detector"] == "fusion":
        from focusguard.analysis.fusion_model import supported_classes

        supported = supported_classes(labels)
        if blurry_from not in supported:
            raise owner("blurry_from").error(
                "blurry_from", f"detector fusion has no model for {blurry_from!r} (has: {', '.join(supported)})"
            )
    window = merged["window"]
    for key in ("lost_votes", "restore_votes"):
        if merged[key] > window:
            raise owner(key).error(key, f"must be <= window ({window}), got {merged[key]}")
    if merged["lost_votes"] + merged["restore_votes"] <= window:
        raise owner("restore_votes").error(
            "restore_votes", f"lost_votes + restore_votes must exceed window ({window}) so the state cannot flap"
        )
    if merged["stream_timeout_s"] <= merged["interval_s"]:
        raise owner("stream_timeout_s").error(
            "stream_timeout_s", f"must be greater than interval_s ({merged['interval_s']:g})"
        )


def _camera_url(sec: Section, base_dir: Path) -> str:
    url = sec.str_("url", "", required=True)
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise sec.error("url", f"malformed URL {redact_url(url)!r}: {err}") from err
    if parts.scheme.lower() not in URL_SCHEMES:
        shown = parts.scheme or "none"
        raise sec.error("url", f"unsupported URL scheme {shown!r} (allowed: {', '.join(URL_SCHEMES)})")
    if parts.scheme.lower() != "file" and not parts.hostname:
        raise sec.error("url", f"no host in {redact_url(url)!r}")
    if parts.scheme.lower() == "file" and not parts.path:
        raise sec.error("url", "file URL without a path")
    username = sec.opt_str("username")
    password, _source = _secret(sec, base_dir)
    if username is None and password is None:
        return url
    if parts.scheme.lower() == "file":
        raise sec.error(_source_key(sec) if username is None else "username", "file URLs take no credentials")
    if "@" in parts.netloc:
        raise sec.error("username", "credentials are given both in the url and as keys")
    if username is None:
        raise sec.error(_source_key(sec), "a password needs username")
    userinfo = quote(username, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def _readable_file(sec: Section, key: str, base_dir: Path) -> Path | None:
    raw = sec.opt_str(key)
    if not raw:
        return None
    path = _resolve_path(raw, base_dir)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise sec.error(key, f"file not found or not readable: {path}")
    return path


def _resolve_path(raw: str, base_dir: Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else base_dir / path
