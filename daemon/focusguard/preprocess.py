"""Frame → model input, as pure functions shared by the daemon, `check` and training.

Owns the thesis' inference preprocessing (section 3.4): frames taller than 2000 px are
cropped to their central 75 % in both dimensions, then resized bilinearly
(`cv2.INTER_LINEAR`, never INTER_AREA: the sharp / b_0.5 / b_0.75 distinction lives in
the aliasing residue) to 448x448, aspect ratio distorted on purpose, and converted
BGR → RGB. `quantize_input` maps the [0, 1] RGB tensor onto the model's int8/uint8
input quantisation.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

MODEL_SIDE = 448
CROP_ABOVE_PX = 2000  # frames taller than this are cropped first (8 MP and up)
CROP_FRACTION = 0.75


def center_crop(frame: npt.NDArray[np.uint8], fraction: float = CROP_FRACTION) -> npt.NDArray[np.uint8]:
    """Return the central `fraction` of both dimensions (a view, no copy)."""
    height, width = frame.shape[:2]
    crop_h = round(height * fraction)
    crop_w = round(width * fraction)
    top = (height - crop_h) // 2
    left = (width - crop_w) // 2
    return frame[top : top + crop_h, left : left + crop_w]


def to_model_rgb(frame_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Turn a decoded BGR frame (H, W, 3) uint8 into the (448, 448, 3) uint8 RGB model input."""
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) BGR frame, got shape {frame_bgr.shape}")
    if frame_bgr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame, got {frame_bgr.dtype}")
    if frame_bgr.shape[0] > CROP_ABOVE_PX:
        frame_bgr = center_crop(frame_bgr)
    resized = cv2.resize(frame_bgr, (MODEL_SIDE, MODEL_SIDE), interpolation=cv2.INTER_LINEAR)
    # Resize first, convert after: same result, 40x fewer pixels to swap.
    return cast("npt.NDArray[np.uint8]", cv2.cvtColor(resized, cv2.COLOR_BGR2RGB))


def quantize_input(
    rgb_uint8: npt.NDArray[np.uint8],
    scale: float,
    zero_point: int,
    dtype: npt.DTypeLike,
) -> npt.NDArray[np.generic]:
    """Map raw RGB pixels, read as [0, 1], onto the model input `dtype`.

    `q = round(x / scale) + zero_point`, clipped to the dtype's range. A float model
    (`scale == 0` or a floating dtype) gets the [0, 1] floats themselves. With the
    shipped model (uint8, scale 1/255, zero point 0) this returns the pixels unchanged.
    """
    target = np.dtype(dtype)
    unit = rgb_uint8.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(target, np.floating) or scale == 0:
        return unit.astype(target)
    info = np.iinfo(target)
    quantized = np.rint(unit / np.float32(scale)) + zero_point
    return cast("npt.NDArray[np.generic]", np.clip(quantized, info.min, info.max).astype(target))
