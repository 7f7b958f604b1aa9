#!/usr/bin/env bash
# The frontier between a holdover bound's tightness and its honesty: what any
# bound that is a multiple of σ reaches on a Gaussian holdover error, with σ
# known or estimated. Printed, not asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet -p skytime-sim --bench holdover_frontier -- "$@"
