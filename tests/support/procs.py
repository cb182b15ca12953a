"""Small process and socket helpers shared by the test services."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """True once ``host:port`` accepts TCP connections; False on timeout or when
    ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def wait_line(path: Path, prefix: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> str | None:
    """First line of the text file ``path`` starting with ``prefix`` (polling)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
        except FileNotFoundError:
            pass
        if proc is not None and proc.poll() is not None:
            return None
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
    """Send ``sig`` (SIGTERM), wait ``timeout`` s, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def clean_env_for_system_python() -> dict[str, str]:
    """Environment for Debian's /usr/bin/python3: no venv or pyenv leftovers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONSTARTUP") and not k.startswith("PYENV")
    }
    return env


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"({path} not readable)"
