"""focusguard: detect out-of-focus surveillance cameras (RTSP → int8 CNN → MQTT).

The folders are the pipeline, and imports go one way, down this list:
`commands` (the CLI) → `operate` (the service: wires the stages per camera) → `sources` (frames)
and `delivery` (outbox, MQTT, discovery, metrics) → `settings` (the YAML config) → `analysis`
(preprocess, inference, detectors, baselines, debounce) → `common` (errors, identity, events,
redaction). Each folder's docstring says what it owns. See docs/DESIGN.md, "The map".
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("focusguard")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
