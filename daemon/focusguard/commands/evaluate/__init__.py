"""`focusguard eval`: run detectors side by side over labelled images or a labelled clip.

Inputs (positive = blurry, as in the thesis' section 2.7):

* a folder with `sharp/` and `blurry/` subfolders (searched recursively);
* a CSV manifest with `file` and `label` columns (`/work/shared/data/MANIFEST.csv`): labels
  starting with `sharp` are sharp, with `blurry` blurry; paths relative to the manifest;
  `--under PREFIX` keeps only files below a prefix (e.g. `real_defocus/`);
* a video clip with `--labels FILE`: lines `start,end,label` (seconds, `sharp`/`blurry`;
  `#` comments); frames outside every range (blur ramps) are plotted but not scored.

Detectors: `fusion` (the daemon's default, `focusguard.analysis.fusion`), `cnn` (with `--preprocess resize`,
`tiles` or both), `dft`, `laplacian` (`focusguard.analysis.detectors`) and `combined` (the former default,
`focusguard.analysis.combined`); fusion's and combined's baselines are learnt from the scene's reference
image, taken as their learning frames (clearly in-focus scored images may also move fusion's
baseline, as in the daemon). Reference-based detectors (dft, relative laplacian, combined, fusion) need a sharp
reference per scene, as a camera has: images are grouped into scenes (by default their
folder, without a leading `sharp/`/`blurry/`; `--scene REGEX` takes the first group of a
regex over the relative path instead) and the first sharp image of each scene (sorted by
path) is its reference. Reference images are left out of the scores of *every* detector,
so all rows are computed on the same images. Scenes without a sharp image are left out for
every detector when a reference-based detector runs (reported). A clip is one scene whose
reference is learnt as in the daemon (the first analysed frames).

Reported per detector: accuracy, balanced accuracy, recall (blurry found), precision,
false-alarm rate FP/(TN+FP), counts, and ms per frame (the verdict only: decoding the image
file is not included). For a clip, `--plot PNG` draws each detector's score over time with
its threshold, the labelled blurry ranges and the debounced focus state (the daemon's
default window 8 / 6 / 6, one analysis per `--step` seconds).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from focusguard.commands.evaluate.metrics import Metrics, binary_metrics
from focusguard.commands.evaluate.report import plot_clip, table
from focusguard.commands.evaluate.run import (
    Factory,
    Row,
    detector_specs,
    evaluate_clip,
    evaluate_images,
    threshold_of,
)
from focusguard.commands.evaluate.samples import (
    IMAGE_SUFFIXES,
    LABELS,
    Sample,
    clip_frames,
    folder_samples,
    label_at,
    label_is_blurry,
    manifest_samples,
    parse_clip_labels,
    scene_of,
)

__all__ = [
    "IMAGE_SUFFIXES", "LABELS", "Factory", "Metrics", "Row", "Sample", "add_parser", "binary_metrics", "clip_frames",
    "cmd_eval", "detector_specs", "evaluate_clip", "evaluate_images", "folder_samples", "label_at", "label_is_blurry",
    "main", "manifest_samples", "parse_clip_labels", "plot_clip", "scene_of", "table", "threshold_of",
]  # fmt: skip

# --------------------------------------------------------------------------- CLI


def _tile(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected WxH, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def add_parser(commands: Any) -> None:
    """Register `eval` on the CLI's subcommands."""
    from focusguard.analysis.preprocess import TILE_NATIVE

    p = commands.add_parser("eval", help="run detectors side by side over labelled images or a labelled clip")
    p.add_argument("data", type=Path, help="folder with sharp/ and blurry/, a CSV manifest, or a video clip")
    p.add_argument("--labels", type=Path, help="clip labels: lines start,end,sharp|blurry (seconds)")
    p.add_argument("--under", help="manifest: only files below this relative prefix (e.g. real_defocus/)")
    p.add_argument("--scene", help="regex over the relative path; group 1 names the scene (reference grouping)")
    p.add_argument("--detector", default="fusion,cnn,dft,laplacian,combined",
                   help="comma list of fusion, cnn, dft, laplacian, combined")
    p.add_argument("--preprocess", default="resize", help="cnn: comma list of resize, tiles")
    p.add_argument("--tile", type=_tile, default=TILE_NATIVE, help="tiles: native window WxH (default %(default)s)")
    p.add_argument("--model", type=Path, help="TFLite model (default: the shipped one)")
    p.add_argument("--threads", type=int, default=2, help="interpreter threads (default 2)")
    p.add_argument("--blurry-from", default="b_0.75", help="first blurry class for the cnn (default b_0.75)")
    p.add_argument("--laplacian-threshold", type=float, help="absolute Laplacian variance threshold (else relative)")
    p.add_argument("--step", type=float, default=0.2, help="clip: seconds between analysed frames (default 0.2)")
    p.add_argument("--plot", type=Path, help="clip: write the verdicts over time to this PNG")
    p.add_argument("--json", type=Path, help="write the metrics (and per-item verdicts) to this JSON file")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from focusguard.analysis.detectors import PREPROCESS_MODES
    from focusguard.commands.common_cli import read_image
    from focusguard.common.errors import ConfigError
    from focusguard.settings.config import DETECTORS

    detectors = [d.strip() for d in args.detector.split(",") if d.strip()]
    modes = [m.strip() for m in args.preprocess.split(",") if m.strip()]
    for name in detectors:
        if name not in DETECTORS:
            raise ConfigError("(command line)", "--detector", f"unknown detector {name!r}")
    for mode in modes:
        if mode not in PREPROCESS_MODES:
            raise ConfigError("(command line)", "--preprocess", f"unknown mode {mode!r}")
    specs = detector_specs(detectors, modes)
    factory = Factory(args)
    data: Path = args.data
    notes: dict[str, Any]
    if data.is_dir():
        kind = "folder"
        samples = folder_samples(data)
    elif data.suffix.lower() == ".csv":
        kind = "manifest"
        samples = manifest_samples(data, args.under)
    else:
        kind = "clip"
    try:
        if kind == "clip":
            if args.labels is None:
                raise ConfigError("(command line)", "--labels", "a clip needs a labels file")
            ranges = parse_clip_labels(args.labels.read_text(encoding="utf-8"))
            rows, times, notes = evaluate_clip(data, ranges, specs, factory, args.step)
            if args.plot:
                plot_clip(args.plot, rows, times, ranges, f"{data.name}: detectors over time")
        else:
            pattern = re.compile(args.scene) if args.scene else None
            rows, notes = evaluate_images(samples, specs, factory, pattern, read_image)
    except (ValueError, OSError) as err:
        raise ConfigError(str(data), "(data)", str(err)) from err
    print(f"{kind} {data}: " + ", ".join(f"{k} {len(v) if isinstance(v, list) else v}" for k, v in notes.items()))
    print(table(rows))
    if args.plot and kind == "clip":
        print(f"plot: {args.plot}")
    if args.json:
        payload = {
            "data": str(data),
            "kind": kind,
            "notes": notes,
            "results": [r.summary() for r in rows],
            "items": {
                r.name: [
                    {"item": i, "blurry": p, "score": s, "class": c}
                    for i, p, s, c in zip(r.items, r.verdicts, r.scores, r.classes, strict=True)
                ]
                for r in rows
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="focusguard-eval")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))
