"""Night sharpness ratios behind `combined`'s `night_drop` (combined.NIGHT_DROP).

For IR-like night frames made as the test clips make them (tests/support/clips._night: gray,
exposure `level`, sensor noise after the optics) from 1280x720 crops of the test photo, prints
`tile_sharpness` (at the IR regime's pyramid level) divided by the median of 5 in-focus frames:
for other in-focus frames (other noise seeds and pan positions) and for defocused ones (sigma at
the 1920 px scale). A good `night_drop` lies below every in-focus ratio and above the defocus
ratios that should alarm.

Run: .venv/bin/python -m bench.night_ratios
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from focusguard.analysis.baseline import REGIME_LEVELS, tile_sharpness
from focusguard.analysis.combined import NIGHT_DROP
from tests.support import clips

PHOTO = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "sharp_scene.jpg"
CONDITIONS = [(0.6, 2.0), (0.45, 4.0), (0.3, 4.0), (0.45, 8.0), (0.3, 8.0)]  # (level, noise)
SIGMAS = [2.0, 3.0, 4.0, 7.0]
PANS = [(0, 0), (60, 10), (120, 20), (180, 30), (240, 40)]


def sharpness(view: np.ndarray, level: float, noise: float, defocus: float, seed: int) -> float:
    seg = clips.Segment("night", 1, level=level, noise=noise, defocus=defocus)
    value = tile_sharpness(clips._night(view, seg, seed, view.shape[1]), REGIME_LEVELS["ir"]).value
    assert value is not None
    return value


def main() -> None:
    photo = clips.load_image(PHOTO)
    views = [photo[y : y + 720, x : x + 1280] for x, y in PANS]
    print(f"night_drop (combined.NIGHT_DROP) = {NIGHT_DROP}")
    print("level/noise  in focus (min-max)  " + "  ".join(f"sigma {s:g}" for s in SIGMAS))
    for level, noise in CONDITIONS:
        baseline = statistics.median(sharpness(views[0], level, noise, 0.0, seed) for seed in range(5))
        in_focus = [sharpness(v, level, noise, 0.0, 100 + i) / baseline for i, v in enumerate(views)]
        blurred = [max(sharpness(v, level, noise, s, 200 + i) for i, v in enumerate(views)) / baseline for s in SIGMAS]
        print(f"{level:4.2f} / {noise:<4g}  {min(in_focus):.2f}-{max(in_focus):.2f}         "
              + "  ".join(f"{r:7.2f}" for r in blurred))
    print("(defocus columns: the highest ratio over the pan positions, i.e. the hardest to catch)")


if __name__ == "__main__":
    main()
