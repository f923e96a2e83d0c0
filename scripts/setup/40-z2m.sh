#!/usr/bin/env bash
# The real zigbee2mqtt (2.14.1, bundling zigbee-herdsman 10.9.2) that the integration tests and the
# lab run against the simulated coordinator, installed exactly as locked in test/lab/z2m.
# Idempotent: skipped when the lock's sha256 matches the stamp of the last install.
set -euo pipefail
root="${Z2MHA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
src="$root/test/lab/z2m"
dest="$cache/zigbee2mqtt"
stamp="$dest/.lock-sha256"
want=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -f $dest/node_modules/zigbee2mqtt/index.js ]]; then
  echo "zigbee2mqtt already installed in $dest"
  exit 0
fi
mkdir -p "$dest"
rm -f "$stamp"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
# npm 11 skips install scripts that are not allow-listed; serialport's only one is node-gyp-build,
# which merely picks a prebuilt binary, and that choice is made again at run time. Checked below.
(cd "$dest" && npm ci --no-audit --no-fund --omit=dev)
(cd "$dest" && node -e '
  const { binding } = require("@serialport/bindings-cpp/dist/serialport-bindings");
  typeof binding.open === "function" || process.exit(1);
  require("zigbee2mqtt/package.json").version === "2.14.1" || process.exit(1);
') || { echo "zigbee2mqtt install in $dest is unusable (serialport binding or version)" >&2; exit 1; }
echo "$want" > "$stamp"
echo "zigbee2mqtt $(node -p "require('$dest/node_modules/zigbee2mqtt/package.json').version") installed in $dest"
