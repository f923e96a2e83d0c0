#!/bin/bash
# Builds a lab node's own view of the filesystem. Runs once, as root, INSIDE the node's new private
# mount namespace (never in the root namespace): every mount here is invisible to the machine.
#
# The node gets its own /dev (with a devpts instance of its own, where the simulated dongle's pty
# lives), /run, /tmp, /var/log, /mnt, /opt (the zigbee2mqtt data dir on a small tmpfs, so a full disk
# is real), /home (the zigbee user's home, also small), and per-node /etc files (passwd, group,
# shadow, hosts, hostname, sudoers.d, ssh, init.d) and /usr/local/bin, bound from HOST_DIR.
# HOST_DIR/sbin is the upper layer of an overlay on /usr/sbin: the OpenRC stand-ins appear at
# /sbin/rc-service and /sbin/rc-update, where Alpine has them (and where docs/nodes.md's sudo rule
# names them). HOST_DIR/lab appears as /run/lab (root only): the simulator's state, control socket
# and logs; HOST_DIR/faults as /run/lab-faults (fault orders the node's own user reads).
set -euo pipefail
usage="usage: node-root.sh HOST_DIR HOSTNAME UID GID DATA_SIZE HOME_SIZE Z2M_DIR REPO_DIR"
(($# == 8)) || { echo "$usage" >&2; exit 2; }
host_dir=$1 hostname=$2 uid=$3 gid=$4 data_size=$5 home_size=$6 z2m_dir=$7 repo_dir=$8

hostname "$hostname"

# This namespace started as a copy of the root namespace's mounts. Copies of namespace files (ip netns,
# the lab's own ns files) would keep other namespaces alive after `down`: drop them here.
if mountpoint -q /run/netns; then umount -R -l /run/netns; fi
for ns_dir in /run/z2mha-lab/*/ns; do
  while mountpoint -q "$ns_dir"; do umount -R -l "$ns_dir"; done
done

# Sysfs mounted from inside the network namespace shows this node's interfaces only.
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys

# Staging area: the new /dev and /run are built under /mnt, then moved into place last, because
# HOST_DIR lives under the root namespace's /run and must stay reachable until everything is bound.
mount -t tmpfs -o mode=0755,size=1m tmpfs /mnt
mkdir /mnt/dev /mnt/run /mnt/repo
# The repository (the simulator runs from it) stays reachable at its own path, also when it lives
# under a directory this node gets its own copy of below (a clone in /tmp, say): kept aside here.
mount --bind "$repo_dir" /mnt/repo

mount -t tmpfs -o mode=0755,size=1m,nosuid tmpfs /mnt/dev
for dev in null zero full random urandom tty; do
  touch "/mnt/dev/$dev"
  mount --bind "/dev/$dev" "/mnt/dev/$dev"
done
mkdir /mnt/dev/pts /mnt/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts /mnt/dev/pts
ln -s pts/ptmx /mnt/dev/ptmx
mount -t tmpfs -o mode=1777,size=16m,nosuid,nodev tmpfs /mnt/dev/shm
ln -s /proc/self/fd /mnt/dev/fd
ln -s /proc/self/fd/0 /mnt/dev/stdin
ln -s /proc/self/fd/1 /mnt/dev/stdout
ln -s /proc/self/fd/2 /mnt/dev/stderr

mount -t tmpfs -o mode=0755,size=16m,nosuid,nodev tmpfs /mnt/run
mkdir -m 0700 /mnt/run/lab
mount --bind "$host_dir/lab" /mnt/run/lab
mkdir -m 0755 /mnt/run/sshd /mnt/run/openrc /mnt/run/lab-faults
mount --bind "$host_dir/faults" /mnt/run/lab-faults

for file in passwd group shadow hosts hostname; do
  mount --bind "$host_dir/etc/$file" "/etc/$file"
done
for dir in sudoers.d ssh init.d; do
  mount --bind "$host_dir/etc/$dir" "/etc/$dir"
done
mount --bind "$host_dir/bin" /usr/local/bin
mount -t overlay overlay -o "lowerdir=/usr/sbin,upperdir=$host_dir/sbin,workdir=$host_dir/sbin-work" /usr/sbin

# One zigbee2mqtt install shared by every node, read-only as a package install would be.
mount --bind "$z2m_dir" "$z2m_dir"
mount -o remount,bind,ro "$z2m_dir"

mount -t tmpfs -o mode=0755,size=1m tmpfs /opt
mkdir /opt/zigbee2mqtt
mount -t tmpfs -o "mode=0755,size=$data_size,uid=$uid,gid=$gid,nodev,nosuid" tmpfs /opt/zigbee2mqtt
install -d -m 0755 -o "$uid" -g "$gid" /opt/zigbee2mqtt/data

mount -t tmpfs -o "mode=0755,size=$home_size,nodev,nosuid" tmpfs /home
install -d -m 0755 -o "$uid" -g "$gid" /home/zigbee
cp -a "$host_dir/home/." /home/zigbee/
chown -R "$uid:$gid" /home/zigbee
chmod 0755 /home/zigbee

mount -t tmpfs -o mode=1777,size=64m,nodev,nosuid tmpfs /tmp
mount -t tmpfs -o mode=0755,size=32m,nodev,nosuid tmpfs /var/log

if [[ -e "$repo_dir/package.json" ]]; then
  umount /mnt/repo
else
  mkdir -p "$repo_dir"
  mount --no-mtab --move /mnt/repo "$repo_dir"
fi
rmdir /mnt/repo

umount -R -l /dev
mount --no-mtab --move /mnt/dev /dev
mount --no-mtab --move /mnt/run /run
rmdir /mnt/dev /mnt/run
