#!/usr/bin/env bash
# Installs, from Debian's packages, what the slow targets drive: building
# the SD-card image and update bundles (mmdebstrap, qemu-user for arm64,
# FAT and ext4 tools, U-Boot's mkimage), booting them under QEMU with the
# real boot loader (qemu-system-arm, u-boot-qemu, qemu-utils, ipxe-qemu,
# whose absence shows only as QEMU's 'failed to find romfile
# "efi-virtio.rom"'), and the signed apt repository (apt-utils, gnupg).
# Idempotent: it installs only what is missing, and registers qemu-user's
# binfmt handler for arm64. Without root it installs nothing and says what
# is missing.
#
# usage: scripts/install-image-deps.sh [image|qemu|repo]...   (default: all)
set -euo pipefail

declare -A image=(
  [mmdebstrap]=mmdebstrap [arch-test]=arch-test [qemu-aarch64-static]=qemu-user-static
  [update-binfmts]=binfmt-support [mkfs.vfat]=dosfstools [mcopy]=mtools [mke2fs]=e2fsprogs
  [sfdisk]=fdisk [xz]=xz-utils [mkimage]=u-boot-tools [mkenvimage]=u-boot-tools [dpkg-deb]=dpkg
)
declare -A qemu=(
  [qemu-system-aarch64]=qemu-system-arm [qemu-img]=qemu-utils [/usr/lib/u-boot/qemu_arm64/u-boot.bin]=u-boot-qemu
  [/usr/lib/ipxe/qemu/efi-virtio.rom]=ipxe-qemu [curl]=curl [python3]=python3
)
declare -A repo=(
  [apt-ftparchive]=apt-utils [gpg]=gnupg [mmdebstrap]=mmdebstrap [arch-test]=arch-test
)

sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(image qemu repo)
missing=()
have() { [ -e "$1" ] || command -v "$1" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1; }
for s in "${sets[@]}"; do
  declare -n want=$s
  for cmd in "${!want[@]}"; do
    have "$cmd" || missing+=("${want[$cmd]}")
  done
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-image-deps: not root: install ${missing[*]}" >&2
    exit 1
  fi
  echo "install-image-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# qemu-user-static registers its binfmt handlers; make sure the arm64 one
# is live (binfmt_misc may need mounting in a container).
if printf '%s\n' "${sets[@]}" | grep -qx image && [ "$(dpkg --print-architecture)" != arm64 ] && [ "$(id -u)" = 0 ]; then
  [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
fi
exit 0
