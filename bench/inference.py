"""Part 1: ms per frame of the shipped int8 model, daemon `infer` stage vs a bare interpreter.

Both run the same model with the same thread count in the same process, in alternating
blocks (A B A B ...) so that a shared machine's load drifts over both alike. The daemon side
is `Classifier.classify(rgb448)`: input quantisation, the lock, invoke, output
dequantisation. The bare side is `ai_edge_litert` `set_tensor` / `invoke` / `get_tensor`.
Also timed (not part of the ratio): the preprocessing of a 1080p and a 2160p frame (`resize`),
and the 4 native tiles of a 2160p frame (`tiles`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run(quick: bool) -> dict[str, Any]:
    from ai_edge_litert import interpreter as litert

    from focusguard.analysis.infer import Classifier, default_model_path, dequantize_probs
    from focusguard.analysis.preprocess import quantize_input, to_model_rgb, to_model_tiles

    model = default_model_path()
    blocks, per_block = (3, 5) if quick else (10, 20)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (448, 448, 3), dtype=np.uint8)
    out: dict[str, Any] = {"model": str(model), "blocks": blocks, "frames_per_block": per_block, "threads": {}}
    for threads in (1, 2):
        daemon = Classifier(model, device="cpu", threads=threads)
        bare = litert.Interpreter(model_path=str(model), num_threads=threads)
        bare.allocate_tensors()
        inp, outp = bare.get_input_details()[0], bare.get_output_details()[0]
        tensor = image[np.newaxis].astype(inp["dtype"])

        def bare_call(bare: Any = bare, inp: Any = inp, outp: Any = outp, tensor: Any = tensor) -> None:
            bare.set_tensor(inp["index"], tensor)
            bare.invoke()
            np.array(bare.get_tensor(outp["index"]))

        def daemon_call(daemon: Any = daemon) -> None:
            daemon.classify(image)

        for call in (bare_call, daemon_call):  # warm-up (XNNPACK packs weights on first invoke)
            for _ in range(3):
                call()
        times: dict[str, list[float]] = {"bare": [], "daemon": []}
        for _ in range(blocks):
            for name, call in (("bare", bare_call), ("daemon", daemon_call)):
                for _ in range(per_block):
                    t0 = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - t0)
        bare_ms, daemon_ms = _median_ms(times["bare"]), _median_ms(times["daemon"])
        # The daemon's own work around invoke (input check, quantisation, batch axis, output copy and
        # dequantisation), timed alone: unlike the end-to-end ratio, not swamped by a busy machine.
        raw = np.array(bare.get_tensor(outp["index"]))
        extra = []
        for _ in range(200):
            t0 = time.perf_counter()
            quantize_input(image, daemon._input_scale, daemon._input_zero, daemon._input_dtype)[np.newaxis]
            dequantize_probs(np.array(raw[0]), daemon._output_scale, daemon._output_zero)
            extra.append(time.perf_counter() - t0)
        extra_ms = _median_ms(extra)
        out["threads"][str(threads)] = {
            "bare_ms_median": round(bare_ms, 2),
            "daemon_ms_median": round(daemon_ms, 2),
            "bare_ms_p90": round(float(np.percentile(times["bare"], 90)) * 1000, 2),
            "daemon_ms_p90": round(float(np.percentile(times["daemon"], 90)) * 1000, 2),
            "overhead_ratio": round(daemon_ms / bare_ms, 4),
            "daemon_extra_ms_alone": round(extra_ms, 4),
            "overhead_ratio_from_extra": round((bare_ms + extra_ms) / bare_ms, 4),
            "target_met": daemon_ms / bare_ms <= 1.05,
        }
        del daemon, bare
    prep: dict[str, float] = {}
    for name, shape in (("resize_1080p", (1080, 1920, 3)), ("resize_2160p", (2160, 3840, 3))):
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        samples = []
        for _ in range(5 if quick else 30):
            t0 = time.perf_counter()
            to_model_rgb(frame)
            samples.append(time.perf_counter() - t0)
        prep[name] = round(_median_ms(samples), 2)
    frame = rng.integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    samples = []
    for _ in range(5 if quick else 30):
        t0 = time.perf_counter()
        to_model_tiles(frame)
        samples.append(time.perf_counter() - t0)
    prep["tiles_2160p_4_tiles"] = round(_median_ms(samples), 2)
    out["preprocess_ms_median"] = prep
    return out
