# Shared settings for the scripts; sourced, never run.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${PKTRING_CACHE:-$(. "$TOP/testnet.env" && echo "$PKTRING_CACHE_DEFAULT")}
KERNEL_VERSION=6.12
KERNEL_TARBALL=/usr/src/linux-source-$KERNEL_VERSION.tar.xz
LOGDIR=${PKTRING_LOGDIR:-$CACHE/logs}
mkdir -p "$CACHE" "$LOGDIR"

# Debian's rustc (with its library source) must win over rustup's; bindgen
# comes from cargo install.
export PATH="/usr/bin:$PATH:$HOME/.cargo/bin"
export RUSTC=/usr/bin/rustc
# LOCALVERSION= (set, and empty): the source tree is a git repository, and
# without it setlocalversion would append "+" to the kernel release.
KMAKE=(make LLVM=-19 LOCALVERSION= RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTFMT=/usr/bin/rustfmt
	CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN=bindgen)

# git for commits the scripts make themselves (the pristine source, git am).
GIT=(git -c user.name="rust_pktring build" -c user.email=build@rust-pktring.invalid)

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# What `make run` and `make shell` boot besides the kernel build $1: the
# module, the host's traffic generator and the static pktring CLI.
build_guest_programs() { # kernel build
	make -C "$TOP" -s KDIR="$1" modules >"$LOGDIR/module.log" 2>&1 ||
		die "module build failed (see $LOGDIR/module.log)"
	make -C "$TOP/selftests" -s pktgen >"$LOGDIR/selftests.log" 2>&1 ||
		die "building the traffic generator failed (see $LOGDIR/selftests.log)"
	make -C "$TOP/userspace" -s guest >"$LOGDIR/userspace.log" 2>&1 ||
		die "the pktring CLI did not build (see $LOGDIR/userspace.log)"
}
