#!/usr/bin/env bash
# The .deb update path, for real: a Debian bookworm chroot (mmdebstrap,
# amd64, no emulation) installs homenode version N from a local signed
# repository (packaging/build-repo.sh; apt checks the signature), the node
# runs there once and makes its identity and store, the owner edits the
# config; then the repository gets N+1 and unattended-upgrades, configured
# for the repository's origin, upgrades it. It passes when
#   1. apt refuses the repository without its key (the signature is checked),
#   2. N installs and the maintainer scripts start the node (fresh install),
#   3. unattended-upgrades upgrades to N+1 and the scripts restart it,
#   4. /var/lib/homenode (identity, store) and the edited conffile are kept,
#   5. N+1 runs on the kept data with the same identity (peer ID).
# systemd does not run as PID 1 in a chroot: /run/systemd/system is made so
# the scripts take their systemd branch, and systemctl / deb-systemd-invoke
# are diverted to wrappers that record what the scripts ask of them instead
# of failing.
#
# usage: packaging/repo-test.sh [-k]   (-k: keep the work directory)
set -euo pipefail

keep=0
[ "${1:-}" = -k ] && keep=1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "repo-test: needs root (a chroot)" >&2; exit 2; }
for tool in mmdebstrap apt-ftparchive gpg unshare ip; do
	command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null ||
		{ echo "repo-test: $tool missing (make repo-test installs it)" >&2; exit 2; }
done
export PATH=$PATH:/usr/sbin:/sbin
work=$(mktemp -d "${TMPDIR:-/tmp}/homenode-repo-test.XXXXXX")
root=$work/root
cleanup() {
	for m in proc dev/pts dev sys; do umount "$root/$m" 2>/dev/null || true; done
	if [ "$keep" = 1 ]; then echo "repo-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
start=$(date +%s)
step() { printf '==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*"; }
fail() { echo "repo-test: FAIL: $*" >&2; exit 1; }
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive "$@"; }

arch=$(dpkg --print-architecture)
v1=1.0.0-1 v2=1.0.1-1
step "two homenode packages ($v1, $v2; $arch)"
deb1=$("$repo/packaging/build-deb.sh" -a "$arch" -v "$v1" -o "$work/debs" | tail -n 1)
deb2=$("$repo/packaging/build-deb.sh" -a "$arch" -v "$v2" -o "$work/debs" | tail -n 1)

step "repository with $v1 (a throwaway test key)"
"$repo/packaging/build-repo.sh" -o "$work/repo" -u file:///srv/homenode-repo "$deb1"

step "Debian bookworm chroot (mmdebstrap, $arch)"
cache=${CACHE_DIR:-$repo/dist/cache}/apt-$arch
mkdir -p "$cache"
mmdebstrap --mode=root --variant=minbase --include=ca-certificates,unattended-upgrades,systemd,procps \
	--aptopt='APT::Install-Recommends "false"' \
	--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
	--setup-hook="sync-in '$cache' /var/cache/apt/archives" \
	--customize-hook="sync-out /var/cache/apt/archives '$cache'" \
	bookworm "$root" >"$work/mmdebstrap.log" 2>&1 || { tail -n 30 "$work/mmdebstrap.log"; fail "mmdebstrap"; }
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t sysfs sys "$root/sys"
mkdir -p "$root/run/systemd/system" "$root/srv"
for cmd in /usr/bin/systemctl /usr/bin/deb-systemd-invoke; do
	chroot "$root" dpkg-divert --quiet --local --rename --add "$cmd"
	printf '#!/bin/sh\necho "%s $*" >> /var/log/homenode-repo-test.calls\nexit 0\n' "$(basename "$cmd")" >"$root$cmd"
	chmod 755 "$root$cmd"
done
cp -a "$work/repo" "$root/srv/homenode-repo"
cp "$work/repo/homenode.sources" "$root/etc/apt/sources.list.d/homenode.sources"

step "apt refuses the repository without its key"
if in_root apt-get update -qq 2>"$work/nokey.err"; then
	grep -q "NO_PUBKEY\|not signed\|is not signed" "$work/nokey.err" || fail "apt-get update accepted the repository without its key"
fi
grep -qE "NO_PUBKEY|not signed|Signed-By" "$work/nokey.err" || { cat "$work/nokey.err"; fail "no signature complaint from apt"; }
cp "$work/repo/homenode-archive-keyring.gpg" "$root/usr/share/keyrings/"
in_root apt-get update -qq || fail "apt-get update with the key"

step "install $v1"
in_root apt-get install -y -qq homenode >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "apt-get install homenode"; }
[ "$(in_root homenode version)" = "homenode $v1" ] || fail "homenode version: $(in_root homenode version)"
grep -q "deb-systemd-invoke start homenode.service" "$root/var/log/homenode-repo-test.calls" ||
	fail "a fresh install did not start the node: $(cat "$root/var/log/homenode-repo-test.calls")"

# The node runs once (network: loopback of its own namespace), makes its
# identity and store, and stops.
runnode() {
	unshare --net sh -c "ip link set lo up && exec chroot '$root' runuser -u homenode -- /usr/bin/homenode run \
		--data-dir /var/lib/homenode --admin-socket /var/lib/homenode/admin.sock --http off \
		--listen /ip4/127.0.0.1/tcp/14001 --set upnp=false --set relay=false" >"$work/node-$1.log" 2>&1 &
	local pid=$!
	for _ in $(seq 1 120); do
		grep -q "^peer id:" "$work/node-$1.log" && break
		kill -0 "$pid" 2>/dev/null || { cat "$work/node-$1.log"; fail "homenode $1 exited"; }
		sleep 1
	done
	grep -q "^peer id:" "$work/node-$1.log" || fail "homenode $1 did not come up"
	kill -TERM "$pid"
	wait "$pid" || true
	grep "^peer id:" "$work/node-$1.log"
}
step "run $v1 once: identity and store"
mkdir -p "$root/var/lib/homenode"
in_root chown homenode:homenode /var/lib/homenode
id1=$(runnode "$v1")
echo "repo-test: $v1 is $id1"
sum1=$(cd "$root/var/lib/homenode" && sha256sum identity.key messages.db | sha256sum)
echo '# edited by the owner' >>"$root/etc/homenode/homenode.toml"
echo 'capacity = 500' >>"$root/etc/homenode/homenode.toml"
: >"$root/var/log/homenode-repo-test.calls"

step "the repository gets $v2; unattended-upgrades follows it"

rm -rf "$root/srv/homenode-repo"
mkdir -p "$root/srv/homenode-repo"
# Same key as before: the repository's signing key does not change.
GNUPGHOME=$work/repo/test-gnupg "$repo/packaging/build-repo.sh" -o "$work/repo2" -u file:///srv/homenode-repo \
	-k "$(GNUPGHOME=$work/repo/test-gnupg gpg --batch --list-secret-keys --with-colons | awk -F: '/^fpr/ {print $10; exit}')" "$deb1" "$deb2"
cp -a "$work/repo2/." "$root/srv/homenode-repo/"
cat >"$root/etc/apt/apt.conf.d/52homenode-unattended" <<'EOF'
Unattended-Upgrade::Origins-Pattern { "origin=redPanda,codename=stable"; };
EOF
in_root apt-get update -qq || fail "apt-get update after $v2"
in_root unattended-upgrade -d >"$work/unattended.log" 2>&1 || { tail -n 40 "$work/unattended.log"; fail "unattended-upgrade"; }
[ "$(in_root homenode version)" = "homenode $v2" ] || { tail -n 40 "$work/unattended.log"; fail "after unattended-upgrade: $(in_root homenode version)"; }
grep -q "deb-systemd-invoke restart homenode.service" "$root/var/log/homenode-repo-test.calls" ||
	fail "the upgrade did not restart the node: $(cat "$root/var/log/homenode-repo-test.calls")"

step "data and settings kept"
sum2=$(cd "$root/var/lib/homenode" && sha256sum identity.key messages.db | sha256sum)
[ "$sum1" = "$sum2" ] || fail "/var/lib/homenode changed during the upgrade"
grep -q '^capacity = 500' "$root/etc/homenode/homenode.toml" || fail "the owner's edit of homenode.toml was lost"
id2=$(runnode "$v2")
[ "$id1" = "$id2" ] || fail "identity changed: $id1 -> $id2"
echo "repo-test: $v2 is $id2, on the same data"
grep -E "^(Packages|Upgrad|All upgrades)" "$work/unattended.log" | head -n 5 || true
step "PASS"
