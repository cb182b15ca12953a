"""focusguard benchmarks: `python -m bench.run [--quick] [--parts ...]` (not part of the tests).

Parts: `inference` (daemon infer stage vs a bare interpreter), `stream` (CPU per camera for
decoding, every frame vs the daemon's keyframes-only), `delay` (first defocused frame →
focus_lost on MQTT, refocus → focus_restored, real daemon), `scale` (daemon CPU and RSS for
many cameras at one analysis per 10 s). Results: `bench/results/<date>.json` (git-ignored,
with the clips) and the Markdown table `bench/RESULTS.md`.
"""
