"""The fusion cascade (focusguard.analysis.fusion): skipping the CNN never changes a verdict.

* the model's bounds over the CNN features contain every probability a CNN answer can give;
* replays: the same frame sequences (start-up, in-focus frames with sensor noise, nuisances, lens
  defocus of growing size, back in focus) through the default detector twice, the CNN on every
  analysis (`cnn_refresh_s: 0`) and the shipped cascade, with the shipped model in the real
  interpreter: verdict, basis and learning identical frame by frame, and the cascade ran the CNN
  on fewer frames. Scenes: the test fixture, and where ../shared/data is present (CI) the shared
  cameras' in-focus frames and the real_defocus scenes (each judged against its own sharp shot).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from focusguard.analysis import evidence, fusion
from focusguard.analysis.fusion_model import Boundary, Logistic, shipped
from focusguard.analysis.infer import Classifier, default_model_path
from models.synth import nuisances, psf
from tests.support.scenarios import FakeCnn, noisy, sharpness_model
from tests.unit.conftest import FakeClock

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
FIXTURE = REPO / "tests" / "fixtures" / "sharp_scene.jpg"
SIZE = (960, 540)  # replay frames: big enough for the evidence grid, small enough for CI
NUISANCES = ("ir_switch", "headlights", "truck", "rain", "exposure", "fog")
DEFOCUS = (("gaussian", 0.75), ("disc", 1.0), ("gaussian", 2.0), ("disc", 3.0), ("ring", 5.0))


def test_tree_bounds_contain_every_answer_the_cnn_can_give() -> None:
    model = shipped()
    rng = np.random.default_rng(1)
    cnn_p, cnn_shift = evidence.FEATURES.index("cnn_p"), evidence.FEATURES.index("cnn_shift")
    for group, blurry_from in itertools.product(("day", "night"), ("b_0.75", "b_2")):
        boundary = model.boundary("day" if group == "day" else "ir", blurry_from)
        for _ in range(20):
            x = rng.normal(0, 0.4, len(evidence.FEATURES))
            usual = float(rng.uniform(0, 3))
            free = {cnn_p: (0.0, 1.0), cnn_shift: (-usual, 8 - usual)}
            lo, hi = boundary.probability_bounds(x, free)
            assert lo <= hi
            probs = []
            for p, shift in itertools.product(np.linspace(0, 1, 11), np.linspace(-usual, 8 - usual, 17)):
                x[cnn_p], x[cnn_shift] = p, shift
                probs.append(boundary.probability(x))
            assert lo - 1e-12 <= min(probs) and max(probs) <= hi + 1e-12
            # a tree bound is exact per tree: with the CNN features fixed it is the probability itself
            x[cnn_p], x[cnn_shift] = 0.3, 0.0
            assert boundary.probability_bounds(x, {}) == pytest.approx((boundary.probability(x),) * 2)


def test_logistic_bounds_are_the_extremes_of_the_line() -> None:
    n = len(evidence.FEATURES)
    coef = np.zeros(n)
    coef[0], coef[1] = 2.0, -1.0
    b = Boundary(Logistic(np.zeros(n), np.ones(n), coef, 0.5), 0.5)
    x = np.zeros(n)
    lo, hi = b.probability_bounds(x, {0: (-1.0, 1.0), 1: (0.0, 2.0)})
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert (lo, hi) == pytest.approx((sig(0.5 - 2 - 2), sig(0.5 + 2)))


def test_the_cnn_is_skipped_on_settled_frames_and_refreshed_on_time() -> None:
    """A sharp camera after its learning: the CNN runs on the learning frames and then only every
    `cnn_refresh_s`; the state says how old the class is."""
    clock = FakeClock()
    cnn = FakeCnn()
    detector = fusion.FusionDetector(cnn, fusion.FusionBaselines("a", None, clock),
                                     model=fusion.FusionModel(sharpness_model()), cnn_refresh_s=30.0, clock=clock)
    rng = np.random.default_rng(0)
    view = cv2.resize(cv2.imread(str(FIXTURE)), SIZE, interpolation=cv2.INTER_AREA)
    for _ in range(fusion.LEARN_FRAMES):
        clock.advance(1.0)
        detector.verdict(noisy(view, rng))
    assert detector.cnn_runs == fusion.LEARN_FRAMES and detector.cnn_skips == 0
    ages = []
    for _ in range(40):
        clock.advance(1.0)
        assert not detector.verdict(noisy(view, rng)).blurry
        ages.append(detector.figures["cnn_age_s"])
    assert detector.cnn_runs == fusion.LEARN_FRAMES + 1  # one refresh, 30 s after the last learning frame
    assert ages[:3] == [1.0, 2.0, 3.0] and ages[29] == 0.0 and max(ages) == 29.0
    blurred = psf.defocus(view, "disc", 4.0, rng)
    clock.advance(1.0)
    assert detector.verdict(blurred).blurry
    assert detector.figures["cnn_age_s"] == 0.0  # evidence of defocus: the CNN had its say


def _scaled(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA)


def synthetic_sequence(view: npt.NDArray[np.uint8], seed: int) -> Iterator[npt.NDArray[np.uint8]]:
    """Start-up, in focus, nuisances, lens defocus of growing size, in focus again."""
    rng = np.random.default_rng(seed)
    for _ in range(fusion.LEARN_FRAMES + 6):
        yield noisy(view, rng)
    for name in NUISANCES:
        yield nuisances.apply(name, view, rng)
    for kind, sigma in DEFOCUS:
        yield noisy(psf.defocus(view, kind, sigma, rng), rng)
    for _ in range(4):
        yield noisy(view, rng)


def pair_sequence(sharp: npt.NDArray[np.uint8], judged: list[npt.NDArray[np.uint8]],
                  seed: int) -> Iterator[npt.NDArray[np.uint8]]:
    """A real-defocus scene as `focusguard eval` judges it: its sharp shot is the start-up."""
    rng = np.random.default_rng(seed)
    for _ in range(fusion.LEARN_FRAMES + 2):
        yield noisy(sharp, rng)
    yield from judged
    yield noisy(sharp, rng)


def replay(frames: list[npt.NDArray[np.uint8]], classifier: Classifier, refresh_s: float
           ) -> tuple[list[tuple[bool, str]], fusion.FusionDetector]:
    clock = FakeClock()
    camera = SimpleNamespace(name="replay", blurry_from="b_0.75", preprocess="resize", fusion_threshold=None,
                             cnn_refresh_s=refresh_s)  # fmt: skip
    detector = fusion.for_camera(camera, classifier, None, clock=clock)
    out = []
    for frame in frames:
        clock.advance(1.0)
        verdict = detector.verdict(frame)
        out.append((verdict.blurry, detector.figures["basis"]))
    return out, detector


def scenes() -> Iterator[tuple[str, list[npt.NDArray[np.uint8]]]]:
    yield "fixture", list(synthetic_sequence(_scaled(cv2.imread(str(FIXTURE))), 0))
    if not SHARED.is_dir():
        return
    for i, camera in enumerate(sorted((SHARED / "sharp" / "cctv").iterdir())[:8]):
        first = sorted(camera.glob("*.jpg"))[0]
        yield f"cctv/{camera.name}", list(synthetic_sequence(_scaled(cv2.imread(str(first))), 10 + i))
    pairs = SHARED / "real_defocus" / "pairs"
    for i, sharp in enumerate(sorted(pairs.glob("*_S.*"))):
        defocused = next(pairs.glob(sharp.name.replace("_S.", "_F.")))
        yield f"pairs/{sharp.stem}", list(pair_sequence(_scaled(cv2.imread(str(sharp))),
                                                        [_scaled(cv2.imread(str(defocused)))], 30 + i))
    sweep = sorted((SHARED / "real_defocus" / "focus_sweep_pcb").glob("*.JPG"))
    if sweep:
        frames = [_scaled(cv2.imread(str(p))) for p in sweep]
        yield "focus_sweep_pcb", list(pair_sequence(frames[3], frames[:3] + frames[4:], 40))


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(default_model_path(), device="cpu", threads=2)


def test_the_cascade_gives_the_verdicts_of_always_running_the_cnn(classifier: Classifier) -> None:
    judged = skipped = blurry = 0
    for name, frames in scenes():
        always, reference = replay(frames, classifier, refresh_s=0.0)
        cascade, detector = replay(frames, classifier, refresh_s=fusion.CNN_REFRESH_S)
        assert reference.cnn_skips == 0
        for i, (a, c) in enumerate(zip(always, cascade, strict=True)):
            assert a == c, f"{name} frame {i}: always-CNN {a}, cascade {c}"
        judged += sum(basis == "fusion" for _, basis in always)
        blurry += sum(b for b, _ in always)
        skipped += detector.cnn_skips
    assert blurry > 0, "the replays must include frames the fusion calls blurry"
    # the cascade earns its keep: most judged frames are settled without the CNN
    assert skipped >= 0.4 * judged, f"CNN skipped on {skipped} of {judged} judged frames"
