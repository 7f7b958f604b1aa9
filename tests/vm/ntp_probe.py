#!/usr/bin/python3
"""Asks the guest for time from the host, as a LAN client would: the real
ntpdig (ntpsec) with Python's getaddrinfo wrapped to reach the forwarded port,
or a one-shot `chronyd -Q`. Prints one JSON object on stdout.

    ntp_probe.py ntpdig PORT SAMPLES   # stratum/leap of the last, offsets of all
    ntp_probe.py chrony PORT           # chronyd -Q: "System clock wrong by X"
    ntp_probe.py series PORT N         # N raw requests 1 s apart, each judged
Offsets are guest minus true UTC, in microseconds: true time is the host
clock plus SKYTIME_VM_TRUE_OFFSET_S, and once it passes SKYTIME_VM_LEAP_AT
(the true second that is 23:59:60) the posix UTC second is one less. ntpdig prints nothing for a
server that says it is unsynchronised (LI=3, stratum 16), so when it gives no
answer one plain NTPv4 client packet is sent to read LI and stratum directly.
"""
import json, re, socket, statistics, struct, subprocess, sys, tempfile, os, time

NTP_EPOCH_OFFSET = 2208988800
TRUE_OFFSET_S = int(os.environ.get("SKYTIME_VM_TRUE_OFFSET_S", "0"))
LEAP_AT = int(os.environ.get("SKYTIME_VM_LEAP_AT", "0")) or None
BAD_OFFSET_US = float(os.environ.get("SKYTIME_VM_BAD_OFFSET_US", "5000"))


def expected_s(host_t):
    """What a right guest clock reads minus the host clock at host time host_t."""
    true_t = host_t + TRUE_OFFSET_S
    return TRUE_OFFSET_S - (1 if LEAP_AT is not None and true_t >= LEAP_AT else 0)


def raw_query(port):
    """One mode-3 request; LI, stratum and the offset from the reply."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        t1 = time.time()
        sec = int(t1) + NTP_EPOCH_OFFSET
        frac = int((t1 % 1) * 2**32)
        req = bytes([0x23]) + bytes(39) + struct.pack("!II", sec, frac)
        s.sendto(req, ("127.0.0.1", port))
        data, _ = s.recvfrom(512)
        t4 = time.time()
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 48:
        return None
    ts = lambda i: struct.unpack("!I", data[i:i + 4])[0] - NTP_EPOCH_OFFSET + \
        struct.unpack("!I", data[i + 4:i + 8])[0] / 2**32
    t2, t3 = ts(32), ts(40)
    raw = ((t2 - t1) + (t3 - t4)) / 2
    # Across a leap second's edge either side's posix second is right.
    off = min((raw - expected_s(t1), raw - expected_s(t4)), key=abs)
    return {"li": data[0] >> 6, "stratum": data[1],
            "offset_us": off * 1e6,
            "delay_us": ((t4 - t1) - (t3 - t2)) * 1e6}

WRAPPER = (
    "import socket, runpy, sys\n"
    "orig = socket.getaddrinfo\n"
    "port = int(sys.argv[1])\n"
    "socket.getaddrinfo = lambda host, _p, *a, **k: orig(host, port, *a, **k)\n"
    "sys.argv = ['ntpdig'] + sys.argv[2:]\n"
    "runpy.run_path('/usr/bin/ntpdig', run_name='__main__')\n"
)


def ntpdig(port, samples):
    offsets, bounds, last = [], [], None
    for i in range(samples):
        if i:
            time.sleep(1)
        asked_at = time.time()
        try:
            out = subprocess.run(
                ["/usr/bin/python3", "-c", WRAPPER, str(port), "-j", "-t", "2",
                 "-p", "1", "127.0.0.1"],
                capture_output=True, text=True, timeout=10).stdout
        except subprocess.TimeoutExpired:
            continue
        line = next((l for l in out.splitlines() if l.lstrip().startswith("{")), None)
        if line is None:
            continue
        j = json.loads(line)
        last = j
        # ntpdig's offset is what the host must add to agree with the server.
        offsets.append((float(j["offset"]) - expected_s(asked_at)) * 1e6)
        # ntpdig's "precision" is its "+/-": the synchronisation distance
        # (half the round trip plus the server's root dispersion).
        bounds.append(float(j["precision"]) * 1e6)
    if last is None:
        raw = raw_query(port)
        if raw is None:
            return {"ok": False, "error": "no answer"}
        return {"ok": True, "client": "raw NTPv4 (ntpdig: no answer)",
                "stratum": raw["stratum"], "li": raw["li"], "samples": 1,
                "offset_us": raw["offset_us"], "jitter_us": 0.0,
                "bound_us": raw["delay_us"] / 2, "best_offset_us": raw["offset_us"],
                "max_abs_offset_us": abs(raw["offset_us"]),
                "max_excess_us": abs(raw["offset_us"]) - raw["delay_us"] / 2}
    li = {"no-leap": 0, "add-leap": 1, "del-leap": 2, "unsync": 3}.get(last.get("leap"), -1)
    return {
        "ok": True,
        "client": "ntpdig",
        "stratum": last.get("stratum"),
        "leap": last.get("leap"),
        "li": li,
        "samples": len(offsets),
        "offset_us": statistics.fmean(offsets),
        "jitter_us": statistics.pstdev(offsets) if len(offsets) > 1 else 0.0,
        "max_abs_offset_us": max(abs(o) for o in offsets),
        # An offset is known only to within ntpdig's "+/-": the sample with
        # the smallest is the best, as NTP's clock filter takes it, and only
        # what lies beyond it counts as error.
        "bound_us": min(bounds),
        "best_offset_us": offsets[bounds.index(min(bounds))],
        "max_excess_us": max(abs(o) - b for o, b in zip(offsets, bounds)),
    }


def chrony(port):
    with tempfile.TemporaryDirectory() as d:
        pid = os.path.join(d, "chronyd.pid")
        try:
            p = subprocess.run(
                ["chronyd", "-Q", "-u", "root", "-t", "20",
                 f"server 127.0.0.1 port {port} iburst maxsamples 4",
                 "cmdport 0", f"pidfile {pid}"],
                capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": "chronyd -Q timed out"}
        text = p.stdout + p.stderr
        m = re.search(r"System clock wrong by (-?[0-9.]+) seconds", text)
        if not m:
            last = text.strip().splitlines()[-2:] if text.strip() else ["no output"]
            return {"ok": False, "error": " / ".join(l.split("Z ", 1)[-1] for l in last)}
        # chrony's "wrong by" is what the host must add: guest minus host.
        return {"ok": True, "offset_us": float(m.group(1)) * 1e6}


def series(port, n):
    """n raw requests a second apart: LI of each, and how many were served
    as synchronised with an error beyond BAD_OFFSET_US plus half the round
    trip."""
    answers, bad, synced = [], 0, 0
    start = time.time()
    for i in range(n):
        time.sleep(max(0.0, start + i - time.time()))
        sent = time.time()
        a = raw_query(port)
        if a is None:
            answers.append(None)
            continue
        a["at"] = true_label(sent)
        answers.append(a)
        if a["li"] != 3 and a["stratum"] < 16:
            synced += 1
            if abs(a["offset_us"]) - a["delay_us"] / 2 > BAD_OFFSET_US:
                bad += 1
    got = [a for a in answers if a]
    worst = max((abs(a["offset_us"]) for a in got), default=0.0)
    li = "".join("-" if a is None else str(a["li"]) for a in answers)
    li_at = " ".join("%s@%s" % (a["li"], a["at"]) for a in got)
    # LI of the answers sent inside the leap second itself (true 23:59:60).
    in_leap = [a["li"] for a in got if a["at"].startswith("60")]
    return {"answers": len(got), "synced": synced, "bad": bad, "li_sequence": li,
            "li_in_leap_second": in_leap,
            "summary": "%d requests 1/s: LI %s, max error %.0f us, bad %d"
            % (n, li_at, worst, bad)}


def true_label(host_t):
    """The true UTC seconds-of-minute at host time host_t ("60.3" inside an
    inserted leap second), to tell which second each answer belongs to."""
    true_t = host_t + TRUE_OFFSET_S
    if LEAP_AT is not None and LEAP_AT <= true_t < LEAP_AT + 1:
        return "60.%d" % int((true_t - LEAP_AT) * 10)
    posix = true_t - (1 if LEAP_AT is not None and true_t >= LEAP_AT + 1 else 0)
    return "%02d.%d" % (int(posix) % 60, int(posix * 10) % 10)


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "ntpdig":
        print(json.dumps(ntpdig(port, int(sys.argv[3]))))
    elif mode == "series":
        print(json.dumps(series(port, int(sys.argv[3]))))
    else:
        print(json.dumps(chrony(port)))
