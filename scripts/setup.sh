#!/usr/bin/env bash
# Install and verify the toolchain this project builds with. Idempotent: a
# machine that already has everything only pays for the checks.
#
# Prints one line per problem it cannot fix, saying what to install.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PACKAGES=(linux-source-6.12 rustc-web rust-web-src rust-web-clippy rustfmt-web
	clang-19 lld-19 llvm-19 libclang-19-dev qemu-system-x86 busybox-static
	flex bison bc libelf-dev libssl-dev cpio kmod iproute2 gcc make tcpdump tshark
	libpcap-dev)
BINDGEN_VERSION=0.72.1
VNG_VERSION=1.42

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	step "installing Debian packages: ${missing[*]}"
	[ "$(id -u)" = 0 ] || die "need root to install: apt-get install ${missing[*]}"
	log="$LOGDIR/apt.log"
	if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		die "apt-get install failed (see $log); install by hand: apt-get install ${missing[*]}"
	fi
fi

if [ "$(bindgen --version 2>/dev/null | awk '{print $2}')" != "$BINDGEN_VERSION" ]; then
	step "installing bindgen-cli $BINDGEN_VERSION with cargo"
	command -v cargo >/dev/null || die "cargo is missing: install rustup's stable toolchain to build bindgen-cli"
	cargo install --locked --force bindgen-cli --version "$BINDGEN_VERSION" \
		>"$LOGDIR/bindgen.log" 2>&1 ||
		die "cargo install bindgen-cli $BINDGEN_VERSION failed (see $LOGDIR/bindgen.log)"
fi

# virtme-ng for `make vng-test`, in a venv of its own in the cache.
venv="$CACHE/vng-venv"
if [ "$("$venv/bin/vng" --version 2>/dev/null)" != "virtme-ng $VNG_VERSION" ]; then
	step "installing virtme-ng $VNG_VERSION into $venv"
	rm -rf "$venv"
	{ python3 -m venv "$venv" && "$venv/bin/pip" install "virtme-ng==$VNG_VERSION"; } \
		>"$LOGDIR/vng.log" 2>&1 ||
		die "installing virtme-ng $VNG_VERSION failed (see $LOGDIR/vng.log); it needs python3 with venv and pip"
fi

# Versions the kernel build depends on: stop with one line naming what is off.
check_version() { # name, command, expected prefix
	local got
	got=$("${@:2:$#-2}" 2>/dev/null | head -n1) || true
	case "$got" in
	*"${*: -1}"*) ;;
	*) die "$1: expected ${*: -1}, found '${got:-nothing}'; install the Debian package listed in scripts/setup.sh" ;;
	esac
}
check_version rustc /usr/bin/rustc --version "rustc 1.96"
check_version clang clang-19 --version "version 19"
check_version ld.lld ld.lld-19 --version "LLD 19"
check_version bindgen bindgen --version "bindgen $BINDGEN_VERSION"
check_version qemu qemu-system-x86_64 --version "QEMU emulator"
[ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library/core" ] ||
	die "the Rust library source is missing: apt-get install rust-web-src"
[ -f "$KERNEL_TARBALL" ] || die "kernel source missing ($KERNEL_TARBALL): apt-get install linux-source-6.12"
[ -x /bin/busybox ] || die "busybox is missing: apt-get install busybox-static"
exit 0
