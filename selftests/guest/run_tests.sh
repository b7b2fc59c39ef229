#!/bin/sh
# Run a kselftest-harness test program in the test guest (busybox sh), one
# test per run of the program, and watch the kernel log after each.
#
#	run_tests.sh PROGRAM [--module PATH] [--timeout SECONDS]
#		[--only PATTERN]... [--list]
#
# PROGRAM	the test program, a path or a name found next to this script
#		or in $PATH: one of the module's suite (pktring_ring_test,
#		pktring_validation_test, pktring_traffic_test,
#		pktring_lifecycle_test, pktring_locks_test, pktring_access_test,
#		pktring_module_test: guest/suite.sh
#		runs them in this order) or misc_ring_sample_test
# --module	module to insmod first if it is not loaded (default for the
#		pktring_*_test programs: $PKTRING_MODULE or
#		/lib/modules/rust_pktring.ko; other programs load nothing
#		unless given one); it is loaded again if a test leaves it
#		unloaded
# --timeout	outer limit per test in seconds (default 1200; the harness
#		has tighter ones per test)
# --only	run only tests whose name (fixture.variant.test) matches the
#		shell pattern; may be repeated
# --list	print the test names and exit
#
# Prints TAP: one line per test (ok / not ok / ok # SKIP reason), the
# harness's own output as "# " comments. A test also fails if the kernel
# logged a warning while it ran (WARNING:, BUG:, Oops, lockdep, KASAN, a
# device that cannot be freed, ...);
# those lines are printed. The kernel log is read and cleared (dmesg -c)
# around every test; the serial console still has all of it. Ends with
# "N passed, N failed, N skipped"; exits 1 if any test failed, 2 if none
# could run.

prog=
module=
timeout=1200
only=
list_only=0

while [ $# -gt 0 ]; do
	case "$1" in
	--module) module=$2; shift 2 ;;
	--bin) prog=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--only) only="$only $2"; shift 2 ;;
	--list) list_only=1; shift ;;
	-*) echo "run_tests.sh: unknown argument '$1'" >&2; exit 2 ;;
	*) prog=$1; shift ;;
	esac
done

if [ -z "$prog" ]; then
	echo "Bail out! usage: run_tests.sh PROGRAM [--module PATH] [--timeout S] [--only PATTERN]... [--list]"
	exit 2
fi
case "$prog" in
*/*) bin=$prog ;;
*)
	bin=$(dirname "$0")/$prog
	[ -x "$bin" ] || bin=$(command -v "$prog")
	;;
esac
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	echo "Bail out! test program $prog not found"
	exit 2
fi
# The module's own test programs need it loaded.
if [ -z "$module" ]; then
	case "$(basename "$bin")" in
	pktring_*_test) module=${PKTRING_MODULE:-/lib/modules/rust_pktring.ko} ;;
	esac
fi
modname=$(basename "${module:-none}" .ko | tr '-' '_')

BAD_DMESG='WARNING:|BUG:|Oops|lockdep|KASAN|possible recursive locking|circular locking|inconsistent lock state|sleeping function called|unregister_netdevice: waiting'
[ -n "$module" ] && export PKTRING_MODULE="$module"
tmp=/tmp/run_tests.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

diag() { echo "# $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
loaded() { [ -z "$module" ] || grep -q "^$modname " /proc/modules; }

# "fixture:variant:test" (or "fixture:test") for each test, in the order the
# harness runs them, from its -l table ("%-20s %-25s %s" rows; blocks per
# fixture separated by dashes; variants and tests listed side by side).
list_tests() {
	"$bin" -l 2>&1 | awk '
	function flush(   i, j) {
		for (j = 0; j < (nv ? nv : 1); j++)
			for (i = 0; i < nt; i++)
				print nv ? fix ":" vars[j] ":" tests[i] : fix ":" tests[i]
		nv = 0; nt = 0
	}
	/^# FIXTURE/ { next }
	/^-----/ { flush(); next }
	{
		f = substr($0, 1, 20); v = substr($0, 22, 25); t = substr($0, 48)
		gsub(/ /, "", f); gsub(/ /, "", v); gsub(/ /, "", t)
		if (f != "") { flush(); fix = f }
		if (v != "") vars[nv++] = v
		if (t != "") tests[nt++] = t
	}
	END { flush() }'
}

selected() {
	local name=$1 p
	[ -z "$only" ] && return 0
	for p in $only; do
		case "$name" in
		$p) return 0 ;;
		esac
	done
	return 1
}

list_tests >"$tmp/all"
: >"$tmp/tests"
while IFS= read -r spec; do
	name=$(echo "$spec" | tr ':' '.')
	selected "$name" && echo "$spec" >>"$tmp/tests"
done <"$tmp/all"
total=$(wc -l <"$tmp/tests")

if [ "$list_only" = 1 ]; then
	tr ':' '.' <"$tmp/tests"
	exit 0
fi
if [ "$total" -eq 0 ]; then
	echo "Bail out! no tests found in '$bin -l'"
	exit 2
fi

# Kernel log bookkeeping: everything before the tests is left alone (but
# cleared), each test then sees only its own lines.
dmesg -c >/dev/null 2>&1
if ! loaded; then
	if ! insmod "$module"; then
		echo "Bail out! insmod $module failed"
		exit 2
	fi
	bad=$(dmesg -c | grep -E "$BAD_DMESG")
	if [ -n "$bad" ]; then
		echo "$bad" | sed 's/^/# dmesg (insmod): /'
		echo "Bail out! kernel warnings while loading $module"
		exit 1
	fi
	diag "loaded $module"
fi

echo "TAP version 13"
echo "1..$total"
n=0 pass=0 fail=0 skip=0
t_start=$(uptime_s)
while IFS= read -r spec; do
	n=$((n + 1))
	name=$(echo "$spec" | tr ':' '.')
	t0=$(uptime_s)
	# The harness's TAP becomes comments of ours; its exit status goes
	# through a file because of the pipe.
	{
		timeout "$timeout" "$bin" -r "$spec" </dev/null 2>&1
		echo $? >"$tmp/rc"
	} | tee "$tmp/out" | while IFS= read -r line; do echo "# $line"; done
	rc=$(cat "$tmp/rc")
	bad=$(dmesg -c | grep -E "$BAD_DMESG")
	diag "$name: exit status $rc, $(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }') s"

	result=pass reason=
	if [ "$rc" = 0 ]; then
		reason=$(grep -E '^ok [0-9]+ .* # SKIP' "$tmp/out" | head -n 1 | sed 's/.* # SKIP *//')
		[ -n "$reason" ] && result=skip
	elif [ "$rc" = 4 ]; then
		result=skip
		reason=$(grep -E '# SKIP' "$tmp/out" | head -n 1 | sed 's/.* # SKIP *//')
	else
		result=fail
	fi
	if [ -n "$bad" ]; then
		echo "$bad" | sed 's/^/# dmesg: /'
		diag "$name: the kernel logged warnings"
		result=fail
	fi
	case "$result" in
	pass) pass=$((pass + 1)); echo "ok $n - $name" ;;
	skip) skip=$((skip + 1)); echo "ok $n - $name # SKIP ${reason:-skipped}" ;;
	fail) fail=$((fail + 1)); echo "not ok $n - $name" ;;
	esac

	# A test killed by a timeout may leave pktring-traffic's lock and logs.
	rmdir /tmp/.pktring-traffic.lock 2>/dev/null
	rm -f /tmp/pktring-traffic.*.log
	# Later tests need the module even if one left it unloaded.
	if ! loaded; then
		diag "$modname is not loaded after $name: loading it again"
		insmod "$module" || diag "insmod $module failed"
		dmesg -c >/dev/null
	fi
done <"$tmp/tests"

diag "total $(awk -v a="$t_start" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }') s"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
