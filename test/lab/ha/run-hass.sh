#!/usr/bin/env bash
# Runs a real Home Assistant (`hass`) from the Debian-testing chroot made by scripts/setup/60-ha.sh
# (the newest supported release, /opt/ha-venv, with test/ha/requirements-e2e.txt on top: its
# frontend), in the caller's network namespace:
#   run-hass.sh CONFIG_DIR
# CONFIG_DIR (a host path) appears at the same path inside the chroot, and so does the repository
# (a custom_components/ link in CONFIG_DIR may point into it). The mounts live in a private mount
# namespace that ends with hass; hass is exec'd, so a signal to this process reaches it.
# --skip-pip: nothing is installed at run time (an integration whose requirements are missing
# fails to load instead, which the onboarding's default integrations do, harmlessly).
set -euo pipefail
config=${1:?usage: run-hass.sh CONFIG_DIR}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
chroot_dir="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}/ha-chroot"
[[ -d $chroot_dir/opt/ha-venv/lib/python3.14/site-packages/hass_frontend ]] || {
  echo "run-hass: no Home Assistant with its frontend in $chroot_dir: run scripts/setup/60-ha.sh" >&2
  exit 1
}
if [[ "${Z2MHA_HASS_NAMESPACE:-}" != 1 ]]; then
  export Z2MHA_HASS_NAMESPACE=1
  exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" "$@"
fi

bind() { # bind SRC DEST
  mkdir -p "$2"
  mount --bind "$1" "$2"
}
mkdir -p "$chroot_dir/proc" "$chroot_dir/dev" "$chroot_dir/sys"
mount -t proc proc "$chroot_dir/proc"
mount --rbind /dev "$chroot_dir/dev"
bind /sys "$chroot_dir/sys"
bind "$root" "$chroot_dir$root"
bind "$config" "$chroot_dir$config"

exec env -i PATH=/opt/ha-venv/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  PYTHONDONTWRITEBYTECODE=1 \
  "$(command -v chroot)" "$chroot_dir" \
  /opt/ha-venv/bin/python -m homeassistant --config "$config" --skip-pip --log-no-color
