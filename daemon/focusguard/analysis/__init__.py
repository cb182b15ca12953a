"""From a decoded frame to one vote: the model input (`preprocess`), inference (`infer`, shared
fairly across cameras by `fair`), the detectors (`detectors`: cnn, dft, laplacian; `combined`;
`fusion` with `evidence`, `fusion_model` and the in-focus `baseline`s), picture screening
(`quality`), tamper evidence (`tamper`) and the debounce (`decide`). Owns the shipped CNN and the
fusion model (package data: `model/`, `fusion_model.json`). May import `focusguard.common` only."""

from __future__ import annotations
