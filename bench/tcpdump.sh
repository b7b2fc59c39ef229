#!/bin/sh
# The tcpdump section of `make bench` (busybox sh), in a virtme-ng guest
# (qemu/boot.sh --vng): real tcpdump, the host's own binary, and the pktring
# CLI capture the same host traffic in turn, each writing a pcap to a tmpfs,
# in one boot. bench/run.sh starts it as
#
#	tcpdump.sh --pktbench FILE --pktring FILE --module FILE [--tcpdump FILE]
#		   [--seconds S] [--rounds N] [--mark ID] [--workloads LIST]
#
# Why virtme-ng: the guest runs the host's root file system, so Debian's
# tcpdump runs with its own shared libraries (libpcap 1.10, libcrypto,
# libdbus, libsystemd...) exactly as on the host; the busybox initramfs has no
# libc. The kernel and the module are the same files the initramfs boot uses.
#
# Consumers, each alone on CPU 0 (the RX interrupts go to CPUs 1-3), rings of
# 4 MiB:
#   tcpdump	tcpdump -B 4096 -w FILE: libpcap's TPACKET_V3 ring, its default
#   tcpdumpimm	the same with --immediate-mode: libpcap then uses TPACKET_V2
#   pktring	pktring capture -w FILE, 64 blocks of 64 KiB, 2 KiB frames: its
#		default batched wake-ups (half the ring, or 200 ms)
#   pktringimm	the same with --immediate-mode (a wake-up per frontier move)
#   none	no capture (the baseline: what reaches IP without one)
# Each run is one `pktbench capture` (see bench/pktbench.c): the consumer
# is started, and once it says it captures, the host sends for S seconds
# (pktring-traffic udp ... --flows 64); 2 s after that it gets SIGINT (so
# that a partly filled V3 block, 1 s in tcpdump, and a batch are handed over
# first). What it cost is its CPU time and context switches from the moment
# it was ready to its exit. The pcap is then counted twice, with
# `tcpdump -r FILE | wc -l` (what libpcap reads) and `pktbench pcapcount`
# (the records, and whether the file is whole), and deleted: pcaps stay in the
# guest, since the serial line that pktring-export uses would take minutes
# for the 10-120 MB of one run.
#
# Order: per workload and round, tcpdump and pktring alternate (none,
# tcpdump, pktring, tcpdumpimm, pktringimm; the next round backwards), so
# that drift over the workload falls on both alike.
#
# Workloads (64 UDP flows to a port a socket is bound to but never reads, so
# the guest answers nothing): 64 B flat out (saturating), 64 B asked at
# 86400 pps, 64 B at 10k pps (every consumer keeps up: compare what it cost),
# 1472 B at 20k pps.

. "${PKTRING_TESTNET:-/etc/pktring/testnet.env}"
nic=$PKTRING_GUEST_IFNAME
B= PKTRING= MODULE= TCPDUMP=
secs=4 rounds=3 m=20000
workloads="udp64max udp64at86k udp64at10k udp1472at20k"

fail() {
	echo "bench-tcpdump: error: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--pktbench) B=$2; shift 2 ;;
	--pktring) PKTRING=$2; shift 2 ;;
	--module) MODULE=$2; shift 2 ;;
	--tcpdump) TCPDUMP=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--mark) m=$2; shift 2 ;;
	--workloads) workloads=$2; shift 2 ;;
	*) fail "unknown argument '$1'" ;;
	esac
done
[ -x "$B" ] || fail "--pktbench: '$B' is not an executable"
[ -x "$PKTRING" ] || fail "--pktring: '$PKTRING' is not an executable (make -C userspace guest)"
[ -f "$MODULE" ] || fail "--module: '$MODULE' not found"
[ -n "$TCPDUMP" ] || TCPDUMP=$(command -v tcpdump) || fail "no tcpdump in PATH: apt-get install tcpdump"
[ -x "$TCPDUMP" ] || fail "--tcpdump: '$TCPDUMP' is not an executable"
case "$secs$rounds" in *[!0-9]*) fail "--seconds and --rounds take whole numbers" ;; esac

note() { echo "@@NOTE $*"; }

rmmod rust_pktring 2>/dev/null
insmod "$MODULE" || fail "insmod $MODULE failed"
[ -c /dev/pktring ] || mdev -s 2>/dev/null
[ -c /dev/pktring ] || fail "/dev/pktring did not appear"
echo "@@KSYM-BEGIN $MODULE"
awk '$4 == "[rust_pktring]" && ($2 == "t" || $2 == "T") { print "@@KSYM", $1, $3 }' /proc/kallsyms

# RX interrupts off CPU 0, which the consumer has to itself: queue i to CPU
# 1 + i % 3 (as bench/guest.sh does).
i=0
for irq in $(grep -E 'virtio[0-9]+-input\.[0-9]+' /proc/interrupts | cut -d: -f1); do
	echo $((1 << (1 + i % 3))) >/proc/irq/$((irq))/smp_affinity 2>/dev/null || note "could not move irq $irq"
	i=$((i + 1))
done

dir=/tmp/pktbench-pcap
mkdir -p $dir && mount -t tmpfs -o size=1200m tmpfs $dir || fail "could not mount a tmpfs on $dir"
taskset 0xe "$B" sink -p 9000 &
sink=$!

note "tcpdump section: kernel $(uname -r), $(nproc) CPUs; $("$TCPDUMP" --version 2>&1 | head -n 2 | tr '\n' ' ')($TCPDUMP); $("$PKTRING" --version 2>&1)"
note "tcpdump section: seconds=$secs rounds=$rounds workloads=$workloads"

run() { # workload consumer round
	wl=$1 who=$2 r=$3
	label="td-$wl-$who-$r" pcap=$dir/$wl-$who-$r.pcap
	case $wl in
	udp64max) traffic="--size 64" ;;
	udp64at86k) traffic="--size 64 --rate 86400" ;;
	udp64at10k) traffic="--size 64 --rate 10000" ;;
	udp1472at20k) traffic="--size 1472 --rate 20000" ;;
	*) fail "unknown workload '$wl'" ;;
	esac
	case $who in
	tcpdump) ready="listening on" cmd="$TCPDUMP -i $nic -B 4096 -Z root -w $pcap" ;;
	tcpdumpimm) ready="listening on" cmd="$TCPDUMP -i $nic -B 4096 -Z root --immediate-mode -w $pcap" ;;
	pktring) ready="pktring: capturing" cmd="$PKTRING capture -i $nic --blocks 64 --block-size 65536 --frame-size 2048 -w $pcap" ;;
	pktringimm) ready="pktring: capturing" cmd="$PKTRING capture -i $nic --blocks 64 --block-size 65536 --frame-size 2048 --immediate-mode -w $pcap" ;;
	none) ready="idle: ready" cmd= pcap= ;;
	*) fail "unknown consumer '$who'" ;;
	esac
	# shellcheck disable=SC2086 # $cmd and $traffic are word lists
	if [ "$who" = none ]; then
		"$B" capture --label "$label" --mark $m --cpu 0 --if "$nic" --ready "$ready" -- \
			"$B" sink -m "idle: ready" -- \
			pktring-traffic udp --dst "$PKTRING_GUEST_IP4" --flows 64 --count 0 --duration "$secs" $traffic
	else
		"$B" capture --label "$label" --mark $m --cpu 0 --if "$nic" --ready "$ready" --pcap "$pcap" -- \
			$cmd -- \
			pktring-traffic udp --dst "$PKTRING_GUEST_IP4" --flows 64 --count 0 --duration "$secs" $traffic
	fi || note "$label: pktbench capture failed"
	m=$((m + 2))
	[ -n "$pcap" ] || return 0
	n=$(taskset 0xe "$TCPDUMP" -r "$pcap" -nn -q -t 2>$dir/read.err | wc -l)
	echo "@@PCAPREAD label=$label tcpdump_r=$n err=$(grep -v '^reading from file' $dir/read.err | head -n 1 | tr ' =' '_:')"
	rm -f "$pcap"
}

order1="none tcpdump pktring tcpdumpimm pktringimm"
order2="pktringimm tcpdumpimm pktring tcpdump none"
for wl in $workloads; do
	r=1
	while [ $r -le "$rounds" ]; do
		if [ $((r % 2)) = 1 ]; then order=$order1; else order=$order2; fi
		for who in $order; do
			run "$wl" "$who" $r
		done
		r=$((r + 1))
	done
done

kill $sink 2>/dev/null
wait $sink 2>/dev/null
umount $dir
rmmod rust_pktring
note "tcpdump section done"
