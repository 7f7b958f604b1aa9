# The VM test's steps, sourced by run.sh once the guest and the feeder are
# started. Every wait is a bounded poll that fails with a message; every step
# adds one row to the results table printed at the end.
#
# "Served bad": an answer with LI != 3 and stratum < 16 whose offset from the
# host (true time) is beyond BAD_OFFSET_US plus ntpdig's own "+/-" (half the
# round trip plus the root dispersion: all that a client can know of it; on
# a busy host, ntpdig's Python and QEMU's user-mode network add milliseconds,
# not always symmetrically). Any one fails the run.

BAD_OFFSET_US=${SKYTIME_VM_BAD_OFFSET_US:-5000}
BOOT_TIMEOUT_S=${SKYTIME_VM_BOOT_TIMEOUT_S:-360}
LOCK_TIMEOUT_S=${SKYTIME_VM_LOCK_TIMEOUT_S:-300}
# +25 ppm in adjtimex units (ppm << 16).
WRONG_FREQ=$((25 * 65536))

rows=()
failures=0
# Probes run in command substitutions (subshells): they count in files.
: >"$run/served_synced" >"$run/served_bad"

# One table row: step, PASS/FAIL, host view, kernel view, note.
row() {
    rows+=("$1|$2|$3|$4|$5")
    [[ $2 == PASS ]] || failures=$((failures + 1))
    log "$2 $1: host[$3] kernel[$4] $5"
}

gssh() {
    timeout 90 ssh -n -i "$vm/id_ed25519" -p "$ssh_port" -o BatchMode=yes -o ConnectTimeout=20 \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        root@127.0.0.1 "$@"
}

# jfield JSON EXPR: evaluates a Python expression over j (the parsed JSON).
jfield() {
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# ntp_probe SAMPLES: asks the guest with ntpdig; counts answers served as
# synchronised, and those that were wrong. Prints the JSON. All requests
# come from QEMU's 10.0.2.2; the guest's default rate limit (eight a second,
# bursts of 255) is far above what the test and chronyd -x send together.
ntp_probe() {
    local out
    date +%s >"$run/last_probe"
    out=$(python3 "$here/ntp_probe.py" ntpdig "$ntp_port" "${1:-1}")
    if [[ $(jfield "$out" 'j["ok"] and j["li"] != 3 and j["stratum"] < 16') == True ]]; then
        echo "$out" >>"$run/served_synced"
        if [[ $(jfield "$out" "j['max_excess_us'] > $BAD_OFFSET_US") == True ]]; then
            echo "$out" >>"$run/served_bad"
            log "SERVED BAD: $out"
        fi
    fi
    echo "$out"
}

# host_view JSON: "stratum S LI L offset O us (jitter J us, N samples)".
host_view() {
    jfield "$1" '"no answer" if not j["ok"] else "stratum %d LI %d offset %+.0f +/- %.0f us (mean %+.0f sd %.0f, n=%d%s)" % (j["stratum"], j["li"], j["best_offset_us"], j["bound_us"], j["offset_us"], j["jitter_us"], j["samples"], "" if j["client"] == "ntpdig" else ", " + j["client"])'
}

# kernel_view: the guest kernel clock's state from adjtimex -p.
kernel_view() {
    gssh adjtimex -p 2>/dev/null | awk '
        $1 == "status:" { st = $2 }
        $1 == "maxerror:" { maxe = $2 }
        $1 == "esterror:" { este = $2 }
        $1 == "frequency:" { f = $2 }
        END {
            if (st == "") { print "adjtimex failed"; exit }
            n = ""
            split("PLL PPSFREQ PPSTIME FLL INS DEL UNSYNC FREQHOLD PPSSIGNAL PPSJITTER PPSWANDER PPSERROR CLOCKERR NANO", names, " ")
            for (i = 1; i <= 14; i++) if (int(st / 2 ^ (i - 1)) % 2) n = n (n == "" ? "" : ",") names[i]
            printf "status 0x%04x (%s) maxerror %d us esterror %d us freq %+.3f ppm", st, n, maxe, este, f / 65536
        }'
}

kernel_unsync() { [[ $(kernel_view) == *UNSYNC* ]]; }

guest_state() {
    local j
    j=$(gssh skytimectl status --json 2>/dev/null) || { echo "no-answer"; return; }
    jfield "$j" 'j["state"]' || echo "unparsable"
}

# wait_state WANT TIMEOUT: polls skytimectl (and the served time) until the
# daemon reports WANT; prints the seconds it took, or fails after TIMEOUT.
wait_state() {
    local want=$1 limit=$2 start=$SECONDS state
    while ((SECONDS - start < limit)); do
        state=$(guest_state)
        if (($(date +%s) - $(cat "$run/last_probe" 2>/dev/null || echo 0) >= 8)); then
            ntp_probe 1 >/dev/null
        fi
        if [[ $state == "$want" ]]; then
            echo $((SECONDS - start))
            return 0
        fi
        sleep 4
    done
    log "still '$state' after ${limit}s, wanted '$want'"
    return 1
}

step_boot() { step_boot_named boot; }

# step_boot_named ROW: waits for ssh; QEMU then gets real-time priority.
step_boot_named() {
    local name=$1 start=$SECONDS
    until gssh true 2>/dev/null; do
        if ((SECONDS - start > BOOT_TIMEOUT_S)); then
            row "$name" FAIL "-" "-" "no ssh after ${BOOT_TIMEOUT_S}s; see $run/console.log"
            return 1
        fi
        kill -0 "$qemu_pid" 2>/dev/null || { row "$name" FAIL "-" "-" "qemu exited: $(tail -3 "$run/qemu.log")"; return 1; }
        sleep 5
    done
    local uname
    uname=$(gssh uname -r)
    # The guest is idle now: let QEMU's threads preempt the host's bulk work,
    # so an interrupt reaches the guest without waiting for a time slice.
    chrt -a -f -p 5 "$qemu_pid" || log "chrt on qemu failed: PPS latency will suffer"
    row "$name" PASS "ssh after $((SECONDS - start))s" "$uname" "qemu -accel tcg, RTC $(gssh date -u +%FT%TZ)"
}

step_devices() {
    local out name a b
    out=$(gssh 'cat /sys/class/pps/pps0/path; cat /sys/class/pps/pps0/name;
        cat /sys/class/pps/pps0/assert; sleep 3; cat /sys/class/pps/pps0/assert;
        stat -c "%G %a" /dev/pps0 /dev/ttyS1' 2>&1)
    name=$(sed -n 2p <<<"$out")
    a=$(sed -n 3p <<<"$out")
    b=$(sed -n 4p <<<"$out")
    if [[ $name == skytime-vm-pps && -n $a && $a != "$b" ]]; then
        row "pps+uart devices" PASS "-" "pps0 assert ${a%%#*} -> ${b%%#*}" "$(sed -n 5,6p <<<"$out" | tr '\n' ' ')"
    else
        row "pps+uart devices" FAIL "-" "-" "$(tr '\n' ' ' <<<"$out")"
    fi
}

step_install() {
    local out user caps
    out=$(gssh 'systemctl is-enabled skytimed; systemctl is-active skytimed;
        ps -o user= -C skytimed; grep CapEff /proc/$(pidof skytimed)/status' 2>&1)
    user=$(sed -n 3p <<<"$out")
    caps=$(sed -n 4p <<<"$out" | awk '{print $2}')
    # CAP_SYS_TIME (25) and CAP_NET_BIND_SERVICE (10), nothing else.
    if [[ $(sed -n 1p <<<"$out") == enabled && $(sed -n 2p <<<"$out") == active &&
        $user == skytime && $caps == 0000000002000400 ]]; then
        row "installed unit" PASS "-" "user $user CapEff $caps" "dpkg -i, shipped unit + config"
    else
        row "installed unit" FAIL "-" "-" "$(tr '\n' ' ' <<<"$out")"
    fi
}

step_security() {
    local line exposure
    line=$(gssh systemd-analyze security skytimed.service 2>&1 | grep -i "overall exposure")
    exposure=$(grep -o '[0-9]\+\.[0-9]\+' <<<"$line" | head -1)
    if [[ -n $exposure ]] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
        row "systemd-analyze security" PASS "-" "exposure $exposure" "limit 2.0"
    else
        row "systemd-analyze security" FAIL "-" "${line:-no output}" "limit 2.0"
    fi
}

# daemon_lock_s: the daemon's own time from its last start to lock, from
# its journal (monotonic), so that cold, restart and reboot compare alike.
daemon_lock_s() {
    gssh journalctl -u skytimed -b -o short-monotonic --no-pager 2>/dev/null |
        python3 "$here/journal_lock.py"
}

# Cold start: no drift file, the clock stepped +0.4 s and its frequency set
# +25 ppm off, then the shipped unit started.
cold_lock_s="" cold_daemon_s=""
step_cold_start() {
    gssh 'systemctl stop skytimed && rm -f /var/lib/skytime/drift &&
        adjtimex -f '"$WRONG_FREQ"' &&
        date -s "@$(date +%s.%N | awk "{ printf \"%.6f\", \$1 + 0.4 }")" >/dev/null &&
        systemctl start skytimed' ||
        { row "cold start" FAIL "-" "-" "could not prepare the guest clock"; return 1; }
    local before kview
    before=$(ntp_probe 2)
    kview=$(kernel_view)
    if [[ $(jfield "$before" 'j["ok"] and j["li"] == 3 and j["stratum"] == 16') == True ]]; then
        row "before lock" PASS "$(host_view "$before")" "$kview" "clock +0.4 s, freq +25 ppm"
    else
        row "before lock" FAIL "$(host_view "$before")" "$kview" "wanted LI=3 stratum 16"
    fi
    if cold_lock_s=$(wait_state locked "$LOCK_TIMEOUT_S"); then
        cold_daemon_s=$(daemon_lock_s)
        row "cold lock" PASS "-" "-" "locked after ${cold_lock_s}s (daemon: ${cold_daemon_s}s from start to lock)"
    else
        row "cold lock" FAIL "-" "-" "no lock in ${LOCK_TIMEOUT_S}s: $(gssh journalctl -u skytimed -n 5 --no-pager | tr '\n' ' ')"
        return 1
    fi
}

# pps_phase: the fraction of a second of 12 consecutive pulse timestamps
# in the guest (its clock is locked, so this is the pulse's latency plus the
# clock's error): mean, standard deviation and range.
pps_phase() {
    gssh 'for i in $(seq 12); do cat /sys/class/pps/pps0/assert; sleep 1; done' 2>/dev/null |
        python3 -c '
import statistics, sys
f = sorted({l.split("#")[0] for l in sys.stdin if "#" in l})
p = [((float("0." + x.split(".")[1]) + 0.5) % 1 - 0.5) * 1e6 for x in f]
if len(p) < 2: print("pps phase: no pulses"); sys.exit()
print("guest PPS phase %+.0f us sd %.0f us range %.0f us (n=%d)" % (statistics.fmean(p), statistics.pstdev(p), max(p) - min(p), len(p)))'
}

step_locked() {
    sleep "${SKYTIME_VM_SETTLE_S:-30}"
    local j c kview phase
    phase=$(pps_phase)
    j=$(ntp_probe 6)
    c=$(python3 "$here/ntp_probe.py" chrony "$ntp_port")
    kview=$(kernel_view)
    local chrony_note
    chrony_note=$(jfield "$c" '"chronyd -Q: %+.0f us" % j["offset_us"] if j["ok"] else "chronyd -Q: " + j["error"]')
    if [[ $(jfield "$j" "j['ok'] and j['stratum'] == 1 and j['li'] == 0 and abs(j['best_offset_us']) - j['bound_us'] < $BAD_OFFSET_US") == True &&
        $kview != *UNSYNC* && $kview != "adjtimex failed" ]]; then
        row "locked" PASS "$(host_view "$j")" "$kview" "$chrony_note; $phase"
    else
        row "locked" FAIL "$(host_view "$j")" "$kview" "$chrony_note; $phase"
    fi
}

step_pps_stops() {
    # The daemon's own state changes from here on are the record: a 1 s poll
    # of the state can miss a holdover that honestly lasts about a second (a
    # TCG guest's pulses are so noisy that the learned noise makes the bound
    # grow by milliseconds a second).
    local cursor since from
    since=$(gssh 'date +%s' 2>/dev/null)
    cursor=$(gssh 'journalctl -u skytimed -n 1 --show-cursor --no-pager' 2>/dev/null | sed -n 's/^-- cursor: //p')
    # After the last entry logged so far, or (no cursor) from a second ago.
    if [[ -n $cursor ]]; then from="--after-cursor='$cursor'"; else from="--since=@$((${since:-0} - 1))"; fi
    touch "$run/control/pps-off"
    local states state j kview t changes verdict
    # The state each second for 30 s, run-length encoded ("locked x2,
    # holdover x5, unsynchronised x23").
    states=$(gssh 'for i in $(seq 30); do skytimectl status --json | grep -o "\"state\": *\"[a-z]*\"" | grep -o "[a-z]*\"$" | tr -d "\""; sleep 1; done' 2>/dev/null |
        uniq -c | awk '{ printf "%s%s x%d", (NR > 1 ? ", " : ""), $2, $1 }')
    state=$(guest_state)
    j=$(ntp_probe 2)
    kview=$(kernel_view)
    rm -f "$run/control/pps-off"
    gssh "journalctl -u skytimed $from --no-pager -o short-precise" >"$run/journal-pps-stop.txt" 2>&1
    changes=$(grep 'refclock state change' "$run/journal-pps-stop.txt" || true)
    # Holdover first (the bound still holds), then, only once the bound
    # passes holdover_max_root_dispersion_us, unsynchronised.
    verdict=$(python3 - "$run/journal-pps-stop.txt" "$state" <<'PY'
import re, sys
from datetime import datetime
lines = [l for l in open(sys.argv[1], errors="replace") if "refclock state change" in l]
final = sys.argv[2]
def parse(l):
    m = re.search(r'from="?(\w+)"? to="?(\w+)"? reason=(.*)$', l)
    t = re.search(r'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z', l)
    return (m.group(1), m.group(2), m.group(3).strip(), datetime.fromisoformat(t.group(1)) if t else None) if m else None
ch = [c for c in map(parse, lines) if c]
if not ch:
    print("FAIL no state change logged"); sys.exit()
first = ch[0]
if (first[0], first[1]) != ("locked", "holdover"):
    print("FAIL first change %s -> %s (%s)" % first[:3]); sys.exit()
if len(ch) == 1:
    ok = final == "holdover"
    print("%s holdover for the whole 30 s; state now %s" % ("PASS" if ok else "FAIL", final)); sys.exit()
nxt = ch[1]
held = (nxt[3] - first[3]).total_seconds() if nxt[3] and first[3] else float("nan")
if nxt[1] != "unsynchronised" or "holdover error bound" not in nxt[2]:
    print("FAIL after holdover: %s -> %s (%s)" % nxt[:3]); sys.exit()
ok = final in ("holdover", "unsynchronised")
print("%s holdover %.1f s, then unsynchronised (%s); state now %s" % ("PASS" if ok else "FAIL", held, nxt[2], final))
PY
)
    if [[ $verdict == PASS* ]]; then
        row "PPS stopped 30s" PASS "$(host_view "$j")" "$kview" "${verdict#PASS }; polled: $states"
    else
        row "PPS stopped 30s" FAIL "$(host_view "$j")" "$kview" "${verdict#FAIL }; polled: ${states:-none}; changes: $(echo "$changes" | wc -l) ($run/journal-pps-stop.txt)"
    fi
    if t=$(wait_state locked "$LOCK_TIMEOUT_S"); then
        j=$(ntp_probe 2)
        row "PPS back" PASS "$(host_view "$j")" "$(kernel_view)" "locked again ${t}s after the pulse returned"
    else
        row "PPS back" FAIL "-" "$(kernel_view)" "no lock in ${LOCK_TIMEOUT_S}s"
    fi
}

step_nmea_cut() {
    touch "$run/control/nmea-off"
    sleep 20
    local state j
    state=$(guest_state)
    j=$(ntp_probe 3)
    rm -f "$run/control/nmea-off"
    row "NMEA cut 20s" PASS "$(host_view "$j")" "$(kernel_view)" "state $state (chardev closed)"
    local t
    if t=$(wait_state locked "$LOCK_TIMEOUT_S"); then
        row "NMEA back" PASS "$(host_view "$(ntp_probe 3)")" "$(kernel_view)" "locked ${t}s after the stream returned"
    else
        row "NMEA back" FAIL "-" "$(kernel_view)" "no lock in ${LOCK_TIMEOUT_S}s: $(gssh journalctl -u skytimed -n 5 --no-pager | tr '\n' ' ')"
    fi
}

step_restart() {
    gssh systemctl restart skytimed || { row "systemctl restart" FAIL "-" "-" "restart failed"; return 1; }
    local t drift
    drift=$(gssh "journalctl -u skytimed -n 30 --no-pager | grep -c 'starting from the drift file'")
    if t=$(wait_state locked "$LOCK_TIMEOUT_S") && ((drift > 0)); then
        row "systemctl restart" PASS "$(host_view "$(ntp_probe 3)")" "$(kernel_view)" "drift file used, locked after ${t}s (daemon: $(daemon_lock_s)s; cold: ${cold_daemon_s}s)"
        gssh journalctl -u skytimed -b --no-pager -o short-precise >"$run/journal-restart.txt" 2>&1
    else
        row "systemctl restart" FAIL "-" "$(kernel_view)" "drift file lines: $drift, lock: ${t:-none}"
    fi
}

step_reboot() {
    gssh 'systemctl reboot' >/dev/null 2>&1
    sleep 10
    local start=$SECONDS
    until gssh true 2>/dev/null; do
        if ((SECONDS - start > BOOT_TIMEOUT_S)); then
            row "guest reboot" FAIL "-" "-" "no ssh after ${BOOT_TIMEOUT_S}s"
            return 1
        fi
        sleep 5
    done
    local t drift
    drift=$(gssh "journalctl -b -u skytimed --no-pager | grep -c 'starting from the drift file'")
    if t=$(wait_state locked "$LOCK_TIMEOUT_S") && ((drift > 0)); then
        gssh journalctl -u skytimed -b --no-pager -o short-precise >"$run/journal-reboot.txt" 2>&1
        row "guest reboot" PASS "$(host_view "$(ntp_probe 3)")" "$(kernel_view)" "drift file used, locked ${t}s after ssh came back (daemon: $(daemon_lock_s)s; cold: ${cold_daemon_s}s)"
    else
        row "guest reboot" FAIL "-" "$(kernel_view)" "drift file lines: $drift, lock: ${t:-none}"
    fi
}

# The PHC source on the installed appliance: the PPS module gives the UART
# trigger to the PHC test module (phc-module/: a counter on the raw monotonic
# clock at its own +25 ppm, independent of the CLOCK_REALTIME that skytimed
# steers), the config is switched to [pps] source = "phc" on the PHC found by
# its clock name, checked with --check-config, and the packaged unit
# restarted. Judged from the daemon's own journal after a cursor taken as the
# new daemon starts (its lock, the method it chose), then its status
# (pps.phc), /metrics (skytime_phc_*) and the time it serves.
# Restores the PPS module and the config afterwards.
step_phc() {
    local cursor from out dev start=$SECONDS
    # The cursor is taken in the guest after the old daemon stopped, just
    # before the new one starts: what follows it is the PHC run's alone.
    out=$(gssh 'set -e
        systemctl stop skytimed
        modprobe -r skytime_vm_pps
        modprobe skytime_vm_phc io=0x3e8 irq=5 freq_ppb=25000
        udevadm settle
        dev=""
        for d in /sys/class/ptp/ptp*; do
            [ "$(cat "$d/clock_name")" = skytime-vm-phc ] && dev=/dev/${d##*/}
        done
        [ -n "$dev" ] || { echo "no PHC named skytime-vm-phc in /sys/class/ptp"; exit 1; }
        cp /etc/skytime/skytime.toml /root/skytime.toml.pps
        sed -i "/^\[pps\]/a source = \"phc\"\nphc_device = \"$dev\"" /etc/skytime/skytime.toml
        skytimed --check-config /etc/skytime/skytime.toml >/dev/null 2>/root/check-config.txt ||
            { echo "--check-config refused it:"; cat /root/check-config.txt; exit 1; }
        echo "$dev $(stat -c "%G %a" "$dev")"
        journalctl -u skytimed -n 1 --show-cursor --no-pager | sed -n "s/^-- cursor: /cursor /p"
        systemctl start skytimed' 2>&1)
    if [[ $? -ne 0 ]]; then
        row "PHC source" FAIL "-" "-" "could not switch to the PHC: $(tr '\n' ' ' <<<"$out")"
        phc_restore
        return 1
    fi
    dev=$(grep '^/dev/' <<<"$out" | tail -1)
    cursor=$(sed -n 's/^cursor //p' <<<"$out")
    if [[ -n $cursor ]]; then from="--after-cursor='$cursor'"; else from="-n 300"; fi
    # The daemon's own lock after the switch, from its journal (bounded).
    local journal locked="" lock_s
    while ((SECONDS - start < LOCK_TIMEOUT_S)); do
        journal=$(gssh "journalctl -u skytimed $from --no-pager -o short-precise" 2>/dev/null)
        if grep -q 'refclock state change.*to="locked"' <<<"$journal"; then locked=yes; break; fi
        if grep -qE 'Main process exited|Failed with result' <<<"$journal"; then break; fi
        if (($(date +%s) - $(cat "$run/last_probe" 2>/dev/null || echo 0) >= 8)); then
            ntp_probe 1 >/dev/null
        fi
        sleep 4
    done
    lock_s=$((SECONDS - start))
    if [[ -z $locked ]]; then
        gssh "journalctl -u skytimed $from --no-pager -o short-precise" >"$run/journal-phc.txt" 2>&1
        row "PHC source" FAIL "-" "$(kernel_view)" "$dev: no lock in ${lock_s}s: $(grep -E 'ERROR|WARN|PHC' "$run/journal-phc.txt" | tail -3 | tr '\n' ' ') ($run/journal-phc.txt)"
        phc_restore
        return 1
    fi
    # Let the mapping fill its 16 s of offset samples, then read everything.
    sleep "${SKYTIME_VM_PHC_SETTLE_S:-20}"
    local j st human metrics kview verdict
    st=$(gssh skytimectl status --json 2>/dev/null)
    # The operator's views, kept for the record in $run/phc-status.txt.
    {
        gssh skytimectl status
        gssh 'exec 3<>/dev/tcp/127.0.0.1/9123 && printf "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n" >&3 && cat <&3' |
            grep '^skytime_phc_'
    } >"$run/phc-status.txt" 2>/dev/null
    human=$(grep '^PHC mapping' "$run/phc-status.txt")
    metrics=$(grep -c '^skytime_phc_' "$run/phc-status.txt")
    j=$(ntp_probe 4)
    kview=$(kernel_view)
    gssh "journalctl -u skytimed $from --no-pager -o short-precise" >"$run/journal-phc.txt" 2>&1
    verdict=$(python3 - "$run/journal-phc.txt" "$st" "$j" "$BAD_OFFSET_US" "${metrics:-0}" "$human" <<'PY'
import json, re, sys
journal = open(sys.argv[1], errors="replace").read()
bad_us = float(sys.argv[4])
try:
    st, probe = json.loads(sys.argv[2]), json.loads(sys.argv[3])
except ValueError as e:
    print("FAIL unparsable status or probe: %s" % e); sys.exit()
enabled = re.search(r'PHC external timestamps enabled.*', journal)
m = re.search(r'method=(\w+)', enabled.group(0)) if enabled else None
phc = (st.get("pps") or {}).get("phc")
# Restarts of the mapping once locked: the guest's clock is only steered
# (never stepped) then, so each would be a rate change taken for a step.
after_lock = journal.split('to="locked"', 1)[1] if 'to="locked"' in journal else ""
restarts = journal.count("mapping restarted")
restarts_locked = after_lock.count("mapping restarted")
problems = []
if restarts_locked: problems.append("%d mapping restarts after lock" % restarts_locked)
if not m: problems.append("no 'PHC external timestamps enabled' line")
if phc is None: problems.append("status has no pps.phc")
else:
    if phc["mapping_method"] != "extended": problems.append("method %s, wanted extended" % phc["mapping_method"])
    if phc["mapping_uncertainty_ns"] is None: problems.append("no mapping uncertainty")
    if phc["extts_events"] < 10: problems.append("%d EXTTS events" % phc["extts_events"])
if st.get("state") != "locked": problems.append("state %s" % st.get("state"))
if not (probe["ok"] and probe["stratum"] == 1 and probe["li"] == 0 and abs(probe["best_offset_us"]) - probe["bound_us"] < bad_us):
    problems.append("served: %s" % ("no answer" if not probe["ok"] else "stratum %d LI %d %+.0f us" % (probe["stratum"], probe["li"], probe["best_offset_us"])))
if int(sys.argv[5]) < 4: problems.append("/metrics has %s skytime_phc_ series" % sys.argv[5])
if not sys.argv[6]: problems.append("no 'PHC mapping' line in skytimectl status")
if problems:
    print("FAIL " + "; ".join(problems)); sys.exit()
unc = phc["mapping_uncertainty_ns"]
rate = phc["fast_ppb"]
print("PASS %s (journal: %s), mapping uncertainty %d ns, PHC %s ppb fast vs system, %d EXTTS events, %d other-edge dropped, %d mapping restarts (%d after lock); "
      "daemon offset %+.0f ns sigma %.0f ns jitter %.0f ns, root dispersion %.0f us"
      % (phc["mapping_method"], m.group(1), unc, "n/a" if rate is None else "%+.0f" % rate,
         phc["extts_events"], phc["other_edge_dropped"], restarts, restarts_locked, st["offset_ns"], st["offset_sigma_ns"],
         st["jitter_ns"], st["root_dispersion_ns"] / 1e3))
PY
)
    if [[ $verdict == PASS* ]]; then
        row "PHC source" PASS "$(host_view "$j")" "$kview" "$dev, locked ${lock_s}s after the switch: ${verdict#PASS }"
    else
        row "PHC source" FAIL "$(host_view "$j")" "$kview" "$dev: ${verdict#FAIL } ($run/journal-phc.txt)"
    fi
    phc_restore
}

# Back to the PPS module and the packaged config.
phc_restore() {
    gssh 'systemctl stop skytimed; test -f /root/skytime.toml.pps && cp /root/skytime.toml.pps /etc/skytime/skytime.toml
        modprobe -r skytime_vm_phc; modprobe skytime_vm_pps && systemctl start skytimed' >/dev/null 2>&1 ||
        log "restoring the PPS module and config after the PHC step failed"
}

step_remove_purge() {
    local out j
    out=$(gssh 'dpkg -r skytime >/dev/null 2>&1; systemctl is-active skytimed; test -e /etc/skytime/skytime.toml && echo conffile-kept' 2>&1)
    j=$(ntp_probe 1)
    if [[ $(sed -n 1p <<<"$out") != active && $out == *conffile-kept* && $(jfield "$j" 'j["ok"]') == False ]]; then
        row "dpkg -r" PASS "$(host_view "$j")" "-" "service $(sed -n 1p <<<"$out"), config kept"
    else
        row "dpkg -r" FAIL "$(host_view "$j")" "-" "$(tr '\n' ' ' <<<"$out")"
    fi
    out=$(gssh 'dpkg -P skytime >/dev/null 2>&1; dpkg-query -W -f="\${db:Status-Status}" skytime 2>/dev/null; echo;
        ls -d /etc/skytime /var/lib/skytime /usr/bin/skytimed /usr/lib/systemd/system/skytimed.service /run/skytime 2>/dev/null' 2>&1)
    if [[ $(sed -n 2,9p <<<"$out" | grep -c .) -eq 0 && $(sed -n 1p <<<"$out") != installed ]]; then
        row "dpkg -P" PASS "-" "-" "status '$(sed -n 1p <<<"$out")', no files left"
    else
        row "dpkg -P" FAIL "-" "-" "left: $(tr '\n' ' ' <<<"$out")"
    fi
}

print_table() {
    local r
    {
        echo
        echo "VM test (qemu-system-x86_64 -accel tcg, Debian bookworm, $(basename "$image"))"
        printf '%-26s | %-4s | %-58s | %-s\n' step result "host (ntpdig: guest minus host)" "kernel (adjtimex in guest) | note"
        printf '%s\n' "$(printf -- '-%.0s' {1..160})"
        for r in "${rows[@]}"; do
            IFS='|' read -r s res host kern note <<<"$r"
            printf '%-26s | %-4s | %-58s | %s | %s\n' "$s" "$res" "$host" "$kern" "$note"
        done
        echo "host: $(grep 'pulse lateness' "$run/feeder.log" | tail -1 | sed 's/^feeder: //')"
        echo "served synchronised: $served_synced answers, served_bad: $served_bad (|offset| - ntpdig's +/- > ${BAD_OFFSET_US} us)"
        echo "stage time: $((SECONDS - stage_start)) s"
    }
}

run_steps() {
    if step_boot; then
        step_devices
        step_install
        step_security
        if step_cold_start; then
            chrony_start
            step_locked
            step_pps_stops
            step_nmea_cut
            step_chrony_client
            chrony_stop
            step_restart
            step_reboot
            step_phc
        fi
        step_remove_purge
    fi
    if [[ ${SKYTIME_VM_SKIP_LEAP:-0} != 1 ]]; then
        stop_guest
        leap_boot && step_leap
    fi
    local served_synced served_bad
    served_synced=$(grep -c . "$run/served_synced")
    served_bad=$(grep -c . "$run/served_bad")
    ((served_bad == 0)) || row "never served wrong time" FAIL "-" "-" "$served_bad bad answers"
    print_table
    if ((failures > 0)); then
        echo "vm: $failures step(s) FAILED" >&2
        return 1
    fi
    echo "vm: all steps passed" >&2
}
