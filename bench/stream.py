"""Part 2: CPU share of one core per camera for the video side, excluding inference.

One worker process per measurement (`python -m bench.stream --url ... --mode full|daemon`)
runs the daemon's own `StreamGrabber` against the RTSP test server and, every `interval`
seconds, does what the daemon does before inference: `latest()` (BGR conversion) and
`to_model_rgb`. Its process CPU time (/proc/self/stat: all threads, FFmpeg's included) over
the window, divided by the window, is the share of one core. `full` decodes every frame
(`keyframes_only: false`); `daemon` is the shipped strategy (`auto`: keyframes only once the
measured keyframe interval fits the analysis interval). The RTSP server's own CPU is not
counted. Measurements run one after another, never in parallel. `keyframes` is the same
with every keyframe decoded (no decode-on-demand: `grab._DecodeDemand` disabled), to show
what skipping the keyframes no analysis uses saves when the interval is much longer than the GOP.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, CpuWindow, rtsp_server, stream_clip


def worker(url: str, mode: str, interval: float, warmup: float, seconds: float) -> dict[str, Any]:
    from focusguard.analysis.preprocess import to_model_rgb
    from focusguard.sources.grab import StreamGrabber

    grabber = StreamGrabber("bench", url, interval, False if mode == "full" else "auto")
    if mode == "keyframes":  # the strategy before decode-on-demand: every keyframe decoded
        grabber._demand.interval_s = 0.0
    decoded = [0]
    store = grabber._store

    def counting_store(frame: Any) -> None:
        decoded[0] += 1
        store(frame)

    grabber._store = counting_store  # type: ignore[method-assign]
    grabber.start()
    deadline = time.monotonic() + 20
    while grabber.latest() is None:
        if time.monotonic() > deadline:
            raise SystemExit("no frame within 20 s")
        time.sleep(0.05)
    time.sleep(warmup)
    analyses, last = 0, None
    frames0 = decoded[0]
    with CpuWindow() as window:
        end = time.monotonic() + seconds
        due = time.monotonic()
        while time.monotonic() < end:
            frame = grabber.latest()
            if frame is not None and frame is not last:
                to_model_rgb(frame.image_bgr)
                analyses += 1
                last = frame
            due += interval
            time.sleep(max(0.0, min(due, end) - time.monotonic()))
    frames = decoded[0] - frames0
    keyframes = grabber.keyframes_mode
    grabber.stop()
    return {
        "cpu_share": round(window.share, 4),
        "window_s": round(window.seconds, 1),
        "analyses": analyses,
        "decoded_fps": round(frames / window.seconds, 2),
        "keyframes_only": keyframes,
    }


def run(quick: bool, workdir: Path | None = None) -> dict[str, Any]:
    heights = (1080, 2160)
    intervals = (1.0, 10.0)
    warmup, seconds = (3.0, 6.0) if quick else (5.0, 30.0)
    clip_seconds = 4.0 if quick else 10.0
    clips = {h: stream_clip(h, clip_seconds) for h in heights}
    RESULTS.joinpath("work").mkdir(parents=True, exist_ok=True)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="stream-", dir=RESULTS / "work"))
    results: list[dict[str, Any]] = []
    with rtsp_server({f"/p{h}": path for h, path in clips.items()}, workdir) as server:
        for h in heights:
            for interval in intervals:
                row: dict[str, Any] = {"stream": f"{h}p25 GOP 25", "interval_s": interval}
                window = max(seconds, 1.1 * interval)  # at least one analysis in every window
                row["window_s"] = window
                for mode in ("full", "keyframes", "daemon"):
                    cmd = [sys.executable, "-m", "bench.stream", "--url", server.url(f"/p{h}"), "--mode", mode,
                           "--interval", str(interval), "--warmup", str(warmup), "--seconds", str(window)]
                    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=window + 90,
                                          check=False)
                    if proc.returncode != 0:
                        raise RuntimeError(f"stream worker failed: {proc.stderr[-800:]}")
                    row[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
                row["ratio_daemon_over_full"] = round(row["daemon"]["cpu_share"] / max(row["full"]["cpu_share"],
                                                                                       1e-9), 3)
                results.append(row)
    return {"window_s": seconds, "warmup_s": warmup, "clip_seconds": clip_seconds,
            "clips": {str(h): str(p.relative_to(REPO)) for h, p in clips.items()}, "rows": results}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--mode", choices=("full", "keyframes", "daemon"), required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=25.0)
    a = ap.parse_args()
    print(json.dumps(worker(a.url, a.mode, a.interval, a.warmup, a.seconds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
