"""Debounce per-frame verdicts into a focus state: a pure state machine over (probabilities, time).

Owns the binary threshold (`blurry_from`: the first class counted as blurry, the
thesis' sensitivity knob) and the hysteresis: the last `window` analyses vote; the
state becomes `lost` when at least `lost_votes` of them are blurry and `ok` when at
least `restore_votes` are sharp. `lost_votes + restore_votes > window` (checked by the
config) means the two conditions can never hold at once, so the state cannot flap.
The state is `unknown` until the votes first decide. No clock is read here: callers
pass `now`, so tests drive it with a fake clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Focus = Literal["unknown", "ok", "lost"]
FocusEvent = Literal["focus_lost", "focus_restored"]


@dataclass(frozen=True)
class Decision:
    """Outcome of one analysis: the debounced state, the event it raised (if any), the raw verdict."""

    focus: Focus
    event: FocusEvent | None
    cls: str | None  # None for detectors without classes (dft, laplacian)
    blurry: bool


def blurry_index(labels: Sequence[str], blurry_from: str) -> int:
    """Index of the first blurry class; ValueError when `blurry_from` is not a label."""
    try:
        return list(labels).index(blurry_from)
    except ValueError:
        raise ValueError(f"unknown class {blurry_from!r} (classes: {', '.join(labels)})") from None


def classify_verdict(labels: Sequence[str], probs: npt.NDArray[np.floating], blurry_from: str) -> tuple[str, bool]:
    """Top class of `probs` and whether it is at or beyond `blurry_from` (the binary verdict)."""
    top = int(np.argmax(probs))
    return labels[top], top >= blurry_index(labels, blurry_from)


class FocusDecider:
    """Sliding-window vote with hysteresis for one camera."""

    def __init__(
        self,
        labels: Sequence[str],
        blurry_from: str = "b_0.75",
        window: int = 8,
        lost_votes: int = 6,
        restore_votes: int = 6,
        max_gap_s: float | None = None,
    ) -> None:
        if not 1 <= lost_votes <= window or not 1 <= restore_votes <= window:
            raise ValueError("lost_votes and restore_votes must be between 1 and window")
        self.labels = list(labels)
        self.blurry_from = blurry_from
        blurry_index(self.labels, blurry_from)  # validate early: ValueError for an unknown class
        self.window = window
        self.lost_votes = lost_votes
        self.restore_votes = restore_votes
        # Votes separated by a longer silence do not describe one continuous scene.
        self.max_gap_s = max_gap_s
        self._votes: deque[bool] = deque(maxlen=window)
        self._last_update: float | None = None
        self.focus: Focus = "unknown"

    def reset(self) -> None:
        """Forget the votes (e.g. the stream was lost) but keep the focus state."""
        self._votes.clear()
        self._last_update = None

    def forget(self) -> None:
        """The picture cannot be judged any more (a wall, a black night, fog): forget the votes, and
        an `ok` focus becomes `unknown`. A `lost` focus stays lost: an alarm is withdrawn by
        focus_restored, never by the view becoming unjudgeable."""
        self.reset()
        if self.focus == "ok":
            self.focus = "unknown"

    def update(self, probs: npt.NDArray[np.floating], now: float) -> Decision:
        """Add one analysis taken at monotonic time `now` and return the resulting decision."""
        if len(probs) != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} probabilities, got {len(probs)}")
        cls, blurry = classify_verdict(self.labels, probs, self.blurry_from)  # the same rule `check` uses
        return self.vote(blurry, now, cls)

    def vote(self, blurry: bool, now: float, cls: str | None = None) -> Decision:
        """Add one binary verdict (from any detector) taken at monotonic time `now`."""
        if self.max_gap_s is not None and self._last_update is not None:
            if now - self._last_update > self.max_gap_s:
                self._votes.clear()
        self._last_update = now

        self._votes.append(bool(blurry))
        blurry_count = sum(self._votes)
        sharp_count = len(self._votes) - blurry_count

        event: FocusEvent | None = None
        if self.focus != "lost" and blurry_count >= self.lost_votes:
            self.focus = "lost"
            event = "focus_lost"
        elif self.focus != "ok" and sharp_count >= self.restore_votes:
            # unknown → ok is the first verdict, not a recovery: no event.
            event = "focus_restored" if self.focus == "lost" else None
            self.focus = "ok"
        return Decision(focus=self.focus, event=event, cls=cls, blurry=blurry)
