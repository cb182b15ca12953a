"""What `focusguard eval` reads: labelled folders, CSV manifests, clip label files, clip frames; scenes."""


from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LABELS = ("sharp", "blurry")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Sample:
    path: Path
    rel: str  # path relative to the data root, for scenes and reports
    blurry: bool


def label_is_blurry(label: str) -> bool | None:
    """`sharp...` → False, `blurry...` → True, anything else → None (skipped)."""
    text = label.strip().lower()
    if text.startswith("sharp"):
        return False
    if text.startswith("blur"):  # blur, blurry
        return True
    return None


def folder_samples(root: Path) -> list[Sample]:
    """Images under `root/sharp` and `root/blurry` (recursively)."""
    samples = []
    for label in LABELS:
        base = root / label
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                samples.append(Sample(path, path.relative_to(root).as_posix(), label == "blurry"))
    if not samples:
        raise ValueError(f"{root}: no images under sharp/ or blurry/")
    return samples


def manifest_samples(manifest: Path, under: str | None = None) -> list[Sample]:
    """Rows of a CSV manifest with `file` and `label` columns."""
    samples = []
    with manifest.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"file", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{manifest}: needs 'file' and 'label' columns")
        for row in reader:
            rel = row["file"].strip()
            if under and not rel.startswith(under):
                continue
            blurry = label_is_blurry(row["label"])
            if blurry is None:
                continue
            samples.append(Sample(manifest.parent / rel, rel, blurry))
    if not samples:
        raise ValueError(f"{manifest}: no labelled rows" + (f" under {under!r}" if under else ""))
    return sorted(samples, key=lambda s: s.rel)


def parse_clip_labels(text: str) -> list[tuple[float, float, bool]]:
    """`start,end,label` lines (seconds) → [(start, end, blurry)]; `#` comments and blank lines ignored."""
    ranges = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            raise ValueError(f"labels line {number}: expected start,end,label, got {line!r}")
        blurry = label_is_blurry(parts[2])
        if blurry is None:
            raise ValueError(f"labels line {number}: label must be sharp or blurry, got {parts[2]!r}")
        start, end = float(parts[0]), float(parts[1])
        if end <= start:
            raise ValueError(f"labels line {number}: end must be after start")
        ranges.append((start, end, blurry))
    return ranges


def label_at(ranges: Sequence[tuple[float, float, bool]], t: float) -> bool | None:
    for start, end, blurry in ranges:
        if start <= t < end:
            return blurry
    return None


def scene_of(rel: str, pattern: re.Pattern[str] | None) -> str:
    """The scene (camera) an image belongs to: regex group 1, else its folder without sharp/ or blurry/."""
    if pattern is not None:
        match = pattern.search(rel)
        if match:
            return match.group(1) if match.groups() else match.group(0)
    parts = rel.split("/")[:-1]
    if parts and parts[0] in LABELS:
        parts = parts[1:]
    return "/".join(parts)




def clip_frames(path: Path, step_s: float) -> Iterable[tuple[float, npt.NDArray[np.uint8]]]:
    """(seconds, BGR frame) every `step_s` seconds of the clip (every frame decoded, sampled by pts)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        next_t = 0.0
        for frame in container.decode(stream):
            base = stream.time_base
            t = float(frame.pts * base) if frame.pts is not None and base is not None else next_t
            if t + 1e-6 < next_t:
                continue
            next_t = t + step_s
            yield t, cast("npt.NDArray[np.uint8]", frame.to_ndarray(format="bgr24"))
