#!/usr/bin/env bash
# NMEA parse throughput (sentences/s over the gpsd corpus, and garbage bytes/s),
# printed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p skytime-gnss --example parse_bench
