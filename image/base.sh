#!/usr/bin/env bash
# Builds (or reuses) the Debian base of a root slot: every package of the
# image but homenode, with the initramfs built once. It is the slow part of
# `make image` and `make bundle` (6-10 minutes under emulation), so its
# output is cached by the hash of what goes into it:
#
#   CACHEDIR/base-ARCH-HASH.tar   (and a .packages list beside it)
#
# The hash covers the suite, the package list, this script and the files it
# copies in (initramfs settings). Rebuild with -f, or when the cached tar is
# older than MAX_AGE_DAYS (default 7, so security updates are picked up).
#
# usage: image/base.sh -a ARCH -c CACHEDIR [-f]
# Prints the path of the tar on its last line.
set -euo pipefail

arch=arm64 cache= force=0
while getopts "a:c:f" opt; do
	case $opt in
	a) arch=$OPTARG ;; c) cache=$OPTARG ;; f) force=1 ;;
	*) echo "usage: $0 -a ARCH -c CACHEDIR [-f]" >&2; exit 2 ;;
	esac
done
[ -n "$cache" ] || { echo "base.sh: -c CACHEDIR is required" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
case $arch in
arm64) qemu_arch=aarch64 ;;
*) echo "base.sh: unknown architecture $arch (known: arm64)" >&2; exit 2 ;;
esac
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
security=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
max_age=${MAX_AGE_DAYS:-7}

# u-boot-rpi brings Debian's Pi U-Boot (copied to the boot partition);
# the rest is the running system.
packages=systemd-sysv,udev,dbus,kmod,iproute2,systemd-timesyncd,systemd-resolved,linux-image-arm64,raspi-firmware,u-boot-rpi,initramfs-tools,zstd,fdisk,e2fsprogs,ca-certificates,netbase,less,procps

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
key=$( {
	echo "$suite $arch $mirror $packages"
	cat "$0"
	find "$here/base" -type f | LC_ALL=C sort | xargs cat
} | sha256sum | cut -c1-16)
tar=$cache/base-$arch-$key.tar
tmp=$cache/partial-base-$arch.tar
if [ "$force" = 0 ] && [ -s "$tar" ] && [ -n "$(find "$tar" -mtime -"$max_age")" ]; then
	echo "base.sh: reusing $tar" >&2
	echo "$tar"
	exit 0
fi

export PATH=$PATH:/usr/sbin:/sbin
for tool in mmdebstrap; do
	command -v "$tool" >/dev/null || { echo "base.sh: $tool missing: apt-get install mmdebstrap qemu-user-static binfmt-support" >&2; exit 1; }
done
if [ "$(dpkg --print-architecture)" != "$arch" ]; then
	if [ ! -e /proc/sys/fs/binfmt_misc/status ] && [ "$(id -u)" = 0 ]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	fi
	if [ ! -e /proc/sys/fs/binfmt_misc/qemu-$qemu_arch ] && command -v update-binfmts >/dev/null && [ "$(id -u)" = 0 ]; then
		update-binfmts --enable "qemu-$qemu_arch"
	fi
	[ -e /proc/sys/fs/binfmt_misc/qemu-$qemu_arch ] ||
		{ echo "base.sh: no binfmt handler for $qemu_arch: apt-get install qemu-user-static binfmt-support" >&2; exit 1; }
fi
if [ "$(id -u)" = 0 ]; then mode=root; else mode=unshare; fi
apt_cache=$cache/apt-$arch
mkdir -p "$apt_cache"
start=$(date +%s)
echo "==> mmdebstrap $suite $arch ($mode mode; apt cache $apt_cache)" >&2
# The initramfs is built once, at the end, with a short module list:
# update-initramfs is diverted to a stub while packages install (each
# kernel/initramfs-tools trigger would take ~17 min under emulation).
# Documentation and translations are left out (copyright files stay):
# every byte of the root is written to the card again by each update.
mmdebstrap --mode="$mode" --arch="$arch" --variant=minbase \
	--components=main,non-free-firmware \
	--include="$packages" \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
	--setup-hook="sync-in '$apt_cache' /var/cache/apt/archives" \
	--essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs' \
	--essential-hook='printf "#!/bin/sh\n# diverted during the image build\nexit 0\n" > "$1/usr/sbin/update-initramfs"; chmod 755 "$1/usr/sbin/update-initramfs"' \
	--customize-hook="sync-out /var/cache/apt/archives '$apt_cache'" \
	--customize-hook="sync-in '$here/base' /" \
	--customize-hook='chroot "$1" chown -R root:root /etc/initramfs-tools /etc/default/raspi-firmware' \
	--customize-hook='rm "$1/usr/sbin/update-initramfs"; chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs' \
	--customize-hook='echo "==> update-initramfs (MODULES=list)"; chroot "$1" update-initramfs -c -k all' \
	--customize-hook='chroot "$1" apt-get clean' \
	"$suite" "$tmp" \
	"deb $mirror $suite main non-free-firmware" \
	"deb $mirror $suite-updates main non-free-firmware" \
	"deb $security $suite-security main non-free-firmware" >&2
mv "$tmp" "$tar"
# Older bases of this architecture are superseded.
find "$cache" -maxdepth 1 -name "base-$arch-*.tar" ! -name "$(basename "$tar")" -delete
echo "==> base built in $(($(date +%s) - start))s: $tar" >&2
echo "$tar"
