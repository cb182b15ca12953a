"""Synthetic nuisances (models/synth/nuisances.py): picture changes that are not defocus.

Each must keep the frame's format, be reproducible from a seed, and must not blur the frame as a
whole (the false-alarm tests and the training data rely on that)."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest

from models.synth import nuisances

SIZES = [(360, 640), (288, 352)]  # (height, width)
STRENGTHS = [0.0, 0.5, 1.0, None]


@functools.cache
def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A detailed sharp test frame: random colour blocks (hard edges), a fine checker, gradients
    and texture noise. Cached, so a nuisance that wrote into its input would show up."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 216, (h // 12 + 1, w // 12 + 1, 3), dtype=np.uint8)
    image = cv2.resize(blocks, None, fx=12, fy=12, interpolation=cv2.INTER_NEAREST)[:h, :w].astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    image += np.where((yy // 2 + xx // 2) % 2 == 0, 12.0, -12.0)[..., None]
    image += np.linspace(-25, 25, w)[None, :, None] + np.linspace(-15, 15, h)[:, None, None]
    image += rng.normal(0.0, 6.0, (h, w, 3))
    frame = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    frame.flags.writeable = False
    return frame


def gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)


def laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(gray(image), cv2.CV_64F).var())


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != b).any(axis=2)


def run(name: str, image: np.ndarray, seed: int = 0, strength: float | None = 1.0) -> np.ndarray:
    return nuisances.apply(name, image, np.random.default_rng(seed), strength)


# --- every nuisance ----------------------------------------------------------------------------


def test_names_match_public_functions() -> None:
    assert len(nuisances.NUISANCES) == len(set(nuisances.NUISANCES)) == 14
    image = scene(*SIZES[1])
    for name in nuisances.NUISANCES:
        function = getattr(nuisances, name)
        direct = function(image, np.random.default_rng(3), 0.7)
        assert np.array_equal(direct, run(name, image, seed=3, strength=0.7)), name


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("strength", STRENGTHS)
@pytest.mark.parametrize("name", nuisances.NUISANCES)
def test_output_is_a_new_uint8_bgr_frame(name: str, strength: float | None, size: tuple[int, int]) -> None:
    image = scene(*size)
    before = image.copy()
    out = run(name, image, seed=11, strength=strength)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8
    assert out.shape == image.shape == (*size, 3)
    assert not np.shares_memory(out, image)
    assert np.array_equal(image, before)  # the input is left alone
    assert changed(out, image).any()  # even the mild end is a visible change


@pytest.mark.parametrize("name", nuisances.NUISANCES)
def test_same_seed_same_frame(name: str) -> None:
    image = scene(*SIZES[0])
    first = run(name, image, seed=5, strength=None)
    assert np.array_equal(first, run(name, image, seed=5, strength=None))
    others = [run(name, image, seed=seed, strength=None) for seed in (6, 7, 8)]
    assert any(not np.array_equal(first, other) for other in others)  # the seed matters


def test_unknown_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="focus_pull"):
        run("focus_pull", scene(*SIZES[1]))


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_outside_0_1_is_a_value_error(strength: float) -> None:
    with pytest.raises(ValueError, match="strength"):
        run("fog", scene(*SIZES[1]), strength=strength)


def test_gray_or_float_input_is_rejected() -> None:
    image = scene(*SIZES[1])
    with pytest.raises(ValueError, match="BGR uint8"):
        run("exposure", image[..., 0])
    with pytest.raises(ValueError, match="BGR uint8"):
        run("exposure", image.astype(np.float32))


# --- individual nuisances ----------------------------------------------------------------------


def test_ir_switch_is_monochrome_with_an_ir_channel_mix() -> None:
    image = np.zeros((120, 200, 3), np.uint8)
    image[:, :100] = (0, 0, 200)  # red: darker than green in luma
    image[:, 100:] = (0, 200, 0)  # green
    rng = np.random.default_rng(1)
    out = nuisances.ir_switch(image, rng, 0.0)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert out[:, :100].mean() > out[:, 100:].mean() + 20  # IR follows red, unlike luma
    assert out[:, :100].std() > 1.0  # sensor noise
    assert not np.array_equal(out, nuisances.ir_switch(image, rng, 0.0))  # new noise per call


def test_ir_switch_dims_with_strength() -> None:
    image = scene(*SIZES[0])
    assert run("ir_switch", image, strength=1.0).mean() < run("ir_switch", image, strength=0.0).mean() - 40


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_lights_is_a_bounded_smooth_gain(seed: int) -> None:
    image = scene(*SIZES[0])
    out = run("lights", image, seed=seed, strength=1.0)
    f, o = image.astype(np.float64), out.astype(np.float64)
    usable = (f > 60) & (o < 250)
    ratio = o[usable] / f[usable]
    assert ratio.min() > 0.33 and ratio.max() < 2.55
    assert np.abs(ratio - 1.0).max() > 0.3  # strength 1 is a clear change


def test_exposure_is_a_pure_monotonic_pixel_map() -> None:
    # No spatial filtering: the output value depends on the input value only, monotonically.
    image = scene(*SIZES[0])
    for seed in range(4):
        out = run("exposure", image, seed=seed, strength=1.0)
        for c in range(3):
            order = np.argsort(image[..., c], axis=None, kind="stable")
            assert np.all(np.diff(out[..., c].ravel()[order].astype(int)) >= 0)
        assert abs(out.mean() - image.mean()) > 15


def test_gain_noise_keeps_brightness_and_amplifies_noise() -> None:
    image = scene(*SIZES[0])
    mild, severe = run("gain_noise", image, strength=0.0), run("gain_noise", image, strength=1.0)
    for out in (mild, severe):
        assert abs(out.mean() - image.mean()) < 3.0
    noise_mild = (mild.astype(float) - image).std()
    noise_severe = (severe.astype(float) - image).std()
    assert 3.5 < noise_mild < 8.0  # sigma 3 amplified by 1 / 0.6
    assert noise_severe > 20.0  # sigma 10 amplified by 1 / 0.3
    assert laplacian_variance(severe) > laplacian_variance(image)


def test_sensor_noise_level_and_channel_correlation() -> None:
    image = scene(*SIZES[0])
    for strength, (lo, hi) in ((0.0, (1.5, 2.6)), (1.0, (7.0, 8.8))):
        diff = run("sensor_noise", image, strength=strength).astype(float) - image
        assert lo < diff.std() < hi
        assert abs(diff.mean()) < 0.3
    corr = np.corrcoef(diff[..., 0].ravel(), diff[..., 2].ravel())[0, 1]
    assert 0.6 < corr < 0.95  # mostly luma noise, some chroma


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_fog_lowers_contrast_more_at_the_top(strength: float) -> None:
    image = scene(*SIZES[0])
    out = run("fog", image, seed=2, strength=strength)
    assert gray(out).std() < gray(image).std() * 0.95
    band = image.shape[0] // 6
    top = gray(out[:band]).std() / gray(image[:band]).std()
    bottom = gray(out[-band:]).std() / gray(image[-band:]).std()
    assert top < bottom  # more haze far away
    assert gray(out).mean() > gray(image).mean()  # towards a bright airlight


@pytest.mark.parametrize("name", ["rain", "snow"])
def test_precipitation_touches_few_pixels_and_brightens(name: str) -> None:
    image = scene(*SIZES[0])
    fractions = []
    for strength in (0.0, 1.0):
        out = run(name, image, seed=4, strength=strength)
        mask = changed(out, image)
        fractions.append(mask.mean())
        assert 0.002 < mask.mean() < 0.35  # most of the frame is untouched: no whole-frame filter
        assert (gray(out)[mask] > gray(image)[mask]).mean() > 0.75
    assert fractions[1] > 2 * fractions[0]  # denser with strength


def test_rain_streaks_share_one_slant() -> None:
    image = np.full((360, 640, 3), 60, np.uint8)
    out = run("rain", image, seed=9, strength=0.3)
    mask = changed(out, image).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    angles = []  # of each isolated streak from the vertical, by its pixels' principal axis
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        if area < 20:
            continue
        ys, xs = np.nonzero(labels[y : y + bh, x : x + bw] == label)
        values, vectors = np.linalg.eigh(np.cov(np.vstack([xs, ys]).astype(float)))
        if values[1] < 9 * values[0]:
            continue  # crossing streaks, not one line
        vx, vy = vectors[:, 1]
        angles.append(np.degrees(np.arctan(vx / vy)))
    assert len(angles) > 20
    spread = np.abs(np.array(angles) - np.median(angles))
    assert abs(np.median(angles)) < 27
    assert np.percentile(spread, 90) < 6  # one wind direction for the whole frame


def test_headlights_dark_frame_with_saturated_lamps() -> None:
    image = scene(*SIZES[0])
    for seed in range(3):
        out = run("headlights", image, seed=seed, strength=0.5)
        white = (out == 255).all(axis=2).mean()
        assert white > 0.001  # the lamp discs clip the sensor
        assert np.median(gray(out)) < 0.55 * np.median(gray(image))  # night: most of it dark


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_truck_is_one_sharp_edged_rectangle_from_a_side(strength: float, seed: int) -> None:
    image = scene(*SIZES[seed % 2])
    h, w = image.shape[:2]
    out = run("truck", image, seed=seed, strength=strength)
    mask = changed(out, image)
    assert 0.15 <= mask.mean() <= 0.5
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    assert y1 == h - 1  # bottom-aligned
    assert (x0 == 0) != (x1 == w - 1)  # enters from exactly one side
    assert mask[y0 : y1 + 1, x0 : x1 + 1].mean() > 0.97  # a filled rectangle; the rest bit-identical
    # The panel is smooth (seams and lettering aside): far less detail than the scene it hides.
    detail = np.abs(cv2.Laplacian(gray(out[y0 + 5 : y1 - 5, x0 + 5 : x1 - 5]), cv2.CV_64F))
    assert np.median(detail) < 0.2 * np.median(np.abs(cv2.Laplacian(gray(image), cv2.CV_64F)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_person_near_is_a_defocused_silhouette_from_an_edge(strength: float, seed: int) -> None:
    image = scene(*SIZES[seed % 2])
    out = run("person_near", image, seed=seed, strength=strength)
    mask = changed(out, image)
    assert 0.15 <= mask.mean() <= 0.5
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    assert stats[largest, cv2.CC_STAT_AREA] > 0.99 * mask.sum()  # one silhouette, the rest untouched
    blob = labels == largest
    assert blob[-1].any() or blob[:, 0].any() or blob[:, -1].any()  # enters from an edge


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[1]}x{s[0]}")
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_person_near_is_itself_out_of_focus(seed: int, size: tuple[int, int]) -> None:
    # On a flat background a sharp silhouette would step by ~100 levels from one pixel to the
    # next; blurred with sigma >= 2 % of the width its steepest slope is a few levels per pixel.
    flat = np.full((*size, 3), 128, np.uint8)
    out = run("person_near", flat, seed=seed, strength=1.0).astype(int)
    assert np.abs(out - 128).max() > 50  # the person is there, and contrasted
    steepest = max(np.abs(np.diff(out, axis=0)).max(), np.abs(np.diff(out, axis=1)).max())
    assert steepest <= 12


def test_compression_changes_codec_detail_not_brightness() -> None:
    image = scene(*SIZES[0])
    mild, severe = run("compression", image, strength=0.0), run("compression", image, strength=1.0)
    assert changed(severe, image).mean() > 0.5
    assert abs(severe.mean() - image.mean()) < 3.0
    err_mild = np.abs(mild.astype(float) - image).mean()
    err_severe = np.abs(severe.astype(float) - image).mean()
    assert err_severe > err_mild * 1.2  # lower quality, larger codec error
    # The same as a plain quality-12 JPEG round trip.
    _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 12])
    assert np.array_equal(severe, cv2.imdecode(encoded, cv2.IMREAD_COLOR))


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_ptz_move_shows_another_view_without_resampling(strength: float) -> None:
    image = scene(*SIZES[0])
    out = run("ptz_move", image, seed=3, strength=strength)
    corr = np.corrcoef(gray(out).ravel(), gray(image).ravel())[0, 1]
    assert abs(corr) < 0.3
    assert 0.8 < laplacian_variance(out) / laplacian_variance(image) < 1.2
    # Only moved, never interpolated: the same multiset of pixels.
    assert np.array_equal(np.sort(out.reshape(-1, 3), axis=0), np.sort(image.reshape(-1, 3), axis=0))


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_vibration_is_a_small_shift_and_short_blur(strength: float) -> None:
    image = scene(*SIZES[0])
    out = run("vibration", image, seed=6, strength=strength)
    (dx, dy), _ = cv2.phaseCorrelate(gray(image), gray(out))
    assert 0.5 < np.hypot(dx, dy) < 5.0
    assert abs(out.mean() - image.mean()) < 1.0
    # Undo the integer shift: what is left is a mild blur, not a defocus.
    shifted = np.roll(gray(out), (-round(dy), -round(dx)), axis=(0, 1))[8:-8, 8:-8]
    assert np.abs(shifted - gray(image)[8:-8, 8:-8]).mean() < 12.0
