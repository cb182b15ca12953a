"""`focusguard baseline-reset --config PATH CAMERA`: forget a camera's learnt baselines.

Writes empty baseline files (atomically) to ``<state_dir>/baseline/<camera>.json`` (combined)
and ``<camera>.fusion.json`` (fusion, the default); the detector then learns again from its next in-focus frames. A running daemon keeps
the baseline it holds in memory (and saves it again): reset a running daemon's camera with
the MQTT command ``<p>/<camera>/baseline/reset`` instead, or stop the daemon first.
Light at import (the CLI builds its parser on every call).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "baseline-reset",
        help="forget a camera's learnt sharp baseline (detectors fusion and combined)",
    )
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        help="YAML configuration file (for state_dir)",
    )
    parser.add_argument("camera", metavar="CAMERA")
    parser.set_defaults(func=_cmd_baseline_reset)


def _cmd_baseline_reset(args: argparse.Namespace) -> int:
    from focusguard.analysis.baseline import BaselineStore, baseline_path
    from focusguard.analysis.fusion import FusionBaselines, fusion_baseline_path
    from focusguard.common.errors import ConfigError
    from focusguard.settings.config import load_config

    config = load_config(args.config)
    if not any(cam.name == args.camera for cam in config.cameras):
        raise ConfigError(config.source, f"cameras.{args.camera}", "no such camera")
    path = baseline_path(config.state_dir, args.camera)
    fusion_path = fusion_baseline_path(config.state_dir, args.camera)
    existed = path.is_file() or fusion_path.is_file()
    BaselineStore(args.camera, path).reset()
    FusionBaselines(args.camera, fusion_path).reset()  # the default detector's baselines
    for written in (path, fusion_path):
        if not written.is_file():
            raise ConfigError(config.source, "state_dir", f"cannot write {written}")
    print(
        f"{args.camera}: baseline {'reset' if existed else 'was not learnt yet; reset'} ({fusion_path}, {path}); "
        f"a running daemon: send {config.mqtt.topic_prefix}/{args.camera}/baseline/reset instead"
    )
    return 0
