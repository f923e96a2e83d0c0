#!/usr/bin/env bash
# Home Assistant for the integration's tests: current Home Assistant needs Python 3.14, which
# Debian 12 lacks, so it runs in a Debian-testing chroot at $Z2MHA_CACHE/ha-chroot with two
# venvs holding exact versions:
#   /opt/ha-venv         test/ha/requirements.txt         newest supported Home Assistant, ruff, mypy
#   /opt/ha-venv-oldest  test/ha/requirements-oldest.txt  oldest supported Home Assistant
# and on top of /opt/ha-venv, what the end-to-end test's real `hass` needs (test/lab/ha-e2e.test.ts):
#   test/ha/requirements-e2e.txt  its frontend and the requirements of what it sets up; constrained
#                                 to what the venv holds, so the pytest runs see the same packages
# Idempotent: each venv is skipped when its stamp matches its requirements and the package list.
# Measured here: a new chroot with the first venv 2 min 48 s, the second venv on top 1 min 12 s
# (so about 4 min cold), the e2e layer on top 2 min 30 s (g++ 13 s, then pip, which builds
# pymicro-vad and pyspeex-noise); one venv's requirements changed, 1 to 2 min (pip); up to
# date, well under a second.
set -euo pipefail
root="${Z2MHA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"
chroot_dir="$cache/ha-chroot"
mirror="${Z2MHA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=python3,python3-venv,python3-dev,ca-certificates,gcc,libc6-dev,libstdc++6
# Bump when the way a venv is built changes; the requirements and packages are hashed anyway.
recipe=1
# venv in the chroot, its requirements, its stamp (the first one's names predate the second).
venvs=(
  "/opt/ha-venv $root/test/ha/requirements.txt $chroot_dir/.z2mha-stamp"
  "/opt/ha-venv-oldest $root/test/ha/requirements-oldest.txt $chroot_dir/.z2mha-stamp-oldest"
)

wanted() { (cat "$1"; echo "$packages $recipe") | sha256sum | cut -d' ' -f1; }

up_to_date() { # up_to_date VENV REQ STAMP
  [[ -f $3 && "$(cat "$3")" == "$(wanted "$2")" && -x $chroot_dir$1/bin/python ]]
}

e2e_req=$root/test/ha/requirements-e2e.txt
e2e_stamp=$chroot_dir/.z2mha-stamp-e2e

stale=()
for spec in "${venvs[@]}"; do
  read -r venv req stamp <<<"$spec"
  up_to_date "$venv" "$req" "$stamp" || stale+=("$spec")
done
# The e2e layer goes with its venv: rebuilt whenever that is, or when its requirements change.
e2e_stale=0
[[ ${#stale[@]} == 0 && -f $e2e_stamp && "$(cat "$e2e_stamp")" == "$(wanted "$e2e_req")" &&
  -d $chroot_dir/opt/ha-venv/lib/python3.14/site-packages/hass_frontend ]] || e2e_stale=1
if ((${#stale[@]} == 0 && e2e_stale == 0)); then
  echo "Home Assistant chroot up to date in $chroot_dir"
  exit 0
fi

if [[ ! -x $chroot_dir/usr/bin/python3 ]]; then
  command -v debootstrap >/dev/null || {
    echo "debootstrap missing: run scripts/setup/10-apt.sh first" >&2
    exit 1
  }
  # Only the chroot's own mounts can be in the way of rm -rf; refuse rather than delete through one.
  if grep -q " $chroot_dir/" /proc/mounts; then
    echo "$chroot_dir has mounts left (a test run still going?); unmount them first:" >&2
    grep " $chroot_dir/" /proc/mounts >&2
    exit 1
  fi
  # Built aside and renamed, so an interrupted debootstrap never passes for a finished one.
  partial="$chroot_dir.partial"
  rm -rf "$partial"
  mkdir -p "$cache"
  echo "debootstrap Debian testing into $chroot_dir"
  debootstrap --variant=minbase \
    --include="$packages" \
    testing "$partial" "$mirror" >"$cache/ha-debootstrap.log" 2>&1 || {
    tail -20 "$cache/ha-debootstrap.log" >&2
    exit 1
  }
  rm -rf "$chroot_dir"
  mv "$partial" "$chroot_dir"
fi

# The host's name resolution, CA bundle and pip settings (a proxy or a mirror, if any).
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
[[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$chroot_dir/etc/pip.conf"
if [[ -n "${PIP_CERT:-}" && -f $PIP_CERT ]]; then
  mkdir -p "$chroot_dir$(dirname "$PIP_CERT")"
  cp "$PIP_CERT" "$chroot_dir$PIP_CERT"
fi
pass_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
while IFS='=' read -r name value; do
  case "$name" in
  PIP_FIND_LINKS) [[ -d $chroot_dir$value ]] || continue ;; # a host directory the chroot lacks
  PIP_* | http_proxy | https_proxy | no_proxy | HTTP_PROXY | HTTPS_PROXY | NO_PROXY) ;;
  *) continue ;;
  esac
  pass_env+=("$name=$value")
done < <(env)

in_chroot() { env -i "${pass_env[@]}" chroot "$chroot_dir" "$@"; }

for spec in "${stale[@]}"; do
  read -r venv req stamp <<<"$spec"
  setup_dir="/tmp/z2mha-setup-$(basename "$venv")"
  mkdir -p "$chroot_dir$setup_dir"
  cp "$req" "$chroot_dir$setup_dir/requirements.txt"
  rm -f "$stamp"
  rm -rf "${chroot_dir:?}$venv"
  in_chroot python3 -m venv "$venv"
  echo "pip install $(basename "$req") into the chroot's $venv (Python $(in_chroot python3 -c 'import sys; print(sys.version.split()[0])'))"
  in_chroot "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$setup_dir/requirements.txt"
  in_chroot "$venv/bin/python" -c 'import homeassistant.const as c, pytest_homeassistant_custom_component as p; print("Home Assistant", c.__version__)'
  rm -rf "${chroot_dir:?}$setup_dir"
  wanted "$req" >"$stamp"
done

if ((e2e_stale)); then
  setup_dir=/tmp/z2mha-setup-e2e
  mkdir -p "$chroot_dir$setup_dir"
  cp "$e2e_req" "$chroot_dir$setup_dir/requirements.txt"
  rm -f "$e2e_stamp"
  if ! in_chroot sh -c 'command -v g++' >/dev/null; then
    echo "apt-get install g++ into the chroot (two of the e2e requirements build from source)"
    # Debian testing's Release files may carry a Valid-Until behind this machine's clock.
    in_chroot apt-get -o Acquire::Check-Valid-Until=false update -qq
    in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null
  fi
  echo "pip install $(basename "$e2e_req") into the chroot's /opt/ha-venv"
  in_chroot /opt/ha-venv/bin/pip freeze --exclude-editable >"$chroot_dir$setup_dir/constraints.txt"
  in_chroot /opt/ha-venv/bin/pip install --quiet --disable-pip-version-check \
    -r "$setup_dir/requirements.txt" -c "$setup_dir/constraints.txt"
  rm -rf "${chroot_dir:?}$setup_dir"
  wanted "$e2e_req" >"$e2e_stamp"
fi
