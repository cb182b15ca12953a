"""Per-camera baseline: what "in focus" looks like for this camera, per lighting regime.

Owns three pure pieces (no threads, injected clocks, no MQTT):

* **lighting regime** of a frame, from the frame itself (`lighting_regime`): ``ir`` (IR /
  monochrome: the chroma hardly varies, `colourfulness` below `IR_COLOURFULNESS`; a
  constant tint or the decoder's YUV rounding offset does not count as colour),
  ``low_light`` (mean luma below `LOW_LIGHT_LUMA`) or ``day``. Night switching changes the picture's statistics far more
  than a focus change does, so every regime has its own baseline.
* **scale-free sharpness** (`tile_sharpness`): the frame's luma on a fixed 4x4 grid of
  tiles; for each *textured* tile (luma std >= `TEXTURE_STD`) the std of its 3x3
  Laplacian divided by the tile's own std (contrast-normalised: the same under a gain or
  exposure change), then the median over the textured tiles. None with fewer than
  `MIN_TEXTURED_TILES` textured tiles (quality.py calls such a frame unsuitable).
* **BaselineStore**: per regime the camera's normal sharpness (median of the first
  `LEARN_FRAMES` learning frames, then a slow running mean, alpha `ALPHA`) and the CNN's
  normal class distribution (running mean of the probabilities), kept as JSON in
  ``<state_dir>/baseline/<camera>.json`` (atomic writes: temp file + rename; written when
  a regime's baseline is first set, on reset and at most every `SAVE_INTERVAL_S` while
  learning), so it survives restarts. `reset()` forgets everything (the MQTT command
  ``<p>/<cam>/baseline/reset``, ``focusguard baseline-reset``, and the combined detector
  after focus_restored / refocus_done: the lens may have moved).

Who may learn (only while the camera is judged in focus) is the caller's business
(combined.py).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from focusguard.common.identity import baseline_is_ours, stamp

log = logging.getLogger(__name__)

REGIMES = ("day", "low_light", "ir")
# Measured on a 1280x720 view of the test photo (sharp / b_1 / b_4 at 1080p scale): day, full
# resolution: 0.70 / 0.36 / -; IR-like night with sensor noise (gain 0.45, noise sigma 4): full
# resolution 1.07 / - / 0.94 (noise hides defocus), one pyrDown: 0.73 / - / 0.25.
REGIME_LEVELS = {"day": 0, "low_light": 1, "ir": 1}
GRID = 4  # 4x4 tiles
TEXTURE_STD = 5.0  # luma std (0-255) of a tile with something to judge
MIN_TEXTURED_TILES = 3  # of GRID*GRID: fewer = too little detail to judge focus
# colourfulness below which a frame is monochrome (IR). Measured: H.264 IR-like clip frames
# 0.000-0.0002, the test photo (a muted scene) 0.15 in daylight and at 30% brightness.
IR_COLOURFULNESS = 0.04
LOW_LIGHT_LUMA = 60.0  # mean luma (0-255) below which a colour frame is low light
LEARN_FRAMES = 5  # learning frames whose median sets a regime's first baseline
ALPHA = 0.02  # running mean of the sharpness baseline once set
PROB_HISTORY = 200  # the probabilities' running mean weighs at most this many frames
SAVE_INTERVAL_S = 60.0
MEASURE_MAX_PIXELS = (
    1920 * 1080
)  # larger frames are reduced (INTER_AREA) before measuring
SCREEN_STRIDE = 4


def _gray(frame_bgr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return (
        frame_bgr
        if frame_bgr.ndim == 2
        else cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    )


def colourfulness(view_bgr: npt.NDArray[np.uint8]) -> float:
    """Spread of the chroma (std of Cr and Cb) relative to the luma's std: ~0 for monochrome.

    Not HSV saturation: that is unstable in dark pixels (1-2 levels of difference between
    channels of a dark grey pixel read as strong saturation) and counts a constant tint.
    """
    ycc = cv2.cvtColor(view_bgr, cv2.COLOR_BGR2YCrCb)
    (_m, y_std), (_m2, cr_std), (_m3, cb_std) = (
        cv2.meanStdDev(ycc[..., i]) for i in range(3)
    )
    return float(np.hypot(cr_std[0][0], cb_std[0][0]) / max(float(y_std[0][0]), 4.0))


def lighting_regime(frame_bgr: npt.NDArray[np.uint8]) -> str:
    """``ir`` (monochrome), ``low_light`` (dark colour frame) or ``day``, on a strided view."""
    view = np.ascontiguousarray(frame_bgr[::SCREEN_STRIDE, ::SCREEN_STRIDE])
    if view.ndim == 2 or view.shape[2] == 1:
        return "ir"
    if colourfulness(view) < IR_COLOURFULNESS:
        return "ir"
    if float(_gray(view).mean()) < LOW_LIGHT_LUMA:
        return "low_light"
    return "day"


def tile_grid(
    height: int, width: int, grid: int = GRID
) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of the grid's tiles, row by row."""
    ys = np.linspace(0, height, grid + 1).astype(int)
    xs = np.linspace(0, width, grid + 1).astype(int)
    return [
        (ys[r], ys[r + 1], xs[c], xs[c + 1]) for r in range(grid) for c in range(grid)
    ]


def textured_tiles(
    gray: npt.NDArray[Any], grid: int = GRID, min_std: float = TEXTURE_STD
) -> int:
    """How many of the grid's tiles have a luma std of at least `min_std`."""
    count = 0
    for y0, y1, x0, x1 in tile_grid(gray.shape[0], gray.shape[1], grid):
        tile = gray[y0:y1, x0:x1]
        if tile.size and float(tile.std()) >= min_std:
            count += 1
    return count


@dataclass(frozen=True)
class Sharpness:
    value: (
        float | None
    )  # median normalised Laplacian over textured tiles; None: too little detail
    textured: int  # textured tiles


def tile_sharpness(
    frame_bgr: npt.NDArray[np.uint8],
    levels: int = 0,
    max_pixels: int = MEASURE_MAX_PIXELS,
) -> Sharpness:
    """Contrast-normalised Laplacian energy, median over the textured tiles of a 4x4 grid.

    `levels`: pyrDown steps first (`REGIME_LEVELS`: 1 for low light and IR, whose sensor noise
    would otherwise dominate the Laplacian and hide defocus; 0 for day, to see small blur).
    """
    gray: npt.NDArray[Any] = _gray(frame_bgr)
    height, width = gray.shape[:2]
    if height * width > max_pixels:
        factor = (max_pixels / (height * width)) ** 0.5
        gray = cv2.resize(gray, (max(1, round(width * factor)), max(1, round(height * factor))),
                          interpolation=cv2.INTER_AREA)  # fmt: skip
    image: npt.NDArray[Any] = gray
    if levels:
        image = gray.astype(np.float32)
        for _ in range(levels):
            image = cv2.pyrDown(image)
    # uint8 in, int16 out: the same values as in float, ~3x faster on a 1080p frame; tile
    # statistics by cv2.meanStdDev on views (no copies).
    laplacian = cv2.Laplacian(image, cv2.CV_16S if image.dtype == np.uint8 else cv2.CV_32F, ksize=1)
    values = []
    for y0, y1, x0, x1 in tile_grid(*image.shape[:2]):
        if (y1 - y0) * (x1 - x0) < 16:
            continue
        std = float(cv2.meanStdDev(image[y0:y1, x0:x1])[1][0][0])
        if std < TEXTURE_STD:
            continue
        inner = laplacian[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1]
        values.append(float(cv2.meanStdDev(inner)[1][0][0]) / std)
    if len(values) < MIN_TEXTURED_TILES:
        return Sharpness(None, len(values))
    return Sharpness(float(statistics.median(values)), len(values))


# --------------------------------------------------------------------------- store


@dataclass
class RegimeBaseline:
    """One regime's normal: sharpness (None while learning), mean probabilities, frames seen."""

    sharpness: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    samples: int = (
        0  # learning frames taken (probabilities' running mean count, capped)
    )
    updated: float | None = None  # wall time of the last change
    pending: list[float] = field(
        default_factory=list
    )  # first LEARN_FRAMES sharpness values (not saved)

    def to_json(self) -> dict[str, Any]:
        return {"sharpness": self.sharpness, "probabilities": self.probabilities,
                "samples": self.samples, "updated": self.updated}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegimeBaseline:
        sharpness = data.get("sharpness")
        probs = data.get("probabilities") or {}
        return cls(
            sharpness=float(sharpness)
            if isinstance(sharpness, int | float) and sharpness > 0
            else None,
            probabilities={str(k): float(v) for k, v in probs.items()}
            if isinstance(probs, dict)
            else {},
            samples=int(data.get("samples") or 0),
            updated=data.get("updated")
            if isinstance(data.get("updated"), int | float)
            else None,
        )


class BaselineStore:
    """A camera's baselines per regime; `path` None keeps them in memory only."""

    def __init__(
        self,
        camera: str,
        path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        identity: str | None = None,
    ) -> None:
        self.camera, self.path, self.identity = camera, path, identity
        self._clock, self._wall_clock = clock, wall_clock
        self.regimes: dict[str, RegimeBaseline] = {r: RegimeBaseline() for r in REGIMES}
        self._dirty = False
        self._saved_at: float | None = None
        self.load()

    # ----------------------------------------------------------------- queries

    def sharpness(self, regime: str) -> float | None:
        return self.regimes[regime].sharpness

    def probabilities(self, regime: str) -> dict[str, float]:
        return dict(self.regimes[regime].probabilities)

    # ----------------------------------------------------------------- learning

    def learn(
        self,
        regime: str,
        sharpness: float | None,
        probabilities: Mapping[str, float] | None = None,
    ) -> bool:
        """Take one in-focus frame of `regime`; True when this set the regime's first sharpness baseline."""
        base = self.regimes[regime]
        established = False
        if sharpness is not None and sharpness > 0:
            if base.sharpness is None:
                base.pending.append(float(sharpness))
                if len(base.pending) >= LEARN_FRAMES:
                    base.sharpness = float(statistics.median(base.pending))
                    base.pending.clear()
                    established = True
            else:
                base.sharpness += ALPHA * (float(sharpness) - base.sharpness)
        if probabilities:
            n = min(base.samples + 1, PROB_HISTORY)
            old = base.probabilities
            base.probabilities = {
                k: round(
                    old.get(k, float(v)) + (float(v) - old.get(k, float(v))) / n, 6
                )
                for k, v in probabilities.items()
            }
        base.samples += 1
        base.updated = self._wall_clock()
        self._dirty = True
        if established:
            log.info(
                "camera %s: %s sharpness baseline set to %.4g",
                self.camera,
                regime,
                base.sharpness,
            )
            self.save()
        else:
            self.maybe_save()
        return established

    def reset(self, regime: str | None = None) -> None:
        """Forget one regime's baseline, or all; saved at once."""
        for name in [regime] if regime else list(REGIMES):
            self.regimes[name] = RegimeBaseline(updated=self._wall_clock())
        self._dirty = True
        self.save()

    # ----------------------------------------------------------------- persistence

    def to_json(self) -> dict[str, Any]:
        return stamp({
            "version": 1,
            "camera": self.camera,
            "regimes": {k: v.to_json() for k, v in self.regimes.items()},
        }, self.identity)

    def load(self) -> None:
        if self.path is None or not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not baseline_is_ours(self.path, data, self.identity, self.camera):
                return
            regimes = data["regimes"]
            for name in REGIMES:
                if isinstance(regimes.get(name), dict):
                    self.regimes[name] = RegimeBaseline.from_json(regimes[name])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning(
                "camera %s: ignoring unreadable baseline %s: %s",
                self.camera,
                self.path,
                err,
            )
            return
        known = {
            k: round(v.sharpness, 4)
            for k, v in self.regimes.items()
            if v.sharpness is not None
        }
        log.info(
            "camera %s: baseline loaded from %s: %s",
            self.camera,
            self.path,
            known or "none yet",
        )

    def maybe_save(self) -> None:
        if self._dirty and (
            self._saved_at is None or self._clock() - self._saved_at >= SAVE_INTERVAL_S
        ):
            self.save()

    def save(self) -> None:
        """Atomic write (temp file, fsync, rename); errors are logged, never raised."""
        self._saved_at = self._clock()
        if self.path is None:
            self._dirty = False
            return
        try:
            write_json_atomic(self.path, self.to_json(), indent=1, sort_keys=True)
            self._dirty = False
        except OSError as err:
            log.warning(
                "camera %s: cannot save baseline %s: %s", self.camera, self.path, err
            )


def write_json_atomic(path: Path, payload: Any, **dump_options: Any) -> None:
    """Write JSON so a crash leaves the old file or the new one, never half of one (temp file, fsync,
    rename; the folder made private when missing). Raises OSError."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(payload, f, **dump_options)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def baseline_path(state_dir: Path, camera: str) -> Path:
    """``<state_dir>/baseline/<camera>.json``."""
    return Path(state_dir) / "baseline" / f"{camera}.json"


def summary(
    store: BaselineStore, regimes: Sequence[str] = REGIMES
) -> dict[str, float | None]:
    return {r: store.sharpness(r) for r in regimes}
