"""CLI: `check` output and errors, `check-config` summary and model errors, `run` on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from focusguard.analysis.infer import DEFAULT_LABELS
from focusguard.commands.cli import main
from tests.unit.tflite_builder import write_model

WriteConfig = Callable[..., Path]


def class_image(path: Path, index: int) -> Path:
    """A 448x448 image the tiny model classifies as `DEFAULT_LABELS[index]`."""
    bgr = np.full((448, 448, 3), 10, np.uint8)
    bgr[0, index // 3, 2 - index % 3] = 200  # RGB byte `index` of the first row
    cv2.imwrite(str(path), bgr)
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_json(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sharp = class_image(tmp_path / "sharp.png", 0)
    b05 = class_image(tmp_path / "soft.png", 1)
    b3 = class_image(tmp_path / "b3.png", 5)
    code, out, err = run_cli(["check", "--model", str(tiny_model), "--json", str(sharp), str(b05), str(b3)], capsys)
    assert (code, err) == (0, "")
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["path"], r["class"], r["blurry"]) for r in records] == [
        (str(sharp), "sharp", False),
        (str(b05), "b_0.5", False),  # sharp by the default threshold
        (str(b3), "b_3", True),
    ]
    assert list(records[0]) == ["path", "class", "blurry", "probabilities"]
    assert list(records[0]["probabilities"]) == list(DEFAULT_LABELS)
    assert sum(records[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


def test_check_readable_output(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = class_image(tmp_path / "b3.png", 5)
    code, out, _ = run_cli(["check", "--model", str(tiny_model), str(image)], capsys)
    assert code == 0
    assert out.startswith(f"{image}: BLURRY (class b_3, p=")


def test_check_uses_the_config_threshold(
    tmp_path: Path, tiny_model: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    image = class_image(tmp_path / "soft.png", 1)
    config = write_config(
        f"""
        model: {{path: {tiny_model}}}
        defaults: {{blurry_from: b_0.5}}
        cameras:
          strict: {{url: "rtsp://h/a"}}
          lax: {{url: "rtsp://h/b", blurry_from: b_2}}
        """
    )
    _, out, _ = run_cli(["check", "--config", str(config), "--json", str(image)], capsys)
    assert json.loads(out)["blurry"] is True
    _, out, _ = run_cli(["check", "--config", str(config), "--camera", "lax", "--json", str(image)], capsys)
    assert json.loads(out)["blurry"] is False
    code, _, err = run_cli(["check", "--config", str(config), "--camera", "nope", str(image)], capsys)
    assert code == 2 and f"{config}: cameras.nope: no such camera" in err


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "No such file or directory"), (b"", "not a decodable image"), (b"GIF89a garbage", "not a decodable image")],
    ids=["missing", "empty", "garbage"],
)
def test_check_unreadable_image(
    tmp_path: Path, tiny_model: Path, content: bytes | None, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = class_image(tmp_path / "good.png", 0)
    bad = tmp_path / "bad.jpg"
    if content is not None:
        bad.write_bytes(content)
    code, out, err = run_cli(["check", "--model", str(tiny_model), str(good), str(bad)], capsys)
    assert code == 2 and out == ""  # checked before any classification
    (line,) = err.splitlines()
    assert line.startswith(f"focusguard: error: {bad}: cannot read image: ") and problem in line


def test_check_bad_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = class_image(tmp_path / "x.png", 0)
    model = write_model(tmp_path / "small.tflite", side=224)
    code, _, err = run_cli(["check", "--model", str(model), str(image)], capsys)
    assert code == 2
    assert err.splitlines() == [f"focusguard: error: {model}: input shape must be 1x448x448x3, got 1x224x224x3"]


def test_check_config_summary_redacts_secrets(
    tiny_model: Path, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FG_MQTT_PW", "mqtt-secret-1")
    config = write_config(
        f"""
        mqtt: {{host: broker, username: fg, password_env: FG_MQTT_PW}}
        model: {{path: {tiny_model}}}
        cameras:
          gate: {{url: "rtsp://admin:cam-secret-2@10.0.0.5/s?token=tok-secret-3", interval_s: 2}}
        """
    )
    code, out, err = run_cli(["check-config", str(config)], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"config OK: {config}")
    assert "rtsp://admin:***@10.0.0.5/s?token=***" in out
    assert "password *** (env FG_MQTT_PW)" in out
    assert "gate:" in out and "every 2 s" in out
    for secret in ("mqtt-secret-1", "cam-secret-2", "tok-secret-3"):
        assert secret not in out


def test_check_config_summary_names_each_cameras_detector(
    tiny_model: Path, write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    """No `detector:` key: fusion (the default), with its threshold and scene-change policy;
    combined and cnn say theirs."""
    config = write_config(
        f"""
        model: {{path: {tiny_model}}}
        cameras:
          gate: {{url: "rtsp://10.0.0.5/s"}}
          ptz: {{url: "rtsp://10.0.0.6/s", fusion_threshold: 0.7, scene_change: relearn}}
          old: {{url: "rtsp://10.0.0.7/s", detector: combined}}
          bare: {{url: "rtsp://10.0.0.8/s", detector: cnn}}
        """
    )
    code, out, err = run_cli(["check-config", str(config)], capsys)
    assert (code, err) == (0, "")
    lines = {line.split(":", 1)[0].strip(): line for line in out.splitlines() if line.startswith("  ")}
    assert lines["gate"].endswith("detector fusion (resize, threshold model, scene change: tamper)"), lines["gate"]
    assert lines["ptz"].endswith("detector fusion (resize, threshold 0.7, scene change: relearn)"), lines["ptz"]
    assert lines["old"].endswith("detector combined (resize, drop 0.6, night 0.7)"), lines["old"]
    assert lines["bare"].endswith("detector cnn (resize)"), lines["bare"]


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "missing.tflite", "model file not found"),
        (lambda d: (d / "x.tflite").write_text("text") and d / "x.tflite", "not a TFLite model"),
        (lambda d: write_model(d / "w.tflite", side=224), "input shape must be 1x448x448x3"),
        (lambda d: write_model(d / "c.tflite", classes=4), "output shape must be 1x9"),
    ],
    ids=["missing", "not-tflite", "wrong-input", "wrong-classes"],
)
def test_check_config_model_errors(
    tmp_path: Path,
    write_config: WriteConfig,
    make,
    problem: str,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    model = make(tmp_path)
    config = write_config(f"model: {{path: {model}}}\ncameras: {{g: {{url: 'rtsp://h/s'}}}}\n")
    code, out, err = run_cli(["check-config", str(config)], capsys)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"focusguard: error: {config}: model.path: {model}: {problem}")


def test_check_json_via_python_m(tmp_path: Path, tiny_model: Path) -> None:
    image = class_image(tmp_path / "b7.png", 8)
    result = subprocess.run(
        [sys.executable, "-m", "focusguard", "check", "--model", str(tiny_model), "--json", str(image)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # the runtime's native INFO chatter is kept off stderr
    assert json.loads(result.stdout) | {"probabilities": None} == {
        "path": str(image),
        "class": "b_7",
        "blurry": True,
        "probabilities": None,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_stops_cleanly_on_sigterm(tmp_path: Path, tiny_model: Path, write_config: WriteConfig) -> None:
    # No broker on the port and a camera file that does not exist: both are retried, never fatal.
    config = write_config(
        f"""
        mqtt: {{host: 127.0.0.1, port: {_free_port()}}}
        model: {{path: {tiny_model}}}
        state_dir: {tmp_path / "state"}
        cameras:
          gate: {{url: "file://{tmp_path}/missing.mp4"}}
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "focusguard", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "watching 1 camera(s)" in line or not line:
                break
        assert any("watching 1 camera(s)" in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        rest = proc.stderr.read()
    finally:
        proc.kill()
    assert code == 0, rest
    assert "Traceback" not in "".join(lines) + rest
    assert "focusguard stopped" in rest
    assert (tmp_path / "state" / "outbox.sqlite3").exists()
