# Shared pieces of image/build.sh, image/check-static.sh and image/test.sh:
# a private arm64 apt (no change to the host's apt), the Debian packages the
# image is made of, the device-tree overlays and the pps-gpio module.
# Sourced, not run. Everything lands under $cache, keyed by what went in.
# shellcheck shell=bash

image_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$image_dir/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
cache=$target/image
mirror=${SKYTIME_IMAGE_MIRROR:-http://deb.debian.org/debian}
security_mirror=${SKYTIME_IMAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm
# The Pi models whose upstream DTBs the image ships (and the checks cover).
pi_dtbs=(bcm2837-rpi-3-b bcm2837-rpi-3-b-plus bcm2837-rpi-3-a-plus bcm2837-rpi-zero-2-w
    bcm2711-rpi-4-b bcm2711-rpi-400 bcm2711-rpi-cm4-io)
mkdir -p "$cache"

log() { echo "image: $*" >&2; }
die() {
    echo "image: ERROR: $*" >&2
    exit 1
}

# A private apt root for arm64 (lists, downloads), refreshed at most every
# 12 hours so that a rebuild picks the same kernel as the last one.
apt_root=$cache/apt
apt_arm64() { APT_CONFIG=$apt_root/apt.conf apt-get -q "$@"; }
apt_setup() {
    mkdir -p "$apt_root"/{etc/apt/apt.conf.d,etc/apt/preferences.d,etc/apt/sources.list.d} \
        "$apt_root"/var/lib/apt/lists/partial "$apt_root"/var/cache/apt/archives/partial \
        "$apt_root"/var/lib/dpkg "$apt_root/debs"
    touch "$apt_root/var/lib/dpkg/status"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    cat > "$apt_root/etc/apt/sources.list" <<EOF
deb [signed-by=$keyring] $mirror $suite main non-free-firmware
deb [signed-by=$keyring] $mirror $suite-updates main non-free-firmware
deb [signed-by=$keyring] $security_mirror $suite-security main non-free-firmware
EOF
    cat > "$apt_root/apt.conf" <<EOF
Dir "$apt_root/";
Dir::State::status "$apt_root/var/lib/dpkg/status";
APT::Architecture "arm64";
APT::Architectures { "arm64"; "amd64"; };
Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d";
APT::Sandbox::User "root";
EOF
    local stamp=$apt_root/updated
    if [[ ! -e $stamp || -n $(find "$stamp" -mmin +720) ]]; then
        log "apt (arm64, private): update"
        apt_arm64 update >&2 || die "apt-get update for arm64 failed (mirror $mirror reachable?)"
        touch "$stamp"
    fi
}

# The kernel ABI (e.g. 6.1.0-57-arm64) that linux-image-arm64 points at now.
kernel_abi() {
    APT_CONFIG=$apt_root/apt.conf apt-cache depends linux-image-arm64 |
        sed -n 's/.*Depends: linux-image-\([0-9][^ ]*-arm64\)$/\1/p' | head -n1
}

# Downloads packages (name or name:arch) into $apt_root/debs once; prints the
# path of the first one's .deb.
fetch_debs() {
    (cd "$apt_root/debs" && apt_arm64 download "$@" >&2) || die "apt-get download $* failed"
}
deb_path() { ls -1 "$apt_root/debs/$1"_*.deb 2>/dev/null | head -n1; }

# Unpacks the kernel, headers, kbuild and raspi-firmware for ABI $1 into
# $cache/pkgs-ABI (kernel, DTBs, firmware blobs, headers for the module).
unpack_kernel_packages() {
    local abi=$1 out=$cache/pkgs-$1
    if [[ -e $out/.done ]]; then
        echo "$out"
        return
    fi
    log "fetching linux-image-$abi, its headers, linux-kbuild, raspi-firmware, linux-source"
    local kbuild_version src_version
    src_version=$(APT_CONFIG=$apt_root/apt.conf apt-cache show "linux-image-$abi" |
        sed -n 's/^Source: linux (\(.*\))$/\1/p' | head -n1)
    [[ -n $src_version ]] || src_version=$(APT_CONFIG=$apt_root/apt.conf apt-cache show "linux-image-$abi" |
        sed -n 's/^Version: //p' | head -n1)
    kbuild_version=${abi%%.*}.$(echo "$abi" | cut -d. -f2)
    fetch_debs "linux-image-$abi" "linux-headers-$abi" "linux-headers-${abi%-arm64}-common" \
        "linux-kbuild-$kbuild_version:amd64" raspi-firmware "linux-source-$kbuild_version=$src_version"
    rm -rf "$out" && mkdir -p "$out/root" "$out/src"
    local pkg
    for pkg in "linux-image-$abi" "linux-headers-$abi" "linux-headers-${abi%-arm64}-common" \
        "linux-kbuild-$kbuild_version" raspi-firmware; do
        dpkg-deb -x "$(deb_path "$pkg")" "$out/root"
    done
    # The headers' Makefile includes the common headers by absolute path.
    sed -i "s|^include /usr/src/|include $out/root/usr/src/|" "$out/root/usr/src/linux-headers-$abi/Makefile"
    # Only pps-gpio.c is needed from the 140 MB kernel source.
    dpkg-deb --fsys-tarfile "$(deb_path "linux-source-$kbuild_version")" |
        tar -xO "./usr/src/linux-source-$kbuild_version.tar.xz" |
        tar -xJ -C "$out/src" --strip-components=1 "linux-source-$kbuild_version/drivers/pps/clients/pps-gpio.c"
    echo "$src_version" > "$out/source-version"
    touch "$out/.done"
    echo "$out"
}

# Debian's DTBs carry no __symbols__; the image's own firmware hook adds the
# labels our overlays use. Runs that same hook on a copy: $1 in, $2 out.
add_dtb_symbols() {
    local in=$1 out=$2 dir
    dir=$(mktemp -d)
    cp "$in" "$dir/"
    SKYTIME_OVERLAYS=/nonexistent sh "$image_dir/rootfs/usr/lib/skytime-image/update-firmware" "$dir" ||
        die "adding __symbols__ to $(basename "$in") failed"
    mv "$dir/$(basename "$in")" "$out"
    rm -rf "$dir"
}

# Compiles image/overlays/*.dts into $1/*.dtbo.
build_overlays() {
    local out=$1 dts
    mkdir -p "$out"
    for dts in "$image_dir"/overlays/*.dts; do
        dtc -@ -q -I dts -O dtb -o "$out/$(basename "${dts%.dts}").dtbo" "$dts" ||
            die "dtc failed on $dts"
    done
}

# Builds pps-gpio.ko from Debian's own source for kernel ABI $1 (packages
# unpacked in $2) into $3; prints the .ko path.
build_pps_gpio_module() {
    local abi=$1 pkgs=$2 out=$3
    rm -rf "$out" && mkdir -p "$out"
    cp "$pkgs/src/drivers/pps/clients/pps-gpio.c" "$out/"
    echo 'obj-m := pps-gpio.o' > "$out/Kbuild"
    make -s -C "$pkgs/root/usr/src/linux-headers-$abi" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
        M="$out" modules >&2 || die "building pps-gpio.ko for $abi failed"
    echo "$out/pps-gpio.ko"
}

# The vermagic string of a module file.
vermagic_of() { modinfo -F vermagic "$1"; }
