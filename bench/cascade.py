"""The CNN cascade, side by side in one run: always-CNN vs cascade, per resolution, scale, delay, interpreters.

* `cost`: the real daemon (`focusguard run`, default detector fusion, shipped model, real RTSP
  server and mosquitto) on one fixed-camera clip (a detailed still with a slow drift of a few
  pixels, x264, 25 fps, GOP 25) at 1 analysis/s, with `cnn_refresh_s: 0` (the CNN on every
  analysis, as before the cascade) and with the shipped cascade. Process CPU time of the daemon
  (/proc, all threads) over the window = share of one core; the RTSP server's is not counted.
  The ratio cascade/always is the saving. The decode share alone (keyframes, no analysis) is
  measured beside it (`decode`), since it is the floor no analysis change can lower.
* `scale`: N cameras (1080p, 1 analysis per 10 s, cascade) on one daemon: CPU share, RSS, RSS
  per camera (slope between the two counts), measured at each N, not extrapolated.
* `delay`: the focus clip of bench/delay.py (sharp, hard cut to defocus, sharp): focus_lost and
  focus_restored delays, always-CNN vs cascade.
* `interpreters`: 8 camera threads asking for inferences as fast as they can for 12 s: one
  interpreter with 2 threads vs two interpreters with 1 thread each (inferences/s, CPU ms each).

Run: .venv/bin/python -m bench.cascade [--quick] [--parts cost,scale,delay,interpreters]
Writes bench/RESULTS_cascade.md and bench/results/cascade_<time>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import common
from bench.common import RESULTS, CpuWindow, broker, rss_bytes, rtsp_server, stream_clip

MODES = {"always": {"cnn_refresh_s": 0}, "cascade": {}}


def _daemon_share(config: Path, workdir: Path, warmup: float, window_s: float) -> dict[str, Any]:
    from tests.support.daemon import Daemon

    with Daemon(config, workdir) as daemon:
        time.sleep(warmup)
        daemon.assert_running()
        with CpuWindow(daemon.pid) as window:
            time.sleep(window_s)
        daemon.assert_running()
        rss = rss_bytes(daemon.pid)
    return {"cpu_share": round(window.share, 4), "rss_mib": round(rss / 2**20, 1), "window_s": round(window.seconds, 1)}


def cost(quick: bool, workdir: Path) -> dict[str, Any]:
    from bench.stream import worker
    from tests.support.daemon import write_config

    warmup, window_s = (12.0, 15.0) if quick else (15.0, 40.0)
    rows = []
    with broker(workdir / "mqtt") as mqtt:
        for height in (1080, 2160):
            clip = stream_clip(height, 20.0, still=True)
            with rtsp_server({"/cam": clip}, workdir / f"rtsp{height}") as server:
                decode = worker(server.url("/cam"), "daemon", 1.0, 3.0, window_s)
                row: dict[str, Any] = {"stream": f"{height}p25 GOP 25", "interval_s": 1.0,
                                       "decode_only_share": round(decode["cpu_share"], 4)}
                for mode, extra in MODES.items():
                    config = write_config(workdir / f"cost_{height}_{mode}.yaml", mqtt_port=mqtt.port,
                                          prefix=f"cost{height}{mode}", state_dir=workdir / f"state_{height}_{mode}",
                                          cameras={"cam": {"url": server.url("/cam"), **extra}},
                                          log_level="warning")  # fmt: skip
                    row[mode] = _daemon_share(config, workdir, warmup, window_s)
                row["ratio"] = round(row["cascade"]["cpu_share"] / max(row["always"]["cpu_share"], 1e-9), 3)
                rows.append(row)
    return {"rows": rows, "warmup_s": warmup}


def scale(quick: bool, workdir: Path) -> dict[str, Any]:
    from tests.support.daemon import write_config

    counts = [4, 8] if quick else [50, 100]
    # past the learning (LEARN_FRAMES analyses, 50 s at 1 per 10 s: the CNN runs on each of them)
    warmup, window_s = (20.0, 15.0) if quick else (75.0, 40.0)
    rows = []
    with broker(workdir / "mqtt_scale") as mqtt, rtsp_server({"/cam": stream_clip(1080, 20.0, still=True)}, workdir / "rtsp_s") as server:
        for n in counts:
            cameras = {f"c{i:03d}": {"url": server.url("/cam")} for i in range(n)}
            config = write_config(workdir / f"scale{n}.yaml", mqtt_port=mqtt.port, prefix=f"scale{n}", cameras=cameras,
                                  state_dir=workdir / f"state_scale{n}", log_level="warning",
                                  defaults={"interval_s": 10.0, "stream_timeout_s": 60.0})  # fmt: skip
            server_cpu0 = common.cpu_seconds(server.proc.pid)
            t0 = time.monotonic()
            row = {"cameras": n, **_daemon_share(config, workdir, warmup, window_s)}
            row["rtsp_server_share_whole_run"] = round((common.cpu_seconds(server.proc.pid) - server_cpu0)
                                                       / (time.monotonic() - t0), 3)  # fmt: skip
            rows.append(row)
    a, b = rows[0], rows[-1]
    per_cam = (b["rss_mib"] - a["rss_mib"]) / max(b["cameras"] - a["cameras"], 1)
    return {"stream": "1080p25 GOP 25, interval_s 10, detector fusion (cascade)", "rows": rows,
            "rss_per_camera_mib": round(per_cam, 2), "cores": os.cpu_count(),
            "budget_share": 0.8 * (os.cpu_count() or 1)}  # fmt: skip


def delay(quick: bool, workdir: Path) -> dict[str, Any]:
    from bench import delay as delay_bench

    cameras = {f"fusion_{mode}": {"detector": "fusion", **extra} for mode, extra in MODES.items()}
    return delay_bench.run(quick, workdir / "delay", cameras_extra=cameras)


def interpreters(quick: bool, workdir: Path) -> dict[str, Any]:
    from focusguard.analysis.infer import Classifier, default_model_path

    image = np.random.default_rng(0).integers(0, 256, (448, 448, 3), dtype=np.uint8)
    seconds, cameras = (5.0, 8) if quick else (12.0, 8)

    def run(pool: list[Any]) -> dict[str, float]:
        locks = [threading.Lock() for _ in pool]
        count = [0]
        stop = time.monotonic() + seconds

        def camera(i: int) -> None:
            while time.monotonic() < stop:
                for lock, classifier in zip(locks, pool, strict=True):
                    if lock.acquire(blocking=False):  # the first free interpreter
                        try:
                            classifier.classify(image)
                        finally:
                            lock.release()
                        break
                else:
                    with locks[i % len(pool)]:
                        pool[i % len(pool)].classify(image)
                count[0] += 1

        cpu0, wall0 = time.process_time(), time.monotonic()
        threads = [threading.Thread(target=camera, args=(i,)) for i in range(cameras)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        return {"inferences_per_s": round(count[0] / wall, 1), "cpu_ms_per_inference": round(cpu / count[0] * 1000, 1)}

    path = default_model_path()
    one = [Classifier(path, device="cpu", threads=2)]
    two = [Classifier(path, device="cpu", threads=1) for _ in range(2)]
    rows: dict[str, list[dict[str, float]]] = {"1 interpreter x 2 threads": [], "2 interpreters x 1 thread": []}
    for _ in range(2):  # alternate, so drift of the shared machine hits both
        rows["1 interpreter x 2 threads"].append(run(one))
        rows["2 interpreters x 1 thread"].append(run(two))
    single = {"1 thread": [], "2 threads": []}
    for label, c in (("2 threads", one[0]), ("1 thread", two[0])):
        t0 = time.perf_counter()
        for _ in range(20):
            c.classify(image)
        single[label] = round((time.perf_counter() - t0) / 20 * 1000, 1)
    return {"cameras": cameras, "seconds": seconds, "rows": rows, "latency_ms_alone": single}


PARTS = {"cost": cost, "scale": scale, "delay": delay, "interpreters": interpreters}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = ["# The CNN cascade: always-CNN vs cascade (`python -m bench.cascade`)", "",
             f"- run: {report['time']} ({'quick' if report['quick'] else 'full'}); machine: {m.get('Model name')}, "
             f"{m.get('nproc')} CPU(s), {m.get('Flags')}; load average at start {report['load_start']}",
             "- parts measured at: " + ", ".join(f"{k} {v}" for k, v in report.get("measured", {}).items()), ""]  # fmt: skip
    if "cost" in report:
        lines += ["## Whole daemon, one camera, 1 analysis/s (% of one core; RTSP server not counted)", "",
                  "| stream | decode alone (floor) | always-CNN | cascade | ratio cascade/always | RSS MiB (cascade) |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for r in report["cost"]["rows"]:
            lines.append(f"| {r['stream']} | {100 * r['decode_only_share']:.1f} | {100 * r['always']['cpu_share']:.1f} | "
                         f"{100 * r['cascade']['cpu_share']:.1f} | {r['ratio']:.3f} | {r['cascade']['rss_mib']} |")  # fmt: skip
        lines.append("")
    if "scale" in report:
        s = report["scale"]
        lines += [f"## Many cameras: {s['stream']}, measured at each count", "",
                  "| cameras | daemon CPU (% of one core) | daemon RSS MiB | RTSP server CPU (%, not counted) |",
                  "|---|---|---|---|"]  # fmt: skip
        for r in s["rows"]:
            lines.append(f"| {r['cameras']} | {100 * r['cpu_share']:.1f} | {r['rss_mib']} | "
                         f"{100 * r['rtsp_server_share_whole_run']:.1f} |")
        lines += ["", f"RSS per camera (slope between the counts): {s['rss_per_camera_mib']} MiB. Budget: 80% of "
                  f"{s['cores']} cores = {100 * s['budget_share']:.0f}% of one core.", ""]  # fmt: skip
    if "delay" in report:
        d = report["delay"]
        lines += [f"## Detection delay (clip {d['clip']}: defocus at {d['switch_s'][0]:g} s, refocus at "
                  f"{d['switch_s'][1]:g} s; {d['debounce']})", "",
                  "| camera | first defocused frame → focus_lost (s) | refocus → focus_restored (s) |", "|---|---|---|"]
        for name, r in d["cameras"].items():
            lines.append(f"| {name} | {r.get('focus_lost')} | {r.get('focus_restored')} |")
        lines.append("")
    if "interpreters" in report:
        it = report["interpreters"]
        lines += [f"## Interpreter sharing ({it['cameras']} camera threads, {it['seconds']:g} s each, two alternating runs)",
                  "", "| pool | inferences/s | CPU ms per inference |", "|---|---|---|"]  # fmt: skip
        for name, runs in it["rows"].items():
            lines.append(f"| {name} | {' / '.join(str(r['inferences_per_s']) for r in runs)} | "
                         f"{' / '.join(str(r['cpu_ms_per_inference']) for r in runs)} |")
        lat = it["latency_ms_alone"]
        lines += ["", f"One inference alone: {lat['2 threads']} ms on 2 threads, {lat['1 thread']} ms on 1.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--merge", action="store_true", help="keep the newest run's other parts (marked with their time)")
    args = parser.parse_args(argv)
    RESULTS.joinpath("work").mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cascade-", dir=RESULTS / "work"))
    report: dict[str, Any] = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
                              "machine": common.machine(), "load_start": round(os.getloadavg()[0], 2)}  # fmt: skip
    if args.merge:
        previous = sorted(RESULTS.glob("cascade_*.json"))
        if previous:
            old = json.loads(previous[-1].read_text())
            for part in PARTS:
                if part in old and part not in args.parts.split(","):
                    report[part] = {**old[part], "measured": old.get("measured", {}).get(part, old["time"])}
    report["measured"] = {part: report[part].get("measured", report["time"]) for part in PARTS if part in report}
    for part in args.parts.split(","):
        report["measured"][part] = report["time"]
        print(f"bench.cascade: {part} ...", flush=True)
        report[part] = PARTS[part](args.quick, workdir)
        print(json.dumps(report[part])[:2000], flush=True)
    out = RESULTS / f"cascade_{report['time'].replace(':', '')}.json"
    out.write_text(json.dumps(report, indent=1))
    Path(__file__).with_name("RESULTS_cascade.md").write_text(markdown(report) + f"\nRaw: `{out.relative_to(common.REPO)}`.\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
