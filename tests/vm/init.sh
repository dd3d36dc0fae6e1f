#!/bin/bash
# PID 1 of the kernel-tier VM (installed in the image as /sbin/wggw-vm-init by scripts/vm-test; a
# change here rebuilds the image). No systemd, which would only add boot time under TCG: mount
# what a booted system has, mount the run's control share, run the guest.sh that scripts/vm-test
# copied there, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mnt() { mountpoint -q "$3" || mount -t "$1" -o "$2" "$1" "$3"; }
mnt proc rw /proc
mnt sysfs rw /sys
mnt devtmpfs mode=0755 /dev
mkdir -p /dev/pts /dev/shm
mnt devpts rw /dev/pts
mnt tmpfs rw /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mnt cgroup2 rw /sys/fs/cgroup 2>/dev/null
hostname wggw-vm
ip link set lo up
modprobe -a 9pnet_virtio 9p virtio_rng 2>/dev/null
mkdir -p /mnt/ctl
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctl /mnt/ctl; then
  bash /mnt/ctl/guest.sh </dev/null 2>&1 | tee /dev/console >/mnt/ctl/guest.log
else
  echo "wggw-vm-init: cannot mount the control share" >/dev/console
fi
sync
echo o >/proc/sysrq-trigger
sleep 30
