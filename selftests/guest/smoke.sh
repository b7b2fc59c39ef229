#!/bin/sh
# Foundation smoke test, run in the guest (busybox sh) as /etc/pktring-run.
# Prints TAP; exits 0 only if every test passes.
#
#	smoke.sh [--no-module] [--module PATH] [--cpus N]
#
# --no-module	skip the module tests (reported as "# SKIP")
# --module	the module to load (default $PKTRING_MODULE or
#		/lib/modules/rust_pktring.ko)
# --cpus	CPUs (and RX queues of the test NIC) expected (default 4)
#
# The test NIC and the addresses are testnet.env's (/etc/pktring/testnet.env
# or $PKTRING_TESTNET).
#
# Checks: CPUs online; the test NIC's RX queues; the module loads (load line
# in dmesg, /dev/pktring appears) and unloads without WARN/BUG/Oops; 4000
# host UDP packets over 16 flows arrive and are spread over at least 2 RX
# queues and 2 CPUs (from /proc/interrupts).

. "${PKTRING_TESTNET:-/etc/pktring/testnet.env}"
nic=$PKTRING_GUEST_IFNAME
module=${PKTRING_MODULE:-/lib/modules/rust_pktring.ko}
want_module=1
cpus=4
count=4000

while [ $# -gt 0 ]; do
	case "$1" in
	--no-module) want_module=0; shift ;;
	--module) module=$2; shift 2 ;;
	--cpus) cpus=$2; shift 2 ;;
	*) echo "smoke.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

n=0
failed=0
tmp=/tmp/smoke.$$
mkdir -p "$tmp"

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
diag() { echo "# $*"; }

# Kernel log lines that mean something went wrong in the kernel.
BAD_DMESG='WARNING:|BUG:|Oops|Call Trace|kernel BUG|general protection|UBSAN|KASAN|rcu.*stall|refcount_t'

dmesg_mark() { dmesg | wc -l; }
# New kernel log lines since a mark, matching BAD_DMESG.
dmesg_bad_since() { dmesg | tail -n +"$(($1 + 1))" | grep -E "$BAD_DMESG"; }

test_cpus() {
	local online
	online=$(nproc)
	diag "online CPUs: $(cat /sys/devices/system/cpu/online) ($online)"
	if [ "$online" -eq "$cpus" ]; then
		ok "$cpus CPUs online"
	else
		not_ok "$cpus CPUs online (found $online)"
	fi
}

test_queues() {
	local q
	q=$(ls -d /sys/class/net/$nic/queues/rx-* 2>/dev/null | wc -l)
	diag "$nic RX queues: $q, TX queues: $(ls -d /sys/class/net/$nic/queues/tx-* 2>/dev/null | wc -l)"
	if [ "$q" -eq "$cpus" ]; then
		ok "$nic has $cpus RX queues"
	else
		not_ok "$nic has $cpus RX queues (found $q)"
	fi
}

test_module() {
	local mark bad name
	if [ "$want_module" = 0 ]; then
		skip "module loads" "--no-module"
		skip "/dev/pktring appears" "--no-module"
		skip "module unloads cleanly" "--no-module"
		return
	fi
	name=$(basename "$module" .ko)
	mark=$(dmesg_mark)
	if ! [ -f "$module" ]; then
		not_ok "module loads ($module is missing)"
	elif ! insmod "$module"; then
		not_ok "module loads (insmod $module failed)"
	elif ! dmesg | tail -n +"$((mark + 1))" | grep -q 'rust_pktring'; then
		not_ok "module loads (no rust_pktring line in dmesg)"
	else
		dmesg | tail -n +"$((mark + 1))" | grep 'rust_pktring' | sed 's/^/# dmesg: /'
		ok "module loads"
	fi
	if [ -c /dev/pktring ]; then
		ok "/dev/pktring appears"
	else
		not_ok "/dev/pktring appears"
	fi
	if ! grep -q "^$name " /proc/modules; then
		not_ok "module unloads cleanly (it is not loaded)"
		return
	fi
	rmmod "$name"
	bad=$(dmesg_bad_since "$mark")
	if grep -q "^$name " /proc/modules; then
		not_ok "module unloads cleanly (rmmod $name failed)"
	elif [ -n "$bad" ]; then
		echo "$bad" | sed 's/^/# dmesg: /'
		not_ok "module unloads cleanly (kernel warnings during load/unload)"
	elif [ -e /dev/pktring ]; then
		not_ok "module unloads cleanly (/dev/pktring is still there)"
	else
		ok "module unloads cleanly"
	fi
}

rx_packets() { cat /sys/class/net/$nic/statistics/rx_packets; }

# "<queue> <irq> <cpu0> <cpu1> ..." for each RX queue interrupt of the test
# NIC's device.
rx_irqs() {
	local dev
	dev=$(basename "$(readlink /sys/class/net/$nic/device)")
	awk -v dev="$dev" 'NR == 1 { ncpu = NF; next }
		$NF ~ "^" dev "-input\\.[0-9]+$" {
			q = $NF; sub(".*-input\\.", "", q)
			irq = $1; sub(":", "", irq)
			line = q " " irq
			for (i = 2; i <= ncpu + 1; i++) line = line " " $i
			print line
		}' /proc/interrupts | sort -n
}

# Where each RX queue's interrupt may go, for the record.
rx_affinity() {
	local q irq rest aff
	while read -r q irq rest; do
		aff=$(cat /proc/irq/"$irq"/effective_affinity_list 2>/dev/null ||
			cat /proc/irq/"$irq"/smp_affinity_list 2>/dev/null)
		echo "input.$q irq $irq -> CPU ${aff:-?}"
	done
}

test_udp() {
	local rx0 rx1 got queues cpus_hit
	rx_irqs >"$tmp/irq0"
	rx0=$(rx_packets)
	# At 20000 pps rather than flat out: a debug guest on a loaded host once took in 3781 of
	# 4000 sent at 104000 pps (its virtio rings overran); the spread over queues and CPUs
	# does not depend on the rate.
	if pktring-traffic udp --dst "$PKTRING_GUEST_IP4" --flows 16 --count "$count" --size 64 --rate 20000 >"$tmp/gen" 2>&1; then
		sed 's/^/# /' "$tmp/gen"
		ok "host sends $count UDP packets over 16 flows"
	else
		sed 's/^/# /' "$tmp/gen"
		not_ok "host sends $count UDP packets over 16 flows"
	fi
	# Let the last packets through the TCG guest's NAPI.
	sleep 1
	rx1=$(rx_packets)
	rx_irqs >"$tmp/irq1"
	got=$((rx1 - rx0))
	if [ "$got" -ge "$count" ]; then
		ok "$nic rx_packets grew by >= $count ($got)"
	else
		not_ok "$nic rx_packets grew by >= $count (only $got)"
	fi

	# Per queue: which CPUs took its interrupts during the burst.
	awk 'NR == FNR { for (i = 3; i <= NF; i++) base[$1, i] = $i; next }
		{
			line = ""; tot = 0
			for (i = 3; i <= NF; i++) {
				d = $i - base[$1, i]
				if (d > 0) { line = line " CPU" (i - 3) ":+" d; tot += d; cpu[i - 3] = 1 }
			}
			if (tot > 0) nq++
			printf "# virtio input.%s:%s\n", $1, (tot > 0 ? line : " none")
		}
		END {
			nc = 0; for (c in cpu) nc++
			printf "%d %d\n", nq, nc
		}' "$tmp/irq0" "$tmp/irq1" >"$tmp/irqd"
	grep '^#' "$tmp/irqd"
	diag "affinity: $(rx_affinity <"$tmp/irq1" | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
	set -- $(grep -v '^#' "$tmp/irqd")
	queues=${1:-0}
	cpus_hit=${2:-0}
	if [ "$queues" -ge 2 ]; then
		ok "RX interrupts on >= 2 queues ($queues)"
	else
		not_ok "RX interrupts on >= 2 queues ($queues)"
	fi
	if [ "$cpus_hit" -ge 2 ]; then
		ok "RX interrupts on >= 2 CPUs ($cpus_hit)"
	else
		not_ok "RX interrupts on >= 2 CPUs ($cpus_hit)"
	fi
}

echo "1..9"
taint=$(cat /proc/sys/kernel/tainted)
[ "$taint" = 0 ] || diag "note: the kernel was already tainted ($taint) before these tests; see dmesg"
test_cpus
test_queues
test_module
test_udp
rm -rf "$tmp"
if [ "$failed" -ne 0 ]; then
	diag "$failed of $n tests failed"
	exit 1
fi
diag "all $n tests passed"
exit 0
