#!/usr/bin/python3
"""Asks the guest for time from the host, as a LAN client would: the real
ntpdig (ntpsec) with Python's getaddrinfo wrapped to reach the forwarded port,
or a one-shot `chronyd -Q`. Prints one JSON object on stdout.

    ntp_probe.py ntpdig PORT SAMPLES   # stratum/leap of the last, offsets of all
    ntp_probe.py chrony PORT           # chronyd -Q: "System clock wrong by X"
Offsets are guest minus host, in microseconds. ntpdig prints nothing for a
server that says it is unsynchronised (LI=3, stratum 16), so when it gives no
answer one plain NTPv4 client packet is sent to read LI and stratum directly.
"""
import json, re, socket, statistics, struct, subprocess, sys, tempfile, os, time

NTP_EPOCH_OFFSET = 2208988800


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
    return {"li": data[0] >> 6, "stratum": data[1],
            "offset_us": ((t2 - t1) + (t3 - t4)) / 2 * 1e6,
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
        offsets.append(float(j["offset"]) * 1e6)
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


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "ntpdig":
        print(json.dumps(ntpdig(port, int(sys.argv[3]))))
    else:
        print(json.dumps(chrony(port)))
