"""Training samples are built by the daemon's own preprocessing: byte-identical to what it serves.

Both dataset builders (`models.training.build_dataset` for the 9 Gaussian classes,
`models.training.lens_data` for lens PSFs) render a sample as optics -> camera look ->
`focusguard.analysis.preprocess.to_model_rgb`. With no augmentation, a neutral camera look and the
`sharp` class, a sample must equal, byte for byte, the 448x448 RGB input the daemon's CNN detector
hands the interpreter for the same image: 1080p-like and 2160p frames (the centre-crop rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from focusguard.analysis.detectors import make_detector
from focusguard.analysis.infer import DEFAULT_LABELS
from models.training import build_dataset, lens_data
from models.training.build_dataset import CameraLook

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sharp_scene.jpg"
NEUTRAL = CameraLook(gain=1.0, contrast=1.0, gamma=1.0, grayscale=False, noise_std=0.0, jpeg_quality=None, seed=0)


class NoAugmentation:
    """An rng whose draws crop nothing, flip nothing and mask nothing."""

    def random(self) -> float:
        return 1.0

    def integers(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def choice(self, names: Any, p: Any = None) -> Any:
        return "gaussian"


class Recorder:
    """A classifier that keeps what the daemon would feed the interpreter."""

    labels = DEFAULT_LABELS

    def __init__(self) -> None:
        self.inputs: list[npt.NDArray[np.uint8]] = []

    def classify(self, rgb448: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        self.inputs.append(rgb448.copy())
        return np.full(len(DEFAULT_LABELS), 1 / len(DEFAULT_LABELS), np.float32)


def served(image_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    recorder = Recorder()
    make_detector("cnn", recorder, preprocess="resize").verdict(image_bgr)
    (model_input,) = recorder.inputs
    return model_input


@pytest.fixture(params=["1080p", "2160p"])
def frame(request: pytest.FixtureRequest) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(FIXTURE))
    size = (1920, 1080) if request.param == "1080p" else (3840, 2160)  # 2160p: above the crop height
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def test_a_gaussian_class_sample_is_the_served_frame(frame: npt.NDArray[np.uint8],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CameraLook, "draw", staticmethod(lambda rng: NEUTRAL))
    sharp = build_dataset.render_variant(frame, NoAugmentation())[0]  # type: ignore[arg-type]
    assert sharp.shape == (448, 448, 3) and sharp.dtype == np.uint8
    assert sharp.tobytes() == served(frame).tobytes()


def test_a_lens_class_sample_is_the_served_frame(frame: npt.NDArray[np.uint8], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lens_data.CameraLook, "draw", staticmethod(lambda rng: NEUTRAL))
    samples, mask, _kind = lens_data.render_lens_variant(frame, NoAugmentation())  # type: ignore[arg-type]
    assert mask is None
    assert samples[0].tobytes() == served(frame).tobytes()
    assert samples[-1].tobytes() != served(frame).tobytes()  # b_7 is not the sharp frame: the test can fail
