"""focusguard.analysis.tamper.TamperWatch: a debounced vote over covered / scene_changed evidence."""

from __future__ import annotations

import pytest

from focusguard.analysis.tamper import TamperWatch


def feed(watch: TamperWatch, evidence: list[str | None]) -> list[str | None]:
    return [watch.observe(e) for e in evidence]  # type: ignore[arg-type]


def test_detected_after_votes_of_window() -> None:
    watch = TamperWatch(window=8, votes=6, clear_votes=6)
    events = feed(watch, ["covered"] * 5)
    assert events == [None] * 5 and not watch.active and watch.reason is None
    assert watch.observe("covered") == "tamper_detected"
    assert watch.active and watch.reason == "covered"
    assert feed(watch, ["covered"] * 10) == [None] * 10  # raised once, not every frame
    assert watch.reason == "covered"


def test_votes_need_not_be_consecutive() -> None:
    watch = TamperWatch(window=8, votes=6, clear_votes=6)
    events = feed(watch, ["scene_changed", None, "scene_changed", "scene_changed", None,
                          "scene_changed", "scene_changed"])  # fmt: skip
    assert events == [None] * 7  # 5 of 7
    assert watch.observe("scene_changed") == "tamper_detected"  # 6 of the last 8
    assert watch.reason == "scene_changed"


def test_votes_outside_the_window_do_not_count() -> None:
    watch = TamperWatch(window=8, votes=6, clear_votes=6)
    # 3 tamper, 5 clean, 3 tamper: never 6 within any 8
    events = feed(watch, ["covered"] * 3 + [None] * 5 + ["covered"] * 3 + [None] * 5 + ["covered"] * 3)
    assert "tamper_detected" not in events and not watch.active


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        (["covered"] * 4 + ["scene_changed"] * 2, "covered"),
        (["scene_changed"] * 4 + ["covered"] * 2, "scene_changed"),
        (["covered", "scene_changed", "scene_changed", "covered", "scene_changed", "scene_changed"], "scene_changed"),
        (["scene_changed", "covered", "covered", None, "covered", "scene_changed", "covered"], "covered"),
    ],
)
def test_most_seen_reason_wins(evidence: list[str | None], reason: str) -> None:
    watch = TamperWatch(window=8, votes=6, clear_votes=6)
    events = feed(watch, evidence)
    assert events[-1] == "tamper_detected" and events.count("tamper_detected") == 1
    assert watch.reason == reason


def test_cleared_after_clear_votes_clean_frames() -> None:
    watch = TamperWatch(window=8, votes=6, clear_votes=6)
    feed(watch, ["covered"] * 8)
    assert watch.active
    assert feed(watch, [None] * 5) == [None] * 5  # 5 clean of 8: still covered
    assert watch.active and watch.reason == "covered"
    assert watch.observe(None) == "tamper_cleared"
    assert not watch.active and watch.reason is None
    assert feed(watch, [None] * 10) == [None] * 10  # cleared once


def test_tamper_evidence_interrupting_the_clearing_delays_it() -> None:
    watch = TamperWatch(window=8, votes=6, clear_votes=6)
    feed(watch, ["covered"] * 8)
    events = feed(watch, [None, None, None, "covered", None, None])  # 5 clean of the last 8
    assert "tamper_cleared" not in events and watch.active
    assert watch.observe(None) == "tamper_cleared"  # 6 clean of the last 8


def test_detect_clear_detect_again() -> None:
    watch = TamperWatch(window=4, votes=3, clear_votes=3)
    events = feed(watch, ["covered"] * 3 + [None] * 3 + ["scene_changed"] * 3)
    assert [e for e in events if e] == ["tamper_detected", "tamper_cleared", "tamper_detected"]
    assert watch.reason == "scene_changed"


@pytest.mark.parametrize(("window", "votes"), [(8, 6), (4, 3), (10, 7), (5, 5), (3, 2)])
def test_short_bursts_never_raise(window: int, votes: int) -> None:
    watch = TamperWatch(window=window, votes=votes, clear_votes=window - votes + 1)
    burst = votes - 1
    for reason in ("covered", "scene_changed"):
        for _ in range(6):  # repeated bursts, each followed by a full clean window
            events = feed(watch, [reason] * burst + [None] * window)
            assert "tamper_detected" not in events
            assert not watch.active


def test_a_burst_of_votes_raises() -> None:
    watch = TamperWatch(window=8, votes=6, clear_votes=6)
    assert "tamper_detected" in feed(watch, [None] * 8 + ["covered"] * 6)


def test_reset_forgets_evidence_but_keeps_state() -> None:
    watch = TamperWatch(window=8, votes=6, clear_votes=6)
    feed(watch, ["covered"] * 5)
    watch.reset()
    assert feed(watch, ["covered"] * 5) == [None] * 5  # the 5 before the reset do not count
    assert not watch.active
    assert watch.observe("covered") == "tamper_detected"
    feed(watch, [None] * 5)  # 5 clean: one short of clearing
    watch.reset()
    assert watch.active and watch.reason == "covered"  # the state survives a reset
    assert feed(watch, [None] * 5) == [None] * 5  # the clean frames before the reset do not count either
    assert watch.active
    assert watch.observe(None) == "tamper_cleared"


def test_votes_equal_to_window() -> None:
    watch = TamperWatch(window=3, votes=3, clear_votes=1)
    assert feed(watch, ["covered", "covered", None, "covered", "covered"]) == [None] * 5
    assert watch.observe("covered") == "tamper_detected"
    assert watch.observe(None) == "tamper_cleared"  # clear_votes 1: one clean frame


def test_defaults() -> None:
    watch = TamperWatch()
    assert (watch.window, watch.votes, watch.clear_votes) == (8, 6, 6)
    assert not watch.active and watch.reason is None


@pytest.mark.parametrize(
    ("window", "votes", "clear_votes"),
    [(8, 0, 6), (8, 9, 6), (8, 6, 0), (8, 6, 9), (0, 0, 0), (8, -1, 6), (4, 5, 5)],
)
def test_bad_parameters_raise(window: int, votes: int, clear_votes: int) -> None:
    with pytest.raises(ValueError, match="between 1 and window"):
        TamperWatch(window=window, votes=votes, clear_votes=clear_votes)
