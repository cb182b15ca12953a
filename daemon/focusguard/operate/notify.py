"""systemd's sd_notify protocol without a dependency: datagrams to `$NOTIFY_SOCKET`.

Owns the wire format (`KEY=VALUE` lines in one datagram; a leading `@` in the socket
path means Linux's abstract namespace) and `watchdog_timeout_s()` (`$WATCHDOG_USEC`,
honouring `$WATCHDOG_PID`). Outside systemd every call is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*states: str) -> bool:
    """Send e.g. ``notify("READY=1", "STATUS=watching 2 cameras")``; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":  # unset, or a vsock address we do not speak
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall("\n".join(states).encode())
    except OSError as err:
        log.debug("sd_notify %s failed: %s", states, err)
        return False
    return True


def watchdog_timeout_s() -> float | None:
    """systemd's `WatchdogSec=` for this process in seconds, or None when the watchdog is off."""
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None
