"""Vocabulary every stage shares: errors (`ConfigError`, `ModelError`: exit 2), secret redaction,
the state identity of an instance (broker + prefix, camera), and the event/state message shapes.
Imports nothing else of focusguard."""

from __future__ import annotations
