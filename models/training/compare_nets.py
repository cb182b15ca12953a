"""The thesis' three CNNs side by side, int8, same data, one command (issue 16).

For every model given (default: the shipped Pix2Pix and models/{mann,mff}/):
- validation (lens cache `val`, the split every patch run validates on): 9-class accuracy, and
  binary recall / false-alarm rate at the daemon's threshold (b_0.75 and above = blurry); and the
  recall at Pix2Pix's false-alarm rate (the threshold on the blurry-vs-sharp log-probability
  margin that a sharp bias would give, chosen on this same set: the "equal FAR" comparison);
- `../shared/data/real_defocus/` through `focusguard check --model` (the daemon's preprocessing);
- the leave-cameras-out protocol (`leave_cameras_out.py`: 15 CCTV cameras, first 5 frames the
  start-up, last 5 judged in the 9 classes, by day and through the IR night look), for the CNN
  alone and as the fusion detector's CNN witness (the fusion model as fitted on the Pix2Pix
  witness: not refitted for the others), without fine-tuning;
- parameters (of the 448 network), int8 file size, CPU milliseconds per frame (one interpreter
  thread, median of 40 classifications after 5 warm-up ones).

Writes `models/eval/nets.{json,md}` and a confusion matrix per model (`nets_confusion_<name>.png`).
Run: python -m models.training.compare_nets
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from tqdm import tqdm

from models.training.evaluate import (
    FIRST_BLURRY,
    at_equal_far,
    blurry_margin,
    class_metrics,
    int8_probabilities,
    plot_confusion,
    real_defocus,
)
from models.training.leave_cameras_out import (
    START_FRAMES,
    camera_frames,
    night_look,
    rates,
    tally,
)

REPO = Path(__file__).resolve().parents[2]
MODELS = {
    "pix2pix": REPO / "daemon" / "focusguard" / "analysis" / "model" / "focusguard_pix2pix_448_int8.tflite",
    "mann": REPO / "models" / "mann" / "focusguard_mann_448_int8.tflite",
    "mff": REPO / "models" / "mff" / "focusguard_mff_448_int8.tflite",
}
PARAMS = {"pix2pix": 12_760_393, "mann": 3_329_063, "mff": 5_720_905}  # the 448 networks (nets.py)
THESIS_PARAMS = {"pix2pix": 12_760_393, "mann": 3_350_713, "mff": 5_768_773}


def cpu_ms(path: Path, frames: np.ndarray) -> float:
    from focusguard.analysis.infer import Classifier

    classifier = Classifier(path, device="cpu", threads=1)
    for frame in frames[:5]:
        classifier.classify(frame)
    times = []
    for frame in frames[5:45]:
        start = time.perf_counter()
        classifier.classify(frame)
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 1)


def cameras_protocol(path: Path) -> dict[str, Any]:
    """The leave-cameras-out protocol for this model: the CNN alone and as the fusion's witness."""
    from focusguard.analysis import fusion
    from focusguard.analysis.detectors import make_detector
    from focusguard.analysis.infer import Classifier
    from models.training.build_dataset import gaussian_blur, load_source
    from models.training.classes import sigma_for

    classifier = Classifier(path, device="cpu", threads=2)
    counts: dict = defaultdict(lambda: defaultdict(int))
    for cam, paths in tqdm(camera_frames().items(), desc=f"cameras {path.stem}", file=sys.stderr):
        learning = [True]

        def allowed(flag: list[bool] = learning) -> bool:
            return flag[0]

        detectors = {"cnn": make_detector("cnn", classifier),
                     "fusion": fusion.for_camera(SimpleNamespace(name=cam), classifier, None, allowed)}
        frames = [load_source(p) for p in paths]
        start, test = frames[:START_FRAMES], frames[START_FRAMES:]
        for frame in start + [night_look(f, 1000 + i) for i, f in enumerate(start)]:
            for detector in detectors.values():
                detector.verdict(frame)
        learning[0] = False
        for j, frame in enumerate(test):
            for c in range(9):
                blurred = gaussian_blur(frame, sigma_for(c, frame.shape[1]))
                for cond, view in (("day", blurred), ("night", night_look(blurred, 10 * j + c))):
                    verdicts = {name: bool(d.verdict(view).blurry) for name, d in detectors.items()}
                    tally(counts, (cond,), c, verdicts)
    return {" ".join(k): rates(c) for k, c in counts.items()}


def fusion_real_defocus(path: Path) -> dict[str, Any]:
    """real_defocus/ through `focusguard eval --detector fusion --model` (reference = each scene's sharp shot)."""
    import subprocess
    import tempfile

    from models.training.evaluate import SHARED

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.json"
        subprocess.run([sys.executable, "-m", "focusguard", "eval", str(SHARED / "MANIFEST.csv"), "--under",
                        "real_defocus/", "--detector", "fusion", "--model", str(path), "--json", str(out)],
                       check=True, capture_output=True, text=True)  # fmt: skip
        data = json.loads(out.read_text())
    return next(r for r in data["results"] if r["detector"].startswith("fusion"))


def evaluate_model(name: str, path: Path, data: Path, out: Path) -> dict[str, Any]:
    images = np.load(data / "val_x.npy", mmap_mode="r")
    labels = np.load(data / "val_y.npy")
    probs = int8_probabilities(path, images)
    val = class_metrics(labels, probs.argmax(1))
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion(val["confusion"], f"{name} int8: 9-class acc {val['accuracy_9class']:.3f} (validation, "
                   f"{len(labels)} samples)", out / f"nets_confusion_{name}.png")
    return {
        "model": str(path.relative_to(REPO)),
        "params": PARAMS[name], "thesis_params": THESIS_PARAMS[name], "int8_bytes": path.stat().st_size,
        "cpu_ms_1_thread": cpu_ms(path, np.asarray(images[:45])),
        "validation": {"samples": int(len(labels)), "accuracy_9class": val["accuracy_9class"], **val["binary"],
                       "confusion": val["confusion"], "margins": [round(float(m), 3) for m in blurry_margin(probs)]},
        "real_defocus_cnn": real_defocus(path)["binary"],
        "real_defocus_fusion": fusion_real_defocus(path),
        "cameras": cameras_protocol(path),
    }  # fmt: skip


def add_equal_far(result: dict[str, Any], labels: np.ndarray, reference: str = "pix2pix") -> None:
    """Every model's validation recall at the reference model's validation false-alarm rate."""
    if reference not in result:
        return
    target = result[reference]["validation"]["false_alarm_rate"]
    for r in result.values():
        margins = np.asarray(r["validation"]["margins"])
        r["validation"]["at_reference_far"] = {"reference": reference, **at_equal_far(margins, labels >= FIRST_BLURRY, target)}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(result: dict[str, Any]) -> str:
    names = list(result)
    rows = [
        ("parameters (thesis)", lambda r: f"{r['params']:,} ({r['thesis_params']:,})"),
        ("int8 size", lambda r: f"{r['int8_bytes'] / 1e6:.2f} MB"),
        ("CPU ms per frame, 1 thread", lambda r: f"{r['cpu_ms_1_thread']}"),
        ("validation 9-class", lambda r: pct(r["validation"]["accuracy_9class"])),
        ("validation binary recall / FAR", lambda r: f"{pct(r['validation']['recall'])} / "
                                                     f"{pct(r['validation']['false_alarm_rate'])}"),
        ("validation recall / FAR at Pix2Pix's FAR", lambda r: _equal_far(r)),
        ("real_defocus CNN recall / FAR", lambda r: f"{pct(r['real_defocus_cnn']['recall'])} / "
                                                    f"{pct(r['real_defocus_cnn']['false_alarm_rate'])}"),
        ("real_defocus fusion recall / FAR", lambda r: f"{pct(r['real_defocus_fusion']['recall'])} / "
                                                       f"{pct(r['real_defocus_fusion']['false_alarm_rate'])}"),
        ("cameras, CNN day recall / FAR", lambda r: _cam(r, "cnn day")),
        ("cameras, CNN IR night recall / FAR", lambda r: _cam(r, "cnn night")),
        ("cameras, fusion day recall / FAR", lambda r: _cam(r, "fusion day")),
        ("cameras, fusion IR night recall / FAR", lambda r: _cam(r, "fusion night")),
    ]
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(result[n]) for n in names) + " |")
    return "\n".join(lines) + "\n"


def _equal_far(r: dict[str, Any]) -> str:
    e = r["validation"].get("at_reference_far")
    return f"{pct(e['recall'])} / {pct(e['far'])} (margin > {e['threshold']:.2f})" if e else "-"


def _cam(r: dict[str, Any], key: str) -> str:
    c = r["cameras"][key]
    return f"{pct(c['recall'])} / {pct(c['far'])}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "models" / "work" / "lens")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--out", type=Path, default=REPO / "models" / "eval")
    parser.add_argument("--reuse", type=Path, action="append", default=[],
                        help="a nets.json of an earlier run whose models are taken as they are")
    args = parser.parse_args()
    earlier = {k: v for path in args.reuse for k, v in json.loads(path.read_text()).items()}
    result = {name: earlier[name] if name in earlier else evaluate_model(name, MODELS[name], args.data, args.out)
              for name in args.models}  # fmt: skip
    frames = np.asarray(np.load(args.data / "val_x.npy", mmap_mode="r")[:45])
    for name in result:  # timed again one after the other, on the same load, after the heavy parts
        result[name]["cpu_ms_1_thread"] = cpu_ms(MODELS[name], frames)
    add_equal_far(result, np.load(args.data / "val_y.npy"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nets.json").write_text(json.dumps(result, indent=1))
    (args.out / "nets.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
