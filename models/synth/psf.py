"""Lens-like defocus: point-spread functions scaled to the thesis' Gaussian classes, whole frame or partial.

A class b_s means Gaussian blur of sigma s at the 1920 px wide scale (FACTS §1); on a frame `w`
pixels wide that is sigma s * w / 1920 pixels. Real lens defocus is not Gaussian: its PSF is
closer to a disc (the aperture's image), with a soft rim, sometimes ring-like (spherical
aberration, catadioptric and some zoom lenses) and mildly elliptical off-axis. Each kind here
is scaled to the same **second moment** as the class's Gaussian (the equivalence rule: equal
variance of the PSF along each axis), so b_2 means the same amount of spread whatever the kind:

* ``gaussian``: sigma, full kernel of radius ceil(3 sigma) (OpenCV's rule).
* ``disc``: a pillbox of radius R = 2 sigma (a uniform disc of radius R has variance R^2/4 per
  axis) with a soft edge (anti-aliased over about one pixel).
* ``ring``: an annulus with inner radius r = k R, outer R, variance (R^2 + r^2)/4 per axis:
  R = 2 sigma / sqrt(1 + k^2); k in 0.4-0.7 (a bright rim, dark centre: the "donut" bokeh).
* ``elliptic``: a soft disc stretched by a in 1.15-1.5 along a random angle; the axes are
  scaled so that the mean variance of the two axes equals sigma^2.

`defocus` applies one PSF to the whole frame or, with a `mask` (float 0-1, 1 = defocused),
only behind a depth-like mask (`depth_mask`: a smooth ramp or blob field, as when the far
part of a scene or a tilted plane leaves the depth of field). Optics come first: sensor and
ISP effects (noise, compression) are applied after, by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

KINDS = ("gaussian", "disc", "ring", "elliptic")
REFERENCE_WIDTH = 1920
SUBPIXEL_SIGMA = 0.75  # pixels: a soft disc this small has +20% second moment from its 1 px rim


def sigma_pixels(sigma_1080p: float, width: int) -> float:
    """The class sigma (defined at 1920 px wide) on a frame `width` pixels wide."""
    return sigma_1080p * width / REFERENCE_WIDTH


def _soft_disc(radius_x: float, radius_y: float, angle: float = 0.0, inner: float = 0.0) -> npt.NDArray[np.float32]:
    """A normalised (elliptic) disc or annulus kernel with a ~1 px soft edge, supersampled 4x."""
    extent = math.ceil(max(radius_x, radius_y) + 1.5)
    sub = 4
    coords = (np.arange(-extent * sub, (extent + 1) * sub) + 0.5) / sub - 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    c, s = math.cos(angle), math.sin(angle)
    u, v = (xx * c + yy * s) / max(radius_x, 1e-3), (-xx * s + yy * c) / max(radius_y, 1e-3)
    r = np.sqrt(u * u + v * v)
    kernel = (r <= 1.0) & (r >= inner)
    size = 2 * extent + 1
    fine = kernel.astype(np.float32)[: size * sub, : size * sub]
    coarse = fine.reshape(size, sub, size, sub).mean(axis=(1, 3))
    total = float(coarse.sum())
    if total <= 0:  # smaller than a pixel: identity
        coarse = np.zeros((size, size), np.float32)
        coarse[extent, extent] = 1.0
        total = 1.0
    return (coarse / total).astype(np.float32)


def kernel(kind: str, sigma: float, rng: np.random.Generator | None = None) -> npt.NDArray[np.float32] | None:
    """The PSF of `kind` with the second moment of a Gaussian of `sigma` pixels (None: Gaussian,
    applied separably by `defocus`). The continuous radius rules above are corrected for the pixel
    grid (the sampled, soft-edged kernel spreads a little more): the radius is rescaled until the
    kernel's measured second moment is sigma^2 (within 0.5%)."""
    rng = rng or np.random.default_rng(0)
    shape = _shape(kind, rng)
    if shape is None or sigma < SUBPIXEL_SIGMA:
        return None  # below ~a pixel the pixel grid hides the PSF's shape: all kinds are Gaussian there
    lo, hi = 0.5, 1.5  # bisection on the radius scale: the spread grows with it (in small steps)
    best, best_error = shape(sigma), math.inf
    for _ in range(14):
        mid = (lo + hi) / 2
        psf = shape(sigma * mid)
        spread = math.sqrt(second_moment(psf)) / sigma
        if abs(spread - 1.0) < best_error:
            best, best_error = psf, abs(spread - 1.0)
        if best_error < 0.005:
            break
        lo, hi = (mid, hi) if spread < 1.0 else (lo, mid)
    return best


def _shape(kind: str, rng: np.random.Generator) -> Callable[[float], npt.NDArray[np.float32]] | None:
    """kind -> (sigma -> kernel by the continuous rule); its random parameters drawn once."""
    if kind not in KINDS:
        raise ValueError(f"unknown PSF kind {kind!r} (one of {', '.join(KINDS)})")
    if kind == "gaussian":
        return None
    if kind == "disc":
        return lambda s: _soft_disc(2 * s, 2 * s)
    if kind == "ring":
        k = float(rng.uniform(0.4, 0.7))
        return lambda s: _soft_disc(2 * s / math.sqrt(1 + k * k), 2 * s / math.sqrt(1 + k * k), inner=k)
    a = float(rng.uniform(1.15, 1.5))
    angle = float(rng.uniform(0, math.pi))
    # variances (a R)^2/4 and (R/a)^2/4 average to sigma^2
    return lambda s: _soft_disc(2 * s * math.sqrt(2 / (a * a + 1 / (a * a))) * a,
                                2 * s * math.sqrt(2 / (a * a + 1 / (a * a))) / a, angle=angle)  # fmt: skip


def second_moment(psf: npt.NDArray[np.floating]) -> float:
    """Mean per-axis variance of a kernel (pixels^2): the equivalence rule's measure."""
    h, w = psf.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    total = float(psf.sum())
    cy, cx = float((yy * psf).sum() / total), float((xx * psf).sum() / total)
    var_y = float((((yy - cy) ** 2) * psf).sum() / total)
    var_x = float((((xx - cx) ** 2) * psf).sum() / total)
    return (var_x + var_y) / 2


def blur(image: npt.NDArray[np.uint8], kind: str, sigma: float,
         rng: np.random.Generator | None = None) -> npt.NDArray[np.uint8]:
    """The whole image through the PSF (sigma in pixels of this image); sigma <= 0: unchanged."""
    if sigma <= 0:
        return image.copy()
    psf = kernel(kind, sigma, rng)
    if psf is None:
        radius = math.ceil(3 * sigma)
        return cv2.GaussianBlur(image, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT)
    return cv2.filter2D(image, -1, psf, borderType=cv2.BORDER_REFLECT)


def depth_mask(height: int, width: int, rng: np.random.Generator, coverage: float | None = None) -> npt.NDArray[np.float32]:
    """A smooth 0-1 mask (1 = out of the depth of field) covering about `coverage` (0.3-0.7 drawn) of the frame:
    a ramp at a random angle (far field / tilted plane) or a smooth blob field, with a soft transition."""
    coverage = float(rng.uniform(0.3, 0.7)) if coverage is None else coverage
    if rng.random() < 0.6:
        angle = rng.uniform(-math.pi / 4, math.pi / 4) + (math.pi / 2 if rng.random() < 0.25 else 0.0)
        yy, xx = np.mgrid[:height, :width].astype(np.float32)
        field = -(yy / height) * math.cos(angle) + (xx / width) * math.sin(angle)
    else:
        small = rng.normal(size=(4, 6)).astype(np.float32)
        field = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    level = float(np.quantile(field, 1.0 - coverage))
    spread = float(field.std()) * 0.15 + 1e-6
    return (1.0 / (1.0 + np.exp(-(field - level) / spread))).astype(np.float32)


def defocus(image: npt.NDArray[np.uint8], kind: str, sigma_1080p: float, rng: np.random.Generator | None = None,
            mask: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.uint8]:
    """Class-scale defocus (sigma at 1920 px wide, scaled to the image) with PSF `kind`, whole frame or behind `mask`."""
    sigma = sigma_pixels(sigma_1080p, image.shape[1])
    blurred = blur(image, kind, sigma, rng)
    if mask is None:
        return blurred
    m = mask[..., None] if image.ndim == 3 else mask
    out = blurred.astype(np.float32) * m + image.astype(np.float32) * (1.0 - m)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
