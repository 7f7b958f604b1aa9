#!/bin/sh
# Tests for systemd/skytime-header-uart against fake /sys and /proc/device-tree
# trees laid out as on real Raspberry Pis. Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
helper=$here/../skytime-header-uart
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# board NAME ALIAS_SERIAL0 TTY:NODE...: a fake machine whose device-tree alias
# serial0 is ALIAS_SERIAL0 and whose ttys point at the given device-tree nodes.
board() {
    root=$work/$1
    alias=$2
    shift 2
    mkdir -p "$root/sys/firmware/devicetree/base" "$root/dt/aliases"
    if [ -n "$alias" ]; then
        printf '%s\000' "$alias" > "$root/dt/aliases/serial0"
    fi
    for entry in "$@"; do
        tty=${entry%%:*}
        node=${entry#*:}
        mkdir -p "$root/sys/firmware/devicetree/base$node" "$root/sys/devices/platform/$tty/tty/$tty"
        ln -s "../../../firmware/devicetree/base$node" "$root/sys/devices/platform/$tty/of_node"
        mkdir -p "$root/sys/class/tty"
        ln -s "../../devices/platform/$tty/tty/$tty" "$root/sys/class/tty/$tty"
        ln -s "../.." "$root/sys/devices/platform/$tty/tty/$tty/device"
    done
}

# expect NAME TTY WANT(0|1)
expect() {
    root=$work/$1
    SKYTIME_SYSFS=$root/sys SKYTIME_DEVICETREE=$root/dt "$helper" "$2"
    got=$?
    if [ "$got" -eq "$3" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $1 $2: exit $got, want $3"
    fi
}

# Pi 4, dtoverlay=disable-bt: serial0 is the PL011 (ttyAMA0); no mini UART.
board pi4-disable-bt /soc/serial@7e201000 ttyAMA0:/soc/serial@7e201000
expect pi4-disable-bt ttyAMA0 0

# Pi 4 default: the PL011 drives Bluetooth, serial0 is the mini UART (ttyS0).
board pi4-default /soc/serial@7e215040 ttyAMA0:/soc/serial@7e201000 ttyS0:/soc/serial@7e215040
expect pi4-default ttyS0 0
expect pi4-default ttyAMA0 1

# Pi 5 with dtparam=uart0=on: serial0 is the RP1 UART0; ttyAMA10 is the debug port.
board pi5 /axi/pcie@120000/rp1/serial@30000 ttyAMA0:/axi/pcie@120000/rp1/serial@30000 ttyAMA10:/soc/serial@7d001000
expect pi5 ttyAMA0 0
expect pi5 ttyAMA10 1

# A PC: ttyS0 has no device-tree node and there are no aliases.
board pc "" ttyS0:/nonexistent
rm -f "$work/pc/sys/devices/platform/ttyS0/of_node"
expect pc ttyS0 1

# A tty that does not exist, and a missing argument.
expect pi4-disable-bt ttyAMA7 1
expect pi4-disable-bt "" 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
