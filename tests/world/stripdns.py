#!/usr/bin/env python3
"""stripdns.py LISTEN_ADDR UPSTREAM_ADDR [PIDFILE]

A DNS forwarder that strips DNSSEC, as many home routers, laptops' stub
resolvers and container DNS proxies do: it clears the DO bit of every query
before passing it to UPSTREAM_ADDR (port 53, UDP), so the answers come back
without RRSIG, DNSKEY signatures or NSEC records. A validating client behind
it can then prove nothing and finds everything bogus. UDP only; loopback
addresses only (the test world's rule).
"""
import os
import socket
import sys
import threading


def skip_name(msg, i):
    while i < len(msg):
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n
    raise ValueError("name runs past the message")


def clear_do(query):
    """The query with the DO bit of its OPT record cleared (if it has one)."""
    msg = bytearray(query)
    if len(msg) < 12:
        return bytes(msg)
    qd, an, ns, ar = (int.from_bytes(msg[k:k + 2], "big") for k in (4, 6, 8, 10))
    i = 12
    for _ in range(qd):
        i = skip_name(msg, i) + 4
    for _ in range(an + ns + ar):
        i = skip_name(msg, i)
        rtype = int.from_bytes(msg[i:i + 2], "big")
        if rtype == 41:  # OPT: TTL = ext-rcode, version, flags (DO = 0x8000)
            msg[i + 6] &= 0x7F
        rdlen = int.from_bytes(msg[i + 8:i + 10], "big")
        i += 10 + rdlen
    return bytes(msg)


def main():
    listen, upstream = sys.argv[1], sys.argv[2]
    for a in (listen, upstream):
        if not a.startswith("127."):
            sys.exit("stripdns: loopback addresses only")
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind((listen, 53))
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write("%d\n" % os.getpid())

    def relay(data, peer):
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(3)
        try:
            up.sendto(clear_do(data), (upstream, 53))
            answer, _ = up.recvfrom(65535)
            srv.sendto(answer, peer)
        except (OSError, ValueError):
            pass
        finally:
            up.close()

    while True:
        data, peer = srv.recvfrom(65535)
        threading.Thread(target=relay, args=(data, peer), daemon=True).start()


if __name__ == "__main__":
    main()
