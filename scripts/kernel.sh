#!/usr/bin/env bash
# Build the guest kernel (flavour "base" or "debug") in the cache, outside the
# clone. The source tree is extracted once per Debian kernel version into a git
# repository and has kernel/patches/*.patch applied with git am; each flavour
# has its own O= build directory.
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
# The git repository of the kernel source (see below); the base flavour builds
# from its own work tree, the debug flavour from a second work tree, so that
# each has the series it was last built with and rebuilds incrementally.
repo="$CACHE/linux-$srcver"
case "$flavour" in
base) src=$repo ;;
*) src="$CACHE/linux-$srcver-$flavour" ;;
esac
out="$CACHE/build-$flavour"
log="$LOGDIR/kernel-$flavour.log"
# The series' patches, in order; 0000-cover-letter.patch is not one.
patches=()
for p in "$TOP"/kernel/patches/*.patch; do
	case "$(basename "$p")" in 0000-*) ;; *) [ -e "$p" ] && patches+=("$p") ;; esac
done

key=$({
	echo "$srcver"
	cat "${patches[@]}" /dev/null
	cat "${fragments[@]}"
	/usr/bin/rustc --version
	clang-19 --version | head -n1
	bindgen --version
} | sha256sum | cut -d' ' -f1)

# Locks: one per flavour, for its work tree and build directory, held for the
# whole run; and the repository's, held only while git changes it.
exec 8>"$CACHE/build-$flavour.lock"
flock 8

if [ -z "$clippy" ] && [ -f "$out/arch/x86/boot/bzImage" ] &&
	[ "$(cat "$out/.pktring-key" 2>/dev/null)" = "$key" ]; then
	step "kernel ($flavour) is up to date in $out"
	echo "$out"
	exit 0
fi

# The source is a git repository: the pristine Debian source is the commit
# tagged "pristine", and a flavour's branch build-FLAVOUR is that commit with
# the series applied by `git am`. A changed series resets the branch and
# applies it again; git rewrites only the files that differ, so make rebuilds
# only what the change touches. (`make series` checks the repository out once
# more, as the branch "series", for editing the series as commits.)
exec 9>"$CACHE/source.lock"
flock -x 9
if [ ! -d "$repo/.git" ]; then
	step "extracting $KERNEL_TARBALL into a git repository (once per kernel version)"
	rm -rf "$repo" "$repo.tmp" && mkdir -p "$repo.tmp"
	tar -C "$repo.tmp" --strip-components=1 -xf "$KERNEL_TARBALL"
	{
		git -C "$repo.tmp" init -q -b debian &&
			git -C "$repo.tmp" add -A -f . &&
			"${GIT[@]}" -C "$repo.tmp" commit -q -m "Debian linux-source-$KERNEL_VERSION $srcver" &&
			git -C "$repo.tmp" tag pristine
	} >>"$log" 2>&1 || die "could not make a git repository of the kernel source (see $log)"
	mv "$repo.tmp" "$repo"
fi
if [ "$src" != "$repo" ] && [ ! -e "$src/.git" ]; then
	step "adding the $flavour work tree $src"
	rm -rf "$src"
	git -C "$repo" worktree prune
	git -C "$repo" worktree add -q -f -B "build-$flavour" "$src" pristine >>"$log" 2>&1 ||
		die "could not add the work tree $src (see $log)"
fi
series_key=$(cat "${patches[@]}" /dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$out/.pktring-series" 2>/dev/null)" != "$series_key" ] ||
	[ "$(git -C "$src" symbolic-ref -q --short HEAD)" != "build-$flavour" ] ||
	! git -C "$src" diff --quiet HEAD; then
	step "applying the kernel/patches series to $src with git am"
	git -C "$src" am --abort >/dev/null 2>&1 || true
	git -C "$src" checkout -q -f -B "build-$flavour" pristine >>"$log" 2>&1 ||
		die "could not reset $src to the pristine source; remove it to start afresh"
	if [ ${#patches[@]} -gt 0 ] && ! "${GIT[@]}" -C "$src" am -q "${patches[@]}" >"$LOGDIR/patch.log" 2>&1; then
		git -C "$src" am --abort >/dev/null 2>&1 || true
		die "the series does not apply to Debian's $srcver with git am (see $LOGDIR/patch.log)"
	fi
	mkdir -p "$out"
	echo "$series_key" >"$out/.pktring-series"
fi
flock -u 9

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
