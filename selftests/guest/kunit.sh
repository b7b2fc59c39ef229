#!/bin/sh
# The kernel crate's doctests ran as KUnit at boot; report them as TAP.
#
# Each abstraction of our patch series must have had its doctests run and
# pass, and so must every other doctest of the kernel crate: there is no list
# of failures to tolerate. (The one that used to fault, task.rs's
# `current!().group_leader().pid()`, was bindgen 0.73.0 placing task_struct's
# fields 64 bytes late; the kernel build now checks every struct's layout
# against C.)
#
#	kunit.sh

SERIES="bitmap_rs mm_user_shared_rs net_netfilter_rs sync_lock_spinlock_bh_rs sync_poll_rs"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }

results=/tmp/kunit-results
dmesg | sed -n 's/^\[[ 0-9.]*\] *\(not ok\|ok\) [0-9]* \(rust_doctest_kernel_[a-z0-9_]*\)$/\1 \2/p' >"$results"

if [ ! -s "$results" ]; then
	not_ok "kunit: no doctest results in the kernel log (CONFIG_RUST_KERNEL_DOCTESTS?)"
	exit 1
fi

for file in $SERIES; do
	passed=$(grep -c "^ok rust_doctest_kernel_${file}_[0-9]*$" "$results")
	bad=$(grep -c "^not ok rust_doctest_kernel_${file}_[0-9]*$" "$results")
	if [ "$passed" -gt 0 ] && [ "$bad" -eq 0 ]; then
		ok "kunit: $passed doctest(s) of ${file%_rs}.rs pass"
	else
		not_ok "kunit: doctests of ${file%_rs}.rs: $passed passed, $bad failed"
	fi
done

total=$(wc -l <"$results")
bad=$(sed -n 's/^not ok //p' "$results")
if [ -z "$bad" ]; then
	ok "kunit: all $total kernel crate doctests pass"
else
	not_ok "kunit: failing doctests: $(echo $bad)"
fi
[ "$failed" -eq 0 ]
