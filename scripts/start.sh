#!/usr/bin/env bash
# Runs the product. With a config ($Z2MHA_CONFIG, or /etc/zigbee2mqtt-ha/config.yaml) it runs the
# sidecar against your nodes; without one it builds the lab (simulated dongles, real zigbee2mqtt,
# sshd, Mosquitto, snmptrapd in network namespaces) and runs the sidecar against it: the demo.
# Installs what is missing first (as root, Debian 12). Ctrl-C stops it (the demo also takes the lab down).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
config="${Z2MHA_CONFIG:-}"
if [[ -z "$config" && -f /etc/zigbee2mqtt-ha/config.yaml ]]; then config=/etc/zigbee2mqtt-ha/config.yaml; fi

if [[ -n "$config" ]]; then
  bash scripts/setup.sh apt >/dev/null
  bash scripts/setup.sh npm
  exec node dist/cli.js serve --config "$config"
fi

echo "no config given (Z2MHA_CONFIG or /etc/zigbee2mqtt-ha/config.yaml): starting the demo against the lab"
for part in apt npm znp z2m lab; do bash scripts/setup.sh "$part"; done
exec npm run --silent demo
