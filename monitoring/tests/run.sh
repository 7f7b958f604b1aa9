#!/bin/sh
# Checks both rule files and runs their unit tests. Needs promtool (Debian:
# apt-get install prometheus). Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" || exit 1
if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool not found (apt-get install prometheus); skipping" >&2
    exit 0
fi
passed=0
failed=0
run() {
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $*"; fi
}
run promtool check rules ../skytime-alerts.yml ../chrony-alerts.yml
run promtool test rules skytime-alerts.test.yml
run promtool test rules chrony-alerts.test.yml
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
