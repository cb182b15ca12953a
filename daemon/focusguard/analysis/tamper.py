"""Tampering is not focus loss: a covered lens or a view that changed is reported as such.

Owns the tamper state machine of one camera (pure: no clock, no MQTT). Evidence per screened frame:

* ``covered``: the picture became unjudgeable (too little contrast or detail: quality.py) on a
  camera that had a judgeable, learnt view (a lens cap, a hand, opaque spray, a cloth). A scene
  that goes black with the lights off and no IR reads the same: the camera cannot see either way.
* ``scene_changed``: the coarse structure no longer matches the in-focus baseline (fusion.py's
  ``scene_change``: thumbnail correlation below 0.5): turned away, a PTZ preset move, the view
  blocked by something large for a long time.
* None: a frame that matches the camera's view.

Debounced like focus, over twice the camera's debounce (app.py: `2 x window`, `2 x lost_votes`, `2 x
restore_votes`: a validation period, as commercial tamper detectors have): at least
`votes` tamper frames in the last `window` raise ``tamper_detected`` (with the `reason` most seen),
at least `clear_votes` matching frames raise ``tamper_cleared``. The events carry the ONVIF topic
``tns1:VideoSource/GlobalSceneChange/AnalyticsService`` (events.py) and the camera's state has
``"tamper": "covered" | "scene_changed" | null``. While tampered the focus is ``unknown``, never a
silent ``ok`` (app.py). With ``scene_change: relearn`` (PTZ cameras that move between presets) a
lasting scene change is not tampering: the app lets the detector learn the new view instead.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Literal

TamperReason = Literal["covered", "scene_changed"]
TamperEvent = Literal["tamper_detected", "tamper_cleared"]


class TamperWatch:
    """Sliding-window vote over tamper evidence, with hysteresis (as decide.FocusDecider)."""

    def __init__(self, window: int = 8, votes: int = 6, clear_votes: int = 6) -> None:
        if not 1 <= votes <= window or not 1 <= clear_votes <= window:
            raise ValueError("votes and clear_votes must be between 1 and window")
        self.window, self.votes, self.clear_votes = window, votes, clear_votes
        self._seen: deque[TamperReason | None] = deque(maxlen=window)
        self.reason: TamperReason | None = None  # the active tamper, None when clear

    @property
    def active(self) -> bool:
        return self.reason is not None

    def reset(self) -> None:
        """Forget the evidence (a lost stream, a baseline reset) but keep the state."""
        self._seen.clear()

    def observe(self, evidence: TamperReason | None) -> TamperEvent | None:
        """One screened frame's evidence; returns the event it raised, if any."""
        self._seen.append(evidence)
        reasons = Counter(r for r in self._seen if r is not None)
        tampered = sum(reasons.values())
        clean = len(self._seen) - tampered
        if self.reason is None and tampered >= self.votes:
            self.reason = reasons.most_common(1)[0][0]
            return "tamper_detected"
        if self.reason is not None and clean >= self.clear_votes:
            self.reason = None
            return "tamper_cleared"
        return None
