#!/usr/bin/env bash
# Build the test guest's initramfs: busybox-static with its applet links,
# qemu/init as /init, qemu/guest/pktring-{traffic,export} in /bin, the test
# network's addresses (testnet.env) as /etc/pktring/testnet.env, the files
# given with --add, and /etc/pktring-run holding the command /init runs.
#
#	qemu/mkinitramfs.sh OUT.cpio.gz [--add SRC:DEST]... [--run 'shell command']
#
# --add SRC:DEST	copy SRC (a file or directory) to the absolute guest
#			path DEST; a DEST ending in / keeps SRC's name
# --run CMD		the command /init runs (sh -c semantics); without it the
#			guest reports rc 127
#
# The archive is deterministic (sorted names, fixed owners and times, gzip
# without a timestamp): the same inputs give the same bytes. Environment:
# BUSYBOX (default /bin/busybox), SOURCE_DATE_EPOCH (default 0).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUSYBOX=${BUSYBOX:-/bin/busybox}
EPOCH=${SOURCE_DATE_EPOCH:-0}

die() { printf 'mkinitramfs: error: %s\n' "$*" >&2; exit 1; }
usage() { die "usage: $0 OUT.cpio.gz [--add SRC:DEST]... [--run 'shell command']"; }

# Busybox runs as the guest's only userland, so it must not need a libc.
check_busybox() {
	[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: apt-get install busybox-static"
	if LC_ALL=C ldd "$BUSYBOX" >/dev/null 2>&1; then
		die "$BUSYBOX is dynamically linked: apt-get install busybox-static"
	fi
}

# bin/busybox plus one relative symlink per applet, where busybox says it
# belongs (bin, sbin, usr/bin, usr/sbin).
install_busybox() {
	local root=$1 applet dir up
	mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin"
	cp "$BUSYBOX" "$root/bin/busybox"
	chmod 0755 "$root/bin/busybox"
	while IFS= read -r applet; do
		[ "$applet" = bin/busybox ] && continue
		dir=${applet%/*}
		case "$dir" in
		bin | sbin) up=../bin/busybox ;;
		usr/bin | usr/sbin) up=../../bin/busybox ;;
		*) continue ;;
		esac
		[ -e "$root/$applet" ] || ln -s "$up" "$root/$applet"
	done < <("$BUSYBOX" --list-full)
}

# The skeleton /init expects; device nodes only when we may create them (the
# kernel's built-in initramfs provides /dev/console anyway).
install_skeleton() {
	local root=$1
	mkdir -p "$root"/{dev,proc,sys,tmp,etc,root,lib/modules,run}
	chmod 1777 "$root/tmp"
	if [ "$(id -u)" = 0 ]; then
		mknod -m 0600 "$root/dev/console" c 5 1
		mknod -m 0666 "$root/dev/null" c 1 3
	fi
	install -m 0755 "$HERE/init" "$root/init"
	install -m 0755 "$HERE/guest/pktring-traffic" "$HERE/guest/pktring-export" "$root/bin/"
	install -D -m 0644 "$HERE/../testnet.env" "$root/etc/pktring/testnet.env"
}

add_file() {
	local root=$1 spec=$2 src dest
	case "$spec" in
	*:*) src=${spec%:*} dest=${spec##*:} ;;
	*) die "--add $spec: expected SRC:DEST" ;;
	esac
	[ -e "$src" ] || die "--add $spec: $src does not exist"
	case "$dest" in
	/*) ;;
	*) die "--add $spec: DEST must be an absolute guest path" ;;
	esac
	case "$dest" in
	*/) dest=$dest$(basename "$src") ;;
	esac
	mkdir -p "$root$(dirname "$dest")"
	rm -rf "${root:?}$dest"
	cp -RL --preserve=mode "$src" "$root$dest"
}

write_run() {
	local root=$1 cmd=$2
	printf '#!/bin/sh\n%s\n' "$cmd" >"$root/etc/pktring-run"
	chmod 0755 "$root/etc/pktring-run"
}

# newc archive with stable order, owners, times and inode numbers.
pack() {
	local root=$1 out=$2
	find "$root" -exec touch -h -d "@$EPOCH" {} +
	(cd "$root" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$out"
}

# Global: the EXIT trap runs after main's locals are gone.
tmp=
partial=

main() {
	local out adds=() run= have_run=0
	[ $# -ge 1 ] || usage
	out=$1
	shift
	case "$out" in
	-*) usage ;;
	esac
	while [ $# -gt 0 ]; do
		case "$1" in
		--add) [ $# -ge 2 ] || die "--add needs SRC:DEST"; adds+=("$2"); shift 2 ;;
		--add=*) adds+=("${1#--add=}"); shift ;;
		--run) [ $# -ge 2 ] || die "--run needs a command"; run=$2 have_run=1; shift 2 ;;
		--run=*) run=${1#--run=} have_run=1; shift ;;
		*) die "unknown argument '$1'" ;;
		esac
	done
	check_busybox
	[ -f "$HERE/init" ] || die "$HERE/init is missing"

	umask 022
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/pktring-initramfs.XXXXXX")
	partial="$out.tmp.$$"
	trap 'rm -rf "$tmp" "$partial"' EXIT
	install_busybox "$tmp/root"
	install_skeleton "$tmp/root"
	for a in "${adds[@]}"; do
		add_file "$tmp/root" "$a"
	done
	if [ "$have_run" = 1 ]; then
		write_run "$tmp/root" "$run"
	fi
	mkdir -p "$(dirname "$out")"
	# Written beside OUT and renamed: a reader never sees half an archive.
	pack "$tmp/root" "$partial"
	mv -f "$partial" "$out"
}

main "$@"
