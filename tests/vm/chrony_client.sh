# chronyd -x as a long-running client of the guest, sourced by steps.sh:
# started once the guest has locked, it polls every 1-4 s (minpoll 0,
# maxpoll 2) across the locked period and the faults that follow, and never
# touches the host clock (-x). Its command socket is a unix socket in the
# run directory, so it shares no port with anyone; `log measurements` keeps
# every answer it took, which the served-bad count reads too.

chrony_pid=""
chrony_dir=""

chrony_start() {
    chrony_dir=$run/chrony
    mkdir -p -m 0700 "$chrony_dir"
    cat >"$chrony_dir/chrony.conf" <<CONF
server 127.0.0.1 port $ntp_port minpoll 0 maxpoll 2 iburst
cmdport 0
bindcmdaddress $chrony_dir/chronyd.sock
pidfile $chrony_dir/chronyd.pid
logdir $chrony_dir
log measurements
CONF
    chronyd -x -d -u root -f "$chrony_dir/chrony.conf" >"$chrony_dir/chronyd.log" 2>&1 &
    chrony_pid=$!
    log "chronyd -x started (pid $chrony_pid, $chrony_dir)"
}

chronyc_q() { timeout 10 chronyc -n -h "$chrony_dir/chronyd.sock" "$@" 2>&1; }

# chrony_view: "selected stratum 1 offset +12 us +/- 300 us (leap Normal, N measurements)".
chrony_view() {
    local src ntpdata n
    src=$(chronyc_q -c sources | grep '^\^' | head -1)
    ntpdata=$(chronyc_q ntpdata)
    n=$(grep -c '127\.0\.0\.1' "$chrony_dir/measurements.log" 2>/dev/null)
    awk -F, -v leap="$(awk -F': ' '/^Leap status/ { print $2 }' <<<"$ntpdata")" -v n="${n:-0}" '
        { state = ($2 == "*" ? "selected" : "state " $2)
          printf "%s stratum %s offset %+.0f us +/- %.0f us (leap %s, %d measurements)", state, $4, $9 * 1e6, $10 * 1e6, leap, n }
        END { if (NR == 0) print "no source" }' <<<"$src"
}

# chrony_bad_measurements: answers chronyd took from a server that said it
# was synchronised (leap not "?", stratum < 16) whose offset was beyond
# BAD_OFFSET_US plus half the round trip.
chrony_bad_measurements() {
    awk -v bad="$BAD_OFFSET_US" '
        $3 == "127.0.0.1" && $4 != "?" && $5 < 16 {
            # Columns: date time ip L St 123 567 ABCD LP RP Score Offset Peer-del ...
            off = $12; del = $13; if (off < 0) off = -off
            if (off * 1e6 - del * 1e6 / 2 > bad) n++
        }
        END { print n + 0 }' "$chrony_dir/measurements.log" 2>/dev/null || echo 0
}

step_chrony_client() {
    local view bad
    view=$(chrony_view)
    bad=$(chrony_bad_measurements)
    echo "$bad" >"$run/chrony_bad"
    if [[ $view == selected\ stratum\ 1\ * && $bad == 0 ]]; then
        row "chronyd -x client" PASS "$view" "-" "minpoll 0 maxpoll 2, across lock, PPS stop, NMEA cut; bad answers: $bad"
    else
        row "chronyd -x client" FAIL "$view" "-" "bad answers: $bad; see $chrony_dir/chronyd.log"
    fi
}

chrony_stop() {
    [[ -n $chrony_pid ]] || return 0
    kill "$chrony_pid" 2>/dev/null
    wait "$chrony_pid" 2>/dev/null
    chrony_pid=""
}
