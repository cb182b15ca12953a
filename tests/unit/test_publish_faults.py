"""Connection failures are logged with their reason, once at warning/error level, then at debug."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest

from tests.unit.test_publish import NOT_AUTHORIZED, SUCCESS, make


def fail(client: object, err: BaseException) -> None:
    """What paho does: call on_connect_fail from inside its `except OSError:` block."""
    try:
        raise err
    except OSError:
        client.on_connect_fail(client, None)  # type: ignore[attr-defined]


def test_connect_failure_names_the_reason_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _publisher, client, _ = make(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="focusguard.delivery.publish"):
        for _ in range(3):
            fail(client, ConnectionRefusedError(111, "Connection refused"))
    records = [r for r in caplog.records if "cannot connect" in r.getMessage()]
    assert records[0].getMessage() == "MQTT: cannot connect to broker:1999: [Errno 111] Connection refused; retrying"
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_tls_failure_is_an_error_with_a_hint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _publisher, client, _ = make(tmp_path)
    err = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    with caplog.at_level(logging.DEBUG, logger="focusguard.delivery.publish"):
        fail(client, err)
    (record,) = [r for r in caplog.records if "TLS" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "CERTIFICATE_VERIFY_FAILED" in record.getMessage() and "mqtt.tls.ca_file" in record.getMessage()


def test_refusals_repeat_at_debug_until_a_connect_succeeds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _publisher, client, _ = make(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="focusguard.delivery.publish"):
        client.connect(NOT_AUTHORIZED)
        client.connect(NOT_AUTHORIZED)
        client.connect(SUCCESS)
        client.connect(NOT_AUTHORIZED)
    levels = [r.levelno for r in caplog.records if "refused the connection: Not authorized" in r.getMessage()]
    assert levels == [logging.ERROR, logging.DEBUG, logging.ERROR]
