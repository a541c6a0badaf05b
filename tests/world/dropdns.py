#!/usr/bin/env python3
"""dropdns.py LISTEN_ADDR UPSTREAM_ADDR PATTERN [PIDFILE [COUNTFILE]]

A DNS forwarder that silently drops some queries, as a broken middlebox or
an overloaded upstream does for some names: a query whose name matches the
regular expression PATTERN (searched in the lower-case name, without the
trailing dot) gets no answer at all; every other query is passed to
UPSTREAM_ADDR (port 53, UDP) and its answer relayed back. A resolver
behind it sees timeouts for those names only, while the forwarder itself
is healthy. UDP only; loopback addresses only (the test world's rule).

With COUNTFILE, after each query it rewrites the file with two numbers,
"forwarded dropped", so a test can tell what reached the upstream.

With DROPDNS_DELAY_MS in the environment, a matching name is slow, not
dropped: as a caching resolver whose recursion for that name takes that
long, it answers every query of the name once DROPDNS_DELAY_MS have passed
since its first one (at once after that). "dropped" then counts the
queries of slow names.
"""
import os
import re
import socket
import sys
import threading
import time


def qname(msg):
    """The first question's name, lower case, without the trailing dot."""
    labels, i = [], 12
    while i < len(msg):
        n = msg[i]
        if n == 0:
            return ".".join(labels).lower()
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    raise ValueError("name runs past the message")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    listen, upstream, pattern = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])
    for a in (listen, upstream):
        if not a.startswith("127."):
            sys.exit("dropdns: loopback addresses only")
    countfile = sys.argv[5] if len(sys.argv) > 5 else None
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind((listen, 53))
    if len(sys.argv) > 4:
        with open(sys.argv[4], "w") as f:
            f.write("%d\n" % os.getpid())
    counts = [0, 0]
    lock = threading.Lock()

    def count(k):
        with lock:
            counts[k] += 1
            if countfile:
                with open(countfile + ".tmp", "w") as f:
                    f.write("%d %d\n" % tuple(counts))
                os.replace(countfile + ".tmp", countfile)

    delay = int(os.environ.get("DROPDNS_DELAY_MS", "0")) / 1000.0
    first_seen = {}

    def relay(data, peer, wait=0.0):
        if wait > 0:
            time.sleep(wait)
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(3)
        try:
            up.sendto(data, (upstream, 53))
            answer, _ = up.recvfrom(65535)
            srv.sendto(answer, peer)
        except OSError:
            pass
        finally:
            up.close()

    while True:
        data, peer = srv.recvfrom(65535)
        try:
            name = qname(data)
            drop = pattern.search(name) is not None
        except ValueError:
            name, drop = None, True
        count(1 if drop else 0)
        wait = 0.0
        if drop and delay > 0 and name is not None:
            now = time.monotonic()
            wait = max(0.0, first_seen.setdefault(name, now) + delay - now)
            drop = False
        if not drop:
            threading.Thread(target=relay, args=(data, peer, wait), daemon=True).start()


if __name__ == "__main__":
    main()
