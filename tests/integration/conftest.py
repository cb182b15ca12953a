"""Fixtures for the integration tests: a real mosquitto, real RTSP servers, real clips,
the real daemon (``python -m focusguard run``) with the shipped model.

Missing system pieces (mosquitto, python3-gi + gst-rtsp-server) skip these tests, unless
``FOCUSGUARD_REQUIRE_INTEGRATION=1`` (set by ``scripts/setup.sh test`` and so by CI),
where they fail instead.  ``FOCUSGUARD_TEST_MODEL=/path/model.tflite`` runs the daemon
with another model (e.g. a sharpness oracle, to check the tests themselves).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import clips
from tests.support.daemon import Daemon, write_config
from tests.support.mqtt import Mosquitto, MqttCollector, mosquitto_binary
from tests.support.rtsp import RtspServer, rtsp_server_problem

REQUIRE = os.environ.get("FOCUSGUARD_REQUIRE_INTEGRATION") == "1"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)


def _failed(request: pytest.FixtureRequest) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


@pytest.fixture(scope="session")
def integration_ready() -> None:
    problems = []
    if mosquitto_binary() is None:
        problems.append("mosquitto not installed")
    problem = rtsp_server_problem()
    if problem:
        problems.append(problem)
    if problems:
        msg = "integration prerequisites missing: " + "; ".join(problems) + " (run: bash scripts/setup.sh test)"
        if REQUIRE:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def broker(integration_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One broker for the session; tests isolate themselves with a unique topic prefix."""
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield b
    b.stop()


# ------------------------------------------------------------------ clips (cached)


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    return clips.load_image(clips.source_image())


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def demo_clip(clip_dir: Path) -> Path:
    """The committed demo clip (40 s: 12 s sharp, 14 s defocused, 14 s sharp; GOP 20 s)."""
    if clips.DEMO_CLIP.is_file():
        return clips.DEMO_CLIP
    return clips.make_demo_clip(clip_dir / "clip_focus_loss.mp4")


@pytest.fixture(scope="session")
def sharp_clip(clip_dir: Path, photo: np.ndarray) -> Path:
    """10 s, 1280x720, GOP 25 at 25 fps, in focus throughout."""
    return clips.make_clip(clip_dir / "sharp.mp4", photo, [clips.Segment("sharp", 10)], gop=25)


@pytest.fixture(scope="session")
def focus_loss_clip_1080p(clip_dir: Path, photo: np.ndarray) -> Path:
    """1920x1080 (or the photo's size), GOP 25 at 25 fps: 5 s sharp, 7 s defocused
    (sigma 7 at 1080p), 7 s sharp.  Exercises the keyframes-only path."""
    h, w = photo.shape[:2]
    size = (1920, 1080) if w >= 1920 and h >= 1080 else (1280, 720)
    return clips.make_clip(
        clip_dir / "focus_loss_1080p.mp4", photo, clips.focus_loss_segments(5, 7, 7), size=size, gop=25
    )


@pytest.fixture(scope="session")
def transient_clips(clip_dir: Path, photo: np.ndarray) -> dict[str, Path]:
    """Sharp clips (1280x720, GOP 25) with a 2 s in-focus transient at 6-8 s, 16 s long:
    ``ir`` (IR-like grayscale switch) and ``dark`` (brightness drop to 35%)."""
    return {
        kind: clips.make_clip(
            clip_dir / f"transient_{kind}.mp4", photo, clips.transient_segments(6, 2, 8, kind=kind), gop=25
        )
        for kind in ("ir", "dark")
    }


# ------------------------------------------------------------------ servers, daemon


@pytest.fixture
def rtsp_factory(integration_ready: None, tmp_path: Path) -> Iterator[Callable[..., RtspServer]]:
    """``start({"/cam": clip}, start_frame=0)``: an RTSP server on a free port."""
    servers: list[RtspServer] = []

    def start(mounts: Mapping[str, Path], start_frame: int = 0) -> RtspServer:
        srv = RtspServer(mounts, tmp_path / f"rtsp{len(servers)}", start_frame=start_frame).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop(kill=True)


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own (the broker is shared by the session)."""
    return f"fgt_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def collector(broker: Mosquitto, prefix: str) -> Iterator[MqttCollector]:
    """Subscribed to ``<prefix>/#`` before the daemon starts: sees every message."""
    c = MqttCollector(broker.host, broker.port, [f"{prefix}/#"]).start()
    yield c
    c.stop()


@pytest.fixture
def daemon_factory(
    broker: Mosquitto,
    prefix: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Daemon]]:
    """``start(cameras, defaults=None, **config)`` writes a config and starts the daemon."""
    daemons: list[Daemon] = []

    def start(cameras: Mapping[str, Mapping[str, Any]], defaults: Mapping[str, Any] | None = None, **kw: Any) -> Daemon:
        cfg = write_config(
            tmp_path / f"focusguard{len(daemons)}.yaml",
            mqtt_port=broker.port,
            prefix=prefix,
            cameras=cameras,
            defaults=defaults,
            state_dir=tmp_path / "state",
            **kw,
        )
        d = Daemon(cfg, tmp_path).start()
        daemons.append(d)
        return d

    yield start
    for d in daemons:
        d.stop()
    if _failed(request):
        for d in daemons:
            print(f"\n----- {d.log_path} (rc={d.returncode}) -----\n{d.log_tail(80)}")
