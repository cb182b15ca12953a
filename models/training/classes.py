"""The 9 blur classes (thesis Table 3.2) and the sigma rule used to synthesise them."""

from __future__ import annotations

from pathlib import Path

LABELS_PATH = Path(__file__).resolve().parents[2] / "daemon" / "focusguard" / "analysis" / "model" / "labels.txt"
CLASS_NAMES: list[str] = LABELS_PATH.read_text().split()
# Gaussian sigma at the 1920x1080 scale, in class order.
CLASS_SIGMAS: list[float] = [0.0, 0.5, 0.75, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0]
REFERENCE_WIDTH = 1920
INPUT_SIZE = 448

assert len(CLASS_NAMES) == len(CLASS_SIGMAS) == 9


def sigma_for(class_index: int, source_width: int) -> float:
    """Sigma in source pixels: b_s means sigma s at 1920 px wide; smaller sources scale it down
    (instead of being upscaled to 1080p first), larger ones were already reduced to 1920 wide."""
    return CLASS_SIGMAS[class_index] * min(source_width, REFERENCE_WIDTH) / REFERENCE_WIDTH
