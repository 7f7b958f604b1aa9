#!/usr/bin/python3
"""Asks the booted image for time from the host, as a LAN client would, through
QEMU's forwarded UDP port: ntpsec's ntpdig (no port option, so Python's
getaddrinfo is wrapped), with -d so that its view of an unsynchronised reply
shows (ntpdig prints no time for LI=3, stratum 16), and one plain NTPv4 client
packet to read LI and stratum. Prints one JSON object; exits 1 without a reply.

    ntp-probe.py PORT
"""
import json
import socket
import struct
import subprocess
import sys
import time

NTP_EPOCH_OFFSET = 2208988800
WRAPPER = (
    "import socket, runpy, sys\n"
    "orig = socket.getaddrinfo\n"
    "port = int(sys.argv[1])\n"
    "socket.getaddrinfo = lambda host, _p, *a, **k: orig(host, port, *a, **k)\n"
    "sys.argv = ['ntpdig'] + sys.argv[2:]\n"
    "runpy.run_path('/usr/bin/ntpdig', run_name='__main__')\n"
)


def raw_query(port: int):
    """One mode-3 request; LI, stratum and reference id of the reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        now = time.time()
        request = bytes([0x23]) + bytes(39) + struct.pack(
            "!II", int(now) + NTP_EPOCH_OFFSET, int((now % 1) * 2**32))
        s.sendto(request, ("127.0.0.1", port))
        data, _ = s.recvfrom(512)
    if len(data) < 48:
        return None
    return {"li": data[0] >> 6, "version": (data[0] >> 3) & 7, "mode": data[0] & 7,
            "stratum": data[1], "refid": data[12:16].hex()}


def ntpdig(port: int) -> str:
    out = subprocess.run(
        ["/usr/bin/python3", "-c", WRAPPER, str(port), "-d", "-t", "3", "127.0.0.1"],
        capture_output=True, text=True, timeout=20)
    lines = (out.stdout + out.stderr).strip().splitlines()
    return " | ".join(line.strip() for line in lines[-6:])


def main() -> None:
    port = int(sys.argv[1])
    report = {"ntpdig": ntpdig(port)}
    try:
        reply = raw_query(port)
    except OSError as err:
        reply = None
        report["error"] = str(err)
    if reply:
        report.update(reply)
    print(json.dumps(report))
    sys.exit(0 if reply else 1)


if __name__ == "__main__":
    main()
