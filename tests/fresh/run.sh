#!/usr/bin/env bash
# The README's two commands on a brand-new Debian 12 machine, proved on a pristine root:
#
#   tests/fresh/run.sh [--demo-only] [--keep]       (as root; `make fresh-check` runs it)
#
# Builds a Debian 12 root with Debian's mmdebstrap (only ca-certificates, git and make in it),
# clones the committed tree (HEAD of this checkout) inside, and in a chroot (with /proc, /sys and
# /dev bound in) runs, printing each command's exit status and time:
#   1. `make demo` as a normal user: must exit 2 before any build output, with one line naming the
#      exact `sudo apt-get install` command;
#   2. `make demo` as root: installs the Debian packages, builds, runs the whole pipeline;
#   3. `make demo` again: must run no stage;
#   4. `make test` as root (skipped with --demo-only).
# The root is removed at the end (--keep leaves it, and says where). Exit 0 only when all passed.
# Needs the network to Debian's mirror (packages) and about 3 GB in $FRESH_TMPDIR (/var/tmp).
set -euo pipefail

demo_only=0
keep=0
for a in "$@"; do
	case $a in
	--demo-only) demo_only=1 ;;
	--keep) keep=1 ;;
	-h | --help)
		sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "fresh-check: unknown option $a (try --help)" >&2
		exit 2
		;;
	esac
done

if [ "$(id -u)" != 0 ]; then
	echo "fresh-check: needs root (mmdebstrap and chroot)" >&2
	exit 2
fi
for t in mmdebstrap git chroot mount; do
	command -v "$t" >/dev/null || {
		echo "fresh-check: $t not found (as root: apt-get install -y mmdebstrap git)" >&2
		exit 1
	}
done

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse HEAD)
root=$(mktemp -d "${FRESH_TMPDIR:-/var/tmp}/biopipe-fresh.XXXXXX")
mounted=()

cleanup() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -l "${mounted[i]}" 2>/dev/null || true
	done
	if [ "$keep" = 1 ]; then
		echo "fresh-check: root kept in $root"
	else
		rm -rf --one-file-system "$root"
	fi
}
trap cleanup EXIT

bind() { # bind SRC DEST [ro]
	mkdir -p "$2"
	mount --bind "$1" "$2"
	mounted+=("$2")
	if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

fails=0
# step NAME EXPECTED-STATUS COMMAND...: runs it, prints its status and time, counts a mismatch.
step() {
	local name=$1 want=$2 t0 rc
	shift 2
	echo "== fresh-check: $name"
	t0=$(date +%s)
	set +e
	"$@"
	rc=$?
	set -e
	local dt=$(($(date +%s) - t0))
	if [ "$rc" = "$want" ]; then
		printf 'fresh-check: %-28s status %s (expected %s)  %dm%02ds  ok\n' "$name" "$rc" "$want" $((dt / 60)) $((dt % 60))
	else
		printf 'fresh-check: %-28s status %s (expected %s)  %dm%02ds  FAILED\n' "$name" "$rc" "$want" $((dt / 60)) $((dt % 60))
		fails=$((fails + 1))
	fi
	return 0
}

mirror=http://deb.debian.org/debian
step "mmdebstrap bookworm" 0 mmdebstrap --quiet --variant=apt \
	--include=ca-certificates,git,make bookworm "$root" \
	"deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
	"deb http://deb.debian.org/debian-security bookworm-security main"
[ "$fails" = 0 ] || exit 1

cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
bind /proc "$root/proc"
bind /sys "$root/sys"
bind /dev "$root/dev"
[ -d /dev/pts ] && bind /dev/pts "$root/dev/pts"
bind "$repo" "$root/src" ro

in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	LANG=C.UTF-8 "$@"; }

step "git clone (as root)" 0 in_root sh -c "git config --global --add safe.directory '*' &&
	git clone -q /src /root/biopipe && git -C /root/biopipe checkout -q $commit"
[ "$fails" = 0 ] || exit 1

# 1. A normal user: the one install line and exit 2, before any build output.
in_root useradd -m -s /bin/sh user
in_root su user -c "git config --global --add safe.directory '*'; git clone -q /src ~/biopipe"
out="$root/tmp/user-demo.out"
step "make demo (normal user)" 2 in_root su user -c "cd ~/biopipe && make demo > /tmp/user-demo.out 2>&1"
cat "$out"
if [ "$(wc -l < "$out")" != 1 ] || ! grep -q 'sudo apt-get install -y .*libmsgpack-dev' "$out"; then
	echo "fresh-check: a normal user's make demo must print one line with the sudo apt-get install command"
	fails=$((fails + 1))
fi

# 2.-4. As root, as README says.
step "make demo" 0 in_root sh -c "cd /root/biopipe && make demo"
demo_again="$root/tmp/demo-again.out"
step "make demo (again)" 0 in_root sh -c "cd /root/biopipe && make demo > /tmp/demo-again.out 2>&1"
if grep -q 'build/bin/bio-' "$demo_again"; then
	echo "fresh-check: a second make demo ran stages again:"
	cat "$demo_again"
	fails=$((fails + 1))
fi
if [ "$demo_only" = 0 ]; then
	step "make test" 0 in_root sh -c "cd /root/biopipe && make test"
fi

if [ "$fails" = 0 ]; then
	echo "fresh-check: passed on a new Debian 12 root (commit $commit)"
else
	echo "fresh-check: $fails step(s) failed (commit $commit)"
	exit 1
fi
