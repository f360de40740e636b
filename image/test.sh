#!/usr/bin/env bash
# Boot test of the A/B SD-card image: boots the whole card in
# qemu-system-aarch64 -M virt (software emulation) through its real boot
# chain, Debian's U-Boot for QEMU (u-boot-qemu) and the image's boot script,
# which picks root slot A; captures the serial console, forwards the node's
# libp2p TCP port and status page to the host, and passes only when
#   1. the boot script chose slot A and homenode.service reaches READY=1
#      (systemd logs "Started homenode.service" for a Type=notify unit
#      only after READY=1), and homenode-commit.service commits slot A,
#   2. the pairing URI appears on the console,
#   3. a client on the host pairs through the forwarded port, and the node
#      says it is paired,
#   4. the data partition and its file system grew to fill the (larger)
#      disk on first boot,
#   5. the pairing console unit (tty1) ran and exited once paired,
#   6. the status page answers through the forwarded port,
#   7. the node, under its real unit, sees the board's button: QEMU virt's
#      gpio-keys power button, pressed from the QEMU monitor
#      (system_powerdown), and the box does not power off.
# QEMU is killed by its PID at the end and on failure. The image itself is
# not modified: the VM writes to a qcow2 overlay 1 GiB larger than it.
#
# usage: image/test.sh -i IMG [-t TIMEOUT_SECONDS] [-l LOG]
set -euo pipefail

img= timeout=900 log=
uboot=/usr/lib/u-boot/qemu_arm64/u-boot.bin
while getopts "i:t:l:" opt; do
	case $opt in
	i) img=$OPTARG ;; t) timeout=$OPTARG ;; l) log=$OPTARG ;;
	*) echo "usage: $0 -i IMG [-t SECONDS] [-l LOG]" >&2; exit 2 ;;
	esac
done
[ -f "$img" ] || { echo "image-test: missing '$img' (make image first)" >&2; exit 2; }
for tool in qemu-system-aarch64 qemu-img go curl python3; do
	command -v "$tool" >/dev/null || { echo "image-test: $tool missing (make image-test installs it as root)" >&2; exit 2; }
done
[ -f "$uboot" ] || { echo "image-test: $uboot missing (apt-get install u-boot-qemu)" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/homenode-image-test.XXXXXX")
log=${log:-$work/console.log}
qemu_pid=

cleanup() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		echo "image-test: stopping QEMU (pid $qemu_pid)"
		kill "$qemu_pid" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
		kill -9 "$qemu_pid" 2>/dev/null || true
	fi
	rm -rf "$work/overlay.qcow2" "$work/pairtest" "$work/monitor.sock"
	# Keep the console log, whether it is in $work or not.
	rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
fail() {
	echo "image-test: FAIL: $*" >&2
	echo "---- last 60 console lines ($log) ----" >&2
	tail -n 60 "$log" >&2 || true
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "image-test: building the pairing client"
(cd "$here/.." && go build -o "$work/pairtest" ./image/pairtest)

p2p_port=$(free_port)
http_port=$(free_port)
qemu-img create -q -f qcow2 -F raw -b "$(readlink -f "$img")" "$work/overlay.qcow2" \
	$(($(stat -c %s "$img") + 1024 * 1024 * 1024))
: >"$log"
start=$(date +%s)
# The disk is the last virtio-mmio device: U-Boot's virtio 0, Linux's vda.
# acpi=off: started with firmware (-bios) and ACPI on (the default), QEMU's
# virt board replaces the PL061 GPIO and its gpio-keys power button in the
# device tree with an ACPI GED power button; U-Boot hands Linux no ACPI
# tables, so the kernel boots on that device tree and has no button at all
# (check: -M virt,dumpdtb=v.dtb then `dtc -I dtb v.dtb | grep gpio-keys`).
# A Pi has no ACPI either: its button is a gpio-keys node too.
qemu-system-aarch64 -M virt,acpi=off -cpu cortex-a72 -smp 2 -m 1024 -display none -no-reboot \
	-bios "$uboot" -serial "file:$log" -monitor "unix:$work/monitor.sock,server,nowait" \
	-device i6300esb -watchdog-action reset \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$p2p_port-:4001,hostfwd=tcp:127.0.0.1:$http_port-:8080" \
	-device virtio-net-pci,netdev=n0 -device virtio-rng-pci \
	-drive "file=$work/overlay.qcow2,if=none,format=qcow2,id=disk0" -device virtio-blk-device,drive=disk0 &
qemu_pid=$!
echo "image-test: QEMU pid $qemu_pid; console $log; node TCP 4001 -> 127.0.0.1:$p2p_port, status page -> 127.0.0.1:$http_port"

elapsed() { echo $(($(date +%s) - start)); }
# wait_for REGEX WHAT: until the console shows REGEX, QEMU dies or time runs out.
wait_for() {
	until grep -aqE "$1" "$log"; do
		kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before $2"
		[ "$(elapsed)" -lt "$timeout" ] || fail "no $2 within ${timeout}s"
		sleep 1
	done
	echo "image-test: [$(elapsed)s] $2"
}

monitor() { python3 -c 'import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.5); s.recv(4096)
s.sendall((sys.argv[2]+"\n").encode()); time.sleep(1); print(s.recv(4096).decode(errors="replace"))' "$work/monitor.sock" "$1"; }

wait_for 'homenode: booting slot A' "U-Boot's boot script choosing slot A"
wait_for 'Linux version' "kernel booting"
wait_for 'Started homenode\.service|homenode\.service: Failed|Failed to start homenode\.service' "homenode.service start result"
grep -aqE 'Started homenode\.service' "$log" || fail "homenode.service failed to start"
ready=$(elapsed)
echo "image-test: boot-to-ready ${ready}s (QEMU start to READY=1, emulated)"
wait_for 'RPPAIR1:' "pairing URI on the console"
uri=$(grep -aoE 'RPPAIR1:[^" ]+' "$log" | head -n 1 | tr -d '\r')
echo "image-test: pairing URI $uri"

wait_for 'growpart: ' "data partition check"
grep -aq 'growpart: growing' "$log" || fail "the data partition did not grow to fill the disk"
wait_for 'growpart: file system on /dev/[a-z0-9]+ is [0-9]+ MiB' "the data file system resized"
# At least the 1 GiB added to the disk.
grown=$(grep -aoE 'growpart: file system on /dev/[a-z0-9]+ is [0-9]+ MiB' "$log" | tail -n 1 | grep -oE '[0-9]+ MiB' | cut -d' ' -f1)
[ -n "$grown" ] && [ "$grown" -ge 1024 ] || fail "the data file system is ${grown:-not resized} MiB, want at least 1024"
echo "image-test: data file system grown to $grown MiB"
wait_for 'Mounted var-lib-homenode\.mount' "the data partition mounted"
wait_for 'update: routine' "homenode-commit.service committing slot A"

echo "image-test: pairing through 127.0.0.1:$p2p_port"
"$work/pairtest" -uri "$uri" -addr "127.0.0.1:$p2p_port" -timeout 3m || fail "pairing through the forwarded port failed"
wait_for 'Paired with|[^a-z]paired[^a-z]*owner' "the node reporting it is paired"
# The tty1 QR console (homenode pairing-qr --watch) exits 0 once paired.
wait_for 'homenode-pairing-console\.service: Deactivated successfully|homenode-pairing-console\.service: (Main process exited|Failed)' "the pairing console's exit"
grep -aq 'homenode-pairing-console\.service: Deactivated successfully' "$log" || fail "the pairing console did not exit cleanly after pairing"

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "http://127.0.0.1:$http_port/" || true)
[ "$code" = 200 ] || fail "status page through the forwarded port answered '$code', want 200"
echo "image-test: status page answered 200"

echo "image-test: pressing the board's button (QEMU monitor: system_powerdown)"
monitor system_powerdown >/dev/null
wait_for 'reset button pressed briefly' "homenode seeing the button under its real unit"
sleep 10
kill -0 "$qemu_pid" 2>/dev/null || fail "the box powered off when its button was pressed"
grep -aq 'reset button ready' "$log" || fail "homenode did not open the button device"

grep -aE 'growfs|Started homenode|READY|waiting for pairing|booting slot|button' "$log" | head -n 12 || true
echo "image-test: PASS (boot-to-ready ${ready}s, total $(elapsed)s)"
