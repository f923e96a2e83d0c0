#!/usr/bin/env bash
# Property-based fuzzing of the sidecar's REST API from its own OpenAPI document (schemathesis,
# every check): the real sidecar (dist/cli.js) on loopback with nodes nobody listens for, fuzzed
# once with the token and once without. Fails on any 5xx, any response that does not match the
# documented schema, status code or content type, and any request the API accepts or rejects
# against its schema.
#   scripts/test-api-fuzz.sh [max examples per operation, default 40]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
examples="${1:-40}"
Z2MHA_ROOT="$root" Z2MHA_CACHE="$cache" bash "$root/scripts/setup/70-fuzz.sh" >/dev/null
cd "$root"
[[ -f dist/cli.js ]] || npm run build --silent
out=$(mktemp)
node --import tsx test/fuzz/run-sidecar.ts >"$out" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do
  [[ -s $out ]] && break
  sleep 0.2
done
read -r url token <"$out"
[[ $url == http://127.0.0.1:* ]] || { echo "sidecar did not start: $(cat "$out")" >&2; exit 1; }
st=("$cache/fuzz-venv/bin/schemathesis" --config-file "$root/test/fuzz/schemathesis.toml" run "$url/openapi.json"
  --checks all --max-examples "$examples" --workers 1 --no-color)
echo "== schemathesis with the token"
(cd "$root/test/fuzz" && "${st[@]}" -H "Authorization: Bearer $token")
echo "== schemathesis without the token"
(cd "$root/test/fuzz" && "${st[@]}")
echo "api fuzz: no failures"
