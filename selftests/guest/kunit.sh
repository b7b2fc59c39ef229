#!/bin/sh
# The kernel crate's doctests ran as KUnit at boot; report them as TAP.
#
# Each abstraction of our patch series must have had its doctests run and
# pass. Every other doctest must pass too, except the known upstream failures
# below, which are reported but do not fail the run.
#
#	kunit.sh

# Upstream 6.12.117's task.rs example `current!().group_leader().pid()`
# faults in a KUnit kthread (NULL group leader); our series does not touch it.
KNOWN_UPSTREAM="rust_doctest_kernel_task_rs_1"

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
unexpected=$(echo "$bad" | grep -v -x -e '' $(for k in $KNOWN_UPSTREAM; do printf -- '-e %s ' "$k"; done))
if [ -z "$unexpected" ]; then
	ok "kunit: all $total kernel crate doctests pass${bad:+ (known upstream failure: $(echo $bad))}"
else
	not_ok "kunit: failing doctests: $(echo $unexpected)"
fi
[ "$failed" -eq 0 ]
