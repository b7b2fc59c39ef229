#!/usr/bin/env bash
# Boot the test guest under QEMU with a multiqueue virtio-net NIC whose host
# end is a tap in a network namespace of its own, run the initramfs's
# command, and exit with its status.
#
#	qemu/boot.sh --kernel BZIMAGE (--initramfs CPIO | --vng 'command' | --shell)
#		[--log FILE] [--timeout SECONDS] [--smp N] [--mem SIZE]
#		[--append 'cmdline'] [--accel tcg|kvm] [--outdir DIR] [--quiet]
#		[--silence SECONDS] [-- extra qemu args]
#
# --vng boots the kernel with virtme-ng instead (`vng --run BZIMAGE
# --force-9p`, from the venv scripts/setup.sh makes): the guest's root is the
# host's, read-only with overlays, and qemu/guest/vng-run.sh runs the command
# there with the same network, control channel and exit line.
#
# --shell (`make shell`) boots the same virtme-ng guest with the module loaded
# and an interactive shell on this terminal (qemu/guest/vng-shell.sh as the
# user shell), the control channel served for pktring-traffic; no log, no
# timeout; the guest powers off when the shell exits. Its stdin may also be a
# pipe of commands.
#
# Network (addresses, prefixes and the guest's MAC from testnet.env): a fresh
# namespace pktring-<pid>-<random> holds tap0 (multi_queue, one queue per
# vCPU) with the host's IPv4 and IPv6 addresses; the guest's /init puts the
# guest's on its NIC. The namespace exists only for this run, so nothing the
# tests send can leave it.
#
# Control channel: the guest's second serial port (ttyS1) is a pipe chardev
# served by this script. `pktring-traffic ARGS...` in the guest asks for
# `selftests/pktgen ARGS...` to run in the namespace; requests run one at a
# time and their output and exit status go back to the guest (protocol in
# qemu/guest/pktring-traffic). pktgen is built on demand. With --outdir,
# `pktring-export FILE` in the guest copies FILE into DIR (protocol in
# qemu/guest/pktring-export); without it, such requests are refused.
#
# Console: ttyS0, written to the log (default
# ${PKTRING_LOGDIR:-<cache>/logs}/boot-<time>-<pid>.log, the cache being
# $PKTRING_CACHE or testnet.env's PKTRING_CACHE_DEFAULT) and
# streamed to stdout unless --quiet. Host-side lines are prefixed "[host]".
#
# --silence S ends the run as a timeout once user space has printed no line
# for S seconds (the kernel's own "[  12.3]" lines do not count): a guest
# that stalls, or a test that hangs, costs S seconds rather than all of
# --timeout. Off by default (long benchmarks print seldom).
#
# Exit status: the guest's rc from its "@@PKTRING-EXIT <rc>@@" line;
# otherwise 123 the guest never reached user space (no "pktring-init:" or
# "vng-run:" line within $PKTRING_BOOT_TIMEOUT seconds, default 300: no
# test ran, so the caller may boot again), 124 timeout, 125 kernel panic,
# 126 no exit line (QEMU died or failed to start). Each case prints one
# "boot.sh: error: ..." line.
#
# Accelerator: TCG (multi-threaded) by default because a nested KVM guest
# hangs on this project's CI machine; --accel kvm (or PKTRING_ACCEL=kvm)
# uses KVM where it works.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
. "$TOP/testnet.env"
CACHE=${PKTRING_CACHE:-$PKTRING_CACHE_DEFAULT}
LOGDIR=${PKTRING_LOGDIR:-$CACHE/logs}

GUEST_MAC=$PKTRING_GUEST_MAC
HOST_IP4=$PKTRING_HOST_IP4
GUEST_IP4=$PKTRING_GUEST_IP4
HOST_IP6=$PKTRING_HOST_IP6
GUEST_IP6=$PKTRING_GUEST_IP6
REQUEST_TIMEOUT=300	# one pktgen run, host side

boot_timeout=${PKTRING_BOOT_TIMEOUT:-300}
kernel= initrd= vng_cmd= shell=0 log= timeout=300 silence=0 smp=4 mem=2G append= accel=${PKTRING_ACCEL:-tcg} quiet=0 outdir=
extra=()
# Set as things are created, so cleanup undoes exactly those.
ns= tmp= qemu_pid= tee_pid= ctl_pid=

msg() { printf 'boot.sh: %s\n' "$*" >&2; }
die() { printf 'boot.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
	die "usage: $0 --kernel BZIMAGE (--initramfs CPIO | --vng CMD | --shell) [--log FILE] [--timeout S] [--smp N] [--mem SIZE] [--append CMDLINE] [--accel tcg|kvm] [--outdir DIR] [--quiet] [--silence S] [-- qemu args]"
}

parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--kernel) kernel=${2-}; shift 2 || usage ;;
		--initramfs | --initrd) initrd=${2-}; shift 2 || usage ;;
		--vng) vng_cmd=${2-}; shift 2 || usage ;;
		--shell) shell=1; shift ;;
		--log) log=${2-}; shift 2 || usage ;;
		--timeout) timeout=${2-}; shift 2 || usage ;;
		--smp) smp=${2-}; shift 2 || usage ;;
		--mem) mem=${2-}; shift 2 || usage ;;
		--append) append="$append ${2-}"; shift 2 || usage ;;
		--accel) accel=${2-}; shift 2 || usage ;;
		--outdir) outdir=${2-}; shift 2 || usage ;;
		--quiet) quiet=1; shift ;;
		--silence) silence=${2-}; shift 2 || usage ;;
		--) shift; extra=("$@"); break ;;
		*) die "unknown argument '$1' (see the top of $0)" ;;
		esac
	done
	[ -n "$kernel" ] && [ $(( ${initrd:+1} + ${vng_cmd:+1} + shell )) = 1 ] || usage
	[ -f "$kernel" ] || die "kernel image $kernel not found"
	[ -z "$initrd" ] || [ -f "$initrd" ] || die "initramfs $initrd not found"
	VNG=${PKTRING_VNG:-$CACHE/vng-venv/bin/vng}
	if [ -n "$vng_cmd" ] || [ "$shell" = 1 ]; then
		[ -x "$VNG" ] || die "--vng, --shell: $VNG not found (scripts/setup.sh installs virtme-ng)"
		[[ $vng_cmd != *"'"* ]] || die "--vng: the command may not contain single quotes"
	fi
	[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout $timeout: seconds expected"
	[[ $silence =~ ^[0-9]+$ ]] || die "--silence $silence: seconds expected (0: off)"
	[[ $smp =~ ^[1-9][0-9]*$ ]] || die "--smp $smp: a CPU count expected"
	case "$accel" in
	tcg | kvm) ;;
	*) die "--accel $accel: tcg or kvm" ;;
	esac
	if [ -n "$outdir" ]; then
		mkdir -p "$outdir" && outdir=$(cd "$outdir" && pwd) || die "--outdir $outdir: cannot create it"
	fi
	[ "$(id -u)" = 0 ] || die "needs root (network namespace and tap device)"
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: apt-get install qemu-system-x86"
	if [ -z "$log" ]; then
		mkdir -p "$LOGDIR"
		log="$LOGDIR/boot-$(date +%Y%m%d-%H%M%S)-$$.log"
	fi
	mkdir -p "$(dirname "$log")"
}

# Signals a process and its descendants, children first: under --vng the
# process started is vng, and QEMU is its child, which vng does not stop.
kill_tree() { # pid
	local child
	for child in $(pgrep -P "$1" 2>/dev/null); do
		kill_tree "$child"
	done
	kill "$1" 2>/dev/null
}

cleanup() {
	local rc=$? child
	trap - EXIT INT TERM
	# Best effort from here on: whatever already ended must not stop it.
	set +e
	[ -n "$qemu_pid" ] && kill_tree "$qemu_pid"
	if [ -n "$ctl_pid" ]; then
		kill "$ctl_pid" 2>/dev/null
		# A pktgen run the server was waiting for.
		child=$(cat "$tmp/ctl.child" 2>/dev/null) && kill "$child" 2>/dev/null
	fi
	[ -n "$tee_pid" ] && kill "$tee_pid" 2>/dev/null
	wait 2>/dev/null
	[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
	[ -n "$tmp" ] && rm -rf "$tmp"
	exit "$rc"
}

# pktgen runs on the host; build it (quietly, once at a time) if needed.
ensure_pktgen() {
	PKTGEN=${PKTRING_PKTGEN:-$TOP/selftests/pktgen}
	[ -n "${PKTRING_PKTGEN:-}" ] && { [ -x "$PKTGEN" ] || die "PKTRING_PKTGEN=$PKTGEN is not executable"; return; }
	if ! flock "$TOP/selftests/Makefile" make -s -C "$TOP/selftests" pktgen >"$tmp/make.log" 2>&1; then
		cat "$tmp/make.log" >&2
		die "building selftests/pktgen failed"
	fi
}

# A namespace only this run uses, with the tap QEMU attaches its queues to.
setup_netns() {
	local i
	for i in 1 2 3 4 5; do
		ns=pktring-$$-$RANDOM
		ip netns add "$ns" 2>/dev/null && break
		ns=
	done
	[ -n "$ns" ] || die "could not create a network namespace (ip netns add)"
	ip -n "$ns" link set lo up
	ip -n "$ns" tuntap add dev tap0 mode tap multi_queue ||
		die "could not create a multi_queue tap in $ns (is the tun module there?)"
	# The tap drops what a slow TCG guest does not take in time; a long
	# queue (the tun ring is sized from it) lets bursts wait instead.
	ip -n "$ns" link set tap0 txqueuelen 10000
	ip -n "$ns" addr add "$HOST_IP4/$PKTRING_IP4_PREFIX" dev tap0
	ip -n "$ns" addr add "$HOST_IP6/$PKTRING_IP6_PREFIX" dev tap0 nodad
	ip -n "$ns" link set tap0 up
	# Known neighbours: the first packets of a burst would otherwise wait
	# (and be dropped) for ARP/ND while the guest is busy.
	ip -n "$ns" neigh replace "$GUEST_IP4" lladdr "$GUEST_MAC" dev tap0 nud permanent
	ip -n "$ns" neigh replace "$GUEST_IP6" lladdr "$GUEST_MAC" dev tap0 nud permanent
}

# Host messages go to stdout and into the console log.
note() {
	printf '[host] %s\n' "$*" >>"$log"
	[ "$quiet" = 1 ] || printf '[host] %s\n' "$*" 2>/dev/null || true
}

answer() { # id rc [output lines...]
	local id=$1 rc=$2 l
	shift 2
	for l in "$@"; do
		printf '@@OUT %s %s\n' "$id" "$l" >&4
	done
	printf '@@RES %s %s\n' "$id" "$rc" >&4
}

# One request: "<id> <pktgen args...>". Arguments are passed as argv, never
# through a shell, and pktgen itself refuses destinations outside the test
# networks.
handle_request() {
	local id rest args=() a rc=0 lines=()
	read -r id rest <<<"$1"
	[[ $id =~ ^[0-9.]+$ ]] || { note "ignoring malformed request: $1"; return 0; }
	read -ra args <<<"$rest"
	for a in "${args[@]}"; do
		if ! [[ $a =~ ^[A-Za-z0-9._:/,=+-]+$ ]]; then
			answer "$id" 2 "pktring-traffic: bad argument '$a'"
			return 0
		fi
	done
	case "${args[0]-}" in
	udp | tcp) ;;
	*) answer "$id" 2 "pktring-traffic: first argument must be udp or tcp"; return 0 ;;
	esac
	note "pktgen ${args[*]}"
	ip netns exec "$ns" timeout -k 5 "$REQUEST_TIMEOUT" "$PKTGEN" "${args[@]}" >"$tmp/pktgen.out" 2>&1 &
	echo $! >"$tmp/ctl.child"
	wait $! || rc=$?
	rm -f "$tmp/ctl.child"
	[ "$rc" = 124 ] && echo "pktgen: killed after ${REQUEST_TIMEOUT}s" >>"$tmp/pktgen.out"
	# All output goes to the log; the guest gets the last lines (and
	# prints them, so the console does not show them twice).
	sed 's/^/[host] /' "$tmp/pktgen.out" >>"$log"
	mapfile -t lines < <(tail -n 20 "$tmp/pktgen.out" | tr -cd '\11\12\40-\176')
	note "pktgen exit status $rc"
	answer "$id" "$rc" "${lines[@]}"
}

# A file from the guest (pktring-export): "@@PUT <id> <name> <bytes>", its
# base64 lines, "@@END <id> <sha256>". The name was checked by the guest and
# is checked again here; the file appears in $outdir only once complete.
put_id= put_name= put_size=
receive_line() { # the line without its "@@XXX " prefix, the message type
	local id rest sum
	read -r id rest <<<"$1"
	case "$2" in
	PUT)
		put_id=$id
		read -r put_name put_size <<<"$rest"
		: >"$tmp/put.b64"
		;;
	DAT) [ "$id" = "$put_id" ] && printf '%s\n' "$rest" >>"$tmp/put.b64" ;;
	END)
		[ "$id" = "$put_id" ] || { note "ignoring the end of an unknown transfer $id"; return 0; }
		put_id=
		if [ -z "$outdir" ]; then
			answer "$id" 1 "boot.sh was started without --outdir: nowhere to put $put_name"
		elif ! [[ $put_name =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]*$ ]]; then
			answer "$id" 1 "bad file name '$put_name'"
		elif ! base64 -d <"$tmp/put.b64" >"$tmp/put.bin" 2>/dev/null ||
			[ "$(sha256sum <"$tmp/put.bin" | cut -d' ' -f1)" != "$rest" ]; then
			answer "$id" 1 "$put_name arrived damaged (base64 or SHA-256 mismatch)"
		else
			mv "$tmp/put.bin" "$outdir/$put_name"
			note "received $put_name ($put_size bytes) into $outdir"
			answer "$id" 0
		fi
		;;
	esac
}

# Runs in the background for the whole boot. Opening the FIFOs blocks until
# QEMU has them open; QEMU's exit ends the loop with EOF.
serve_ctl() {
	local line
	# A closed stdout (boot.sh | head) must not end the server.
	trap '' PIPE
	exec 3<"$tmp/ctl.out" 4>"$tmp/ctl.in"
	while IFS= read -r line <&3; do
		line=${line%$'\r'}
		case "$line" in
		*"@@REQ "*) handle_request "${line#*@@REQ }" ;;
		*"@@PUT "*) receive_line "${line#*@@PUT }" PUT ;;
		*"@@DAT "*) receive_line "${line#*@@DAT }" DAT ;;
		*"@@END "*) receive_line "${line#*@@END }" END ;;
		esac
	done
}

qemu_args() {
	local queues=$smp
	local netdev="tap,id=n0,ifname=tap0,queues=$queues,script=no,downscript=no,vhost=off"
	local nic="virtio-net-pci,netdev=n0,mq=on,vectors=$((2 * queues + 2)),mac=$GUEST_MAC"
	if [ -n "$vng_cmd" ] || [ "$shell" = 1 ]; then
		# vng's own console is the first serial port, so the control
		# channel is still ttyS1; --verbose puts the kernel log on it.
		# vng runs the venv's other commands (virtme-run) from PATH.
		QARGS=(env PATH="$(dirname "$VNG"):$PATH" "$VNG" --run "$kernel" --force-9p --no-dhcp --cpus "$smp" --memory "$mem"
			--qemu-opts="-netdev $netdev -device $nic -chardev pipe,id=ctl,path=$tmp/ctl -serial chardev:ctl ${extra[*]}")
		if [ "$shell" = 1 ]; then
			QARGS+=(--shell "$HERE/guest/vng-shell.sh")
		else
			QARGS+=(--verbose --exec "$HERE/guest/vng-run.sh '$vng_cmd'")
		fi
		# Without root=, 6.12 mounts the 9p root with an empty device name
		# instead of vng's mount tag.
		QARGS+=(--append "root=/dev/root$append")
		[ "$accel" = kvm ] || QARGS+=(--disable-kvm)
		return
	fi
	QARGS=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot
		-smp "$smp" -m "$mem"
		-kernel "$kernel" -initrd "$initrd"
		-append "console=ttyS0 panic=-1${append}"
		-chardev "pipe,id=con,path=$tmp/con" -serial chardev:con
		-chardev "pipe,id=ctl,path=$tmp/ctl" -serial chardev:ctl
		-netdev "$netdev" -device "$nic")
	if [ "$accel" = kvm ]; then
		[ -w /dev/kvm ] || die "--accel kvm: /dev/kvm is not usable"
		QARGS+=(-accel kvm -cpu host)
	else
		QARGS+=(-accel tcg,thread=multi -cpu max)
	fi
	QARGS+=("${extra[@]}")
}

start_qemu() {
	mkfifo "$tmp/con.in" "$tmp/con.out" "$tmp/ctl.in" "$tmp/ctl.out"
	: >"$log"
	if [ "$quiet" = 1 ]; then
		cat <"$tmp/con.out" >>"$log" &
	else
		tee -p -a "$log" <"$tmp/con.out" &
	fi
	tee_pid=$!
	serve_ctl &
	ctl_pid=$!
	qemu_args
	if [ -n "$vng_cmd" ]; then
		# vng prints the guest's output (and console) on its stdout.
		ip netns exec "$ns" "${QARGS[@]}" </dev/null >"$tmp/con.out" 2>&1 &
	else
		ip netns exec "$ns" "${QARGS[@]}" </dev/null >"$tmp/qemu.err" 2>&1 &
	fi
	qemu_pid=$!
}

# Wait for QEMU to end, the timeout, or a guest that reported its exit but
# does not power off.
wait_qemu() {
	local start=$SECONDS seen= up= lines=0 n said=$SECONDS checked=$SECONDS
	TIMED_OUT=0 NO_USERSPACE=0 SILENT=0
	while kill -0 "$qemu_pid" 2>/dev/null; do
		if ((SECONDS - start >= timeout)); then
			TIMED_OUT=1
			break
		fi
		if [ -z "$up" ]; then
			if grep -aqE '(pktring-init|vng-run): ' "$log"; then
				up=$SECONDS said=$SECONDS
			elif ((SECONDS - start >= boot_timeout)); then
				NO_USERSPACE=1
				break
			fi
		elif ((silence > 0 && SECONDS - checked >= 5)); then
			# Every 5 s: has the number of lines that are not the
			# kernel's grown?
			checked=$SECONDS
			n=$(grep -acvE '^\[ *[0-9]+\.[0-9]+\]' "$log" || true)
			if ((n != lines)); then
				lines=$n said=$SECONDS
			elif ((SECONDS - said >= silence)); then
				SILENT=1
				break
			fi
		fi
		if [ -z "$seen" ] && grep -aq '@@PKTRING-EXIT [0-9]*@@' "$log"; then
			seen=$SECONDS
		elif [ -n "$seen" ] && ((SECONDS - seen > 15)); then
			msg "the guest reported its exit but did not power off; stopping QEMU"
			break
		fi
		sleep 0.25
	done
	kill_tree "$qemu_pid" || true
	QEMU_RC=0
	wait "$qemu_pid" || QEMU_RC=$?
	qemu_pid=
	# With QEMU gone the console FIFO reaches EOF and the log is complete.
	# A brief writer of our own frees a reader still blocked in open()
	# because QEMU died before opening its end.
	local fd
	exec {fd}<>"$tmp/con.out"
	exec {fd}>&-
	wait "$tee_pid" || true
	tee_pid=
	ELAPSED=$((SECONDS - start))
}

result() {
	local line panic
	line=$(grep -ao '@@PKTRING-EXIT [0-9]*@@' "$log" | tail -n 1) || true
	if [ -n "$line" ]; then
		line=${line#@@PKTRING-EXIT }
		line=${line%@@}
		msg "guest exited with rc $line after ${ELAPSED}s (log: $log)"
		return "$line"
	fi
	panic=$(grep -a -m1 'Kernel panic - not syncing' "$log" | sed 's/^\[[^]]*\] //') || true
	if [ "$NO_USERSPACE" = 1 ]; then
		msg "error: the guest did not reach user space within ${boot_timeout}s (log: $log)"
		return 123
	elif [ "$SILENT" = 1 ]; then
		msg "error: timeout: user space printed nothing for ${silence}s; stopped after ${ELAPSED}s (log: $log)"
		return 124
	elif [ "$TIMED_OUT" = 1 ]; then
		msg "error: timeout: no @@PKTRING-EXIT line within ${timeout}s (log: $log)"
		return 124
	elif [ -n "$panic" ]; then
		msg "error: kernel panic: $panic (log: $log)"
		return 125
	fi
	if [ -s "$tmp/qemu.err" ]; then
		sed 's/^/qemu: /' "$tmp/qemu.err" >&2
	fi
	msg "error: no @@PKTRING-EXIT line: QEMU exited with status $QEMU_RC after ${ELAPSED}s (log: $log)"
	return 126
}

main() {
	parse_args "$@"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/pktring-boot.XXXXXX")
	ensure_pktgen
	setup_netns
	if [ "$shell" = 1 ]; then
		msg "namespace $ns, $accel, $smp CPUs, $mem: booting an interactive guest"
		mkfifo "$tmp/ctl.in" "$tmp/ctl.out"
		serve_ctl &
		ctl_pid=$!
		qemu_args
		local rc=0
		ip netns exec "$ns" "${QARGS[@]}" || rc=$?
		exit "$rc"
	fi
	msg "namespace $ns, $accel, $smp CPUs, $mem; console log: $log"
	start_qemu
	wait_qemu
	local rc=0
	result || rc=$?
	exit "$rc"
}

main "$@"
