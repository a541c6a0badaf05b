#!/usr/bin/env python3
"""fakemilter.py - a tiny milter (protocol 6) for checking the e2e plumbing
before/without mtasts-milter. Not the product.

    fakemilter.py [-f] [-c CONF] -p unix:PATH|inet:PORT@ADDR [--log FILE]
                  [--rcpt-reply DOMAIN=REPLY]...

Logs one JSON line per milter command it receives (with the macros that came
with it) to --log (default: stdout), accepts everything, adds the header
"X-Fake-Milter: seen" at end of message. --rcpt-reply enforce.test=451 makes
RCPT TO a recipient in that domain answer "451 4.7.0 fakemilter says no"
(550 -> "5.7.0"). -f and -c are accepted (and ignored) so that e2e.sh
milter-start can start it like mtasts-milter (MTS_E2E_MILTER=.../fakemilter.py).
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading

OPTNEG_ACTIONS = 0x1FF
LOCK = threading.Lock()


def log(out, rec):
    with LOCK:
        out.write(json.dumps(rec, sort_keys=True) + "\n")
        out.flush()


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def send(conn, cmd, data=b""):
    conn.sendall(struct.pack("!I", len(data) + 1) + cmd + data)


def cstrings(data):
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "replace") for p in parts]


def handle(conn, out, replies, peer):
    macros = {}
    rcpt_domain = None
    try:
        while True:
            (length,) = struct.unpack("!I", recv_exact(conn, 4))
            pkt = recv_exact(conn, length)
            cmd, data = pkt[:1], pkt[1:]
            if cmd == b"O":
                ver, _act, _proto = struct.unpack("!III", data[:12])
                send(conn, b"O", struct.pack("!III", 6, OPTNEG_ACTIONS, 0))
                continue
            if cmd == b"D":
                stage = chr(data[0])
                kv = cstrings(data[1:])
                macros[stage] = dict(zip(kv[0::2], kv[1::2]))
                continue
            rec = {"cmd": cmd.decode(), "peer": peer}
            stage = cmd.decode()
            if stage in macros:
                rec["macros"] = macros.pop(stage)
            if cmd == b"C":
                host, rest = data.split(b"\0", 1)
                rec["hostname"] = host.decode()
                fam = chr(rest[0])
                rec["family"] = fam
                if fam in "46":
                    rec["port"] = struct.unpack("!H", rest[1:3])[0]
                    rec["address"] = rest[3:].rstrip(b"\0").decode()
            elif cmd in (b"H", b"M", b"R", b"L"):
                rec["args"] = cstrings(data)
            elif cmd == b"B":
                rec["bytes"] = len(data)
            log(out, rec)
            if cmd in (b"A",):
                continue
            if cmd == b"Q":
                return
            if cmd == b"K":
                macros = {}
                continue
            if cmd == b"R":
                addr = rec["args"][0].strip("<>") if rec["args"] else ""
                rcpt_domain = addr.rsplit("@", 1)[-1].lower()
                code = replies.get(rcpt_domain)
                if code:
                    dsn = code[0] + ".7.0"
                    send(conn, b"y", f"{code} {dsn} fakemilter says no\0".encode())
                    continue
            if cmd == b"E":
                send(conn, b"h", b"X-Fake-Milter\0seen\0")
                send(conn, b"a")
                continue
            send(conn, b"c")
    except (EOFError, ConnectionError):
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-f", action="store_true")
    ap.add_argument("-c")
    ap.add_argument("-p", required=True)
    ap.add_argument("--log")
    ap.add_argument("--rcpt-reply", action="append", default=[])
    a = ap.parse_args()
    replies = {}
    for r in a.rcpt_reply:
        d, code = r.split("=", 1)
        replies[d.lower()] = code
    out = open(a.log, "a") if a.log else sys.stdout
    if a.p.startswith("unix:") or a.p.startswith("local:"):
        path = a.p.split(":", 1)[1]
        if os.path.exists(path):
            os.unlink(path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
    elif a.p.startswith("inet:"):
        port, _, addr = a.p[5:].partition("@")
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((addr or "127.0.0.1", int(port)))
    else:
        sys.exit("fakemilter: bad -p " + a.p)
    srv.listen(16)
    n = 0
    while True:
        conn, _ = srv.accept()
        n += 1
        threading.Thread(target=handle, args=(conn, out, replies, n), daemon=True).start()


if __name__ == "__main__":
    main()
