#!/usr/bin/python3
"""Seconds from the last "refclock started" of skytimed to its first lock
after it, from `journalctl -u skytimed -o short-monotonic` on stdin: the
daemon's own lock time, free of the harness's polling and ssh delays (and,
being monotonic, of the clock steps in between). Prints "-" if it has not
locked."""
import re, sys

start = locked = None
pid = None
for line in sys.stdin:
    m = re.match(r"\[\s*([0-9.]+)\].*?skytimed\[(\d+)\]:", line)
    if not m:
        continue
    t, p = float(m.group(1)), m.group(2)
    if "refclock started" in line:
        start, pid, locked = t, p, None
    elif start is not None and p == pid and locked is None and 'to="locked"' in line:
        locked = t
print("-" if start is None or locked is None else "%.1f" % (locked - start))
