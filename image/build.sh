#!/usr/bin/env bash
# Builds the skytime Raspberry Pi SD image (arm64, Debian bookworm), one
# command, no loop devices:
#
#   image/build.sh            # prints the image directory on stdout
#
# What goes in: Debian's linux-image-arm64 and raspi-firmware (upstream kernel
# mode: Debian's DTBs for Pi 3/3B+/Zero 2 W/4/400/CM4), systemd, udev, SSH,
# our arm64 .deb, pps-gpio.ko built from Debian's own kernel source (Debian
# builds without CONFIG_PPS_CLIENT_GPIO), our device-tree overlays wired in
# config.txt, and the first-boot units (image/rootfs/).
# What comes out, under ${CARGO_TARGET_DIR:-target}/image/out-KEY/:
#   skytime-pi-arm64.img.zst, its .sha256, and for the boot test the kernel,
#   initrd and the uncompressed .img.
#
# Layers, each cached by a hash of its inputs:
#   base-KEY.tar   mmdebstrap (packages only): minutes, rebuilt when the
#                  package list, the kernel ABI or this script's base part change
#   out-KEY/       base + .deb + module + image/rootfs + FAT + ext4: ~1 minute
#
# Needs root (chroot, file ownership), mmdebstrap, qemu-user-static (binfmt),
# dtc, mtools, dosfstools, fdisk, e2fsprogs, zstd, cargo-deb, the aarch64
# cross gcc; installs the missing ones with apt-get.
set -euo pipefail
# shellcheck source=image/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
started=$SECONDS
[[ $(id -u) -eq 0 ]] || die "needs root (chroot into the image, root-owned files)"

ensure_host_tools() {
    local tools=(mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static dtc:device-tree-compiler
        fdtoverlay:device-tree-compiler mcopy:mtools mkfs.vfat:dosfstools sfdisk:fdisk
        mke2fs:e2fsprogs zstd:zstd aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu
        arch-test:arch-test) missing=() tool
    for tool in "${tools[@]}"; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
    # arm64 binaries in the chroot run through qemu-user: binfmt_misc must be
    # mounted and qemu-aarch64 registered (the F flag keeps the interpreter
    # usable inside the chroot).
    if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
        grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register ||
            die "cannot register qemu-aarch64 with binfmt_misc"
    fi
}

ensure_host_tools
apt_setup
abi=$(kernel_abi)
[[ -n $abi ]] || die "cannot resolve linux-image-arm64's kernel ABI"
pkgs=$(unpack_kernel_packages "$abi")
log "kernel $abi"

# ---- base layer ------------------------------------------------------------------
packages="systemd,systemd-sysv,udev,kmod,initramfs-tools,linux-image-$abi,raspi-firmware,"
packages+="openssh-server,fdisk,e2fsprogs,dosfstools,device-tree-compiler,util-linux,ca-certificates,"
packages+="pps-tools,less,tzdata"
base_key=$( (echo "$packages" "$mirror" "$security_mirror" base-v1) | sha256sum | cut -c1-16)
base=$cache/base-$base_key.tar
if [[ ! -s $base ]]; then
    log "base layer $base_key: mmdebstrap arm64 bookworm (several minutes)"
    rm -f "$cache"/base-*.tar
    t0=$SECONDS
    # The firmware partition's mount point must exist for raspi-firmware's
    # hooks; the kernel hooks run in the chroot, where they skip the mount check.
    # MODULES=list from the start: the kernel's own initramfs run under
    # qemu-user takes minutes with Debian's MODULES=most. (The image layer
    # makes the initramfs again with the module list, so this changes no
    # output and is not part of the key.)
    mmdebstrap --architectures=arm64 --variant=apt --format=tar \
        --components="main non-free-firmware" --include="$packages" \
        --setup-hook='mkdir -p "$1/boot/firmware" "$1/etc/initramfs-tools/conf.d"' \
        --setup-hook="copy-in $image_dir/rootfs/etc/initramfs-tools/conf.d/skytime-modules /etc/initramfs-tools/conf.d/" \
        --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
        --customize-hook='echo skytime > "$1/etc/hostname"' \
        --customize-hook='printf "127.0.0.1\tlocalhost\n127.0.1.1\tskytime\n" > "$1/etc/hosts"' \
        bookworm "$base.part" "deb $mirror bookworm main non-free-firmware" \
        "deb $mirror bookworm-updates main non-free-firmware" \
        "deb $security_mirror bookworm-security main non-free-firmware" >&2
    mv "$base.part" "$base"
    log "base layer built in $((SECONDS - t0))s ($(du -h "$base" | cut -f1))"
fi

# ---- inputs of the image layer -----------------------------------------------------
log "arm64 .deb (cargo deb, release profile)"
rm -f "$cache"/deb/skytime_*_arm64.deb
(
    cd "$repo"
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
    cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked
    cargo deb -p skytimed --target aarch64-unknown-linux-gnu --output "$cache/deb/"
) >&2
deb=$(ls -1 "$cache"/deb/skytime_*_arm64.deb | head -n1)

ko=$(build_pps_gpio_module "$abi" "$pkgs" "$cache/module")
build_overlays "$cache/overlays"

image_key=$( (echo "$base_key $abi"; sha256sum "$deb" "$ko" "$cache"/overlays/*.dtbo "$image_dir/build.sh";
    find "$image_dir/rootfs" -type f | sort | xargs sha256sum) | sha256sum | cut -c1-16)
out=$cache/out-$image_key
if [[ -s $out/skytime-pi-arm64.img.zst ]]; then
    log "image $image_key is up to date"
    echo "$out"
    exit 0
fi

# ---- image layer ---------------------------------------------------------------------
log "image $image_key"
rm -rf "$cache"/out-* "$cache/rootfs"
root=$cache/rootfs
mkdir -p "$root" "$out.part"
tar -C "$root" --numeric-owner -xf "$base"

# Our files, then the package as a user would install it.
cp -a --no-preserve=ownership "$image_dir/rootfs/." "$root/"
install -D -m 0644 -t "$root/usr/lib/skytime-image/overlays" "$cache"/overlays/*.dtbo
install -D -m 0644 "$ko" "$root/usr/lib/modules/$abi/extra/pps-gpio.ko"
chroot "$root" depmod -a "$abi"
cp "$deb" "$root/tmp/skytime.deb"
chroot "$root" env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/skytime.deb >&2
rm "$root/tmp/skytime.deb"
# The packaged config names /dev/serial0, which Raspberry Pi OS creates and
# Debian does not; on this image the header UART is the PL011, ttyAMA0.
sed -i 's|^device = "/dev/serial0"|device = "/dev/ttyAMA0"|' "$root/etc/skytime/skytime.toml"
grep -q '^device = "/dev/ttyAMA0"' "$root/etc/skytime/skytime.toml" ||
    die "the packaged skytime.toml no longer has device = \"/dev/serial0\" to replace"
chroot "$root" skytimed --check-config /etc/skytime/skytime.toml >&2
chroot "$root" systemctl enable skytime-firstboot.service skytime-detect-hat.service systemd-networkd.service >&2
# No machine identity and no SSH host keys in the image: each card makes its own.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
# The initramfs with MODULES=list; its post-update hooks (raspi-firmware's,
# then ours) fill /boot/firmware: kernel, initrd, DTBs with symbols,
# overlays, config.txt, cmdline.txt.
# The hooks need /proc to see that they run in a chroot (ischroot), else they
# insist on /boot/firmware being a mount point.
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
chroot "$root" update-initramfs -u -k "$abi" >&2
chroot "$root" sh -c 'DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware '"$abi"' /boot/vmlinuz-'"$abi" >&2
chroot "$root" /usr/lib/skytime-image/update-firmware /boot/firmware >&2
umount "$root/proc"
firmware=$root/boot/firmware
grep -q '^dtoverlay=skytime-uart-gps' "$firmware/config.txt" || die "config.txt lacks our overlays"
# The FAT partition is also the user's settings folder: a commented example.
cat > "$firmware/skytime-settings.txt" <<'EOF'
# skytime first-boot settings: edit on any computer before the first boot.
# Remove the '#' in front of a line to use it. See hardware/README.md,
# "Flash an image". Also read at first boot, when present in this folder:
#   authorized_keys   SSH public keys allowed to log in as root
#   skytime.toml      a complete skytime config, used instead of the detected one
#hostname=skytime
#address=192.168.1.10/24
#gateway=192.168.1.1
#dns=192.168.1.1
EOF

# Boot-test artefacts: the kernel and initrd as the firmware would load them.
cp "$firmware/vmlinuz-$abi" "$out.part/vmlinuz"
cp "$firmware/initrd.img-$abi" "$out.part/initrd.img"
echo "$abi" > "$out.part/kernel-abi"

# ---- partitions, without loop devices --------------------------------------------------
fat_mib=256
fat=$out.part/fat.img
rm -f "$fat"
mkfs.vfat -n SKYTIMEBOOT -F 32 -C "$fat" $((fat_mib * 1024)) >/dev/null
(cd "$firmware" && mcopy -s -i "$fat" ./* ::/)
# A copy for the static checks (config.txt against the files); the root
# filesystem keeps only the empty mount point.
cp -a "$firmware" "$out.part/firmware"
find "$firmware" -mindepth 1 -delete
used_mib=$(du -sm "$root" | cut -f1)
root_mib=$((used_mib * 13 / 10 + 256))
ext4=$out.part/root.img
rm -f "$ext4"
# -q still prints the -d copy's progress on stdout, whose last line is this
# script's answer: errors only, on stderr.
mke2fs -q -t ext4 -L skytime-root -E root_owner=0:0 -d "$root" "$ext4" "${root_mib}M" >/dev/null
rm -rf "$root"

img=$out.part/skytime-pi-arm64.img
start_sectors=8192 # 4 MiB alignment, as SD cards erase
fat_sectors=$((fat_mib * 2048))
root_start=$((start_sectors + fat_sectors))
root_sectors=$((root_mib * 2048))
truncate -s $(((root_start + root_sectors) * 512)) "$img"
sfdisk -q "$img" <<EOF
label: dos
$start_sectors,$fat_sectors,c,*
$root_start,$root_sectors,83
EOF
dd if="$fat" of="$img" bs=1M seek=$((start_sectors / 2048)) conv=notrunc,sparse status=none
dd if="$ext4" of="$img" bs=1M seek=$((root_start / 2048)) conv=notrunc,sparse status=none
rm -f "$fat" "$ext4"

# Level 9 keeps CI quick; a release build sets SKYTIME_IMAGE_ZSTD_LEVEL=19.
zstd_level=${SKYTIME_IMAGE_ZSTD_LEVEL:-9}
log "compressing (zstd -$zstd_level)"
zstd -q -T0 -"$zstd_level" -f "$img" -o "$img.zst"
(cd "$out.part" && sha256sum skytime-pi-arm64.img.zst > skytime-pi-arm64.img.zst.sha256)
mv "$out.part" "$out"
log "image $image_key: $(du -h --apparent-size "$out/skytime-pi-arm64.img" | cut -f1) raw," \
    "$(du -h "$out/skytime-pi-arm64.img.zst" | cut -f1) compressed, built in $((SECONDS - started))s"
echo "$out"
