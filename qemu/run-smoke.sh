#!/usr/bin/env bash
# Foundation smoke test: build an initramfs with the module and
# selftests/guest/smoke.sh, boot it with qemu/boot.sh, exit with the result.
#
#	qemu/run-smoke.sh KERNEL_BUILD_DIR [MODULE_KO]
#
# Without MODULE_KO (or with "--no-module") the module tests are skipped.
# Environment: PKTRING_LOGDIR (logs; default ~/.cache/rust-pktring/logs),
# PKTRING_BOOT_TIMEOUT (seconds, default 300), PKTRING_SMP (default 4).
# The console log is $PKTRING_LOGDIR/smoke-<time>-<pid>.log, with
# smoke-latest.log pointing at the newest (concurrent runs never share one).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
LOGDIR=${PKTRING_LOGDIR:-${PKTRING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust-pktring}/logs}

die() { printf 'run-smoke: error: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 KERNEL_BUILD_DIR [MODULE_KO|--no-module]"
kdir=$1
module=${2:---no-module}
smp=${PKTRING_SMP:-4}
bzimage=$kdir/arch/x86/boot/bzImage
[ -f "$bzimage" ] || die "$bzimage not found: build the kernel first (scripts/kernel.sh base)"

adds=(--add "$TOP/selftests/guest/smoke.sh:/bin/smoke.sh")
if [ "$module" = --no-module ]; then
	run="smoke.sh --no-module --cpus $smp"
else
	[ -f "$module" ] || die "module $module not found (make it first)"
	adds+=(--add "$module:/lib/modules/rust_pktring.ko")
	run="smoke.sh --module /lib/modules/rust_pktring.ko --cpus $smp"
fi

mkdir -p "$LOGDIR"
log=$LOGDIR/smoke-$(date +%Y%m%d-%H%M%S)-$$.log
ln -sfn "$(basename "$log")" "$LOGDIR/smoke-latest.log"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pktring-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$HERE/mkinitramfs.sh" "$tmp/initramfs.cpio.gz" "${adds[@]}" --run "$run"
"$HERE/boot.sh" --kernel "$bzimage" --initramfs "$tmp/initramfs.cpio.gz" --smp "$smp" \
	--timeout "${PKTRING_BOOT_TIMEOUT:-300}" --log "$log"
