#!/usr/bin/env bash
# Runs the commands of every README.md in the repository exactly as written,
# so the documents cannot drift from the code. Fails on the first command that
# fails. The info string of each ```sh block says how its lines are run:
#
#   ```sh                 run each line; it must exit 0
#   ```sh daemon          each line starts a daemon: run it, wait until
#                         `skytimectl status` says locked, run the file's
#                         `sh while-running` blocks, then stop it with SIGINT
#                         (what Ctrl-C sends) and require a clean exit
#   ```sh while-running   run while that file's daemon runs
#   ```sh appliance       needs the real box (GPS hat, root, systemd): not run
#   ```sh suite           the test suite or one of its stages: not run here
#
# Any other word after `sh` is an error, so a typo cannot skip a command.
# Daemons run with a private XDG_RUNTIME_DIR, so they never meet a simulated
# box the user is running (they take the next free ports if one is).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=$(pwd)
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/skytime-readme.XXXXXX")
DAEMON_PGID=""
cleanup() {
    if [ -n "$DAEMON_PGID" ]; then kill -KILL -- "-$DAEMON_PGID" 2>/dev/null || true; fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

LOCK_TIMEOUT_S=${SKYTIME_README_LOCK_TIMEOUT_S:-300}
COMMAND_TIMEOUT_S=${SKYTIME_README_COMMAND_TIMEOUT_S:-600}
SKYTIMECTL="$ROOT/target/release/skytimectl"

# Prints "KIND<TAB>LINE" for every command line of the ```sh blocks of $1.
commands_of() {
    awk '
        /^[[:space:]]*```/ {
            if (inblock) { inblock = 0; next }
            info = $0; sub(/^[[:space:]]*```/, "", info)
            n = split(info, word, /[[:space:]]+/)
            if (word[1] == "sh") { inblock = 1; kind = (n > 1 && word[2] != "") ? word[2] : "run" }
            else { inblock = 2 }
            next
        }
        inblock == 1 {
            line = $0; sub(/^[[:space:]]+/, "", line)
            if (line == "" || line ~ /^#/) next
            print kind "\t" line
        }
    ' "$1"
}

# Runs one documented command line; fails loudly with its output.
# A command this check runs must be harmless on a developer's machine: one
# that needs root or writes to a device (flashing a card, partitioning) is
# refused here, never run; its block belongs under `sh appliance` or `sh suite`.
refuse_dangerous() {
    local file=$1 line=$2
    if grep -Eq '(^|[;&|[:space:]])(sudo|dd|mkfs(\.[a-z0-9]+)?|sfdisk|fdisk|parted|wipefs|mke2fs)([[:space:]]|$)|of=/dev/|>[[:space:]]*/dev/sd' <<<"$line"; then
        echo "FAILED: \`$line\` from $file needs root or writes a device: mark its block \`sh appliance\` or \`sh suite\`; it was not run" >&2
        exit 1
    fi
}

run_line() {
    local file=$1 line=$2
    refuse_dangerous "$file" "$line"
    echo "\$ $line    ($file)"
    if ! (cd "$ROOT" && timeout "$COMMAND_TIMEOUT_S" bash -c "$line") >"$SCRATCH/out" 2>&1; then
        cat "$SCRATCH/out"
        echo "FAILED: \`$line\` from $file" >&2
        exit 1
    fi
    tail -n 5 "$SCRATCH/out"
}

# Starts a documented daemon line, waits for lock, runs the while-running
# lines, stops it with SIGINT and checks its exit.
run_daemon() {
    local file=$1 line=$2 while_running=$3
    refuse_dangerous "$file" "$line"
    local runtime="$SCRATCH/runtime"
    mkdir -p "$runtime"
    echo "\$ $line    ($file; started, then stopped with SIGINT once locked)"
    local log="$SCRATCH/daemon.log"
    # Job control: the daemon gets its own process group, as a terminal's
    # foreground job does, so SIGINT reaches it as Ctrl-C would.
    set -m
    (cd "$ROOT" && XDG_RUNTIME_DIR="$runtime" NO_COLOR=1 exec bash -c "exec $line") >"$log" 2>&1 &
    DAEMON_PGID=$!
    set +m
    local started deadline locked=""
    started=$(date +%s)
    deadline=$(( started + LOCK_TIMEOUT_S ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if ! kill -0 "$DAEMON_PGID" 2>/dev/null; then
            cat "$log"
            echo "FAILED: \`$line\` from $file exited before it locked" >&2
            exit 1
        fi
        if [ -x "$SKYTIMECTL" ] &&
            XDG_RUNTIME_DIR="$runtime" "$SKYTIMECTL" status >"$SCRATCH/status" 2>/dev/null &&
            grep -q '^State *: locked' "$SCRATCH/status"; then
            locked=1
            break
        fi
        sleep 1
    done
    if [ -z "$locked" ]; then
        cat "$log"
        echo "FAILED: \`$line\` from $file did not lock within ${LOCK_TIMEOUT_S}s" >&2
        exit 1
    fi
    grep -E 'simulated instance|serving|state change' "$log" || true
    echo "locked $(( $(date +%s) - started ))s after the start (build check included):"
    head -n 3 "$SCRATCH/status"
    while IFS= read -r follow; do
        [ -n "$follow" ] || continue
        XDG_RUNTIME_DIR="$runtime" run_line "$file" "$follow"
    done <<<"$while_running"
    kill -INT -- "-$DAEMON_PGID"
    local status=0
    wait "$DAEMON_PGID" || status=$?
    DAEMON_PGID=""
    if [ "$status" -ne 0 ]; then
        cat "$log"
        echo "FAILED: \`$line\` from $file exited with status $status after SIGINT" >&2
        exit 1
    fi
    echo "stopped by SIGINT, exit status 0: $(tail -n 1 "$log")"
}

# What the wait for lock asks with (the README's own `cargo run --bin
# skytimectl` is run as written once the daemon is up).
cargo build --release --quiet -p skytimed --bins

checked=0
skipped=0
while IFS= read -r file; do
    listing=$(commands_of "$file")
    [ -n "$listing" ] || continue
    while_running=$(printf '%s\n' "$listing" | awk -F'\t' '$1 == "while-running" { print $2 }')
    has_daemon=$(printf '%s\n' "$listing" | awk -F'\t' '$1 == "daemon"' | wc -l)
    if [ -n "$while_running" ] && [ "$has_daemon" -eq 0 ]; then
        echo "FAILED: $file has \`sh while-running\` commands but no \`sh daemon\` block" >&2
        exit 1
    fi
    while IFS=$'\t' read -r kind line; do
        case "$kind" in
            run) run_line "$file" "$line"; checked=$((checked + 1)) ;;
            daemon) run_daemon "$file" "$line" "$while_running"; checked=$((checked + 1)) ;;
            while-running) checked=$((checked + 1)) ;;
            appliance | suite) skipped=$((skipped + 1)) ;;
            *)
                echo "FAILED: $file: unknown block kind \`sh $kind\` (run, daemon, while-running, appliance, suite)" >&2
                exit 1
                ;;
        esac
    done <<<"$listing"
done < <(git ls-files '*README.md' 'README.md')

echo "README commands: $checked run as written, $skipped need the appliance or are the suite itself"
