"""Site fine-tuning pipeline (models/training/finetune_site.py): the parts that need no TensorFlow
(frame discovery, time split, rendering, the head's maths and the sharp-class bias), plus the
int8 -> float rebuild when TensorFlow is installed (the `train` extra)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.training import finetune_site as ft


def _write_frames(folder: Path, camera: str, count: int, size: tuple[int, int] = (96, 64)) -> list[Path]:
    rng = np.random.default_rng(len(camera))
    paths = []
    for i in range(count):
        path = folder / camera / f"2026112{i}T000000Z.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        paths.append(path)
    return paths


def test_site_frames_reads_collect_manifest(tmp_path: Path) -> None:
    paths = _write_frames(tmp_path, "gate", 3)
    (tmp_path / "manifest.csv").write_text(
        "file,camera,time,regime,p_sharp,width,height\n"
        + "".join(f"gate/{p.name},gate,t,day,0.99,96,64\n" for p in reversed(paths))
        + "gate/missing.jpg,gate,t,day,0.99,96,64\n"
    )
    frames = ft.site_frames(tmp_path)
    assert [f.path for f in frames] == paths  # sorted by time, missing files skipped
    assert {f.camera for f in frames} == {"gate"}


def test_site_frames_without_manifest_uses_folders(tmp_path: Path) -> None:
    _write_frames(tmp_path, "a", 2)
    _write_frames(tmp_path, "b", 1)
    assert [f.camera for f in ft.site_frames(tmp_path)] == ["a", "a", "b"]


def test_empty_site_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no frames found"):
        ft.site_frames(tmp_path)


def test_split_by_time_holds_out_the_latest_frames_per_camera(tmp_path: Path) -> None:
    _write_frames(tmp_path, "a", 10)
    _write_frames(tmp_path, "b", 1)
    train, held = ft.split_by_time(ft.site_frames(tmp_path), 0.3)
    assert [f.path.name for f in held] == [f"2026112{i}T000000Z.jpg" for i in (7, 8, 9)]
    assert len(train) == 8  # 7 of a + the single frame of b (never held out)
    assert max(f.path.name for f in train if f.camera == "a") < min(f.path.name for f in held)


def test_render_samples_gives_all_nine_classes_at_model_size(tmp_path: Path) -> None:
    _write_frames(tmp_path, "a", 1, size=(320, 180))
    images, labels = ft.render_samples(ft.site_frames(tmp_path), variants=2, seed=0, desc="test")
    assert images.shape == (18, 448, 448, 3) and images.dtype == np.uint8
    assert labels.tolist() == list(range(9)) * 2


def test_sharp_bias_holds_the_false_alarm_target() -> None:
    labels = np.array([0, 1, 2, 5, 8])
    probs = np.full((5, 9), 0.01)
    probs[[0, 1], 5] = 0.9  # two sharp samples called blurry: 100% false alarms
    probs[[2, 3, 4], 8] = 0.9
    probs /= probs.sum(1, keepdims=True)
    bias = ft.sharp_bias_for(probs, labels, target_far=0.0)
    shifted = np.log(probs) + np.r_[bias, bias, np.zeros(7)]
    assert (shifted[labels < 2].argmax(1) < 2).all()
    assert 4.0 < bias < 4.6  # log(0.9/0.01) = 4.5: just enough, not more
    assert ft.sharp_bias_for(probs, labels, target_far=1.0) == -4.0  # no constraint: the smallest


def test_head_probs_is_the_thesis_head() -> None:
    rng = np.random.default_rng(0)
    head = [rng.normal(size=(44, 64)), rng.normal(size=64), rng.normal(size=(64, 9)), rng.normal(size=9)]
    x = rng.normal(size=(3, 44))
    hidden = np.maximum(x @ head[0] + head[1], 0)
    logits = hidden @ head[2] + head[3]
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(ft.head_probs(head, x), expected, rtol=1e-6)


def test_rebuilt_float_model_matches_the_shipped_int8_model() -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf_keras")
    from models.training import from_tflite

    photo = cv2.imread(str(Path(__file__).resolve().parents[1] / "fixtures" / "sharp_scene.jpg"))
    rgb = cv2.cvtColor(cv2.resize(photo, (448, 448)), cv2.COLOR_BGR2RGB)
    blurred = cv2.GaussianBlur(rgb, (0, 0), 3)
    result = from_tflite.check(from_tflite.SHIPPED, np.stack([rgb, blurred]))
    assert result["argmax_agree"] == 2 and result["max_prob_diff"] < 0.2
    model = from_tflite.model_from_tflite()
    channels = from_tflite.structured_channels(model)
    assert len(channels) == 44
    head = from_tflite.head_from_model(model, channels)
    from_tflite.fold_head(model, channels, head)  # folding the read-back head is the identity
    np.testing.assert_allclose(from_tflite.head_from_model(model, channels)[0], head[0], rtol=1e-5, atol=1e-7)
