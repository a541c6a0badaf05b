#!/usr/bin/env python3
"""Servers that accept connections and never answer (test world, tests/world).

Usage:
  hangserver.py --pidfile FILE --log FILE LISTEN [LISTEN ...]

LISTEN is one of
  ADDR:PORT:hang              accept TCP, never send a byte (a TLS client
                              hangs in its handshake)
  ADDR:PORT:tlshang:CERT:KEY  complete the TLS handshake, read the HTTP
                              request, never answer

Every accepted connection is held open until the client closes it. One line
per connection event goes to the log file, so tests can count attempts:
  <unix-time> accept <mode> <listen-addr> <peer-addr>
The pid file is written once every socket is bound and listening, so the
caller can wait for it. SIGTERM / SIGINT end the process.
"""

import argparse
import os
import signal
import socket
import ssl
import sys
import threading
import time

LOG_LOCK = threading.Lock()
LOG_FILE = None


def log(msg):
    with LOG_LOCK:
        LOG_FILE.write("%.3f %s\n" % (time.time(), msg))
        LOG_FILE.flush()


def drain(conn):
    """Read and discard until the peer closes; never write."""
    try:
        conn.settimeout(None)
        while True:
            data = conn.recv(65536)
            if not data:
                break
    except OSError:
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def handle(conn, peer, mode, where, ctx):
    log("accept %s %s %s:%d" % (mode, where, peer[0], peer[1]))
    if mode == "tlshang":
        try:
            conn.settimeout(30)
            conn = ctx.wrap_socket(conn, server_side=True)
            log("handshake %s %s %s:%d" % (mode, where, peer[0], peer[1]))
        except (OSError, ssl.SSLError) as e:
            log("handshake-failed %s %s %s:%d %s" % (mode, where, peer[0], peer[1], e))
            try:
                conn.close()
            except OSError:
                pass
            return
    drain(conn)


def serve(sock, mode, where, ctx):
    while True:
        try:
            conn, peer = sock.accept()
        except OSError:
            continue
        t = threading.Thread(target=handle, args=(conn, peer, mode, where, ctx), daemon=True)
        t.start()


def main():
    global LOG_FILE
    ap = argparse.ArgumentParser()
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("listen", nargs="+")
    args = ap.parse_args()

    LOG_FILE = open(args.log, "a", buffering=1)
    socks = []
    for spec in args.listen:
        parts = spec.split(":")
        if len(parts) < 3:
            sys.exit("bad listen spec: %s" % spec)
        addr, port, mode = parts[0], int(parts[1]), parts[2]
        ctx = None
        if mode == "tlshang":
            if len(parts) != 5:
                sys.exit("tlshang needs ADDR:PORT:tlshang:CERT:KEY")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(parts[3], parts[4])
        elif mode != "hang":
            sys.exit("unknown mode: %s" % mode)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(64)
        socks.append((s, mode, "%s:%d" % (addr, port), ctx))

    def bye(signum, frame):
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)

    for s, mode, where, ctx in socks:
        threading.Thread(target=serve, args=(s, mode, where, ctx), daemon=True).start()
        log("listening %s %s" % (mode, where))

    tmp = args.pidfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(tmp, args.pidfile)

    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
