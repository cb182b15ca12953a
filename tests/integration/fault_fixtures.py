"""Fixtures and helpers shared by tests/integration/test_faults_*.py (imported there).

The fault tests run the real daemon (``python -m focusguard run``) against a real
mosquitto and the GStreamer RTSP server, with the *oracle* model and marker clips of
``tests/support/faults.py`` so that focus events happen deterministically while the
shipped CNN is still training.  Short intervals keep them fast: one analysis every
0.2 s, a window of 3 with 2 votes, ``stream_timeout_s`` 1.5 s.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import faults
from tests.support.daemon import Daemon, write_config
from tests.support.faults import Part
from tests.support.mqtt import Mosquitto, MqttCollector

FAST: dict[str, Any] = {
    "interval_s": 0.2,
    "window": 3,
    "lost_votes": 2,
    "restore_votes": 2,
    "stream_timeout_s": 1.5,
    "keyframes_only": False,
}

CLIPS: dict[str, dict[str, Any]] = {
    # name: marker_clip arguments (640x360, 25 fps, GOP 25 unless said)
    "flip": {"parts": [Part("sharp", 2), Part("blur", 2)]},  # focus_lost/restored every 2 s
    "sharp": {"parts": [Part("sharp", 8)]},
    "focus_loss": {"parts": [Part("sharp", 6), Part("blur", 40)]},
    "black": {"parts": [Part("sharp", 2), Part("black", 3)]},  # black + blue marker: "blurry"
    "frozen": {"parts": [Part("frozen", 2, color=faults.BLUE_BGR)], "intra_qp": 24},
    "small": {"parts": [Part("sharp", 4)], "size": (320, 180)},
    "res_a": {"parts": [Part("sharp", 2)]},
    "res_b": {"parts": [Part("sharp", 2, color=(0, 100, 200))], "size": (320, 180)},  # oracle: b_0.5 ≈ 0.11
}


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return faults.oracle_model(tmp_path_factory.mktemp("oracle") / "oracle.tflite")


@pytest.fixture(scope="session")
def fault_clip(clip_dir: Path, photo: np.ndarray) -> Callable[[str], Path]:
    """``fault_clip(name)``: a clip of ``CLIPS``, or ``corrupt`` (damaged ``sharp``), or
    ``res`` (640x360 then 320x180 on one stream); made once per session."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            if name == "corrupt":
                made[name] = clip_dir / "fault_corrupt.mp4"
                faults.damage_clip(get("sharp"), made[name], every=7)  # P-frames and a keyframe
            elif name == "res":
                made[name] = faults.concat_h264(clip_dir / "fault_res.h264", [get("res_a"), get("res_b")])
            else:
                spec = dict(CLIPS[name])
                made[name] = faults.marker_clip(clip_dir / f"fault_{name}.mp4", photo, spec.pop("parts"), **spec)
        return made[name]

    return get


@pytest.fixture
def own_broker(integration_ready: None, tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test's own: it gets stopped and restarted (same port, no persistence)."""
    b = Mosquitto(tmp_path / "mosquitto").start()
    yield b
    b.stop()


@pytest.fixture
def daemons(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Daemon]]:
    """Daemons a test started (see `start_daemon`): stopped afterwards, logs shown on failure."""
    monkeypatch.delenv("FOCUSGUARD_TEST_MODEL", raising=False)  # these tests need the oracle
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        for d in started:
            print(f"\n----- {d.log_path} (rc={d.returncode}) -----\n{d.log_tail(120)}")


def start_daemon(daemons: list[Daemon], workdir: Path, *, port: int, prefix: str, oracle: Path,
                 cameras: Mapping[str, Mapping[str, Any]], state_dir: Path | None = None,
                 defaults: Mapping[str, Any] | None = None, mqtt_extra: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, log_level: str = "debug",
                 name: str = "focusguard", extra: Mapping[str, Any] | None = None) -> Daemon:
    cfg = write_config(workdir / f"{name}.yaml", mqtt_port=port, prefix=prefix, cameras=cameras,
                       state_dir=state_dir or workdir / "state", defaults=defaults or FAST,
                       model={"path": str(oracle), "threads": 1}, log_level=log_level,
                       mqtt_extra=mqtt_extra, extra=extra)
    d = Daemon(cfg, workdir, env=env).start()
    daemons.append(d)
    return d


def log_text(d: Daemon) -> str:
    return d.log_path.read_text(errors="replace")


def wait_log(d: Daemon, pattern: str, count: int = 1, timeout: float = 30.0) -> list[re.Match[str]]:
    """Wait until the daemon's log has ``count`` matches of ``pattern``; returns them."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        found = list(rx.finditer(log_text(d)))
        if len(found) >= count:
            return found
        if d.returncode is not None:
            raise AssertionError(f"daemon exited (rc={d.returncode}) waiting for {pattern!r}:\n{d.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)}/{count} x {pattern!r} in {timeout:g}s:\n{d.log_tail(40)}")
        time.sleep(0.05)


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", re.M)


def stamps(d: Daemon, pattern: str) -> list[float]:
    """Times (epoch seconds) of the log lines containing ``pattern`` (regex)."""
    rx = re.compile(pattern)
    out = []
    for line in log_text(d).splitlines():
        m = _STAMP.match(line)
        if m and rx.search(line):
            out.append(datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return out


def wait_for(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:g}s")
        time.sleep(step)


def events_of(collectors: list[MqttCollector], prefix: str) -> list[dict[str, Any]]:
    """Every event message any of ``collectors`` received, in arrival order per collector."""
    out = []
    for c in collectors:
        for m in c.messages():
            if m.topic.startswith(f"{prefix}/") and m.topic.endswith("/events"):
                out.append(m.json())
    return out
