"""Is a frame worth a verdict at all? Screening before any focus analysis.

Owns two checks that keep bad evidence away from the debounce window:

* **unsuitable**: a frame with too little contrast (all black, lens cap, a uniform grey
  "no signal" picture, a fully overexposed view) says nothing about focus: a
  classifier would happily call it blurry. Such frames get no verdict and the camera's
  state says ``"analysis": "unsuitable"``.
* **frozen**: a picture bit-identical to the previous one (a hung encoder repeating its
  last frame, a camera that stopped updating) is not new evidence. Real sensors never
  deliver two identical frames (noise), so exact equality is a safe test that never
  mistakes a static but live scene for a frozen one.

* **too little detail**: a frame with contrast but fewer than `MIN_TEXTURED_TILES` of its
  4x4 tiles textured (luma std >= `TEXTURE_STD`: fog, a blank wall, sky with one
  object) is unsuitable too: no verdict, and the state's ``analysis_reason`` says which
  (``too little contrast`` / ``too little detail``, `unsuitable_reason`). Contrast per
  tile, not edge energy, so a defocused picture of a detailed scene still counts.

All work on a strided view of the frame (every 4th pixel in both directions), which
costs well under a millisecond even for 4K frames.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import numpy.typing as npt

from focusguard.analysis.baseline import MIN_TEXTURED_TILES as MIN_TEXTURED_TILES  # re-exported
from focusguard.analysis.baseline import TEXTURE_STD as TEXTURE_STD  # re-exported
from focusguard.analysis.baseline import textured_tiles

MIN_CONTRAST = 4.0  # luma standard deviation (0-255 scale) below which a frame is unsuitable
STRIDE = 4


def screen_view(image_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The strided, contiguous copy of the frame that both checks use."""
    return np.ascontiguousarray(image_bgr[::STRIDE, ::STRIDE])


def contrast(view_bgr: npt.NDArray[np.uint8]) -> float:
    """Standard deviation of the luma (0-255): 0 for a uniform frame, ~30-60 for a normal scene."""
    if view_bgr.ndim == 3 and view_bgr.shape[2] == 3:
        gray = cv2.cvtColor(view_bgr, cv2.COLOR_BGR2GRAY)
    else:
        gray = view_bgr
    _mean, std = cv2.meanStdDev(gray)
    return float(std[0][0])


def unsuitable_reason(view_bgr: npt.NDArray[np.uint8]) -> str | None:
    """``too little contrast``, ``too little detail`` or None (the frame can be judged)."""
    if contrast(view_bgr) < MIN_CONTRAST:
        return "too little contrast"
    gray = cv2.cvtColor(view_bgr, cv2.COLOR_BGR2GRAY) if view_bgr.ndim == 3 and view_bgr.shape[2] == 3 else view_bgr
    if textured_tiles(gray) < MIN_TEXTURED_TILES:
        return "too little detail"
    return None


def fingerprint(view_bgr: npt.NDArray[np.uint8]) -> bytes:
    """A digest that is equal for identical pictures (and, in practice, only for them)."""
    digest = hashlib.blake2b(view_bgr.tobytes(), digest_size=16)
    digest.update(repr(view_bgr.shape).encode())
    return digest.digest()
