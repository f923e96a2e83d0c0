#!/usr/bin/env bash
# Debian packages: the real parts the lab and the tests run (sshd, rsync, Mosquitto, snmptrapd, ...).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mapfile -t wanted < <(grep -v '^\s*#' "$here/apt-packages.txt" | awk 'NF {print $1}')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The lab runs its own Mosquitto, sshd and snmptrapd inside its namespaces and the tests use ports
# of their own, so services the packages may have started are left alone: on a real machine they
# may be in use (an sshd above all).
