"""`focusguard eval`: metrics, inputs (folder, manifest, clip labels), scenes, the command end to end."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from focusguard.commands import evaluate as ev
from focusguard.commands.cli import main
from tests.unit.test_detectors import blur, texture


def test_binary_metrics() -> None:
    truth = [True, True, True, True, False, False, False, False, False, False]
    predicted = [True, True, True, False, True, False, False, False, False, False]
    m = ev.binary_metrics(truth, predicted)
    assert (m.tp, m.fp, m.tn, m.fn, m.n) == (3, 1, 5, 1, 10)
    assert m.accuracy == pytest.approx(0.8)
    assert m.recall == pytest.approx(0.75)
    assert m.precision == pytest.approx(0.75)
    assert m.false_alarm_rate == pytest.approx(1 / 6)
    assert m.balanced_accuracy == pytest.approx((0.75 + 5 / 6) / 2)


def test_binary_metrics_undefined_ratios() -> None:
    m = ev.binary_metrics([False, False], [False, False])
    assert (m.recall, m.precision, m.false_alarm_rate, m.balanced_accuracy) == (None, None, 0.0, 1.0)
    with pytest.raises(ValueError):
        ev.binary_metrics([True], [])


def test_clip_labels() -> None:
    ranges = ev.parse_clip_labels("# t0,t1,label\n0,6,sharp\n6.6,13.4,blurry  # ramps excluded\n\n14,22,sharp\n")
    assert ranges == [(0.0, 6.0, False), (6.6, 13.4, True), (14.0, 22.0, False)]
    assert [ev.label_at(ranges, t) for t in (0, 5.9, 6.3, 7, 13.4, 21.9, 22)] == [
        False, False, None, True, None, False, None
    ]  # fmt: skip
    for bad in ("0,1", "1,0,sharp", "0,1,foggy"):
        with pytest.raises(ValueError):
            ev.parse_clip_labels(bad)


def test_scene_of() -> None:
    assert ev.scene_of("sharp/cam1/a.jpg", None) == "cam1"
    assert ev.scene_of("blurry/cam1/b.jpg", None) == "cam1"
    assert ev.scene_of("sharp/a.jpg", None) == ""
    assert ev.scene_of("real_defocus/pairs/106_X_F.JPG", None) == "real_defocus/pairs"
    pattern = re.compile(r"pairs/(\d+)_")
    assert ev.scene_of("real_defocus/pairs/106_X_F.JPG", pattern) == "106"
    assert ev.scene_of("real_defocus/focus_sweep_pcb/x.JPG", pattern) == "real_defocus/focus_sweep_pcb"


def write_folder(root: Path) -> None:
    for cam, seed in (("cam1", 1), ("cam2", 2)):
        (root / "sharp" / cam).mkdir(parents=True)
        (root / "blurry" / cam).mkdir(parents=True)
        cv2.imwrite(str(root / "sharp" / cam / "0_ref.png"), texture(seed=seed))
        cv2.imwrite(str(root / "sharp" / cam / "1.png"), texture(seed=seed))
        cv2.imwrite(str(root / "blurry" / cam / "2.png"), blur(texture(seed=seed), 3.0))


def test_folder_and_manifest_samples(tmp_path: Path) -> None:
    write_folder(tmp_path)
    samples = ev.folder_samples(tmp_path)
    assert [(s.rel, s.blurry) for s in samples][:2] == [("sharp/cam1/0_ref.png", False), ("sharp/cam1/1.png", False)]
    assert sum(s.blurry for s in samples) == 2
    manifest = tmp_path / "MANIFEST.csv"
    manifest.write_text(
        "file,source,label\nsharp/cam1/1.png,x,sharp (slightly soft)\nblurry/cam1/2.png,x,blurry (slight)\n"
        "other.png,x,unknown\n"
    )
    rows = ev.manifest_samples(manifest)
    assert [(s.rel, s.blurry) for s in rows] == [("blurry/cam1/2.png", True), ("sharp/cam1/1.png", False)]
    assert rows[0].path == tmp_path / "blurry/cam1/2.png"
    assert len(ev.manifest_samples(manifest, under="sharp/")) == 1
    with pytest.raises(ValueError):
        ev.folder_samples(tmp_path / "sharp")


def test_eval_folder_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_folder(tmp_path / "data")
    out = tmp_path / "r.json"
    assert main(["eval", str(tmp_path / "data"), "--detector", "dft,laplacian", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| dft | 4 | 100.0 |" in text and "| laplacian | 4 | 100.0 |" in text
    payload = json.loads(out.read_text())
    assert payload["notes"]["references"] == ["sharp/cam1/0_ref.png", "sharp/cam2/0_ref.png"]
    assert [r["detector"] for r in payload["results"]] == ["dft", "laplacian"]
    assert payload["results"][0]["false_alarm_rate"] == 0.0 and payload["results"][0]["recall"] == 1.0


def test_eval_rejects_unknown_detector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_folder(tmp_path / "data")
    assert main(["eval", str(tmp_path / "data"), "--detector", "sobel"]) == 2
    assert "--detector: unknown detector 'sobel'" in capsys.readouterr().err


def write_clip(path: Path, seconds_sharp: float = 3, seconds_blur: float = 3, fps: int = 10) -> None:
    import av

    image = texture(240, 320, seed=4)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"crf": "12", "preset": "ultrafast"}
        total = int((2 * seconds_sharp + seconds_blur) * fps)
        for i in range(total):
            t = i / fps
            frame = blur(image, 3.0) if seconds_sharp <= t < seconds_sharp + seconds_blur else image
            frame = np.roll(frame, i % 3, axis=1)  # not a frozen picture
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_eval_clip_with_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "c.mp4"
    write_clip(clip)
    labels = tmp_path / "c.labels.csv"
    labels.write_text("0,3,sharp\n3,6,blurry\n6,9,sharp\n")
    png = tmp_path / "c.png"
    out = tmp_path / "c.json"
    args = ["eval", str(clip), "--labels", str(labels), "--detector", "dft,laplacian", "--step", "0.5"]
    assert main([*args, "--plot", str(png), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "frames 18" in text and png.stat().st_size > 10_000
    results = {r["detector"]: r for r in json.loads(out.read_text())["results"]}
    assert results["dft"]["recall"] == 1.0 and results["dft"]["false_alarm_rate"] == 0.0
    assert main(["eval", str(clip), "--detector", "dft"]) == 2  # a clip without --labels


def write_reference_scene(root: Path) -> None:
    """One scene `gate` from the sharp fixture photo: a reference view, the view shifted by
    16 x 8 px (sharp), the view defocused (sigma 7 at the 1920 px scale)."""
    photo = cv2.imread(str(Path(__file__).resolve().parents[1] / "fixtures" / "sharp_scene.jpg"))
    view = photo[:720, :1280]
    (root / "sharp" / "gate").mkdir(parents=True)
    (root / "blurry" / "gate").mkdir(parents=True)
    cv2.imwrite(str(root / "sharp" / "gate" / "0_ref.png"), view)
    cv2.imwrite(str(root / "sharp" / "gate" / "1.png"), photo[8:728, 16:1296])
    cv2.imwrite(str(root / "blurry" / "gate" / "2.png"), cv2.GaussianBlur(view, (0, 0), 7.0 * 1280 / 1920))


def test_eval_default_detectors_start_with_the_daemons_default() -> None:
    """`--detector` defaults to every detector, the daemon's default (fusion) first."""
    import argparse

    commands = argparse.ArgumentParser().add_subparsers()
    ev.add_parser(commands)
    args = commands.choices["eval"].parse_args(["data"])
    assert args.detector == "fusion,cnn,dft,laplacian,combined"
    assert ev.detector_specs(args.detector.split(","), ["resize"]) == [
        ("fusion", "fusion"), ("cnn/resize", "cnn"), ("dft", "dft"), ("laplacian", "laplacian"), ("combined", "combined")
    ]  # fmt: skip


def test_eval_fusion_learns_from_the_reference_with_the_shipped_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fusion` (the daemon's default) in eval: its baseline from the scene's reference image,
    the real int8 model and the shipped fusion model; a shifted sharp view passes, a defocused
    one is caught."""
    write_reference_scene(tmp_path)
    out = tmp_path / "r.json"
    assert main(["eval", str(tmp_path), "--detector", "fusion", "--json", str(out)]) == 0
    assert "| fusion | 2 |" in capsys.readouterr().out
    result = json.loads(out.read_text())["results"][0]
    assert result["detector"] == "fusion"
    assert (result["tp"], result["fp"], result["tn"], result["fn"]) == (1, 0, 1, 0), result


def test_eval_combined_learns_from_the_reference_with_the_shipped_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`combined` (the former default, still selectable) in eval: baseline from the scene's
    reference image, the real int8 model; a shifted sharp view passes, a defocused one is caught."""
    write_reference_scene(tmp_path)
    out = tmp_path / "r.json"
    assert main(["eval", str(tmp_path), "--detector", "combined", "--json", str(out)]) == 0
    assert "| combined | 2 |" in capsys.readouterr().out
    result = json.loads(out.read_text())["results"][0]
    assert (result["tp"], result["fp"], result["tn"], result["fn"]) == (1, 0, 1, 0), result
