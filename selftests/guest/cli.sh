#!/bin/sh
# Guest test of the `pktring` CLI (busybox sh, in the qemu test guest, as
# root, with the module not loaded). Prints TAP; exits 0 only if every test
# passes.
#
#	cli.sh [--module PATH] [--export NAME]
#
# Needs /bin/pktring (userspace: make guest), pktring-traffic and the test
# network (testnet.env: /etc/pktring/testnet.env or $PKTRING_TESTNET).
# Checks the error messages (module not loaded, bad options, device node
# missing, unknown interface, permission denied), then captures host UDP
# packets at PRE_ROUTING and at ingress with a snaplen into pcap files that
# must hold exactly the packets the summary reports, with every packet the
# host sent either captured or counted as a kernel drop, and `pktring stats`.
# Last, a capture of exactly 1000 packets (16 flows of 200-byte UDP) goes
# to the host with pktring-export as NAME (default cli-capture.pcap), where
# scripts/test.sh reads it with tcpdump and checks it with pcap_verify; and
# one into pcapng through a sort window, as NAME with .pcapng, which the host
# reads with tshark and capinfos, and one with drops (NAME-drops.pcapng).
# Each goes with its summary (.txt).
# Then the capture filter: a filter expression that takes a quarter of the
# host's flows (only those in the pcap, the rest counted as filtered), `-d`
# against tcpdump's -d (or libpcap 1.10's listing where the guest has no
# tcpdump), a bad expression and an old `-d DURATION` (exit 2, one line), a
# local-out capture into LINKTYPE_RAW, and `pktring list` and /proc/pktring
# of a running capture (and `pktring list` without the module).

. "${PKTRING_TESTNET:-/etc/pktring/testnet.env}"
module=${PKTRING_MODULE:-/lib/modules/rust_pktring.ko}
export_name=cli-capture.pcap
while [ $# -gt 0 ]; do
	case "$1" in
	--module) module=$2; shift 2 ;;
	--export) export_name=$2; shift 2 ;;
	*) echo "cli.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
dst=$PKTRING_GUEST_IP4
ifname=$PKTRING_GUEST_IFNAME
tmp=/tmp/cli.$$
mkdir -p "$tmp"
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n - cli: $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - cli: $*"; }
skip() { n=$((n + 1)); echo "ok $n - cli: $1 # SKIP $2"; }
diag() { sed 's/^/# /' "$@"; }

# expect_error NAME STATUS TEXT -- COMMAND...: COMMAND exits with STATUS and
# says TEXT on stderr.
expect_error() {
	name=$1 status=$2 text=$3
	shift 4
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq "$status" ] && grep -qF -- "$text" "$tmp/err"; then
		ok "$name"
	else
		not_ok "$name: exit $rc, want $status and '$text'"
		diag "$tmp/err"
	fi
}

# summary FILE: sets written, kpackets, kdrops, kfiltered (0 without a
# filter), corrupt from a capture summary.
summary() {
	written=$(sed -n 's/^packets: *\([0-9]*\) in .*/\1/p' "$1")
	corrupt=$(sed -n 's/^packets: .*, \([0-9]*\) corrupt frames$/\1/p' "$1")
	kpackets=$(sed -n 's/^kernel: *\([0-9]*\) packets, .*/\1/p' "$1")
	kdrops=$(sed -n 's/^kernel: *[0-9]* packets, \([0-9]*\) drops.*/\1/p' "$1")
	kfiltered=$(sed -n 's/^kernel: .* drops, \([0-9]*\) filtered$/\1/p' "$1")
	kfiltered=${kfiltered:-0}
}

# check_capture NAME SUMMARY PCAP SENT CAPLEN: the capture exited 0, the pcap
# holds `written` packets of CAPLEN bytes, and every packet sent was written
# or dropped.
check_capture() {
	name=$1 out=$2 pcap=$3 sent=$4 caplen=$5
	summary "$out"
	size=$(wc -c <"$pcap")
	if grep -q '^# capture exit status 0$' "$out" && [ -n "$written" ] && [ "$size" -eq $((24 + written * (16 + caplen))) ] &&
		[ "$corrupt" = 0 ] && [ "$kpackets" = "$sent" ] &&
		[ $((written + kdrops)) -eq "$sent" ] && [ "$written" -gt 0 ]; then
		ok "$name: $written packets in the pcap, $kdrops kernel drops"
	else
		not_ok "$name: pcap of $size bytes, want $written packets of $caplen bytes, $sent sent"
		diag "$out"
	fi
}

# start_capture OUT ARGS...: `pktring ARGS` in the background ($pid), output
# in OUT; returns once it says it is capturing (or has exited).
start_capture() {
	out=$1
	shift
	pktring "$@" >"$out" 2>&1 &
	pid=$!
	i=0
	while ! grep -q '^pktring: capturing' "$out" && kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# capture_traffic OUT 'CAPTURE ARGS' TRAFFIC ARGS...: a capture in the
# background while the host sends TRAFFIC, stopped with SIGINT after it.
capture_traffic() {
	out=$1 cargs=$2
	shift 2
	# shellcheck disable=SC2086 # the capture arguments are split at spaces
	start_capture "$out" capture $cargs
	pktring-traffic "$@" >"$tmp/traffic" 2>&1 || diag "$tmp/traffic"
	sleep 2
	kill -INT "$pid"
	wait "$pid"
	echo "# capture exit status $?" >>"$out"
}

# The module may be loaded by a test that ran before.
[ -e /sys/module/rust_pktring ] && rmmod rust_pktring
if [ -e /sys/module/rust_pktring ]; then
	skip "module not loaded: says so" "rust_pktring could not be unloaded"
else
	expect_error "module not loaded: says so" 1 "module not loaded: insmod rust_pktring.ko" -- \
		pktring stats --duration 1s
	expect_error "pktring list without the module: says so" 1 \
		"pktring list: /proc/pktring is missing: is rust_pktring loaded?" -- pktring list
fi
expect_error "missing -w: usage error" 2 "--write <FILE>" -- pktring capture -c 5
expect_error "bad duration: usage error" 2 "invalid value 'soon'" -- pktring stats --duration soon
expect_error "-d DURATION: says to use --duration" 2 "use --duration 10s" -- \
	pktring capture -w "$tmp/x.pcap" -d 10s
expect_error "ingress without interface" 1 "--hook ingress needs an interface" -- \
	pktring stats --hook ingress
expect_error "bad frame size" 1 "frame size 100 is not a multiple of 16" -- \
	pktring stats --frame-size 100
expect_error "unknown interface" 1 'no network interface named "nosuch0"' -- \
	pktring stats -i nosuch0

if ! insmod "$module"; then
	not_ok "insmod $module"
	echo "# $n tests, $failed failed"
	exit 1
fi
expect_error "device node missing" 1 "device node missing" -- \
	pktring stats --device /dev/nonexistent --duration 1s
expect_error "ingress on a missing ifindex" 1 "no such interface (ENODEV)" -- \
	pktring stats --hook ingress --ifindex 999 --duration 1s
grep -qs '^nobody:' /etc/passwd || echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>/etc/passwd
grep -qs '^nogroup:' /etc/group || echo 'nogroup:x:65534:' >>/etc/group
expect_error "permission denied" 1 "permission denied: run as root" -- \
	su nobody -s /bin/sh -c 'pktring stats --duration 1s'

capture_traffic "$tmp/pre.out" "-w $tmp/pre.pcap -i $ifname --family ipv4" \
	udp --dst $dst --flows 16 --count 2000 --size 200 --rate 2000
check_capture "capture at pre-routing" "$tmp/pre.out" "$tmp/pre.pcap" 2000 242
capture_traffic "$tmp/ingress.out" "-w $tmp/ingress.pcap --hook ingress -i $ifname -s 64" \
	udp --dst $dst --flows 4 --count 500 --size 200 --rate 1000
check_capture "capture at ingress, snaplen 64" "$tmp/ingress.out" "$tmp/ingress.pcap" 500 64

start_capture "$tmp/count.out" capture -w "$tmp/count.pcap" -c 100 --duration 60s
pktring-traffic udp --dst $dst --flows 4 --count 300 --size 200 --rate 1000 >/dev/null 2>&1
wait "$pid"
summary "$tmp/count.out"
if [ "$written" = 100 ] && [ "$(wc -c <"$tmp/count.pcap")" -eq $((24 + 100 * 258)) ]; then
	ok "capture stops after -c 100"
else
	not_ok "capture stops after -c 100: wrote $written"
	diag "$tmp/count.out"
fi

start_capture "$tmp/stats.out" stats --duration 4s -i "$ifname"
pktring-traffic udp --dst $dst --flows 8 --count 800 --size 100 --rate 1000 >/dev/null 2>&1
wait "$pid"
summary "$tmp/stats.out"
if [ "$kpackets" = 800 ] && [ $((written + kdrops)) -eq 800 ] &&
	grep -q '^per CPU: .*cpu' "$tmp/stats.out" && grep -q '^per queue: .*rx' "$tmp/stats.out"; then
	ok "stats: 800 packets over CPUs and queues"
else
	not_ok "stats: 800 packets over CPUs and queues"
	diag "$tmp/stats.out"
fi

# Exactly what the host sent, for the host to check: a ring large enough
# for any burst, so nothing may be dropped.
start_capture "$tmp/exact.out" capture -w "$tmp/exact.pcap" -c 1000 --duration 120s -i "$ifname" --family ipv4 --blocks 64
pktring-traffic udp --dst $dst --flows 16 --count 1000 --size 200 --rate 1000 >/dev/null 2>&1
wait "$pid"
echo "# capture exit status $?" >>"$tmp/exact.out"
check_capture "capture of exactly 1000 packets" "$tmp/exact.out" "$tmp/exact.pcap" 1000 242
# The same as pcapng, through a sort window, for the host to read with
# tshark: the summary goes with it (NAME.txt), and the pcap's too.
start_capture "$tmp/ng.out" capture -w "$tmp/exact.pcapng" -c 1000 --duration 120s -i "$ifname" --family ipv4 --blocks 64 \
	--sort-window 64
pktring-traffic udp --dst $dst --flows 16 --count 1000 --size 200 --rate 1000 >/dev/null 2>&1
wait "$pid"
echo "# capture exit status $?" >>"$tmp/ng.out"
summary "$tmp/ng.out"
if grep -q '^# capture exit status 0$' "$tmp/ng.out" && [ "$written" = 1000 ] && [ "$corrupt" = 0 ] &&
	[ "$kpackets" = 1000 ] && [ "$kdrops" = 0 ] &&
	grep -q "^file: .*exact.pcapng (pcapng), [0-9]* timestamps earlier than the one before (sort window 64)$" "$tmp/ng.out"; then
	ok "capture of exactly 1000 packets into pcapng, sort window 64"
else
	not_ok "capture of exactly 1000 packets into pcapng, sort window 64"
	diag "$tmp/ng.out"
fi
# A pcapng with drops: the capture is stopped (SIGSTOP) while the host sends,
# so its 32-frame ring fills; the host checks that the file's statistics
# block has the kernel's drops.
start_capture "$tmp/drops.out" capture -w "$tmp/drops.pcapng" --duration 120s -i "$ifname" --family ipv4 \
	--block-size 65536 --blocks 1
kill -STOP "$pid"
pktring-traffic udp --dst $dst --flows 4 --count 500 --size 200 --rate 2000 >/dev/null 2>&1
kill -CONT "$pid"
sleep 2
kill -INT "$pid"
wait "$pid"
echo "# capture exit status $?" >>"$tmp/drops.out"
summary "$tmp/drops.out"
if grep -q '^# capture exit status 0$' "$tmp/drops.out" && [ "$kpackets" = 500 ] && [ "$kdrops" -gt 0 ] &&
	[ $((written + kdrops)) -eq 500 ]; then
	ok "a stopped capture into pcapng: $written packets, $kdrops kernel drops"
else
	not_ok "a stopped capture into pcapng drops what its ring cannot hold"
	diag "$tmp/drops.out"
fi
ng_name=${export_name%.pcap}.pcapng
for f in "$tmp/exact.pcap:$export_name" "$tmp/exact.out:${export_name%.pcap}.txt" \
	"$tmp/exact.pcapng:$ng_name" "$tmp/ng.out:${ng_name%.pcapng}-ng.txt" \
	"$tmp/drops.pcapng:${ng_name%.pcapng}-drops.pcapng" "$tmp/drops.out:${ng_name%.pcapng}-drops.txt"; do
	if pktring-export "${f%%:*}" "${f#*:}" 2>"$tmp/export.err"; then
		ok "$(basename "${f%%:*}") reached the host as ${f#*:}"
	else
		not_ok "$(basename "${f%%:*}") reached the host as ${f#*:}"
		diag "$tmp/export.err"
	fi
done

# The capture filter. 400 packets in 4 flows from source ports 40000-40003,
# in turn: the filter takes the 100 of port 40001, and rejects 300.
capture_traffic "$tmp/filter.out" "-w $tmp/filter.pcap -i $ifname --family ipv4 udp and src port 40001" \
	udp --dst $dst --flows 4 --count 400 --size 200 --rate 1000 --sport 40000
summary "$tmp/filter.out"
size=$(wc -c <"$tmp/filter.pcap")
if grep -q '^# capture exit status 0$' "$tmp/filter.out" && [ -n "$written" ] && [ "$written" -gt 0 ] &&
	[ "$kpackets" = 400 ] && [ "$kfiltered" = 300 ] && [ "$corrupt" = 0 ] &&
	[ "$kfiltered" -eq $((kpackets - written - kdrops)) ] && [ "$size" -eq $((24 + written * 258)) ]; then
	ok "a filter expression: $written of 100 matching packets, $kdrops drops, $kfiltered of 400 filtered"
else
	not_ok "a filter expression takes 100 of 400 packets: wrote $written, $kfiltered filtered, pcap of $size bytes"
	diag "$tmp/filter.out"
fi
if command -v tcpdump >/dev/null; then
	other=$(tcpdump -r "$tmp/filter.pcap" -nn 'not (udp and src port 40001)' 2>/dev/null | wc -l)
	all=$(tcpdump -r "$tmp/filter.pcap" -nn 2>/dev/null | wc -l)
	if [ "$other" = 0 ] && [ "$all" = "$written" ]; then
		ok "tcpdump -r: the filtered pcap holds only matching packets ($all)"
	else
		not_ok "tcpdump -r: the filtered pcap holds $all packets, $other not matching"
	fi
else
	# Each packet's UDP source port: 242 bytes from its Ethernet header, the
	# port 14 + 20 bytes in, after the pcap's 24-byte header and the record's 16.
	i=0 other=0
	while [ $i -lt "${written:-0}" ]; do
		port=$(od -An -tu1 -j $((24 + i * 258 + 16 + 34)) -N 2 "$tmp/filter.pcap" | awk '{ print $1 * 256 + $2 }')
		[ "$port" = 40001 ] || other=$((other + 1))
		i=$((i + 1))
	done
	if [ "$other" = 0 ]; then
		ok "the filtered pcap holds only packets from port 40001 ($written)"
	else
		not_ok "the filtered pcap holds $other packets not from port 40001"
	fi
fi

# -d lists the program as tcpdump -d does: Ethernet at pre-routing and at a
# device's egress, raw IP at local-out. Without tcpdump, against libpcap
# 1.10's listings (-d only).
printf '%s\n' '(000) ldh      [12]' \
	'(001) jeq      #0x800           jt 2	jf 5' \
	'(002) ldb      [23]' \
	'(003) jeq      #0x1             jt 4	jf 5' \
	'(004) ret      #262144' \
	'(005) ret      #0' >"$tmp/icmp.EN10MB"
printf '%s\n' '(000) ldb      [0]' \
	'(001) and      #0xf0' \
	'(002) jeq      #0x40            jt 3	jf 6' \
	'(003) ldb      [9]' \
	'(004) jeq      #0x1             jt 5	jf 6' \
	'(005) ret      #262144' \
	'(006) ret      #0' >"$tmp/icmp.RAW"
for case in "EN10MB:-d:" "EN10MB:-dd:" "EN10MB:-ddd:" "RAW:-d:--hook local-out" "EN10MB:-d:--hook egress -i $ifname"; do
	dlt=${case%%:*} rest=${case#*:}
	flag=${rest%%:*} hargs=${rest#*:}
	# shellcheck disable=SC2086 # the hook arguments are split at spaces
	pktring capture $flag $hargs icmp >"$tmp/dump.out" 2>"$tmp/dump.err"
	rc=$?
	if command -v tcpdump >/dev/null && tcpdump -y "$dlt" "$flag" icmp >"$tmp/dump.want" 2>/dev/null; then
		from=tcpdump
	elif [ "$flag" = -d ]; then
		from=libpcap-1.10
		cp "$tmp/icmp.$dlt" "$tmp/dump.want"
	else
		skip "pktring capture $flag $hargs icmp is tcpdump -y $dlt $flag icmp" "no tcpdump"
		continue
	fi
	if [ "$rc" = 0 ] && cmp -s "$tmp/dump.out" "$tmp/dump.want"; then
		ok "pktring capture $flag $hargs icmp is $from's -y $dlt $flag icmp"
	else
		not_ok "pktring capture $flag $hargs icmp (exit $rc) is $from's -y $dlt $flag icmp"
		diag "$tmp/dump.err"
		diff "$tmp/dump.want" "$tmp/dump.out" | diag
	fi
done

# A bad expression: exit 2, one line that says so, and no file.
pktring capture -w "$tmp/bad.pcap" -i "$ifname" 'tcp port' >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q '^pktring: bad filter expression: .' "$tmp/err" &&
	[ ! -e "$tmp/bad.pcap" ]; then
	ok "a bad filter expression: exit 2, one line: $(cat "$tmp/err")"
else
	not_ok "a bad filter expression: exit $rc, want 2 and one line"
	diag "$tmp/err"
fi

# local-out: what the guest sends, from its IP header, as LINKTYPE_RAW.
if command -v ping >/dev/null; then
	start_capture "$tmp/lout.out" capture -w "$tmp/local-out.pcap" --hook local-out --family ipv4 -c 5 \
		--duration 60s icmp
	ping -c 8 -W 1 "$PKTRING_HOST_IP4" >/dev/null 2>&1
	wait "$pid"
	echo "# capture exit status $?" >>"$tmp/lout.out"
	summary "$tmp/lout.out"
	linktype=$(od -An -tu4 -j 20 -N 4 "$tmp/local-out.pcap" | tr -d ' ')
	first=$(od -An -tx1 -j 40 -N 1 "$tmp/local-out.pcap" | tr -d ' ')
	if grep -q '^# capture exit status 0$' "$tmp/lout.out" && [ "$written" = 5 ] && [ "$linktype" = 101 ] &&
		[ "$first" = 45 ] && grep -q 'at local-out on any interface: .*link type RAW' "$tmp/lout.out"; then
		ok "a local-out capture: 5 ICMP packets from their IPv4 header, LINKTYPE_RAW"
	else
		not_ok "a local-out capture: $written packets, link type $linktype, first byte $first"
		diag "$tmp/lout.out"
	fi
	if command -v tcpdump >/dev/null; then
		seen=$(tcpdump -r "$tmp/local-out.pcap" -nn 2>/dev/null | grep -c "IP $dst > $PKTRING_HOST_IP4: ICMP echo request")
		if [ "$seen" = 5 ]; then
			ok "tcpdump -r reads the LINKTYPE_RAW pcap: 5 echo requests"
		else
			not_ok "tcpdump -r reads the LINKTYPE_RAW pcap: $seen of 5 echo requests"
			tcpdump -r "$tmp/local-out.pcap" -nn 2>&1 | diag
		fi
	else
		skip "tcpdump -r reads the LINKTYPE_RAW pcap" "no tcpdump in this guest"
	fi
else
	skip "a local-out capture" "no ping"
fi

# pktring list and /proc/pktring: a capture running in the background, the
# only ring open then, its hook and counters.
start_capture "$tmp/list.out" capture -w "$tmp/list.pcap" -i "$ifname" --family ipv4 --duration 120s udp
cpid=$pid
pktring-traffic udp --dst $dst --flows 4 --count 100 --size 200 --rate 1000 >/dev/null 2>&1
sleep 1
cat /proc/pktring >"$tmp/proc.txt" 2>&1
pktring list >"$tmp/list.table" 2>&1
pktring list --json >"$tmp/list.json" 2>&1
kill -INT "$cpid"
wait "$cpid"
cat /proc/pktring >"$tmp/proc-after.txt" 2>&1
ifindex=$(cat "/sys/class/net/$ifname/ifindex")
header='pid      state      hook         family ifindex frames   size    packets  delivered    drops   filtered filter'
line=$(sed -n 2p "$tmp/proc.txt")
if [ "$(head -n1 "$tmp/proc.txt")" = "$header" ] && [ "$(wc -l <"$tmp/proc.txt")" -eq 2 ] &&
	echo "$line" | awk -v pid="$cpid" -v ifindex="$ifindex" '
		$1 == pid && $2 == "capturing" && $3 == "pre-routing" && $4 == "ipv4" &&
		$5 == ifindex && $6 > 0 && $7 > 0 && $8 >= 100 && $12 > 0 && NF == 12 { ok = 1 }
		END { exit !ok }'; then
	ok "/proc/pktring: the header and a line for the one open ring: $line"
else
	not_ok "/proc/pktring: the header and a line for the one open ring (pid $cpid)"
	diag "$tmp/proc.txt"
fi
if [ "$(cat "$tmp/proc-after.txt")" = "$header" ]; then
	ok "/proc/pktring: no line once the capture has exited"
else
	not_ok "/proc/pktring: no line once the capture has exited"
	diag "$tmp/proc-after.txt"
fi
row=$(awk -v pid="$cpid" '$1 == pid' "$tmp/list.table")
# PID COMMAND FD STATE HOOK FAMILY IFINDEX (NAME) FRAMES PACKETS ...
packets=$(echo "$row" | awk '{ print $10 }')
jpackets=$(tr '{' '\n' <"$tmp/list.json" | grep -A2 "\"pid\":$cpid," | sed -n 's/.*"packets":\([0-9]*\).*/\1/p' | head -n1)
if head -n1 "$tmp/list.table" | grep -q '^PID  *COMMAND  *FD  *STATE  *HOOK  *FAMILY  *IFINDEX  *FRAMES  *PACKETS  *DROPS  *FILTERED  *FILTER$' &&
	[ "$(wc -l <"$tmp/list.table")" -eq 2 ] &&
	echo "$row" | grep -q "^$cpid  *pktring  *[0-9][0-9]*  *capturing  *pre-routing  *ipv4  *$ifindex ($ifname)  *[1-9][0-9]*  *[0-9]" &&
	echo "$row" | grep -q ' [1-9][0-9]* insns$' && [ "${packets:-0}" -ge 100 ] && [ "${jpackets:-0}" -ge 100 ] &&
	grep -q "\"pid\":$cpid,\"command\":\"pktring\",\"fd\":[0-9][0-9]*,\"state\":\"capturing\",\"hook\":\"pre-routing\",\"family\":\"ipv4\",\"ifindex\":$ifindex,\"ifname\":\"$ifname\"," "$tmp/list.json"; then
	ok "pktring list shows the running capture: $row"
else
	not_ok "pktring list shows the running capture (pid $cpid, ${packets:-no} packets, ${jpackets:-no} in the JSON)"
	diag "$tmp/list.table"
	diag "$tmp/list.json"
fi

rmmod rust_pktring || not_ok "rmmod rust_pktring"
rm -rf "$tmp"
echo "# $n tests, $failed failed"
[ "$failed" -eq 0 ]
