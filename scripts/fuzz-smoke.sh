#!/usr/bin/env bash
# Runs every cargo-fuzz target (crates/*/fuzz) for a short while under
# AddressSanitizer: the parsers of receiver bytes and of NTP packets must never
# crash, whatever arrives. Longer runs: SKYTIME_FUZZ_SECONDS=3600.
#
# cargo-fuzz wants nightly-only sanitizer flags; RUSTC_BOOTSTRAP lets the one
# stable toolchain of this project accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SKYTIME_FUZZ_SECONDS:-20}"
# Narrow decoders (gnss: ubx_frames scans for UBX frames, replies reads the
# answers to configuration, tim_tp decodes one fixed-size payload) cover their
# code within seconds: a quarter of the budget.
short_targets=" ubx_frames tim_tp replies "
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked --quiet cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
for fuzz_dir in crates/*/fuzz; do
    crate_dir=$(dirname "$fuzz_dir")
    for target in $(cd "$crate_dir" && cargo fuzz list); do
        target_seconds=$seconds
        if [[ "$short_targets" == *" $target "* ]]; then
            target_seconds=$(( (seconds + 3) / 4 ))
        fi
        echo "--- fuzz $crate_dir:$target for ${target_seconds}s"
        log=$(mktemp)
        if ! (cd "$crate_dir" && cargo fuzz run "$target" -- \
            -max_total_time="$target_seconds" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
            tail -60 "$log"
            echo "fuzz target $crate_dir:$target failed (crash input kept under $crate_dir/fuzz/artifacts/)"
            exit 1
        fi
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
        rm -f "$log"
    done
done
