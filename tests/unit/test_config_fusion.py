"""Config keys of the default detector (fusion): defaults, ranges, choices, the model's classes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from focusguard.common.errors import ConfigError
from focusguard.settings.config import load_config

WriteConfig = Callable[..., Path]


def test_fusion_is_the_default_detector(write_config: WriteConfig) -> None:
    (camera,) = load_config(write_config('cameras: {gate: {url: "rtsp://h/s"}}')).cameras
    assert (camera.detector, camera.fusion_threshold, camera.scene_change) == ("fusion", None, "tamper")


def test_fusion_threshold_and_scene_change_per_camera(write_config: WriteConfig) -> None:
    config = load_config(write_config(
        'defaults: {fusion_threshold: 0.7}\n'
        'cameras: {a: {url: "rtsp://h/a"}, ptz: {url: "rtsp://h/p", scene_change: RELEARN, fusion_threshold: 0.95}}'
    ))  # fmt: skip
    a, ptz = config.cameras
    assert (a.fusion_threshold, a.scene_change) == (0.7, "tamper")
    assert (ptz.fusion_threshold, ptz.scene_change) == (0.95, "relearn")


def test_cnn_refresh_defaults_to_a_minute_and_zero_runs_the_cnn_on_every_analysis(write_config: WriteConfig) -> None:
    config = load_config(write_config('cameras: {a: {url: "rtsp://h/a"}, b: {url: "rtsp://h/b", cnn_refresh_s: 0}}'))
    a, b = config.cameras
    assert (a.cnn_refresh_s, b.cnn_refresh_s) == (60.0, 0.0)


@pytest.mark.parametrize(
    ("snippet", "key", "problem"),
    [
        ("fusion_threshold: 1.5", "cameras.a.fusion_threshold", "between 0.01 and 0.99"),
        ("fusion_threshold: yes", "cameras.a.fusion_threshold", "expected a number"),
        ("scene_change: ignore", "cameras.a.scene_change", "must be one of tamper, relearn"),
        ("cnn_refresh_s: -1", "cameras.a.cnn_refresh_s", "between 0 and 86400"),
        ("detector: fusoin", "cameras.a.detector", "must be one of fusion, cnn"),
    ],
)
def test_bad_fusion_keys_name_file_key_and_problem(write_config: WriteConfig, snippet: str, key: str,
                                                   problem: str) -> None:  # fmt: skip
    path = write_config(f'cameras: {{a: {{url: "rtsp://h/a", {snippet}}}}}')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: {key}: ")
    assert problem in str(err.value)


def test_fusion_needs_a_model_for_blurry_from(write_config: WriteConfig, tmp_path: Path) -> None:
    """A model with other class names than the fusion model knows: one clear error, not a crash at run time."""
    from tests.unit.tflite_builder import write_model

    model = write_model(tmp_path / "other.tflite")
    (tmp_path / "other.labels.txt").write_text("ok\nsoft\na\nb\nc\nd\ne\nf\ng\n")
    path = write_config(f'model: {{path: "{model}"}}\ndefaults: {{blurry_from: soft}}\ncameras: {{a: {{url: "rtsp://h/a"}}}}')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "detector fusion has no model for 'soft'" in str(err.value)
    load_config(write_config(f'model: {{path: "{model}"}}\ndefaults: {{blurry_from: soft, detector: cnn}}\n'
                             'cameras: {a: {url: "rtsp://h/a"}}'))  # fmt: skip
