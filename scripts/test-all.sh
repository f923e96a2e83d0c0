#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian 12 machine (as root): installs what is missing
# (Debian packages, npm dependencies, zigbee2mqtt, the zigpy-znp tools, the Home Assistant chroot),
# then lint and type checks, the deployment files' checks, unit and integration tests, the
# network-namespace lab tests and the Home Assistant integration's tests. Stops at the first failing stage and exits non-zero.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export Z2MHA_CACHE="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"

stage() {
  local name=$1
  shift
  local start
  start=$(date +%s)
  echo
  echo "=== $name"
  "$@"
  echo "=== $name: passed in $(($(date +%s) - start))s"
}

stage "setup" bash scripts/setup.sh
stage "lint and types (Biome, tsc)" npm run --silent lint
stage "deployment (hadolint, systemd-analyze verify, npm pack + install)" bash scripts/test-deploy.sh
stage "unit and integration tests" npx vitest run --project unit --project integration
stage "API fuzzing (schemathesis, with and without the token)" bash scripts/test-api-fuzz.sh
stage "lab tests" npx vitest run --project lab
stage "Home Assistant integration (ruff, mypy, pytest)" bash scripts/test-ha.sh
echo
echo "all tests passed"
