"""Evidence of defocus, relative to the camera's own in-focus history: pure functions, no state.

Owns two steps the fusion detector (fusion.py) and its offline fitting (models/fusion/) share,
so that the features a model was fitted on are computed exactly as at run time:

* `profile(frame)`: what one frame looks like, measured on its luma at up to 1080p (larger
  frames reduced with INTER_AREA), on a `GRID` x `GRID` grid of tiles at three pyramid levels
  (full, 1/2, 1/4): per tile the luma std (contrast) and the std of the 3x3 Laplacian; the
  frame's high-pass energy (image minus Gaussian(1.5): the DFT detector's E_HF in the L2 sense,
  by Parseval, without the DFT); a 64x36 thumbnail of the coarse structure (which defocus
  keeps and a scene change does not); brightness, coarse contrast, colourfulness and the
  lighting regime (baseline.lighting_regime). A `Profile` is a few hundred floats: baselines
  are medians / running means of profiles, saved as JSON.
* `features(now, base)`: the vector the fusion model reads (names in `FEATURES`):
  - **sharpness, relative** (scale-free: each tile's Laplacian std over its own contrast, as a
    log ratio to the baseline's): median, quartiles and the fraction of tiles that lost detail
    (ratio < 0.6) at full resolution, median at 1/2 and 1/4, the fine-over-coarse change
    (defocus removes fine detail first, a scene change moves all scales together), high-pass
    energy;
  - **scene change**: structure correlation of the thumbnails (whole frame, median tile,
    fraction of tiles whose content changed), brightness / coarse-contrast / colour shifts, the
    fraction of tiles whose mean moved (a large object), textured tiles lost;
  - **the CNN as a witness**: its P(blurry) now, the camera's usual P(blurry), and the shift of
    its expected class.

Why ratios to the camera's own history: a fixed camera's scene sets the absolute level of every
sharpness measure (a foggy motorway and a busy street differ by 10x); its change is what
defocus moves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from focusguard.analysis.baseline import TEXTURE_STD, colourfulness, lighting_regime
from focusguard.analysis.detectors import reduced_gray

GRID = 6  # 6x6 tiles: partial defocus and a passing truck cover whole tiles
LEVELS = 3  # full, 1/2, 1/4 resolution
MEASURE_MAX_PIXELS = 1920 * 1080
THUMB_SIZE = (64, 36)  # (w, h) of the structure thumbnail
HP_SIGMA = 1.5  # the DFT detector's high-pass Gaussian (FACTS §1, section 3.3)
LOST_RATIO = 0.6  # a tile "lost detail" below this share of its in-focus sharpness
CHANGED_NCC = 0.5  # a tile's content "changed" below this structure correlation
MOVED_MEAN = 0.5  # a tile's mean "moved" by more than this x the frame's coarse contrast
THUMB_TEXTURE_STD = 2.0  # a thumbnail tile with less std has no structure to correlate
ALIGN_SHIFT = 3  # thumbnail pixels (of 64): the structure is compared at the best shift within this
BLURRY_FROM_CNN = 3  # index of b_0.75 in the 9 classes: the CNN witness' P(blurry)

FEATURES = (
    "lap0_median", "lap0_q25", "lap0_q75", "lap0_lost", "lap1_median", "lap1_q25", "lap1_lost",
    "lap2_median", "lap2_q25", "fine_coarse", "highpass", "noise", "ncc_global", "ncc_median", "ncc_changed",
    "brightness", "contrast", "colour", "moved_tiles", "textured_lost", "valid_tiles", "cnn_p", "cnn_p_usual",
    "cnn_shift",
)  # fmt: skip
NOISE_QUANTILE = 0.1  # the flattest tiles' Laplacian std: mostly sensor noise, not detail


@dataclass
class Profile:
    """One frame's measures (or a baseline's: their median / running mean)."""

    tile_std: npt.NDArray[np.float32]  # (LEVELS, GRID*GRID) luma std per tile
    tile_lap: npt.NDArray[np.float32]  # (LEVELS, GRID*GRID) Laplacian std per tile
    highpass: float  # std(image - Gaussian(1.5)) / std(image)
    thumb: npt.NDArray[np.float32]  # (h, w) coarse luma structure
    brightness: float  # mean luma 0-255
    contrast: float  # std of the thumbnail (coarse contrast, noise-free)
    colour: float  # baseline.colourfulness
    regime: str = "day"
    cnn: npt.NDArray[np.float32] | None = None  # the CNN's 9 probabilities, when it ran
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "tile_std": np.round(self.tile_std, 4).tolist(), "tile_lap": np.round(self.tile_lap, 4).tolist(),
            "highpass": round(self.highpass, 6), "thumb": np.round(self.thumb, 2).tolist(),
            "brightness": round(self.brightness, 3), "contrast": round(self.contrast, 4),
            "colour": round(self.colour, 5), "regime": self.regime,
            "cnn": None if self.cnn is None else np.round(self.cnn, 5).tolist(),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        cnn = data.get("cnn")
        profile = cls(
            tile_std=np.asarray(data["tile_std"], np.float32), tile_lap=np.asarray(data["tile_lap"], np.float32),
            highpass=float(data["highpass"]), thumb=np.asarray(data["thumb"], np.float32),
            brightness=float(data["brightness"]), contrast=float(data["contrast"]), colour=float(data["colour"]),
            regime=str(data.get("regime", "day")), cnn=None if cnn is None else np.asarray(cnn, np.float32),
        )  # fmt: skip
        if profile.tile_std.shape != (LEVELS, GRID * GRID) or profile.thumb.shape != THUMB_SIZE[::-1]:
            raise ValueError("profile of another grid or thumbnail size")
        return profile


def measure_gray(frame_bgr: npt.NDArray[np.uint8], max_pixels: int = MEASURE_MAX_PIXELS) -> npt.NDArray[np.uint8]:
    """The luma at up to `max_pixels` (INTER_AREA above: no aliasing of the larger frame's detail)."""
    return np.ascontiguousarray(reduced_gray(frame_bgr, max_pixels))


def _grid(height: int, width: int) -> list[tuple[int, int, int, int]]:
    ys = np.linspace(0, height, GRID + 1).astype(int)
    xs = np.linspace(0, width, GRID + 1).astype(int)
    return [(ys[r], ys[r + 1], xs[c], xs[c + 1]) for r in range(GRID) for c in range(GRID)]


def _tile_stats(image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(luma std, Laplacian std) per tile; the Laplacian skips each tile's 1 px rim (its border is the tile's)."""
    laplacian = cv2.Laplacian(image, cv2.CV_16S, ksize=1)
    stds = np.zeros(GRID * GRID, np.float32)
    laps = np.zeros(GRID * GRID, np.float32)
    for i, (y0, y1, x0, x1) in enumerate(_grid(*image.shape[:2])):
        if (y1 - y0) < 4 or (x1 - x0) < 4:
            continue
        stds[i] = cv2.meanStdDev(image[y0:y1, x0:x1])[1][0][0]
        laps[i] = cv2.meanStdDev(laplacian[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1])[1][0][0]
    return stds, laps


def profile(
    frame_bgr: npt.NDArray[np.uint8], cnn: npt.NDArray[np.floating] | None = None, regime: str | None = None
) -> Profile:
    """Measure one frame (BGR or gray uint8)."""
    gray = measure_gray(frame_bgr)
    stds, laps = np.zeros((LEVELS, GRID * GRID), np.float32), np.zeros((LEVELS, GRID * GRID), np.float32)
    level: npt.NDArray[np.uint8] = gray
    for lv in range(LEVELS):
        stds[lv], laps[lv] = _tile_stats(level)
        if lv + 1 < LEVELS:
            level = cast("npt.NDArray[np.uint8]", cv2.pyrDown(level))
    low = cv2.GaussianBlur(gray, (0, 0), HP_SIGMA)
    mean, std = cv2.meanStdDev(gray)
    high = cv2.subtract(gray, low, dtype=cv2.CV_16S)
    highpass = float(cv2.meanStdDev(high)[1][0][0]) / max(float(std[0][0]), 1.0)
    small = cv2.resize(gray, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    # a few pixels of camera shake must not read as new content
    thumb = cast("npt.NDArray[np.float32]", cv2.GaussianBlur(small, (0, 0), 1.0))
    if regime is None:
        regime = lighting_regime(frame_bgr) if frame_bgr.ndim == 3 else "ir"
    colour = colourfulness(np.ascontiguousarray(frame_bgr[::4, ::4])) if frame_bgr.ndim == 3 else 0.0
    return Profile(
        tile_std=stds, tile_lap=laps, highpass=highpass, thumb=thumb, brightness=float(mean[0][0]),
        contrast=float(thumb.std()), colour=colour, regime=regime,
        cnn=None if cnn is None else np.asarray(cnn, np.float32),
    )  # fmt: skip


def median_profile(profiles: Sequence[Profile]) -> Profile:
    """The element-wise median of profiles of one regime (a baseline's first value)."""
    def med(values: list[Any]) -> Any:
        return np.median(np.stack([np.asarray(v, np.float32) for v in values]), axis=0).astype(np.float32)

    cnns = [p.cnn for p in profiles if p.cnn is not None]
    return Profile(
        tile_std=med([p.tile_std for p in profiles]), tile_lap=med([p.tile_lap for p in profiles]),
        highpass=float(med([p.highpass for p in profiles])), thumb=med([p.thumb for p in profiles]),
        brightness=float(med([p.brightness for p in profiles])), contrast=float(med([p.contrast for p in profiles])),
        colour=float(med([p.colour for p in profiles])), regime=profiles[0].regime,
        cnn=med(cnns) if cnns else None,
    )  # fmt: skip


def blend(base: Profile, new: Profile, alpha: float, cnn_alpha: float | None = None) -> Profile:
    """A running mean step: base + alpha (new - base), element-wise (the baseline follows the scene slowly).
    The CNN part moves by `cnn_alpha` (default `alpha`); a frame without a CNN result leaves it as is."""
    def mix(a: Any, b: Any, weight: float = alpha) -> Any:
        return (np.asarray(a, np.float32) + weight * (np.asarray(b, np.float32) - np.asarray(a, np.float32)))

    weight = alpha if cnn_alpha is None else cnn_alpha
    cnn = base.cnn if new.cnn is None else (new.cnn if base.cnn is None else mix(base.cnn, new.cnn, weight))
    return Profile(
        tile_std=mix(base.tile_std, new.tile_std), tile_lap=mix(base.tile_lap, new.tile_lap),
        highpass=float(mix(base.highpass, new.highpass)), thumb=mix(base.thumb, new.thumb),
        brightness=float(mix(base.brightness, new.brightness)), contrast=float(mix(base.contrast, new.contrast)),
        colour=float(mix(base.colour, new.colour)), regime=base.regime, cnn=cnn,
    )  # fmt: skip


def _log_ratio(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    return np.log(np.maximum(np.asarray(a, np.float64), 1e-6) / np.maximum(np.asarray(b, np.float64), 1e-6))


def _ncc(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    a0, b0 = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a0 * a0).sum()) * float((b0 * b0).sum()))
    return float((a0 * b0).sum()) / den if den > 1e-6 else 0.0


def _tile_ncc(now: npt.NDArray[np.float32], base: npt.NDArray[np.float32]) -> tuple[float, npt.NDArray[np.float64]]:
    """(whole-thumbnail correlation, per-tile correlations; NaN where the baseline tile has no structure),
    at the best alignment within `ALIGN_SHIFT` thumbnail pixels (~5% of the frame): a mast that sways,
    a re-seated housing or a lens' focus breathing is not a new view."""
    s = ALIGN_SHIFT
    template = np.ascontiguousarray(base[s:-s, s:-s])
    scores = cv2.matchTemplate(np.ascontiguousarray(now), template, cv2.TM_CCOEFF_NORMED)
    _lo, _best, _lo_at, (dx, dy) = cv2.minMaxLoc(scores)
    aligned = now[dy : dy + template.shape[0], dx : dx + template.shape[1]]
    tiles = []
    for y0, y1, x0, x1 in _grid(*template.shape):
        b = template[y0:y1, x0:x1]
        tiles.append(_ncc(aligned[y0:y1, x0:x1], b) if float(b.std()) >= THUMB_TEXTURE_STD else np.nan)
    return _ncc(aligned, template), np.asarray(tiles, np.float64)


def cnn_expected_index(probs: npt.NDArray[np.floating] | None) -> float:
    if probs is None:
        return 0.0
    p = np.asarray(probs, np.float64)
    return float((p * np.arange(len(p))).sum() / max(float(p.sum()), 1e-9))


def features(now: Profile, base: Profile) -> npt.NDArray[np.float64]:
    """The fusion model's input (order: `FEATURES`) for frame `now` against the camera's baseline `base`."""
    valid = (base.tile_std[0] >= TEXTURE_STD) & (now.tile_std[0] > 0)
    n_valid = int(valid.sum())
    ratios = []
    for lv in range(LEVELS):
        ok = valid & (base.tile_std[lv] > 0) & (now.tile_std[lv] > 0)
        norm_now = now.tile_lap[lv] / np.maximum(now.tile_std[lv], 1e-6)
        norm_base = base.tile_lap[lv] / np.maximum(base.tile_std[lv], 1e-6)
        r = _log_ratio(norm_now, norm_base)
        ratios.append(np.where(ok, r, np.nan))
    r0 = ratios[0][np.isfinite(ratios[0])]
    r1 = ratios[1][np.isfinite(ratios[1])]
    # Sensor noise adds Laplacian energy at full resolution and hides defocus there (night, gain):
    # its change tells the model how far to trust the fine scale.
    noise_now = float(np.quantile(now.tile_lap[0][now.tile_std[0] > 0], NOISE_QUANTILE)) if (now.tile_std[0] > 0).any() else 0.0
    noise_base = float(np.quantile(base.tile_lap[0][base.tile_std[0] > 0], NOISE_QUANTILE)) if (base.tile_std[0] > 0).any() else 0.0

    def stat(values: npt.NDArray[np.float64], q: float) -> float:
        v = values[np.isfinite(values)]
        return float(np.quantile(v, q)) if v.size else 0.0

    ncc_global, ncc_tiles = _tile_ncc(now.thumb, base.thumb)
    finite_ncc = ncc_tiles[np.isfinite(ncc_tiles)]
    coarse = max(base.contrast, 1.0)
    tile_means_now = np.array([now.thumb[y0:y1, x0:x1].mean() for y0, y1, x0, x1 in _grid(*now.thumb.shape)])
    tile_means_base = np.array([base.thumb[y0:y1, x0:x1].mean() for y0, y1, x0, x1 in _grid(*base.thumb.shape)])
    # A brightness change moves every tile's mean: compare after matching the global level.
    scale = max(now.brightness, 1.0) / max(base.brightness, 1.0)
    moved = np.abs(tile_means_now - tile_means_base * scale) > MOVED_MEAN * coarse * max(scale, 0.3)
    textured_base = base.tile_std[0] >= TEXTURE_STD
    textured_lost = float((textured_base & (now.tile_std[0] < TEXTURE_STD)).sum()) / max(int(textured_base.sum()), 1)
    values = {
        "lap0_median": stat(ratios[0], 0.5), "lap0_q25": stat(ratios[0], 0.25), "lap0_q75": stat(ratios[0], 0.75),
        "lap0_lost": float((r0 < math.log(LOST_RATIO)).sum()) / max(r0.size, 1),
        "lap1_median": stat(ratios[1], 0.5), "lap1_q25": stat(ratios[1], 0.25),
        "lap1_lost": float((r1 < math.log(LOST_RATIO)).sum()) / max(r1.size, 1),
        "lap2_median": stat(ratios[2], 0.5), "lap2_q25": stat(ratios[2], 0.25),
        "fine_coarse": stat(ratios[0] - ratios[1], 0.5),
        "highpass": float(_log_ratio(np.array(now.highpass), np.array(base.highpass))),
        "noise": float(_log_ratio(np.array(noise_now + 0.5), np.array(noise_base + 0.5))),
        "ncc_global": ncc_global, "ncc_median": float(np.median(finite_ncc)) if finite_ncc.size else 0.0,
        "ncc_changed": float((finite_ncc < CHANGED_NCC).sum()) / max(finite_ncc.size, 1),
        "brightness": float(_log_ratio(np.array(now.brightness + 1), np.array(base.brightness + 1))),
        "contrast": float(_log_ratio(np.array(now.contrast + 1), np.array(base.contrast + 1))),
        "colour": now.colour - base.colour, "moved_tiles": float(moved.mean()), "textured_lost": textured_lost,
        "valid_tiles": n_valid / (GRID * GRID), **cnn_features(now.cnn, base.cnn),
    }  # fmt: skip
    return np.array([values[name] for name in FEATURES], np.float64)


CNN_FEATURES = ("cnn_p", "cnn_p_usual", "cnn_shift")


def cnn_features(now_cnn: npt.NDArray[np.floating] | None, base_cnn: npt.NDArray[np.floating] | None) -> dict[str, float]:
    """The CNN witness' features: its P(blurry) now, as usual for the camera, and the shift of its
    expected class (a frame without a CNN result reads as P 0, class 0, as at fitting time)."""
    return {
        "cnn_p": 0.0 if now_cnn is None else float(np.sum(now_cnn[BLURRY_FROM_CNN:])),
        "cnn_p_usual": 0.0 if base_cnn is None else float(np.sum(base_cnn[BLURRY_FROM_CNN:])),
        "cnn_shift": cnn_expected_index(now_cnn) - cnn_expected_index(base_cnn),
    }


def with_cnn(x: npt.NDArray[np.float64], now_cnn: npt.NDArray[np.floating] | None,
             base_cnn: npt.NDArray[np.floating] | None) -> npt.NDArray[np.float64]:
    """`x` (from `features`) with the CNN witness' features replaced by those of `now_cnn`."""
    out = x.copy()
    for name, value in cnn_features(now_cnn, base_cnn).items():
        out[FEATURES.index(name)] = value
    return out


def cnn_unknown_ranges(base_cnn: npt.NDArray[np.floating] | None, classes: int = 9) -> dict[int, tuple[float, float]]:
    """Every value the frame-dependent CNN features can take, whatever the CNN says of this frame:
    P(blurry) in [0, 1], the expected-class shift in [-usual, classes - 1 - usual]. (The usual P is
    the baseline's: known without running the CNN.)"""
    usual = cnn_expected_index(base_cnn)
    return {FEATURES.index("cnn_p"): (0.0, 1.0),
            FEATURES.index("cnn_shift"): (-usual, classes - 1 - usual)}  # fmt: skip
