"""Credentials never leave the process: URL redaction and scrubbing of free text."""

from __future__ import annotations

import pytest

from focusguard.common.redact import scrub
from focusguard.settings.config import redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://user:pass@10.0.0.5/stream1", "rtsp://user:***@10.0.0.5/stream1"),
        ("rtsp://user:p%40ss@10.0.0.5:554/s?x=1", "rtsp://user:***@10.0.0.5:554/s?x=1"),
        ("rtsps://a:b:c@cam.local/s", "rtsps://a:***@cam.local/s"),  # ':' inside the password
        ("rtsp://user@10.0.0.5/stream1", "rtsp://user@10.0.0.5/stream1"),  # no password, nothing to hide
        ("rtsp://10.0.0.5/stream1", "rtsp://10.0.0.5/stream1"),
        ("http://cam/mjpg?user=admin&password=hunter2&fps=5", "http://cam/mjpg?user=admin&password=***&fps=5"),
        ("http://cam/s?token=abc&pwd=x", "http://cam/s?token=***&pwd=***"),
        ("file:///tmp/clip.mp4", "file:///tmp/clip.mp4"),
        ("rtsp://u:p@[::1/x", "<unparsable url>"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_scrub_removes_url_and_password_from_messages() -> None:
    url = "rtsp://admin:s%3Acret!@10.0.0.5/s?password=qq123"
    message = f"Connection refused: '{url}' (password s:cret!, qq123)"
    cleaned = scrub(message, url)
    assert "s%3Acret" not in cleaned and "s:cret!" not in cleaned and "qq123" not in cleaned
    assert "rtsp://admin:***@10.0.0.5/s?password=***" in cleaned


def test_scrub_leaves_text_without_secrets_alone() -> None:
    assert scrub("timeout", "rtsp://10.0.0.5/s") == "timeout"
