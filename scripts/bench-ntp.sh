#!/usr/bin/env bash
# NTP server benchmark on loopback: skytimed --simulate, chronyd -x and a bare
# recvmmsg/sendmmsg UDP reflector (the floor of this machine), plus the
# skytime-ntp library server alone, all in one run. Prints, for each, the
# highest rate with under 1 % loss, p50/p99 response time and T3-T2, and the
# server's CPU microseconds per reply at a fixed 100k requests/s read from
# /proc/PID/stat. First, what NTS costs: in process (nts-cost) and over UDP
# (nts-udp: CPU per NTS reply beside a plain one, and the ratio). Then
# `cost`: both load shapes at 1 and 2 threads against the reflector, and the
# transmit-stamp gap beside chronyd's.
#
# Every run is bounded (trials of about a second, a few seconds of fixed load)
# and sends only to 127.0.0.1, from client sources in 127.1.x.y.
#
# Usage: scripts/bench-ntp.sh [ntpbench compare options]
#   --workers 1,2,4,8   worker threads for skytimed, the library server and the
#                       reflector (chronyd is single-threaded). This machine has
#                       2 cores; on a bigger one, pass more to see the scaling.
#   --cpu-rate 100000   fixed rate of the CPU-per-reply run
#   --trial-ms 1000     length of each max-rate trial
#   --rounds 2          rounds over all servers (summary: best max rate, median CPU)
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet -p skytime-ntpbench -p skytimed

args=(compare --skytimed "$target/release/skytimed")
if chronyd_bin="$(command -v chronyd || true)" && [ -n "$chronyd_bin" ]; then
    args+=(--chronyd "$chronyd_bin")
elif [ -x /usr/sbin/chronyd ]; then
    args+=(--chronyd /usr/sbin/chronyd)
else
    echo "chronyd not found: install chrony to include it in the comparison" >&2
fi
# Two interleaved rounds by default: a shared machine's noise only ever lowers
# a max rate, so the summary keeps each server's best.
case " $* " in
    *" --rounds"*) ;;
    *) args+=(--rounds 2) ;;
esac
# NTS: CPU per NTS reply beside a plain one of the same policy (same run,
# in process), and NTS-KE handshakes per second of server CPU on one core.
"$target/release/ntpbench" nts-cost
# NTS over UDP: the library server's CPU per authenticated NTS reply beside
# its CPU per plain reply, same process and rate, alternating runs, at
# 100k/s from 64 sources and 25.6k/s from 256 (about 30 s; sources 127.12.x.y).
"$target/release/ntpbench" nts-udp
# CPU per valid reply against the reflector at equal thread counts (1 and 2),
# in the burst shape and a steady-paced 256-source one (sources 127.4.x.y),
# and the transmit-stamp gap clients feel beside chronyd's (about 3 min).
cost_args=(cost --skytimed "$target/release/skytimed")
[ -n "${chronyd_bin:-}" ] && cost_args+=(--chronyd "$chronyd_bin")
[ -z "${chronyd_bin:-}" ] && [ -x /usr/sbin/chronyd ] && cost_args+=(--chronyd /usr/sbin/chronyd)
"$target/release/ntpbench" "${cost_args[@]}"
exec "$target/release/ntpbench" "${args[@]}" "$@"
