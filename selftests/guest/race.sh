#!/bin/sh
# The producer-race reproducer, run in the guest (busybox sh): race_test
# against the real module (the owner map must keep every frame intact), then
# through a fanout group of the real module's rings (race_test --fanout: lb
# with rollover, each member read by its own thread), then against the
# test-only build without the owner map (the same load must corrupt frames,
# which shows that the reproducer catches the race). Prints one TAP line per
# run; exits 0 only if all pass.
#
#	race.sh [--long] [--min-frames N] [--min-large M] [--timeout SEC]
#		[--only owner|fanout|noowner] [--module PATH] [--noowner-module PATH]
#		[--fanout N] [--fanout-frames N] [--fanout-large M] [--fanout-timeout SEC]
#		[--tcp-seconds S] [--udp-seconds S] [--streams N] [--udp-rate PPS]
#		[--ping-rate PPS] [-- extra race_test arguments]
#
# --long	the long run: 10,000,000 frames, 500,000 of them over 60 KB
#		(race_test --long), with a 3-hour timeout
# --only	run one of the three
# --fanout	members of the fanout run's group (3); its targets are
#		--fanout-frames and --fanout-large (200,000 and 10,000), or
#		--long's
# --timeout	race_test's limit for the owner-map run (720 s; 259 s is
#		typical on the base kernel), --fanout-timeout the fanout run's
#		(240 s; 40 s typical), the no-owner-map run's is 120 s (3 s
#		typical): together within the 1500 s that make test gives the
#		base kernel's whole guest run
#
# Load, until race_test is done (it creates a stop file):
#  - the host, request after request (pktring-traffic; the host serves one
#    request at a time, so these alternate rather than overlap):
#    * TCP: --streams streams for --tcp-seconds to tcp_sink on port 9100;
#      GSO/GRO makes most of them ~64 KiB packets, on all RX queues;
#    * UDP: 32 flows of 64- or 200-byte datagrams at --udp-rate for
#      --udp-seconds: many small frames, so the frame target is reached;
#    each request with its own --flow-base, so that (flow, seq) is unique for
#    the whole run (race_test's duplicate check relies on it);
#  - race_test itself pings the host at --ping-rate throughout: the echo
#    replies are the small packets that arrive *while* the TCP streams do,
#    a fast producer that wraps the 4-slot ring while another CPU is still
#    copying a 64 KiB packet. That overlap is what makes the race happen.
#
# After each run: no new WARNING/BUG/Oops/KASAN/lockdep line in the kernel
# log. Before the no-owner-map run: the module's loud TEST BUILD warning.

. "${PKTRING_TESTNET:-/etc/pktring/testnet.env}"
MODULES=/lib/modules
module=$MODULES/rust_pktring.ko
noowner_module=$MODULES/rust_pktring_noowner.ko
only=
# The CI run: the 1,000,000 frames, 50,000 over 60 KB.
min_frames=1000000
min_large=50000
timeout=720
long=0
expect_timeout=120
tcp_seconds=25
udp_seconds=20
streams=8
udp_rate=10000
ping_rate=2000
extra=
fanout=3
fanout_frames=200000
fanout_large=10000
fanout_timeout=240

while [ $# -gt 0 ]; do
	case "$1" in
	--long) long=1; timeout=10800; shift ;;
	--min-frames) min_frames=$2; shift 2 ;;
	--min-large) min_large=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--fanout) fanout=$2; shift 2 ;;
	--fanout-frames) fanout_frames=$2; shift 2 ;;
	--fanout-large) fanout_large=$2; shift 2 ;;
	--fanout-timeout) fanout_timeout=$2; shift 2 ;;
	--module) module=$2; shift 2 ;;
	--noowner-module) noowner_module=$2; shift 2 ;;
	--tcp-seconds) tcp_seconds=$2; shift 2 ;;
	--udp-seconds) udp_seconds=$2; shift 2 ;;
	--streams) streams=$2; shift 2 ;;
	--udp-rate) udp_rate=$2; shift 2 ;;
	--ping-rate) ping_rate=$2; shift 2 ;;
	--) shift; extra="$*"; break ;;
	*) echo "race.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

# race_test tells a later request's TCP connection on a reused port by its
# flow number: flow bases 100 apart, at most 64 streams.
case "$streams" in
'' | *[!0-9]*) echo "race.sh: --streams $streams: a number expected" >&2; exit 2 ;;
esac
if [ "$streams" -lt 1 ] || [ "$streams" -gt 64 ]; then
	echo "race.sh: --streams $streams: 1 to 64" >&2
	exit 2
fi

n=0
failed=0
tmp=/tmp/race.$$
mkdir -p "$tmp"

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
diag() { echo "# $*"; }

BAD_DMESG='WARNING:|BUG:|Oops|KASAN|lockdep|Call Trace|kernel BUG|general protection|UBSAN|refcount_t|rcu.*stall'

dmesg_mark() { dmesg | wc -l; }
dmesg_since() { dmesg | tail -n +"$(($1 + 1))"; }

# The host's traffic, request after request, until the stop file exists.
traffic_loop() { # stop-file
	local stop=$1 k=0 size fails=0 out
	while [ ! -e "$stop" ]; do
		out=$(pktring-traffic tcp --dst "$PKTRING_GUEST_IP4" --dport 9100 --streams "$streams" \
			--bytes 0 --duration "$tcp_seconds" --flow-base $((k * 100)) 2>&1) ||
			fails=$((fails + 1))
		echo "$out" | grep -E '^pktgen( tcp|:)' | sed 's/^/# traffic: /'
		[ -e "$stop" ] && break
		if [ $((k % 2)) -eq 0 ]; then size=64; else size=200; fi
		out=$(pktring-traffic udp --dst "$PKTRING_GUEST_IP4" --dport 9000 --flows 32 --size "$size" \
			--count 0 --rate "$udp_rate" --duration "$udp_seconds" \
			--flow-base $((k * 64)) 2>&1) || fails=$((fails + 1))
		echo "$out" | grep -E '^pktgen( udp|:)' | sed 's/^/# traffic: /'
		k=$((k + 1))
		# A host that keeps refusing: do not spin.
		[ "$fails" -gt 4 ] && sleep 1
	done
}

# One reproducer run: label, then race_test arguments. Sets RESULT (race_test's
# RESULT line) and RC (its exit status).
run_race() {
	local label=$1 stop=$tmp/stop.$1 sink tloop
	shift
	rm -f "$stop"
	tcp_sink --port 9100 --conns 0 --timeout 86400 >"$tmp/sink.$label" 2>&1 &
	sink=$!
	traffic_loop "$stop" &
	tloop=$!
	# Its output as it comes ("# " lines and the RESULT line).
	# shellcheck disable=SC2086
	{ race_test --stop-file "$stop" --ping-rate "$ping_rate" "$@" $extra 2>&1
	  echo $? >"$tmp/rc.$label"; } | tee "$tmp/race.$label"
	RC=$(cat "$tmp/rc.$label" 2>/dev/null)
	RC=${RC:-1}
	touch "$stop"
	RESULT=$(grep 'race_test: RESULT' "$tmp/race.$label" | tail -n 1)
	diag "waiting for the current traffic request to end"
	wait "$tloop"
	kill "$sink" 2>/dev/null
	wait "$sink" 2>/dev/null
}

field() { # name: from RESULT
	echo "$RESULT" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Loads a module; prints the new kernel log lines on failure.
load() { # path, dmesg mark
	if ! [ -f "$1" ]; then
		diag "$1 is missing"
		return 1
	fi
	if ! insmod "$1"; then
		dmesg_since "$2" | sed 's/^/# dmesg: /'
		return 1
	fi
	[ -c /dev/pktring ] || mdev -s 2>/dev/null
	[ -c /dev/pktring ] || { diag "/dev/pktring did not appear"; return 1; }
	return 0
}

# Fails a run whose kernel log got bad lines.
dmesg_clean() { # mark
	local bad
	bad=$(dmesg_since "$1" | grep -E "$BAD_DMESG")
	[ -z "$bad" ] && return 0
	echo "$bad" | head -n 40 | sed 's/^/# dmesg: /'
	return 1
}

unload() {
	lsmod 2>/dev/null | grep -q '^rust_pktring ' || return 0
	rmmod rust_pktring || diag "rmmod rust_pktring failed"
}

if [ "$long" = 1 ]; then
	set -- --long --timeout "$timeout"
else
	set -- --min-frames "$min_frames" --min-large "$min_large" --timeout "$timeout"
fi
owner_args="$*"
diag "race: load: TCP $streams streams ${tcp_seconds} s, then UDP 32 flows at $udp_rate/s ${udp_seconds} s, again and again; pings at $ping_rate/s throughout"

# A run of the real module, which must keep every frame intact: label, what
# the TAP line calls the run, then race_test's arguments.
intact_run() {
	local label=$1 what=$2 mark v l c s
	shift 2
	unload
	mark=$(dmesg_mark)
	if ! load "$module" "$mark"; then
		not_ok "race: $what: $module loads"
		return
	fi
	diag "race: $module, race_test $* $extra"
	run_race "$label" "$@"
	unload
	v=$(field verified) l=$(field large) c=$(field corrupt) s=$(field seconds)
	if ! dmesg_clean "$mark"; then
		not_ok "race: $what: kernel log has warnings (${v:-?} frames verified, ${c:-?} corrupt)"
	elif [ "$RC" -eq 0 ]; then
		ok "race: $what: $v frames verified ($l over 60 KB), 0 corrupt in $s s"
	else
		not_ok "race: $what: ${v:-?} frames verified (${l:-?} over 60 KB), ${c:-?} corrupt in ${s:-?} s (race_test rc $RC)"
	fi
}

# --- with the owner map: no corrupt frame ------------------------------
if [ -z "$only" ] || [ "$only" = owner ]; then
	# shellcheck disable=SC2086
	intact_run owner "owner map" $owner_args
fi

# --- through a fanout group: no corrupt frame, none in two members ------
if [ -z "$only" ] || [ "$only" = fanout ]; then
	if [ "$long" = 1 ]; then
		fanout_args="--long --timeout $timeout"
	else
		fanout_args="--min-frames $fanout_frames --min-large $fanout_large --timeout $fanout_timeout"
	fi
	# shellcheck disable=SC2086
	intact_run fanout "fanout group of $fanout" --fanout "$fanout" $fanout_args
fi

# --- without the owner map: the reproducer must see corruption ---------
if [ -z "$only" ] || [ "$only" = noowner ]; then
	unload
	mark=$(dmesg_mark)
	if ! load "$noowner_module" "$mark"; then
		not_ok "race: without owner map: $noowner_module loads"
	elif ! dmesg_since "$mark" | grep -q 'TEST BUILD: rx_owner_map disabled'; then
		dmesg_since "$mark" | sed 's/^/# dmesg: /'
		unload
		not_ok "race: without owner map: $noowner_module logs its TEST BUILD warning"
	else
		diag "race: $noowner_module, race_test --expect-corruption --timeout $expect_timeout $extra"
		run_race noowner --expect-corruption --timeout "$expect_timeout"
		unload
		v=$(field verified) c=$(field corrupt) s=$(field seconds)
		x=$((${v:-0} + ${c:-0}))
		if ! dmesg_clean "$mark"; then
			not_ok "race: without owner map: kernel log has warnings (${c:-?} corrupt of $x)"
		elif [ "$RC" -eq 0 ]; then
			ok "race: without owner map: corruption detected ($c corrupt of $x) in $s s"
		else
			not_ok "race: without owner map: no corruption detected in $x frames (race_test rc $RC)"
		fi
	fi
fi

rm -rf "$tmp"
[ "$failed" -eq 0 ]
