"""Config sections for running many boxes: `coordination` (ZooKeeper) and `health` (HTTP probes).

Owns their frozen dataclasses and validation, in the style of `config.py`. `coordination`
absent means a single box: every camera of the file is watched here, exactly as before.
With it, every instance reads the same file (all of the site's cameras) and ZooKeeper
shares the cameras among the live instances (focusguard.operate.coordination).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from focusguard.settings.yamlconf import Section

# ZooKeeper node names and MQTT topic levels: keep instance ids to a safe alphabet.
INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$|^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class CoordinationConfig:
    hosts: str  # kazoo's "host:port,host:port"
    path: str  # the site's root node, e.g. /focusguard/site1
    session_timeout_s: float = 10.0
    instance_id: str = ""  # default: the host name (a StatefulSet pod's name)


@dataclass(frozen=True)
class HealthConfig:
    port: int | None = None  # None: no endpoint
    host: str = "0.0.0.0"


def parse_coordination(sec: Section) -> CoordinationConfig | None:
    if not sec.data:
        return None
    sec.allow("zookeeper", "instance_id")
    zk = sec.section("zookeeper")
    zk.allow("hosts", "path", "session_timeout_s")
    hosts = _hosts(zk)
    path = zk.str_("path", "", required=True)
    if not path.startswith("/") or path.endswith("/") or "//" in path or any(c.isspace() for c in path):
        raise zk.error("path", f"expected an absolute ZooKeeper path like /focusguard/site1, got {path!r}")
    instance = sec.opt_str("instance_id") or socket.gethostname()
    if not INSTANCE_ID.match(instance):
        raise sec.error("instance_id", f"{instance!r}: use letters, digits, '_', '.', '-' (at most 63)")
    return CoordinationConfig(
        hosts=hosts,
        path=path,
        # ZooKeeper's own bounds are 2 and 20 ticks (4-40 s at its default tickTime of 2 s).
        session_timeout_s=zk.float_("session_timeout_s", 10.0, 1.0, 120.0),
        instance_id=instance,
    )


def _hosts(zk: Section) -> str:
    raw = zk.get("hosts", required=True)
    items = raw if isinstance(raw, list) else str(raw).split(",") if isinstance(raw, str) else None
    if not items or not all(isinstance(h, str) and HOST_PORT.match(h.strip()) for h in items):
        raise zk.error("hosts", f"expected 'host:port,host:port' or a list of host:port, got {raw!r}")
    return ",".join(h.strip() for h in items)


def parse_health(sec: Section) -> HealthConfig:
    sec.allow("port", "host")
    port = sec.int_("port", 0, 1, 65535) if sec.get("port") is not None else None
    host = sec.str_("host", HealthConfig.host)
    if not host or any(c.isspace() for c in host):
        raise sec.error("host", "must be a non-empty address without spaces")
    return HealthConfig(port=port, host=host)
