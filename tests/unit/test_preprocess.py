"""Preprocessing: the >2000 px crop rule, shape, RGB order, INTER_LINEAR, quantisation goldens."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from focusguard.analysis.preprocess import center_crop, quantize_input, to_model_rgb


def _framed(height: int, width: int, border: int) -> np.ndarray:
    """A frame whose outer `border` fraction is white and whose centre is black (BGR)."""
    frame = np.full((height, width, 3), 255, np.uint8)
    top, left = round(height * border), round(width * border)
    frame[top : height - top, left : width - left] = 0
    return frame


@pytest.mark.parametrize(
    ("height", "width"), [(1080, 1920), (480, 640), (2000, 3000), (2160, 3840), (3000, 4000), (448, 448)]
)
def test_output_shape_and_dtype(height: int, width: int) -> None:
    out = to_model_rgb(np.zeros((height, width, 3), np.uint8))
    assert out.shape == (448, 448, 3) and out.dtype == np.uint8


def test_center_crop_keeps_the_central_75_percent() -> None:
    frame = np.arange(2160 * 3840, dtype=np.uint32).reshape(2160, 3840)
    crop = center_crop(frame)
    assert crop.shape == (1620, 2880)
    assert crop[0, 0] == frame[270, 480]  # (2160 - 1620) / 2, (3840 - 2880) / 2


def test_frames_taller_than_2000_px_are_cropped() -> None:
    # White border of 12.5 % each side = exactly what the 75 % crop removes.
    out = to_model_rgb(_framed(2160, 3840, 0.125))
    assert out.max() == 0  # border gone entirely


def test_frames_up_to_2000_px_are_not_cropped() -> None:
    out = to_model_rgb(_framed(2000, 3000, 0.125))
    assert out[0, 0].tolist() == [255, 255, 255]  # border still there
    assert out[224, 224].tolist() == [0, 0, 0]


def test_bgr_becomes_rgb() -> None:
    blue_bgr = np.zeros((100, 200, 3), np.uint8)
    blue_bgr[..., 0] = 255
    out = to_model_rgb(blue_bgr)
    assert out[10, 10].tolist() == [0, 0, 255]


def test_resize_is_bilinear_not_area() -> None:
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    expected = cv2.cvtColor(cv2.resize(frame, (448, 448), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(to_model_rgb(frame), expected)
    area = cv2.cvtColor(cv2.resize(frame, (448, 448), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert not np.array_equal(to_model_rgb(frame), area)


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)]
)
def test_rejects_non_bgr_uint8(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected"):
        to_model_rgb(bad)


PIXELS = np.array([0, 1, 127, 128, 254, 255], np.uint8)


@pytest.mark.parametrize(
    ("scale", "zero_point", "dtype", "expected"),
    [
        (1 / 255, 0, np.uint8, [0, 1, 127, 128, 254, 255]),  # the shipped model: raw pixels
        (1 / 255, -128, np.int8, [-128, -127, -1, 0, 126, 127]),  # int8 export
        (1 / 256, 0, np.uint8, [0, 1, 127, 129, 255, 255]),  # x*256/255 rounds up, 256 clips
        (3 / 255, 10, np.uint8, [10, 10, 52, 53, 95, 95]),  # coarser steps with an offset
    ],
)
def test_quantize_input_golden_values(scale: float, zero_point: int, dtype: type, expected: list[int]) -> None:
    q = quantize_input(PIXELS, scale, zero_point, dtype)
    assert q.dtype == np.dtype(dtype)
    assert q.tolist() == expected


def test_quantize_input_float_model_gets_unit_range() -> None:
    out = quantize_input(PIXELS, 0.0, 0, np.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, PIXELS / 255.0, rtol=1e-6)
