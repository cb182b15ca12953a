"""Per-camera blur detectors behind one small protocol: the CNN (default), the thesis' DFT, the Laplacian.

A detector turns one decoded BGR frame into a `Verdict(blurry, cls, probabilities, score)`;
`decide.FocusDecider.vote` debounces the verdicts exactly as for the CNN.

* `cnn` — the int8 classifier (`infer.Classifier`, or any object with `labels` and
  `classify`): `preprocess: resize` is the thesis' whole-frame view (`to_model_rgb`),
  `preprocess: tiles` classifies native-scale tiles (`to_model_tiles`: 1920x1080-native
  windows, a 2x2 grid on a 2160p frame) and aggregates them with `aggregate_tiles`: the
  frame's class is the *lower median* of the tiles' classes, so the frame is blurry when
  strictly more than half of the tiles are (a flat, featureless tile such as sky or a wall
  looks blurry on its own and must not raise the alarm alone). `score` = P(blurry) with
  `resize`, the fraction of blurry tiles with `tiles`. Why 1920x1080 native windows: the
  model learnt 1080p frames (and 1080x600 crops of them) shrunk to 448, i.e. a 2.4-4.3x
  downscale; a 1920x1080 window of a 4K frame is its native pixels at exactly that scale,
  so a blur of sigma s *sensor* pixels looks like the model's b_s. The whole-frame view
  (75% crop, 2880x1620 → 448) halves it first, turning b_0.75-b_1 native into b_0.375-b_0.5:
  "sharp" (the thesis' 8 MP weakness). Smaller windows (e.g. 896x896 → 448, 1:1 at 1080p
  scale: 15 tiles) leave the training scale range; `focusguard eval --tile` compares them.
* `dft` — the thesis' detector (section 3.3, Eq. 3.1/3.2): high-pass = image minus
  Gaussian(sigma 1.5); E_HF = magnitude of its DFT summed over all frequencies; blurry when
  E_HF(C) <= Th * E_HF(P) with Th = clamp(1 - E_HF(P) / MAX_HF, 0.2, 0.8). `score` = E_HF.
* `laplacian` — variance of the Laplacian (3x3 aperture); blurry when it is at most
  `laplacian_threshold` (absolute, when configured) or else at most `LAPLACIAN_RATIO` times
  the reference's. `score` = the variance.

Measurement view (dft, laplacian): the frame in grayscale (OpenCV BGR→GRAY), float32, at its
native resolution up to `MEASURE_MAX_PIXELS` (8.3 MP = 2160p; larger frames are reduced with
INTER_AREA) — native, because slight blur on 4K/8 MP cameras is exactly what shrinking hides.
E_HF is normalised to be resolution-independent: the thesis' sum of |DFT| divided by N^1.5
(N = pixel count; equivalently the mean magnitude of the orthonormal DFT). For one camera
this is the thesis' sum times a constant, so Eq. 3.1 is unchanged; it only makes `MAX_HF`
meaningful across cameras of different resolutions.

`MAX_HF` (Eq. 3.2's Max_HF, "the largest E_HF seen on the training set") is a constant,
computed once with `python -m focusguard.analysis.detectors /work/shared/data/sharp` (all 160 sharp
frames of the project's training data: 15 CCTV cameras and one GoPro scene, 352x288 to
1280x720; the largest value, 14.68, came from a motorway webcam frame). With Gaussian blur
on the 81 sharp sources >= 1024 px wide, Eq. 3.1/3.2 flag 9/81 at b_0.5, 43/81 at b_0.75
and 81/81 from b_1 on.

Reference frame P (dft, relative laplacian): the median measure of the first
`REFERENCE_FRAMES` frames the camera judges while its focus state is `unknown` or `ok`
(the `learning_allowed` callable, wired by the app to the debouncer's state). Those frames
are judged sharp (they define sharp). The reference is kept for the life of the process;
`reset_reference()` starts learning again (e.g. after a confirmed refocus). Like the thesis,
this assumes the camera is in focus when the daemon starts: a camera that starts blurry
gets a blurry reference and is never flagged by these two detectors (the CNN has no such
assumption). Scene changes (day/night, IR switching, point lights) move E_HF and the
Laplacian too: the thesis measured a 16% false-alarm rate for the DFT in darkness.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol, cast

import cv2
import numpy as np
import numpy.typing as npt

from focusguard.analysis.decide import blurry_index, classify_verdict
from focusguard.analysis.preprocess import TILE_NATIVE, to_model_rgb, to_model_tiles
from focusguard.common.events import probabilities_dict

DETECTOR_NAMES = ("cnn", "dft", "laplacian")
PREPROCESS_MODES = ("resize", "tiles")

DFT_SIGMA = 1.5  # the thesis' Gaussian for the high-pass
DFT_TH_MIN, DFT_TH_MAX = 0.2, 0.8  # Eq. 3.2's clamp
# Largest normalised E_HF over /work/shared/data/sharp (160 frames; median 6.4, 90th percentile
# 11.2): cctv/autostrade_webcam_milanoest/autostrade_webcam_milanoest_f00340.jpg. See module docstring.
MAX_HF = 14.68
# Relative mode: blurry at <= half the reference's Laplacian variance. Calibrated with Gaussian
# blur on the 81 sharp sources >= 1024 px wide (training photos + CCTV frames): variance ratio
# median 0.96 at b_0.5, 0.61 at b_0.75 (90th pct 0.81), 0.38 at b_1 (90th pct 0.50), 0.09 at b_2:
# 0.5 flags b_1 and stronger reliably and b_0.75 partly, leaving room for scene changes.
LAPLACIAN_RATIO = 0.5
REFERENCE_FRAMES = 3
MEASURE_MAX_PIXELS = 3840 * 2160


class Verdict(NamedTuple):
    """One frame's verdict: unpacks as `(blurry, cls, probabilities, score)`."""

    blurry: bool
    cls: str | None  # the CNN's class (tiles: the median class); None for dft / laplacian
    probabilities: dict[str, float]  # label → probability (CNN), else {}
    score: float  # the detector's own measure: P(blurry) / blurry-tile fraction, E_HF, Laplacian variance


class Detector(Protocol):
    name: str

    def verdict(self, frame_bgr: npt.NDArray[np.uint8]) -> Verdict: ...


class ClassifierLike(Protocol):
    @property
    def labels(self) -> Sequence[str]: ...

    def classify(self, rgb448: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]: ...


# --------------------------------------------------------------------------- CNN


def aggregate_tiles(
    labels: Sequence[str], tile_probs: Sequence[npt.NDArray[np.floating]], blurry_from: str
) -> Verdict:
    """One verdict from per-tile probabilities: lower-median class, blurry iff > half the tiles are.

    `probabilities` is the tiles' mean distribution, `score` the fraction of blurry tiles.
    """
    if not tile_probs:
        raise ValueError("no tiles")
    first_blurry = blurry_index(labels, blurry_from)
    classes = sorted(int(np.argmax(p)) for p in tile_probs)
    median = classes[(len(classes) - 1) // 2]  # lower median: blurry only with a strict majority
    blurry_tiles = sum(c >= first_blurry for c in classes)
    mean = np.mean(np.stack([np.asarray(p, dtype=np.float32) for p in tile_probs]), axis=0)
    return Verdict(
        blurry=median >= first_blurry,
        cls=labels[median],
        probabilities=probabilities_dict(labels, mean),
        score=blurry_tiles / len(classes),
    )


class CnnDetector:
    """The classifier over the whole frame (`resize`) or native-scale tiles (`tiles`)."""

    name = "cnn"

    def __init__(
        self,
        classifier: ClassifierLike,
        blurry_from: str = "b_0.75",
        preprocess: str = "resize",
        tile: tuple[int, int] = TILE_NATIVE,
    ) -> None:
        if preprocess not in PREPROCESS_MODES:
            raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS_MODES)}, got {preprocess!r}")
        self.classifier, self.blurry_from, self.preprocess, self.tile = classifier, blurry_from, preprocess, tile
        self.labels = tuple(classifier.labels)
        self._first_blurry = blurry_index(self.labels, blurry_from)  # ValueError for an unknown class

    def verdict(self, frame_bgr: npt.NDArray[np.uint8]) -> Verdict:
        if self.preprocess == "tiles":
            tiles = to_model_tiles(frame_bgr, self.tile)
            return aggregate_tiles(self.labels, [self.classifier.classify(t) for t in tiles], self.blurry_from)
        probs = self.classifier.classify(to_model_rgb(frame_bgr))
        cls, blurry = classify_verdict(self.labels, probs, self.blurry_from)
        return Verdict(blurry, cls, probabilities_dict(self.labels, probs), float(np.sum(probs[self._first_blurry :])))


# --------------------------------------------------------------------------- reference-based measures


def reduced_gray(frame_bgr: npt.NDArray[np.uint8], max_pixels: int) -> npt.NDArray[np.uint8]:
    """The luma of a BGR (or already gray) frame, reduced (INTER_AREA: no aliasing) above `max_pixels`."""
    gray = frame_bgr if frame_bgr.ndim == 2 else cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape[:2]
    if height * width > max_pixels:
        factor = (max_pixels / (height * width)) ** 0.5
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return cast("npt.NDArray[np.uint8]", gray)


def measure_view(frame_bgr: npt.NDArray[np.uint8], max_pixels: int = MEASURE_MAX_PIXELS) -> npt.NDArray[np.float32]:
    """Grayscale float32 view of a BGR (or already gray) frame, reduced (INTER_AREA) above `max_pixels`."""
    return reduced_gray(frame_bgr, max_pixels).astype(np.float32)


def high_frequency_energy(frame_bgr: npt.NDArray[np.uint8], max_pixels: int = MEASURE_MAX_PIXELS) -> float:
    """Normalised E_HF: sum of |DFT(image - Gaussian(1.5))| / N^1.5 on the measurement view."""
    gray = measure_view(frame_bgr, max_pixels)
    high_pass = gray - cv2.GaussianBlur(gray, (0, 0), DFT_SIGMA, borderType=cv2.BORDER_REFLECT)
    spectrum = cv2.dft(high_pass, flags=cv2.DFT_COMPLEX_OUTPUT)
    magnitude = cv2.magnitude(spectrum[..., 0], spectrum[..., 1])
    pixels = float(gray.size)
    return float(np.sum(magnitude, dtype=np.float64)) / (pixels * math.sqrt(pixels))


def dft_threshold(reference_hf: float, max_hf: float = MAX_HF) -> float:
    """Eq. 3.2: Th = clamp(1 - E_HF(P) / Max_HF, 0.2, 0.8)."""
    return min(DFT_TH_MAX, max(DFT_TH_MIN, 1.0 - reference_hf / max_hf))


def laplacian_variance(frame_bgr: npt.NDArray[np.uint8], max_pixels: int = MEASURE_MAX_PIXELS) -> float:
    """Variance of the 3x3 Laplacian of the measurement view."""
    gray = measure_view(frame_bgr, max_pixels)
    return float(cv2.Laplacian(gray, cv2.CV_32F, ksize=1).var(dtype=np.float64))


class _ReferenceDetector:
    """Shared reference handling: the first frames judged while learning is allowed define P."""

    name = "reference"

    def __init__(self, learning_allowed: Callable[[], bool] | None = None) -> None:
        self._learning_allowed = learning_allowed or (lambda: True)
        self._samples: list[float] = []
        self.reference: float | None = None

    def reset_reference(self) -> None:
        self._samples.clear()
        self.reference = None

    def set_reference(self, value: float) -> None:
        self._samples.clear()
        self.reference = float(value)

    def measure(self, frame_bgr: npt.NDArray[np.uint8]) -> float:
        raise NotImplementedError

    def judge(self, value: float, reference: float | None) -> bool:
        raise NotImplementedError

    def needs_reference(self) -> bool:
        return True

    def verdict(self, frame_bgr: npt.NDArray[np.uint8]) -> Verdict:
        value = self.measure(frame_bgr)
        if self.needs_reference() and self.reference is None:
            if self._learning_allowed():
                self._samples.append(value)
                if len(self._samples) >= REFERENCE_FRAMES:
                    self.set_reference(statistics.median(self._samples))
            return Verdict(False, None, {}, value)  # the reference frames define "sharp"
        return Verdict(self.judge(value, self.reference), None, {}, value)


class DftDetector(_ReferenceDetector):
    """The thesis' DFT detector (Eq. 3.1, 3.2) against the camera's reference frame."""

    name = "dft"

    def __init__(self, learning_allowed: Callable[[], bool] | None = None, max_hf: float = MAX_HF) -> None:
        super().__init__(learning_allowed)
        self.max_hf = max_hf

    def measure(self, frame_bgr: npt.NDArray[np.uint8]) -> float:
        return high_frequency_energy(frame_bgr)

    def judge(self, value: float, reference: float | None) -> bool:
        assert reference is not None
        return value <= dft_threshold(reference, self.max_hf) * reference


class LaplacianDetector(_ReferenceDetector):
    """Variance of the Laplacian: absolute `threshold`, or `ratio` x the reference's when None."""

    name = "laplacian"

    def __init__(
        self,
        learning_allowed: Callable[[], bool] | None = None,
        threshold: float | None = None,
        ratio: float = LAPLACIAN_RATIO,
    ) -> None:
        super().__init__(learning_allowed)
        self.threshold, self.ratio = threshold, ratio

    def needs_reference(self) -> bool:
        return self.threshold is None

    def measure(self, frame_bgr: npt.NDArray[np.uint8]) -> float:
        return laplacian_variance(frame_bgr)

    def judge(self, value: float, reference: float | None) -> bool:
        if self.threshold is not None:
            return value <= self.threshold
        assert reference is not None
        return value <= self.ratio * reference


# --------------------------------------------------------------------------- factory


def make_detector(
    name: str,
    classifier: ClassifierLike | None = None,
    *,
    blurry_from: str = "b_0.75",
    preprocess: str = "resize",
    laplacian_threshold: float | None = None,
    learning_allowed: Callable[[], bool] | None = None,
    tile: tuple[int, int] = TILE_NATIVE,
) -> Detector:
    """A detector by its config name (`cnn`, `dft`, `laplacian`)."""
    if name == "cnn":
        if classifier is None:
            raise ValueError("the cnn detector needs a classifier")
        return CnnDetector(classifier, blurry_from, preprocess, tile)
    if name == "dft":
        return DftDetector(learning_allowed)
    if name == "laplacian":
        return LaplacianDetector(learning_allowed, laplacian_threshold)
    raise ValueError(f"unknown detector {name!r} (one of {', '.join(DETECTOR_NAMES)})")


# --------------------------------------------------------------------------- Max_HF


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def compute_max_hf(folder: str | Path) -> tuple[float, Path, int]:
    """(largest normalised E_HF, the image it came from, images read) over `folder`, recursively."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    best, best_path, count = 0.0, Path(), 0
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        count += 1
        value = high_frequency_energy(cast("npt.NDArray[np.uint8]", image))
        if value > best:
            best, best_path = value, path
    return best, best_path, count


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m focusguard.analysis.detectors FOLDER`: print Max_HF for a training folder."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m focusguard.analysis.detectors SHARP_FOLDER", file=sys.stderr)
        return 2
    value, path, count = compute_max_hf(args[0])
    print(f"MAX_HF = {value:.4g}  # largest of {count} images: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def cnn_for_camera(camera: object, classifier: ClassifierLike) -> Detector:
    """The CNN witness of a camera's config (`blurry_from`, `preprocess`): what fusion and combined consult."""
    return make_detector("cnn", classifier, blurry_from=getattr(camera, "blurry_from", "b_0.75"),
                         preprocess=getattr(camera, "preprocess", "resize"))  # fmt: skip


def detector_for_camera(
    camera: object, classifier: ClassifierLike | None, learning_allowed: Callable[[], bool] | None = None
) -> Detector:
    """The detector a camera's config asks for (`detector`, `preprocess`, `blurry_from`, `laplacian_threshold`)."""
    return make_detector(
        getattr(camera, "detector", "cnn"),
        classifier,
        blurry_from=getattr(camera, "blurry_from", "b_0.75"),
        preprocess=getattr(camera, "preprocess", "resize"),
        laplacian_threshold=getattr(camera, "laplacian_threshold", None),
        learning_allowed=learning_allowed,
    )
