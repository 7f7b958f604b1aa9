#!/usr/bin/env bash
# Discipline accuracy over every scenario in scenarios/, in simulated time:
# each scenario's JSON summary, its targets (scenarios/targets.toml) met or
# missed, and the wall time. Printed, not asserted; pass --strict to fail on a
# missed target.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet -p skytime-sim --bench scenarios -- "$@"
