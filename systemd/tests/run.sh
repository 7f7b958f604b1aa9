#!/bin/sh
# Static checks of the systemd, sysusers and udev files. Needs systemd-analyze
# and systemd-sysusers (Debian: apt-get install systemd); udevadm and shellcheck
# are used when present. Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/..
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL: $1"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if command -v systemd-analyze >/dev/null 2>&1; then
    # Exposure is reported in tenths: 20 is "2.0".
    if systemd-analyze security --offline=yes --threshold=20 "$dir/skytimed.service" > "$work/security" 2>&1; then
        pass "skytimed.service $(grep -o 'Overall exposure level.*' "$work/security")"
    else
        cat "$work/security"
        fail "skytimed.service exposure over 2.0"
    fi
    # verify: the only acceptable complaint is the daemon not being installed here.
    systemd-analyze verify --man=no "$dir/skytimed.service" > "$work/verify" 2>&1
    if grep -v 'Command /usr/bin/skytimed is not executable' "$work/verify" | grep -q .; then
        cat "$work/verify"
        fail "systemd-analyze verify skytimed.service"
    else
        pass "systemd-analyze verify skytimed.service"
    fi
else
    echo "systemd-analyze not found; skipping unit checks" >&2
fi

if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$work/root/etc"
    if systemd-sysusers --root="$work/root" "$dir/skytime.sysusers" > "$work/sysusers" 2>&1 \
        && grep -q '^skytime:x:[0-9]*:[0-9]*:.*:/var/lib/skytime:/usr/sbin/nologin$' "$work/root/etc/passwd" \
        && grep -q '^dialout:x:[0-9]*:.*skytime' "$work/root/etc/group"; then
        pass "skytime.sysusers creates skytime in dialout"
    else
        cat "$work/sysusers"
        fail "skytime.sysusers"
    fi
fi

if command -v udevadm >/dev/null 2>&1 && [ -w /run ] && [ -e /sys/class/tty/tty0 ]; then
    # udevadm test reads rules from /run/udev/rules.d among others; the file is
    # removed again at once. Any parse error names the file and line.
    mkdir -p /run/udev/rules.d
    rules=/run/udev/rules.d/90-skytime-selftest.rules
    cp "$dir/90-skytime.rules" "$rules"
    udevadm test --action=add /sys/class/tty/tty0 > "$work/udev" 2>&1
    rm -f "$rules"
    if grep '90-skytime-selftest.rules' "$work/udev" | grep -v "Unknown group 'skytime'" | grep -qiE 'invalid|error|unknown|ignoring'; then
        grep '90-skytime-selftest.rules' "$work/udev"
        fail "udev rules parse"
    else
        pass "udev rules parse"
    fi
fi

if "$here/header-uart-test.sh" > "$work/header-uart" 2>&1; then
    pass "header-uart helper: $(tail -n1 "$work/header-uart")"
else
    cat "$work/header-uart"
    fail "header-uart helper"
fi

if command -v shellcheck >/dev/null 2>&1; then
    if shellcheck "$dir/skytime-header-uart" "$here"/*.sh "$dir/../packaging/debian/postinst" \
        "$dir/../packaging/debian/prerm" "$dir/../packaging/debian/postrm" "$dir/../scripts/ci-cross.sh" \
        "$dir/../packaging/tests/chroot-install-test.sh" "$dir/../monitoring/tests/run.sh"; then
        pass "shellcheck"
    else
        fail "shellcheck"
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
