#!/usr/bin/env bash
# Builds the redpanda-client Debian package: the `redpanda` command-line
# client (cmd/redpanda), which plays the owner's phone. It is its own
# package: the home node's image and package carry no client, and a desktop
# that uses the client needs no node.
#
# usage: packaging/build-client-deb.sh -a ARCH [-b BINARY] [-v VERSION] [-o OUTDIR]
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
armhf) goenv=(GOARCH=arm GOARM=6) ;;
amd64) goenv=(GOARCH=amd64) ;;
*) echo "build-client-deb.sh: ARCH must be arm64, armhf or amd64, not '$arch'" >&2; exit 2 ;;
esac
if [ -z "$version" ]; then
	version=0~git$(git -C "$root" log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0).$(git -C "$root" rev-parse --short=8 HEAD 2>/dev/null || echo dev)-1
fi
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/redpanda-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg=$stage/pkg
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/share/doc/redpanda-client"
if [ -n "$bin" ]; then
	install -m 0755 "$bin" "$pkg/usr/bin/redpanda"
else
	echo "building redpanda for $arch ($version)" >&2
	(cd "$root" && env CGO_ENABLED=0 GOOS=linux "${goenv[@]}" go build -trimpath \
		-ldflags "-s -w -X github.com/redpanda-p2p/homenode/internal/version.Version=$version" \
		-o "$pkg/usr/bin/redpanda" ./cmd/redpanda)
	chmod 0755 "$pkg/usr/bin/redpanda"
fi
install -m 0644 "$root/packaging/debian/copyright" "$pkg/usr/share/doc/redpanda-client/copyright"
{
	printf 'redpanda-client (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Built from git %s.\n\n' "$(git -C "$root" rev-parse --short=8 HEAD 2>/dev/null || echo unknown)"
	printf ' -- redPanda Home Node authors <homenode@redpanda-p2p.invalid>  %s\n' \
		"$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$pkg/usr/share/doc/redpanda-client/changelog.Debian.gz"
chmod 0644 "$pkg/usr/share/doc/redpanda-client/changelog.Debian.gz"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	"$root/packaging/debian/redpanda-client.control.in" >"$pkg/DEBIAN/control"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"
deb=$out/redpanda-client_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
