"""Part 4: how many cameras one box serves at one analysis per 10 s, and RSS per camera.

The real daemon (`focusguard run`, CNN detector, shipped model, 2 interpreter threads) watches
N cameras, all served by one RTSP test server from the same looping clip (each client has
its own pipeline). After a warm-up its process CPU time (/proc/<pid>/stat, all threads) is
read over a window; CPU share = CPU seconds / window seconds (1.0 = one core) and RSS from
/proc/<pid>/statm at the end. A least-squares line over N gives the per-camera cost
(slope) and the fixed cost (intercept). The number of cameras under 80% of the box
(`cores` x 0.8) is extrapolated from that line: an extrapolation, not a measurement, and on
this test content (x264 pans of photos; real cameras with noise cost more to decode).
The RTSP server's and broker's CPU (other processes) are reported separately, not counted.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, CpuWindow, broker, cpu_seconds, rss_bytes, rtsp_server, stream_clip


def _fit(xs: list[int], ys: list[float]) -> tuple[float, float]:
    if len(xs) < 2:
        return (ys[0] / xs[0] if xs else 0.0), 0.0
    slope, intercept = np.polyfit(np.array(xs, float), np.array(ys, float), 1)
    return float(slope), float(intercept)


def run(quick: bool, workdir: Path | None = None, height: int = 1080) -> dict[str, Any]:
    from tests.support.daemon import Daemon, write_config

    counts = [2, 4] if quick else [8, 16, 32]
    warmup, window_s = (12.0, 10.0) if quick else (25.0, 40.0)
    clip = stream_clip(height, 4.0 if quick else 10.0)
    RESULTS.joinpath("work").mkdir(parents=True, exist_ok=True)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="scale-", dir=RESULTS / "work"))
    cores = os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    with broker(workdir / "mqtt") as mqtt, rtsp_server({"/cam": clip}, workdir / "rtsp") as server:
        for n in counts:
            cameras = {f"c{i:02d}": {"url": server.url("/cam")} for i in range(n)}
            config = write_config(workdir / f"fg{n}.yaml", mqtt_port=mqtt.port, prefix=f"scale{n}", cameras=cameras,
                                  state_dir=workdir / f"state{n}", defaults={"interval_s": 10.0,
                                                                              "stream_timeout_s": 30.0},
                                  log_level="warning")
            with Daemon(config, workdir) as daemon:
                time.sleep(warmup)
                daemon.assert_running()
                server_cpu0 = cpu_seconds(server.proc.pid)
                with CpuWindow(daemon.pid) as window:
                    time.sleep(window_s)
                daemon.assert_running()
                server_share = (cpu_seconds(server.proc.pid) - server_cpu0) / window.seconds
                rss = rss_bytes(daemon.pid)
            rows.append({"cameras": n, "daemon_cpu_share": round(window.share, 4),
                         "daemon_rss_mib": round(rss / 2**20, 1), "rtsp_server_cpu_share": round(server_share, 4),
                         "window_s": round(window.seconds, 1)})
    slope, intercept = _fit([r["cameras"] for r in rows], [r["daemon_cpu_share"] for r in rows])
    rss_slope, rss_intercept = _fit([r["cameras"] for r in rows], [r["daemon_rss_mib"] for r in rows])
    budget = 0.8 * cores
    estimate = int((budget - intercept) / slope) if slope > 0 else None
    return {
        "stream": f"{height}p25 GOP 25, interval_s 10, detector cnn/resize",
        "cores": cores,
        "rows": rows,
        "cpu_per_camera_share": round(slope, 5),
        "cpu_fixed_share": round(intercept, 4),
        "rss_per_camera_mib": round(rss_slope, 2),
        "rss_fixed_mib": round(rss_intercept, 1),
        "budget_share": budget,
        "cameras_under_80pct_extrapolated": estimate,
        "warmup_s": warmup,
    }
