#!/usr/bin/env bash
# Lints, type-checks and tests the Home Assistant integration inside the Debian-testing chroot
# made by scripts/setup/60-ha.sh (current Home Assistant needs Python 3.14).
#   scripts/test-ha.sh                 ruff, ruff format --check, mypy, pytest test/ha on the
#                                      newest supported Home Assistant, then on the oldest, and
#                                      the coverage of both runs together (gate: 95 %)
#   scripts/test-ha.sh -k live -x      extra arguments go to both pytest runs (no coverage gate:
#                                      a part of the suite cannot cover the whole integration)
# Exits non-zero when any of them fails.
#
# The repository is bind-mounted into the chroot at its own path, with /proc, /dev and the
# host's node binary (the live test starts the real sidecar, `node dist/cli.js serve`). All
# mounts live in a private mount namespace of this script, so they vanish with it however it
# ends; the trap unmounts them as well when it ends normally.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
chroot_dir="$cache/ha-chroot"

if [[ "${Z2MHA_HA_NAMESPACE:-}" != 1 ]]; then
  Z2MHA_ROOT="$root" Z2MHA_CACHE="$cache" bash "$root/scripts/setup/60-ha.sh"
  # The live test runs the sidecar as built; rebuild when a source is newer than the build.
  if [[ ! -f $root/dist/cli.js ]] ||
    [[ -n "$(find "$root/sidecar" -name '*.ts' -newer "$root/dist/cli.js" -print -quit)" ]]; then
    (cd "$root" && npm run build --silent)
  fi
  export Z2MHA_HA_NAMESPACE=1
  exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" "$@"
fi

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -l "${mounted[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT

bind() { # bind SRC DEST [extra mount options]
  local src=$1 dest=$2
  if [[ -d $src ]]; then mkdir -p "$dest"; else mkdir -p "$(dirname "$dest")" && touch "$dest"; fi
  mount --bind "$src" "$dest"
  mounted+=("$dest")
}

mkdir -p "$chroot_dir/proc"
mount -t proc proc "$chroot_dir/proc"
mounted+=("$chroot_dir/proc")
mkdir -p "$chroot_dir/dev" "$chroot_dir/sys"
mount --rbind /dev "$chroot_dir/dev"
mounted+=("$chroot_dir/dev")
bind /sys "$chroot_dir/sys"
bind "$root" "$chroot_dir$root"
bind "$(readlink -f "$(command -v node)")" "$chroot_dir/usr/local/bin/node"

chroot_bin=$(command -v chroot)
run_in() { # run_in VENV COMMAND...
  local venv=$1
  shift
  env -i PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" HOME=/root LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 COVERAGE_FILE=/tmp/z2mha-coverage Z2MHA_ROOT="$root" \
    "$chroot_bin" "$chroot_dir" /bin/sh -c 'cd "$0" && exec "$@"' "$root" "$@"
}
run() { run_in /opt/ha-venv "$@"; }
ha_version() { run_in "$1" python -c 'import homeassistant.const as c; print(c.__version__)'; }

failed=()
targets=(custom_components/zigbee2mqtt_ha test/ha scripts/brand_images.py)
echo "== ruff check"
run ruff check --no-cache "${targets[@]}" || failed+=("ruff check")
echo "== ruff format --check"
run ruff format --no-cache --check "${targets[@]}" || failed+=("ruff format")
echo "== mypy"
run mypy --cache-dir=/tmp/mypy-cache "${targets[@]}" || failed+=(mypy)
newest=$(ha_version /opt/ha-venv)
oldest=$(ha_version /opt/ha-venv-oldest)
# Coverage of both runs together (compat.py's branches for older releases run only on those),
# reported and gated after the second.
cov_newest=() cov_oldest=()
if (($# == 0)); then
  cov_newest=(--cov=custom_components/zigbee2mqtt_ha --cov-branch --cov-report=)
  cov_oldest=(--cov=custom_components/zigbee2mqtt_ha --cov-branch --cov-append
    --cov-report=term-missing:skip-covered --cov-fail-under=95)
fi
echo "== pytest on Home Assistant $newest (newest supported; test/ha unless paths are given)"
run pytest -p no:cacheprovider "${cov_newest[@]}" "$@" || failed+=("pytest on $newest")
echo "== pytest on Home Assistant $oldest (oldest supported)"
run_in /opt/ha-venv-oldest pytest -p no:cacheprovider "${cov_oldest[@]}" "$@" ||
  failed+=("pytest on $oldest")

if ((${#failed[@]})); then
  echo "test-ha: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test-ha: ruff, mypy and pytest on Home Assistant $newest and $oldest passed"
