#!/usr/bin/env bash
# `make soak`: the producer-race reproducer's long runs, which `make test`
# does not make (they take hours under TCG):
#
#	owner	base kernel, one ring: race.sh --long (10,000,000 frames verified,
#		500,000 of them over 60 KB, 0 corrupt)
#	fanout	base kernel, the same through a 3-member fanout group (lb with
#		rollover, one reader per member)
#	debug	debug kernel (KASAN, lockdep): 1,000,000 frames, 10,000 over
#		60 KB, one ring
#
#	scripts/soak.sh [owner|fanout|debug]...	(default: all three, in turn)
#
# SOAK_TIMEOUT=SEC ends each run's race_test after SEC seconds, targets met
# or not (default: 10,800 for the base runs, 14,400 for the debug one).
#
# Each run boots the kernel with the busybox initramfs of `make test` (TCG, 4
# vCPUs, the 4-queue virtio-net of the test network) and runs
# selftests/guest/race.sh there.
# TAP lines, race_test's RESULT lines and the summary "N passed, N failed";
# the console logs are soak-RUN-<time>.log in the logs directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

runs=("$@")
[ ${#runs[@]} -eq 0 ] && runs=(owner fanout debug)
stamp=$(date +%Y%m%d-%H%M%S)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bash "$TOP/scripts/setup.sh"
kdir=$(bash "$TOP/scripts/kernel.sh" base | tail -n1)
build_guest_programs "$kdir"
make -C "$TOP/selftests" -s all >>"$LOGDIR/selftests.log" 2>&1 ||
	die "selftests build failed (see $LOGDIR/selftests.log)"
for run in "${runs[@]}"; do
	case "$run" in
	owner | fanout) ;;
	debug)
		dkdir=$(bash "$TOP/scripts/kernel.sh" debug | tail -n1)
		make -C "$TOP" -s debug-module >>"$LOGDIR/module.log" 2>&1 ||
			die "the debug module did not build (see $LOGDIR/module.log)"
		;;
	*) die "unknown soak run '$run' (owner, fanout or debug)" ;;
	esac
done

passed=0 failed=0
for run in "${runs[@]}"; do
	log="$LOGDIR/soak-$run-$stamp.log"
	case "$run" in
	owner) kernel=$kdir module=$TOP/rust_pktring.ko args="--long --only owner" ;;
	fanout) kernel=$kdir module=$TOP/rust_pktring.ko args="--long --only fanout --fanout 3" ;;
	debug) kernel=$dkdir module=$TOP/build/debug/rust_pktring.ko
		args="--only owner --min-frames 1000000 --min-large 10000 --timeout ${SOAK_TIMEOUT:-14400}" ;;
	esac
	# race.sh takes the last --timeout.
	[ -n "${SOAK_TIMEOUT:-}" ] && args="$args --timeout $SOAK_TIMEOUT"
	adds=(--add "$module:/lib/modules/rust_pktring.ko")
	for f in "$TOP"/selftests/build/* "$TOP"/selftests/guest/*.sh; do
		adds+=(--add "$f:/bin/")
	done
	"$TOP/qemu/mkinitramfs.sh" "$tmp/$run.cpio.gz" "${adds[@]}" --run "race.sh $args"
	step "soak $run: race.sh $args (console: $log)"
	start=$SECONDS
	rc=0
	"$TOP/qemu/boot.sh" --kernel "$kernel/arch/x86/boot/bzImage" \
		--initramfs "$tmp/$run.cpio.gz" --outdir "$tmp/out" --quiet \
		--timeout 15000 --log "$log" || rc=$?
	tr -d '\r' <"$log" | grep -E 'race_test: (RESULT|member|ring:)' | sed "s/^/# $run: /" || true
	if tr -d '\r' <"$log" | grep -qE '^ok [0-9]+ - race'; then
		tr -d '\r' <"$log" | grep -E '^ok [0-9]+ - race' | sed "s/^/$run: /"
		passed=$((passed + 1))
	else
		tr -d '\r' <"$log" | grep -E '^not ok [0-9]+ - race' | sed "s/^/$run: /" ||
			echo "not ok - $run: no result (guest rc $rc; see $log)"
		failed=$((failed + 1))
	fi
	echo "# $run: $((SECONDS - start)) s"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
