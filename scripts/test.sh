#!/usr/bin/env bash
# `make test`: every test of the project, from a fresh machine.
#
#	scripts/test.sh [base|vng|debug|kunit]...
#		(default: base, vng, and debug if its kernel is cached;
#		kunit boots the base kernel for its doctests only)
#
# Installs the toolchain, builds (or reuses) the cached kernels, builds the
# module, the test programs and the user-space crates, checks what can be
# checked on the host (including the crates' cargo tests and the loom model),
# then, for each run, boots the guest (4 vCPUs, 4-queue virtio-net) and runs
# selftests/guest/suite.sh in it: on the base kernel with the boot-time KUnit
# doctests; on the same kernel under virtme-ng (vng); on the debug kernel
# (KASAN, lockdep, atomic-sleep checks, kmemleak) with any kernel report
# failing the run. Each run's CLI capture comes back to the host, where
# tcpdump must read exactly the packets pktgen sent, and its pcapng goes
# through capinfos and tshark. Every test prints a TAP
# line; the last line is "N passed, N failed".
#
# Logs: $PKTRING_LOGDIR (default: logs/ in the cache, $CACHE of lib.sh); the
# guest's console is test-<time>.log there, test-latest.log points at the
# newest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$TOP/testnet.env"

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
	flavours=(base vng)
	[ -f "$CACHE/build-debug/.pktring-key" ] && flavours+=(debug)
fi

bash "$TOP/scripts/setup.sh"
kdir=$(bash "$TOP/scripts/kernel.sh" base | tail -n1)

# `make kunit` needs the kernel only.
if [ "${flavours[*]}" != kunit ]; then
	step "building rust_pktring.ko (with clippy), the test programs and the pktring CLI"
	touch "$TOP/rust_pktring.rs"
	make -C "$TOP" -s KDIR="$kdir" CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver modules \
		>"$LOGDIR/module.log" 2>&1 || die "module build failed (see $LOGDIR/module.log)"
	make -C "$TOP" -s KDIR="$kdir" noowner >>"$LOGDIR/module.log" 2>&1 ||
		die "test-only module build failed (see $LOGDIR/module.log)"
	make -C "$TOP/selftests" -s all >"$LOGDIR/selftests.log" 2>&1 ||
		die "selftests build failed (see $LOGDIR/selftests.log)"
	make -C "$TOP/userspace" -s guest >"$LOGDIR/userspace.log" 2>&1 ||
		die "the static pktring CLI did not build (see $LOGDIR/userspace.log)"

	step "host checks"
	rc=0; grep -qE '(^|\s)(warning|error)' "$LOGDIR/module.log" && rc=1
	host_result $rc "rust_pktring.ko builds with no compiler, clippy or objtool warning"
	rc=0; git -C "$TOP" ls-files 'rust_pktring*.rs' fanout.rs ring.rs uapi.rs | xargs grep -nwE 'unsafe' | grep -vE '^\S+:[0-9]+:\s*//' && rc=1
	host_result $rc "the module has no unsafe code"
	rc=0; (cd "$TOP" && rustfmt --edition 2021 --check rust_pktring.rs fanout.rs ring.rs uapi.rs >/dev/null) || rc=1
	host_result $rc "the module is rustfmt clean"
	rc=0; printf '#include "rust_pktring_uapi.h"\nint main(void) { return 0; }\n' |
		gcc -Wall -Werror -I"$TOP" -x c -o /dev/null - || rc=1
	host_result $rc "rust_pktring_uapi.h compiles and its layout asserts hold"
	# The user-space crates: the library and CLI's tests (the uapi mirrors
	# against the header among them) and the loom model of claim/release.
	rc=0; make -C "$TOP/userspace" -s unit-test >"$LOGDIR/cargo-test.log" 2>&1 || rc=1
	tests=$(awk '/^test result:/ { n += $4 } END { print n + 0 }' "$LOGDIR/cargo-test.log")
	host_result $rc "userspace: cargo test, $tests tests (library, CLI, loom model; log: $LOGDIR/cargo-test.log)"
	rc=0; make -C "$TOP/userspace" -s clippy >"$LOGDIR/cargo-clippy.log" 2>&1 || rc=1
	host_result $rc "userspace: clippy finds nothing (-D warnings)"
	rc=0; make -C "$TOP/userspace" -s fmt-check >/dev/null 2>&1 || rc=1
	host_result $rc "userspace: rustfmt clean"
fi

# The pcap the guest's CLI test sent back: tcpdump must read exactly the
# packets pktgen sent (selftests/guest/cli.sh), with their payloads intact.
check_pcap() { # run, pcap
	local n
	n=$(tcpdump -r "$2" -nn 2>/dev/null | wc -l) || n=0
	rc=0; [ "$n" -eq 1000 ] || rc=1
	host_result $rc "$1: tcpdump -r reads the CLI's pcap: $n of 1000 packets"
	rc=0; tcpdump -r "$2" -w - 2>/dev/null |
		"$TOP/selftests/pcap_verify" --count 1000 --flows 16 --size 200 >"$tmp/verify" 2>&1 || rc=1
	sed 's/^/# /' "$tmp/verify"
	host_result $rc "$1: every packet in it is one pktgen sent, intact, each once"
}

# How many packets of a capture have a timestamp earlier than the one before,
# as tshark reads the file.
backwards() { # file
	# As strings of digits, seconds and nanoseconds run together: a double
	# would round the nanoseconds away.
	{ tshark -r "$1" -T fields -e frame.time_epoch 2>/dev/null || echo unreadable; } |
		awk '{ t = $1; sub(/\./, "", t) } NR > 1 && (t "") < (last "") { n++ } { last = t } END { print /unreadable/ ? "-" : n + 0 }'
}

# The number in a capture summary's "file:" line (the CLI's own count of the
# timestamps that step back).
said_backwards() { # summary
	sed -n 's/^file: .* \([0-9]*\) timestamps earlier than the one before.*/\1/p' "$1" 2>/dev/null || true
}

# received;dropped;delivered from a pcapng's statistics block (the last), read
# with tshark's MIME Files Format reader, which dissects the blocks themselves.
isb_counts() { # pcapng
	tshark -r "$1" -X 'read_format:MIME Files Format' -T fields -E 'separator=;' \
		-e pcapng.options.option.data.interface.received -e pcapng.options.option.data.interface.dropped \
		-e pcapng.options.option.data.interface.delivered_to_user 2>/dev/null | grep -v '^;;$' | tail -n1 || true
}

# The same three counts from a capture summary: the kernel's packets and
# drops, and the packets written.
summary_counts() { # summary
	echo "$(sed -n 's/^kernel: *\([0-9]*\) packets, \([0-9]*\) drops$/\1;\2/p' "$1" 2>/dev/null);$(sed -n 's/^packets: *\([0-9]*\) in .*/\1/p' "$1" 2>/dev/null)"
}

# The pcapng the guest's CLI test sent back (a capture of exactly 1000
# packets through a sort window), read with Debian's capinfos and tshark:
# the packet count, nanosecond timestamps, every packet's CPU and RX queue,
# the kernel's counters in the interface statistics block (through tshark's
# MIME Files Format reader, which dissects the blocks themselves), the
# payloads (through tcpdump and pcap_verify), and the CLI's count of
# timestamps that step back, in it and in the pcap of the same test; and the
# statistics block of a capture with drops.
check_pcapng() { # run, pcapng, its summary, the pcap, its summary
	local run=$1 ng=$2 ng_sum=$3 pcap=$4 pcap_sum=$5 n rc stats said seen
	capinfos -M "$ng" >"$tmp/capinfos" 2>&1 || true
	n=$(sed -n 's/^Number of packets: *//p' "$tmp/capinfos")
	rc=0
	grep -q '^File type: .*pcapng' "$tmp/capinfos" && [ "$n" = 1000 ] &&
		grep -q '^File timestamp precision: *nanoseconds (9)' "$tmp/capinfos" &&
		grep -q "^ *Name = $PKTRING_GUEST_IFNAME\$" "$tmp/capinfos" || rc=1
	[ $rc = 0 ] || sed 's/^/# /' "$tmp/capinfos"
	host_result $rc "$run: capinfos reads the CLI's pcapng: $n of 1000 packets, nanosecond timestamps, interface $PKTRING_GUEST_IFNAME"
	# Each packet's comment names its CPU and queue, and epb_queue agrees.
	tshark -r "$ng" -T fields -E 'separator=;' -e frame.comment -e frame.interface_queue \
		-e frame.time_epoch 2>/dev/null >"$tmp/fields" || true
	rc=0
	awk -F';' '!/^cpu [0-9]+, rx queue [0-9]+;[0-9]+;/ { bad++; next }
		{ split($1, w, " "); if (w[5] != $2) bad++; cpus[w[2]]; if ($3 !~ /\.[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]$/) bad++;
		  if ($3 !~ /000$/) ns++ }
		END { n = 0; for (c in cpus) n++; print NR, bad + 0, n, ns + 0; exit !(NR == 1000 && bad == 0 && ns > 0) }' \
		"$tmp/fields" >"$tmp/fields.sum" || rc=1
	host_result $rc "$run: tshark: every packet has its CPU and RX queue, in its comment and epb_queue, and a nanosecond timestamp (packets, bad, CPUs, stamps not in whole µs: $(cat "$tmp/fields.sum"))"
	for f in "$ng:$ng_sum" "${ng%.pcapng}-drops.pcapng:${ng%.pcapng}-drops.txt"; do
		stats=$(isb_counts "${f%%:*}") said=$(summary_counts "${f#*:}")
		rc=0; [ -n "$stats" ] && [ "$stats" = "$said" ] || rc=1
		host_result $rc "$run: the statistics block of $(basename "${f%%:*}") has the kernel's counts: received;dropped;delivered $stats, the summary's $said"
	done
	rc=0; [ "$(echo "$stats" | cut -d';' -f2)" -gt 0 ] 2>/dev/null || rc=1
	host_result $rc "$run: the capture with drops has drops in its statistics block ($stats)"
	rc=0; tcpdump -r "$ng" -w - 2>/dev/null |
		"$TOP/selftests/pcap_verify" --count 1000 --flows 16 --size 200 >"$tmp/verify" 2>&1 || rc=1
	sed 's/^/# /' "$tmp/verify"
	host_result $rc "$run: every packet in the pcapng is one pktgen sent, intact, each once"
	rc=0
	for f in "$ng:$ng_sum" "$pcap:$pcap_sum"; do
		said=$(said_backwards "${f#*:}") seen=$(backwards "${f%%:*}")
		echo "# ${f%%:*}: the CLI says $said timestamps step back, tshark sees $seen"
		[ -n "$said" ] && [ "$said" = "$seen" ] || rc=1
	done
	host_result $rc "$run: the CLI's count of timestamps that step back is tshark's, in the pcapng and in the pcap"
}

# qemu/boot.sh with its console log in LOG. A guest that never reached user
# space (rc 123: no test ran) is booted once more, its first log kept as
# LOG.hung: under TCG here a vCPU whose timer never fires now and then stalls
# a boot for good (see the README's known issues).
boot() { # log, boot.sh arguments...
	local log=$1 rc=0
	shift
	"$TOP/qemu/boot.sh" --log "$log" "$@" || rc=$?
	if [ "$rc" = 123 ]; then
		mv "$log" "$log.hung"
		echo "# the guest did not reach user space (console log: $log.hung): booting it again"
		rc=0
		"$TOP/qemu/boot.sh" --log "$log" "$@" || rc=$?
	fi
	return "$rc"
}

# The longest a guest run may take, boot to power-off (PKTRING_TEST_TIMEOUT
# if set): some 2.5 to 3 times what each took on this machine's kind (base
# 510 s, vng 213, debug 631), and each above what its suite's own limits
# add up to (race.sh: 720 + 240 + 120 s on base, 720 on debug), so that a
# slow test fails with its own message. All three at their limits, with the
# host's part (some 10 minutes) and the shell check's 600 s, stay inside
# CI's 90 minutes. A guest whose user space prints nothing for
# PKTRING_SILENCE_TIMEOUT seconds (300; the longest test takes 30) is
# stopped sooner: a stalled vCPU or a hung test costs 5 minutes, not the run.
run_timeout() { # run
	local t
	case "$1" in
	vng) t=600 ;;
	*) t=1500 ;;
	esac
	echo "${PKTRING_TEST_TIMEOUT:-$t}"
}

# Boots a kernel and runs the suite: from an initramfs with the run's modules,
# or (vng) under virtme-ng from this tree. The console log is
# test-RUN-<time>.log. Sets guest_rc.
run_guest() { # run, kernel build, module, suite arguments, kernel arguments
	local run=$1 build=$2 module=$3 suite_args=$4 append=$5 f log boot
	log="$LOGDIR/test-$run-$stamp.log"
	ln -sfn "$(basename "$log")" "$LOGDIR/test-$run-latest.log"
	if [ "$run" = vng ]; then
		step "booting the base kernel with virtme-ng (TCG, 4 vCPUs, 4-queue virtio-net) for the guest tests"
		boot=(--vng "suite.sh $suite_args")
	else
		step "booting the $run kernel (TCG, 4 vCPUs, 4-queue virtio-net) for the guest tests"
		local adds=(--add "$module:/lib/modules/rust_pktring.ko"
			--add "$TOP/build/noowner/rust_pktring.ko:/lib/modules/rust_pktring_noowner.ko"
			--add "$build/samples/rust/rust_misc_ring.ko:/lib/modules/rust_misc_ring.ko"
			--add "$TOP/userspace/target/guest/pktring:/bin/")
		for f in "$TOP"/selftests/build/* "$TOP"/selftests/guest/*.sh; do
			adds+=(--add "$f:/bin/")
		done
		"$TOP/qemu/mkinitramfs.sh" "$tmp/$run.cpio.gz" "${adds[@]}" --run "suite.sh $suite_args"
		boot=(--initramfs "$tmp/$run.cpio.gz")
	fi
	guest_rc=0
	local t0=$SECONDS
	boot "$log" --kernel "$build/arch/x86/boot/bzImage" "${boot[@]}" --outdir "$tmp/out" \
		--timeout "$(run_timeout "$run")" --silence "${PKTRING_SILENCE_TIMEOUT:-300}" \
		--quiet ${append:+--append "$append"} ||
		guest_rc=$?
	times+=("$run $((SECONDS - t0)) s (rc $guest_rc)")
	if [ "$guest_rc" -ne 0 ]; then
		{
			echo "# the $run run's console ended (rc $guest_rc) with:"
			tr -d '\r' <"$log" | grep -v '^\s*$' | tail -n 6 | cut -c1-200 | sed 's/^/#   /'
		} >>"$tmp/ends"
	fi
	tr -d '\r' <"$log" | grep -E '^(not )?ok [0-9]+ - ' | sed "s/^/$run: /" | tee -a "$tap" || true
	if [ "$guest_rc" -ne 0 ] && ! grep -q "^$run: not ok" "$tap"; then
		echo "not ok - $run: the guest run ended with rc $guest_rc without a failing test (see $log)" |
			tee -a "$tap"
	fi
	if [ "$run" != kunit ]; then
		f="$tmp/out/cli-capture${suite_args:+-${suite_args#--}}"
		check_pcap "$run" "$f.pcap"
		check_pcapng "$run" "$f.pcapng" "$f-ng.txt" "$f.pcap" "$f.txt"
	fi
	logs+=("$log")
}

# `make shell` driven by a script instead of a person, once its shell is up:
# a filtered capture into pcapng in the guest, read back there with the
# host's tshark, and `exit` to power the guest off (the console does not pass
# EOF on).
# The capture writes its own exit status to a file: `wait` with no operand
# does not report the job's (one CI run got 1 from it while ash's job line
# said "Done", which ash writes for exit status 0 only), and `wait PID` gets
# 127 once the interactive shell has reported the job done at a prompt.
check_shell() {
	local out=$tmp/shell.out fifo=$tmp/shell.in pid w i=0 rc=0
	mkfifo "$fifo"
	timeout 600 bash "$TOP/scripts/shell.sh" <"$fifo" >"$out" 2>&1 &
	pid=$!
	exec {w}>"$fifo"
	while ! grep -q '^vng-run: exit (or Ctrl-D)' "$out" && kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do
		sleep 1
		i=$((i + 1))
	done
	# Lines typed before the shell reads its terminal would be lost.
	sleep 3
	printf '%s\n' ": a line for what the terminal may still drop" \
		"(pktring capture -w /tmp/s.pcapng -i $PKTRING_GUEST_IFNAME -c 100 --duration 120s -q 'udp src port 40001'; echo \$? >/tmp/s.rc) & sleep 3" \
		"pktring-traffic udp --dst $PKTRING_GUEST_IP4 --flows 4 --sport 40000 --count 400 --rate 1000 >/dev/null" \
		'wait; echo "shell-session: capture $(cat /tmp/s.rc), tshark reads $(tshark -r /tmp/s.pcapng 2>/dev/null | wc -l) packets, $(tshark -r /tmp/s.pcapng -Y "udp.srcport != 40001" 2>/dev/null | wc -l) from other ports"' \
		exit >&"$w"
	exec {w}>&-
	wait "$pid" || rc=$?
	cp "$out" "$LOGDIR/shell-$stamp.log"
	grep -q '^shell-session: capture 0, tshark reads 100 packets, 0 from other ports' "$out" && [ $rc = 0 ] || rc=1
	[ $rc = 0 ] || tail -n 20 "$out" | sed 's/^/# /'
	host_result $rc "make shell: boots with the module loaded; a capture in its shell reads back with tshark (log: $LOGDIR/shell-$stamp.log)"
}

# `make kunit`: the base kernel's boot-time doctests only, for the series' edit loop.
run_kunit() { # kernel build
	local log="$LOGDIR/test-kunit-$stamp.log"
	step "booting the base kernel for its KUnit doctests"
	"$TOP/qemu/mkinitramfs.sh" "$tmp/kunit.cpio.gz" --add "$TOP/selftests/guest/kunit.sh:/bin/" \
		--run "kunit.sh"
	guest_rc=0
	boot "$log" --kernel "$1/arch/x86/boot/bzImage" --initramfs "$tmp/kunit.cpio.gz" \
		--timeout 600 --quiet || guest_rc=$?
	tr -d '\r' <"$log" | grep -E '^(not )?ok [0-9]+ - ' | sed "s/^/kunit: /" | tee -a "$tap" || true
	[ "$guest_rc" -eq 0 ] || grep -q "^kunit: not ok" "$tap" ||
		echo "not ok - kunit: the guest run ended with rc $guest_rc (see $log)" | tee -a "$tap"
	logs+=("$log")
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pktring-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
logs=() times=()
for flavour in "${flavours[@]}"; do
	case "$flavour" in
	base) run_guest base "$kdir" "$TOP/rust_pktring.ko" "" "" ;;
	kunit) run_kunit "$kdir" ;;
	vng)
		run_guest vng "$kdir" "$TOP/rust_pktring.ko" --vng ""
		check_shell
		;;
	debug)
		dkdir=$(bash "$TOP/scripts/kernel.sh" debug | tail -n1)
		make -C "$TOP" -s debug-module >>"$LOGDIR/module.log" 2>&1 ||
			die "debug module build failed (see $LOGDIR/module.log)"
		run_guest debug "$dkdir" "$TOP/build/debug/rust_pktring.ko" --debug ""
		;;
	*) die "unknown run '$flavour' (base, vng, debug or kunit)" ;;
	esac
done

# What a CI log's last lines should say: how long each guest run took, and
# which tests failed.
echo "# guest runs: ${times[*]/%/;}"
grep -E '^([a-z]+: )?not ok ' "$tap" | head -n 10 | sed 's/^/# failed: /' || true
cat "$tmp/ends" 2>/dev/null || true
passed=$(grep -cE '^([a-z]+: )?ok ' "$tap" || true)
failed=$(grep -cE '^([a-z]+: )?not ok ' "$tap" || true)
skipped=$(grep -cE '^([a-z]+: )?ok .*# SKIP' "$tap" || true)
passed=$((passed - skipped))
step "done in $((SECONDS - start)) s; console logs: ${logs[*]}; TAP: $tap"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
