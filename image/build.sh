#!/usr/bin/env bash
# Builds the redPanda home node's A/B SD-card image (and the root slot image
# an update bundle carries) from Debian's own packages, without loop
# devices or mounts:
#
#   image/base.sh: mmdebstrap of every package but homenode (cached)
#   tar -x; the image's files (image/rootfs); homenode.deb with dpkg in a
#     chroot (qemu-user for arm64); the release keys the box trusts
#   boot partition (FAT, RASPIFIRM): Pi firmware, Debian's U-Boot
#     (u-boot-rpi), boot.scr (image/boot.cmd via mkimage), config.txt
#   root slot (ext4): the system with its own /boot/vmlinuz and initrd.img
#   data partition (ext4, HOMEDATA): empty; /var/lib/homenode
#   sfdisk on the image file (MBR): 1 boot, 2 slot A, 3 slot B (empty),
#   4 data; the boot state's two copies at 1 MiB and 1.125 MiB (rpupdate)
#
# usage: image/build.sh -b BOARD -d HOMENODE.deb -o OUTDIR [-c CACHEDIR]
#                       [-k KEYDIR] [-x OVERLAY]... [-S] [-n]
#   -k  directory of NAME.pub release keys the image trusts for updates;
#       default update/keys (the development key: anyone can sign for it)
#   -x  a directory copied over the root file system last (test variants)
#   -S  build the root slot image only (make bundle): OUTDIR/homenode-BOARD-root.ext4
#   -n  skip the .img.xz (the QEMU tests need only the raw image)
# Environment: SLOT_MIB (size of each root slot partition, default 1024).
# Output: OUTDIR/homenode-BOARD.img, .img.xz, .img.sha256, .manifest
# (every package in the image, with the mirror and the build time), and
# homenode-BOARD-root.ext4 (slot A's image).
set -euo pipefail

board=rpi-arm64 deb= out=dist/image cache= keys= slotonly=0 noxz=0
overlays=()
while getopts "b:d:o:c:k:x:Sn" opt; do
	case $opt in
	b) board=$OPTARG ;; d) deb=$OPTARG ;; o) out=$OPTARG ;; c) cache=$OPTARG ;; k) keys=$OPTARG ;;
	x) overlays+=("$(cd "$OPTARG" && pwd)") ;; S) slotonly=1 ;; n) noxz=1 ;;
	*) echo "usage: $0 -b BOARD -d DEB -o OUTDIR [-c CACHEDIR] [-k KEYDIR] [-x OVERLAY]... [-S] [-n]" >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
case $board in
rpi-arm64) arch=arm64 ;;
*) echo "build.sh: unknown board $board (known: rpi-arm64)" >&2; exit 2 ;;
esac
[ -f "$deb" ] || { echo "build.sh: no .deb at '$deb' (make deb ARCH=$arch)" >&2; exit 2; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
keys=${keys:-$repo/update/keys}
ls "$keys"/*.pub >/dev/null 2>&1 || { echo "build.sh: no NAME.pub release key in $keys" >&2; exit 2; }
keys=$(cd "$keys" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${cache:-$out/cache}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
slot_mib=${SLOT_MIB:-1024}
boot_mib=128 data_mib=64

start=$(date +%s)
step() { printf '==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*"; }

export PATH=$PATH:/usr/sbin:/sbin
for tool in mmdebstrap mkfs.vfat mcopy mke2fs sfdisk xz mkimage go; do
	command -v "$tool" >/dev/null ||
		{ echo "build.sh: $tool missing: apt-get install mmdebstrap dosfstools mtools e2fsprogs fdisk xz-utils u-boot-tools qemu-user-static binfmt-support (make image does it as root)" >&2; exit 1; }
done
if [ "$(id -u)" = 0 ]; then mode=root; asroot() { "$@"; }
else mode=unshare; asroot() { mmdebstrap --unshare-helper "$@"; }; fi

step "base system ($arch)"
base=$("$here/base.sh" -a "$arch" -c "$cache" | tail -n 1)

work=$(mktemp -d "${TMPDIR:-/tmp}/homenode-image.XXXXXX")
trap 'asroot rm -rf "$work"' EXIT
root=$work/root
img=$out/homenode-$board.img
slotimg=$out/homenode-$board-root.ext4
manifest=$out/homenode-$board.manifest

step "root file system: base, image files, $(basename "$deb")"
asroot sh -c "mkdir '$root' && tar -C '$root' -x --numeric-owner --xattrs --xattrs-include='*' -f '$base'"
overlay() { asroot sh -c "cp -a --no-preserve=ownership '$1'/. '$root'/"; }
overlay "$here/rootfs"
asroot cp "$deb" "$root/tmp/homenode.deb"
# dpkg runs the package's scripts (systemd-sysusers, deb-systemd-helper)
# under qemu-user; no systemd runs, so nothing starts.
asroot chroot "$root" dpkg -i /tmp/homenode.deb
asroot rm "$root/tmp/homenode.deb"
asroot chroot "$root" systemctl enable systemd-networkd systemd-resolved systemd-timesyncd homenode-growpart.service \
	homenode-commit.service homenode-update.path
asroot ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
asroot sh -c "mkdir -p '$root/usr/share/homenode/update/keys' && cp '$keys'/*.pub '$root/usr/share/homenode/update/keys/' && echo '$board' > '$root/usr/share/homenode/update/compatible'"
for o in "${overlays[@]}"; do
	step "overlay $o"
	overlay "$o"
done
if cmp -s "$keys/dev-release.pub" "$repo/update/keys/dev-release.pub" 2>/dev/null; then
	echo "build.sh: WARNING: this image trusts the DEVELOPMENT release key (update/keys/dev-release.pub), whose private key is public: anyone can sign updates for it. Use -k (make image UPDATE_KEYS=DIR) for a release." >&2
fi
# Each slot boots its own kernel and initrd under fixed names. U-Boot's
# booti wants an uncompressed arm64 Image.
asroot sh -c "cd '$root/boot' && k=\$(ls vmlinuz-* | sort -V | tail -n 1) && i=\$(ls initrd.img-* | sort -V | tail -n 1) &&
	if [ \"\$(head -c 2 \$k | od -An -tx1 | tr -d ' ')\" = 1f8b ]; then gzip -dc \$k > vmlinuz; else cp \$k vmlinuz; fi && cp \$i initrd.img"
version=$(asroot chroot "$root" dpkg-query -W -f='${Version}' homenode)
asroot chroot "$root" dpkg-query -W -f='${Package}\t${Version}\t${Architecture}\n' >"$work/packages"

step "boot partition (FAT32, RASPIFIRM)"
mkimage -A arm64 -O linux -T script -C none -n "homenode A/B boot" -d "$here/boot.cmd" "$work/boot.scr" >/dev/null
asroot sh -c "cd '$root/boot/firmware' && rm -f vmlinuz* initrd.img* cmdline.txt config.txt &&
	cp '$root/usr/lib/u-boot/rpi_arm64/u-boot.bin' . && cp '$work/boot.scr' '$here/firmware/config.txt' ."
rm -f "$work/boot.img"
mkfs.vfat -F 32 -n RASPIFIRM -C "$work/boot.img" $((boot_mib * 1024)) >/dev/null
asroot sh -c "mcopy -s -i '$work/boot.img' '$root'/boot/firmware/* ::/ && rm -rf '$root'/boot/firmware/*"

step "root slot (ext4)"
used_mib=$(asroot du -sm "$root" | cut -f1)
# Room for the journal (capped at 32 MiB) and what the running system
# writes, no more: every byte of the image is written to the card by each
# update. The slot partition itself is larger, for later releases.
root_mib=$(((used_mib * 105 / 100 + 64 + 3) / 4 * 4))
[ "$root_mib" -le "$slot_mib" ] || { echo "build.sh: the root file system needs ${root_mib} MiB, the slots are ${slot_mib} (SLOT_MIB)" >&2; exit 1; }
rm -f "$slotimg"
asroot mke2fs -q -t ext4 -L HNROOT -d "$root" -E root_owner=0:0 "$slotimg" "${root_mib}M"
asroot chown "$(id -u):$(id -g)" "$slotimg"
echo "root slot image: $slotimg (${root_mib} MiB, ${used_mib} MiB used; homenode $version)"
if [ "$slotonly" = 1 ]; then
	step "done: $slotimg"
	exit 0
fi

step "data partition (ext4, HOMEDATA)"
mke2fs -q -t ext4 -L HOMEDATA "$work/data.img" "${data_mib}M"

total=$((4 + boot_mib + 2 * slot_mib + data_mib))
step "partition table and image ($total MiB; slot B empty)"
rm -f "$img"
truncate -s $((total * 1024 * 1024)) "$img"
sfdisk --quiet "$img" <<PT
label: dos
unit: sectors
start=$((4 * 2048)), size=$((boot_mib * 2048)), type=c, bootable
start=$(((4 + boot_mib) * 2048)), size=$((slot_mib * 2048)), type=83
start=$(((4 + boot_mib + slot_mib) * 2048)), size=$((slot_mib * 2048)), type=83
start=$(((4 + boot_mib + 2 * slot_mib) * 2048)), size=$((data_mib * 2048)), type=83
PT
dd if="$work/boot.img" of="$img" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$slotimg" of="$img" bs=1M seek=$((4 + boot_mib)) conv=notrunc,sparse status=none
dd if="$work/data.img" of="$img" bs=1M seek=$((4 + boot_mib + 2 * slot_mib)) conv=notrunc,sparse status=none
# The boot state: slot A first with three boots, B empty (no boots).
(cd "$repo" && go run ./cmd/rpupdate bootenv -disk "$img" -init -print)

step "manifest"
{
	echo "# homenode-$board.img built $(date -u +%Y-%m-%dT%H:%M:%SZ) by image/build.sh"
	echo "# base $(basename "$base") (mmdebstrap $(mmdebstrap --version | awk '{print $2}'), mode $mode)"
	echo "# homenode package: $(basename "$deb") ($version)"
	echo "# update keys trusted: $(cd "$keys" && ls ./*.pub | xargs -n1 basename | tr '\n' ' ')"
	echo "# layout: boot ${boot_mib} MiB, slots A and B ${slot_mib} MiB each, data ${data_mib} MiB (grows on first boot)"
	echo "# package	version	architecture"
	cat "$work/packages"
} >"$manifest"
echo "$(wc -l <"$work/packages") packages recorded in $manifest"

if [ "$noxz" = 0 ]; then
	step "xz (this takes a few minutes)"
	xz -T2 -6 -k -f "$img"
fi
(cd "$out" && sha256sum "homenode-$board.img" >"homenode-$board.img.sha256")
step "done: $img"
ls -lh "$out"/homenode-"$board".* "$slotimg"
