#!/usr/bin/env bash
# The real zigpy-znp tools (nvram_read/write/reset, network_backup/restore) that the sidecar runs on
# the nodes, in a virtualenv of the system Python 3.11, pinned by test/lab/znp-requirements.txt.
# Idempotent: skipped when the requirements' sha256 matches the stamp of the last install.
set -euo pipefail
root="${Z2MHA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
req="$root/test/lab/znp-requirements.txt"
venv="$cache/znp-venv"
stamp="$venv/.requirements-sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/python3 ]]; then
  echo "zigpy-znp already installed in $venv"
  exit 0
fi
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req"
"$venv/bin/pip" check --disable-pip-version-check
"$venv/bin/python3" -m zigpy_znp.tools.nvram_read --help >/dev/null
echo "$want" > "$stamp"
echo "zigpy-znp $("$venv/bin/python3" -c 'import importlib.metadata as m; print(m.version("zigpy-znp"))') installed in $venv"
