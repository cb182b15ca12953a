"""`focusguard eval`: run detectors side by side over labelled images or a labelled clip.

Inputs (positive = blurry, as in the thesis' section 2.7):

* a folder with `sharp/` and `blurry/` subfolders (searched recursively);
* a CSV manifest with `file` and `label` columns (`/work/shared/data/MANIFEST.csv`): labels
  starting with `sharp` are sharp, with `blurry` blurry; paths relative to the manifest;
  `--under PREFIX` keeps only files below a prefix (e.g. `real_defocus/`);
* a video clip with `--labels FILE`: lines `start,end,label` (seconds, `sharp`/`blurry`;
  `#` comments); frames outside every range (blur ramps) are plotted but not scored.

Detectors: `fusion` (the daemon's default, `focusguard.fusion`), `cnn` (with `--preprocess resize`,
`tiles` or both), `dft`, `laplacian` (`focusguard.detectors`) and `combined` (the former default,
`focusguard.combined`); fusion's and combined's baselines are learnt from the scene's reference
image, taken as their learning frames (clearly in-focus scored images may also move fusion's
baseline, as in the daemon). Reference-based detectors (dft, relative laplacian, combined, fusion) need a sharp
reference per scene, as a camera has: images are grouped into scenes (by default their
folder, without a leading `sharp/`/`blurry/`; `--scene REGEX` takes the first group of a
regex over the relative path instead) and the first sharp image of each scene (sorted by
path) is its reference. Reference images are left out of the scores of *every* detector,
so all rows are computed on the same images. Scenes without a sharp image are left out for
every detector when a reference-based detector runs (reported). A clip is one scene whose
reference is learnt as in the daemon (the first analysed frames).

Reported per detector: accuracy, balanced accuracy, recall (blurry found), precision,
false-alarm rate FP/(TN+FP), counts, and ms per frame (the verdict only: decoding the image
file is not included). For a clip, `--plot PNG` draws each detector's score over time with
its threshold, the labelled blurry ranges and the debounced focus state (the daemon's
default window 8 / 6 / 6, one analysis per `--step` seconds).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LABELS = ("sharp", "blurry")


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metrics:
    """Binary metrics with positive = blurry. Undefined ratios are None."""

    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float | None
    balanced_accuracy: float | None
    recall: float | None
    precision: float | None
    false_alarm_rate: float | None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def binary_metrics(truth: Sequence[bool], predicted: Sequence[bool]) -> Metrics:
    """Accuracy, balanced accuracy, recall, precision and FAR = FP / (TN + FP) (thesis 2.7)."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum((not t) and p for t, p in zip(truth, predicted, strict=True))
    tn = sum((not t) and (not p) for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and (not p) for t, p in zip(truth, predicted, strict=True))
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    balanced = None
    if recall is not None and specificity is not None:
        balanced = (recall + specificity) / 2
    else:
        balanced = recall if recall is not None else specificity
    return Metrics(
        n=len(truth),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=_ratio(tp + tn, len(truth)),
        balanced_accuracy=balanced,
        recall=recall,
        precision=_ratio(tp, tp + fp),
        false_alarm_rate=_ratio(fp, fp + tn),
    )


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Sample:
    path: Path
    rel: str  # path relative to the data root, for scenes and reports
    blurry: bool


def label_is_blurry(label: str) -> bool | None:
    """`sharp...` → False, `blurry...` → True, anything else → None (skipped)."""
    text = label.strip().lower()
    if text.startswith("sharp"):
        return False
    if text.startswith("blur"):  # blur, blurry
        return True
    return None


def folder_samples(root: Path) -> list[Sample]:
    """Images under `root/sharp` and `root/blurry` (recursively)."""
    samples = []
    for label in LABELS:
        base = root / label
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                samples.append(Sample(path, path.relative_to(root).as_posix(), label == "blurry"))
    if not samples:
        raise ValueError(f"{root}: no images under sharp/ or blurry/")
    return samples


def manifest_samples(manifest: Path, under: str | None = None) -> list[Sample]:
    """Rows of a CSV manifest with `file` and `label` columns."""
    samples = []
    with manifest.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"file", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{manifest}: needs 'file' and 'label' columns")
        for row in reader:
            rel = row["file"].strip()
            if under and not rel.startswith(under):
                continue
            blurry = label_is_blurry(row["label"])
            if blurry is None:
                continue
            samples.append(Sample(manifest.parent / rel, rel, blurry))
    if not samples:
        raise ValueError(f"{manifest}: no labelled rows" + (f" under {under!r}" if under else ""))
    return sorted(samples, key=lambda s: s.rel)


def parse_clip_labels(text: str) -> list[tuple[float, float, bool]]:
    """`start,end,label` lines (seconds) → [(start, end, blurry)]; `#` comments and blank lines ignored."""
    ranges = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            raise ValueError(f"labels line {number}: expected start,end,label, got {line!r}")
        blurry = label_is_blurry(parts[2])
        if blurry is None:
            raise ValueError(f"labels line {number}: label must be sharp or blurry, got {parts[2]!r}")
        start, end = float(parts[0]), float(parts[1])
        if end <= start:
            raise ValueError(f"labels line {number}: end must be after start")
        ranges.append((start, end, blurry))
    return ranges


def label_at(ranges: Sequence[tuple[float, float, bool]], t: float) -> bool | None:
    for start, end, blurry in ranges:
        if start <= t < end:
            return blurry
    return None


def scene_of(rel: str, pattern: re.Pattern[str] | None) -> str:
    """The scene (camera) an image belongs to: regex group 1, else its folder without sharp/ or blurry/."""
    if pattern is not None:
        match = pattern.search(rel)
        if match:
            return match.group(1) if match.groups() else match.group(0)
    parts = rel.split("/")[:-1]
    if parts and parts[0] in LABELS:
        parts = parts[1:]
    return "/".join(parts)


# --------------------------------------------------------------------------- detectors


@dataclass
class Row:
    """One detector configuration's results."""

    name: str
    truth: list[bool] = field(default_factory=list)
    predicted: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    thresholds: list[float | None] = field(default_factory=list)
    classes: list[str | None] = field(default_factory=list)
    focus: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    verdicts: list[bool] = field(default_factory=list)  # every frame's verdict (items order), scored or not

    def summary(self) -> dict[str, Any]:
        metrics = binary_metrics(self.truth, self.predicted)
        ms = [s * 1000 for s in self.seconds]
        return {
            "detector": self.name,
            **asdict(metrics),
            "ms_per_frame_median": statistics.median(ms) if ms else None,
            "ms_per_frame_mean": statistics.fmean(ms) if ms else None,
        }


def detector_specs(detectors: Sequence[str], preprocess: Sequence[str]) -> list[tuple[str, str]]:
    """(row name, detector name) pairs: cnn once per preprocess mode, others once."""
    specs = []
    for name in detectors:
        if name == "cnn":
            specs.extend((f"cnn/{mode}", "cnn") for mode in preprocess)
        else:
            specs.append((name, name))
    return specs


def threshold_of(detector: Any) -> float | None:
    """The score at or below which a reference-based detector says blurry (for plots)."""
    from focusguard.detectors import DftDetector, LaplacianDetector, dft_threshold

    if isinstance(detector, LaplacianDetector):
        if detector.threshold is not None:
            return detector.threshold
        return None if detector.reference is None else detector.ratio * detector.reference
    if isinstance(detector, DftDetector) and detector.reference is not None:
        return dft_threshold(detector.reference, detector.max_hf) * detector.reference
    figures = getattr(detector, "figures", None)
    if figures and figures.get("basis") == "fusion":  # fusion: its score is P(defocus)
        return float(detector.threshold_for(figures["regime"]))
    if figures and figures.get("baseline"):  # combined: its score is sharpness / baseline
        from focusguard.combined import NIGHT_REGIMES

        return float(detector.night_drop if figures.get("regime") in NIGHT_REGIMES else detector.drop)
    return None


class Factory:
    """Builds fresh detectors (one per scene) around one shared classifier, loaded on first need."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._classifier: Any = None

    def classifier(self) -> Any:
        if self._classifier is None:
            from focusguard.infer import Classifier

            self._classifier = Classifier(self.args.model, None, device="cpu", threads=self.args.threads)
        return self._classifier

    def make(self, row_name: str, name: str, learning_allowed: Callable[[], bool] | None = None) -> Any:
        from focusguard.detectors import make_detector

        if name in ("fusion", "combined"):  # built as for a camera; baseline in memory only
            from types import SimpleNamespace

            from focusguard import combined, fusion

            camera = SimpleNamespace(name="eval", blurry_from=self.args.blurry_from, preprocess="resize")
            if name == "fusion":  # the daemon's default
                return fusion.for_camera(camera, self.classifier(), None, learning_allowed)
            return combined.for_camera(camera, self.classifier(), None, learning_allowed)

        return make_detector(
            name,
            self.classifier() if name == "cnn" else None,
            blurry_from=self.args.blurry_from,
            preprocess=row_name.split("/", 1)[1] if name == "cnn" else "resize",
            laplacian_threshold=self.args.laplacian_threshold,
            learning_allowed=learning_allowed,
            tile=self.args.tile,
        )


def _timed(detector: Any, frame: npt.NDArray[np.uint8]) -> tuple[Any, float]:
    start = time.perf_counter()
    verdict = detector.verdict(frame)
    return verdict, time.perf_counter() - start


def evaluate_images(
    samples: Sequence[Sample], specs: Sequence[tuple[str, str]], factory: Factory,
    scene_pattern: re.Pattern[str] | None, read: Callable[[str], npt.NDArray[np.uint8]],
) -> tuple[list[Row], dict[str, Any]]:
    """Run every detector on every non-reference image; returns rows and notes."""
    from focusguard.baseline import LEARN_FRAMES
    needs_reference = any(
        name in ("dft", "combined", "fusion") or (name == "laplacian" and factory.args.laplacian_threshold is None)
        for _, name in specs
    )
    scenes: dict[str, list[Sample]] = {}
    for sample in samples:
        scenes.setdefault(scene_of(sample.rel, scene_pattern), []).append(sample)
    rows = {row_name: Row(row_name) for row_name, _ in specs}
    references, skipped = [], []
    for scene, members in sorted(scenes.items()):
        reference = next((s for s in members if not s.blurry), None) if needs_reference else None
        if needs_reference and reference is None:
            skipped.extend(s.rel for s in members)
            continue
        learning = [True]  # combined learns its baseline from the reference only
        detectors = {row_name: factory.make(row_name, name, lambda flag=learning: flag[0]) for row_name, name in specs}
        if reference is not None:
            references.append(reference.rel)
            image = read(str(reference.path))
            for detector in detectors.values():
                if hasattr(detector, "set_reference") and detector.needs_reference():
                    detector.set_reference(detector.measure(image))
                elif hasattr(detector, "store") or hasattr(detector, "baselines"):  # combined, fusion: the
                    for _ in range(LEARN_FRAMES):  # reference as its learning frames
                        detector.verdict(image)
        learning[0] = False
        for sample in members:
            if sample is reference:
                continue
            image = read(str(sample.path))
            for row_name, detector in detectors.items():
                verdict, seconds = _timed(detector, image)
                row = rows[row_name]
                row.truth.append(sample.blurry)
                row.predicted.append(bool(verdict.blurry))
                row.verdicts.append(bool(verdict.blurry))
                row.seconds.append(seconds)
                row.scores.append(float(verdict.score))
                row.thresholds.append(threshold_of(detector))
                row.classes.append(verdict.cls)
                row.items.append(f"{scene}: {sample.rel}")
    notes = {"scenes": len(scenes), "references": references, "skipped_no_sharp_reference": skipped}
    return list(rows.values()), notes


def clip_frames(path: Path, step_s: float) -> Iterable[tuple[float, npt.NDArray[np.uint8]]]:
    """(seconds, BGR frame) every `step_s` seconds of the clip (every frame decoded, sampled by pts)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        next_t = 0.0
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else next_t
            if t + 1e-6 < next_t:
                continue
            next_t = t + step_s
            yield t, frame.to_ndarray(format="bgr24")


def evaluate_clip(
    clip: Path, ranges: Sequence[tuple[float, float, bool]], specs: Sequence[tuple[str, str]], factory: Factory,
    step_s: float,
) -> tuple[list[Row], list[float], dict[str, Any]]:
    """Every detector over the clip as the daemon runs it: reference learnt from the first frames, debounced."""
    from focusguard.decide import FocusDecider
    from focusguard.infer import DEFAULT_LABELS

    rows, deciders, detectors = {}, {}, {}
    for row_name, name in specs:
        decider = FocusDecider(DEFAULT_LABELS, blurry_from=factory.args.blurry_from)
        deciders[row_name] = decider
        detectors[row_name] = factory.make(row_name, name, lambda d=decider: d.focus != "lost")
        rows[row_name] = Row(row_name)
    times: list[float] = []
    unlabelled = 0
    for t, frame in clip_frames(clip, step_s):
        times.append(t)
        truth = label_at(ranges, t)
        unlabelled += truth is None
        for row_name, detector in detectors.items():
            verdict, seconds = _timed(detector, frame)
            decision = deciders[row_name].vote(bool(verdict.blurry), t, verdict.cls)
            row = rows[row_name]
            row.seconds.append(seconds)
            row.scores.append(float(verdict.score))
            row.thresholds.append(threshold_of(detector))
            row.classes.append(verdict.cls)
            row.focus.append(decision.focus)
            row.items.append(f"{t:.2f}")
            row.verdicts.append(bool(verdict.blurry))
            if truth is not None:  # unlabelled frames (blur ramps) are plotted, not scored
                row.truth.append(truth)
                row.predicted.append(bool(verdict.blurry))
    return list(rows.values()), times, {"frames": len(times), "unlabelled_frames": unlabelled, "step_s": step_s}


# --------------------------------------------------------------------------- output


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table, one line per detector."""
    lines = [
        "| detector | n | accuracy % | balanced acc. % | recall % | precision % | FAR % | TP/FP/TN/FN | ms/frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.summary()
        ms = "–" if s["ms_per_frame_median"] is None else f"{s['ms_per_frame_median']:.1f}"
        lines.append(
            f"| {row.name} | {s['n']} | {_pct(s['accuracy'])} | {_pct(s['balanced_accuracy'])} | {_pct(s['recall'])} "
            f"| {_pct(s['precision'])} | {_pct(s['false_alarm_rate'])} | {s['tp']}/{s['fp']}/{s['tn']}/{s['fn']} "
            f"| {ms} |"
        )
    return "\n".join(lines)


def plot_clip(
    out: Path, rows: Sequence[Row], times: Sequence[float], ranges: Sequence[tuple[float, float, bool]], title: str
) -> None:
    """Score and threshold per detector over time, labelled blur shaded, blurry verdicts and focus=lost marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 2.4 * len(rows) + 0.6), sharex=True, squeeze=False)
    for ax, row in zip(axes[:, 0], rows, strict=True):
        for start, end, blurry in ranges:
            if blurry:
                ax.axvspan(start, end, color="tab:red", alpha=0.12, lw=0)
        ax.plot(times, row.scores, color="tab:blue", lw=1.2, label="score")
        thr = [np.nan if v is None else v for v in row.thresholds]
        if not all(np.isnan(thr)):
            ax.plot(times, thr, color="tab:orange", lw=1, ls="--", label="threshold")
        hits = [(t, s) for t, s, p in zip(times, row.scores, row.verdicts, strict=True) if p]
        if hits:
            ax.scatter(*zip(*hits, strict=True), s=8, color="tab:red", zorder=3, label="verdict blurry")
        lost = [t for t, f in zip(times, row.focus, strict=True) if f == "lost"]
        if lost:
            low = min(row.scores) if row.scores else 0
            ax.scatter(lost, [low] * len(lost), marker="s", s=10, color="black", label="focus lost (debounced)")
        ax.set_ylabel(row.name)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("clip time (s); shaded: labelled blurry")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- CLI


def _tile(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def add_parser(commands: Any) -> None:
    """Register `eval` on the CLI's subcommands."""
    from focusguard.preprocess import TILE_NATIVE

    p = commands.add_parser("eval", help="run detectors side by side over labelled images or a labelled clip")
    p.add_argument("data", type=Path, help="folder with sharp/ and blurry/, a CSV manifest, or a video clip")
    p.add_argument("--labels", type=Path, help="clip labels: lines start,end,sharp|blurry (seconds)")
    p.add_argument("--under", help="manifest: only files below this relative prefix (e.g. real_defocus/)")
    p.add_argument("--scene", help="regex over the relative path; group 1 names the scene (reference grouping)")
    p.add_argument("--detector", default="fusion,cnn,dft,laplacian,combined",
                   help="comma list of fusion, cnn, dft, laplacian, combined")
    p.add_argument("--preprocess", default="resize", help="cnn: comma list of resize, tiles")
    p.add_argument("--tile", type=_tile, default=TILE_NATIVE, help="tiles: native window WxH (default %(default)s)")
    p.add_argument("--model", type=Path, help="TFLite model (default: the shipped one)")
    p.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")
    p.add_argument("--blurry-from", default="b_0.75", help="first blurry class for the cnn (default b_0.75)")
    p.add_argument("--laplacian-threshold", type=float, help="absolute Laplacian variance threshold (else relative)")
    p.add_argument("--step", type=float, default=0.2, help="clip: seconds between analysed frames (default 0.2)")
    p.add_argument("--plot", type=Path, help="clip: write the verdicts over time to this PNG")
    p.add_argument("--json", type=Path, help="write the metrics (and per-item verdicts) to this JSON file")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from focusguard.cli import read_image
    from focusguard.config import DETECTORS
    from focusguard.detectors import PREPROCESS_MODES
    from focusguard.errors import ConfigError

    detectors = [d.strip() for d in args.detector.split(",") if d.strip()]
    modes = [m.strip() for m in args.preprocess.split(",") if m.strip()]
    for name in detectors:
        if name not in DETECTORS:
            raise ConfigError("(command line)", "--detector", f"unknown detector {name!r}")
    for mode in modes:
        if mode not in PREPROCESS_MODES:
            raise ConfigError("(command line)", "--preprocess", f"unknown mode {mode!r}")
    specs = detector_specs(detectors, modes)
    factory = Factory(args)
    data: Path = args.data
    notes: dict[str, Any]
    if data.is_dir():
        kind = "folder"
        samples = folder_samples(data)
    elif data.suffix.lower() == ".csv":
        kind = "manifest"
        samples = manifest_samples(data, args.under)
    else:
        kind = "clip"
    try:
        if kind == "clip":
            if args.labels is None:
                raise ConfigError("(command line)", "--labels", "a clip needs a labels file")
            ranges = parse_clip_labels(args.labels.read_text(encoding="utf-8"))
            rows, times, notes = evaluate_clip(data, ranges, specs, factory, args.step)
            if args.plot:
                plot_clip(args.plot, rows, times, ranges, f"{data.name}: detectors over time")
        else:
            pattern = re.compile(args.scene) if args.scene else None
            rows, notes = evaluate_images(samples, specs, factory, pattern, read_image)
    except (ValueError, OSError) as err:
        raise ConfigError(str(data), "(data)", str(err)) from err
    print(f"{kind} {data}: " + ", ".join(f"{k} {len(v) if isinstance(v, list) else v}" for k, v in notes.items()))
    print(table(rows))
    if args.plot and kind == "clip":
        print(f"plot: {args.plot}")
    if args.json:
        payload = {
            "data": str(data),
            "kind": kind,
            "notes": notes,
            "results": [r.summary() for r in rows],
            "items": {
                r.name: [
                    {"item": i, "blurry": p, "score": s, "class": c}
                    for i, p, s, c in zip(r.items, r.verdicts, r.scores, r.classes, strict=True)
                ]
                for r in rows
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="focusguard-eval")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))
