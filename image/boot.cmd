# redPanda home node: the U-Boot boot script of the A/B image
# (mkimage -A arm64 -T script -C none -d boot.cmd boot.scr; docs/UPDATES.md).
#
# Root slot A is partition 2 of the boot disk, B partition 3; each holds its
# own /boot/vmlinuz and /boot/initrd.img. The boot state is two copies of a
# small environment in libubootenv's redundant format (CRC32 | flags |
# NAME=VALUE...) at 1 MiB and 1.125 MiB of the disk, 16 KiB each: the newer
# valid copy wins, and each save goes to the other copy with flags + 1, so a
# torn write or a flipped byte leaves the last complete state (Linux's side
# is update/bootenv, with the same rule).
#
#   BOOT_ORDER   slots to try, in order ("A B")
#   BOOT_A_LEFT  boots left for slot A: one is taken, and saved, before booting
#   BOOT_B_LEFT  the same for B; a slot with none left is skipped
#   BOOT_TRIAL   the slot on trial (read by Linux only; kept as is)
#
# With no valid copy the state is "A B", three boots each. With no slot
# left, both get three again (a box that boots something beats a brick).

echo "homenode: A/B boot from ${devtype} ${devnum}"
${devtype} dev ${devnum}

setexpr hn_b0 ${ramdisk_addr_r} + 0
setexpr hn_b1 ${ramdisk_addr_r} + 0x4000
setexpr hn_x ${ramdisk_addr_r} + 0x8000
setexpr hn_w ${ramdisk_addr_r} + 0xc000
setexpr hn_x4 ${hn_x} + 4
setexpr hn_w4 ${hn_w} + 4
setexpr hn_w5 ${hn_w} + 5

# hn_import: check the copy at hn_src and import its variables. U-Boot's
# "env import -c" wants CRC | data: the flags byte is left out at hn_x.
setenv hn_import 'setenv BOOT_ORDER; setenv BOOT_A_LEFT; setenv BOOT_B_LEFT; setenv BOOT_TRIAL; cp.b ${hn_src} ${hn_x} 4; setexpr hn_s ${hn_src} + 5; cp.b ${hn_s} ${hn_x4} 0x3ffb; env import -c ${hn_x} 0x3fff BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT BOOT_TRIAL'

# hn_save: write the variables into the copy that is not current, with
# flags one higher, and make it current.
setenv hn_save 'env export -c -s 0x3fff ${hn_x} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT BOOT_TRIAL; cp.b ${hn_x} ${hn_w} 4; mw.b ${hn_w4} ${hn_fnext} 1; cp.b ${hn_x4} ${hn_w5} 0x3ffb; if test "${hn_cur}" = 0; then setenv hn_blk 0x900; setenv hn_cur 1; else setenv hn_blk 0x800; setenv hn_cur 0; fi; ${devtype} write ${hn_w} ${hn_blk} 0x20; setenv hn_flags ${hn_fnext}; setexpr hn_fnext ${hn_fnext} + 1; setexpr hn_fnext ${hn_fnext} % 0x100'

${devtype} read ${hn_b0} 0x800 0x20
${devtype} read ${hn_b1} 0x900 0x20
setexpr hn_a ${hn_b0} + 4
setexpr.b hn_f0 *${hn_a}
setexpr hn_a ${hn_b1} + 4
setexpr.b hn_f1 *${hn_a}

setenv hn_v0 0
setenv hn_v1 0
setenv hn_src ${hn_b1}
if run hn_import; then setenv hn_v1 1; fi
setenv hn_src ${hn_b0}
if run hn_import; then setenv hn_v0 1; fi

# The newer of two valid copies: flags one to 127 steps ahead, mod 256.
setenv hn_cur
if test "${hn_v0}" = 1 && test "${hn_v1}" = 1; then
	setexpr hn_d ${hn_f1} - ${hn_f0}
	setexpr hn_d ${hn_d} % 0x100
	if itest ${hn_d} -ge 1 && itest ${hn_d} -le 0x7f; then setenv hn_cur 1; else setenv hn_cur 0; fi
elif test "${hn_v0}" = 1; then
	setenv hn_cur 0
elif test "${hn_v1}" = 1; then
	setenv hn_cur 1
fi
if test "${hn_cur}" = 1; then
	setenv hn_src ${hn_b1}
	run hn_import
	setenv hn_flags ${hn_f1}
elif test "${hn_cur}" = 0; then
	# copy 0 was imported last
	setenv hn_flags ${hn_f0}
else
	echo "homenode: no valid boot state; defaults"
	setenv BOOT_ORDER "A B"
	setenv BOOT_A_LEFT 3
	setenv BOOT_B_LEFT 3
	setenv BOOT_TRIAL
	# the first save goes to copy 0 with flags 0
	setenv hn_cur 1
	setenv hn_flags ff
fi
setexpr hn_fnext ${hn_flags} + 1
setexpr hn_fnext ${hn_fnext} % 0x100
echo "homenode: boot state from copy ${hn_cur}: order ${BOOT_ORDER}, A ${BOOT_A_LEFT} left, B ${BOOT_B_LEFT} left, trial ${BOOT_TRIAL}"

setenv hn_slot
for s in ${BOOT_ORDER}; do
	if test -z "${hn_slot}" && test "${s}" = A && test "${BOOT_A_LEFT}" -gt 0; then
		setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
		setenv hn_slot A
	fi
	if test -z "${hn_slot}" && test "${s}" = B && test "${BOOT_B_LEFT}" -gt 0; then
		setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
		setenv hn_slot B
	fi
done
if test -z "${hn_slot}"; then
	echo "homenode: no slot has boots left; both get three again"
	setenv BOOT_A_LEFT 3
	setenv BOOT_B_LEFT 3
	if test -z "${BOOT_ORDER}"; then setenv BOOT_ORDER "A B"; fi
	for s in ${BOOT_ORDER}; do
		if test -z "${hn_slot}"; then setenv hn_slot ${s}; fi
	done
	if test "${hn_slot}" = A; then setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1; else setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1; fi
fi
run hn_save
echo "homenode: booting slot ${hn_slot} (A ${BOOT_A_LEFT} left, B ${BOOT_B_LEFT} left)"

if test "${hn_slot}" = A; then setenv hn_part 2; else setenv hn_part 3; fi
part uuid ${devtype} ${devnum}:${hn_part} hn_partuuid
# The Pi firmware's device tree (with config.txt's overlays) or QEMU's.
if test -n "${fdt_addr}"; then setenv hn_fdt ${fdt_addr}; else setenv hn_fdt ${fdtcontroladdr}; fi
if test "${board}" = rpi; then
	setenv hn_console "console=ttyS1,115200 console=tty0"
else
	setenv hn_console "console=ttyAMA0 systemd.journald.forward_to_console=1"
fi
if load ${devtype} ${devnum}:${hn_part} ${ramdisk_addr_r} /boot/initrd.img; then
	setenv hn_initrd ${ramdisk_addr_r}:${filesize}
	if load ${devtype} ${devnum}:${hn_part} ${kernel_addr_r} /boot/vmlinuz; then
		setenv bootargs "root=PARTUUID=${hn_partuuid} rootwait rw panic=10 homenode.slot=${hn_slot} ${hn_console}"
		booti ${kernel_addr_r} ${hn_initrd} ${hn_fdt}
	fi
fi

# Only reached when the slot could not be loaded or started: it gets no
# more boots, and the board starts again.
echo "homenode: slot ${hn_slot} does not boot; it gets no more tries"
if test "${hn_slot}" = A; then setenv BOOT_A_LEFT 0; else setenv BOOT_B_LEFT 0; fi
run hn_save
reset
