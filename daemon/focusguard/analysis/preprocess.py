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
    # Fast exact paths for scale 1/255 (the shipped model): the formula is the identity
    # (uint8, zero point 0) or x - 128 (int8, zero point -128). The float path costs ~2-8 ms
    # per frame, more than 5% of an inference; tests/unit/test_detectors.py checks equality.
    if rgb_uint8.dtype == np.uint8 and abs(scale * 255.0 - 1.0) < 1e-6:
        if target == np.uint8 and zero_point == 0:
            return rgb_uint8
        if target == np.int8 and zero_point == -128:
            return cast("npt.NDArray[np.generic]", (rgb_uint8 ^ np.uint8(0x80)).view(np.int8))
    unit = rgb_uint8.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(target, np.floating) or scale == 0:
        return unit.astype(target)
    info = np.iinfo(target)
    quantized = np.rint(unit / np.float32(scale)) + zero_point
    return cast("npt.NDArray[np.generic]", np.clip(quantized, info.min, info.max).astype(target))


# --------------------------------------------------------------------------- native-scale tiles

# Tile geometry of `preprocess: tiles`: each tile is a window of this many *native* pixels,
# i.e. exactly what a 1080p camera delivers, resized to 448x448 like a 1080p frame in
# `to_model_rgb`. A 3840x2160 frame gives a 2x2 grid, a 2048x1536 frame 2x2 overlapping
# windows, a frame of at most 1920x1080 one tile (= the whole frame: same as `resize`).
TILE_NATIVE = (1920, 1080)


def tile_boxes(width: int, height: int, tile: tuple[int, int] = TILE_NATIVE) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) windows of at most `tile` native pixels covering the frame, evenly spread.

    ceil(W / tile_w) x ceil(H / tile_h) windows; neighbours overlap when the frame is not
    a multiple of the tile. A frame smaller than the tile in a dimension is one window wide there.
    """
    tile_w, tile_h = min(tile[0], width), min(tile[1], height)
    cols, rows = -(-width // tile_w), -(-height // tile_h)

    def starts(total: int, size: int, count: int) -> list[int]:
        if count == 1:
            return [(total - size) // 2]
        return [round(i * (total - size) / (count - 1)) for i in range(count)]

    return [(x, y, tile_w, tile_h) for y in starts(height, tile_h, rows) for x in starts(width, tile_w, cols)]


def to_model_tiles(
    frame_bgr: npt.NDArray[np.uint8], tile: tuple[int, int] = TILE_NATIVE
) -> list[npt.NDArray[np.uint8]]:
    """The frame's native-scale tiles (see `tile_boxes`) as (448, 448, 3) uint8 RGB model inputs.

    Each window goes through `to_model_rgb` (no central crop: windows are never taller than
    2000 px), so a tile is exactly what the model would see from a camera of that size.
    """
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) BGR frame, got shape {frame_bgr.shape}")
    height, width = frame_bgr.shape[:2]
    return [to_model_rgb(frame_bgr[y : y + h, x : x + w]) for x, y, w, h in tile_boxes(width, height, tile)]
