#!/bin/sh
# Installs, upgrades, removes and purges a skytime .deb inside a Debian chroot
# and checks what the maintainer scripts did: the user, the configuration's
# owner and mode, the enabled unit, the warning about other time daemons,
# conffile handling and the purge. The binaries are not run, so a .deb of any
# architecture can be tested in a chroot of the build machine's.
#
#   packaging/tests/chroot-install-test.sh DEB CHROOT
#
# CHROOT is a Debian bookworm tree with systemd, udev, adduser and
# systemd-timesyncd, e.g. made by (as root, ~150 MB from the Debian mirror):
#   debootstrap --variant=minbase --include=systemd,udev,adduser,systemd-timesyncd bookworm CHROOT
# The chroot is changed (the package is installed and purged again). Needs root.
# Prints "N passed, N failed".
set -u
deb=${1:?usage: chroot-install-test.sh DEB CHROOT}
root=${2:?usage: chroot-install-test.sh DEB CHROOT}
[ "$(id -u)" -eq 0 ] || { echo "needs root (chroot)" >&2; exit 2; }
[ -x "$root/usr/bin/dpkg" ] || { echo "$root is not a Debian tree" >&2; exit 2; }

passed=0
failed=0
check() {
    desc=$1
    shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1)); echo "ok: $desc"
    else
        failed=$((failed + 1)); echo "FAIL: $desc"
    fi
}
in_root() { chroot "$root" "$@"; }

cp "$deb" "$root/tmp/skytime-test.deb"
# A foreign-architecture .deb: its libc6 dependency names the other
# architecture's libc, which a test chroot does not have.
dpkg_i() {
    in_root env DEBIAN_FRONTEND=noninteractive dpkg --force-architecture --force-depends \
        --force-confold -i /tmp/skytime-test.deb
}

in_root systemctl enable systemd-timesyncd.service >/dev/null 2>&1
dpkg_i > "$root/tmp/install.log" 2>&1
cat "$root/tmp/install.log"
check "install succeeds" grep -q 'Setting up skytime' "$root/tmp/install.log"
check "user skytime exists" in_root getent passwd skytime
check "skytime is in group dialout" sh -c "chroot '$root' id -nG skytime | grep -qw dialout"
check "home is /var/lib/skytime, no login shell" sh -c "chroot '$root' getent passwd skytime | grep -q ':/var/lib/skytime:/usr/sbin/nologin$'"
check "config is root:skytime 0640" sh -c "[ \"\$(chroot '$root' stat -c '%U:%G %a' /etc/skytime/skytime.toml)\" = 'root:skytime 640' ]"
check "config is a conffile" grep -qx '/etc/skytime/skytime.toml' "$root/var/lib/dpkg/info/skytime.conffiles"
check "unit is enabled" test -L "$root/etc/systemd/system/multi-user.target.wants/skytimed.service"
check "unit, sysusers, udev rules and helper are installed" sh -c "test -f '$root/usr/lib/systemd/system/skytimed.service' && test -f '$root/usr/lib/sysusers.d/skytime.conf' && test -f '$root/usr/lib/udev/rules.d/90-skytime.rules' && test -x '$root/usr/lib/skytime/header-uart'"
check "binaries are installed" sh -c "test -x '$root/usr/bin/skytimed' && test -x '$root/usr/bin/skytimectl'"
check "guides are installed" test -f "$root/usr/share/doc/skytime/hardware/README.md"
check "warns about systemd-timesyncd" grep -q 'systemctl disable --now systemd-timesyncd.service' "$root/tmp/install.log"
check "first install says how to start" grep -q "then 'systemctl start skytimed'" "$root/tmp/install.log"

# Upgrade (same version again): local edits to the conffile survive.
echo '# local edit' >> "$root/etc/skytime/skytime.toml"
dpkg_i > "$root/tmp/upgrade.log" 2>&1
check "reinstall succeeds" grep -q 'Setting up skytime' "$root/tmp/upgrade.log"
check "local config edit survives" grep -q '^# local edit$' "$root/etc/skytime/skytime.toml"

in_root dpkg -r skytime > "$root/tmp/remove.log" 2>&1
check "remove succeeds" sh -c "! chroot '$root' dpkg -s skytime 2>/dev/null | grep -q '^Status: install ok installed'"
check "remove disables the unit" test ! -e "$root/etc/systemd/system/multi-user.target.wants/skytimed.service"
check "remove keeps the config" test -f "$root/etc/skytime/skytime.toml"
check "remove deletes the binaries" test ! -e "$root/usr/bin/skytimed"

mkdir -p "$root/var/lib/skytime" && echo 1.5 > "$root/var/lib/skytime/drift"
in_root dpkg -P skytime > "$root/tmp/purge.log" 2>&1
check "purge deletes the config" test ! -e "$root/etc/skytime"
check "purge deletes the state" test ! -e "$root/var/lib/skytime"
check "purge keeps the user" in_root getent passwd skytime

rm -f "$root/tmp/skytime-test.deb"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
