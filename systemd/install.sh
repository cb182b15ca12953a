#!/bin/sh
# Install focusguard as a systemd service on a Coral box / Linux NVR. As root, from a checkout:
#   sudo sh systemd/install.sh                # venv in /opt/focusguard, then install-service
#   sudo sh systemd/install.sh --dry-run      # venv and model are still installed; the service files are only listed
# Options after the script name go to `focusguard install-service` (--prefix, --dry-run, --no-reload).
# FOCUSGUARD_VENV (default /opt/focusguard) and FOCUSGUARD_EXTRAS (default metrics) tune it.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${FOCUSGUARD_VENV:-/opt/focusguard}
extras=${FOCUSGUARD_EXTRAS:-metrics}

case "$venv" in
  /home/*|/root/*) echo "install.sh: $venv is hidden from the service by ProtectHome=yes; use /opt" >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --upgrade "$repo[$extras]"

# The shipped model: where focusguard looks for it outside a checkout.
if ls "$repo"/daemon/focusguard/analysis/model/*.tflite >/dev/null 2>&1; then
  install -d -m 0755 /usr/local/share/focusguard
  install -m 0644 "$repo"/daemon/focusguard/analysis/model/*.tflite "$repo"/daemon/focusguard/analysis/model/labels.txt /usr/local/share/focusguard/
fi

exec "$venv/bin/focusguard" install-service --exec "$venv/bin/focusguard" "$@"
