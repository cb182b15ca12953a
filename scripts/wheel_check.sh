#!/usr/bin/env bash
# The wheel works as a packager installs it: build it, `pip install` it (not editable) into a fresh
# venv outside the source tree, then run `focusguard check` and `focusguard check-config` from there.
# Called by `scripts/setup.sh test` before pytest; exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY_SYS="${PY_SYS:-/usr/bin/python3}"
[[ -x $PY_SYS ]] || PY_SYS="$(command -v python3)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$ROOT/.venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$tmp/dist" "$ROOT" >/dev/null
"$PY_SYS" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "$tmp"/dist/focusguard-*.whl
cat >"$tmp/focusguard.yaml" <<'YAML'
mqtt: {host: 127.0.0.1, port: 1883}
cameras: {gate: {url: "rtsp://192.0.2.10/stream1"}}
YAML
cd "$tmp"  # nothing of the source tree on the path
"$tmp/venv/bin/focusguard" check "$ROOT/tests/fixtures/sharp_scene.jpg"
"$tmp/venv/bin/focusguard" check-config "$tmp/focusguard.yaml" | head -n 3
"$tmp/venv/bin/python" - <<'PY'
import focusguard, focusguard.analysis.infer as infer
path = infer.default_model_path()
assert "site-packages" in str(path) and path.is_file(), path
print("wheel OK:", focusguard.__version__, path)
PY
