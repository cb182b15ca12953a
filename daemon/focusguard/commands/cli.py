"""Command line: `focusguard run | check | check-config | eval`.

Owns argument parsing, logging setup, and the error contract: any bad input
(`FocusguardError`) becomes one stderr line naming file, key and problem, exit status 2,
no traceback. `check` classifies image files with exactly the preprocessing, model and
threshold that `run` uses.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from focusguard import __version__
from focusguard.commands.common_cli import model_config_error as _model_config_error
from focusguard.commands.common_cli import read_image
from focusguard.commands.common_cli import setup_logging as _setup_logging
from focusguard.common.errors import ConfigError, FocusguardError, ModelError
from focusguard.settings.config import AppConfig, load_config

log = logging.getLogger("focusguard")

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FocusguardError as err:
        print(f"focusguard: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="focusguard", description="Detect out-of-focus surveillance cameras.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="watch the configured cameras and publish over MQTT (foreground)")
    run.add_argument("--config", required=True, type=Path, help="YAML configuration file")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="override log_level")
    run.set_defaults(func=_cmd_run)

    check = commands.add_parser("check", help="classify image files like `run` would")
    check.add_argument("--config", type=Path, help="take model, labels and threshold from this config")
    check.add_argument("--model", type=Path, help="TFLite model (default: config's, else the shipped one)")
    check.add_argument("--camera", help="use this camera's blurry_from (default: the config's defaults)")
    check.add_argument("--json", action="store_true", help="one JSON object per line")
    check.add_argument("images", nargs="+", metavar="IMAGE")
    check.set_defaults(func=_cmd_check)

    check_config = commands.add_parser("check-config", help="validate a configuration and print a summary")
    check_config.add_argument("config", type=Path, metavar="PATH")
    check_config.set_defaults(func=_cmd_check_config)

    from focusguard.operate import service  # install-service: systemd unit, udev rule, sample config

    service.register(commands)

    from focusguard.commands import (
        baseline_cli,  # baseline-reset: forget a camera's learnt baselines (fusion, combined)
    )

    baseline_cli.register(commands)

    from focusguard.commands import evaluate  # light at import: cv2/av/matplotlib load inside the command

    evaluate.add_parser(commands)  # `focusguard eval`: detectors side by side on labelled data

    from focusguard.commands import collect  # `focusguard collect`: confidently sharp frames for training

    collect.add_parser(commands)
    return parser


# --------------------------------------------------------------------------- run


def _cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    _setup_logging(args.log_level or config.log_level)
    from focusguard.operate.app import FocusGuard  # imports PyAV: only when running

    try:
        app = FocusGuard(config)
    except ModelError as err:
        raise _model_config_error(config, err) from err
    log.info("focusguard %s starting with %s", __version__, config.source)
    app.run()
    log.info("focusguard stopped")
    return EXIT_OK


# --------------------------------------------------------------------------- check


def _cmd_check(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="focusguard: %(levelname)s: %(message)s")
    from focusguard.analysis.decide import classify_verdict
    from focusguard.analysis.infer import Classifier
    from focusguard.analysis.preprocess import to_model_rgb
    from focusguard.common.events import probabilities_dict

    config = load_config(args.config) if args.config else None
    blurry_from = _check_threshold(config, args.camera)
    images = [(path, read_image(path)) for path in args.images]  # fail before the model loads
    model_path = args.model if args.model is not None else (config.model.path if config else None)
    try:
        classifier = Classifier(
            model_path,
            config.model.labels if config else None,
            device=config.model.device if config else "auto",
            threads=config.model.threads * config.model.interpreters if config else 2,  # one interpreter, all threads
        )
    except ModelError as err:
        if config is None or args.model is not None:
            raise
        raise _model_config_error(config, err) from err
    if blurry_from not in classifier.labels:
        where = config.source if config else "(default)"
        raise ConfigError(where, "blurry_from", f"unknown class {blurry_from!r} for this model's labels")

    for path, image in images:
        probs = classifier.classify(to_model_rgb(image))
        cls, blurry = classify_verdict(classifier.labels, probs, blurry_from)
        if args.json:
            record = {"path": path, "class": cls, "blurry": blurry}
            record["probabilities"] = probabilities_dict(classifier.labels, probs)
            print(json.dumps(record), flush=True)
        else:
            top = float(probs[classifier.labels.index(cls)])
            print(f"{path}: {'BLURRY' if blurry else 'sharp'} (class {cls}, p={top:.2f})", flush=True)
    return EXIT_OK


def _check_threshold(config: AppConfig | None, camera: str | None) -> str:
    if config is None:
        if camera is not None:
            raise ConfigError("(command line)", "--camera", "needs --config")
        from focusguard.settings.config import CameraSettings

        return CameraSettings().blurry_from
    if camera is None:
        return config.defaults.blurry_from
    for cam in config.cameras:
        if cam.name == camera:
            return cam.blurry_from
    raise ConfigError(config.source, f"cameras.{camera}", "no such camera (from --camera)")


# --------------------------------------------------------------------------- check-config


def _cmd_check_config(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="focusguard: %(levelname)s: %(message)s")
    from focusguard.analysis.infer import validate_model

    config = load_config(args.config)
    try:
        info = validate_model(config.model.path, config.model.labels)
    except ModelError as err:
        raise _model_config_error(config, err) from err
    print("\n".join(summary(config, model_line=f"{info.path} (input {info.input_dtype}, {info.runtime})")))
    return EXIT_OK


def summary(config: AppConfig, model_line: str) -> list[str]:
    """Human-readable, secret-free description of a config."""
    mqtt, model = config.mqtt, config.model
    auth = "anonymous"
    if mqtt.username is not None:
        auth = f"user {mqtt.username}" + (f", password *** ({mqtt.password_source})" if mqtt.password else "")
    tls = "off"
    if mqtt.tls.enabled:
        tls = ", ".join(f"{k} {v}" for k, v in (("ca", mqtt.tls.ca_file), ("cert", mqtt.tls.cert_file)) if v) or "on"
    lines = [
        f"config OK: {config.source}",
        f"mqtt: {mqtt.host}:{mqtt.port}, topic prefix {mqtt.topic_prefix}, {auth}, TLS {tls}, "
        f"client id {mqtt.client_id or '(generated)'}, keepalive {mqtt.keepalive_s} s, outbox {mqtt.outbox_limit}",
        f"model: {model_line}; device {model.device}, {model.interpreters} interpreter(s) x {model.threads} thread(s)",
        f"classes: {', '.join(config.labels)}",
        f"state_dir: {config.state_dir}",
        f"log_level: {config.log_level}",
        integrations_line(config),
        f"cameras ({len(config.cameras)}):",
    ]
    lines.extend(
        f"  {cam.name}: {cam.redacted_url}; every {cam.interval_s:g} s, blurry from {cam.blurry_from}, "
        f"window {cam.window} (lost {cam.lost_votes}, restore {cam.restore_votes}), "
        f"stream timeout {cam.stream_timeout_s:g} s, keyframes only {str(cam.keyframes_only).lower()}, "
        f"detector {cam.detector}" + (f" ({cam.preprocess})" if cam.detector == "cnn" else "")
        + (f" ({cam.preprocess}, drop {cam.combined_drop:g}, night {cam.night_drop:g})" if cam.detector == "combined" else "")
        + (f" ({cam.preprocess}, threshold {'model' if cam.fusion_threshold is None else f'{cam.fusion_threshold:g}'}, "
           f"scene change: {cam.scene_change})" if cam.detector == "fusion" else "")
        for cam in config.cameras
    )
    lines.extend(
        f"  {cam.name} refocus: {cam.refocus.action} via {cam.refocus.url}"
        f"{' on focus_lost' if cam.refocus.on_focus_lost else ' on command only'}, at most every "
        f"{cam.refocus.min_interval_s:g} s" + (f", user {cam.refocus.username}" if cam.refocus.username else "")
        for cam in config.cameras
        if cam.refocus.action != "none"
    )
    return lines


def integrations_line(config: AppConfig) -> str:
    ha, metrics = config.homeassistant, config.metrics
    discovery = f"on ({ha.prefix}/...)" if ha.discovery else "off"
    stats = f"every {metrics.stats_interval_s:g} s" if metrics.stats_interval_s else "off"
    prometheus = f"{metrics.prometheus_host}:{metrics.prometheus_port}" if metrics.prometheus_port else "off"
    return f"integrations: Home Assistant discovery {discovery}, <p>/stats {stats}, Prometheus {prometheus}"
