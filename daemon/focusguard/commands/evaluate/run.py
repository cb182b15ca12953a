"""Running detectors side by side over labelled images or a clip, each scene against its reference."""


from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from focusguard.commands.evaluate.metrics import binary_metrics
from focusguard.commands.evaluate.samples import Sample, clip_frames, label_at, scene_of

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
    specs: list[tuple[str, str]] = []
    for name in detectors:
        if name == "cnn":
            specs.extend((f"cnn/{mode}", "cnn") for mode in preprocess)
        else:
            specs.append((name, name))
    return specs


def threshold_of(detector: Any) -> float | None:
    """The score at or below which a reference-based detector says blurry (for plots)."""
    from focusguard.analysis.detectors import (
        DftDetector,
        LaplacianDetector,
        dft_threshold,
    )

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
        from focusguard.analysis.combined import NIGHT_REGIMES

        return float(detector.night_drop if figures.get("regime") in NIGHT_REGIMES else detector.drop)
    return None


class Factory:
    """Builds fresh detectors (one per scene) around one shared classifier, loaded on first need."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._classifier: Any = None

    def classifier(self) -> Any:
        if self._classifier is None:
            from focusguard.analysis.infer import Classifier

            self._classifier = Classifier(self.args.model, None, device="cpu", threads=self.args.threads)
        return self._classifier

    def make(self, row_name: str, name: str, learning_allowed: Callable[[], bool] | None = None) -> Any:
        from focusguard.analysis.detectors import make_detector

        if name in ("fusion", "combined"):  # built as for a camera; baseline in memory only
            from types import SimpleNamespace

            from focusguard.analysis import combined, fusion

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
    from focusguard.analysis.baseline import LEARN_FRAMES
    needs_reference = any(
        name in ("dft", "combined", "fusion") or (name == "laplacian" and factory.args.laplacian_threshold is None)
        for _, name in specs
    )
    scenes: dict[str, list[Sample]] = {}
    for sample in samples:
        scenes.setdefault(scene_of(sample.rel, scene_pattern), []).append(sample)
    rows = {row_name: Row(row_name) for row_name, _ in specs}
    references: list[str] = []
    skipped: list[str] = []
    for scene, members in sorted(scenes.items()):
        reference = next((s for s in members if not s.blurry), None) if needs_reference else None
        if needs_reference and reference is None:
            skipped.extend(s.rel for s in members)
            continue
        learning = [True]  # combined learns its baseline from the reference only

        def learning_allowed(flag: list[bool] = learning) -> bool:
            return flag[0]

        detectors = {row_name: factory.make(row_name, name, learning_allowed) for row_name, name in specs}
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


def evaluate_clip(
    clip: Path, ranges: Sequence[tuple[float, float, bool]], specs: Sequence[tuple[str, str]], factory: Factory,
    step_s: float,
) -> tuple[list[Row], list[float], dict[str, Any]]:
    """Every detector over the clip as the daemon runs it: reference learnt from the first frames, debounced."""
    from focusguard.analysis.decide import FocusDecider
    from focusguard.analysis.infer import DEFAULT_LABELS

    rows, deciders, detectors = {}, {}, {}
    for row_name, name in specs:
        decider = FocusDecider(DEFAULT_LABELS, blurry_from=factory.args.blurry_from)
        deciders[row_name] = decider
        def not_lost(d: FocusDecider = decider) -> bool:
            return d.focus != "lost"

        detectors[row_name] = factory.make(row_name, name, not_lost)
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
