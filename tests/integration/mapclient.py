#!/usr/bin/env python3
"""mapclient.py - hostile and well-behaved socketmap clients for test_map.sh.

    mapclient.py SOCKET hostile GOOD_DOMAIN SLOW_DOMAIN

Prints one line per check, "ok NAME" or "not ok NAME: detail", and never
raises on a server that misbehaves (that is what is being checked).
Garbage, a 1 MB netstring, a client that stops mid-request, a slow
lookup (SLOW_DOMAIN) asked by 10 clients at once, 100 idle connections:
meanwhile a good client's answer for GOOD_DOMAIN must come at once.
Thousands of pipelined requests read late: every answer, in order.
"""
import socket
import sys
import threading
import time

PATH = sys.argv[1]
results = []


def check(name, cond, detail=""):
    results.append(("ok " if cond else "not ok ") + name + ("" if cond else ": " + detail))


def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(PATH)  # blocking: waits while the listen backlog is full
    s.settimeout(10)
    return s


def netstring(text):
    b = text.encode()
    return str(len(b)).encode() + b":" + b + b","


def read_reply(s):
    """One netstring reply, or None on EOF / error."""
    buf = b""
    try:
        while b":" not in buf:
            c = s.recv(1)
            if not c:
                return None
            buf += c
        n = int(buf[:-1])
        data = b""
        while len(data) < n + 1:
            c = s.recv(n + 1 - len(data))
            if not c:
                return None
            data += c
        return data[:-1].decode()
    except (OSError, ValueError):
        return None


def ask(s, key, name="postfix"):
    s.sendall(netstring(name + " " + key))
    return read_reply(s)


def closed_by_server(s, timeout=5):
    s.settimeout(timeout)
    try:
        while True:
            c = s.recv(65536)
            if not c:
                return True
    except ConnectionResetError:
        return True
    except OSError:
        return False


def timed_ask(key):
    t = time.monotonic()
    s = conn()
    r = ask(s, key)
    s.close()
    return r, time.monotonic() - t


def hostile(good, slow):
    want, _ = timed_ask(good)
    check("good client answered before the attacks", want is not None and want.startswith("OK "),
          repr(want))

    # Garbage: closed.
    s = conn()
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    check("garbage: connection closed", closed_by_server(s))
    s.close()

    # A leading zero, a missing comma: closed.
    for label, data in (("leading zero", b"019:postfix example.com,"),
                        ("no comma", b"19:postfix example.com;")):
        s = conn()
        s.sendall(data)
        check(label + ": connection closed", closed_by_server(s))
        s.close()

    # A 1 MB netstring: closed as soon as the length is read.
    s = conn()
    try:
        s.sendall(b"1048576:" + b"a" * 1048576 + b",")
    except OSError:
        pass
    check("1 MB netstring: connection closed", closed_by_server(s))
    s.close()

    # The largest request Postfix sends (a 10000-byte key) is answered.
    s = conn()
    r = ask(s, "a" * 10000)
    check("10000-byte key: answered NOTFOUND", r == "NOTFOUND ", repr(r))
    s.close()

    # Pipelined requests: answered in order on one connection.
    s = conn()
    s.sendall(netstring("postfix nxdomain.test") + netstring("postfix " + good) +
              netstring("postfix .test"))
    rs = [read_reply(s) for _ in range(3)]
    check("pipelined: three answers in order",
          rs[0] == "NOTFOUND " and rs[1] == want and rs[2] == "NOTFOUND ", repr(rs))
    s.close()

    # Pipelined, a never-seen domain between warm ones: the warm ones are
    # answered on the map's event loop, the cold one by an answer thread;
    # the answers still keep the order of the requests.
    s = conn()
    s.sendall(netstring("postfix " + good) + netstring("postfix never-seen-pipelined.test") +
              netstring("postfix") + netstring("postfix " + good))
    rs = [read_reply(s) for _ in range(4)]
    check("pipelined: warm, cold, malformed, warm: answers in order",
          rs[0] == want and rs[1] == "NOTFOUND " and rs[2] is not None and
          rs[2].startswith("PERM ") and rs[3] == want, repr(rs))
    s.close()

    # Many pipelined requests sent at once, the answers read only later: the
    # map gathers a connection's answers into batched writes, and stops
    # reading while the client does not take them; every answer comes, in
    # order, and those before a malformed netstring come before the close.
    n_many = 20000
    keys = [good if i % 3 == 0 else "nxdomain.test" if i % 3 == 1 else ".test"
            for i in range(n_many)]
    s = conn()
    burst = b"".join(netstring("postfix " + k) for k in keys) + b"3:abc;"
    sender = threading.Thread(target=lambda: s.sendall(burst), daemon=True)
    sender.start()
    time.sleep(0.5)  # the map's answers fill the socket buffer meanwhile
    rs = [read_reply(s) for _ in range(n_many)]
    sender.join(10)
    bad = [i for i, r in enumerate(rs) if r != (want if keys[i] == good else "NOTFOUND ")]
    tail = read_reply(s)
    check("%d pipelined, read late: every answer, in order, then closed at the malformed one"
          % n_many, not bad and tail is None and not sender.is_alive(),
          "first wrong at %s: %r; after: %r" % (bad[:1], [rs[i] for i in bad[:1]], tail))
    s.close()

    # A request with a malformed payload: PERM, and the connection stays.
    s = conn()
    s.sendall(netstring("postfix"))
    r1 = read_reply(s)
    r2 = ask(s, good)
    check("no key: PERM, then the next request answered",
          r1 is not None and r1.startswith("PERM ") and r2 == want, repr((r1, r2)))
    s.close()

    # A client that goes away mid-request, and one that asks and leaves.
    s = conn()
    s.sendall(b"19:postfix ex")
    s.close()
    s = conn()
    s.sendall(netstring("postfix " + slow))
    s.close()

    # Attackers that stay: a slow client, 100 idle connections, 10 slow lookups.
    slowc = conn()
    slowc.sendall(b"20:postfix exa")
    idle = [conn() for _ in range(100)]
    slow_answers = []

    def ask_slow():
        try:
            c = conn()
            slow_answers.append(ask(c, slow))
            c.close()
        except OSError as e:
            slow_answers.append("error " + str(e))

    threads = [threading.Thread(target=ask_slow) for _ in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    r, took = timed_ask(good)
    check("good client answered at once during the attacks (%.0f ms)" % (took * 1000),
          r == want and took < 0.5, "%r after %.3f s" % (r, took))
    # Each still-open idle connection works.
    r = ask(idle[57], good)
    check("an idle connection among 100 still answered", r == want, repr(r))
    for t in threads:
        t.join()
    check("10 slow lookups: each answered TEMP",
          len(slow_answers) == 10 and all(a and a.startswith("TEMP ") for a in slow_answers),
          repr(slow_answers))
    for c in idle:
        c.close()
    slowc.sendall(b"mple.test,")
    r = read_reply(slowc)
    check("slow client completes its request: answered", r == "NOTFOUND ", repr(r))
    slowc.close()

    r, took = timed_ask(good)
    check("good client answered after the attacks", r == want, repr(r))


def overflow(limit):
    """limit+10 connections: at least 10 are closed at once; the rest work."""
    cs = [conn() for _ in range(limit + 10)]
    time.sleep(0.5)
    refused = 0
    for c in cs:
        c.settimeout(0.2)
        try:
            if c.recv(1) == b"":
                refused += 1
        except socket.timeout:
            pass
        except OSError:
            refused += 1
    check("over map_max_clients: the extra connections closed (%d)" % refused, refused >= 10,
          "%d closed" % refused)
    for c in cs:
        c.close()
    time.sleep(0.3)


if __name__ == "__main__":
    if sys.argv[2] == "hostile":
        hostile(sys.argv[3], sys.argv[4])
    elif sys.argv[2] == "overflow":
        overflow(int(sys.argv[3]))
    for line in results:
        print(line)
