#!/bin/bash
# Builds the VM test's guest: a Debian bookworm amd64 root filesystem with the
# Debian cloud kernel, the skytime .deb installed with dpkg -i, the test PPS
# module, and an ext4 disk image made without loop devices (mke2fs -d).
#
#   tests/vm/build-image.sh          # prints the image directory on stdout
#
# Two cached layers under ${CARGO_TARGET_DIR:-target}/vm/, each keyed by a
# hash of its inputs, so an unchanged image is not rebuilt:
#   base-KEY.tar   mmdebstrap output (packages, network, console): minutes
#   image-KEY/     base + module + .deb + the user's config edits: seconds
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
log "building the amd64 .deb (cargo deb, release profile)"
rm -f "$vm"/deb/skytime_*.deb
(cd "$repo" && cargo deb -p skytimed --output "$vm/deb/") >&2
deb=$(ls -1 "$vm"/deb/skytime_*_amd64.deb | head -1)

log "building the test PPS module against $headers_pkg"
rm -rf "$vm/module" && mkdir -p "$vm/module"
cp "$here/pps-module/skytime_vm_pps.c" "$here/pps-module/Kbuild" "$vm/module/"
make -s -C "/usr/src/$headers_pkg" M="$vm/module" modules >&2
ko=$vm/module/skytime_vm_pps.ko

if [[ ! -s $vm/id_ed25519 ]]; then
    ssh-keygen -q -t ed25519 -N '' -C skytime-vm-test -f "$vm/id_ed25519"
fi

image_key=$( (echo "$base_key"; sha256sum "$deb" "$ko" "$vm/id_ed25519.pub" "$here"/guest/* \
    "$here/build-image.sh") | sha256sum | cut -c1-16)
image=$vm/image-$image_key
if [[ -s $image/disk.raw ]]; then
    log "image $image_key is up to date"
    echo "$image"
    exit 0
fi

# ---- image layer ----------------------------------------------------------------
log "building image $image_key"
rm -rf "$vm"/image-* "$vm/rootfs"
mkdir -p "$vm/rootfs" "$image.part"
root=$vm/rootfs
tar -C "$root" --numeric-owner -xf "$base"

# The test's pulse: the module, loaded at boot with its UART's address.
install -D -m 0644 "$ko" "$root/usr/lib/modules/$kver/extra/skytime_vm_pps.ko"
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
