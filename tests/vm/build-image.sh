#!/bin/bash
# Builds the VM test's guest: a Debian bookworm amd64 root filesystem with the
# Debian cloud kernel, the skytime .deb installed with dpkg -i, the test PPS
# modules (PPS, and PHC for the PHC step), and an ext4 disk image made without loop devices (mke2fs -d).
#
#   tests/vm/build-image.sh                          # prints the image directory on stdout
#   tests/vm/build-image.sh --build-date 2016-06-01  # same, with a .deb built as of that date
#
# Cached layers under ${CARGO_TARGET_DIR:-target}/vm/, each keyed by a hash
# of its inputs, so an unchanged image is not rebuilt:
#   base-KEY.tar   mmdebstrap output (packages, network, console): minutes
#   image-KEY/     base + module + .deb + the user's config edits: seconds
# --build-date D builds the .deb as a reproducible build dated D
# (SOURCE_DATE_EPOCH, which sets skytime-gnss's build date and so its GPS
# week-rollover pivot) in its own cargo target dir, build-YYYY/ (seeded
# once from the normal release build's dependencies, so only the crates
# that the date reaches are rebuilt; the normal build's fingerprints are
# untouched), and makes its own layer, imageYYYY-KEY/. The leap run uses it
# to live on 2016-12-31 (leap.sh).
# Needs root (chroot, file ownership), mmdebstrap, cargo-deb and
# linux-headers-cloud-amd64. Progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
vm=$target/vm
mkdir -p "$vm"
log() { echo "vm-image: $*" >&2; }
die() { echo "vm-image: ERROR: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (chroot into the image, root-owned files)"

build_date=""
if [[ ${1:-} == --build-date ]]; then
    build_date=${2:?--build-date needs YYYY-MM-DD}
    [[ $build_date =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || die "--build-date wants YYYY-MM-DD, got $build_date"
elif [[ $# -gt 0 ]]; then
    die "unknown argument $1 (usage: build-image.sh [--build-date YYYY-MM-DD])"
fi

# The guest kernel is the exact version whose headers are installed here, so
# the test module built against them loads.
headers_pkg=$(dpkg-query -W -f='${Depends}' linux-headers-cloud-amd64 2>/dev/null |
    grep -o 'linux-headers-[0-9][^ ,]*-cloud-amd64' | head -1) ||
    die "linux-headers-cloud-amd64 is not installed"
kver=${headers_pkg#linux-headers-}
[[ -d /usr/src/$headers_pkg ]] || die "/usr/src/$headers_pkg missing"

# ---- base layer --------------------------------------------------------------
packages="systemd,systemd-sysv,udev,kmod,tzdata,linux-image-$kver,adjtimex,openssh-server,iproute2,pps-tools"
base_key=$(printf '%s\n' "$packages" "$(cat "$here/guest/20-eth.network" "$here/guest/autologin.conf")" \
    "base-v1" | sha256sum | cut -c1-16)
base=$vm/base-$base_key.tar
if [[ ! -s $base ]]; then
    log "building base layer $base_key (mmdebstrap bookworm, linux-image-$kver)"
    rm -f "$vm"/base-*.tar
    mmdebstrap --variant=apt --format=tar --include="$packages" \
        --customize-hook='echo skytime-vm > "$1/etc/hostname"' \
        --customize-hook='echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$1/etc/fstab"' \
        --customize-hook='chroot "$1" passwd -d root' \
        --customize-hook="copy-in $here/guest/20-eth.network /etc/systemd/network/" \
        --customize-hook='chroot "$1" systemctl enable systemd-networkd' \
        --customize-hook='mkdir -p "$1/etc/systemd/system/serial-getty@ttyS0.service.d"' \
        --customize-hook="copy-in $here/guest/autologin.conf /etc/systemd/system/serial-getty@ttyS0.service.d/" \
        bookworm "$base.part" >&2
    mv "$base.part" "$base"
fi

# ---- inputs of the image layer -------------------------------------------------
if [[ -z $build_date ]]; then
    flavour=image deb_dir=$vm/deb
    log "building the amd64 .deb (cargo deb, release profile)"
    rm -f "$deb_dir"/skytime_*.deb
    (cd "$repo" && cargo deb -p skytimed --output "$deb_dir/") >&2
else
    year=${build_date%%-*}
    flavour=image$year deb_dir=$vm/deb-$year
    build_target=$vm/build-$year
    if [[ ! -d $build_target/release/.fingerprint && -d $target/release/.fingerprint ]]; then
        log "seeding $build_target from $target/release (dependencies only)"
        mkdir -p "$build_target/release"
        cp -a "$target/release/deps" "$target/release/build" "$target/release/.fingerprint" \
            "$build_target/release/"
    fi
    epoch=$(date -u -d "${build_date}T00:00:00Z" +%s)
    log "building the amd64 .deb as of $build_date (SOURCE_DATE_EPOCH=$epoch, $build_target)"
    rm -f "$deb_dir"/skytime_*.deb
    (cd "$repo" && SOURCE_DATE_EPOCH=$epoch CARGO_TARGET_DIR=$build_target \
        cargo deb -p skytimed --output "$deb_dir/") >&2
fi
deb=$(ls -1 "$deb_dir"/skytime_*_amd64.deb | head -1)

log "building the test PPS module against $headers_pkg"
rm -rf "$vm/module" && mkdir -p "$vm/module"
cp "$here/pps-module/skytime_vm_pps.c" "$here/pps-module/Kbuild" "$vm/module/"
make -s -C "/usr/src/$headers_pkg" M="$vm/module" modules >&2
ko=$vm/module/skytime_vm_pps.ko
# The PHC test module, beside it (not loaded at boot: the PHC step swaps it
# in for the PPS one, since both drive the same UART).
log "building the test PHC module against $headers_pkg"
rm -rf "$vm/module-phc" && mkdir -p "$vm/module-phc"
cp "$here/phc-module/skytime_vm_phc.c" "$here/phc-module/Kbuild" "$vm/module-phc/"
make -s -C "/usr/src/$headers_pkg" M="$vm/module-phc" modules >&2
phc_ko=$vm/module-phc/skytime_vm_phc.ko

if [[ ! -s $vm/id_ed25519 ]]; then
    ssh-keygen -q -t ed25519 -N '' -C skytime-vm-test -f "$vm/id_ed25519"
fi

image_key=$( (echo "$base_key" "$build_date"; sha256sum "$deb" "$ko" "$phc_ko" "$vm/id_ed25519.pub" "$here"/guest/* \
    "$here/build-image.sh") | sha256sum | cut -c1-16)
image=$vm/$flavour-$image_key
if [[ -s $image/disk.raw ]]; then
    log "image $image_key is up to date"
    echo "$image"
    exit 0
fi

# ---- image layer ----------------------------------------------------------------
log "building image $image_key"
root=$vm/rootfs-$flavour
rm -rf "${vm:?}/$flavour"-* "$root"
mkdir -p "$root" "$image.part"
tar -C "$root" --numeric-owner -xf "$base"

# The test's pulse: the module, loaded at boot with its UART's address.
install -D -m 0644 "$ko" "$root/usr/lib/modules/$kver/extra/skytime_vm_pps.ko"
install -D -m 0644 "$phc_ko" "$root/usr/lib/modules/$kver/extra/skytime_vm_phc.ko"
chroot "$root" depmod -a "$kver"
install -D -m 0644 "$here/guest/skytime-vm-pps.modules-load.conf" \
    "$root/etc/modules-load.d/skytime-vm-pps.conf"
install -D -m 0644 "$here/guest/skytime-vm-pps.modprobe.conf" \
    "$root/etc/modprobe.d/skytime-vm-pps.conf"

# Install the package as a user would.
cp "$deb" "$root/tmp/skytime.deb"
chroot "$root" env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/skytime.deb >&2
rm "$root/tmp/skytime.deb"

# The user's edits, as the packaged config and hardware/README.md say: the
# receiver is on the second UART, and the unit is told to bind it in; the
# pulse has ~100 us of jitter (an emulated UART), so the lock and holdover
# limits are those the guide gives for a PPS with more jitter.
config=$root/etc/skytime/skytime.toml
sed -i -e 's|^device = "/dev/serial0"|device = "/dev/ttyS1"|' \
    -e 's|^holdover_max_root_dispersion_us = 1000.0|holdover_max_root_dispersion_us = 5000.0\nlock_max_error_ns = 2000000.0|' \
    "$config"
grep -q '^device = "/dev/ttyS1"' "$config" ||
    die "the packaged skytime.toml no longer has device = \"/dev/serial0\" to edit"
grep -q '^lock_max_error_ns = 2000000.0' "$config" ||
    die "the packaged skytime.toml no longer has holdover_max_root_dispersion_us = 1000.0 to edit"
install -D -m 0644 "$here/guest/skytimed-ttyS1.conf" \
    "$root/etc/systemd/system/skytimed.service.d/ttyS1.conf"
chroot "$root" skytimed --check-config /etc/skytime/skytime.toml >&2

install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$vm/id_ed25519.pub" "$root/root/.ssh/authorized_keys"

cp "$root/boot/vmlinuz-$kver" "$image.part/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$image.part/initrd.img"
mke2fs -q -t ext4 -L root -d "$root" "$image.part/disk.raw" 2G >&2
rm -rf "$root"
mv "$image.part" "$image"
log "image $image_key ready"
echo "$image"
