#!/bin/bash
# Sets up the lab controller's mount namespace: the machine's filesystem as it is (the controller's
# programs, the lab's run dir and the repository stay at their usual paths) plus its own hostname,
# /etc/hosts naming the lab's hosts, and sysfs for its own interfaces. Runs inside the controller.
set -euo pipefail
(($# == 2)) || { echo "usage: controller-root.sh HOST_DIR HOSTNAME" >&2; exit 2; }
host_dir=$1 hostname=$2
hostname "$hostname"
if mountpoint -q /run/netns; then umount -R -l /run/netns; fi
for ns_dir in /run/z2mha-lab/*/ns; do
  while mountpoint -q "$ns_dir"; do umount -R -l "$ns_dir"; done
done
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
for file in hosts hostname; do
  mount --bind "$host_dir/etc/$file" "/etc/$file"
done
