#!/usr/bin/env bash
# Cross-build skytime for the Raspberry Pi and test it under qemu-user.
#
#   1. toolchain: rustup targets, cross gcc, qemu-user and cargo-deb, each
#      installed only when missing (safe to run again and again)
#   2. aarch64 (64-bit Raspberry Pi OS): the workspace's unit tests (each
#      crate's lib and bins), run under qemu-aarch64
#   3. armv7/armhf (32-bit Raspberry Pi OS): skytime-pps's tests (the PPS ioctl
#      numbers differ on 32-bit) under qemu-arm
#   4. the arm64 .deb (and its -dbgsym .ddeb) with cargo-deb, into artifacts/;
#      the armhf ones too with SKYTIME_CROSS_ARMHF_DEB=1 (a second full release
#      build, left out by default to keep the run well inside 20 minutes on
#      two cores)
#
# Environment:
#   CARGO_TARGET_DIR          build directory (default: <repo>/target); sharing
#                             it with host builds reuses build scripts and
#                             proc-macros
#   SKYTIME_CROSS_ARMHF=0     skip everything armhf
#   SKYTIME_CROSS_ARMHF_DEB=1 also build the armhf .deb
#   SKYTIME_CROSS_TESTS=0     build only, run no tests
#   SKYTIME_CROSS_EXCLUDE     space-separated packages left out of the aarch64
#                             test run (default: skytime-e2e, which drives real
#                             chrony/ntpdig on the host)
#   SKYTIME_CROSS_INTEGRATION=1  also run the crates' integration tests
#                             (tests/*.rs); several need what qemu-user does
#                             not emulate (pseudo-terminal termios ioctls,
#                             SO_TIMESTAMPNS), so they are off by default
#   SKYTIME_CROSS_TEST_ARGS   arguments for the test binaries (default: skips
#                             the tests that qemu-user cannot run, see below)
#
# Needs root or sudo for apt-get when packages are missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
artifacts=$repo/artifacts
armhf=${SKYTIME_CROSS_ARMHF:-1}
armhf_deb=${SKYTIME_CROSS_ARMHF_DEB:-0}
run_tests=${SKYTIME_CROSS_TESTS:-1}
test_targets=(--lib --bins)
if [[ ${SKYTIME_CROSS_INTEGRATION:-0} == 1 ]]; then
    test_targets+=(--tests)
fi
read -r -a exclude <<< "${SKYTIME_CROSS_EXCLUDE:-skytime-e2e}"
# qemu-user answers ioctls it does not emulate (the RFC 2783 PPS_* ones among
# them) with ENOSYS, where a real kernel says ENOTTY; this test checks the
# real kernel's answer, and runs natively in the host test suite.
# It also refuses the kernel's socket timestamping options (SO_TIMESTAMPNS,
# SO_TIMESTAMPING: ENOPROTOOPT), which skytime-netio's socket tests need;
# they too run natively in the host test suite.
qemu_skips="--skip a_non_pps_node_is_refused_with_a_clear_message"
qemu_skips+=" --skip a_batch_reads_payload_source_and_kernel_timestamp"
qemu_skips+=" --skip a_requested_transmit_timestamp_comes_back_with_its_id"
read -r -a test_args <<< "${SKYTIME_CROSS_TEST_ARGS:-$qemu_skips}"

aarch64="aarch64-unknown-linux-gnu"
armv7="armv7-unknown-linux-gnueabihf"

# Linkers, C compilers and qemu runners for the two targets. The qemu runner
# needs -L so the dynamic loader and libc come from the cross sysroot.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm -L /usr/arm-linux-gnueabihf"
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar

script_start=$SECONDS
section_start=$SECONDS
section_name=""

section() {
    end_section
    section_name=$1
    section_start=$SECONDS
    printf '\n======== %s ========\n' "$section_name"
}

end_section() {
    if [[ -n $section_name ]]; then
        printf -- '-------- %s: %ds\n' "$section_name" $((SECONDS - section_start))
    fi
}

die() {
    printf 'ci-cross: %s\n' "$*" >&2
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# apt packages not yet installed, among the arguments.
missing_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

ensure_packages() {
    local missing
    mapfile -t missing < <(missing_packages "$@")
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "apt: all present: $*"
        return
    fi
    echo "apt: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_target() {
    if rustup target list --installed | grep -qx "$1"; then
        echo "rustup: $1 present"
    else
        rustup target add "$1"
    fi
}

# The highest GLIBC_x.y symbol version a binary needs, e.g. 2.34.
max_glibc() {
    "$1" -T "$2" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n | tail -n1
}

# Checks that the .deb's declared libc6 floor covers what its binaries need.
check_deb() {
    local deb=$1 objdump=$2 work need declared
    work=$(mktemp -d)
    dpkg-deb -x "$deb" "$work"
    dpkg-deb -I "$deb" control
    need=$(max_glibc "$objdump" "$work/usr/bin/skytimed")
    declared=$(dpkg-deb -f "$deb" Depends | sed -n 's/.*libc6 (>= \([0-9.]*\)).*/\1/p')
    echo "glibc needed by skytimed: $need; declared: ${declared:-none}"
    if [[ -n $declared ]] && dpkg --compare-versions "$need" gt "$declared"; then
        rm -rf "$work"
        die "$deb: binaries need glibc $need but Depends declares libc6 (>= $declared)"
    fi
    file "$work/usr/bin/skytimed" "$work/usr/bin/skytimectl"
    dpkg-deb -c "$deb" | awk '{print $1, $6}'
    rm -rf "$work"
}

section "toolchain"
command -v rustup >/dev/null || die "rustup is required (the Rust toolchain is managed by rustup)"
packages=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user file)
if [[ $armhf == 1 ]]; then
    packages+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
fi
ensure_packages "${packages[@]}"
ensure_target "$aarch64"
if [[ $armhf == 1 ]]; then
    ensure_target "$armv7"
fi
if cargo deb --version >/dev/null 2>&1; then
    echo "cargo-deb: $(cargo deb --version)"
else
    echo "cargo-deb: installing"
    cargo install cargo-deb --locked
fi
rustc --version
qemu-aarch64 --version | head -n1
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR"

exclude_args=()
for pkg in "${exclude[@]}"; do
    exclude_args+=(--exclude "$pkg")
done

if [[ $run_tests == 1 ]]; then
    # Release profile: the .deb below reuses every dependency built here.
    # Doctests are left out: they do not cross-compile on stable everywhere.
    section "aarch64: build tests (release)"
    cargo test --release --target "$aarch64" --workspace "${exclude_args[@]}" "${test_targets[@]}" --no-run

    # --no-fail-fast: one failing crate must not hide another's failures.
    section "aarch64: run tests under qemu-aarch64"
    cargo test --release --target "$aarch64" --workspace "${exclude_args[@]}" "${test_targets[@]}" \
        --no-fail-fast -- "${test_args[@]}"
fi

if [[ $armhf == 1 ]]; then
    if [[ $run_tests == 1 ]]; then
        # Debug profile: overflow checks on, where 32-bit usize matters most.
        section "armv7: skytime-pps and skytime-kernel tests under qemu-arm (32-bit timex and ioctl layouts)"
        cargo test --target "$armv7" -p skytime-pps -p skytime-kernel "${test_targets[@]}" --no-fail-fast -- "${test_args[@]}"
    fi
fi

section "aarch64: .deb"
mkdir -p "$artifacts"
rm -f "$artifacts"/skytime_*_arm64.deb "$artifacts"/skytime-dbgsym_*_arm64.ddeb
cargo deb -p skytimed --target "$aarch64" --output "$artifacts/"
deb_arm64=$(ls -1 "$artifacts"/skytime_*_arm64.deb)
check_deb "$deb_arm64" aarch64-linux-gnu-objdump

if [[ $armhf == 1 && $armhf_deb == 1 ]]; then
    section "armhf: .deb"
    rm -f "$artifacts"/skytime_*_armhf.deb "$artifacts"/skytime-dbgsym_*_armhf.ddeb
    cargo deb -p skytimed --target "$armv7" --output "$artifacts/"
    deb_armhf=$(ls -1 "$artifacts"/skytime_*_armhf.deb)
    check_deb "$deb_armhf" arm-linux-gnueabihf-objdump
fi

end_section
section_name=""
printf '\n======== done in %ds ========\n' $((SECONDS - script_start))
ls -l "$artifacts"
