#!/usr/bin/env bash
# focusguard set-up on Debian 12, as root (or a user with sudo). Idempotent: re-runs skip
# whatever is already in place.
#
#   bash scripts/setup.sh demo   # install, then run the demo: private mosquitto, an RTSP
#                                # camera playing demo/clip_focus_loss.mp4, the daemon;
#                                # prints the MQTT events, stops after focus_restored
#   bash scripts/setup.sh test   # install (+ test deps), then ruff, mypy --strict, the wheel
#                                # check (scripts/wheel_check.sh) and the whole test suite:
#                                # .venv/bin/python -m pytest -q tests
#
# Extra arguments go to the demo (scripts/demo.py --help) or to pytest.
set -euo pipefail

MODE="${1:-}"
case "$MODE" in
  demo | test) shift ;;
  *)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
    ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
step() { printf '==> %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. system packages
APT_PACKAGES=(
  python3 python3-venv
  mosquitto mosquitto-clients
  # GStreamer RTSP server for the demo camera and the integration tests (Debian's python3-gi)
  python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-tools
  openssl  # TLS test material (openssl CLI)
  zookeeper  # the many-boxes tests start a real ZooKeeper (its server jars; pulls in Java)
  systemd  # systemd-analyze verify for the unit-file tests
)
SUDO=()
if [[ $EUID -ne 0 ]]; then
  command -v sudo >/dev/null && SUDO=(sudo) || SUDO=(__need_root__)
fi
apt_run() {
  [[ ${SUDO[0]:-} == __need_root__ ]] && die "installing packages needs root: run as root (or install sudo)"
  local log; log="$(mktemp)"
  if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; rm -f "$log"; die "failed: $*"
  fi
  rm -f "$log"
}

command -v dpkg-query >/dev/null || die "this script is for Debian 12 (no dpkg-query here)"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" == ii* ]] || missing+=("$p")
done
APT_UPDATED=0
if ((${#missing[@]})); then
  step "[1/3] apt: installing ${#missing[@]} package(s): ${missing[*]}"
  apt_run apt-get update -qq
  APT_UPDATED=1
  apt_run apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  step "[1/3] apt: all ${#APT_PACKAGES[@]} packages present"
fi

# ---------------------------------------------------------------- 2. virtual environment
PY_SYS="/usr/bin/python3"
[[ -x $PY_SYS ]] || PY_SYS="$(command -v python3)"
if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  step "[2/3] venv: $VENV ($("$VENV/bin/python" -V 2>&1))"
else
  step "[2/3] venv: creating $VENV with $PY_SYS"
  rm -rf "$VENV"
  "$PY_SYS" -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
fi

# ---------------------------------------------------------------- 3. python packages
if [[ $MODE == test ]]; then SPEC=".[test,metrics]"; else SPEC="."; fi
STAMP="$VENV/.focusguard-setup"
WANT="$SPEC $(sha256sum pyproject.toml | cut -c1-16)"
HAVE="$(cat "$STAMP" 2>/dev/null || true)"
# The test install is a superset of the demo one.
if { [[ $HAVE == "$WANT" ]] || [[ $MODE == demo && $HAVE == ".[test] ${WANT#* }" ]]; } &&
   "$VENV/bin/python" -c 'import focusguard' 2>/dev/null; then
  step "[3/3] pip: focusguard ($SPEC) up to date"
else
  step "[3/3] pip: installing focusguard ($SPEC) in editable mode (first time: a few minutes)"
  log="$(mktemp)"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$SPEC" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; rm -f "$log"; die "pip install -e '$SPEC' failed"
  fi
  rm -f "$log"
  echo "$WANT" >"$STAMP"
fi

# ---------------------------------------------------------------- run
if [[ $MODE == demo ]]; then
  step "demo: Ctrl-C stops it"
  exec "$VENV/bin/python" scripts/demo.py "$@"
fi

# Test clips are made from a CC-BY photo in Debian's lomiri-wallpapers-16.04 package
# (apt-get download, 16 MB, cached in ~/.cache/focusguard-tests): that needs apt lists.
if ! "$VENV/bin/python" -c 'import sys; from tests.support.clips import _photo; _photo(None)' 2>/dev/null; then
  if ((APT_UPDATED == 0)); then
    step "test: fetching the test photo (apt-get update first)"
    apt_run apt-get update -qq
  fi
  "$VENV/bin/python" -c 'from tests.support.clips import source_image; print("==> test photo:", source_image())'
fi
step "test: ruff check (style, import order, bug patterns: pyproject.toml [tool.ruff])"
.venv/bin/ruff check daemon models bench tests scripts acap
step "test: mypy --strict daemon/focusguard"
.venv/bin/mypy
step "test: the wheel, installed (not editable) into a fresh venv: focusguard check / check-config"
bash scripts/wheel_check.sh
step "test: .venv/bin/python -m pytest -q tests $*"
export FOCUSGUARD_REQUIRE_INTEGRATION=1
exec .venv/bin/python -m pytest -q tests "$@"
