#!/usr/bin/env bash
# The deployment checks that need no container runtime (CI has none): hadolint on the Dockerfiles,
# systemd-analyze verify on the unit, the npm package packed and installed into a fresh prefix
# (z2m-ha --version, config check of deploy/config.example.yaml with the installed binary).
# The add-on's own tests (config.yaml against the Supervisor's rules, options.json rendering) run
# in the unit tests. Run after scripts/setup.sh (hadolint: scripts/setup/70-deploy.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "-- hadolint"
"$cache/deploy-venv/bin/hadolint" deploy/Dockerfile addon/Dockerfile
echo "deploy/Dockerfile, addon/Dockerfile: clean"

echo "-- npm pack, npm install -g from the tarball into an empty prefix"
npm pack --silent --pack-destination "$tmp" >/dev/null
tarball=("$tmp"/zigbee2mqtt-ha-*.tgz)
npm install -g --prefix "$tmp/prefix" --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error "${tarball[0]}"
want=$(node -p 'require("./package.json").version')
got=$("$tmp/prefix/bin/z2m-ha" --version)
[[ $got == "$want" ]] || { echo "z2m-ha --version printed $got, expected $want" >&2; exit 1; }
echo "z2m-ha --version: $got"
# The EmberZNet host tool the sidecar uploads onto ember nodes ships beside the CLI.
tool="$tmp/prefix/lib/node_modules/zigbee2mqtt-ha/dist/ember-tool.js"
node "$tool" --help | grep -q "^usage: node ember-tool.js" || { echo "$tool is missing or does not run" >&2; exit 1; }
echo "dist/ember-tool.js is in the package and runs"
Z2MHA_MQTT_PASSWORD=example "$tmp/prefix/bin/z2m-ha" config check deploy/config.example.yaml

echo "-- systemd-analyze verify"
# A root with the system's units and z2m-ha where `npm install -g` puts it (/usr/local/bin), so the
# unit file is checked unchanged, its ExecStart included.
root="$tmp/root"
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/usr/local/bin" "$root/usr/lib/sysusers.d"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
printf '#!/bin/sh\nexec %q "$@"\n' "$tmp/prefix/bin/z2m-ha" >"$root/usr/local/bin/z2m-ha"
chmod 0755 "$root/usr/local/bin/z2m-ha"
# The unit as the package ships it (docs/install.md installs it from there).
installed="$tmp/prefix/lib/node_modules/zigbee2mqtt-ha/deploy/systemd"
cmp "$installed/zigbee2mqtt-ha.service" deploy/systemd/zigbee2mqtt-ha.service
install -m 0644 "$installed/zigbee2mqtt-ha.service" "$root/etc/systemd/system/"
systemd-analyze verify --root="$root" zigbee2mqtt-ha.service
install -m 0644 "$installed/zigbee2mqtt-ha.sysusers" "$root/usr/lib/sysusers.d/zigbee2mqtt-ha.conf"
sysusers=$(systemd-sysusers --root="$root" --dry-run 2>&1)
[[ $sysusers == *"Creating user 'zigbee2mqtt-ha'"* ]] \
  || { echo "systemd-sysusers does not create the zigbee2mqtt-ha user: $sysusers" >&2; exit 1; }
echo "deploy/systemd: verified"
