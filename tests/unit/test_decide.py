"""Debounce and hysteresis, table-driven with a fake clock (one analysis per second)."""

from __future__ import annotations

import numpy as np
import pytest

from focusguard.analysis.decide import FocusDecider, blurry_index, classify_verdict
from focusguard.analysis.infer import DEFAULT_LABELS

LABELS = list(DEFAULT_LABELS)
SHARP, BLURRY = "sharp", "b_3"


def one_hot(label: str) -> np.ndarray:
    probs = np.full(len(LABELS), 0.01, np.float32)
    probs[LABELS.index(label)] = 0.92
    return probs


def run(pattern: str, decider: FocusDecider | None = None, start: float = 0.0) -> tuple[list[tuple[int, str]], str]:
    """Feed 'S'/'B' analyses at 1 s intervals; return [(index, event)] and the final focus."""
    decider = decider or FocusDecider(LABELS)
    events = []
    for i, mark in enumerate(pattern):
        decision = decider.update(one_hot(BLURRY if mark == "B" else SHARP), now=start + i)
        if decision.event:
            events.append((i, decision.event))
    return events, decider.focus


OK8 = "S" * 8  # settles to ok

CASES = [
    # id, pattern, expected events, final focus
    ("sharp-start-is-ok-without-event", "S" * 6, [], "ok"),
    ("unknown-until-window-decides", "S" * 5, [], "unknown"),
    ("mixed-start-stays-unknown", "SBSBSBSB", [], "unknown"),
    ("blurry-start-alarms-within-10", "B" * 10, [(5, "focus_lost")], "lost"),
    ("transient-2s-never-alarms", OK8 + "BB" + "S" * 10, [], "ok"),
    ("transient-3s-never-alarms", OK8 + "BBB" + "S" * 10, [], "ok"),
    ("repeated-transients-never-alarm", OK8 + ("BB" + "SSSS") * 5, [], "ok"),
    ("sustained-blur-alarms-on-6th", OK8 + "B" * 12, [(13, "focus_lost")], "lost"),
    ("alarm-only-once", OK8 + "B" * 30, [(13, "focus_lost")], "lost"),
    ("recovery-needs-6-sharp", OK8 + "B" * 10 + "S" * 6, [(13, "focus_lost"), (23, "focus_restored")], "ok"),
    ("short-sharp-burst-does-not-recover", OK8 + "B" * 10 + "SSS" + "B" * 5, [(13, "focus_lost")], "lost"),
    ("hysteresis-no-flap-at-half", OK8 + "BS" * 20, [], "ok"),
    ("hysteresis-no-flap-when-lost", OK8 + "B" * 8 + "BS" * 20, [(13, "focus_lost")], "lost"),
    ("blur-with-gaps-still-alarms", OK8 + "BBSBBBB", [(14, "focus_lost")], "lost"),
]


@pytest.mark.parametrize(("pattern", "expected", "final"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_debounce_table(pattern: str, expected: list[tuple[int, str]], final: str) -> None:
    events, focus = run(pattern)
    assert events == expected
    assert focus == final


def test_sustained_defocus_reported_within_10_analyses() -> None:
    for onset in range(8, 20):
        events, _ = run("S" * onset + "B" * 10)
        assert events and events[0][1] == "focus_lost"
        assert events[0][0] - onset < 10


def test_sensitivity_moves_the_boundary() -> None:
    mild = np.zeros(len(LABELS), np.float32)
    mild[LABELS.index("b_0.5")] = 1.0
    default = FocusDecider(LABELS)
    sensitive = FocusDecider(LABELS, blurry_from="b_0.5")
    assert default.update(mild, 0).blurry is False  # b_0.5 means sharp by default (thesis 3.1.3)
    assert sensitive.update(mild, 0).blurry is True
    lenient = FocusDecider(LABELS, blurry_from="b_2")
    b1 = np.zeros(len(LABELS), np.float32)
    b1[LABELS.index("b_1")] = 1.0
    assert lenient.update(b1, 0).blurry is False


def test_decision_reports_class_and_verdict() -> None:
    decision = FocusDecider(LABELS).update(one_hot("b_5"), 0)
    assert (decision.cls, decision.blurry, decision.focus, decision.event) == ("b_5", True, "unknown", None)


def test_reset_forgets_votes_but_keeps_focus() -> None:
    decider = FocusDecider(LABELS)
    run(OK8 + "BBBBB", decider)  # 5 blurry: one short of the alarm
    decider.reset()
    events, focus = run("B", decider, start=100)
    assert events == [] and focus == "ok"


def test_long_gap_discards_old_votes() -> None:
    decider = FocusDecider(LABELS, max_gap_s=10)
    run(OK8 + "BBBBB", decider)
    events, _ = run("B", decider, start=12 + 11)  # 11 s after the last vote
    assert events == []


def test_custom_window_and_votes() -> None:
    decider = FocusDecider(LABELS, window=4, lost_votes=3, restore_votes=2)
    events, focus = run("SS" + "BBB" + "SS", decider)
    assert events == [(4, "focus_lost"), (6, "focus_restored")]
    assert focus == "ok"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"blurry_from": "b_9"}, "unknown class"),
        ({"window": 4, "lost_votes": 5}, "between 1 and window"),
        ({"restore_votes": 0}, "between 1 and window"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FocusDecider(LABELS, **kwargs)  # type: ignore[arg-type]


def test_wrong_number_of_probabilities() -> None:
    with pytest.raises(ValueError, match="expected 9"):
        FocusDecider(LABELS).update(np.ones(5), 0)


def test_classify_verdict_and_blurry_index() -> None:
    assert blurry_index(LABELS, "b_0.75") == 2
    assert classify_verdict(LABELS, one_hot("b_0.75"), "b_0.75") == ("b_0.75", True)
    assert classify_verdict(LABELS, one_hot("b_0.5"), "b_0.75") == ("b_0.5", False)
