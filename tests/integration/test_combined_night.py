"""`detector: combined` with the real daemon, RTSP server and mosquitto: a day → IR night
switch (grayscale, lower exposure, sensor noise) with the focus unchanged raises no
focus_lost; the night regime learns its own baseline, which the retained state reports.
A defocus at night raises focus_lost by the night rule (the sharpness drop alone: the
shipped CNN calls these noisy frames sharp)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import clips

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def day_night_clip(clip_dir: Path, photo: np.ndarray) -> Path:
    """1280x720, GOP 25 at 25 fps, 20 s looped: 6 s day, 14 s IR night (gray, 45%, noise 4), in focus."""
    segments = [
        clips.Segment("sharp", 6),
        clips.Segment("night", 14, level=0.45, noise=4.0),
    ]
    return clips.make_clip(clip_dir / "day_night.mp4", photo, segments, gop=25)


@pytest.fixture(scope="session")
def night_defocus_clip(clip_dir: Path, photo: np.ndarray) -> Path:
    """1280x720, GOP 25 at 25 fps, 30 s looped: 6 s day, 10 s IR night in focus (gray, 45%,
    noise 4), 14 s the same night defocused (sigma 7 at 1080p)."""
    segments = [
        clips.Segment("sharp", 6),
        clips.Segment("night", 10, level=0.45, noise=4.0),
        clips.Segment("night", 14, level=0.45, noise=4.0, defocus=7.0),
    ]
    return clips.make_clip(clip_dir / "night_defocus.mp4", photo, segments, gop=25)


def watch(collector, prefix, daemon_factory, rtsp_factory, camera: str, clip: Path):
    """Serve `clip`, run the daemon with `detector: combined` on it, wait until it is online."""
    srv = rtsp_factory({f"/{camera}": clip})
    d = daemon_factory({camera: {"url": srv.url(f"/{camera}"), "detector": "combined"}})
    state_topic = f"{prefix}/{camera}/state"
    collector.wait_topic(state_topic, lambda m: m.json()["stream"] == "online", 30.0)
    return d, state_topic


def focus_event(m) -> bool:
    return m.topic.endswith("/events") and m.json()["type"].startswith("focus_")


def judged_states(collector, state_topic: str) -> tuple[list[dict], list[dict], list[tuple]]:
    """(all states, judged states, (regime, class, basis) per judged state: printed for -rA)."""
    states = [m.json() for m in collector.messages(state_topic)]
    judged = [s for s in states if s.get("analysis") == "ok" and "regime" in s]
    seen = [(s["regime"], s["class"], s["basis"]) for s in judged]
    print("seen:", {k: seen.count(k) for k in dict.fromkeys(seen)})
    return states, judged, seen


def test_day_to_ir_night_raises_no_focus_lost_with_combined(
    broker, collector, prefix, daemon_factory, rtsp_factory, day_night_clip
):
    d, state_topic = watch(collector, prefix, daemon_factory, rtsp_factory, "park", day_night_clip)
    # 26 s: day → night, night → day (the loop) and day → night again with both baselines.
    with pytest.raises(TimeoutError):
        ev = collector.wait_for(focus_event, 26.0)
        pytest.fail(f"unexpected {ev!r}\n{collector.summary()}")
    d.assert_running()
    states, judged, _seen = judged_states(collector, state_topic)
    assert all(s["focus"] != "lost" for s in states)
    assert states[-1]["focus"] == "ok", states[-1]
    regimes = {s["regime"] for s in judged}
    assert {"day", "ir"} <= regimes, regimes
    night = [s for s in judged if s["regime"] == "ir" and s["baseline"] is not None]
    assert night, "the IR regime never got its baseline"
    assert all(s["sharpness"] > 0 for s in night)
    print(
        "ir sharpness/baseline:", [(s["sharpness"], s["baseline"]) for s in night][:8]
    )
    baseline_file = Path(d.config).parent / "state" / "baseline" / "park.json"
    assert baseline_file.is_file()


def test_defocus_at_ir_night_raises_focus_lost_with_combined(
    broker, collector, prefix, daemon_factory, rtsp_factory, night_defocus_clip
):
    # One analysis a second (interval_s 1): the day learns in 5 s, the IR night learns in its
    # first 5 s and is judged in focus for ~5 s, then the defocus needs 6 of the last 8
    # analyses: focus_lost ~6 s into it, ~22 s into the clip, well before the loop (30 s).
    d, state_topic = watch(collector, prefix, daemon_factory, rtsp_factory, "yard", night_defocus_clip)
    ev = collector.wait_for(focus_event, 40.0, what="focus_lost").json()
    d.assert_running()
    _states, judged, seen = judged_states(collector, state_topic)
    print("event:", ev)
    assert ev["type"] == "focus_lost", (ev, collector.summary())
    assert (ev["regime"], ev["basis"]) == ("ir", "sharpness_night"), ev
    assert ev["sharpness"] < 0.7 * ev["baseline"], ev
    # The IR baseline was learnt in the in-focus night, which the night rule then judged in focus.
    in_focus_night = [
        s
        for s in judged
        if s["basis"] == "sharpness_night" and s["sharpness"] >= 0.7 * s["baseline"]
    ]
    assert in_focus_night, seen
    assert ("ir", "learning") in {(r, b) for r, _c, b in seen}, seen
    assert ("day", "learning") in {(r, b) for r, _c, b in seen}, seen
