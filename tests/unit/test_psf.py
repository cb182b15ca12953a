"""models.synth.psf: lens PSFs scaled to the second moment of the class's Gaussian."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from models.synth import psf
from tests.support.scenarios import sharp_view

SIGMAS = (1.0, 2.0, 4.0, 7.0)


def impulse_response(kind: str, sigma: float, seed: int = 0) -> np.ndarray:
    """What `psf.blur` really applies: the response to a unit impulse (float32, so nothing is quantised)."""
    size = 2 * math.ceil(4 * sigma + 4) + 1
    image = np.zeros((size, size), np.float32)
    image[size // 2, size // 2] = 1.0
    return psf.blur(image, kind, sigma, np.random.default_rng(seed))  # type: ignore[arg-type]


def laplacian_variance(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


@pytest.mark.parametrize("kind", psf.KINDS)
@pytest.mark.parametrize("sigma", SIGMAS)
def test_second_moment_is_the_gaussians(kind: str, sigma: float) -> None:
    for seed in range(3):  # ring and elliptic draw their shape
        response = impulse_response(kind, sigma, seed)
        assert float(response.sum()) == pytest.approx(1.0, abs=1e-3)
        assert math.sqrt(psf.second_moment(response)) == pytest.approx(sigma, rel=0.05), (kind, sigma, seed)
        kernel = psf.kernel(kind, sigma, np.random.default_rng(seed))
        if kind == "gaussian":
            assert kernel is None  # applied separably by blur()
        else:
            assert kernel is not None
            assert math.sqrt(psf.second_moment(kernel)) == pytest.approx(sigma, rel=0.05), (kind, sigma, seed)


@pytest.mark.parametrize("kind", [k for k in psf.KINDS if k != "gaussian"])
@pytest.mark.parametrize("sigma", [*SIGMAS, psf.SUBPIXEL_SIGMA, 12.0])
def test_kernels_sum_to_one(kind: str, sigma: float) -> None:
    for seed in range(3):
        kernel = psf.kernel(kind, sigma, np.random.default_rng(seed))
        assert kernel is not None
        assert kernel.dtype == np.float32
        assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-5)
        assert float(kernel.min()) >= 0.0
        assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1  # centred


@pytest.mark.parametrize("kind", psf.KINDS)
@pytest.mark.parametrize("sigma", [0.3, 0.5, psf.SUBPIXEL_SIGMA - 0.01])
def test_subpixel_sigma_is_gaussian(kind: str, sigma: float) -> None:
    assert sigma < psf.SUBPIXEL_SIGMA
    assert psf.kernel(kind, sigma) is None
    image = sharp_view(320, 180)
    np.testing.assert_array_equal(psf.blur(image, kind, sigma), psf.blur(image, "gaussian", sigma))


def test_sigma_zero_leaves_the_image() -> None:
    image = sharp_view(320, 180)
    for kind in psf.KINDS:
        out = psf.blur(image, kind, 0.0)
        np.testing.assert_array_equal(out, image)
        assert out is not image


def test_sigma_pixels_scales_from_1920() -> None:
    assert psf.sigma_pixels(3.0, 1920) == pytest.approx(3.0)
    assert psf.sigma_pixels(3.0, 1280) == pytest.approx(2.0)
    assert psf.sigma_pixels(3.0, 3840) == pytest.approx(6.0)


@pytest.mark.parametrize("kind", psf.KINDS)
def test_defocus_behind_a_mask(kind: str) -> None:
    image = sharp_view(640, 360)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mask = psf.depth_mask(360, 640, np.random.default_rng(3), coverage=0.5)
    out = psf.defocus(image, kind, 4.0, np.random.default_rng(1), mask=mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    out_gray = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    sharp_part, blurred_part = mask < 0.01, mask > 0.99
    assert sharp_part.mean() > 0.2 and blurred_part.mean() > 0.2
    diff = np.abs(out.astype(np.int16) - image.astype(np.int16))
    assert int(diff[sharp_part].max()) <= 3  # at most 1 % of a blurred value leaks in
    assert float(diff[sharp_part].mean()) < 0.3

    def lap_var(img: np.ndarray, where: np.ndarray) -> float:
        return float(cv2.Laplacian(img, cv2.CV_64F)[where].var())

    # Inside each part, away from the transition (the Laplacian is local).
    inner_sharp = cv2.erode(sharp_part.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    inner_blur = cv2.erode(blurred_part.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert lap_var(out_gray, inner_sharp) == pytest.approx(lap_var(gray, inner_sharp), rel=0.02)
    assert lap_var(out_gray, inner_blur) < 0.3 * lap_var(gray, inner_blur)


def test_hard_mask_keeps_mask_zero_exact() -> None:
    image = sharp_view(640, 360)
    mask = np.zeros((360, 640), np.float32)
    mask[:, 320:] = 1.0
    out = psf.defocus(image, "disc", 3.0, mask=mask)
    np.testing.assert_array_equal(out[:, :320], image[:, :320])
    whole = psf.defocus(image, "disc", 3.0)
    np.testing.assert_array_equal(out[:, 320:], whole[:, 320:])
    g_in, g_out = (cv2.cvtColor(a[:, 330:], cv2.COLOR_BGR2GRAY) for a in (image, out))
    assert laplacian_variance(g_out) < 0.5 * laplacian_variance(g_in)


def test_whole_frame_defocus_scales_with_width() -> None:
    # The same class sigma is twice the pixels on a frame twice as wide: the second moment says so.
    for width in (640, 1280):
        assert psf.sigma_pixels(2.0, width) == pytest.approx(2.0 * width / 1920)
    image = sharp_view(640, 360)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    light = cv2.cvtColor(psf.defocus(image, "gaussian", 1.0), cv2.COLOR_BGR2GRAY)
    heavy = cv2.cvtColor(psf.defocus(image, "gaussian", 4.0), cv2.COLOR_BGR2GRAY)
    assert laplacian_variance(heavy) < laplacian_variance(light) < laplacian_variance(gray)


@pytest.mark.parametrize("coverage", [0.3, 0.5, 0.7])
def test_depth_mask_coverage(coverage: float) -> None:
    for seed in range(10):  # both the ramp and the blob field are drawn in 10 seeds
        mask = psf.depth_mask(180, 320, np.random.default_rng(seed), coverage)
        assert mask.shape == (180, 320) and mask.dtype == np.float32
        assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0
        assert float((mask > 0.5).mean()) == pytest.approx(coverage, abs=0.1), seed
        assert float(mask.mean()) == pytest.approx(coverage, abs=0.1), seed


def test_depth_mask_drawn_coverage() -> None:
    for seed in range(10):
        mask = psf.depth_mask(90, 160, np.random.default_rng(seed))
        assert 0.2 <= float((mask > 0.5).mean()) <= 0.8


def test_depth_mask_is_smooth() -> None:
    mask = psf.depth_mask(180, 320, np.random.default_rng(0), 0.5)
    assert float(np.abs(np.diff(mask, axis=1)).max()) < 0.5  # no hard step: a soft transition
    assert float(np.abs(np.diff(mask, axis=0)).max()) < 0.5


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown PSF kind 'box'"):
        psf.kernel("box", 2.0)
    with pytest.raises(ValueError, match="box"):
        psf.blur(sharp_view(320, 180), "box", 2.0)
    with pytest.raises(ValueError, match="box"):
        psf.defocus(sharp_view(320, 180), "box", 2.0)
