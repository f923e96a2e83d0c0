#!/usr/bin/env bash
# The lab (test/lab, docs/lab.md): checks that this machine can run it. Everything it runs comes
# from earlier parts (Debian packages in apt-packages.txt, zigpy-znp, zigbee2mqtt, npm deps); this
# part installs nothing. It proves the kernel features the lab uses in a throwaway network namespace
# (veth, bridge, iptables statistic and NFQUEUE, mount/PID/UTS namespaces) and removes it again.
# Idempotent; leaves nothing behind.
set -euo pipefail
root="${Z2MHA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
cache="${Z2MHA_CACHE:-/var/cache/zigbee2mqtt-ha}"

missing=()
for cmd in ip nsenter unshare setpriv findmnt mountpoint sysctl iptables sshd ssh ssh-keygen ssh-keyscan rsync \
  mosquitto mosquitto_sub mosquitto_pub snmptrapd snmptrap socat sudo curl /usr/bin/python3; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
for file in "$cache/znp-venv/bin/python3" "$cache/zigbee2mqtt/node_modules/zigbee2mqtt/index.js" \
  "$root/node_modules/tsx/dist/loader.mjs" "$root/node_modules/net-snmp/lib/mibs/SNMPv2-SMI.mib"; do
  [[ -e $file ]] || missing+=("$file")
done
if ((${#missing[@]})); then
  echo "the lab cannot run; missing: ${missing[*]} (run the earlier setup parts)" >&2
  exit 1
fi

ns=z2mha-setup-check
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add "$ns"
in_ns() { nsenter --net="/run/netns/$ns" -- "$@"; }
ip -n "$ns" link add br0 type bridge
ip -n "$ns" link add chk0 type veth peer name chk1
ip -n "$ns" link set chk0 master br0
in_ns iptables -w -A OUTPUT -o chk1 -m statistic --mode random --probability 0.5 -j DROP
in_ns iptables -w -A OUTPUT -o chk1 -j NFQUEUE --queue-num 0 --queue-bypass
in_ns unshare --pid --fork --mount-proc --mount --uts --propagation private -- /bin/sh -c \
  'hostname lab-check && mount -t tmpfs -o size=1m tmpfs /mnt && test "$(hostname)" = lab-check'
echo "lab prerequisites present: namespaces, veth, bridge, iptables statistic/NFQUEUE (the kernel has no sch_netem: the lab delays packets through NFQUEUE)"
