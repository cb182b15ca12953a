"""What the default detector (fusion) costs per analysis, beside the measures it reads and the old combined.

Per frame size (720p, 1080p, 2160p views of the test photo, in focus), median milliseconds of
one thread over `--repeat` calls, measured side by side in one run:

* `regime`: baseline.lighting_regime (every relative detector needs it);
* `profile`: evidence.profile, the measures the fusion reads (tile contrast and Laplacian at three
  pyramid levels, high-pass energy, structure thumbnail, brightness, colour);
* `fusion own`: evidence.features against a baseline + the calibrated model (fusion_model.py):
  the cost the fusion adds beyond the measures (the issue's "<= 5 ms per 1080p analysis");
* `combined measure` (the old default's tile_sharpness), `dft` and `laplacian` (detectors.py);
* `cnn`: one int8 inference (2 threads) incl. the 448 resize, which both fusion and combined pay.

Writes bench/RESULTS_fusion.md. Run: .venv/bin/python -m bench.fusion_cost [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench import common

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up (first call allocates)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def measure(repeat: int) -> dict[str, dict[str, float]]:
    from focusguard.analysis import evidence
    from focusguard.analysis.baseline import lighting_regime, tile_sharpness
    from focusguard.analysis.detectors import high_frequency_energy, laplacian_variance
    from focusguard.analysis.fusion_model import shipped
    from focusguard.analysis.infer import Classifier
    from focusguard.analysis.preprocess import to_model_rgb
    from tests.support.clips import load_image, source_image

    cv2.setNumThreads(1)
    photo = load_image(source_image())
    classifier = Classifier(None, None, device="cpu", threads=2)
    boundary = shipped().boundary("day", "b_0.75")
    rows: dict[str, dict[str, float]] = {}
    for name, (w, h) in SIZES.items():
        frame = np.ascontiguousarray(cv2.resize(photo, (w, h), interpolation=cv2.INTER_CUBIC))
        probs = classifier.classify(to_model_rgb(frame))
        base = evidence.profile(frame, probs, "day")
        now = evidence.profile(frame, probs, "day")
        rows[name] = {
            "regime": median_ms(lambda f=frame: lighting_regime(f), repeat),
            "profile": median_ms(lambda f=frame, p=probs: evidence.profile(f, p, "day"), repeat),
            "fusion own": median_ms(lambda n=now, b=base: boundary.probability(evidence.features(n, b)), repeat),
            "combined measure": median_ms(lambda f=frame: tile_sharpness(f, 0), repeat),
            "dft": median_ms(lambda f=frame: high_frequency_energy(f), max(5, repeat // 3)),
            "laplacian": median_ms(lambda f=frame: laplacian_variance(f), repeat),
            "cnn": median_ms(lambda f=frame: classifier.classify(to_model_rgb(f)), repeat),
        }
    return rows


def markdown(rows: dict[str, dict[str, float]], machine: dict[str, Any], command: str) -> str:
    cols = list(next(iter(rows.values())))
    lines = [
        "# Fusion cost per analysis (median ms, one thread; the CNN 2 threads)",
        "",
        f"Command: `{command}`; CPU: {machine.get('cpu', '?')}; load at start {machine.get('load', '?')}.",
        "",
        "| frame | " + " | ".join(cols) + " | fusion total (regime + profile + own) | combined total (regime + measure) |",
        "|---|" + "---|" * (len(cols) + 2),
    ]
    for name, r in rows.items():
        fusion = r["regime"] + r["profile"] + r["fusion own"]
        combined = r["regime"] + r["combined measure"]
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:.2f}" for c in cols) + f" | {fusion:.2f} | {combined:.2f} |")
    lines += ["", "Both totals exclude the CNN inference, which both detectors run on every analysis."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fusion_cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--markdown", type=Path, default=common.REPO / "bench" / "RESULTS_fusion.md")
    args = ap.parse_args(argv)
    info = common.machine()
    rows = measure(args.repeat)
    command = "python -m bench.fusion_cost " + " ".join(sys.argv[1:] if argv is None else argv)
    text = markdown(rows, {"cpu": info.get("Model name", "?"), "load": info.get("loadavg_at_start")}, command.strip())
    args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
