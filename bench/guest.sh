#!/bin/sh
# The guest side of `make bench` (busybox sh), run by /init in one boot.
# bench/run.sh builds the initramfs with pktbench, tcp_sink, the module
# builds and this script.
#
#	bench-guest.sh [--seconds S] [--rounds N] [--fanout-rounds N] [--quick] [--sections LIST]
#
# Every phase is one `pktbench consume KIND ... -- TRAFFIC` run that prints a
# "@@BENCH ..." line. KIND pktring wakes the consumer per frontier move (the
# module's default), pktringb asks for batched wake-ups (a quarter of the
# ring's frames or 10 ms, as V3's blocks are handed over after 10 ms here). The consumers take the same traffic in turn, one at a
# time, each alone on CPU 0: in turn rather than at once, so that each
# phase's CPU and instruction counts belong to one consumer, and each sees
# the whole producer path to itself, as it would in use. The RX interrupts go
# to CPUs 1-3, which are the producing CPUs (in-guest senders are pinned
# there too). The `multi` section then runs all three at once on the same
# packets, as a fairness check. Phases are bracketed by tcgstat markers (ids
# from 1000 up, in steps of 2), so the host can add up what each phase cost.
#
# Sections (default all):
#   memcpy	the guest's memcpy bandwidth on 64 KiB copies, 1 CPU and all CPUs
#   host	host traffic through the tap: 64 B UDP (60k pps offered, more than
#		the guest takes, twice; and 15k pps, which every consumer keeps up
#		with), 1472 B UDP, TCP streams (GRO makes them ~64 KiB packets)
#   lo		in-guest traffic over loopback: 64 B UDP from 3 CPUs flat out
#		(twice), 65000 B UDP (one 64 KiB packet each) from 1 CPU at
#		1500/s, TCP
#   owner	rust_pktring as built, its noowner build and any extra builds
#		(/lib/modules/ab-NAME.ko), alternated round by round
#   multi	the three consumers at once
#   fanout	one ring (pktring) against fanout groups of 3 rings, cpu and hash
#		mode (one consumer thread each, all on CPU 0, then on CPUs 3, 1
#		and 2; the group shares the one ring's 4 MiB), on 64 B from the
#		host (120k pps offered)
#		and 64 B from 3 loopback senders, twice in opposite orders
#		(--fanout-rounds N: N times that)

. "${PKTRING_TESTNET:-/etc/pktring/testnet.env}"
nic=$PKTRING_GUEST_IFNAME
MODS=/lib/modules
B=pktbench
secs=4
rounds=2
fanout_rounds=1
quick=0
sections="memcpy host lo owner multi fanout"

while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) secs=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--fanout-rounds) fanout_rounds=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	--sections) sections=$2; shift 2 ;;
	*) echo "bench-guest: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

m=1000
note() { echo "@@NOTE $*"; }
has() { case " $sections " in *" $1 "*) return 0 ;; esac; return 1; }

# phase LABEL KIND GEOM IF [pktbench options] -- TRAFFIC...
phase() {
	label=$1 kind=$2 geom=$3 ifname=$4
	shift 4
	$B consume "$kind" --geom "$geom" --if "$ifname" --cpu 0 --mark $m --label "$label" "$@" |
		grep -E '^@@BENCH|^pktgen|^udpgen|^tcpgen|error'
	m=$((m + 2))
}

# The consumers in turn on one workload: the baseline without capture, then
# each ring kind on each geometry. With each2, all of it twice, the second
# time in the opposite order, so that a drift over the workload's minute
# falls on every consumer alike (the report averages the two).
each() { # name IF GEOMS [pktbench options] -- TRAFFIC...
	name=$1 ifname=$2 geoms=$3
	shift 3
	phase "$name-none" none a "$ifname" "$@"
	for g in $geoms; do
		for k in pktring pktringb tpv2 tpv3; do
			phase "$name-$g-$k" "$k" "$g" "$ifname" "$@"
		done
	done
}

each2() { # as each
	name=$1 ifname=$2 geoms=$3
	each "$@"
	shift 3
	rgeoms=
	for g in $geoms; do rgeoms="$g $rgeoms"; done
	for g in $rgeoms; do
		for k in tpv3 tpv2 pktringb pktring; do
			phase "$name-$g-$k" "$k" "$g" "$ifname" "$@"
		done
	done
	phase "$name-none" none a "$ifname" "$@"
}

# Loads a module build and prints its symbols, for the host's profile
# (tcgstat counts module code by address; the phases after this line ran it).
load() { # module file
	rmmod rust_pktring 2>/dev/null
	insmod "$1" || { echo "bench-guest: insmod $1 failed" >&2; exit 1; }
	[ -c /dev/pktring ] || mdev -s 2>/dev/null
	echo "@@KSYM-BEGIN $1"
	awk '$4 == "[rust_pktring]" && ($2 == "t" || $2 == "T") { print "@@KSYM", $1, $3 }' /proc/kallsyms
}

# RX interrupts off CPU 0, which the consumers have to themselves: queue i
# to CPU 1 + i % 3.
isolate_cpu0() {
	i=0
	for irq in $(grep -E 'virtio[0-9]+-input\.[0-9]+' /proc/interrupts | cut -d: -f1); do
		cpu=$((1 + i % 3))
		echo $((1 << cpu)) >/proc/irq/$((irq))/smp_affinity 2>/dev/null ||
			note "could not move irq $irq"
		i=$((i + 1))
	done
}

note "kernel $(uname -r), $(nproc) CPUs, $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' |
	grep -xE 'erms|fsrm|avx2|avx512f' | tr '\n' ' ')"
note "seconds=$secs rounds=$rounds fanout_rounds=$fanout_rounds sections=$sections"
# The traffic: the host's UDP flows (64 source ports, so that the tap spreads
# them over the queues) for $secs seconds, and the in-guest senders. Used
# unquoted.
host_udp="pktring-traffic udp --dst $PKTRING_GUEST_IP4 --flows 64 --count 0 --duration $secs"
host_tcp="pktring-traffic tcp --dst $PKTRING_GUEST_IP4 --streams 4 --bytes 0 --duration $secs"
lo_udp64="$B udpgen -c 1,2,3 -s 64 -t $secs"
lo_udp64k="$B udpgen -c 1 -s 65000 -r 1500 -t $secs"
lo_tcp="$B tcpgen -c 1 -r 2 -t $secs"

isolate_cpu0
load $MODS/rust_pktring.ko

# Each twice, alternating; the report takes the better of the two.
if has memcpy; then
	for r in 1 2; do
		for meth in libc movsb movq sse2; do
			$B memcpy -s 1.5 -t 1 -m $meth -M $m -l "memcpy-1cpu-$meth"
			m=$((m + 2))
		done
		for meth in libc movq; do
			$B memcpy -s 1.5 -t "$(nproc)" -m $meth -M $m -l "memcpy-allcpu-$meth"
			m=$((m + 2))
		done
	done
fi

if has host; then
	each2 host-udp64max "$nic" "a b" -- $host_udp --size 64 --rate 60000
	[ "$quick" = 1 ] || each host-udp64rate "$nic" "a b" -- $host_udp --size 64 --rate 15000
	each host-udp1472 "$nic" "a b" -- $host_udp --size 1472 --rate 30000
	taskset 0xe tcp_sink --port 9100 --conns 0 --timeout 3600 >/tmp/sink.log 2>&1 &
	sink=$!
	each host-tcp "$nic" "a b" --v3-snap -- $host_tcp
	kill $sink 2>/dev/null
	wait $sink 2>/dev/null
fi

if has lo; then
	each2 lo-udp64 lo "a" -- $lo_udp64
	each lo-udp64k lo "a b" --v3-snap -- $lo_udp64k
	[ "$quick" = 1 ] || each lo-tcp lo "b" -- $lo_tcp
fi

# rust_pktring's builds on the same workloads, alternating, so that drift
# over the run falls on all alike: 64 B from the host and from 3 CPUs, and
# 64 KiB packets into 64 KiB frames (4 MiB, so that no packet is dropped and
# every one is copied).
if has owner; then
	builds="owner noowner"
	for f in $MODS/ab-*.ko; do
		[ -f "$f" ] && { f=${f##*/ab-}; builds="$builds ${f%.ko}"; }
	done
	note "owner-map builds: $builds"
	r=1
	while [ $r -le "$rounds" ]; do
		for build in $builds; do
			case $build in
			owner) load $MODS/rust_pktring.ko ;;
			noowner) load $MODS/rust_pktring_noowner.ko ;;
			*) load $MODS/ab-$build.ko ;;
			esac
			phase "ab-host-udp64max-a-$build-$r" pktring a "$nic" -- $host_udp --size 64 --rate 60000
			phase "ab-lo-udp64-a-$build-$r" pktring a lo -- $lo_udp64
			phase "ab-lo-udp64k-c-$build-$r" pktring c lo -- $lo_udp64k
		done
		r=$((r + 1))
	done
	dmesg | grep -q 'TEST BUILD: rx_owner_map disabled' || note "the noowner build did not say TEST BUILD"
	load $MODS/rust_pktring.ko
fi

if has multi; then
	$B multi --geom a --if "$nic" --cpu 0 --mark $m --label multi-host-udp64max-a -- \
		$host_udp --size 64 --rate 60000 | grep -E '^@@BENCH|^pktgen|error'
	m=$((m + 2))
	$B multi --geom a --if lo --cpu 0 --mark $m --label multi-lo-udp64-a -- $lo_udp64 |
		grep -E '^@@BENCH|error'
	m=$((m + 2))
fi

# Fanout groups against one ring: the same traffic, the same 4 MiB (the group's 3
# members share its 64 blocks: 22, 21, 21), every consumer thread on CPU 0 as the
# one ring's consumer is, so the producing CPUs (1-3) are the same in every
# phase and only the rings they fill differ. cpu mode sends CPU c's packets to
# member c % 3: each member's ring lock is taken by one producing CPU (and its
# consumer). The host offers 120k pps, twice what one ring captures here, so
# that the offered rate does not cap the group's gain; the no-capture
# baseline is the traffic's own cost. cpupin and hashpin are the same groups
# with member I's consumer on a producing CPU instead (3, 1, 2: in cpu mode
# each beside the CPU that fills its ring, as a capture program with a worker
# per CPU runs), which gives the consumers more than CPU 0 but takes it from
# the producers. Twice, the second time in the opposite order, and that
# $fanout_rounds times; the report averages the runs.
fanout_rate=120000
# fphase NAME VARIANT IF -- TRAFFIC...: VARIANT none, ring, cpu, hash, cpupin
# or hashpin.
fphase() {
	label=$1-$2 variant=$2 ifname=$3
	shift 3
	case $variant in
	none | ring)
		k=none
		[ "$variant" = ring ] && k=pktring
		$B consume $k --geom a --if "$ifname" --cpu 0 --mark $m --label "$label" "$@" ;;
	cpu | hash)
		$B consume pktring-fanout "$variant" 3 --geom a --if "$ifname" --cpu 0 --mark $m \
			--label "$label" "$@" ;;
	cpupin | hashpin)
		$B consume pktring-fanout "${variant%pin}" 3 --geom a --if "$ifname" --cpu 0 \
			--member-cpus 3,1,2 --mark $m --label "$label" "$@" ;;
	esac | grep -E '^@@BENCH|^pktgen|^udpgen|error'
	m=$((m + 2))
}
if has fanout; then
	r=1
	while [ $r -le "$fanout_rounds" ]; do
		for v in none ring cpu hash cpupin hashpin hashpin cpupin hash cpu ring none; do
			fphase fanout-host-udp64 $v "$nic" -- $host_udp --size 64 --rate $fanout_rate
		done
		r=$((r + 1))
	done
	r=1
	while [ $r -le "$fanout_rounds" ]; do
		for v in none ring cpu hash cpupin hashpin hashpin cpupin hash cpu ring none; do
			fphase fanout-lo-udp64 $v lo -- $lo_udp64
		done
		r=$((r + 1))
	done
fi

rmmod rust_pktring
note "done"
