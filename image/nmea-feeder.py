#!/usr/bin/python3
"""The boot test's GNSS receiver: writes NMEA for the host's UTC second, once a
second, into the guest's emulated PL011 UART (a QEMU chardev Unix socket), as
a receiver with a fix but no PPS wired would. No PPS, so skytimed must serve
LI=3 however good the sentences are.

    nmea-feeder.py SOCKET SECONDS
"""
import socket
import sys
import time


def sentence(body: str) -> bytes:
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


def epoch(utc: time.struct_time) -> bytes:
    hms = time.strftime("%H%M%S.00", utc)
    dmy = time.strftime("%d%m%y", utc)
    return (
        sentence(f"GPRMC,{hms},A,5130.0000,N,00007.0000,W,0.0,0.0,{dmy},,,A")
        + sentence(f"GPGGA,{hms},5130.0000,N,00007.0000,W,1,08,1.0,50.0,M,47.0,M,,")
    )


def main() -> None:
    path, seconds = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + seconds
    conn = None
    while conn is None and time.monotonic() < deadline:
        try:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(path)
        except OSError:
            conn = None
            time.sleep(0.2)
    if conn is None:
        sys.exit(f"nmea-feeder: cannot connect to {path}")
    sent = 0
    while time.monotonic() < deadline:
        now = time.time()
        # 100 ms after the top of the second, as a receiver's burst follows its pulse.
        time.sleep(1.1 - (now % 1.0) if now % 1.0 > 0.1 else 0.1 - now % 1.0)
        try:
            conn.sendall(epoch(time.gmtime(int(time.time()))))
        except OSError as err:
            sys.exit(f"nmea-feeder: guest went away after {sent} epochs: {err}")
        sent += 1
    print(f"nmea-feeder: sent {sent} epochs", file=sys.stderr)


if __name__ == "__main__":
    main()
