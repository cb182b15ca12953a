"""Per-camera baseline: lighting regimes, the tile sharpness measure, learning, persistence, reset, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from focusguard.analysis import baseline, quality
from focusguard.analysis.baseline import (
    LEARN_FRAMES,
    BaselineStore,
    baseline_path,
    lighting_regime,
    tile_sharpness,
)
from focusguard.commands.cli import main
from tests.unit.conftest import FakeClock


def scene(seed: int = 1, size: tuple[int, int] = (360, 640)) -> np.ndarray:
    """A colourful, detailed BGR picture: random blobs at several scales."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = np.zeros((h, w, 3), np.float32)
    for cells in (8, 40, 160, w):
        small = rng.uniform(0, 255, (max(1, cells * h // w), cells, 3)).astype(
            np.float32
        )
        image += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / 4
    return np.clip(image, 0, 255).astype(np.uint8)


def gray_bgr(
    image: np.ndarray, gain: float = 1.0, offset: float = 0.0, noise: float = 0.0
) -> np.ndarray:
    g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) * gain + offset
    g += (
        np.random.default_rng(7).normal(0, noise, g.shape).astype(np.float32)
        if noise
        else 0
    )
    return cv2.cvtColor(np.clip(g, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize(
    ("make", "regime"),
    [
        (lambda: scene(), "day"),
        (lambda: cv2.convertScaleAbs(scene(), alpha=0.25), "low_light"),
        (lambda: gray_bgr(scene()), "ir"),
        (lambda: gray_bgr(scene(), gain=0.4, noise=4), "ir"),
        (lambda: cv2.cvtColor(scene(), cv2.COLOR_BGR2GRAY), "ir"),
    ],
    ids=["day", "low-light", "ir", "ir-dark-noisy", "single-channel"],
)
def test_lighting_regime(make, regime: str) -> None:
    assert lighting_regime(make()) == regime


def test_sharpness_is_scale_free_and_drops_with_defocus() -> None:
    sharp = tile_sharpness(scene())
    assert sharp.value is not None and sharp.textured == 16
    # A gain/exposure change alone keeps the figure (contrast-normalised).
    darker = tile_sharpness(cv2.convertScaleAbs(scene(), alpha=0.5))
    assert darker.value == pytest.approx(sharp.value, rel=0.1)
    blurred = tile_sharpness(cv2.GaussianBlur(scene(), (0, 0), 2.0))
    assert blurred.value is not None and blurred.value < 0.6 * sharp.value
    # Noisy night frames: one pyramid level keeps defocus visible through the noise.
    night = tile_sharpness(gray_bgr(scene(), 0.4, 8, noise=4), levels=1).value
    night_blur = tile_sharpness(
        gray_bgr(cv2.GaussianBlur(scene(), (0, 0), 4.0), 0.4, 8, noise=4), levels=1
    ).value
    assert night is not None and night_blur is not None and night_blur < 0.6 * night


def test_too_little_detail() -> None:
    flat = np.tile(
        np.linspace(100, 140, 640, dtype=np.uint8)[None, :, None], (360, 1, 3)
    )  # a lit blank wall
    flat[20:70, 20:120] = scene()[20:70, 20:120]  # one small object on a blank wall
    assert tile_sharpness(flat).value is None
    assert quality.unsuitable_reason(quality.screen_view(flat)) == "too little detail"
    assert (
        quality.unsuitable_reason(
            quality.screen_view(np.zeros((360, 640, 3), np.uint8))
        )
        == "too little contrast"
    )
    assert quality.unsuitable_reason(quality.screen_view(scene())) is None
    # Defocus keeps the tiles' contrast: a blurred detailed scene is still judged.
    assert (
        quality.unsuitable_reason(
            quality.screen_view(cv2.GaussianBlur(scene(), (0, 0), 6.0))
        )
        is None
    )


def test_learning_sets_median_then_running_mean(tmp_path: Path) -> None:
    clock = FakeClock()
    store = BaselineStore(
        "gate", tmp_path / "gate.json", clock=clock, wall_clock=lambda: 1.7e9
    )
    values = [1.0, 1.2, 0.8, 5.0, 1.1]
    for i, v in enumerate(values):
        assert store.sharpness("day") is None
        established = store.learn("day", v, {"sharp": 0.9, "b_1": 0.1})
        assert established is (i == LEARN_FRAMES - 1)
    assert store.sharpness("day") == pytest.approx(
        1.1
    )  # the median: one outlier does not matter
    assert (
        store.sharpness("ir") is None and store.sharpness("low_light") is None
    )  # regimes are separate
    store.learn("day", 2.1)
    assert store.sharpness("day") == pytest.approx(1.1 + baseline.ALPHA * 1.0)
    assert store.probabilities("day") == pytest.approx({"sharp": 0.9, "b_1": 0.1})
    store.learn(
        "day", None, {"sharp": 0.3, "b_1": 0.7}
    )  # probabilities: running mean over learning frames
    assert store.probabilities("day")["sharp"] == pytest.approx(0.9 - 0.6 / 7, abs=1e-5)


def test_persistence_atomic_and_throttled(tmp_path: Path) -> None:
    clock = FakeClock()
    path = baseline_path(tmp_path / "state", "gate")
    assert path == tmp_path / "state" / "baseline" / "gate.json"
    store = BaselineStore("gate", path, clock=clock)
    for _ in range(LEARN_FRAMES):
        store.learn("ir", 0.5)
    saved = json.loads(
        path.read_text()
    )  # written as soon as the regime's baseline is set
    assert saved["camera"] == "gate" and saved["regimes"]["ir"][
        "sharpness"
    ] == pytest.approx(0.5)
    assert not list(path.parent.glob("*.tmp"))
    store.learn("ir", 1.5)  # within SAVE_INTERVAL_S: not written yet
    assert json.loads(path.read_text())["regimes"]["ir"]["sharpness"] == pytest.approx(
        0.5
    )
    clock.advance(baseline.SAVE_INTERVAL_S)
    store.learn("ir", 1.5)
    assert json.loads(path.read_text())["regimes"]["ir"]["sharpness"] > 0.5
    # A restart reads it back.
    again = BaselineStore("gate", path, clock=clock)
    assert again.sharpness("ir") == pytest.approx(store.sharpness("ir"))
    assert again.sharpness("day") is None


def test_reset_and_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "b" / "gate.json"
    store = BaselineStore("gate", path)
    for _ in range(LEARN_FRAMES):
        store.learn("day", 1.0)
        store.learn("ir", 2.0)
    store.reset("ir")
    assert store.sharpness("ir") is None and store.sharpness("day") == 1.0
    store.reset()
    assert BaselineStore("gate", path).sharpness("day") is None
    path.write_text("{not json")
    assert (
        BaselineStore("gate", path).sharpness("day") is None
    )  # logged, ignored: learns again


def test_cli_baseline_reset(
    tmp_path: Path, write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    config = write_config(
        f'state_dir: "{state}"\ncameras: {{gate: {{url: "rtsp://h/s", detector: combined}}}}\n'
    )
    store = BaselineStore("gate", baseline_path(state, "gate"))
    for _ in range(LEARN_FRAMES):
        store.learn("day", 1.0)
    assert main(["baseline-reset", "--config", str(config), "gate"]) == 0
    assert "gate: baseline reset" in capsys.readouterr().out
    assert BaselineStore("gate", baseline_path(state, "gate")).sharpness("day") is None
    assert main(["baseline-reset", "--config", str(config), "nope"]) == 2
    assert "cameras.nope: no such camera" in capsys.readouterr().err


def test_cli_baseline_reset_forgets_the_default_fusion_baseline_too(
    tmp_path: Path, write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default detector (fusion) keeps its baselines in <camera>.fusion.json: the CLI
    empties that file as well as combined's <camera>.json."""
    from focusguard.analysis import evidence
    from focusguard.analysis.fusion import LEARN_FRAMES as FUSION_LEARN_FRAMES
    from focusguard.analysis.fusion import FusionBaselines, fusion_baseline_path

    state = tmp_path / "state"
    config = write_config(f'state_dir: "{state}"\ncameras: {{gate: {{url: "rtsp://h/s"}}}}\n')
    fusion_path = fusion_baseline_path(state, "gate")
    assert fusion_path == state / "baseline" / "gate.fusion.json"
    learnt = FusionBaselines("gate", fusion_path)
    for i in range(FUSION_LEARN_FRAMES):
        learnt.learn("day", evidence.profile(scene(seed=i), None, "day"))
    assert FusionBaselines("gate", fusion_path).get("day") is not None  # saved when set
    assert main(["baseline-reset", "--config", str(config), "gate"]) == 0
    assert "gate: baseline reset" in capsys.readouterr().out
    assert not FusionBaselines("gate", fusion_path).has_any()
    assert json.loads(fusion_path.read_text())["regimes"] == {}
    assert BaselineStore("gate", baseline_path(state, "gate")).sharpness("day") is None
    assert baseline_path(state, "gate").is_file()
    # Nothing learnt yet: both files are written all the same.
    fresh = write_config(f'state_dir: "{tmp_path / "fresh"}"\ncameras: {{yard: {{url: "rtsp://h/y"}}}}\n')
    assert main(["baseline-reset", "--config", str(fresh), "yard"]) == 0
    assert "yard: baseline was not learnt yet; reset" in capsys.readouterr().out
    assert fusion_baseline_path(tmp_path / "fresh", "yard").is_file()
    assert baseline_path(tmp_path / "fresh", "yard").is_file()
