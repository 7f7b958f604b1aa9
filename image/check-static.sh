#!/usr/bin/env bash
# Static checks of what the image puts on the Pi, without a Pi:
#   1. each overlay (image/overlays/*.dts) applies with fdtoverlay to the Pi 3,
#      3B+, Zero 2 W, 4, 400 and CM4 DTBs that Debian's linux-image-arm64 ships
#      (with the __symbols__ the image adds), and the result has pps-gpio on
#      the right pin and the PL011 on GPIO 14/15 with no console there;
#   2. pps-gpio.ko, built from Debian's kernel source, has the vermagic of the
#      image kernel's own modules;
#   3. with a firmware directory as $1 (image/build.sh passes its FAT tree):
#      every file config.txt names exists in it.
# Needs dtc, fdtoverlay, fdtget, aarch64-linux-gnu-gcc, network to the mirror
# the first time (everything is cached under target/image).
set -euo pipefail
# shellcheck source=image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

firmware_dir=${1:-}
failures=0
fail() {
    echo "image-check: FAIL: $*" >&2
    failures=$((failures + 1))
}
pass() { echo "image-check: ok: $*"; }

# The value of property $3 at node $2 in DTB $1 (as fdtget prints it).
prop() { fdtget "$@" 2>/dev/null || true; }

check_pps_overlay() {
    local dtb=$1 pin=$2 name=$3
    local node=/pps-gpio$pin gpio_phandle gpios before=$failures
    [[ $(prop -t s "$dtb" "$node" compatible) == pps-gpio ]] || {
        fail "$name: no pps-gpio node at $node"
        return
    }
    gpio_phandle=$(prop "$dtb" /soc/gpio@7e200000 phandle)
    gpios=$(prop "$dtb" "$node" gpios)
    [[ $gpios == "$gpio_phandle $pin 0" ]] || fail "$name: $node gpios = '$gpios', want '$gpio_phandle $pin 0'"
    [[ $(prop -t s "$dtb" "$node" status) == okay ]] || fail "$name: $node not okay"
    local pins_node=/soc/gpio@7e200000/skytime-pps-gpio$pin-pin
    [[ $(prop "$dtb" "$pins_node" brcm,pins) == "$pin" && $(prop "$dtb" "$pins_node" brcm,function) == 0 ]] ||
        fail "$name: pin group $pins_node is not GPIO $pin as input"
    [[ $(prop "$dtb" "$node" pinctrl-0) == "$(prop "$dtb" "$pins_node" phandle)" ]] ||
        fail "$name: $node does not select its pin group"
    if [[ $failures -eq $before ]]; then pass "$name: pps-gpio on GPIO $pin (gpios = <&gpio $pin 0>)"; fi
}

check_uart_overlay() {
    local dtb=$1 name=$2 before=$failures
    local uart0=/soc/serial@7e201000 pins=/soc/gpio@7e200000/skytime-uart0-gpio14
    [[ $(prop -t s "$dtb" $uart0 status) == okay ]] || fail "$name: uart0 not enabled"
    [[ $(prop "$dtb" $uart0 pinctrl-0) == "$(prop "$dtb" $pins phandle)" ]] ||
        fail "$name: uart0 does not use the GPIO 14/15 pin group"
    [[ $(prop "$dtb" $pins brcm,pins) == "14 15" && $(prop "$dtb" $pins brcm,function) == 4 ]] ||
        fail "$name: pin group is not GPIO 14/15 in ALT0"
    [[ $(prop -t s "$dtb" $uart0/bluetooth status) == disabled ]] || fail "$name: Bluetooth still claims uart0"
    [[ $(prop -t s "$dtb" /soc/serial@7e215040 status) == disabled ]] || fail "$name: mini UART (console) still enabled"
    [[ -z $(prop -t s "$dtb" /chosen stdout-path) ]] || fail "$name: /chosen stdout-path still names a serial console"
    [[ $(prop -t s "$dtb" /aliases serial0) == "$uart0" ]] || fail "$name: serial0 is not uart0"
    if [[ $failures -eq $before ]]; then pass "$name: PL011 on GPIO 14/15 enabled as serial0, no serial console, Bluetooth off"; fi
}

apt_setup
abi=$(kernel_abi)
[[ -n $abi ]] || die "cannot resolve linux-image-arm64's kernel ABI"
pkgs=$(unpack_kernel_packages "$abi")
log "kernel $abi"

work=$cache/check
rm -rf "$work" && mkdir -p "$work"
build_overlays "$work/overlays"

dtb_dir=$pkgs/root/usr/lib/linux-image-$abi/broadcom
for board in "${pi_dtbs[@]}"; do
    [[ -s $dtb_dir/$board.dtb ]] || {
        fail "$board.dtb not shipped by linux-image-$abi"
        continue
    }
    add_dtb_symbols "$dtb_dir/$board.dtb" "$work/$board.dtb"
    for pin in 4 18; do
        out=$work/$board+pps$pin.dtb
        if fdtoverlay -i "$work/$board.dtb" -o "$out" "$work/overlays/skytime-pps-gpio$pin.dtbo"; then
            check_pps_overlay "$out" "$pin" "$board + skytime-pps-gpio$pin"
        else
            fail "$board: fdtoverlay skytime-pps-gpio$pin failed"
        fi
    done
    out=$work/$board+uart.dtb
    if fdtoverlay -i "$work/$board.dtb" -o "$out" "$work/overlays/skytime-uart-gps.dtbo"; then
        check_uart_overlay "$out" "$board + skytime-uart-gps"
    else
        fail "$board: fdtoverlay skytime-uart-gps failed"
    fi
    # What config.txt does: both at once.
    fdtoverlay -i "$work/$board.dtb" -o "$work/$board+all.dtb" "$work/overlays/skytime-uart-gps.dtbo" \
        "$work/overlays/skytime-pps-gpio18.dtbo" || fail "$board: uart + pps18 together failed"
done

ko=$(build_pps_gpio_module "$abi" "$pkgs" "$work/module")
want=$(find "$pkgs/root/lib/modules/$abi" -name 'pps-ldisc.ko*' | head -n1)
[[ -n $want ]] || fail "no pps-ldisc module in linux-image-$abi to compare vermagic with"
if [[ -n $want && $(vermagic_of "$ko") == "$(vermagic_of "$want")" ]]; then
    pass "pps-gpio.ko vermagic '$(vermagic_of "$ko")' = the image kernel's (pps_ldisc)"
else
    fail "pps-gpio.ko vermagic '$(vermagic_of "$ko")' != kernel's '$(vermagic_of "$want")'"
fi

if [[ -n $firmware_dir ]]; then
    # config.txt names files with kernel=, initramfs FILE, device_tree=,
    # dtoverlay=NAME (overlays/NAME.dtbo), os_prefix/overlay_prefix (unused).
    names=$(sed -n -e 's/#.*//' -e 's/^kernel=\(.*\)/\1/p' -e 's/^initramfs \([^ ]*\).*/\1/p' \
        -e 's/^device_tree=\(.*\)/\1/p' -e 's/^dtoverlay=\([^,]*\).*/overlays\/\1.dtbo/p' \
        "$firmware_dir/config.txt")
    for name in $names; do
        [[ -e $firmware_dir/$name ]] || fail "config.txt names $name, missing from the FAT partition"
    done
    if [[ -n $names ]]; then pass "config.txt names only files that exist: $(echo "$names" | tr '\n' ' ')"; fi
    for board in "${pi_dtbs[@]}"; do
        [[ -e $firmware_dir/$board.dtb ]] || fail "FAT partition lacks $board.dtb"
    done
fi

if [[ $failures -gt 0 ]]; then
    die "$failures static check(s) failed"
fi
log "static checks passed"
