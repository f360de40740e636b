#!/usr/bin/env bash
# Builds a flashable SD-card image of the redPanda home node from Debian's
# own packages, without loop devices or mounts:
#
#   mmdebstrap (root or unshare mode; qemu-user-static/binfmt for arm64)
#     -> root file system tarball (systemd, linux-image-arm64, raspi-firmware,
#        systemd-networkd DHCP on Ethernet, systemd-timesyncd, homenode.deb)
#   tar -x; mkfs.vfat -C + mcopy (RASPIFIRM); mke2fs -d (RASPIROOT)
#   sfdisk on the image file; dd conv=notrunc,sparse; xz
#
# usage: image/build.sh -b BOARD -d HOMENODE.deb -o OUTDIR [-c CACHEDIR] [-n]
#   -n  skip the .img.xz (the boot test needs only the raw image)
# Output: OUTDIR/homenode-BOARD.img, .img.xz, .manifest (every package
# version in the image, with the mirror and the build time).
set -euo pipefail

board=rpi-arm64 deb= out=dist/image cache= noxz=0
while getopts "b:d:o:c:n" opt; do
	case $opt in
	b) board=$OPTARG ;; d) deb=$OPTARG ;; o) out=$OPTARG ;; c) cache=$OPTARG ;; n) noxz=1 ;;
	*) echo "usage: $0 -b BOARD -d DEB -o OUTDIR [-c CACHEDIR] [-n]" >&2; exit 2 ;;
	esac
done
here=$(cd "$(dirname "$0")" && pwd)
case $board in
rpi-arm64) arch=arm64 qemu_arch=aarch64 ;;
*) echo "build.sh: unknown board $board (known: rpi-arm64)" >&2; exit 2 ;;
esac
[ -f "$deb" ] || { echo "build.sh: no .deb at '$deb' (make deb ARCH=$arch)" >&2; exit 2; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${cache:-$out/cache/apt-$arch}
mkdir -p "$cache"
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
security=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

start=$(date +%s)
step() { printf '==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*"; }

for tool in mmdebstrap mkfs.vfat mcopy mke2fs sfdisk xz; do
	PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null ||
		{ echo "build.sh: $tool missing: apt-get install mmdebstrap dosfstools mtools e2fsprogs fdisk xz-utils qemu-user-static binfmt-support" >&2; exit 1; }
done
export PATH=$PATH:/usr/sbin:/sbin
if [ "$(dpkg --print-architecture)" != "$arch" ]; then
	if [ ! -e /proc/sys/fs/binfmt_misc/status ] && [ "$(id -u)" = 0 ]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	fi
	if [ ! -e /proc/sys/fs/binfmt_misc/qemu-$qemu_arch ] && command -v update-binfmts >/dev/null && [ "$(id -u)" = 0 ]; then
		update-binfmts --enable "qemu-$qemu_arch"
	fi
	[ -e /proc/sys/fs/binfmt_misc/qemu-$qemu_arch ] ||
		{ echo "build.sh: no binfmt handler for $qemu_arch: apt-get install qemu-user-static binfmt-support" >&2; exit 1; }
fi

# Root when we are root; otherwise a user namespace (needs /etc/subuid).
if [ "$(id -u)" = 0 ]; then mode=root; asroot() { "$@"; }
else mode=unshare; asroot() { mmdebstrap --unshare-helper "$@"; }; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/homenode-image.XXXXXX")
trap 'asroot rm -rf "$work"' EXIT
img=$out/homenode-$board.img
manifest=$out/homenode-$board.manifest

step "mmdebstrap $suite $arch ($mode mode; apt cache $cache)"
# The initramfs is built once, at the end, with a short module list:
# update-initramfs is diverted to a stub while packages install (each
# kernel/initramfs-tools trigger would take ~17 min under emulation).
mmdebstrap --mode="$mode" --arch="$arch" --variant=minbase \
	--components=main,non-free-firmware \
	--include=systemd-sysv,udev,dbus,kmod,iproute2,systemd-timesyncd,systemd-resolved,linux-image-arm64,raspi-firmware,initramfs-tools,zstd,fdisk,e2fsprogs,ca-certificates,netbase,less,procps \
	--aptopt='APT::Install-Recommends "false"' \
	--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
	--setup-hook="sync-in '$cache' /var/cache/apt/archives" \
	--essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs' \
	--essential-hook='printf "#!/bin/sh\n# diverted during the image build\nexit 0\n" > "$1/usr/sbin/update-initramfs"; chmod 755 "$1/usr/sbin/update-initramfs"' \
	--customize-hook="sync-out /var/cache/apt/archives '$cache'" \
	--customize-hook="sync-in '$here/rootfs' /" \
	--customize-hook='chroot "$1" chown -R root:root /etc/systemd /etc/initramfs-tools /etc/default/raspi-firmware /etc/fstab /etc/hostname /etc/hosts /usr/local/sbin/homenode-growpart' \
	--customize-hook="copy-in '$deb' /tmp" \
	--customize-hook='chroot "$1" sh -c "apt-get install -y -q /tmp/*.deb && rm /tmp/*.deb"' \
	--customize-hook='chroot "$1" systemctl enable systemd-networkd systemd-resolved systemd-timesyncd homenode-growpart.service' \
	--customize-hook='ln -sf ../run/systemd/resolve/stub-resolv.conf "$1/etc/resolv.conf"' \
	--customize-hook='rm "$1/usr/sbin/update-initramfs"; chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs' \
	--customize-hook='echo "==> update-initramfs (MODULES=list; raspi-firmware fills /boot/firmware)"; chroot "$1" update-initramfs -c -k all' \
	--customize-hook="chroot \"\$1\" dpkg-query -W -f='\${Package}\t\${Version}\t\${Architecture}\n' > '$work/packages'" \
	"$suite" "$work/rootfs.tar" \
	"deb $mirror $suite main non-free-firmware" \
	"deb $mirror $suite-updates main non-free-firmware" \
	"deb $security $suite-security main non-free-firmware"

step "unpack the root file system"
asroot sh -c "mkdir '$work/root' && tar -C '$work/root' -x --numeric-owner --xattrs --xattrs-include='*' -f '$work/rootfs.tar' && rm '$work/rootfs.tar'"
asroot ls "$work/root/boot/firmware/"
asroot test -e "$work/root/boot/firmware/config.txt" ||
	{ echo "build.sh: raspi-firmware left no config.txt in /boot/firmware" >&2; exit 1; }
# The boot test boots the image's own kernel and initrd with -kernel.
asroot sh -c "cp -L '$work'/root/boot/vmlinuz-* '$out/vmlinuz' && cp -L '$work'/root/boot/initrd.img-* '$out/initrd.img' && chown $(id -u):$(id -g) '$out/vmlinuz' '$out/initrd.img'"

step "boot partition (FAT32, RASPIFIRM)"
boot_mib=256
rm -f "$work/boot.img"
mkfs.vfat -F 32 -n RASPIFIRM -C "$work/boot.img" $((boot_mib * 1024)) >/dev/null
asroot sh -c "mcopy -s -i '$work/boot.img' '$work'/root/boot/firmware/* ::/ && rm -rf '$work'/root/boot/firmware/*"

step "root partition (ext4, RASPIROOT)"
used_mib=$(asroot du -sm "$work/root" | cut -f1)
# Room for the first boot; the partition grows to fill the card then.
root_mib=$(((used_mib * 5 / 4 + 256 + 3) / 4 * 4))
asroot mke2fs -q -t ext4 -L RASPIROOT -d "$work/root" -E root_owner=0:0 "$work/root.img" "${root_mib}M"
asroot chown "$(id -u):$(id -g)" "$work/root.img"

step "partition table and image ($((4 + boot_mib + root_mib)) MiB)"
rm -f "$img"
truncate -s $(((4 + boot_mib + root_mib) * 1024 * 1024)) "$img"
sfdisk --quiet "$img" <<PT
label: dos
unit: sectors
start=$((4 * 2048)), size=$((boot_mib * 2048)), type=c, bootable
start=$(((4 + boot_mib) * 2048)), size=$((root_mib * 2048)), type=83
PT
dd if="$work/boot.img" of="$img" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$img" bs=1M seek=$((4 + boot_mib)) conv=notrunc,sparse status=none

step "manifest"
{
	echo "# homenode-$board.img built $(date -u +%Y-%m-%dT%H:%M:%SZ) by image/build.sh"
	echo "# suite $suite from $mirror (+ $suite-updates, $suite-security)"
	echo "# homenode package: $(basename "$deb")"
	echo "# mmdebstrap $(mmdebstrap --version | awk '{print $2}'), mode $mode"
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
ls -lh "$out"/homenode-"$board".*
