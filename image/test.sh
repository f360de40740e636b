#!/usr/bin/env bash
# Boot test of the SD-card image: boots its root file system with the
# image's own kernel and initrd in qemu-system-aarch64 -M virt (software
# emulation), captures the serial console, forwards the node's libp2p TCP
# port and status page to the host, and passes only when
#   1. homenode.service reaches READY=1 (systemd logs "Started
#      homenode.service" for a Type=notify unit only after READY=1),
#   2. the pairing URI appears on the console,
#   3. a client on the host pairs through the forwarded port, and the node
#      says it is paired,
#   4. the root partition and file system grew to fill the (larger) disk
#      on first boot,
#   5. the pairing console unit (tty1) ran and exited once paired,
#   6. the status page answers through the forwarded port.
# QEMU is killed by its PID at the end and on failure. The image itself is
# not modified: the VM writes to a qcow2 overlay 1 GiB larger than it.
#
# usage: image/test.sh -i IMG -k VMLINUZ -r INITRD [-t TIMEOUT_SECONDS] [-l LOG]
set -euo pipefail

img= kernel= initrd= timeout=900 log=
while getopts "i:k:r:t:l:" opt; do
	case $opt in
	i) img=$OPTARG ;; k) kernel=$OPTARG ;; r) initrd=$OPTARG ;; t) timeout=$OPTARG ;; l) log=$OPTARG ;;
	*) echo "usage: $0 -i IMG -k VMLINUZ -r INITRD [-t SECONDS] [-l LOG]" >&2; exit 2 ;;
	esac
done
for f in "$img" "$kernel" "$initrd"; do
	[ -f "$f" ] || { echo "image-test: missing '$f' (make image first)" >&2; exit 2; }
done
for tool in qemu-system-aarch64 qemu-img go curl; do
	command -v "$tool" >/dev/null || { echo "image-test: $tool missing (apt-get install qemu-system-arm qemu-utils curl)" >&2; exit 2; }
done
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
	rm -rf "$work/overlay.qcow2" "$work/pairtest"
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
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -display none -no-reboot \
	-serial "file:$log" -monitor none \
	-kernel "$kernel" -initrd "$initrd" \
	-append "root=LABEL=RASPIROOT rw console=ttyAMA0 net.ifnames=0 systemd.journald.forward_to_console=1" \
	-drive "file=$work/overlay.qcow2,if=virtio,format=qcow2" \
	-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$p2p_port-:4001,hostfwd=tcp:127.0.0.1:$http_port-:8080" \
	-device virtio-net-pci,netdev=n0 -device virtio-rng-pci &
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

wait_for 'Linux version' "kernel booting"
wait_for 'Started homenode\.service|homenode\.service: Failed|Failed to start homenode\.service' "homenode.service start result"
grep -aqE 'Started homenode\.service' "$log" || fail "homenode.service failed to start"
ready=$(elapsed)
echo "image-test: boot-to-ready ${ready}s (QEMU start to READY=1, emulated)"
wait_for 'RPPAIR1:' "pairing URI on the console"
uri=$(grep -aoE 'RPPAIR1:[^" ]+' "$log" | head -n 1 | tr -d '\r')
echo "image-test: pairing URI $uri"

wait_for 'growpart: ' "root partition check"
grep -aq 'growpart: growing' "$log" || fail "the root partition did not grow to fill the disk"
wait_for 'Successfully resized "/"' "the root file system resized"
# systemd-growfs reports the new size in GiB: the disk less the 260 MiB
# before the root partition.
want_gib=$(awk -v b="$(($(stat -c %s "$img") + 1024 * 1024 * 1024))" 'BEGIN { printf "%.1f", (b / 1048576 - 260) / 1024 - 0.1 }')
grown=$(grep -aoE 'Successfully resized "/" to [0-9.]+G' "$log" | tail -n 1 | grep -oE '[0-9.]+G' | tr -d G)
[ -n "$grown" ] && awk -v g="$grown" -v w="$want_gib" 'BEGIN { exit !(g >= w) }' ||
	fail "the root file system is ${grown:-not resized}G, want at least ${want_gib}G"
echo "image-test: root file system grown to ${grown}G"

echo "image-test: pairing through 127.0.0.1:$p2p_port"
"$work/pairtest" -uri "$uri" -addr "127.0.0.1:$p2p_port" -timeout 3m || fail "pairing through the forwarded port failed"
wait_for 'Paired with|[^a-z]paired[^a-z]*owner' "the node reporting it is paired"
# The tty1 QR console (homenode pairing-qr --watch) exits 0 once paired.
wait_for 'homenode-pairing-console\.service: Deactivated successfully|homenode-pairing-console\.service: (Main process exited|Failed)' "the pairing console's exit"
grep -aq 'homenode-pairing-console\.service: Deactivated successfully' "$log" || fail "the pairing console did not exit cleanly after pairing"

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "http://127.0.0.1:$http_port/" || true)
[ "$code" = 200 ] || fail "status page through the forwarded port answered '$code', want 200"
echo "image-test: status page answered 200"

grep -aE 'growfs|Started homenode|READY|waiting for pairing' "$log" | head -n 10 || true
echo "image-test: PASS (boot-to-ready ${ready}s, total $(elapsed)s)"
