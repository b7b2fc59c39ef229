#!/usr/bin/env bash
# Build the guest kernel (flavour "base" or "debug") in the cache, outside the
# clone. The source tree is extracted once per Debian kernel version and has
# kernel/patches/*.patch applied; each flavour has its own O= build directory.
# A stamp holds the key (kernel version, patch series, config fragments,
# toolchain versions): an unchanged kernel is never rebuilt, a changed one is
# rebuilt incrementally by make.
#
# Prints the build directory on its last line.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# --clippy: rebuild the Rust code with clippy-driver and fail on any warning.
clippy=
[ "${2:-}" = --clippy ] && clippy=1
flavour=${1:-base}
case "$flavour" in
base) fragments=("$TOP/kernel/config/base.config") ;;
debug) fragments=("$TOP/kernel/config/base.config" "$TOP/kernel/config/debug.config") ;;
*) die "unknown kernel flavour '$flavour' (base or debug)" ;;
esac

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
src="$CACHE/linux-$srcver"
out="$CACHE/build-$flavour"
log="$LOGDIR/kernel-$flavour.log"
patches=("$TOP"/kernel/patches/*.patch)
[ -e "${patches[0]}" ] || patches=()

key=$({
	echo "$srcver"
	cat "${patches[@]}" /dev/null
	cat "${fragments[@]}"
	/usr/bin/rustc --version
	clang-19 --version | head -n1
	bindgen --version
} | sha256sum | cut -d' ' -f1)

# Locks: one per flavour for its build directory, then the source tree's,
# exclusive while patches are applied and shared while a flavour builds, so
# the two flavours build side by side and a check that finds a kernel up to
# date never waits for the other flavour's build.
exec 8>"$CACHE/build-$flavour.lock"
flock 8

if [ -z "$clippy" ] && [ -f "$out/arch/x86/boot/bzImage" ] &&
	[ "$(cat "$out/.pktring-key" 2>/dev/null)" = "$key" ]; then
	step "kernel ($flavour) is up to date in $out"
	echo "$out"
	exit 0
fi

exec 9>"$CACHE/source.lock"
flock -x 9

# Source tree with exactly our patch series applied. The series that is in the
# tree is kept beside it, so a change reverts it and applies the new one, and
# make only rebuilds what the difference touches.
applied="$src/.pktring-applied"
if [ ! -f "$src/Makefile" ]; then
	step "extracting $KERNEL_TARBALL (once per kernel version)"
	rm -rf "$src.tmp" && mkdir -p "$src.tmp"
	tar -C "$src.tmp" --strip-components=1 -xf "$KERNEL_TARBALL"
	mkdir -p "$src.tmp/.pktring-applied"
	mv "$src.tmp" "$src"
fi
if ! diff -rq "$applied" "$TOP/kernel/patches" --exclude='*.md' >/dev/null 2>&1; then
	step "applying the kernel/patches series"
	mapfile -t old < <(find "$applied" -name '*.patch' | sort -r)
	for p in "${old[@]}"; do
		patch -d "$src" -p1 -R -s -N <"$p" >>"$log" 2>&1 ||
			die "could not revert $(basename "$p") from $src; remove that directory to start afresh"
	done
	rm -f "$applied"/*.patch
	for p in "${patches[@]}"; do
		patch -d "$src" -p1 -s -N --dry-run <"$p" >"$LOGDIR/patch.log" 2>&1 ||
			die "$(basename "$p") does not apply to Debian's $srcver (see $LOGDIR/patch.log)"
		patch -d "$src" -p1 -s -N <"$p" >/dev/null
		cp "$p" "$applied/"
	done
fi

flock -s 9

# The toolchain must suit this kernel's Rust support; say so plainly if not.
mkdir -p "$out"
"${KMAKE[@]}" -C "$src" O="$out" rustavailable >"$log" 2>&1 ||
	die "'make rustavailable' fails: the Rust toolchain does not suit Linux $srcver (see $log; run scripts/setup.sh)"

step "configuring the $flavour kernel (tinyconfig + ${fragments[*]##*/})"
"${KMAKE[@]}" -C "$src" O="$out" tinyconfig >>"$log" 2>&1 || die "make tinyconfig failed (see $log)"
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}" >>"$log" 2>&1 ||
	die "merging config fragments failed (see $log)"
"${KMAKE[@]}" -C "$src" O="$out" olddefconfig >>"$log" 2>&1 || die "make olddefconfig failed (see $log)"
# Every option a fragment asks for must have survived olddefconfig.
for f in "${fragments[@]}"; do
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=n) grep -q "^${line%=n}=" "$out/.config" && die "$f: ${line%=n} is still set" ;;
		CONFIG_*) grep -qx "$line" "$out/.config" || die "$f: '$line' did not stick (a dependency is missing; see 'make menuconfig' in $out)" ;;
		esac
	done <"$f"
done
grep -q '^CONFIG_RUST=y' "$out/.config" ||
	die "CONFIG_RUST is off: run 'make LLVM=-19 rustavailable' in $src to see what the toolchain lacks"

step "building the $flavour kernel with $(nproc) jobs (log: $log)"
start=$SECONDS
"${KMAKE[@]}" -C "$src" O="$out" ${clippy:+CLIPPY=1} -j"$(nproc)" bzImage modules >>"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 30
	kill -0 "$pid" 2>/dev/null || break
	printf '    %3dm%02ds  %6d lines of log, last: %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) \
		"$(wc -l <"$log")" "$(grep -E '^\s+(CC|RUSTC|LD|AR|BINDGEN)' "$log" | tail -n1 | sed 's/^ *//')"
done
if ! wait "$pid"; then
	grep -E 'error(\[|:)' "$log" | head -n 5 >&2 || true
	die "kernel build failed (full log: $log)"
fi
echo "$key" >"$out/.pktring-key"
if [ -n "$clippy" ] && grep -q '^warning' "$log"; then
	grep -E '^warning' -A6 "$log" >&2
	die "clippy found warnings in the kernel crate (log: $log)"
fi
step "kernel ($flavour) built in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s: $out/arch/x86/boot/bzImage"
echo "$out"
