#!/usr/bin/env bash
# The patch series as a git branch, for editing it as commits.
#
#	scripts/series.sh import	(make series)
#	scripts/series.sh export	(make series-export)
#
# kernel/patches/ is the source of truth, in `git format-patch` form:
# 0000-cover-letter.patch, then one patch per commit. `import` checks the
# kernel source out in $CACHE/series (a work tree of the cached kernel
# repository) on the branch "series": the pristine Debian source with the
# series applied by `git am`, and the cover letter as the branch
# description. `export` writes the branch back with `git format-patch
# --cover-letter`, so a change made as commits becomes the new
# kernel/patches/.
#
# `import` refuses to replace a work tree with uncommitted changes or with
# commits that are not exported yet; FORCE=1 replaces it anyway.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
repo="$CACHE/linux-$srcver"
wt="$CACHE/series"
patchdir="$TOP/kernel/patches"
cover="$patchdir/0000-cover-letter.patch"

# The branch as format-patch writes it, into directory $1.
format() {
	git -C "$wt" -c core.abbrev=12 format-patch -q --zero-commit --cover-letter \
		--cover-from-description=subject -o "$1" pristine..series
}

# The series' patches, without the cover letter.
patches() {
	local p
	for p in "$patchdir"/*.patch; do
		case "$(basename "$p")" in 0000-*) ;; *) [ -e "$p" ] && echo "$p" ;; esac
	done
}

case "${1:-}" in
import)
	[ -d "$repo/.git" ] || bash "$TOP/scripts/kernel.sh" base >/dev/null
	if [ -e "$wt/.git" ] && [ "${FORCE:-}" != 1 ]; then
		[ -z "$(git -C "$wt" status --porcelain)" ] ||
			die "$wt has uncommitted changes: commit and 'make series-export' them, or FORCE=1"
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		format "$tmp"
		diff -q -r -x 0000-cover-letter.patch "$tmp" "$patchdir" >/dev/null ||
			die "the branch in $wt differs from kernel/patches: 'make series-export' it first, or FORCE=1"
	fi
	step "checking the series out in $wt (branch series)"
	exec 9>"$CACHE/source.lock"
	flock -x 9
	if [ ! -e "$wt/.git" ]; then
		rm -rf "$wt"
		git -C "$repo" worktree prune
		git -C "$repo" worktree add -q -f -B series "$wt" pristine
	fi
	git -C "$wt" am --abort >/dev/null 2>&1 || true
	git -C "$wt" checkout -q -f -B series pristine
	mapfile -t list < <(patches)
	[ ${#list[@]} -eq 0 ] || git -C "$wt" am -q "${list[@]}" ||
		die "the series does not apply with git am (the work tree is left in the middle of it)"
	if [ -f "$cover" ]; then
		# Subject, then the body up to the shortlog that format-patch adds.
		desc=$(awk '
			/^Subject: / { sub(/^Subject: \[PATCH [0-9]+\/[0-9]+\] /, ""); subj = $0; insubj = 1; next }
			insubj && /^ / { sub(/^ /, ""); subj = subj " " $0; next }
			insubj { insubj = 0; print subj; print ""; next }
			subj != "" && /^[^ ].* \([0-9]+\):$/ { exit }
			subj != "" { print }
		' "$cover" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}')
		git -C "$wt" config branch.series.description "$desc"
	fi
	step "$(git -C "$wt" rev-list --count pristine..series) commits on branch series in $wt"
	;;
export)
	[ -e "$wt/.git" ] || die "no series work tree: 'make series' first"
	[ -z "$(git -C "$wt" status --porcelain)" ] ||
		die "$wt has uncommitted changes: commit them first"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	format "$tmp"
	# The cover letter's date is the newest patch's, not the time of the export, so that
	# exporting an unchanged branch changes nothing.
	last=$(ls "$tmp"/*.patch | tail -n1)
	date=$(sed -n 's/^Date: //p;/^$/q' "$last")
	sed -i "0,/^Date: .*/s//Date: $date/" "$tmp"/0000-cover-letter.patch
	rm -f "$patchdir"/*.patch
	cp "$tmp"/*.patch "$patchdir/"
	step "exported $(($(ls "$tmp" | wc -l) - 1)) patches and the cover letter to kernel/patches"
	git -C "$TOP" status --short -- kernel/patches
	;;
*)
	die "usage: scripts/series.sh import|export"
	;;
esac
