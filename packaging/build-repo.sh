#!/usr/bin/env bash
# Builds a signed apt repository of homenode .debs, the update path for
# Raspberry Pi OS and Debian (docs/UPDATES.md): apt, and unattended-upgrades,
# follow it like any other archive.
#
#   OUTDIR/pool/main/h/homenode/homenode_VERSION_ARCH.deb (and r/redpanda-client)
#   OUTDIR/dists/stable/main/binary-ARCH/Packages, Packages.gz
#   OUTDIR/dists/stable/Release, InRelease, Release.gpg   (signed)
#   OUTDIR/homenode-archive-keyring.gpg                   (the public key)
#   OUTDIR/homenode.sources                               (an apt source, deb822)
#
# usage: packaging/build-repo.sh -o OUTDIR [-k KEYID] [-u URL] DEB...
#   -k  the GnuPG key that signs (in $GNUPGHOME): a release key, kept
#       offline. Without -k a throwaway key is made in OUTDIR/test-gnupg,
#       for tests only (the repository then says so in its Label).
#   -u  the URL the repository will be served from (for homenode.sources)
set -euo pipefail

out= key= url=https://example.invalid/homenode
while getopts "o:k:u:" opt; do
	case $opt in
	o) out=$OPTARG ;; k) key=$OPTARG ;; u) url=$OPTARG ;;
	*) echo "usage: $0 -o OUTDIR [-k KEYID] [-u URL] DEB..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ -n "$out" ] && [ $# -gt 0 ] || { echo "usage: $0 -o OUTDIR [-k KEYID] [-u URL] DEB..." >&2; exit 2; }
for tool in apt-ftparchive gpg dpkg-deb; do
	command -v "$tool" >/dev/null || { echo "build-repo.sh: $tool missing: apt-get install apt-utils gnupg dpkg (make repo does it as root)" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
label="redPanda home node"
if [ -z "$key" ]; then
	export GNUPGHOME=$out/test-gnupg
	if [ ! -d "$GNUPGHOME" ]; then
		mkdir -m 0700 "$GNUPGHOME"
		gpg --batch --quiet --passphrase '' --quick-gen-key "redPanda home node TEST repository <test@redpanda-p2p.invalid>" ed25519 sign never
	fi
	key=$(gpg --batch --list-secret-keys --with-colons | awk -F: '/^fpr/ {print $10; exit}')
	echo "build-repo.sh: signing with a throwaway TEST key ($key); use -k (make repo REPO_KEY=...) for a release" >&2
fi
# A repository signed by a test key says so (and keeps saying so: apt
# refuses a repository whose Label changes).
if gpg --batch --list-keys --with-colons "$key" | grep -q '^uid:.*TEST repository'; then
	label="redPanda home node (TEST key: not for use)"
fi

rm -rf "$out/pool" "$out/dists"
pool=pool/main/h/homenode
mkdir -p "$out/$pool"
archs=()
for deb in "$@"; do
	[ -f "$deb" ] || { echo "build-repo.sh: no file $deb" >&2; exit 2; }
	case $(dpkg-deb -f "$deb" Package) in
	homenode) cp "$deb" "$out/$pool/" ;;
	redpanda-client) mkdir -p "$out/pool/main/r/redpanda-client" && cp "$deb" "$out/pool/main/r/redpanda-client/" ;;
	*) echo "build-repo.sh: $deb is neither homenode nor redpanda-client" >&2; exit 2 ;;
	esac
	archs+=("$(dpkg-deb -f "$deb" Architecture)")
done
mapfile -t archs < <(printf '%s\n' "${archs[@]}" | sort -u)

cd "$out"
for a in "${archs[@]}"; do
	dir=dists/stable/main/binary-$a
	mkdir -p "$dir"
	apt-ftparchive --arch "$a" packages pool >"$dir/Packages"
	gzip -9nk "$dir/Packages"
done
apt-ftparchive \
	-o APT::FTPArchive::Release::Origin="redPanda" \
	-o APT::FTPArchive::Release::Label="$label" \
	-o APT::FTPArchive::Release::Suite=stable \
	-o APT::FTPArchive::Release::Codename=stable \
	-o APT::FTPArchive::Release::Architectures="${archs[*]}" \
	-o APT::FTPArchive::Release::Components=main \
	-o APT::FTPArchive::Release::Description="redPanda home node packages" \
	release dists/stable >dists/stable/Release
rm -f dists/stable/InRelease dists/stable/Release.gpg
gpg --batch --yes --default-key "$key" --clearsign -o dists/stable/InRelease dists/stable/Release
gpg --batch --yes --default-key "$key" -abs -o dists/stable/Release.gpg dists/stable/Release
gpg --batch --yes --export "$key" >homenode-archive-keyring.gpg
cat >homenode.sources <<SRC
# /etc/apt/sources.list.d/homenode.sources (with the key as
# /usr/share/keyrings/homenode-archive-keyring.gpg)
Types: deb
URIs: $url
Suites: stable
Components: main
Signed-By: /usr/share/keyrings/homenode-archive-keyring.gpg
SRC
echo "repository in $out: ${archs[*]}; $(find pool -name '*.deb' | wc -l) package(s); signed by $key"
