#!/usr/bin/env bash
# The sidecar's own dependencies, exactly as locked.
set -euo pipefail
cd "$Z2MHA_ROOT"
stamp=node_modules/.lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi
npm run build --silent
