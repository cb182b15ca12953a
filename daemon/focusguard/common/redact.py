"""Hiding credentials from everything a person or a broker can see.

Owns `redact_url` (``rtsp://user:***@host/...``, secret-looking query values too) and
`scrub` (removes a URL and its password from free text such as an FFmpeg error
message). Logs, exceptions, state, events and `check-config` output go through these.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

_SECRET_QUERY = re.compile(r"pass|pwd|token|secret|key|auth|sig", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Hide the password (and secret-looking query values) of a URL: ``rtsp://user:***@host/...``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"{user}@{host}"
    query = "&".join(_redact_query_item(item) for item in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_query_item(item: str) -> str:
    name, eq, _value = item.partition("=")
    return f"{name}=***" if eq and _SECRET_QUERY.search(name) else item


def scrub(text: str, url: str) -> str:
    """Replace `url` and its password (raw or percent-encoded) in free text such as an error message."""
    text = text.replace(url, redact_url(url))
    try:
        parts = urlsplit(url)
        secrets = [parts.password or ""]
    except ValueError:
        return text
    for item in parts.query.split("&"):
        name, eq, value = item.partition("=")
        if eq and _SECRET_QUERY.search(name):
            secrets.append(value)
    for secret in {variant for raw in secrets if raw for variant in (raw, unquote(raw))}:
        text = text.replace(secret, "***")
    return text
