"""Run the benchmarks and write `bench/results/<date>.json` and `bench/RESULTS.md`.

    .venv/bin/python -m bench.run            # everything (~15 min; needs mosquitto + the RTSP server)
    .venv/bin/python -m bench.run --quick    # smoke mode: short windows, few cameras (~4 min)
    .venv/bin/python -m bench.run --parts inference,stream

Figures are taken side by side in one run and compared as ratios; the machine (lscpu) and
the command line are written with them. Run it on an otherwise idle machine: everything
here measures CPU, and a busy neighbour shows up in every number (the busiest other
processes at the start are recorded).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import common

PARTS = ("inference", "stream", "delay", "scale")


def _f(value: Any, fmt: str = "{:.1f}", scale: float = 1.0) -> str:
    return "–" if value is None else fmt.format(value * scale)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# focusguard benchmarks",
        "",
        f"- run: {report['started']} "
        f"({'QUICK smoke mode: short windows, not for decisions' if report['quick'] else 'full'})",
        f"- command: `{report['command']}`",
        f"- machine: {m.get('Model name', '?')}, {m.get('CPU(s)', m.get('nproc'))} CPU(s), "
        f"{m.get('Flags', '')}; Python {m['python']}, PyAV {m.get('av')}, OpenCV {m.get('opencv')}, "
        f"ai-edge-litert {m.get('ai_edge_litert', '?')}; load average at start {m['loadavg_at_start'][0]:.2f}",
        f"- busiest processes at start: {'; '.join(report['busy_at_start'][:3])}",
        "",
    ]
    parts = report["parts"]
    if "inference" in parts and "error" not in parts["inference"]:
        inf = parts["inference"]
        lines += ["## 1. Inference (shipped int8 model, ms per frame, median of alternating blocks)", "",
                  "| threads | bare interpreter | daemon `Classifier.classify` | overhead ratio | ≤ 1.05 "
                  "| daemon's own work, timed alone (ms) | ratio from it |",
                  "|---|---|---|---|---|---|---|"]
        for threads, r in inf["threads"].items():
            lines.append(f"| {threads} | {r['bare_ms_median']:.2f} | {r['daemon_ms_median']:.2f} | "
                         f"{r['overhead_ratio']:.3f} | {'yes' if r['target_met'] else 'NO'} | "
                         f"{_f(r.get('daemon_extra_ms_alone'), '{:.3f}')} | "
                         f"{_f(r.get('overhead_ratio_from_extra'), '{:.4f}')} |")
        p = inf["preprocess_ms_median"]
        lines += ["", f"Preprocessing (not in the ratio): 1080p → 448 {p['resize_1080p']:.1f} ms, 2160p → 448 "
                  f"{p['resize_2160p']:.1f} ms, 2160p → 4 native tiles {p['tiles_2160p_4_tiles']:.1f} ms.", ""]
    if "stream" in parts and "error" not in parts["stream"]:
        st = parts["stream"]
        lines += [f"## 2. Stream cost per camera, excluding inference (% of one core; windows of {st['window_s']:g} s, "
                  "at least 1.1 analysis intervals)", "",
                  "| stream | analysis every | decode every frame | every keyframe | daemon (keyframes on demand) "
                  "| ratio daemon/full | frames decoded/s (full → keyframes → daemon) |",
                  "|---|---|---|---|---|---|---|"]
        for r in st["rows"]:
            lines.append(f"| {r['stream']} | {r['interval_s']:g} s | {_f(r['full']['cpu_share'], scale=100)} | "
                         f"{_f(r['keyframes']['cpu_share'], scale=100)} | "
                         f"{_f(r['daemon']['cpu_share'], scale=100)} | {r['ratio_daemon_over_full']:.3f} | "
                         f"{r['full']['decoded_fps']:g} → {r['keyframes']['decoded_fps']:g} → "
                         f"{r['daemon']['decoded_fps']:g} |")
        lines.append("")
    if "delay" in parts and "error" not in parts["delay"]:
        d = parts["delay"]
        lines += ["## 3. Detection delay (real daemon, MQTT arrival, default debounce)", "",
                  f"Clip {d['clip']}: defocus at {d['switch_s'][0]:g} s, refocus at {d['switch_s'][1]:g} s; "
                  f"{d['debounce']}.", "",
                  "| detector | first defocused frame → focus_lost (s) | refocus → focus_restored (s) |",
                  "|---|---|---|"]
        for name, r in d["cameras"].items():
            lines.append(f"| {name} | {_f(r['focus_lost'])} | {_f(r['focus_restored'])} |")
        lines += ["", "– = no event within the run (e.g. a model that does not see the blur).", ""]
    if "scale" in parts and "error" not in parts["scale"]:
        s = parts["scale"]
        lines += [f"## 4. Scale ({s['stream']}, {s['cores']} cores)", "",
                  "| cameras | daemon CPU (% of one core) | daemon RSS (MiB) | RTSP server CPU (%, not counted) |",
                  "|---|---|---|---|"]
        for r in s["rows"]:
            lines.append(f"| {r['cameras']} | {r['daemon_cpu_share'] * 100:.1f} | {r['daemon_rss_mib']:.0f} | "
                         f"{r['rtsp_server_cpu_share'] * 100:.1f} |")
        lines += ["", f"Per camera: {s['cpu_per_camera_share'] * 100:.2f}% of one core and "
                  f"{s['rss_per_camera_mib']:.1f} "
                  f"MiB RSS (least-squares slope; fixed part {s['cpu_fixed_share'] * 100:.1f}% and "
                  f"{s['rss_fixed_mib']:.0f} MiB). **Extrapolated**, not measured: about "
                  f"{s['cameras_under_80pct_extrapolated']} cameras stay under 80% of {s['cores']} cores.", ""]
    for name, part in parts.items():
        if "error" in part:
            lines += [f"## {name}: FAILED", "", "```", part["error"][-1500:], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: short windows, few cameras")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    ap.add_argument("--out", type=Path, help="JSON path (default bench/results/<date>.json)")
    ap.add_argument("--markdown", type=Path, default=common.REPO / "bench" / "RESULTS.md")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    for p in parts:
        if p not in PARTS:
            ap.error(f"unknown part {p!r}")
    started = datetime.now().astimezone()
    report: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "bench.run",
                                                      *(sys.argv[1:] if argv is None else argv)]),
        "machine": common.machine(),
        "busy_at_start": common.busy_processes(),
        "parts": {},
    }
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    for name in parts:
        t0 = time.monotonic()
        print(f"bench: {name} ...", flush=True)
        try:
            module = __import__(f"bench.{name}", fromlist=["run"])
            report["parts"][name] = module.run(args.quick)
        except Exception:
            report["parts"][name] = {"error": traceback.format_exc()}
        report["parts"][name]["elapsed_s"] = round(time.monotonic() - t0, 1)
        print(f"bench: {name} done in {report['parts'][name]['elapsed_s']} s", flush=True)
    out = args.out or common.RESULTS / f"{started:%Y-%m-%d_%H%M%S}{'_quick' if args.quick else ''}.json"
    out.write_text(json.dumps(report, indent=1))
    shown = out.relative_to(common.REPO) if out.resolve().is_relative_to(common.REPO) else out
    args.markdown.write_text(markdown(report) + f"\nRaw results: `{shown}` (git-ignored).\n")
    print(markdown(report))
    print(f"wrote {out} and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
