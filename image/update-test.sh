#!/usr/bin/env bash
# The A/B update test (make update-test): builds a test image of version N
# and the bundles the scenarios need, then runs image/updatetest, which
# boots them in qemu-system-aarch64 -M virt with Debian's U-Boot and plays
# the owner's phone (the real redpanda client) through forwarded ports:
#
#   good         N -> N+1 from the owner's release feed: commits
#   never-ready  N+1 whose homenode never becomes ready: rolls back by itself
#   hang         N+1 whose kernel locks up: the watchdog resets, rolls back
#   data-late    N+1 whose data partition does not come up on its trial
#                boot: the fallback still reboots, rolls back
#   commitfail   a new card whose commit step fails at every boot stays up
#                (no reboot loop), its status page saying "not committed"
#   refused      bundles signed by another key, older than N, tampered,
#                carried by the phone: refused, nothing written to slot B
#   power cuts   kill -9 of QEMU at random moments while downloading,
#                writing and on the first boot, many times: the box always
#                boots and reaches ready with its identity and messages
#
# Artifacts are kept in dist/update-test and reused while the sources they
# come from do not change (REBUILD=1 forces a rebuild).
#
# usage: image/update-test.sh [updatetest flags, e.g. -only good -cuts 3]
# Environment: REBUILD=1 rebuilds every artifact; BUILD_ONLY=1 stops after
# building them; CACHE_DIR is the image build's cache (dist/cache).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${UPDATE_TEST_DIR:-$repo/dist/update-test}
cache=${CACHE_DIR:-$repo/dist/cache}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PATH=$PATH:/usr/sbin:/sbin
start=$(date +%s)
step() { printf '==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*"; }

# Versions: N, N+1 and the faulty ones newer than N, one older.
vN=9.0.0-1 vNext=9.0.1-1 vNever=9.0.2-1 vHang=9.0.3-1 vDataLate=9.0.4-1 vOlder=8.9.9-1
key=$repo/update/keys/dev-release.key

# A stamp of what the artifacts are made from: the sources of the daemon,
# the image and its builders (not the test driver, image/updatetest).
# Artifacts from another stamp are rebuilt.
stamp=$(cd "$repo" && git ls-files -s cmd appliance node update board provisioning internal image packaging systemd go.mod go.sum |
	grep -v 'image/updatetest/' | sha256sum | cut -c1-16)
if [ "${REBUILD:-0}" = 1 ] || [ "$(cat "$out/stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -f "$out"/*.rpb "$out"/*.img "$out"/*.ext4 "$out"/*.deb "$out/stamp"
fi

deb() { # version -> path of an arm64 .deb
	local d=$out/homenode_$1_arm64.deb
	[ -f "$d" ] || "$repo/packaging/build-deb.sh" -a arm64 -v "$1" -o "$out" >/dev/null
	echo "$d"
}
slot() { # version name [overlay...] -> root slot image
	local v=$1 name=$2
	shift 2
	local img=$out/root-$name.ext4
	if [ ! -f "$img" ]; then
		local args=(-b rpi-arm64 -d "$(deb "$v")" -o "$out/build-$name" -c "$cache" -S -x "$here/testdata/common")
		for o in "$@"; do args+=(-x "$here/testdata/$o"); done
		nice -n 10 "$here/build.sh" "${args[@]}" >"$out/build-$name.log" 2>&1 || { tail -n 30 "$out/build-$name.log"; exit 1; }
		mv "$out/build-$name/homenode-rpi-arm64-root.ext4" "$img"
		rm -rf "$out/build-$name"
	fi
	echo "$img"
}
bundle() { # version slot-image out [signing key]
	[ -f "$3" ] || (cd "$repo" && nice -n 10 go run ./cmd/rpupdate bundle -image "$2" -version "$1" -compatible rpi-arm64 -key "${4:-$key}" -o "$3")
}

step "image of version $vN"
if [ ! -f "$out/homenode-N.img" ]; then
	nice -n 10 "$here/build.sh" -b rpi-arm64 -d "$(deb "$vN")" -o "$out/build-N" -c "$cache" -n -x "$here/testdata/common" \
		>"$out/build-N.log" 2>&1 || { tail -n 30 "$out/build-N.log"; exit 1; }
	mv "$out/build-N/homenode-rpi-arm64.img" "$out/homenode-N.img"
	mv "$out/build-N/homenode-rpi-arm64-root.ext4" "$out/root-N.ext4"
	rm -rf "$out/build-N"
fi
# The commitfail scenario's card, only when it runs (default: every scenario).
only=
for ((i = 1; i <= $#; i++)); do
	case ${!i} in
	-only | --only) j=$((i + 1)); only=${!j:-} ;;
	-only=* | --only=*) only=${!i#*=} ;;
	esac
done
if [ -z "$only" ] || [[ ,$only, == *,commitfail,* ]]; then
	step "image of version $vN whose commit step fails"
	if [ ! -f "$out/homenode-commit-fails.img" ]; then
		nice -n 10 "$here/build.sh" -b rpi-arm64 -d "$(deb "$vN")" -o "$out/build-commit-fails" -c "$cache" -n \
			-x "$here/testdata/common" -x "$here/testdata/commit-fails" >"$out/build-commit-fails.log" 2>&1 ||
			{ tail -n 30 "$out/build-commit-fails.log"; exit 1; }
		mv "$out/build-commit-fails/homenode-rpi-arm64.img" "$out/homenode-commit-fails.img"
		rm -rf "$out/build-commit-fails"
	fi
fi
step "bundles"
bundle "$vNext" "$(slot "$vNext" next)" "$out/next.rpb"
bundle "$vNever" "$(slot "$vNever" never-ready never-ready)" "$out/never-ready.rpb"
bundle "$vHang" "$(slot "$vHang" hang hang)" "$out/hang.rpb"
bundle "$vDataLate" "$(slot "$vDataLate" data-late data-late)" "$out/data-late.rpb"
bundle "$vOlder" "$out/root-N.ext4" "$out/older.rpb"
if [ ! -f "$out/other-key.rpb" ]; then
	rm -f "$out/other.key" "$out/other.pub"
	(cd "$repo" && go run ./cmd/rpupdate keygen -o "$out/other")
	bundle "$vNext" "$out/root-next.ext4" "$out/other-key.rpb" "$out/other.key"
fi
if [ ! -f "$out/tampered.rpb" ]; then
	cp "$out/next.rpb" "$out/tampered.rpb"
	size=$(stat -c %s "$out/tampered.rpb")
	# One byte of the payload, in the middle, changed.
	printf '\x5a' | dd of="$out/tampered.rpb" bs=1 seek=$((size / 2)) conv=notrunc status=none
fi
echo "$stamp" >"$out/stamp"
ls -l "$out"/*.img "$out"/*.rpb "$out"/*.ext4

[ "${BUILD_ONLY:-0}" = 1 ] && exit 0

step "building the phone (redpanda) and the test driver"
(cd "$repo" && go build -o "$out/redpanda" ./cmd/redpanda && go build -o "$out/updatetest" ./image/updatetest)
step "scenarios"
cd "$repo"
exec "$out/updatetest" -dir "$out" -image "$out/homenode-N.img" -redpanda "$out/redpanda" -key "$key" \
	-version-n "$vN" -version-next "$vNext" "$@"
