"""focusguard.analysis.evidence: a frame's profile and its features against the camera's own in-focus baseline."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from focusguard.analysis import evidence
from focusguard.analysis.evidence import FEATURES, GRID, LEVELS, THUMB_SIZE, Profile
from models.synth import nuisances, psf
from tests.support.scenarios import gray_bgr, noisy, sharp_view

IDX = {name: i for i, name in enumerate(FEATURES)}
# Log ratios to the baseline (0 when the frame is the baseline's), of those the model reads.
LOG_RATIOS = tuple(n for n in ("lap0_median", "lap0_q25", "lap0_q75", "lap1_median", "lap1_q25", "lap2_median",
                               "lap2_q25", "fine_coarse", "highpass", "noise", "brightness", "contrast")
                   if n in FEATURES)  # fmt: skip
ONE_FOR_ITSELF = {"ncc_global", "ncc_median", "valid_tiles"}  # a detailed frame against its own profile


@pytest.fixture(scope="module")
def view() -> np.ndarray:
    return sharp_view(1280, 720)


@pytest.fixture(scope="module")
def base(view: np.ndarray) -> Profile:
    """The in-focus baseline: the median profile of 5 noisy frames, as the fusion detector learns it."""
    rng = np.random.default_rng(100)
    return evidence.median_profile([evidence.profile(noisy(view, rng)) for _ in range(5)])


def feature(x: np.ndarray, name: str) -> float:
    return float(x[IDX[name]])


def test_feature_names() -> None:
    assert len(FEATURES) == len(set(FEATURES))
    assert FEATURES[0] == "lap0_median"
    # the names fusion.py and this file read
    for name in ("lap0_median", "ncc_global", "ncc_changed", "ncc_median", "lap0_lost", "brightness", "moved_tiles",
                 "valid_tiles", "cnn_p", "cnn_p_usual", "cnn_shift"):  # fmt: skip
        assert name in FEATURES, name


def test_profile_shapes(view: np.ndarray) -> None:
    p = evidence.profile(view)
    assert p.tile_std.shape == p.tile_lap.shape == (LEVELS, GRID * GRID)
    assert p.thumb.shape == THUMB_SIZE[::-1]
    assert p.regime == "day" and p.cnn is None
    assert 0.0 < p.highpass < 1.0 and 0.0 < p.brightness < 255.0 and p.contrast > 10.0 and p.colour > 0.0
    assert (p.tile_std > 0).all() and (p.tile_lap > 0).all()  # a detailed scene: every tile textured


def test_frame_against_its_own_profile(view: np.ndarray) -> None:
    p = evidence.profile(view)
    x = evidence.features(p, p)
    assert x.shape == (len(FEATURES),) and np.isfinite(x).all()
    for name in FEATURES:  # every log ratio, share and shift is 0; the correlations and valid share 1
        expected = 1.0 if name in ONE_FOR_ITSELF else 0.0
        assert feature(x, name) == pytest.approx(expected, abs=1e-6), name
    for name in LOG_RATIOS:
        assert feature(x, name) == pytest.approx(0.0, abs=1e-9), name


def test_noisy_frame_against_the_baseline(view: np.ndarray, base: Profile) -> None:
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = evidence.features(evidence.profile(noisy(view, rng)), base)
        for name in LOG_RATIOS:
            assert abs(feature(x, name)) < 0.05, (name, feature(x, name))
        assert feature(x, "ncc_global") > 0.99
        assert feature(x, "lap0_lost") == 0.0 and feature(x, "ncc_changed") == 0.0
        assert feature(x, "moved_tiles") == 0.0


@pytest.mark.parametrize("gain", [0.6, 1.3])
def test_exposure_gain_moves_brightness_not_sharpness(view: np.ndarray, base: Profile, gain: float) -> None:
    frame = noisy(cv2.convertScaleAbs(view, alpha=gain, beta=0), np.random.default_rng(1))
    x = evidence.features(evidence.profile(frame), base)
    assert abs(feature(x, "lap0_median")) <= 0.1, feature(x, "lap0_median")  # contrast-normalised
    assert feature(x, "ncc_global") > 0.95
    expected = math.log((gain * base.brightness + 1) / (base.brightness + 1))
    assert feature(x, "brightness") == pytest.approx(expected, abs=0.08)
    assert abs(feature(x, "brightness")) > 0.2
    assert feature(x, "moved_tiles") < 0.1  # matched to the global level first


def test_exposure_gain_0_6_exactly(view: np.ndarray, base: Profile) -> None:
    x = evidence.features(evidence.profile(noisy(cv2.convertScaleAbs(view, alpha=0.6), np.random.default_rng(2))), base)
    assert -0.1 <= feature(x, "lap0_median") <= 0.1
    assert feature(x, "brightness") < -0.35


@pytest.mark.parametrize("kind", ["gaussian", "disc"])
def test_defocus_lowers_sharpness_keeps_structure(view: np.ndarray, base: Profile, kind: str) -> None:
    frame = noisy(psf.defocus(view, kind, 2.0), np.random.default_rng(3))
    x = evidence.features(evidence.profile(frame), base)
    assert feature(x, "lap0_median") < math.log(0.6), feature(x, "lap0_median")
    assert feature(x, "lap0_q75") < 0.0
    assert feature(x, "lap0_lost") > 0.5
    assert feature(x, "highpass") < math.log(0.8)
    assert feature(x, "ncc_global") > 0.9  # the coarse structure is the baseline's: not a scene change
    assert feature(x, "fine_coarse") < 0.0  # fine detail goes first
    assert abs(feature(x, "brightness")) < 0.05


def test_more_defocus_less_sharpness(view: np.ndarray, base: Profile) -> None:
    medians = [feature(evidence.features(evidence.profile(psf.defocus(view, "gaussian", s)), base), "lap0_median")
               for s in (0.5, 1.0, 2.0, 4.0)]  # fmt: skip
    assert medians == sorted(medians, reverse=True)
    assert medians[-1] < medians[0] - 0.5


@pytest.mark.parametrize("strength", [0.0, 0.3, 0.6, 1.0])
def test_ptz_move_is_a_scene_change(view: np.ndarray, base: Profile, strength: float) -> None:
    for seed in range(3):
        frame = nuisances.apply("ptz_move", view, np.random.default_rng(seed), strength)
        x = evidence.features(evidence.profile(frame), base)
        assert feature(x, "ncc_global") < 0.5, (strength, seed, feature(x, "ncc_global"))
        assert feature(x, "ncc_changed") > 0.3


def test_truck_moves_tiles(view: np.ndarray, base: Profile) -> None:
    frame = nuisances.apply("truck", view, np.random.default_rng(0), 1.0)
    x = evidence.features(evidence.profile(frame), base)
    assert feature(x, "moved_tiles") > 0.1 or feature(x, "ncc_changed") > 0.1


def test_cnn_witness_features(view: np.ndarray) -> None:
    sharp = np.array([0.9, 0.05, 0.05, 0, 0, 0, 0, 0, 0], np.float32)
    blurry = np.array([0, 0, 0, 0.1, 0.1, 0.8, 0, 0, 0], np.float32)
    base = evidence.profile(view, cnn=sharp)
    now = evidence.profile(view, cnn=blurry)
    x = evidence.features(now, base)
    assert feature(x, "cnn_p") == pytest.approx(1.0)
    assert feature(x, "cnn_p_usual") == pytest.approx(0.0)
    assert feature(x, "cnn_shift") == pytest.approx(evidence.cnn_expected_index(blurry) - evidence.cnn_expected_index(sharp))
    assert evidence.cnn_expected_index(blurry) == pytest.approx(0.1 * 3 + 0.1 * 4 + 0.8 * 5)
    assert evidence.cnn_expected_index(None) == 0.0


def test_gray_frames(view: np.ndarray) -> None:
    gray2d = cv2.cvtColor(view, cv2.COLOR_BGR2GRAY)
    p = evidence.profile(gray2d)
    assert p.regime == "ir" and p.colour == 0.0
    assert evidence.profile(gray_bgr(view)).regime == "ir"  # B = G = R is monochrome too
    assert evidence.profile(view, regime="low_light").regime == "low_light"  # given: not measured


def test_large_frames_are_measured_at_1080p(view: np.ndarray) -> None:
    big = cv2.resize(view, (2560, 1440), interpolation=cv2.INTER_CUBIC)
    assert evidence.measure_gray(big).shape == (1080, 1920)
    assert evidence.measure_gray(view).shape == (720, 1280)
    assert evidence.measure_gray(view).dtype == np.uint8


# --------------------------------------------------------------------------- JSON, median, blend


def test_profile_json_round_trip(view: np.ndarray, base: Profile) -> None:
    rng = np.random.default_rng(11)
    cnn = rng.dirichlet(np.ones(9)).astype(np.float32)
    original = evidence.profile(noisy(view, rng), cnn=cnn)
    once = Profile.from_json(json.loads(json.dumps(original.to_json())))
    twice = Profile.from_json(json.loads(json.dumps(once.to_json())))
    assert once.regime == original.regime == "day"
    assert once.cnn is not None and once.cnn.shape == (9,)
    now = evidence.profile(noisy(psf.defocus(view, "gaussian", 1.0), rng), cnn=cnn)
    # As a baseline (what is saved): the same features, up to the file's rounding ...
    np.testing.assert_allclose(evidence.features(now, once), evidence.features(now, original), atol=2e-3)
    # ... and once rounded, a round trip changes nothing at all.
    np.testing.assert_array_equal(evidence.features(now, twice), evidence.features(now, once))
    np.testing.assert_array_equal(evidence.features(once, base), evidence.features(twice, base))
    for name in ("tile_std", "tile_lap", "thumb", "cnn"):
        np.testing.assert_array_equal(getattr(once, name), getattr(twice, name))
        assert getattr(once, name).dtype == np.float32


def test_profile_json_without_cnn(view: np.ndarray) -> None:
    p = evidence.profile(cv2.cvtColor(view, cv2.COLOR_BGR2GRAY))
    data = p.to_json()
    assert data["cnn"] is None and data["regime"] == "ir"
    back = Profile.from_json(json.loads(json.dumps(data)))
    assert back.cnn is None and back.regime == "ir"
    legacy = {k: v for k, v in data.items() if k != "regime"}
    assert Profile.from_json(legacy).regime == "day"


def test_profile_json_of_another_grid_raises(view: np.ndarray) -> None:
    data = evidence.profile(view).to_json()
    with pytest.raises(ValueError, match="grid"):
        Profile.from_json({**data, "tile_std": [[1.0] * 16] * LEVELS})
    with pytest.raises(ValueError, match="grid"):
        Profile.from_json({**data, "thumb": [[1.0] * 32] * 18})
    with pytest.raises(KeyError):
        Profile.from_json({k: v for k, v in data.items() if k != "highpass"})


def synthetic(value: float, cnn: np.ndarray | None = None, regime: str = "day") -> Profile:
    return Profile(
        tile_std=np.full((LEVELS, GRID * GRID), value, np.float32), tile_lap=np.full((LEVELS, GRID * GRID), 2 * value, np.float32),
        highpass=value / 100, thumb=np.full(THUMB_SIZE[::-1], value, np.float32), brightness=value, contrast=value / 2,
        colour=value / 10, regime=regime, cnn=cnn,
    )  # fmt: skip


def test_median_profile() -> None:
    profiles = [synthetic(v) for v in (10.0, 30.0, 20.0)]
    med = evidence.median_profile(profiles)
    assert med.tile_std.shape == med.tile_lap.shape == (LEVELS, GRID * GRID)
    assert med.thumb.shape == THUMB_SIZE[::-1]
    assert med.tile_std.dtype == med.thumb.dtype == np.float32
    np.testing.assert_array_equal(med.tile_std, 20.0)
    np.testing.assert_array_equal(med.tile_lap, 40.0)
    np.testing.assert_array_equal(med.thumb, 20.0)
    assert (med.highpass, med.brightness, med.contrast, med.colour) == pytest.approx((0.2, 20.0, 10.0, 2.0))
    assert med.cnn is None and med.regime == "day"
    assert isinstance(med.highpass, float) and isinstance(med.brightness, float)


def test_median_profile_cnn_only_from_those_that_have_it() -> None:
    a, b = np.full(9, 0.1, np.float32), np.full(9, 0.3, np.float32)
    med = evidence.median_profile([synthetic(1.0, a, "ir"), synthetic(2.0, None, "ir"), synthetic(3.0, b, "ir")])
    assert med.cnn is not None and med.cnn.shape == (9,)
    np.testing.assert_allclose(med.cnn, 0.2)
    assert med.regime == "ir"


def test_median_of_real_profiles(view: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    profiles = [evidence.profile(noisy(view, rng)) for _ in range(3)]
    med = evidence.median_profile(profiles)
    stacked = np.stack([p.tile_lap for p in profiles])
    np.testing.assert_allclose(med.tile_lap, np.median(stacked, axis=0), rtol=1e-6)


def test_blend() -> None:
    base, new = synthetic(10.0, np.full(9, 0.1, np.float32)), synthetic(20.0, np.full(9, 0.5, np.float32), "ir")
    assert evidence.blend(base, new, 0.0).brightness == pytest.approx(10.0)
    one = evidence.blend(base, new, 1.0)
    np.testing.assert_allclose(one.tile_std, new.tile_std)
    step = evidence.blend(base, new, 0.25)
    assert step.tile_std.shape == step.tile_lap.shape == (LEVELS, GRID * GRID)
    assert step.thumb.shape == THUMB_SIZE[::-1]
    np.testing.assert_allclose(step.tile_std, 12.5)
    np.testing.assert_allclose(step.tile_lap, 25.0)
    np.testing.assert_allclose(step.thumb, 12.5)
    assert (step.highpass, step.brightness, step.contrast, step.colour) == pytest.approx((0.125, 12.5, 6.25, 1.25))
    assert step.cnn is not None
    np.testing.assert_allclose(step.cnn, 0.2)
    assert step.regime == "day"  # the baseline's regime
    assert isinstance(step.highpass, float)


def test_blend_with_missing_cnn() -> None:
    cnn = np.full(9, 0.4, np.float32)
    assert evidence.blend(synthetic(1.0, cnn), synthetic(2.0), 0.5).cnn is cnn  # nothing new: keep
    taken = evidence.blend(synthetic(1.0), synthetic(2.0, cnn), 0.5).cnn
    assert taken is not None
    np.testing.assert_array_equal(taken, cnn)  # the first witness is taken as it is
    assert evidence.blend(synthetic(1.0), synthetic(2.0), 0.5).cnn is None
