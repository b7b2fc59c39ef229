#!/usr/bin/env bash
# `make bench`: rust_pktring against AF_PACKET TPACKET_V2 and TPACKET_V3 in one
# guest boot, on the same traffic, with the same ring geometries; and the
# pktring CLI against tcpdump in a second boot.
#
# Builds (or reuses) the kernel, rust_pktring.ko and its noowner build, the
# guest program (bench/pktbench.c), tcp_sink, the pktring CLI (make -C
# userspace guest) and the QEMU plugin that meters the guest
# (bench/tcgstat.c); boots the initramfs guest once with bench/guest.sh as
# its job, and (section tcpdump) a virtme-ng guest once with bench/tcpdump.sh
# as its job, where the host's tcpdump runs as it is; then writes the tables
# and the plot (bench/report.py, gnuplot) to $PKTRING_CACHE/bench/<time>/
# (`latest` points at the newest) and prints the tables. See bench/README.md
# for what is measured and how to read it.
#
# Environment:
#   BENCH_SECONDS	seconds of traffic per phase (default 4)
#   BENCH_ROUNDS	owner/noowner rounds (default 2)
#   BENCH_SECTIONS	guest sections (default "memcpy host lo owner multi
#			fanout tcpdump"; tcpdump is the second boot; e.g.
#			BENCH_SECTIONS=fanout for the fanout section alone)
#   BENCH_FANOUT_ROUNDS
#			rounds of the fanout section (default 1: each phase
#			twice, in opposite orders)
#   BENCH_TCPDUMP_ROUNDS
#			rounds of the tcpdump section (default 3)
#   BENCH_TCPDUMP_WORKLOADS
#			its workloads (default "udp64max udp64at86k udp64at10k
#			udp1472at20k")
#   BENCH_QUICK=1	skip the 15k pps 64 B and the loopback TCP workloads
#   BENCH_INSNS=off	no instruction counts (plugin markers and CPU times only)
#   BENCH_AB_MODULES="NAME=FILE ..."
#			more rust_pktring builds for the owner-map section (NAME
#			without dashes), e.g. a proposed patch
#   BENCH_MODULE, BENCH_NOOWNER_MODULE
#			use these modules instead of building them (both)
#   BENCH_KERNEL, BENCH_SYSTEM_MAP
#			and this kernel (with the modules above)
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

secs=${BENCH_SECONDS:-4}
rounds=${BENCH_ROUNDS:-2}
fanout_rounds=${BENCH_FANOUT_ROUNDS:-1}
sections=${BENCH_SECTIONS:-memcpy host lo owner multi fanout tcpdump}
td_rounds=${BENCH_TCPDUMP_ROUNDS:-3}
td_workloads=${BENCH_TCPDUMP_WORKLOADS:-udp64max udp64at86k udp64at10k udp1472at20k}
# The initramfs boot's sections, and whether the virtme-ng boot runs.
boot_sections= tcpdump=0
for s in $sections; do
	case $s in
	memcpy | host | lo | owner | multi | fanout) boot_sections="$boot_sections $s" ;;
	tcpdump) tcpdump=1 ;;
	*) die "BENCH_SECTIONS: unknown section '$s' (memcpy host lo owner multi fanout tcpdump)" ;;
	esac
done
boot_sections=${boot_sections# }
[ -n "$boot_sections" ] || [ "$tcpdump" = 1 ] || die "BENCH_SECTIONS: no section given"
[[ $fanout_rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_FANOUT_ROUNDS=$fanout_rounds: a number of rounds expected"
[[ $td_rounds =~ ^[1-9][0-9]*$ ]] || die "BENCH_TCPDUMP_ROUNDS=$td_rounds: a number of rounds expected"
for w in $td_workloads; do
	case $w in
	udp64max | udp64at86k | udp64at10k | udp1472at20k) ;;
	*) die "BENCH_TCPDUMP_WORKLOADS: unknown workload '$w' (udp64max udp64at86k udp64at10k udp1472at20k)" ;;
	esac
done
if [ "$tcpdump" = 1 ]; then
	tcpdump_bin=$(command -v tcpdump) || die "the tcpdump section needs the host's tcpdump: apt-get install tcpdump"
fi
insns=${BENCH_INSNS:-on}
stamp=$(date +%Y%m%d-%H%M%S)
results=$CACHE/bench/$stamp
build=$CACHE/bench/build
mkdir -p "$results" "$build"

# gnuplot draws the PNG; Debian's, installed here if missing.
if ! command -v gnuplot >/dev/null; then
	step "installing gnuplot-nox"
	apt-get install -y -q gnuplot-nox >"$LOGDIR/bench-apt.log" 2>&1 ||
		{ apt-get update -q >>"$LOGDIR/bench-apt.log" 2>&1 &&
			apt-get install -y -q gnuplot-nox >>"$LOGDIR/bench-apt.log" 2>&1; } ||
		die "could not install gnuplot-nox (see $LOGDIR/bench-apt.log)"
fi

if [ -n "${BENCH_KERNEL:-}" ]; then
	kernel=$BENCH_KERNEL sysmap=${BENCH_SYSTEM_MAP:-}
	module=${BENCH_MODULE:?BENCH_MODULE too} noowner=${BENCH_NOOWNER_MODULE:?BENCH_NOOWNER_MODULE too}
	step "using the given kernel $kernel and modules $module, $noowner"
elif [ -n "${BENCH_MODULE:-}" ]; then
	bash "$TOP/scripts/setup.sh"
	kdir=$(bash "$TOP/scripts/kernel.sh" base | tail -n1)
	kernel=$kdir/arch/x86/boot/bzImage sysmap=$kdir/System.map
	module=$BENCH_MODULE noowner=${BENCH_NOOWNER_MODULE:?BENCH_NOOWNER_MODULE too}
	step "using the modules $module, $noowner"
else
	bash "$TOP/scripts/setup.sh"
	kdir=$(bash "$TOP/scripts/kernel.sh" base | tail -n1)
	step "building rust_pktring.ko and its noowner build"
	make -C "$TOP" -s KDIR="$kdir" modules >"$LOGDIR/bench-module.log" 2>&1 ||
		die "module build failed (see $LOGDIR/bench-module.log)"
	make -C "$TOP" -s KDIR="$kdir" noowner >>"$LOGDIR/bench-module.log" 2>&1 ||
		die "noowner module build failed (see $LOGDIR/bench-module.log)"
	kernel=$kdir/arch/x86/boot/bzImage sysmap=$kdir/System.map
	module=$TOP/rust_pktring.ko noowner=$TOP/build/noowner/rust_pktring.ko
fi

step "building the guest programs and the QEMU plugin"
CFLAGS=(-O2 -g -Wall -Wextra -Wno-unused-parameter -std=gnu11)
gcc "${CFLAGS[@]}" -pthread -static -o "$build/pktbench" "$TOP/bench/pktbench.c"
gcc "${CFLAGS[@]}" -I"$TOP/selftests" -static -o "$build/tcp_sink" "$TOP/selftests/guest/tcp_sink.c"
gcc "${CFLAGS[@]}" -shared -fPIC -fvisibility=hidden -o "$build/tcgstat.so" "$TOP/bench/tcgstat.c"
if [ "$tcpdump" = 1 ]; then
	step "building the pktring CLI (make -C userspace guest)"
	make -C "$TOP/userspace" guest >"$LOGDIR/bench-cli.log" 2>&1 ||
		die "the pktring CLI build failed (see $LOGDIR/bench-cli.log)"
fi

adds=()
for spec in ${BENCH_AB_MODULES:-}; do
	name=${spec%%=*} file=${spec#*=}
	[[ $name =~ ^[A-Za-z0-9_]+$ ]] && [ -f "$file" ] ||
		die "BENCH_AB_MODULES: '$spec' is not NAME=FILE with an existing FILE and a NAME of [A-Za-z0-9_]"
	adds+=(--add "$file:/lib/modules/ab-$name.ko")
done
args="--seconds $secs --rounds $rounds --fanout-rounds $fanout_rounds --sections '$boot_sections'"
[ "${BENCH_QUICK:-0}" = 1 ] && args="$args --quick"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pktring-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

plugin() { # tcgstat output file
	local p="$build/tcgstat.so,out=$1,insns=$insns"
	[ -n "$sysmap" ] && [ -f "$sysmap" ] && p="$p,symbols=$sysmap"
	echo "$p"
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
report_args=()
if [ -n "$boot_sections" ]; then
	"$TOP/qemu/mkinitramfs.sh" "$tmp/initramfs.cpio.gz" \
		--add "$module:/lib/modules/rust_pktring.ko" \
		--add "$noowner:/lib/modules/rust_pktring_noowner.ko" \
		--add "$build/pktbench:/bin/pktbench" \
		--add "$build/tcp_sink:/bin/tcp_sink" \
		--add "$TOP/bench/guest.sh:/bin/bench-guest.sh" "${adds[@]}" \
		--run "sh /bin/bench-guest.sh $args"
	step "booting the guest (TCG, 4 vCPUs): $secs s per phase; console log: $results/console.log"
	start=$SECONDS
	"$TOP/qemu/boot.sh" --kernel "$kernel" --initramfs "$tmp/initramfs.cpio.gz" \
		--timeout "${BENCH_TIMEOUT:-2400}" --log "$results/console.log" --quiet \
		-- -plugin "$(plugin "$results/tcgstat.txt")" -name pktbench,debug-threads=on ||
		die "the guest run failed (console log: $results/console.log)"
	step "guest run took $((SECONDS - start)) s"
	report_args+=("$results/console.log" "$results/tcgstat.txt")
fi
if [ "$tcpdump" = 1 ]; then
	# The host's root is the guest's: the guest runs these files where they are.
	cmd="sh $TOP/bench/tcpdump.sh --pktbench $build/pktbench --pktring $TOP/userspace/target/guest/pktring"
	cmd="$cmd --module $module --tcpdump $tcpdump_bin --seconds $secs --rounds $td_rounds"
	cmd="$cmd --workloads \"$td_workloads\""
	step "booting a virtme-ng guest (TCG, 4 vCPUs) for tcpdump vs pktring capture; console log: $results/console-tcpdump.log"
	start=$SECONDS
	"$TOP/qemu/boot.sh" --kernel "$kernel" --vng "$cmd" \
		--timeout "${BENCH_TIMEOUT:-2400}" --log "$results/console-tcpdump.log" --quiet \
		-- -plugin "$(plugin "$results/tcgstat-tcpdump.txt")" -name pktbench,debug-threads=on ||
		die "the virtme-ng guest run failed (console log: $results/console-tcpdump.log)"
	step "virtme-ng guest run took $((SECONDS - start)) s"
	report_args+=(--tcpdump "$results/console-tcpdump.log" "$results/tcgstat-tcpdump.txt")
fi

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "host: $(nproc) CPUs, load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work on the machine shows here)"
	echo "kernel: $kernel"
	echo "modules: $module $noowner ${BENCH_AB_MODULES:-}"
	echo "git: $(git -C "$TOP" describe --always --dirty 2>/dev/null || echo unknown)"
} >"$results/env.txt"

/usr/bin/python3 "$TOP/bench/report.py" "${report_args[@]}" --env "$results/env.txt" "$results" \
	>"$results/report.out" || die "report.py failed"
(cd "$results" && gnuplot plot.gp) || echo "warning: gnuplot failed; no bench.png" >&2
ln -sfn "$stamp" "$CACHE/bench/latest"
cat "$results/report.out"
step "results: $results (results.md, bench.png, phases.tsv, console*.log, tcgstat*.txt)"
