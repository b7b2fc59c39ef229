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
# Fanout: 1500 host packets in 16 flows through `--fanout hash --threads 3`
# into fo-%d.pcap: three files that hold exactly the packets their member
# lines report, which add up to the totals; every packet sent in exactly one
# of them (pcap_verify over the files, where the tree has it), each flow in
# one file (tcpdump), and mergecap merging them; two round-robin rings into
# pcapng stopped by -c 600 in all; a member whose group has another mode
# (EINVAL, one line), the group shown for each member by /proc/pktring and
# pktring list; and the usage errors (--threads without %d or without
# --fanout, a bad mode: exit 2).

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
here=$(cd "$(dirname "$0")" && pwd)
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

# members FILE: the member lines of a fanout capture's summary, one
# "INDEX WRITTEN KPACKETS KDROPS KFILTERED ROLLOVER FILE" line each.
members() {
	sed -n 's/^member \([0-9]*\): *\([0-9]*\) packets (kernel: \([0-9]*\) packets, \([0-9]*\) drops, \([0-9]*\) filtered, \([0-9]*\) rollover) in \(.*\)$/\1 \2 \3 \4 \5 \6 \7/p' "$1"
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

# Fanout: three rings in a hash group, a thread and a file each. The rings
# hold 2048 frames each, more than the 1500 packets sent: nothing may drop.
capture_traffic "$tmp/fo.out" "-w $tmp/fo-%d.pcap --fanout hash --threads 3 -i $ifname --family ipv4 --blocks 64" \
	udp --dst $dst --flows 16 --count 1500 --size 200 --rate 1000
summary "$tmp/fo.out"
members "$tmp/fo.out" >"$tmp/fo.members"
# Each file holds what its member line says; the lines add up to the totals.
bad=0 sum=0 ksum=0
while read -r index mwritten mkpackets mkdrops mkfiltered mrollover mfile; do
	[ "$mfile" = "$tmp/fo-$index.pcap" ] && [ -f "$mfile" ] &&
		[ "$(wc -c <"$mfile")" -eq $((24 + mwritten * 258)) ] &&
		[ "$mkpackets" -eq $((mwritten + mkdrops + mkfiltered)) ] || bad=$((bad + 1))
	sum=$((sum + mwritten)) ksum=$((ksum + mkpackets))
done <"$tmp/fo.members"
if grep -q '^# capture exit status 0$' "$tmp/fo.out" && [ "$(wc -l <"$tmp/fo.members")" = 3 ] && [ "$bad" = 0 ] &&
	[ "$sum" = "$written" ] && [ "$ksum" = "$kpackets" ] && [ "$kpackets" = 1500 ] && [ "$kdrops" = 0 ] &&
	[ "$corrupt" = 0 ] && [ "$written" = 1500 ] &&
	grep -q "at pre-routing on $ifname: 3 rings in fanout group [0-9]* (hash)" "$tmp/fo.out" &&
	grep -q "^file: *$tmp/fo-%d.pcap (pcap, 3 files)" "$tmp/fo.out"; then
	ok "--fanout hash --threads 3: $(awk '{ printf "%s%s", sep, $2; sep = " + " }' "$tmp/fo.members") = $written packets in fo-0..2.pcap"
else
	not_ok "--fanout hash --threads 3: 3 files of 1500 packets in all (member lines $sum, total ${written:-none}, $bad bad)"
	diag "$tmp/fo.out"
fi
verify=$(command -v pcap_verify || echo "$here/../pcap_verify")
if [ -x "$verify" ]; then
	# One pcap stream of the three files (the same header): every packet
	# sent, each once.
	{ cat "$tmp/fo-0.pcap"; tail -c +25 "$tmp/fo-1.pcap"; tail -c +25 "$tmp/fo-2.pcap"; } |
		"$verify" --count 1500 --flows 16 --size 200 >"$tmp/verify" 2>&1
	rc=$?
	if [ "$rc" = 0 ]; then
		ok "fanout: every packet sent in exactly one of the files: $(cat "$tmp/verify")"
	else
		not_ok "fanout: every packet sent in exactly one of the files (pcap_verify exit $rc)"
		diag "$tmp/verify"
	fi
else
	skip "fanout: every packet sent in exactly one of the files" "no pcap_verify (make -C selftests)"
fi
if command -v tcpdump >/dev/null; then
	# tcpdump reads each file; a flow (its addresses and ports) is in one.
	bad=0
	: >"$tmp/fo.flows"
	while read -r index mwritten rest; do
		tcpdump -r "$tmp/fo-$index.pcap" -nn 2>/dev/null >"$tmp/fo.read"
		[ "$(wc -l <"$tmp/fo.read")" = "$mwritten" ] || bad=$((bad + 1))
		awk '{ print $3, $5 }' "$tmp/fo.read" | sort -u >>"$tmp/fo.flows"
	done <"$tmp/fo.members"
	flows=$(wc -l <"$tmp/fo.flows")
	twice=$(sort "$tmp/fo.flows" | uniq -d | wc -l)
	if [ "$bad" = 0 ] && [ "$flows" = 16 ] && [ "$twice" = 0 ]; then
		ok "fanout hash: tcpdump reads the 3 files, each of the 16 flows in one of them"
	else
		not_ok "fanout hash: tcpdump read $bad files wrong, $flows flows, $twice in two files"
		diag "$tmp/fo.flows"
	fi
else
	skip "fanout hash: tcpdump reads the 3 files, each of the 16 flows in one of them" "no tcpdump"
fi
if command -v mergecap >/dev/null && command -v tcpdump >/dev/null; then
	mergecap -w "$tmp/fo-all.pcapng" "$tmp"/fo-*.pcap 2>"$tmp/err"
	merged=$(tcpdump -r "$tmp/fo-all.pcapng" -nn 2>/dev/null | wc -l)
	if [ "$merged" = "$written" ]; then
		ok "mergecap -w all.pcapng fo-*.pcap, as --help says: $merged packets"
	else
		not_ok "mergecap -w all.pcapng fo-*.pcap: $merged packets, want $written"
		diag "$tmp/err"
	fi
else
	skip "mergecap -w all.pcapng fo-*.pcap, as --help says" "no mergecap or tcpdump"
fi
rm -f "$tmp"/fo-*.pcap "$tmp"/fo-all.pcapng

# Round robin into pcapng, -c 600 in all: the capture stops at 600 packets
# across its two files, though the host sends 1000.
start_capture "$tmp/fong.out" capture -w "$tmp/fong-%d.pcapng" --fanout lb --threads 2 -c 600 --duration 120s \
	-i "$ifname" --family ipv4 --blocks 64
pktring-traffic udp --dst $dst --flows 4 --count 1000 --size 200 --rate 1000 >/dev/null 2>&1
wait "$pid"
echo "# capture exit status $?" >>"$tmp/fong.out"
summary "$tmp/fong.out"
members "$tmp/fong.out" >"$tmp/fong.members"
sum=$(awk '{ w += $2 } END { print w + 0 }' "$tmp/fong.members")
bad=0
if command -v tcpdump >/dev/null; then
	while read -r index mwritten rest; do
		[ "$(tcpdump -r "$tmp/fong-$index.pcapng" -nn 2>/dev/null | wc -l)" = "$mwritten" ] || bad=$((bad + 1))
	done <"$tmp/fong.members"
fi
if grep -q '^# capture exit status 0$' "$tmp/fong.out" && [ "$written" = 600 ] && [ "$sum" = 600 ] && [ "$bad" = 0 ] &&
	[ "$(wc -l <"$tmp/fong.members")" = 2 ] && [ -s "$tmp/fong-0.pcapng" ] && [ -s "$tmp/fong-1.pcapng" ] &&
	[ "$(od -An -tx4 -N 4 "$tmp/fong-0.pcapng" | tr -d ' ')" = 0a0d0d0a ] &&
	grep -q "^file: .*fong-%d.pcapng (pcapng, 2 files)" "$tmp/fong.out"; then
	ok "--fanout lb --threads 2 -c 600: $(awk '{ printf "%s%s", sep, $2; sep = " + " }' "$tmp/fong.members") = 600 packets in 2 pcapng files"
else
	not_ok "--fanout lb --threads 2 -c 600: $sum in the member lines, ${written:-none} in all, $bad files tcpdump reads otherwise"
	diag "$tmp/fong.out"
fi

# A member that does not match its group: another capture's group 4242 is
# hash, this one asks for lb.
start_capture "$tmp/grp.out" capture -w "$tmp/grp-%d.pcap" --fanout hash --fanout-id 4242 --duration 60s -i "$ifname"
gpid=$pid
pktring capture -w "$tmp/grp2-%d.pcap" --fanout lb --fanout-id 4242 --duration 1s -i "$ifname" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat /proc/pktring >"$tmp/grp.proc" 2>&1
pktring list >"$tmp/grp.list" 2>&1
kill -INT "$gpid"
wait "$gpid"
# Every ring of the group's capture shows the group, in /proc/pktring and in
# pktring list.
if awk -v pid="$gpid" '$1 == pid { n++; if ($13 != "4242:hash" || NF != 13) bad++ }
		END { exit !(n >= 1 && !bad) }' "$tmp/grp.proc" &&
	awk -v pid="$gpid" '$1 == pid { n++; if ($NF != "4242:hash") bad++ }
		END { exit !(n >= 1 && !bad) }' "$tmp/grp.list"; then
	ok "/proc/pktring and pktring list show the group of each member: $(awk -v pid="$gpid" '$1 == pid { n++ } END { print n }' "$tmp/grp.proc") rings in 4242:hash"
else
	not_ok "/proc/pktring and pktring list show the group of each member (pid $gpid, group 4242:hash)"
	diag "$tmp/grp.proc"
	diag "$tmp/grp.list"
fi
if [ "$rc" = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && [ ! -e "$tmp/grp2-0.pcap" ] &&
	grep -q '^pktring: the module refused a member of fanout group 4242 (EINVAL): .*--fanout-id$' "$tmp/err"; then
	ok "a fanout group of another mode: exit 1, one line: $(cat "$tmp/err")"
else
	not_ok "a fanout group of another mode: exit $rc, want 1 and one line on EINVAL"
	diag "$tmp/err"
fi

pktring capture -w "$tmp/x.pcap" --fanout hash --threads 3 >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && [ ! -e "$tmp/x.pcap" ] && [ ! -e "$tmp/x-0.pcap" ] &&
	grep -qF "pktring: -w $tmp/x.pcap has no %d: with --threads 3 each ring writes its own file" "$tmp/err"; then
	ok "--threads 3 without %d in -w: exit 2, one line, no file"
else
	not_ok "--threads 3 without %d in -w: exit $rc, want 2 and one line"
	diag "$tmp/err"
fi
expect_error "--threads 2 without --fanout: exit 2" 2 "pktring: --threads 2 needs --fanout MODE" -- \
	pktring capture -w "$tmp/x-%d.pcap" --threads 2
expect_error "a bad --fanout mode: exit 2" 2 "invalid value 'rss' for '--fanout <MODE>'" -- \
	pktring capture -w "$tmp/x-%d.pcap" --fanout rss --threads 2

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
header='pid      state      hook         family ifindex frames   size    packets  delivered    drops   filtered filter fanout'
line=$(sed -n 2p "$tmp/proc.txt")
if [ "$(head -n1 "$tmp/proc.txt")" = "$header" ] && [ "$(wc -l <"$tmp/proc.txt")" -eq 2 ] &&
	echo "$line" | awk -v pid="$cpid" -v ifindex="$ifindex" '
		$1 == pid && $2 == "capturing" && $3 == "pre-routing" && $4 == "ipv4" &&
		$5 == ifindex && $6 > 0 && $7 > 0 && $8 >= 100 && $12 > 0 && $13 == "-" && NF == 13 { ok = 1 }
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
if head -n1 "$tmp/list.table" | grep -q '^PID  *COMMAND  *FD  *STATE  *HOOK  *FAMILY  *IFINDEX  *FRAMES  *PACKETS  *DROPS  *FILTERED  *FILTER  *FANOUT$' &&
	[ "$(wc -l <"$tmp/list.table")" -eq 2 ] &&
	echo "$row" | grep -q "^$cpid  *pktring  *[0-9][0-9]*  *capturing  *pre-routing  *ipv4  *$ifindex ($ifname)  *[1-9][0-9]*  *[0-9]" &&
	echo "$row" | grep -q ' [1-9][0-9]* insns  *-$' && grep -q "\"pid\":$cpid,.*\"fanout\":null}" "$tmp/list.json" && [ "${packets:-0}" -ge 100 ] && [ "${jpackets:-0}" -ge 100 ] &&
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
