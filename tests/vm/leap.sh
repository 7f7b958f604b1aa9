# The leap-second run, sourced by run.sh: after the main guest is gone, a
# second boot, of its own image, across the last real leap second, the one
# inserted at the end of 2016-12-31 (TAI-UTC 36 -> 37). True time = the host
# clock plus an offset that puts that midnight LEAP_IN_S after QEMU starts.
# The offset goes to the guest RTC (-rtc base=), the feeder's NMEA labels and
# PPS triggers; the feeder announces the leap (UBX-NAV-TIMELS). Evidence:
# STA_INS before the midnight, 23:59:60 (TIME_OOP) and TAI-UTC 36 -> 37 from
# adjtimex inside, LI=1 before and through 23:59:60 and LI=0 after from the
# host, every answer checked against the true UTC (posix) second.
#
# Why the guest's package is built as of LEAP_BUILD_DATE: a receiver date
# before the build date is taken for a GPS week rollover and moved 1024 weeks
# on (skytime-gnss's rollover pivot; `rollover_pivot` can only move it later),
# which is right for a box in the field. A reproducible build pins its date
# with SOURCE_DATE_EPOCH, so a skytime built as of 2016 believes 2016 dates:
# build-image.sh --build-date makes that .deb (its own cargo target dir) and
# its own image layer, installed with dpkg -i like the other.

LEAP_BUILD_DATE=2016-06-01
LEAP_DAY=2016-12-31
LEAP_MIDNIGHT=$(date -u -d "$LEAP_DAY +1 day" +%s)
LEAP_IN_S=${SKYTIME_VM_LEAP_IN_S:-170}

# leap_boot: starts the feeder and QEMU (on $leap_image, which run.sh built)
# for the leap run; sets true_offset_s.
leap_boot() {
    local image=$leap_image
    true_offset_s=$((LEAP_MIDNIGHT - LEAP_IN_S - $(date +%s)))
    export SKYTIME_VM_TRUE_OFFSET_S=$true_offset_s SKYTIME_VM_LEAP_AT=$LEAP_MIDNIGHT
    local rtc_base
    rtc_base=$(date -u -d "@$(($(date +%s) + true_offset_s))" +%Y-%m-%dT%H:%M:%S)
    rm -f "$run/control/pps-off" "$run/control/nmea-off"
    start_feeder "$true_offset_s" --leap-day "$LEAP_DAY"
    log "leap run: $(basename "$image") (built as of $LEAP_BUILD_DATE); true time = host $true_offset_s s (guest RTC $rtc_base, midnight in ${LEAP_IN_S}s)"
    start_qemu "$rtc_base"
}

# Seconds (host clock) until the true midnight.
to_midnight_s() { echo $((LEAP_MIDNIGHT - true_offset_s - $(date +%s))); }

# Sleeps until S seconds before the true midnight (negative: after it).
sleep_until_midnight_minus() {
    local at=$((LEAP_MIDNIGHT - true_offset_s - $1))
    local gap
    gap=$(python3 -c "import time; print(max(0.0, $at - time.time()))")
    sleep "$gap"
}

leapwatch_install() {
    timeout 60 ssh -i "$vm/id_ed25519" -p "$ssh_port" -o BatchMode=yes -o ConnectTimeout=20 \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        root@127.0.0.1 'cat >/usr/local/bin/skytime-vm-leapwatch && chmod 0755 /usr/local/bin/skytime-vm-leapwatch' \
        <"$leapwatch"
}

step_leap() {
    if ! step_boot_named "leap run: boot"; then return 1; fi
    leapwatch_install || { row "leap run: boot" FAIL "-" "-" "could not copy the leapwatch helper"; return 1; }
    local t limit
    limit=$(($(to_midnight_s) - 25))
    if ((limit < 10)) || ! t=$(wait_state locked "$limit"); then
        row "leap: locked before" FAIL "-" "$(kernel_view)" "no lock with 25 s to spare before the midnight (LEAP_IN_S=$LEAP_IN_S)"
        return 1
    fi
    sleep_until_midnight_minus 20
    local j st kview
    j=$(ntp_probe 2)
    kview=$(kernel_view)
    st=$(gssh skytimectl status --json 2>/dev/null)
    local armed source
    armed=$(jfield "$st" 'j["leap"]["armed"]')
    source=$(jfield "$st" 'j["leap"]["source"]')
    if [[ $(jfield "$j" 'j["ok"] and j["li"] == 1 and j["stratum"] == 1') == True && $kview == *INS* && $armed == insert ]]; then
        row "leap: 23:59:40" PASS "$(host_view "$j")" "$kview" "locked ${t}s after ssh; armed $armed, source $source"
    else
        row "leap: 23:59:40" FAIL "$(host_view "$j")" "$kview" "wanted LI=1 and STA_INS; armed $armed, source $source"
    fi
    # Inside: adjtimex every 20 ms from 23:59:57 to 00:00:03. Outside: one
    # NTP request a second from 23:59:56 to 00:00:04, each judged against
    # the true posix second.
    sleep_until_midnight_minus 4
    python3 "$here/ntp_probe.py" series "$ntp_port" 9 >"$run/leap_series.json" &
    local series_pid=$!
    local watch
    watch=$(gssh skytime-vm-leapwatch 7 2>&1)
    wait "$series_pid"
    echo "$watch" >"$run/leapwatch.txt"
    local series bad synced
    series=$(cat "$run/leap_series.json")
    bad=$(jfield "$series" 'j["bad"]')
    synced=$(jfield "$series" 'j["synced"]')
    for _ in $(seq "${synced:-0}"); do echo "$series" >>"$run/served_synced"; done
    for _ in $(seq "${bad:-0}"); do echo "$series" >>"$run/served_bad"; done
    local line60 tai_before tai_after
    line60=$(grep -m1 ' 23:59:60\.[0-9]* TIME_OOP' <<<"$watch")
    tai_before=$(head -1 <<<"$watch" | grep -o 'tai [0-9-]*' | cut -d' ' -f2)
    tai_after=$(tail -1 <<<"$watch" | grep -o 'tai [0-9-]*' | cut -d' ' -f2)
    # Every answer sent inside the true 23:59:60 still says LI=1 (ntpd's
    # rule: the leap is announced until its second is over).
    local li60
    li60=$(jfield "$series" 'all(x == 1 for x in j["li_in_leap_second"])')
    if [[ -n $line60 && -n $tai_before && $tai_after == $((tai_before + 1)) && $li60 == True ]]; then
        row "leap: 23:59:60" PASS "$(jfield "$series" 'j["summary"]')" "${line60#* }; tai $tai_before -> $tai_after" "adjtimex every 20 ms ($run/leapwatch.txt)"
    else
        row "leap: 23:59:60" FAIL "$(jfield "$series" 'j["summary"]')" "tai ${tai_before:-?} -> ${tai_after:-?}" "no TIME_OOP 23:59:60 line, TAI not +1 or LI not 1 inside 23:59:60 ($li60): $(tr '\n' ';' <<<"$watch" | cut -c1-300)"
    fi
    sleep_until_midnight_minus -8
    j=$(ntp_probe 2)
    kview=$(kernel_view)
    if [[ $(jfield "$j" 'j["ok"] and j["li"] == 0 and j["stratum"] == 1') == True && $kview != *INS* ]]; then
        row "leap: 00:00:08" PASS "$(host_view "$j")" "$kview" "state $(guest_state)"
    else
        row "leap: 00:00:08" FAIL "$(host_view "$j")" "$kview" "wanted LI=0 stratum 1, no STA_INS; state $(guest_state)"
    fi
}
