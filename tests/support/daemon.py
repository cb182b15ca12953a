"""Write a focusguard config and run the real daemon as a subprocess.

cfg = write_config(tmp / "fg.yaml", mqtt_port=broker.port, prefix="t1",
                   cameras={"cam": {"url": srv.url("/cam")}}, state_dir=tmp / "state")
with Daemon(cfg, tmp) as d:        # python -m focusguard run --config cfg
    ...
d.returncode
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .procs import stop_process, tail


def write_config(
    path: Path | str,
    *,
    mqtt_port: int,
    cameras: Mapping[str, Mapping[str, Any]],
    prefix: str = "focusguard",
    state_dir: Path | str | None = None,
    defaults: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    mqtt_host: str = "127.0.0.1",
    log_level: str = "info",
    mqtt_extra: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """A config as DESIGN.md describes it; only the keys given are written (the rest
    keep the daemon's defaults).  ``$FOCUSGUARD_TEST_MODEL`` overrides the model path."""
    path = Path(path)
    cfg: dict[str, Any] = {
        "mqtt": {"host": mqtt_host, "port": int(mqtt_port), "topic_prefix": prefix, **(mqtt_extra or {})},
        "log_level": log_level,
    }
    mdl = dict(model or {})
    if os.environ.get("FOCUSGUARD_TEST_MODEL"):
        mdl["path"] = os.environ["FOCUSGUARD_TEST_MODEL"]
    if mdl:
        cfg["model"] = mdl
    if state_dir is not None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        cfg["state_dir"] = str(state_dir)
    if defaults:
        cfg["defaults"] = dict(defaults)
    cfg.update(extra or {})  # further top-level sections (metrics, homeassistant, ...)
    cfg["cameras"] = {name: dict(c) for name, c in cameras.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def focusguard_command(python: str = sys.executable) -> list[str]:
    """``python -m focusguard`` (or the CLI's ``main`` when there is no ``__main__``)."""
    if importlib.util.find_spec("focusguard.__main__") is not None:
        return [python, "-m", "focusguard"]
    return [python, "-c", "import sys; from focusguard.commands.cli import main; sys.exit(main())"]


class Daemon:
    """``focusguard run --config PATH`` with stdout+stderr in ``workdir/focusguard-N.log``."""

    _count = 0

    def __init__(
        self,
        config: Path | str,
        workdir: Path | str,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.config = Path(config)
        self.workdir = Path(workdir)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None
        Daemon._count += 1
        self.log_path = self.workdir / f"focusguard-{Daemon._count}.log"
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def start(self) -> Daemon:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [*focusguard_command(self.python), "run", "--config", str(self.config)]
        with self.log_path.open("ab") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
            )
        self.started_at = time.monotonic()
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait up to ``timeout`` s; raises TimeoutError (then kills) if the
        daemon does not exit by itself."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise TimeoutError(f"focusguard did not exit {timeout:g}s after SIGTERM\n" + self.log_tail()) from None
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)

    def assert_running(self) -> None:
        assert self.proc is not None
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError(f"focusguard exited early (rc={rc}):\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        return tail(self.log_path, n)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
