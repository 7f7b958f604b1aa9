#!/usr/bin/env bash
# The whole skytime test suite, for a fresh Debian/Ubuntu machine with Rust.
#
# Installs what the tests need when it is missing (chrony and ntpsec-ntpdig as
# real NTP peers, and the tools the other checks use), then runs, in order:
# format and lint checks, every unit, property and integration test, the
# end-to-end tests against the real chrony and ntpdig, every command of every
# README (the first one started, locked and stopped), a short run of every
# fuzz target, the benchmarks (their figures are printed, not asserted), and
# the VM system test (tests/vm: the .deb installed and run on a real kernel
# under qemu) and the aarch64 cross-build.
#
# Nothing here changes the host clock: every daemon under test disciplines a
# simulated clock, and chronyd only ever runs with -Q or -x.
#
#   SKYTIME_SKIP_CROSS=1   skip the aarch64 cross-build and qemu tests
#   SKYTIME_SKIP_BENCH=1   skip the benchmarks
#   SKYTIME_SKIP_FUZZ=1    skip the short fuzz runs
#   SKYTIME_SKIP_README=1  skip running the READMEs' commands
#   SKYTIME_SKIP_VM=1      skip the VM system test (tests/vm/run.sh)
#   SKYTIME_SKIP_IMAGE=1   skip the Raspberry Pi image's static checks,
#                          hat-detection test and boot test
#   SKYTIME_SKIP_IMAGE_BOOT=1  skip only the image's build and QEMU boot test
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n\033[1m=== %s ===\033[0m\n' "$*"; }
started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started ))s"; }

# --- what the tests need -----------------------------------------------------
section "dependencies"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
[ -x /usr/sbin/chronyd ] || missing+=(chrony)
[ -x /usr/bin/ntpdig ] || missing+=(ntpsec-ntpdig)
command -v python3 >/dev/null || missing+=(python3)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ -z "${SKYTIME_SKIP_VM:-}" ]; then
    # tests/vm: image build, guest kernel (and headers for the test module), VM.
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    dpkg-query -W -f='${Status}' linux-headers-cloud-amd64 2>/dev/null | grep -q 'ok installed' ||
        missing+=(linux-headers-cloud-amd64)
    command -v make >/dev/null || missing+=(make)
    # The static leapwatch helper copied into the guest (tests/vm/leapwatch).
    command -v gcc >/dev/null || missing+=(gcc)
    [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
    command -v ssh >/dev/null || missing+=(openssh-client)
    command -v mke2fs >/dev/null || missing+=(e2fsprogs)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    # Installing chrony must not start its service: a running chronyd would
    # discipline this machine's clock. policy-rc.d forbids service starts for
    # the duration of the install (only if none is in place already).
    policy_added=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ -n "$policy_added" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
else
    echo "chrony, ntpdig: present"
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version

# --- static checks -----------------------------------------------------------
section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --release -- -D warnings

# --- tests -------------------------------------------------------------------
# One profile (release) for everything: the end-to-end tests then exercise the
# daemon as it ships, and nothing is compiled twice.
section "unit, property and integration tests"
cargo test --workspace --release --exclude skytime-e2e

section "end-to-end tests against real chrony and ntpdig"
# Two at a time: each runs a real-time daemon; more would measure this
# two-core machine's scheduler rather than skytime.
cargo test --release -p skytime-e2e -- --test-threads=2

if [ -z "${SKYTIME_SKIP_README:-}" ]; then
    section "the READMEs' commands, as written"
    # The README's first command, literally: started, locked (per
    # `skytimectl status`), stopped with SIGINT; then every other command of
    # every README that runs without the appliance. Reuses the release build.
    bash scripts/check-readme-commands.sh
fi

if [ -z "${SKYTIME_SKIP_FUZZ:-}" ]; then
    section "fuzz targets (a short run of each, under AddressSanitizer)"
    bash scripts/fuzz-smoke.sh
fi

# --- benchmarks (printed) ----------------------------------------------------
if [ -z "${SKYTIME_SKIP_BENCH:-}" ]; then
    for bench in scripts/bench-*.sh; do
        [ -e "$bench" ] || continue
        section "benchmark: $bench"
        bash "$bench"
    done
fi

# --- the appliance on a real kernel ------------------------------------------
if [ -z "${SKYTIME_SKIP_VM:-}" ]; then
    section "VM: the .deb installed and run on a real kernel (tests/vm)"
    cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked
    $SUDO env "PATH=$PATH" ${CARGO_TARGET_DIR:+"CARGO_TARGET_DIR=$CARGO_TARGET_DIR"} \
        ${CARGO_HOME:+"CARGO_HOME=$CARGO_HOME"} ${RUSTUP_HOME:+"RUSTUP_HOME=$RUSTUP_HOME"} \
        bash tests/vm/run.sh
fi

# --- cross-build -------------------------------------------------------------
if [ -z "${SKYTIME_SKIP_CROSS:-}" ] && [ -x scripts/ci-cross.sh ]; then
    section "aarch64 cross-build, unit tests under qemu, .deb"
    bash scripts/ci-cross.sh
fi

# --- Raspberry Pi SD image ------------------------------------------------------
# Static checks of what the image puts on a Pi (overlays on Debian's Pi DTBs,
# pps-gpio.ko's vermagic; Debian's packages cached in target/image) and its
# hat detection against a fake EEPROM, UART and PPS. The full build and QEMU
# boot test is image/test.sh (root, ~30 min the first time).
if [ -z "${SKYTIME_SKIP_IMAGE:-}" ]; then
    section "Raspberry Pi image: static checks, hat detection"
    command -v fdtoverlay >/dev/null || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends device-tree-compiler
    command -v aarch64-linux-gnu-gcc >/dev/null || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu
    bash image/check-static.sh
    bash image/test-detect-hat.sh
fi

# The image built (image/build.sh: Debian's packages under qemu-user, layers
# cached in target/image, so a re-run with unchanged inputs only boots) and
# booted under qemu-system-aarch64 -M virt (TCG): first boot, hat detection's
# fallback, skytimed from the shipped unit answering the host's ntpdig with
# LI=3. About 40 min on a clean 2-core machine, ~10 min with the cache.
# CI gives the whole suite 90 min on 2 cores: the stage starts only while the
# time left covers it (45 min used at most with a cold cache, 75 with layers
# cached), and is cut at 85 min; a stage that does not fit says so and how to
# run it, rather than overrun. Any failure of the test itself fails the suite.
image_cache_warm() { compgen -G "${CARGO_TARGET_DIR:-target}/image/out-*/*.img.zst" >/dev/null; }
image_boot_fits() {
    local used=$(( $(date +%s) - started ))
    [ "$used" -le 2700 ] || { image_cache_warm && [ "$used" -le 4500 ]; }
}
image_deferred() {
    section "Raspberry Pi image: build and QEMU boot DEFERRED"
    echo "$1; run it on its own with: sudo bash image/test.sh"
}
if [ -z "${SKYTIME_SKIP_IMAGE:-}" ] && [ -z "${SKYTIME_SKIP_IMAGE_BOOT:-}" ] && ! image_boot_fits; then
    image_deferred "the suite has used $(elapsed) of CI's 90 min, too much for the image build and boot (up to 40 min cold)"
elif [ -z "${SKYTIME_SKIP_IMAGE:-}" ] && [ -z "${SKYTIME_SKIP_IMAGE_BOOT:-}" ]; then
    section "Raspberry Pi image: build and QEMU boot (image/test.sh)"
    image_started=$(date +%s)
    image_limit_s=$(( 5100 - (image_started - started) ))
    cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked
    image_rc=0
    timeout -k 30 "$image_limit_s" $SUDO env "PATH=$PATH" ${CARGO_TARGET_DIR:+"CARGO_TARGET_DIR=$CARGO_TARGET_DIR"} \
        ${CARGO_HOME:+"CARGO_HOME=$CARGO_HOME"} ${RUSTUP_HOME:+"RUSTUP_HOME=$RUSTUP_HOME"} \
        bash image/test.sh || image_rc=$?
    if [ "$image_rc" -eq 124 ] || [ "$image_rc" -eq 137 ]; then
        image_deferred "the image build and boot did not finish in the ${image_limit_s}s CI had left (its cached layers are kept)"
    elif [ "$image_rc" -ne 0 ]; then
        echo "image build and boot test FAILED (exit $image_rc)"
        exit "$image_rc"
    else
        echo "image build and boot test: $(( $(date +%s) - image_started ))s"
    fi
fi

section "all passed in $(elapsed)"
