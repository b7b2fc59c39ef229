#!/usr/bin/env bash
# `make run`: the main job, from a fresh machine.
#
# Installs the toolchain, builds (or reuses) the cached kernel, builds the
# module and the pktring CLI, boots the guest (4 vCPUs, 4-queue virtio-net on
# a multiqueue tap in a private network namespace), loads the module, has the
# host send UDP flows into the guest while `pktring capture` writes them to a
# pcap, shows its stats (with the vCPUs and RX queues that produced the
# frames), brings the pcap back to the host, reads it with tcpdump and says
# where it is.
#
# Knobs: PKTRING_RUN_PACKETS (default 4000), PKTRING_RUN_RATE (packets/s the
# host sends, default 2000, slow enough for a TCG guest's consumer).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

packets=${PKTRING_RUN_PACKETS:-4000}
rate=${PKTRING_RUN_RATE:-2000}

bash "$TOP/scripts/setup.sh"
kdir=$(bash "$TOP/scripts/kernel.sh" base | tail -n1)

step "building rust_pktring.ko and the pktring CLI"
build_guest_programs "$kdir"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pktring-run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/job.sh" <<EOF
#!/bin/sh
set -e
. /etc/pktring/testnet.env
insmod /lib/modules/rust_pktring.ko
echo "# dmesg: \$(dmesg | grep rust_pktring | tail -n1)"
pktring capture -w /tmp/capture.pcap -c $packets --duration 120s -i \$PKTRING_GUEST_IFNAME --blocks 64 2>/tmp/capture.err &
pid=\$!
while ! grep -q '^pktring: capturing' /tmp/capture.err && kill -0 \$pid 2>/dev/null; do sleep 0.1; done
head -n1 /tmp/capture.err
pktring-traffic udp --dst \$PKTRING_GUEST_IP4 --flows 16 --count $packets --size 200 --rate $rate
wait \$pid
tail -n +2 /tmp/capture.err
echo "# RX interrupts per queue and CPU:"
grep -E 'virtio[0-9]+-input' /proc/interrupts
pktring-export /tmp/capture.pcap capture.pcap
rmmod rust_pktring
echo "# dmesg: \$(dmesg | grep rust_pktring | tail -n1)"
EOF
"$TOP/qemu/mkinitramfs.sh" "$tmp/initramfs.cpio.gz" \
	--add "$TOP/rust_pktring.ko:/lib/modules/rust_pktring.ko" \
	--add "$TOP/userspace/target/guest/pktring:/bin/pktring" \
	--add "$tmp/job.sh:/bin/job.sh" --run "sh /bin/job.sh"

stamp=$(date +%Y%m%d-%H%M%S)
log="$LOGDIR/run-$stamp.log"
out="$CACHE/captures/run-$stamp"
step "booting the guest: $packets UDP packets over 16 flows from the host at $rate/s"
"$TOP/qemu/boot.sh" --kernel "$kdir/arch/x86/boot/bzImage" --initramfs "$tmp/initramfs.cpio.gz" \
	--timeout 600 --log "$log" --outdir "$out" --quiet
tr -d '\r' <"$log" | sed -n '/^pktring-init: kernel/,/^pktring-init: command exited/p' |
	grep -vE '^\[ *[0-9]+\.[0-9]+\]'
[ -f "$out/capture.pcap" ] || die "no pcap came back from the guest (console log: $log)"
step "the first packets, as the host's tcpdump reads them:"
tcpdump -r "$out/capture.pcap" -nn -c 5 2>/dev/null
step "pcap: $out/capture.pcap ($(tcpdump -r "$out/capture.pcap" -nn 2>/dev/null | wc -l) packets); console log: $log"
