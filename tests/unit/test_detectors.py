"""Detectors (cnn / dft / laplacian), native-scale tiles and their aggregation, config keys, app wiring."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from focusguard.analysis import detectors as det
from focusguard.analysis.infer import DEFAULT_LABELS
from focusguard.analysis.preprocess import tile_boxes, to_model_tiles
from focusguard.common.errors import ConfigError
from focusguard.operate.app import FocusGuard
from focusguard.settings.config import parse_config
from tests.unit.conftest import FakeClock, FakeFrameSource


def texture(height: int = 360, width: int = 640, seed: int = 1) -> np.ndarray:
    """A detailed, in-focus-looking BGR scene: smoothed noise at a few scales."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (height, width)).astype(np.float32)
    img = sum(cv2.GaussianBlur(base, (0, 0), s) * s for s in (0.6, 2.0, 6.0))
    img = cv2.normalize(img, None, 20, 235, cv2.NORM_MINMAX)
    return cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_GRAY2BGR)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma)


# --------------------------------------------------------------------------- dft


def test_dft_threshold_is_the_thesis_clamp() -> None:
    assert det.dft_threshold(0.0, 10.0) == pytest.approx(0.8)
    assert det.dft_threshold(5.0, 10.0) == pytest.approx(0.5)
    assert det.dft_threshold(10.0, 10.0) == pytest.approx(0.2)
    assert det.dft_threshold(30.0, 10.0) == pytest.approx(0.2)


def test_high_frequency_energy_drops_with_blur_and_ignores_resolution() -> None:
    sharp = texture()
    assert det.high_frequency_energy(blur(sharp, 2.0)) < 0.5 * det.high_frequency_energy(sharp)
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    large = rng.integers(0, 256, (800, 1200, 3), dtype=np.uint8)
    # Normalised by N^1.5: the same kind of content scores the same at any size.
    assert det.high_frequency_energy(small) == pytest.approx(det.high_frequency_energy(large), rel=0.05)


def test_dft_detector_learns_reference_then_flags_blur() -> None:
    sharp = texture()
    dft = det.DftDetector()
    first = [dft.verdict(sharp) for _ in range(det.REFERENCE_FRAMES)]
    assert [v.blurry for v in first] == [False] * det.REFERENCE_FRAMES  # reference frames define sharp
    assert dft.reference == pytest.approx(det.high_frequency_energy(sharp))
    assert dft.verdict(sharp).blurry is False
    verdict = dft.verdict(blur(sharp, 3.0))
    blurry, cls, probabilities, score = verdict  # the protocol's tuple shape
    assert (blurry, cls, probabilities) == (True, None, {})
    assert score == pytest.approx(det.high_frequency_energy(blur(sharp, 3.0)))


def test_reference_is_the_median_and_only_learnt_while_allowed() -> None:
    allowed = [False]
    lap = det.LaplacianDetector(learning_allowed=lambda: allowed[0])
    lap.verdict(texture())
    assert lap.reference is None  # focus lost: nothing learnt
    allowed[0] = True
    images = [texture(seed=1), blur(texture(seed=1), 5.0), texture(seed=2)]
    for image in images:
        lap.verdict(image)
    assert lap.reference == pytest.approx(float(np.median([det.laplacian_variance(i) for i in images])))
    lap.reset_reference()
    assert lap.reference is None


def test_laplacian_relative_and_absolute() -> None:
    sharp = texture()
    relative = det.LaplacianDetector()
    for _ in range(det.REFERENCE_FRAMES):
        relative.verdict(sharp)
    assert relative.verdict(sharp).blurry is False
    assert relative.verdict(blur(sharp, 2.0)).blurry is True
    variance = det.laplacian_variance(sharp)
    absolute = det.LaplacianDetector(threshold=variance / 2)
    assert absolute.reference is None and absolute.verdict(sharp).blurry is False  # no reference needed
    assert absolute.verdict(blur(sharp, 2.0)).blurry is True


def test_measure_view_caps_pixels() -> None:
    view = det.measure_view(np.zeros((4320, 7680, 3), np.uint8))
    assert view.dtype == np.float32 and view.shape[0] * view.shape[1] <= det.MEASURE_MAX_PIXELS * 1.01
    assert det.measure_view(np.zeros((100, 200, 3), np.uint8)).shape == (100, 200)


# --------------------------------------------------------------------------- tiles


def test_tile_boxes_cover_the_frame_at_native_scale() -> None:
    assert tile_boxes(3840, 2160) == [(0, 0, 1920, 1080), (1920, 0, 1920, 1080), (0, 1080, 1920, 1080),
                                      (1920, 1080, 1920, 1080)]  # fmt: skip
    assert tile_boxes(1920, 1080) == [(0, 0, 1920, 1080)]
    assert tile_boxes(1280, 720) == [(0, 0, 1280, 720)]  # small frames: one tile = resize mode
    boxes = tile_boxes(2048, 1536)
    assert len(boxes) == 4 and boxes[-1] == (128, 456, 1920, 1080)  # overlapping, flush with the edges
    assert tile_boxes(3840, 2160, (896, 896))[0] == (0, 0, 896, 896) and len(tile_boxes(3840, 2160, (896, 896))) == 15


def test_to_model_tiles_shapes_and_content() -> None:
    frame = np.zeros((2160, 3840, 3), np.uint8)
    frame[1080:, 1920:] = (255, 0, 0)  # blue (BGR) bottom-right quadrant
    tiles = to_model_tiles(frame)
    assert [t.shape for t in tiles] == [(448, 448, 3)] * 4
    assert tiles[3][0, 0].tolist() == [0, 0, 255] and tiles[0].max() == 0  # RGB, its own quadrant only


def probs_for(index: int) -> np.ndarray:
    p = np.full(len(DEFAULT_LABELS), 0.01, np.float32)
    p[index] = 0.92
    return p / p.sum()


@pytest.mark.parametrize(
    ("tile_classes", "blurry", "cls", "score"),
    [
        ([0, 0, 5, 5], False, "sharp", 0.5),  # half the tiles (e.g. a flat sky) is not enough
        ([0, 5, 5, 5], True, "b_3", 0.75),
        ([1, 1, 2, 3], False, "b_0.5", 0.5),  # lower median of (1, 1, 2, 3) is b_0.5: sharp
        ([2], True, "b_0.75", 1.0),
        ([0, 2, 8], True, "b_0.75", 2 / 3),
    ],
)
def test_aggregate_tiles_lower_median(tile_classes: list[int], blurry: bool, cls: str, score: float) -> None:
    verdict = det.aggregate_tiles(DEFAULT_LABELS, [probs_for(i) for i in tile_classes], "b_0.75")
    assert (verdict.blurry, verdict.cls, verdict.score) == (blurry, cls, pytest.approx(score))
    assert sum(verdict.probabilities.values()) == pytest.approx(1.0, abs=1e-3)


class CountingClassifier:
    labels = DEFAULT_LABELS

    def __init__(self, index: int = 0) -> None:
        self.index, self.calls = index, 0

    def classify(self, rgb448: np.ndarray) -> np.ndarray:
        assert rgb448.shape == (448, 448, 3)
        self.calls += 1
        return probs_for(self.index)


def test_cnn_detector_resize_and_tiles() -> None:
    frame = np.zeros((2160, 3840, 3), np.uint8)
    classifier = CountingClassifier(5)
    resize = det.CnnDetector(classifier, "b_0.75", "resize")
    verdict = resize.verdict(frame)
    assert classifier.calls == 1 and verdict.blurry and verdict.cls == "b_3"
    assert verdict.score == pytest.approx(sum(probs_for(5)[2:]), abs=1e-6)
    tiles = det.CnnDetector(classifier, "b_0.75", "tiles")
    assert tiles.verdict(frame).cls == "b_3" and classifier.calls == 5
    with pytest.raises(ValueError, match="preprocess"):
        det.CnnDetector(classifier, "b_0.75", "crop")
    with pytest.raises(ValueError, match="unknown class"):
        det.CnnDetector(classifier, "b_9")


def test_make_detector() -> None:
    assert det.make_detector("dft").name == "dft"
    assert det.make_detector("laplacian", laplacian_threshold=50.0).name == "laplacian"
    assert det.make_detector("cnn", CountingClassifier()).name == "cnn"
    with pytest.raises(ValueError, match="classifier"):
        det.make_detector("cnn")
    with pytest.raises(ValueError, match="unknown detector"):
        det.make_detector("sobel")


def test_compute_max_hf(tmp_path: Any) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), texture(seed=1))
    cv2.imwrite(str(tmp_path / "b.png"), blur(texture(seed=2), 2.0))
    value, path, count = det.compute_max_hf(tmp_path)
    assert count == 2 and path.name == "a.png" and value == pytest.approx(det.high_frequency_energy(texture(seed=1)))


# --------------------------------------------------------------------------- config and app


def test_config_detector_keys() -> None:
    config = parse_config(
        {
            "defaults": {"detector": "dft"},
            "cameras": {
                "a": {"url": "rtsp://h/a"},
                "b": {"url": "rtsp://h/b", "detector": "CNN", "preprocess": "tiles"},
                "c": {"url": "rtsp://h/c", "detector": "laplacian", "laplacian_threshold": 80},
            },
        }
    )
    a, b, c = config.cameras
    assert (a.detector, a.preprocess, a.laplacian_threshold) == ("dft", "resize", None)
    assert (b.detector, b.preprocess) == ("cnn", "tiles")
    assert (c.detector, c.laplacian_threshold) == ("laplacian", 80.0)
    with pytest.raises(ConfigError, match="cameras.x.detector: must be one of fusion, cnn, dft, laplacian, combined"):
        parse_config({"cameras": {"x": {"url": "rtsp://h/x", "detector": "sobel"}}})
    with pytest.raises(ConfigError, match="defaults.preprocess"):
        parse_config({"defaults": {"preprocess": "crop"}, "cameras": {"x": {"url": "rtsp://h/x"}}})
    with pytest.raises(ConfigError, match="laplacian_threshold"):
        parse_config({"cameras": {"x": {"url": "rtsp://h/x", "laplacian_threshold": -1}}})


class ImageSource(FakeFrameSource):
    def push(self, image: np.ndarray) -> None:
        self.show(image)


class Publisher:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def publish_state(self, camera: str, state: dict[str, Any]) -> None:
        self.states.append(state)

    def publish_event(self, camera: str, event: dict[str, Any]) -> None:
        self.events.append(event)


@pytest.mark.parametrize("detector", ["dft", "laplacian"])
def test_app_runs_a_reference_detector(detector: str) -> None:
    clock = FakeClock()
    sources: dict[str, ImageSource] = {}
    publisher = Publisher()
    classifier = CountingClassifier()
    config = parse_config({"cameras": {"a": {"url": "rtsp://h/a", "detector": detector}}})

    def factory(camera: Any) -> ImageSource:
        sources[camera.name] = ImageSource(clock)
        return sources[camera.name]

    app = FocusGuard(config, classifier=classifier, publisher=publisher, grabber_factory=factory, clock=clock)
    sharp = [texture(seed=s) for s in range(1, 4)]
    blurred = [blur(img, 3.0) for img in sharp]
    for images in (sharp * 3, blurred * 3, sharp * 3):
        for image in images:
            clock.advance(1.0)
            sources["a"].push(image.copy())
            app.tick_all()
    assert [e["type"] for e in publisher.events] == ["focus_lost", "focus_restored"]
    assert publisher.events[0]["class"] is None and publisher.states[-1]["focus"] == "ok"
    assert classifier.calls == 0  # the CNN is not used by this camera


@pytest.mark.parametrize(("dtype", "zero_point"), [(np.uint8, 0), (np.int8, -128)])
def test_quantize_fast_path_equals_the_formula(dtype: type, zero_point: int) -> None:
    from focusguard.analysis.preprocess import quantize_input

    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16).repeat(3, axis=0).transpose(1, 2, 0)
    scale = 0.003921568859368563  # the shipped model's float32 1/255
    unit = pixels.astype(np.float32) / np.float32(255.0)
    info = np.iinfo(dtype)
    expected = np.clip(np.rint(unit / np.float32(scale)) + zero_point, info.min, info.max).astype(dtype)
    fast = quantize_input(pixels, scale, zero_point, dtype)
    assert fast.dtype == np.dtype(dtype) and np.array_equal(fast, expected)
