"""Part 3: detection delay of the real daemon, default debounce, one camera per detector.

The RTSP test server serves a clip (1280x720, 25 fps, GOP 1 s) that is sharp for `S` s, then
defocused (Gaussian sigma 4 at the 1080p scale, a hard cut: no ramp) for `B` s, then sharp
again. Every RTSP client gets its own pipeline that starts at the clip's first frame when
the client connects, paced in real time, so clip time t reaches the daemon at about
t_connect + t, where t_connect is the wall time of the daemon's "camera X: connected" log
line (ms resolution; the stream starts at PLAY, a few tens of ms before that line, since
opening reads only the first keyframe: probesize 100 kB). Delay to focus_lost = arrival of
the event at an MQTT subscriber - (t_connect + S); to focus_restored = arrival -
(t_connect + S + B). The defaults apply (1 analysis/s, window 8, 6 votes either way), so
about 6 s is expected, plus up to one GOP (keyframes only) and one interval of phase.
"""

from __future__ import annotations

import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import RESULTS, broker, focus_clip, rtsp_server

DETECTORS = ("cnn", "dft", "laplacian")
_CONNECTED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*camera (\w+): connected to")


def _connect_times(log_text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in log_text.splitlines():
        match = _CONNECTED.match(line)
        if match and match.group(2) not in out:
            out[match.group(2)] = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return out


def run(quick: bool, workdir: Path | None = None,
        cameras_extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """`cameras_extra`: camera name -> its config keys (default: one camera per detector of DETECTORS)."""
    from tests.support.daemon import Daemon, write_config
    from tests.support.mqtt import MqttCollector

    sharp, blur, sharp2 = (8.0, 10.0, 10.0) if quick else (12.0, 14.0, 14.0)
    clip = focus_clip(sharp, blur, sharp2)
    RESULTS.joinpath("work").mkdir(parents=True, exist_ok=True)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="delay-", dir=RESULTS / "work"))  # fresh logs per run
    wall_minus_mono = time.time() - time.monotonic()
    results: dict[str, Any] = {"clip": clip.name, "switch_s": [sharp, sharp + blur],
                               "clip_length_s": sharp + blur + sharp2,
                               "debounce": "defaults: interval_s 1, window 8, lost_votes 6, restore_votes 6",
                               "cameras": {}}
    with broker(workdir / "mqtt") as mqtt, rtsp_server({"/focus": clip}, workdir / "rtsp") as server:
        extra = cameras_extra or {name: {"detector": name} for name in DETECTORS}
        cameras = {name: {"url": server.url("/focus"), **keys} for name, keys in extra.items()}
        config = write_config(workdir / "fg.yaml", mqtt_port=mqtt.port, prefix="bench", cameras=cameras,
                              state_dir=workdir / "state")
        with MqttCollector("127.0.0.1", mqtt.port, ["bench/+/events"]) as collector, Daemon(config, workdir) as daemon:
            deadline = time.monotonic() + 20 + sharp + blur + sharp2 + 15
            want = {(name, kind) for name in cameras for kind in ("focus_lost", "focus_restored")}
            seen: dict[tuple[str, str], float] = {}
            while time.monotonic() < deadline and set(seen) != want:
                daemon.assert_running()
                for message in collector.messages():
                    camera = message.topic.split("/")[1]
                    kind = message.json().get("type")
                    if (camera, kind) in want and (camera, kind) not in seen:
                        seen[(camera, kind)] = message.t + wall_minus_mono
                time.sleep(0.2)
            connected = _connect_times(daemon.log_path.read_text(errors="replace"))
        for name in cameras:
            t0 = connected.get(name)
            row: dict[str, Any] = {"connected": t0 is not None}
            for kind, switch in (("focus_lost", sharp), ("focus_restored", sharp + blur)):
                at = seen.get((name, kind))
                if t0 is None or at is None:
                    row[kind] = None
                    continue
                delay = at - (t0 + switch)
                row[kind] = round(delay, 2)
            results["cameras"][name] = row
    return results
