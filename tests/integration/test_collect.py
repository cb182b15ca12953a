"""`focusguard collect` against a real RTSP server serving a sharp clip, with the shipped model."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.support.daemon import focusguard_command, write_config

pytestmark = pytest.mark.integration


def test_collect_saves_sharp_frames_and_manifest(rtsp_factory, sharp_clip: Path, tmp_path: Path) -> None:
    srv = rtsp_factory({"/door": sharp_clip})
    cfg = write_config(
        tmp_path / "fg.yaml", mqtt_port=1883, cameras={"door": {"url": srv.url("/door")}}, state_dir=tmp_path / "state"
    )
    out = tmp_path / "out"
    cmd = [*focusguard_command(sys.executable), "collect", "--config", str(cfg), "--minutes", "0.3", str(out)]
    proc = subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jpgs = sorted(p.relative_to(out).as_posix() for p in out.glob("door/*.jpg"))
    assert jpgs, proc.stderr[-3000:]
    with (out / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["file"] for r in rows) == jpgs
    for row in rows:
        assert row["camera"] == "door" and float(row["p_sharp"]) >= 0.9
        image = cv2.imread(str(out / row["file"]))
        assert image is not None and image.shape[:2] == (int(row["height"]), int(row["width"]))
    assert "collect: door: 1 saved" in proc.stderr
