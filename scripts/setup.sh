#!/usr/bin/env bash
# Installs everything the product, the lab and the tests need on a fresh Debian 12 machine.
# Idempotent: every part checks what is already there. Run as root.
# Parts live in scripts/setup/NN-name.sh and run in order; each may be run alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export Z2MHA_ROOT="$(cd "$here/.." && pwd)"
export Z2MHA_CACHE="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
mkdir -p "$Z2MHA_CACHE"
only="${1:-}"
for part in "$here"/setup/[0-9][0-9]-*.sh; do
  name="$(basename "$part" .sh)"
  if [[ -n "$only" && "$name" != *"$only"* ]]; then continue; fi
  start=$(date +%s)
  echo "== setup: $name"
  bash "$part"
  echo "== setup: $name done in $(( $(date +%s) - start ))s"
done
