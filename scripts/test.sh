#!/usr/bin/env bash
# `make test`: every test of the project, from a fresh machine.
#
#	scripts/test.sh [base|debug]...	(default: base, and debug if cached)
#
# Installs the toolchain, builds (or reuses) the cached kernels, builds the
# module and the test programs, checks what can be checked on the host, then,
# for each kernel flavour, boots the guest (4 vCPUs, 4-queue virtio-net) and
# runs selftests/guest/suite.sh in it: on the base kernel with the boot-time
# KUnit doctests, on the debug kernel (KASAN, lockdep, atomic-sleep checks,
# kmemleak) with any kernel report failing the run. Every test prints a TAP
# line; the last line is "N passed, N failed".
#
# Logs: $PKTRING_LOGDIR (default ~/.cache/rust-pktring/logs); the guest's
# console is test-<time>.log there, test-latest.log points at the newest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start=$SECONDS
stamp=$(date +%Y%m%d-%H%M%S)
tap="$LOGDIR/test-$stamp.tap"
: >"$tap"

# One TAP line from the host side.
host_result() { # status, description
	if [ "$1" -eq 0 ]; then echo "ok - host: $2"; else echo "not ok - host: $2"; fi | tee -a "$tap"
}

# By default the base flavour, and the debug one when its kernel is already in
# the cache: building it cold (20 to 30 minutes) would push a cold run past an
# hour. `make test-debug` (scripts/test.sh debug) builds it.
flavours=("$@")
if [ ${#flavours[@]} -eq 0 ]; then
	flavours=(base)
	[ -f "$CACHE/build-debug/.pktring-key" ] && flavours+=(debug)
fi

bash "$TOP/scripts/setup.sh"
kdir=$(bash "$TOP/scripts/kernel.sh" base | tail -n1)

step "building rust_pktring.ko (with clippy) and the test programs"
touch "$TOP/rust_pktring.rs"
make -C "$TOP" -s KDIR="$kdir" CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver modules \
	>"$LOGDIR/module.log" 2>&1 || die "module build failed (see $LOGDIR/module.log)"
make -C "$TOP" -s KDIR="$kdir" noowner >>"$LOGDIR/module.log" 2>&1 ||
	die "test-only module build failed (see $LOGDIR/module.log)"
make -C "$TOP/selftests" -s all >"$LOGDIR/selftests.log" 2>&1 ||
	die "selftests build failed (see $LOGDIR/selftests.log)"

step "host checks"
rc=0; grep -qE '(^|\s)(warning|error)' "$LOGDIR/module.log" && rc=1
host_result $rc "rust_pktring.ko builds with no compiler, clippy or objtool warning"
rc=0; git -C "$TOP" ls-files 'rust_pktring*.rs' ring.rs uapi.rs | xargs grep -nwE 'unsafe' | grep -vE '^\S+:[0-9]+:\s*//' && rc=1
host_result $rc "the module has no unsafe code"
rc=0; (cd "$TOP" && rustfmt --edition 2021 --check rust_pktring.rs ring.rs uapi.rs >/dev/null) || rc=1
host_result $rc "the module is rustfmt clean"
rc=0; printf '#include "rust_pktring_uapi.h"\nint main(void) { return 0; }\n' |
	gcc -Wall -Werror -I"$TOP" -x c -o /dev/null - || rc=1
host_result $rc "rust_pktring_uapi.h compiles and its layout asserts hold"

# Boots FLAVOUR's kernel with its modules and runs the suite; the console log
# is test-FLAVOUR-<time>.log. Sets guest_rc.
run_guest() { # flavour, kernel build, module, suite arguments, kernel arguments
	local flavour=$1 build=$2 module=$3 suite_args=$4 append=$5 f log
	step "booting the $flavour kernel (TCG, 4 vCPUs, 4-queue virtio-net) for the guest tests"
	local adds=(--add "$module:/lib/modules/rust_pktring.ko"
		--add "$TOP/build/noowner/rust_pktring.ko:/lib/modules/rust_pktring_noowner.ko"
		--add "$build/samples/rust/rust_misc_ring.ko:/lib/modules/rust_misc_ring.ko")
	for f in "$TOP"/selftests/build/* "$TOP"/selftests/guest/*.sh; do
		adds+=(--add "$f:/bin/")
	done
	"$TOP/qemu/mkinitramfs.sh" "$tmp/$flavour.cpio.gz" "${adds[@]}" --run "suite.sh $suite_args"
	log="$LOGDIR/test-$flavour-$stamp.log"
	ln -sfn "$(basename "$log")" "$LOGDIR/test-$flavour-latest.log"
	guest_rc=0
	"$TOP/qemu/boot.sh" --kernel "$build/arch/x86/boot/bzImage" --initramfs "$tmp/$flavour.cpio.gz" \
		--timeout "${PKTRING_TEST_TIMEOUT:-3600}" --log "$log" --quiet --append "$append" || guest_rc=$?
	tr -d '\r' <"$log" | grep -E '^(not )?ok [0-9]+ - ' | sed "s/^/$flavour: /" | tee -a "$tap" || true
	if [ "$guest_rc" -ne 0 ] && ! grep -q "^$flavour: not ok" "$tap"; then
		echo "not ok - $flavour: the guest run ended with rc $guest_rc without a failing test (see $log)" |
			tee -a "$tap"
	fi
	logs+=("$log")
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pktring-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
logs=()
for flavour in "${flavours[@]}"; do
	case "$flavour" in
	base) run_guest base "$kdir" "$TOP/rust_pktring.ko" "" "" ;;
	debug)
		dkdir=$(bash "$TOP/scripts/kernel.sh" debug | tail -n1)
		make -C "$TOP" -s debug-module >>"$LOGDIR/module.log" 2>&1 ||
			die "debug module build failed (see $LOGDIR/module.log)"
		# KUnit off: an upstream doctest's oops (see README) would turn lockdep off.
		run_guest debug "$dkdir" "$TOP/build/debug/rust_pktring.ko" --debug "kunit.enable=0"
		;;
	*) die "unknown flavour '$flavour' (base or debug)" ;;
	esac
done

passed=$(grep -cE '^([a-z]+: )?ok ' "$tap" || true)
failed=$(grep -cE '^([a-z]+: )?not ok ' "$tap" || true)
skipped=$(grep -cE '^([a-z]+: )?ok .*# SKIP' "$tap" || true)
passed=$((passed - skipped))
step "done in $((SECONDS - start)) s; console logs: ${logs[*]}; TAP: $tap"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
