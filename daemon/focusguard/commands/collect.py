"""`focusguard collect --config C --minutes N OUT/`: gather confidently sharp frames for training.

For every camera of the config a grabber reads the stream (`StreamGrabber`, same options as
`run`); every camera's `interval_s` the newest frame is screened (`quality.unsuitable_reason`:
too dark, uniform or featureless frames are skipped) and classified with the shared model
(`Classifier`, `to_model_rgb`, exactly as `run`). A frame is saved, full resolution, JPEG
quality 95, when P(sharp) + P(b_0.5) >= `--min-sharp-prob` (default 0.9), at most one per
camera every `--every-s` seconds (default: minutes*60 / `--per-camera`, `--per-camera`
default 20), so the frames spread over the whole run. While a camera's spacing has not
elapsed its frames are not even classified.

Output::

    OUT/<camera>/<UTC timestamp>.jpg
    OUT/manifest.csv   file,camera,time,regime,p_sharp,width,height  (appended to if present)

`regime` is the lighting regime (`baseline.lighting_regime`: day, low_light or ir); `file` is
relative to OUT. Progress (each camera's saved count) goes to stderr. Stops after N minutes,
or on SIGINT/SIGTERM, with the manifest complete (rows are written as frames are saved).

Site fine-tuning: `python -m models.training.finetune_site OUT/` reads this folder (manifest
first) and fine-tunes the shipped model on it. `models/training/build_dataset.py --extra
OUT/<camera>` (one flat camera folder at a time) adds the frames to the general training set.
"""

from __future__ import annotations

import argparse
import csv
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from focusguard.common.errors import ConfigError, FocusguardError
from focusguard.settings.config import AppConfig, CameraConfig
from focusguard.sources.grab import Frame, FrameSource

log = logging.getLogger(__name__)

SHARP_CLASSES = ("sharp", "b_0.5")
MANIFEST = "manifest.csv"
COLUMNS = ("file", "camera", "time", "regime", "p_sharp", "width", "height")
JPEG_QUALITY = 95
CLI = "(command line)"


class ClassifierLike(Protocol):
    @property
    def labels(self) -> Sequence[str]: ...

    def classify(self, rgb448: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]: ...


GrabberFactory = Callable[[CameraConfig], FrameSource]


def default_grabber_factory(camera: CameraConfig) -> FrameSource:
    from focusguard.sources.grab import StreamGrabber

    return StreamGrabber(camera.name, camera.url, camera.interval_s, camera.keyframes_only)


def sharp_indices(labels: Sequence[str]) -> list[int]:
    """Indices of the classes that count as sharp; a `FocusguardError` if the model has none."""
    found = [i for i, label in enumerate(labels) if label in SHARP_CLASSES]
    if not found:
        raise FocusguardError(f"model labels {list(labels)} contain none of {', '.join(SHARP_CLASSES)}")
    return found


def timestamp_name(wall: float) -> str:
    """``20261125T213604.123Z``: sortable, filesystem-safe, UTC."""
    moment = datetime.fromtimestamp(wall, tz=UTC)
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{moment.microsecond // 1000:03d}Z"


def write_jpeg(path: Path, image_bgr: npt.NDArray[np.uint8]) -> None:
    import cv2

    ok, data = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"cannot encode {path} as JPEG")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data.tobytes())
    tmp.replace(path)


@dataclass
class CameraProgress:
    camera: CameraConfig
    source: FrameSource
    due: float = 0.0
    last_saved: float | None = None  # monotonic time of the last save
    last_frame: Frame | None = None
    saved: int = 0
    skipped_unsuitable: int = 0
    skipped_unsure: int = 0
    files: list[str] = field(default_factory=list)


class Collector:
    """Drives the grabbers; `step(name)` is one analysis of one camera (tests call it directly)."""

    def __init__(
        self,
        config: AppConfig,
        out: Path,
        classifier: ClassifierLike,
        *,
        every_s: float,
        min_sharp_prob: float = 0.9,
        grabber_factory: GrabberFactory = default_grabber_factory,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.config, self.out, self.classifier = config, Path(out), classifier
        self.every_s, self.min_sharp_prob = every_s, min_sharp_prob
        self._sharp = sharp_indices(classifier.labels)
        self._clock = clock
        self._progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stop_event = threading.Event()
        self.cameras = {cam.name: CameraProgress(cam, grabber_factory(cam)) for cam in config.cameras}
        self._manifest: Any = None
        self._writer: Any = None

    # ----------------------------------------------------------------- manifest

    def open_manifest(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            path = self.out / MANIFEST
            fresh = not path.is_file() or path.stat().st_size == 0
            self._manifest = path.open("a", newline="", encoding="utf-8")
        except OSError as err:
            raise ConfigError(CLI, "OUT", f"cannot write to {self.out}: {err.strerror or err}") from err
        self._writer = csv.writer(self._manifest)
        if fresh:
            self._writer.writerow(COLUMNS)
            self._manifest.flush()

    def close_manifest(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
            self._manifest = None

    # ----------------------------------------------------------------- one analysis

    def step(self, name: str) -> str | None:
        """Look at camera `name`'s newest frame; the relative path saved, if any."""
        state = self.cameras[name]
        now = self._clock()
        if state.last_saved is not None and now - state.last_saved < self.every_s:
            return None  # spacing: nothing could be saved, so nothing to classify
        frame = state.source.latest()
        if frame is None or frame is state.last_frame:
            return None
        state.last_frame = frame
        from focusguard.analysis import quality

        if quality.unsuitable_reason(quality.screen_view(frame.image_bgr)) is not None:
            state.skipped_unsuitable += 1
            return None
        from focusguard.analysis.preprocess import to_model_rgb

        probs = self.classifier.classify(to_model_rgb(frame.image_bgr))
        p_sharp = float(sum(float(probs[i]) for i in self._sharp))
        if p_sharp < self.min_sharp_prob:
            state.skipped_unsure += 1
            return None
        return self._save(state, frame, p_sharp, now)

    def _save(self, state: CameraProgress, frame: Frame, p_sharp: float, now: float) -> str:
        from focusguard.analysis.baseline import lighting_regime

        folder = self.out / state.camera.name
        folder.mkdir(parents=True, exist_ok=True)
        stem = timestamp_name(frame.wall)
        path, n = folder / f"{stem}.jpg", 1
        while path.exists():
            path, n = folder / f"{stem}_{n}.jpg", n + 1
        write_jpeg(path, frame.image_bgr)
        rel = f"{state.camera.name}/{path.name}"
        height, width = frame.image_bgr.shape[:2]
        moment = datetime.fromtimestamp(frame.wall, tz=UTC).isoformat(timespec="milliseconds")
        if self._writer is not None:
            regime = lighting_regime(frame.image_bgr)
            self._writer.writerow((rel, state.camera.name, moment, regime, f"{p_sharp:.4f}", width, height))
            self._manifest.flush()
        state.last_saved, state.saved = now, state.saved + 1
        state.files.append(rel)
        self._progress(f"collect: {state.camera.name}: {state.saved} saved ({rel}, p_sharp {p_sharp:.3f})")
        return rel

    # ----------------------------------------------------------------- the run

    def run(self, seconds: float) -> dict[str, int]:
        """Collect for `seconds` (or until `stop_event`); returns each camera's saved count."""
        self.open_manifest()
        started = self._clock()
        end = started + seconds
        try:
            for state in self.cameras.values():
                state.due = started
                state.source.start()
            while not self.stop_event.is_set():
                now = self._clock()
                if now >= end:
                    break
                for name, state in self.cameras.items():
                    if state.due <= now:
                        try:
                            self.step(name)
                        except OSError:
                            raise
                        except Exception:
                            log.exception("camera %s: analysis failed", name)
                        state.due += state.camera.interval_s
                        if state.due < now:  # fell behind: skip, do not burst
                            state.due = now + state.camera.interval_s
                next_due = min(s.due for s in self.cameras.values())
                self.stop_event.wait(max(0.0, min(next_due, end) - self._clock()))
        finally:
            self.close_manifest()
            stoppers = [threading.Thread(target=s.source.stop, daemon=True) for s in self.cameras.values()]
            for stopper in stoppers:
                stopper.start()
            for stopper in stoppers:
                stopper.join(10.0)
        counts = {name: s.saved for name, s in self.cameras.items()}
        self._progress("collect: done: " + ", ".join(f"{n} {c} saved" for n, c in counts.items()))
        return counts

    def request_stop(self, *_args: object) -> None:
        self.stop_event.set()


# --------------------------------------------------------------------------- CLI


def add_parser(commands: Any) -> None:
    """Register `collect` on the CLI's subcommands."""
    p = commands.add_parser("collect", help="save confidently sharp frames of every camera (training data)")
    p.add_argument("--config", required=True, type=Path, help="YAML configuration file")
    p.add_argument("--minutes", required=True, type=float, help="how long to collect")
    p.add_argument("--per-camera", type=int, default=20, help="frames to aim for per camera (default 20)")
    p.add_argument("--every-s", type=float, help="at most one frame per camera this often (default minutes*60/per-camera)")
    p.add_argument("--min-sharp-prob", type=float, default=0.9, help="P(sharp)+P(b_0.5) needed (default 0.9)")
    p.add_argument("out", type=Path, metavar="OUT", help="output folder: OUT/<camera>/*.jpg and OUT/manifest.csv")
    p.set_defaults(func=cmd_collect)


def check_args(args: argparse.Namespace) -> float:
    """Validate the options; the spacing in seconds."""
    if not args.minutes > 0:
        raise ConfigError(CLI, "--minutes", f"must be > 0, got {args.minutes:g}")
    if args.per_camera < 1:
        raise ConfigError(CLI, "--per-camera", f"must be >= 1, got {args.per_camera}")
    if not 0.0 <= args.min_sharp_prob <= 1.0:
        raise ConfigError(CLI, "--min-sharp-prob", f"must be within 0..1, got {args.min_sharp_prob:g}")
    every_s = args.every_s if args.every_s is not None else args.minutes * 60.0 / args.per_camera
    if not every_s >= 0:
        raise ConfigError(CLI, "--every-s", f"must be >= 0, got {every_s:g}")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(CLI, "OUT", f"{args.out} exists and is not a folder")
    return float(every_s)


def cmd_collect(args: argparse.Namespace) -> int:
    from focusguard.commands.common_cli import model_config_error as _model_config_error
    from focusguard.commands.common_cli import setup_logging as _setup_logging
    from focusguard.common.errors import ModelError
    from focusguard.settings.config import load_config

    every_s = check_args(args)
    config = load_config(args.config)
    _setup_logging(config.log_level)
    from focusguard.analysis.infer import Classifier

    model = config.model
    try:
        classifier = Classifier(model.path, model.labels, device=model.device, threads=model.threads)
    except ModelError as err:
        raise _model_config_error(config, err) from err
    collector = Collector(config, args.out, classifier, every_s=every_s, min_sharp_prob=args.min_sharp_prob)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, collector.request_stop)
        signal.signal(signal.SIGINT, collector.request_stop)
    log.info("collecting from %d camera(s) for %g min into %s (one frame per camera every %g s at most)",
             len(config.cameras), args.minutes, args.out, every_s)
    collector.run(args.minutes * 60.0)
    return 0
