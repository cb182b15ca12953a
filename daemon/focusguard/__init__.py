"""focusguard: detect out-of-focus surveillance cameras (RTSP → int8 CNN → MQTT).

Pipeline, one module per stage: `grab` → `preprocess` → `infer` → `decide` →
`publish` (with `outbox`); `config`, `errors`, `events`, `redact` support them; `app`
wires the stages and `cli` is the entry point. See docs/DESIGN.md.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("focusguard")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
