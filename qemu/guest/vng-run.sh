#!/bin/busybox sh
# The guest side of `qemu/boot.sh --vng`: in a virtme-ng guest (the host's
# root over 9p), set up what qemu/init sets up in the initramfs guest, run
# the command, and print "@@PKTRING-EXIT <rc>@@" for boot.sh.
#
#	vng-run.sh 'shell command'
#	vng-run.sh --shell
#
# --shell (`make shell`: qemu/boot.sh --shell, with vng-shell.sh as
# virtme-ng's user shell) loads the module and hands the console to an
# interactive shell instead; the guest powers off when it exits.
#
# Busybox's applets come first in PATH, so the guest tests run under the same
# shell and tools as in the initramfs guest; then the project's guest scripts
# and test programs and the pktring CLI, straight from the host's tree.
# PKTRING_MODULE points the tests at the module built in that tree, and
# PKTRING_TESTNET the guest scripts at its testnet.env (the initramfs guest
# has it in /etc/pktring).
TOP=$(cd "$(dirname "$0")/../.." && pwd)
bb=/tmp/pktring-busybox
mkdir -p "$bb" && busybox --install -s "$bb"
export PATH="$bb:$TOP/qemu/guest:$TOP/selftests/guest:$TOP/selftests/build:$TOP/userspace/target/guest:$PATH"
export PKTRING_MODULE=${PKTRING_MODULE:-$TOP/rust_pktring.ko}
export PKTRING_TESTNET=$TOP/testnet.env
. "$PKTRING_TESTNET"

ip link set lo up
dev=$PKTRING_GUEST_IFNAME
if ip link set "$dev" up && ip addr add "$PKTRING_GUEST_IP4/$PKTRING_IP4_PREFIX" dev "$dev"; then
	# As qemu/init does (busybox's ip has no nodad).
	ip -6 addr add "$PKTRING_GUEST_IP6/$PKTRING_IP6_PREFIX" dev "$dev" 2>/dev/null
else
	echo "vng-run: $dev is missing or could not be set up"
fi
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
if [ "$1" = --shell ]; then
	insmod "$PKTRING_MODULE" || echo "vng-run: insmod $PKTRING_MODULE failed"
	echo "vng-run: kernel $(uname -r), $(nproc) CPUs, rust_pktring loaded from $PKTRING_MODULE"
	echo "vng-run: $dev is $PKTRING_GUEST_IP4; pktring-traffic has the host ($PKTRING_HOST_IP4) send to it:"
	echo "vng-run:   pktring capture -w /tmp/x.pcapng -i $dev -c 100 &"
	echo "vng-run:   pktring-traffic udp --dst $PKTRING_GUEST_IP4 --count 100 --rate 1000"
	echo "vng-run: exit (or Ctrl-D) powers the guest off."
	cd /tmp && exec sh -i
fi
echo "vng-run: kernel $(uname -r), $(nproc) CPUs online, running: $*"
cd /tmp && sh -c "$*" </dev/null
rc=$?
echo "@@PKTRING-EXIT $rc@@"
exit $rc
