#!/usr/bin/env bash
# `make shell`: a guest to try rust_pktring by hand.
#
# Builds what `make run` builds (the cached kernel, the module, the pktring
# CLI, the host's traffic generator), then boots the kernel under virtme-ng
# (the host's root over 9p, read-only with overlays; 4 vCPUs, a 4-queue
# virtio-net NIC on a tap in a private network namespace) with the module
# loaded, and gives this terminal an interactive shell in it (busybox sh):
# pktring and pktring-traffic on the PATH, and the host's tools (tcpdump,
# tshark) as they are on the host. Exit the shell to power the guest off.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bash "$TOP/scripts/setup.sh"
kdir=$(bash "$TOP/scripts/kernel.sh" base | tail -n1)

step "building rust_pktring.ko, the pktring CLI and the traffic generator"
build_guest_programs "$kdir"

step "booting the guest (virtme-ng, TCG: about a minute); exit the shell to power it off"
exec "$TOP/qemu/boot.sh" --kernel "$kdir/arch/x86/boot/bzImage" --shell
