#!/usr/bin/env bash
# schemathesis, the property-based API fuzzer that scripts/test-api-fuzz.sh runs against the
# sidecar's own OpenAPI, in a virtualenv of the system Python, pinned (with every dependency) by
# test/fuzz/requirements.txt. Idempotent: skipped when the requirements' sha256 matches the stamp.
set -euo pipefail
root="${Z2MHA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
req="$root/test/fuzz/requirements.txt"
venv="$cache/fuzz-venv"
stamp="$venv/.requirements-sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/schemathesis ]]; then
  echo "schemathesis already installed in $venv"
  exit 0
fi
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req"
"$venv/bin/pip" check --disable-pip-version-check
"$venv/bin/schemathesis" --version
echo "$want" > "$stamp"
