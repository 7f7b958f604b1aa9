#!/bin/bash
# The installed appliance on a real Linux kernel: builds (or reuses) the VM
# image, boots it under qemu-system-x86_64 (TCG), feeds NMEA and PPS from the
# host at true seconds, and judges the served time from the host with ntpdig
# and chronyd -Q, and the kernel clock from inside the guest (adjtimex).
#
#   tests/vm/run.sh        # needs root; exits 0 only if every step passed
#
# Then a second, short boot, of an image whose package is built as of 2016
# (build-image.sh --build-date), on 2016-12-31 near midnight, across the
# inserted leap second (leap.sh); chronyd -x follows the first
# guest as a long-running client (chrony_client.sh).
#
# Environment: SKYTIME_VM_KEEP=1 leaves the guest running at the end (the
# ssh command to log in is printed); SKYTIME_VM_SKIP_LEAP=1 skips the leap
# run. See tests/vm/README.md.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
vm=$target/vm
run=$vm/run
stage_start=$SECONDS
log() { echo "vm: [$((SECONDS - stage_start))s] $*" >&2; }
die() { echo "vm: ERROR: $*" >&2; exit 1; }

image=$("$here/build-image.sh") || die "image build failed"
# shellcheck source=tests/vm/leap.sh
source "$here/leap.sh"
leap_image=""
if [[ ${SKYTIME_VM_SKIP_LEAP:-0} != 1 ]]; then
    leap_start=$SECONDS
    leap_image=$("$here/build-image.sh" --build-date "$LEAP_BUILD_DATE") ||
        die "image build (as of $LEAP_BUILD_DATE, for the leap run) failed"
    log "leap run's image (package built as of $LEAP_BUILD_DATE): $((SECONDS - leap_start)) s"
fi
(cd "$repo" && cargo build --release -q -p skytime-sim --bin skytime-vm-feeder) ||
    die "feeder build failed"
feeder=$target/release/skytime-vm-feeder

rm -rf "$run" && mkdir -p "$run/control"
free_port() {
    python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}
ntp_port=$(free_port SOCK_DGRAM)
ssh_port=$(free_port SOCK_STREAM)

qemu_pid="" feeder_pid=""
cleanup() {
    if [[ ${SKYTIME_VM_KEEP:-0} == 1 && -n $qemu_pid ]]; then
        log "SKYTIME_VM_KEEP=1: guest left running (qemu pid $qemu_pid, feeder pid $feeder_pid)"
        log "log in: ssh -i $vm/id_ed25519 -p $ssh_port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1"
        return
    fi
    chrony_stop
    stop_guest
    wait 2>/dev/null
}
trap cleanup EXIT

# The guest's helper for the leap second's kernel evidence (static: no
# dependence on the guest's libc).
leapwatch=$run/skytime-vm-leapwatch
gcc -O2 -static -o "$leapwatch" "$here/leapwatch/leapwatch.c" || die "leapwatch build failed"

# start_feeder OFFSET [ARGS]: NMEA and PPS at true seconds (host + OFFSET).
# The pulse's latency is the host waking the feeder and then QEMU: the
# feeder (asleep but for 20 ms a second) runs SCHED_FIFO; QEMU runs at nice
# -19 while the guest boots and SCHED_FIFO once it idles (steps.sh).
start_feeder() {
    local offset=$1
    shift
    chrt -f 10 "$feeder" --nmea-socket "$run/nmea.sock" --pps-socket "$run/pps.sock" \
        --control-dir "$run/control" --true-offset-s "$offset" "$@" 2>>"$run/feeder.log" &
    feeder_pid=$!
}

# start_qemu RTC_BASE: boots the cached image (-snapshot: the disk is never
# written, so every boot is a fresh install); the guest RTC starts at true time.
start_qemu() {
    log "booting the guest (TCG; ssh on 127.0.0.1:$ssh_port, NTP on 127.0.0.1:$ntp_port/udp)"
    nice -n -19 qemu-system-x86_64 -accel tcg -m 768 -smp 1 -nodefaults -no-user-config -display none \
        -monitor none -no-shutdown \
        -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0,115200 net.ifnames=0" \
        -drive "file=$image/disk.raw,format=raw,if=virtio" -snapshot \
        -chardev "file,id=console,path=$run/console.log" -serial chardev:console \
        -chardev "socket,id=nmea,path=$run/nmea.sock,server=on,wait=off" -serial chardev:nmea \
        -chardev "socket,id=pps,path=$run/pps.sock,server=on,wait=off" \
        -device isa-serial,chardev=pps,index=2,irq=5 \
        -netdev "user,id=net0,hostfwd=udp:127.0.0.1:$ntp_port-:123,hostfwd=tcp:127.0.0.1:$ssh_port-:22" \
        -device virtio-net-pci,netdev=net0 \
        -rtc "base=$1,clock=host" \
        2>>"$run/qemu.log" &
    qemu_pid=$!
}

stop_guest() {
    [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    [[ -n $feeder_pid ]] && kill "$feeder_pid" 2>/dev/null && wait "$feeder_pid" 2>/dev/null
    qemu_pid="" feeder_pid=""
}

# The main run: true time is the host clock.
true_offset_s=0
start_feeder 0
start_qemu utc

# shellcheck source=tests/vm/steps.sh
source "$here/steps.sh"
# shellcheck source=tests/vm/chrony_client.sh
source "$here/chrony_client.sh"
run_steps
