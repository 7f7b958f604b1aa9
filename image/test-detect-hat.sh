#!/usr/bin/env bash
# Tests the image's hat detection (image/rootfs/usr/lib/skytime-image/detect-hat)
# on this machine, in seconds, with no Pi: a fake device tree (HAT EEPROM or
# none), a pseudo-terminal as the UART (sending a receiver's sentences, or
# nothing), and a fake /sys/class/pps whose GPIO 18 device pulses or not.
# Needs python3 and a built skytimed (target/release, for --check-config).
#
#   image/test-detect-hat.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
[[ -x $target/release/skytimed ]] || (cd "$repo" && cargo build --release -q -p skytimed) ||
    { echo "test-detect-hat: cannot build skytimed" >&2; exit 1; }
export PATH=$target/release:$PATH
work=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
failures=0
expect() {
    if eval "$2"; then echo "test-detect-hat: ok: $1"; else
        echo "test-detect-hat: FAIL: $1 ($2)"
        failures=$((failures + 1))
    fi
}

# A pseudo-terminal that sends $2 (with \n) once a second for 60 s; its path
# goes to $1/uart.
fake_uart() {
    local case_dir=$1 lines=$2
    python3 - "$case_dir/uart" "$lines" > /dev/null <<'EOF' &
import os, pty, sys, time
master, slave = pty.openpty()
path = os.ttyname(slave)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(path)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
lines = sys.argv[2].encode().replace(b"\\n", b"\r\n")
end = time.monotonic() + 60
while time.monotonic() < end:
    if lines:
        os.write(master, lines)
    time.sleep(1)
EOF
    pids+=($!)
    local i
    for i in $(seq 1 50); do
        [[ -s $case_dir/uart ]] && break
        sleep 0.1
    done
}

# A case: $1 name, $2 EEPROM vendor|product ("" for none), $3 sentences,
# $4 "18" to make the GPIO 18 PPS pulse. Runs detect-hat in $work/$1.
run_case() {
    local name=$1 eeprom=$2 sentences=$3 pulsing=${4:-}
    local dir=$work/$name
    mkdir -p "$dir/dt" "$dir/pps/pps0" "$dir/pps/pps1" "$dir/state" "$dir/fat"
    if [[ -n $eeprom ]]; then
        mkdir -p "$dir/dt/hat"
        printf '%s\0' "${eeprom%%|*}" > "$dir/dt/hat/vendor"
        printf '%s\0' "${eeprom#*|}" > "$dir/dt/hat/product"
    fi
    echo pps-gpio4 > "$dir/pps/pps0/name"
    echo pps-gpio18 > "$dir/pps/pps1/name"
    echo "0.000000000#0" > "$dir/pps/pps0/assert"
    echo "0.000000000#0" > "$dir/pps/pps1/assert"
    if [[ $pulsing == 18 ]]; then
        (for n in $(seq 1 20); do
            [[ -d $dir/pps/pps1 ]] || break
            echo "$n.000000100#$n" > "$dir/pps/pps1/assert"
            sleep 1
        done) 2>/dev/null &
        pids+=($!)
    fi
    sed 's|^device = "/dev/serial0"|device = "/dev/ttyAMA0"|' "$repo/packaging/skytime.toml" > "$dir/skytime.toml"
    cp "$dir/skytime.toml" "$dir/skytime.toml.orig"
    local uart started=$SECONDS
    fake_uart "$dir" "$sentences"
    uart=$(cat "$dir/uart")
    echo "tty0 ${console_port:+$(basename "$console_port")}" > "$dir/console-active"
    SKYTIME_CONSOLE_ACTIVE=$dir/console-active SKYTIME_IMAGE_LIB=$here/rootfs/usr/lib/skytime-image SKYTIME_DEVICETREE=$dir/dt \
        SKYTIME_PPS_CLASS=$dir/pps SKYTIME_SERIAL_PORTS="$console_port $uart" SKYTIME_IMAGE_STATE=$dir/state \
        SKYTIME_CONFIG=$dir/skytime.toml SKYTIME_HARDWARE_DIR=$repo/hardware SKYTIME_FIRMWARE_DIR=$dir/fat \
        SKYTIME_PROBE_SECONDS=2.5 bash "$here/rootfs/usr/lib/skytime-image/detect-hat" > "$dir/log" 2>&1
    echo $((SECONDS - started)) > "$dir/seconds"
    sed "s/^/    $name: /" "$dir/log"
    echo "$uart" > "$dir/uart-path"
}

ublox='$GNRMC,120000.00,A,5130.0,N,00007.0,W,0.0,,010125,,,A*6A\n$GNTXT,01,01,02,u-blox AG - www.u-blox.com*4E\n'
mtk='$GPRMC,120000.000,A,5130.0,N,00007.0,W,0.0,0.0,010125,,,A*7C\n$PGTOP,11,2*6E\n'

console_port=""
run_case eeprom-uputronics 'Uputronics|Raspberry Pi GPS/RTC Expansion Board' "$ublox" 18
run_case probe-adafruit '' "$mtk"
# A UART that never answers, and the serial console (also sending NMEA, as a
# login prompt would send text) that must not be probed at all.
fake_uart "$work" "$ublox"
console_port=$(cat "$work/uart")
run_case unknown '' ''

d=$work/eeprom-uputronics
expect "EEPROM: Uputronics chosen from the EEPROM" "grep -q \"EEPROM says 'Uputronics'.*uputronics-gps-hat\" $d/log"
expect "EEPROM: the pulsing GPIO 18 device chosen" "grep -q 'device = \"/dev/pps1\"' $d/skytime.toml"
expect "EEPROM: the UART that answered, at the rate found" "grep -q \"device = \\\"\$(cat $d/uart-path)\\\"\" $d/skytime.toml && grep -q '^baud = 9600' $d/skytime.toml"
expect "EEPROM: the Uputronics guide's config (not the generic one)" "grep -q 'u-blox TIMEPULSE' $d/skytime.toml"
expect "EEPROM: detection marked done" "test -e $d/state/hat.done"

d=$work/probe-adafruit
expect "probe: no EEPROM logged" "grep -q 'no HAT EEPROM' $d/log"
expect "probe: MediaTek sentences mean the Adafruit hat" "grep -q 'adafruit-ultimate-gps-hat' $d/log && grep -q 'MTK3339' $d/skytime.toml"
expect "probe: no pulses yet, so the Adafruit pin GPIO 4 (pps0)" "grep -q 'using GPIO 4 (/dev/pps0)' $d/log && grep -q 'device = \"/dev/pps0\"' $d/skytime.toml"
expect "probe: report left for the FAT partition" "test -s $d/fat/skytime-firstboot.txt"

d=$work/unknown
expect "unknown: config left as shipped" "cmp -s $d/skytime.toml $d/skytime.toml.orig"
expect "unknown: says it serves LI=3 and what it tried" "grep -q 'serves LI=3' $d/log && grep -q 'at 9600: no NMEA' $d/state/hat-detection.txt && grep -q 'GPIO 18 (/dev/pps1): no pulses' $d/state/hat-detection.txt"
expect "unknown: detection runs again next boot" "test ! -e $d/state/hat.done"
expect "unknown: the serial console is left alone" "grep -q '$console_port: the serial console, not probed' $d/state/hat-detection.txt && ! grep -q 'NMEA at' $d/state/hat-detection.txt"
# Four rates of 2.5 s and the 2.2 s PPS watch; a probe that blocked would run
# until the test's UART went away (60 s) or forever.
expect "unknown: a UART that never answers costs its probe time, no more ($(cat $d/seconds)s)" "test $(cat $d/seconds) -le 30"

[[ $failures -eq 0 ]] || { echo "test-detect-hat: $failures failure(s)"; exit 1; }
echo "test-detect-hat: all passed"
