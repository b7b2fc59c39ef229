#!/usr/bin/env bash
# `make run`: the main job, from a fresh machine.
#
# Installs the toolchain, builds (or reuses) the cached kernel, builds the
# module, boots the guest (4 vCPUs, 4-queue virtio-net on a multiqueue tap in
# a private network namespace), loads the module, has the host send UDP flows
# into the guest while pktring_capture reads them from the ring, shows which
# vCPUs and RX queues produced the frames and the ring's stats, and unloads
# the module.
#
# Knobs: PKTRING_RUN_PACKETS (default 4000), PKTRING_RUN_RATE (packets/s the
# host sends, default 2000, slow enough for a TCG guest's consumer).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

packets=${PKTRING_RUN_PACKETS:-4000}
rate=${PKTRING_RUN_RATE:-2000}

bash "$TOP/scripts/setup.sh"
kdir=$(bash "$TOP/scripts/kernel.sh" base | tail -n1)

step "building rust_pktring.ko and the guest programs"
make -C "$TOP" -s KDIR="$kdir" modules >"$LOGDIR/module.log" 2>&1 ||
	die "module build failed (see $LOGDIR/module.log)"
make -C "$TOP/selftests" -s all >"$LOGDIR/selftests.log" 2>&1 ||
	die "selftests build failed (see $LOGDIR/selftests.log)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pktring-run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/job.sh" <<EOF
#!/bin/sh
set -e
insmod /lib/modules/rust_pktring.ko
echo "# dmesg: \$(dmesg | grep rust_pktring | tail -n1)"
pktring_capture -n $packets -t 120 -i eth0 -- \\
	pktring-traffic udp --dst 198.18.0.2 --flows 16 --count $packets --size 200 --rate $rate
echo "# RX interrupts per queue and CPU:"
grep -E 'virtio[0-9]+-input' /proc/interrupts
rmmod rust_pktring
echo "# dmesg: \$(dmesg | grep rust_pktring | tail -n1)"
EOF
"$TOP/qemu/mkinitramfs.sh" "$tmp/initramfs.cpio.gz" \
	--add "$TOP/rust_pktring.ko:/lib/modules/rust_pktring.ko" \
	--add "$TOP/selftests/build/pktring_capture:/bin/pktring_capture" \
	--add "$tmp/job.sh:/bin/job.sh" --run "sh /bin/job.sh"

log="$LOGDIR/run-$(date +%Y%m%d-%H%M%S).log"
step "booting the guest: $packets UDP packets over 16 flows from the host at $rate/s"
"$TOP/qemu/boot.sh" --kernel "$kdir/arch/x86/boot/bzImage" --initramfs "$tmp/initramfs.cpio.gz" \
	--timeout 600 --log "$log" --quiet
tr -d '\r' <"$log" | sed -n '/^pktring-init: kernel/,/^pktring-init: command exited/p' |
	grep -vE '^\[ *[0-9]+\.[0-9]+\]'
step "done; console log: $log"
