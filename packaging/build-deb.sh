#!/usr/bin/env bash
# Builds the homenode Debian package with dpkg-deb: the daemon, its systemd
# units, sysusers.d entry, default config (a conffile) and maintainer
# scripts that enable and start the node, stop it on removal and delete its
# state on purge.
#
# usage: packaging/build-deb.sh -a ARCH [-b BINARY] [-v VERSION] [-o OUTDIR]
#   ARCH     arm64, armhf or amd64 (Debian names)
#   BINARY   a prebuilt homenode for ARCH; default: go build it here
#   VERSION  Debian version; default from git: 0~gitYYYYMMDDhhmmss.HASH-1
# Prints the path of the .deb on its last line.
set -euo pipefail

arch= bin= version= out=dist
while getopts "a:b:v:o:" opt; do
	case $opt in
	a) arch=$OPTARG ;; b) bin=$OPTARG ;; v) version=$OPTARG ;; o) out=$OPTARG ;;
	*) echo "usage: $0 -a arm64|armhf|amd64 [-b BINARY] [-v VERSION] [-o OUTDIR]" >&2; exit 2 ;;
	esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
case $arch in
arm64) goenv=(GOARCH=arm64) ;;
# Raspberry Pi OS armhf runs on ARMv6 boards too (Pi 1, Zero): GOARM=6.
armhf) goenv=(GOARCH=arm GOARM=6) ;;
amd64) goenv=(GOARCH=amd64) ;;
*) echo "build-deb.sh: ARCH must be arm64, armhf or amd64, not '$arch'" >&2; exit 2 ;;
esac
if [ -z "$version" ]; then
	if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
		version=0~git$(git -C "$root" log -1 --format=%cd --date=format:%Y%m%d%H%M%S).$(git -C "$root" rev-parse --short=8 HEAD)-1
	else
		version=0~dev-1
	fi
fi

mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/homenode-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg=$stage/pkg

install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" \
	"$pkg/usr/lib/sysusers.d" "$pkg/etc/homenode" "$pkg/usr/share/doc/homenode"
if [ -n "$bin" ]; then
	install -m 0755 "$bin" "$pkg/usr/bin/homenode"
else
	echo "building homenode for $arch ($version)" >&2
	(cd "$root" && env CGO_ENABLED=0 GOOS=linux "${goenv[@]}" go build -trimpath \
		-ldflags "-s -w -X github.com/redpanda-p2p/homenode/internal/version.Version=$version" \
		-o "$pkg/usr/bin/homenode" ./cmd/homenode)
	chmod 0755 "$pkg/usr/bin/homenode"
fi
install -m 0644 "$root/systemd/homenode.service" "$root/systemd/homenode-pairing-console.service" \
	"$root/systemd/homenode-commit.service" "$root/systemd/homenode-fallback.service" "$root/systemd/homenode-update.service" "$root/systemd/homenode-update.path" \
	"$pkg/lib/systemd/system/"
install -m 0644 "$root/systemd/homenode.sysusers" "$pkg/usr/lib/sysusers.d/homenode.conf"
install -d -m 0755 "$pkg/usr/lib/udev/rules.d"
install -m 0644 "$root/packaging/udev.rules" "$pkg/usr/lib/udev/rules.d/60-homenode.rules"
install -d -m 0755 "$pkg/usr/lib/sysctl.d"
install -m 0644 "$root/packaging/sysctl.conf" "$pkg/usr/lib/sysctl.d/60-homenode.conf"
install -m 0644 "$root/packaging/homenode.toml" "$pkg/etc/homenode/homenode.toml"
install -m 0644 "$root/packaging/debian/copyright" "$pkg/usr/share/doc/homenode/copyright"
install -d -m 0755 "$pkg/usr/share/lintian/overrides"
install -m 0644 "$root/packaging/debian/lintian-overrides" "$pkg/usr/share/lintian/overrides/homenode"
{
	printf 'homenode (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Built from git %s.\n\n' "$(git -C "$root" rev-parse --short=8 HEAD 2>/dev/null || echo unknown)"
	printf ' -- redPanda Home Node authors <homenode@redpanda-p2p.invalid>  %s\n' \
		"$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$pkg/usr/share/doc/homenode/changelog.Debian.gz"
chmod 0644 "$pkg/usr/share/doc/homenode/changelog.Debian.gz"

install -m 0755 "$root/packaging/debian/postinst" "$root/packaging/debian/prerm" "$root/packaging/debian/postrm" "$pkg/DEBIAN/"
echo /etc/homenode/homenode.toml >"$pkg/DEBIAN/conffiles"
chmod 0644 "$pkg/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	"$root/packaging/debian/control.in" >"$pkg/DEBIAN/control"
(cd "$pkg" && find . \( -path ./DEBIAN -o -path ./etc \) -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"

deb=$out/homenode_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
