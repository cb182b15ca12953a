"""Config sections of the integrations: `homeassistant`, `metrics` and each camera's `refocus`.

Owns their frozen dataclasses, defaults and validation, in the style of `config.py`
(which calls these parsers): unknown keys rejected, every error names file, key path
and problem. Secrets (`password`, `password_env`, `password_file`) are resolved by the
resolver `config.py` passes in, so they follow the same rules everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from focusguard.settings.yamlconf import Section

REFOCUS_ACTIONS = ("none", "vapix_autofocus", "ptz_autofocus")
SECRET_KEYS = ("password", "password_env", "password_file")
SecretResolver = Callable[[Section], tuple[str | None, str | None]]


@dataclass(frozen=True)
class HomeAssistantConfig:
    discovery: bool = True
    prefix: str = "homeassistant"


@dataclass(frozen=True)
class MetricsConfig:
    prometheus_port: int | None = None  # None: no endpoint
    prometheus_host: str = "0.0.0.0"
    stats_interval_s: float = 60.0  # 0: no <p>/stats


@dataclass(frozen=True)
class RefocusConfig:
    action: str = "none"
    on_focus_lost: bool = True  # False: only on a `<p>/<cam>/refocus` command
    url: str | None = None  # http(s)://host[:port][/path], no credentials; None: not derivable
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    min_interval_s: float = 300.0
    timeout_s: float = 10.0
    verify_tls: bool = True


def check_topic_prefix(sec: Section, key: str, default: str) -> str:
    prefix = sec.str_(key, default)
    if not prefix or any(c in prefix for c in "+#\0") or prefix.startswith(("/", "$")) or prefix.endswith("/"):
        raise sec.error(key, f"invalid MQTT topic prefix {prefix!r} (no + # or leading $ or / )")
    return prefix


def parse_homeassistant(sec: Section) -> HomeAssistantConfig:
    sec.allow("discovery", "prefix")
    return HomeAssistantConfig(
        discovery=sec.bool_("discovery", True), prefix=check_topic_prefix(sec, "prefix", "homeassistant")
    )


def parse_metrics(sec: Section) -> MetricsConfig:
    sec.allow("prometheus_port", "prometheus_host", "stats_interval_s")
    port = sec.int_("prometheus_port", 0, 1, 65535) if sec.get("prometheus_port") is not None else None
    host = sec.str_("prometheus_host", MetricsConfig.prometheus_host)
    if not host or any(c.isspace() for c in host):
        raise sec.error("prometheus_host", "must be a non-empty address without spaces")
    interval = sec.float_("stats_interval_s", 60.0, 0.0, 86_400.0)
    if 0 < interval < 1:
        raise sec.error("stats_interval_s", f"must be 0 (off) or at least 1, got {interval:g}")
    return MetricsConfig(prometheus_port=port, prometheus_host=host, stats_interval_s=interval)


def parse_refocus(sec: Section, camera_url: str, secret: SecretResolver) -> RefocusConfig:
    """A camera's `refocus` section; `url` and credentials default to the camera URL's host and user."""
    sec.allow("action", "on_focus_lost", "url", "username", *SECRET_KEYS, "min_interval_s", "timeout_s", "verify_tls")
    action = sec.choice("action", REFOCUS_ACTIONS, "none", lower=True)
    username = sec.opt_str("username")
    password, _source = secret(sec)
    if password is not None and username is None:
        key = next(k for k in SECRET_KEYS if sec.data.get(k) is not None)
        raise sec.error(key, "a password needs refocus.username")
    raw = sec.opt_str("url")
    url: str | None
    if raw is not None:
        url = _http_url(sec, raw)
    else:
        url, user, pw = _from_camera_url(camera_url)
        if username is None:
            username, password = user, pw
    if action != "none" and url is None:
        raise sec.error("url", "required: the camera URL has no network host to derive it from")
    return RefocusConfig(
        action=action,
        on_focus_lost=sec.bool_("on_focus_lost", True),
        url=url,
        username=username,
        password=password,
        min_interval_s=sec.float_("min_interval_s", 300.0, 0.0, 86_400.0),
        timeout_s=sec.float_("timeout_s", 10.0, 1.0, 120.0),
        verify_tls=sec.bool_("verify_tls", True),
    )


def _http_url(sec: Section, raw: str) -> str:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as err:
        raise sec.error("url", f"malformed URL: {err}") from err
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise sec.error("url", "expected http://HOST[:PORT] or https://HOST[:PORT]")
    if "@" in parts.netloc:
        raise sec.error("url", "give credentials as refocus.username and a password key, not in the URL")
    if parts.query or parts.fragment:
        raise sec.error("url", "must not have a query or fragment")
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


def _from_camera_url(camera_url: str) -> tuple[str | None, str | None, str | None]:
    """`http://<camera host>` and the camera URL's credentials (VAPIX usually shares the RTSP account)."""
    parts = urlsplit(camera_url)
    if parts.scheme.lower() not in ("rtsp", "rtsps", "http", "https") or not parts.hostname:
        return None, None, None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    scheme = "https" if parts.scheme.lower() in ("rtsps", "https") else "http"
    port = f":{parts.port}" if parts.scheme.lower() in ("http", "https") and parts.port else ""
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None and user is not None else None
    return f"{scheme}://{host}{port}", user, password
