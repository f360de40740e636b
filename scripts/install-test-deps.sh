#!/usr/bin/env bash
# Installs, from Debian's packages, the programs the tests drive for real:
# a browser for the status page, a QR decoder, a UPnP router and its client,
# nftables and iproute2 for the router's network namespaces, and systemd's
# analyser for the unit files. Idempotent: it installs only what is missing.
# Without root it installs nothing, and the tests that need a missing
# program skip with a message saying which.
set -euo pipefail

# command -> Debian package
declare -A want=(
  [chromium]=chromium
  [zbarimg]=zbar-tools
  [miniupnpd]=miniupnpd
  [upnpc]=miniupnpc
  [nft]=nftables
  [ip]=iproute2
  [systemd-analyze]=systemd
  [dpkg-deb]=dpkg
  [curl]=curl
)

missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: not root or no apt-get; tests needing these will skip: ${missing[*]}" >&2
  exit 0
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
