#!/usr/bin/env bash
# Debian's Chromium for the end-to-end test's screenshots of Home Assistant's frontend
# (test/lab/ha-e2e.test.ts, through playwright-core, which never downloads a browser of its own).
# Its own part: it is large (about 30 s to install here) and only that test needs it.
set -euo pipefail
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "installing: chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
dpkg-query -W -f 'chromium ${Version}\n' chromium
