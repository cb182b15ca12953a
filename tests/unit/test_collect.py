"""`focusguard collect` with a fake clock, fake frame sources and a fake classifier."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from focusguard.analysis.infer import DEFAULT_LABELS
from focusguard.commands import cli
from focusguard.commands.collect import COLUMNS, Collector, timestamp_name
from focusguard.settings.config import parse_config
from tests.unit.conftest import FakeClock, FakeFrameSource


class FakeSource(FakeFrameSource):
    def push(self, p_sharp: float, uniform: bool = False) -> None:
        """A new frame; pixel [0, 0, 0] carries round(100 * p_sharp) for FakeClassifier."""
        self.pushes += 1
        if uniform:
            image = np.full((90, 160, 3), 128, dtype=np.uint8)
        else:
            image = np.random.default_rng(self.pushes).integers(0, 256, (90, 160, 3), dtype=np.uint8)
        image[:8, :8] = round(100 * p_sharp)
        self.show(image)


class FakeClassifier:
    """P(sharp) = 0.6 x p, P(b_0.5) = 0.4 x p, the rest on b_3; p from the frame's corner."""

    labels = DEFAULT_LABELS

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, rgb448: np.ndarray) -> np.ndarray:
        assert rgb448.shape == (448, 448, 3)
        self.calls += 1
        p = float(rgb448[0, 0, 0]) / 100.0
        probs = np.zeros(len(self.labels), dtype=np.float32)
        probs[0], probs[1], probs[5] = 0.6 * p, 0.4 * p, 1.0 - p
        return probs


class Rig:
    def __init__(self, tmp_path: Path, every_s: float = 10.0, min_sharp_prob: float = 0.9) -> None:
        self.clock = FakeClock()
        self.config = parse_config({"cameras": {"a": {"url": "rtsp://h/a"}, "b": {"url": "rtsp://h/b"}}})
        self.sources: dict[str, FakeSource] = {}
        self.classifier = FakeClassifier()
        self.lines: list[str] = []
        self.out = tmp_path / "out"

        def factory(camera):  # type: ignore[no-untyped-def]
            self.sources[camera.name] = FakeSource(self.clock)
            return self.sources[camera.name]

        self.collector = Collector(
            self.config, self.out, self.classifier, every_s=every_s, min_sharp_prob=min_sharp_prob,
            grabber_factory=factory, clock=self.clock, progress=self.lines.append,
        )
        self.collector.open_manifest()

    def manifest(self) -> list[dict[str, str]]:
        self.collector.close_manifest()
        with (self.out / "manifest.csv").open(newline="") as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames or ()) == COLUMNS
            return list(reader)


def test_only_confident_sharp_frames_are_saved(tmp_path: Path) -> None:
    rig = Rig(tmp_path, every_s=0.0)
    src = rig.sources["a"]
    for p, saved in ((0.5, False), (0.89, False), (0.95, True), (1.0, True)):
        src.push(p)
        rig.clock.advance(1.0)
        assert (rig.collector.step("a") is not None) is saved, p
    assert rig.collector.cameras["a"].saved == 2
    assert rig.collector.cameras["a"].skipped_unsure == 2
    assert len(list((rig.out / "a").glob("*.jpg"))) == 2


def test_same_frame_is_not_analysed_twice(tmp_path: Path) -> None:
    rig = Rig(tmp_path, every_s=0.0)
    assert rig.collector.step("a") is None  # no frame yet
    rig.sources["a"].push(1.0)
    assert rig.collector.step("a") is not None
    assert rig.collector.step("a") is None
    assert rig.classifier.calls == 1


def test_spacing_at_most_one_frame_per_every_s(tmp_path: Path) -> None:
    rig = Rig(tmp_path, every_s=10.0)
    src = rig.sources["a"]
    saved_at = []
    for _ in range(30):  # one sharp frame per second for 30 s
        src.push(1.0)
        if rig.collector.step("a") is not None:
            saved_at.append(rig.clock())
        rig.clock.advance(1.0)
    assert saved_at == [1000.0, 1010.0, 1020.0]
    assert rig.classifier.calls == 3  # frames inside the spacing are not even classified
    # Spacing is per camera: b saves right away.
    rig.sources["b"].push(1.0)
    assert rig.collector.step("b") is not None


def test_unsuitable_frames_are_skipped(tmp_path: Path) -> None:
    rig = Rig(tmp_path, every_s=0.0)
    rig.sources["a"].push(1.0, uniform=True)  # confident "sharp" but uniform: no contrast
    assert rig.collector.step("a") is None
    assert rig.classifier.calls == 0
    assert rig.collector.cameras["a"].skipped_unsuitable == 1
    assert not (rig.out / "a").exists()


def test_manifest_contents_match_files(tmp_path: Path) -> None:
    rig = Rig(tmp_path, every_s=0.0)
    for name in ("a", "b"):
        rig.sources[name].push(0.95)
        rig.clock.advance(0.5)
        rig.collector.step(name)
    rows = rig.manifest()
    assert [r["camera"] for r in rows] == ["a", "b"]
    for row in rows:
        path = rig.out / row["file"]
        assert path.parent.name == row["camera"] and path.suffix == ".jpg"
        image = cv2.imread(str(path))
        assert image is not None and image.shape == (90, 160, 3)  # full resolution
        assert (int(row["width"]), int(row["height"])) == (160, 90)
        assert float(row["p_sharp"]) == pytest.approx(0.95, abs=1e-3)
        assert row["regime"] in ("day", "low_light", "ir")
        assert row["time"].startswith("2023-11-14T22:")
    files = sorted(p.relative_to(rig.out).as_posix() for p in rig.out.glob("*/*.jpg"))
    assert files == sorted(r["file"] for r in rows)
    assert rig.lines[-1].startswith("collect: b: 1 saved")


def test_manifest_is_appended_to_not_overwritten(tmp_path: Path) -> None:
    rig = Rig(tmp_path, every_s=0.0)
    rig.sources["a"].push(1.0)
    rig.collector.step("a")
    assert len(rig.manifest()) == 1
    rig2 = Rig(tmp_path, every_s=0.0)
    rig2.clock.advance(5.0)
    rig2.sources["a"].push(1.0)
    rig2.collector.step("a")
    assert len(rig2.manifest()) == 2


def test_run_stops_at_the_deadline_and_stops_grabbers(tmp_path: Path) -> None:
    rig = Rig(tmp_path, every_s=0.0)
    for src in rig.sources.values():
        src.push(1.0)
    counts = rig.collector.run(0.0)
    assert counts == {"a": 0, "b": 0}
    assert all(s.started and s.stopped for s in rig.sources.values())
    assert rig.lines[-1] == "collect: done: a 0 saved, b 0 saved"


def test_run_honours_stop_request(tmp_path: Path) -> None:
    rig = Rig(tmp_path, every_s=0.0)
    rig.collector.request_stop()
    assert rig.collector.run(3600.0) == {"a": 0, "b": 0}
    assert (rig.out / "manifest.csv").read_text().splitlines() == [",".join(COLUMNS)]


def test_timestamp_name_is_utc_and_sortable() -> None:
    assert timestamp_name(1_700_000_000.25) == "20231114T221320.250Z"


@pytest.mark.parametrize(
    ("extra", "key"),
    [(["--minutes", "0"], "--minutes"), (["--minutes", "1", "--per-camera", "0"], "--per-camera"),
     (["--minutes", "1", "--min-sharp-prob", "2"], "--min-sharp-prob")],
)
def test_bad_options_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra, key) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cameras:\n  a:\n    url: rtsp://h/a\n")
    rc = cli.main(["collect", "--config", str(cfg), *extra, str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and key in err[0], err


def test_missing_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["collect", "--config", str(tmp_path / "none.yaml"), "--minutes", "1", str(tmp_path / "o")])
    assert rc == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
