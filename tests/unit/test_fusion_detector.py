"""focusguard.analysis.fusion.FusionDetector with a fake CNN and a hand-made model (no shipped JSON needed).

The model (tests.support.scenarios.sharpness_model) is P = sigmoid(-10 lap0_median - 3): ~0.05 for a
frame as sharp as its baseline, ~1 for one with half its sharpness; threshold 0.5.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from focusguard.analysis import evidence, fusion
from focusguard.analysis.fusion import (
    LEARN_FRAMES,
    SAVE_INTERVAL_S,
    FusionBaselines,
    FusionDetector,
    fusion_baseline_path,
)
from focusguard.analysis.fusion_model import FusionModel
from focusguard.analysis.infer import DEFAULT_LABELS
from models.synth import nuisances, psf
from tests.support.scenarios import (
    FakeCnn,
    cnn_probabilities,
    gray_bgr,
    noisy,
    sharp_view,
    sharpness_model,
)
from tests.unit.conftest import FakeClock

W, H = 640, 360


class SharpClassifier:
    """A classifier double that calls every view sharp."""

    labels = DEFAULT_LABELS

    def classify(self, rgb448: np.ndarray) -> np.ndarray:
        assert rgb448.shape == (448, 448, 3)
        return np.array(list(cnn_probabilities("sharp").values()), np.float32)


@pytest.fixture(scope="module")
def model() -> FusionModel:
    return FusionModel(sharpness_model())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def sharp(rng: np.random.Generator) -> np.ndarray:
    return noisy(sharp_view(W, H), rng)


def defocused(rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    return noisy(psf.defocus(sharp_view(W, H), "gaussian", sigma), rng)


def ir(rng: np.random.Generator, sigma: float = 0.0) -> np.ndarray:
    view = sharp_view(W, H) if sigma == 0 else psf.defocus(sharp_view(W, H), "disc", sigma)
    return noisy(gray_bgr(view), rng, 2.0)


def make(model: FusionModel, cnn: FakeCnn | None = None, path: Path | None = None, **kwargs: object) -> FusionDetector:
    return FusionDetector(cnn or FakeCnn(), FusionBaselines("cam", path), "b_0.75", model, **kwargs)  # type: ignore[arg-type]


def learn_day(detector: FusionDetector, rng: np.random.Generator) -> None:
    for _ in range(LEARN_FRAMES):
        detector.verdict(sharp(rng))
    assert detector.baselines.get("day") is not None


def test_first_frames_are_learning(model: FusionModel, rng: np.random.Generator) -> None:
    detector = make(model)
    assert not detector.has_history()
    for i in range(LEARN_FRAMES):
        verdict = detector.verdict(sharp(rng))
        assert not verdict.blurry
        assert detector.figures == {"regime": "day", "p_defocus": None, "basis": "learning", "cnn_age_s": 0.0}
        assert verdict.cls == "sharp" and verdict.probabilities == cnn_probabilities("sharp")
        assert (detector.baselines.get("day") is None) == (i < LEARN_FRAMES - 1)
    assert detector.has_history()
    detector.verdict(sharp(rng))
    assert detector.figures["basis"] == "fusion"


def test_cnn_blurry_while_learning_votes_blurry_and_is_not_learnt(model: FusionModel, rng: np.random.Generator) -> None:
    cnn = FakeCnn(blurry=True)
    detector = make(model, cnn)
    for _ in range(LEARN_FRAMES + 2):
        verdict = detector.verdict(sharp(rng))
        assert verdict.blurry and verdict.cls == "b_3"
        assert detector.figures["basis"] == "cnn_only" and detector.figures["p_defocus"] is None
        assert verdict.score == pytest.approx(cnn.verdict(sharp(rng)).score)
    assert not detector.has_history()
    cnn.blurry = False  # the CNN's blurry frames were not learnt: 5 new frames are needed
    for i in range(LEARN_FRAMES):
        assert not detector.verdict(sharp(rng)).blurry
        assert detector.figures["basis"] == "learning"
        assert detector.has_history() == (i == LEARN_FRAMES - 1)


def test_without_learning_and_baseline_the_cnn_decides(model: FusionModel, rng: np.random.Generator) -> None:
    allowed = [False]
    cnn = FakeCnn()
    detector = make(model, cnn, learning_allowed=lambda: allowed[0])
    for blurry in (False, True, False, True) * 2:
        cnn.blurry = blurry
        assert detector.verdict(sharp(rng)).blurry is blurry
        assert detector.figures["basis"] == "cnn_only"
    assert not detector.has_history() and not detector.baselines._pending  # nothing learnt meanwhile
    allowed[0] = True
    cnn.blurry = False
    learn_day(detector, rng)


def test_after_learning_figures_and_verdicts(model: FusionModel, rng: np.random.Generator) -> None:
    cnn = FakeCnn()
    detector = make(model, cnn)
    learn_day(detector, rng)
    verdict = detector.verdict(sharp(rng))
    figures = detector.figures
    assert figures["basis"] == "fusion" and figures["regime"] == "day" and figures["scene_change"] is False
    assert isinstance(figures["p_defocus"], float) and figures["p_defocus"] < 0.2
    assert figures["structure"] > 0.95 and figures["sharpness_ratio"] == pytest.approx(1.0, abs=0.05)
    assert figures["changed_tiles"] == 0.0
    assert not verdict.blurry and verdict.score == pytest.approx(figures["p_defocus"], abs=1e-4)

    cnn.blurry = True  # after learning the CNN is one witness, not the judge (this model ignores it)
    assert not detector.verdict(sharp(rng)).blurry
    cnn.blurry = False
    verdict = detector.verdict(defocused(rng))
    assert verdict.blurry and detector.figures["p_defocus"] > 0.9 and detector.figures["basis"] == "fusion"
    assert detector.figures["sharpness_ratio"] < 0.6 and detector.figures["scene_change"] is False

    detector.verdict(nuisances.apply("ptz_move", sharp(rng), rng, 0.8))
    assert detector.figures["scene_change"] is True and detector.figures["structure"] < 0.5


def test_threshold_override(model: FusionModel, rng: np.random.Generator) -> None:
    detector = make(model)
    learn_day(detector, rng)
    detector.verdict(defocused(rng, 1.5))
    p = detector.figures["p_defocus"]
    assert 0.5 < p < 0.999
    strict = make(model, threshold=min(1.0, p + 0.0005))
    strict.baselines.profiles = dict(detector.baselines.profiles)
    frame = defocused(np.random.default_rng(99), 1.5)
    assert detector.verdict(frame).blurry
    assert not strict.verdict(frame).blurry
    assert strict.probability("day", evidence.features(evidence.profile(frame), strict.baselines.profiles["day"]))[1] == (
        strict.threshold
    )


def test_baseline_follows_only_in_focus_frames(model: FusionModel, rng: np.random.Generator) -> None:
    allowed = [True]
    detector = make(model, learning_allowed=lambda: allowed[0])
    learn_day(detector, rng)
    first = detector.baselines.get("day")
    detector.verdict(defocused(rng))  # P high: not learnt
    assert detector.baselines.get("day") is first
    detector.verdict(nuisances.apply("ptz_move", sharp(rng), rng, 0.8))  # another view: not learnt
    assert detector.baselines.get("day") is first
    allowed[0] = False
    detector.verdict(sharp(rng))  # focus lost: nothing learnt
    assert detector.baselines.get("day") is first
    allowed[0] = True
    detector.verdict(sharp(rng))  # in focus, same view: a running-mean step
    assert detector.baselines.get("day") is not first


def test_request_reset_forgets_the_baselines(model: FusionModel, rng: np.random.Generator) -> None:
    detector = make(model)
    learn_day(detector, rng)
    for _ in range(LEARN_FRAMES):
        detector.verdict(ir(rng))
    assert set(detector.baselines.profiles) == {"day", "ir"}
    detector.request_reset("refocus_done")
    assert detector.has_history()  # applied at the next analysis, in the detector's thread
    assert not detector.verdict(defocused(rng)).blurry  # a new normal is being learnt
    assert detector.figures["basis"] == "learning"
    assert detector.baselines.profiles == {} and not detector.has_history()
    for _ in range(LEARN_FRAMES - 1):
        detector.verdict(defocused(rng))
    assert detector.baselines.get("day") is not None
    assert not detector.verdict(defocused(rng)).blurry  # the (defocused) view is the normal now


def test_baselines_persist_and_reload(model: FusionModel, rng: np.random.Generator, tmp_path: Path) -> None:
    path = fusion_baseline_path(tmp_path, "cam")
    assert path == tmp_path / "baseline" / "cam.fusion.json"
    detector = make(model, path=path)
    for _ in range(LEARN_FRAMES - 1):
        detector.verdict(sharp(rng))
    assert not path.exists()  # pending frames are not saved
    detector.verdict(sharp(rng))
    assert path.is_file() and not path.with_name(path.name + ".tmp").exists()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["camera"] == "cam" and set(data["regimes"]) == {"day"}

    reloaded = FusionBaselines("cam", path)
    assert set(reloaded.profiles) == {"day"} and reloaded.has_any()
    frame = defocused(rng, 1.0)
    now = evidence.profile(frame, detector.baselines.get("day").cnn)  # type: ignore[union-attr]
    np.testing.assert_allclose(evidence.features(now, reloaded.get("day")),  # type: ignore[arg-type]
                               evidence.features(now, detector.baselines.get("day")), atol=2e-3)  # type: ignore[arg-type]
    second = FusionDetector(FakeCnn(), reloaded, "b_0.75", model)
    assert second.has_history()
    second.verdict(sharp(rng))
    assert second.figures["basis"] == "fusion"  # no learning after a restart

    second.request_reset()
    second.verdict(sharp(rng))
    assert json.loads(path.read_text(encoding="utf-8"))["regimes"] == {}  # the reset is saved


def test_running_mean_is_saved_at_intervals(model: FusionModel, rng: np.random.Generator, tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "b.json"
    baselines = FusionBaselines("cam", path, clock)
    detector = FusionDetector(FakeCnn(), baselines, "b_0.75", model)
    learn_day(detector, rng)
    saved = path.read_text(encoding="utf-8")
    clock.advance(1.0)
    detector.verdict(sharp(rng))  # blended, but not saved yet
    assert path.read_text(encoding="utf-8") == saved
    clock.advance(SAVE_INTERVAL_S)
    detector.verdict(sharp(rng))
    assert path.read_text(encoding="utf-8") != saved


def test_unreadable_baseline_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("{broken", encoding="utf-8")
    assert FusionBaselines("cam", path).profiles == {}
    path.write_text(json.dumps({"version": 1, "regimes": {"day": {"tile_std": [[1.0]]}}}), encoding="utf-8")
    assert FusionBaselines("cam", path).profiles == {}


def test_regime_switch_learns_its_own_baseline(model: FusionModel, rng: np.random.Generator) -> None:
    cnn = FakeCnn()
    detector = make(model, cnn)
    learn_day(detector, rng)
    day = detector.baselines.get("day")
    cnn.blurry = True  # the CNN calls IR frames blurry: at night that does not stop learning
    for i in range(LEARN_FRAMES):
        verdict = detector.verdict(ir(rng))
        assert not verdict.blurry, i
        assert detector.figures == {"regime": "ir", "p_defocus": None, "basis": "learning", "cnn_age_s": 0.0}
    assert detector.baselines.get("ir") is not None
    assert detector.baselines.get("day") is day
    cnn.blurry = False
    assert not detector.verdict(ir(rng)).blurry
    assert detector.figures["basis"] == "fusion" and detector.figures["regime"] == "ir"
    assert detector.figures["p_defocus"] < 0.2
    assert detector.verdict(ir(rng, sigma=4.0)).blurry  # defocus at night, against the night baseline
    detector.verdict(sharp(rng))  # back to day: judged at once against the day baseline
    assert detector.figures["basis"] == "fusion" and detector.figures["regime"] == "day"
    assert detector.figures["p_defocus"] < 0.2


def test_missing_boundary_fails_at_construction(model: FusionModel) -> None:
    with pytest.raises(KeyError, match="b_5"):
        FusionDetector(FakeCnn(), FusionBaselines("cam"), "b_5", model)


def test_for_camera(model: FusionModel, tmp_path: Path, rng: np.random.Generator) -> None:
    camera = SimpleNamespace(name="gate", blurry_from="b_0.75", preprocess="resize", fusion_threshold=0.8)
    detector = fusion.for_camera(camera, SharpClassifier(), tmp_path, model=model)
    assert detector.name == "fusion" and detector.blurry_from == "b_0.75" and detector.threshold == 0.8
    assert detector.baselines.path == tmp_path / "baseline" / "gate.fusion.json"
    assert detector.cnn.name == "cnn"
    verdict = detector.verdict(sharp(rng))  # the real CNN detector over the fake classifier
    assert set(verdict.probabilities) == set(cnn_probabilities("sharp"))
    assert fusion.for_camera(camera, SharpClassifier(), None, model=model).baselines.path is None
