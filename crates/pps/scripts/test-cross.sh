#!/usr/bin/env bash
# Runs skytime-pps's tests for the Raspberry Pi targets under qemu-user, so the
# ioctl request numbers are checked with the pointer width of each: armhf
# (32-bit Raspberry Pi OS, 4-byte pointers) and arm64 (8-byte pointers).
# Needs: rustup targets armv7-unknown-linux-gnueabihf and aarch64-unknown-linux-gnu,
# gcc-arm-linux-gnueabihf, gcc-aarch64-linux-gnu, qemu-user. Skips a target whose
# tools are missing (and says so).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm -L /usr/arm-linux-gnueabihf"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
status=0
for spec in "armv7-unknown-linux-gnueabihf arm-linux-gnueabihf-gcc qemu-arm" \
            "aarch64-unknown-linux-gnu aarch64-linux-gnu-gcc qemu-aarch64"; do
  read -r target linker emulator <<<"$spec"
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target" \
     || ! command -v "$linker" >/dev/null || ! command -v "$emulator" >/dev/null; then
    echo "skip $target: needs rustup target $target, $linker and $emulator"
    continue
  fi
  echo "== skytime-pps tests on $target (under $emulator)"
  cargo test -p skytime-pps --target "$target" || status=1
done
exit $status
