"""Whose state is this: the identities that bind outbox rows and baselines to their daemon.

One state directory may outlive a config, or (by mistake) be shared by two. So every outbox row
carries the identity of the delivery it was made for, ``mqtt://host:port/<topic_prefix>``, and is
only ever sent there; every baseline carries a hash of the camera it was learnt on (that
delivery identity, the camera's name and its URL without credentials, so a rotated password
keeps the baseline but a re-pointed camera starts a new one). Hashing keeps the URL, which may
name private hosts and paths, out of the state files.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


def delivery_identity(host: str, port: int, topic_prefix: str) -> str:
    """The broker and prefix an event is produced for (no secret in it: readable in logs)."""
    return f"mqtt://{host}:{port}/{topic_prefix}"


def url_without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not parts.netloc:
        return url  # a file path (tests, `eval`)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def camera_identity(delivery: str, camera: str, url: str) -> str:
    text = "\n".join((delivery, camera, url_without_credentials(url)))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def baseline_is_ours(path: Path, data: Mapping[str, Any], identity: str | None, camera: str) -> bool:
    """True when a loaded baseline belongs to `identity`. A file of another identity (another
    config's camera of the same name, or this camera re-pointed) is moved aside, not deleted,
    and the camera learns anew. Files from before identities existed are adopted."""
    stored = data.get("identity")
    if identity is None or stored is None or stored == identity:
        return True
    aside = path.with_name(f"{path.name}.other-{str(stored)[:8]}")
    try:
        os.replace(path, aside)
    except OSError as err:
        log.warning("camera %s: cannot move aside %s: %s", camera, path, err)
        aside = path
    log.warning("camera %s: baseline %s was learnt for another camera (another config, or this camera's "
                "URL changed): learning a new one (the old one kept as %s)", camera, path, aside.name)
    return False


def stamp(payload: dict[str, Any], identity: str | None) -> dict[str, Any]:
    """A baseline payload with the identity it belongs to (none: kept in memory or by a tool)."""
    return {**payload, "identity": identity} if identity is not None else payload
