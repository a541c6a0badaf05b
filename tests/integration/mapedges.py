#!/usr/bin/env python3
"""mapedges.py - socketmap protocol edge cases for test_map_edges.sh.

    mapedges.py SOCKET CASE GOOD_DOMAIN [ARG]

CASE is one of: names, midrequest, oversize, pastcap LIMIT, idlecap LIMIT.
Prints one line
per check, "ok NAME" or "not ok NAME: detail", and never raises on a server
that misbehaves (that is what is being checked). Every case ends with a good
client asking GOOD_DOMAIN on a new connection and getting the answer it got
before the case began.
"""
import select
import socket
import struct
import sys
import time

PATH, CASE, GOOD = sys.argv[1], sys.argv[2], sys.argv[3]
results = []


def check(name, cond, detail=""):
    results.append(("ok " if cond else "not ok ") + name + ("" if cond else ": " + detail))


def conn(timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(PATH)  # blocking: waits while the listen backlog is full
    s.settimeout(timeout)
    return s


def netstring(payload):
    b = payload if isinstance(payload, bytes) else payload.encode()
    return str(len(b)).encode() + b":" + b + b","


def read_reply(s):
    """One netstring reply, or None on EOF / error / timeout."""
    buf = b""
    try:
        while b":" not in buf:
            c = s.recv(1)
            if not c or len(buf) > 7:
                return None
            buf += c
        n = int(buf[:-1])
        data = b""
        while len(data) < n + 1:
            c = s.recv(n + 1 - len(data))
            if not c:
                return None
            data += c
        return data[:-1].decode(errors="replace") if data.endswith(b",") else None
    except (OSError, ValueError):
        return None


def ask(s, payload):
    try:
        s.sendall(netstring(payload))
    except OSError:
        return None
    return read_reply(s)


def closed_by_server(s, timeout=5):
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except OSError:
        return False


def good_answer():
    try:
        s = conn()
    except OSError as e:
        return "connect: %s" % e
    r = ask(s, "postfix " + GOOD)
    s.close()
    return r


WANT = good_answer()


def still_good(after):
    r = good_answer()
    check("after %s: a good client gets its answer" % after, r == WANT, repr(r))


def names():
    """Every well-formed map name is answered as "postfix" is (the map
    answers every name); a malformed one is PERM, the connection stays."""
    check("postfix " + GOOD + ": OK", WANT is not None and WANT.startswith("OK "), repr(WANT))
    for name in ("nosuchmap", "sts", "x", "a-b_c.d", "N" * 64):
        s = conn()
        r = ask(s, name + " " + GOOD)
        s.close()
        check("map name %s: the same answer as postfix" % (name if len(name) < 20 else
                                                           "of 64 bytes"), r == WANT, repr(r))
    for label, payload in (("of 65 bytes", "N" * 65 + " " + GOOD),
                           ("with a slash", "bad/name " + GOOD),
                           ("empty", " " + GOOD),
                           ("alone, no key", "nosuchmap"),
                           ("with a NUL", b"po\x00stfix " + GOOD.encode())):
        s = conn()
        r1 = ask(s, payload)
        r2 = ask(s, "postfix " + GOOD)
        s.close()
        check("map name %s: PERM, and the connection answers the next request" % label,
              r1 is not None and r1.startswith("PERM ") and r2 == WANT, repr((r1, r2)))
    still_good("unknown map names")


def midrequest():
    """Clients that go away part-way; the map keeps serving the others."""
    cuts = (("in the length", b"2"),
            ("after the length", b"20:"),
            ("in the name", b"20:post"),
            ("in the key", b"20:postfix exam"),
            ("before the comma", b"20:postfix example.test"))
    for label, data in cuts:
        s = conn()
        s.sendall(data)
        s.close()
        still_good("a client that closes " + label)
    # A reset (SO_LINGER 0) mid-request, and after a whole request.
    for label, data in (("mid-request", b"20:postfix exa"),
                        ("after a whole request", netstring("postfix " + GOOD))):
        s = conn()
        s.sendall(data)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        still_good("a connection reset " + label)
    # Pipelined requests, then gone before reading any answer.
    s = conn()
    s.sendall(b"".join(netstring("postfix " + GOOD) for _ in range(50)))
    s.close()
    still_good("a client that pipelines 50 requests and leaves")
    # A half-close after a whole request: no crash whatever the server does.
    s = conn()
    s.sendall(netstring("postfix " + GOOD))
    s.shutdown(socket.SHUT_WR)
    r = read_reply(s)
    s.close()
    check("half-close after a request: answered or closed, no other reply",
          r is None or r == WANT, repr(r))
    still_good("a half-close")
    # Forty clients stopping mid-request at once, while a good client asks.
    held = []
    for i in range(40):
        s = conn()
        s.sendall(b"30:postfix d%02d" % (i % 50))
        held.append(s)
    still_good("40 clients stalled mid-request")
    for s in held:
        s.close()
    still_good("40 clients gone mid-request")


def oversize():
    """Keys and requests at and past Postfix's limits."""
    cases = (("a 10000-byte key", "postfix " + "a" * 10000, "NOTFOUND "),
             ("a 64-byte name and a 10000-byte key (10065 bytes)",
              "N" * 64 + " " + "a" * 10000, "NOTFOUND "),
             ("a 254-byte domain name", "postfix " + ("a" * 62 + ".") * 4 + "test", "NOTFOUND "),
             ("a 64-byte label", "postfix " + "a" * 64 + ".test", "NOTFOUND "),
             ("a 10001-byte key", "postfix " + "a" * 10001, "PERM"),
             ("a 10001-byte domain-like key", "postfix " + ("a." * 5001)[:10001], "PERM"))
    for label, payload, want in cases:
        s = conn()
        r1 = ask(s, payload)
        r2 = ask(s, "postfix " + GOOD)
        s.close()
        check("%s: %s, the connection stays" % (label, want.strip()),
              r1 is not None and r1.startswith(want) and r2 == WANT, repr((r1, r2))[:200])
    # Past the request limit: closed as soon as the length is read.
    for label, data in (("a 10066-byte request", netstring("N" * 64 + " " + "a" * 10001)),
                        ("a length of 7 digits", b"1000000:"),
                        ("a 1 MB key", netstring("postfix " + "a" * 1048576))):
        s = conn()
        try:
            s.sendall(data)
        except OSError:
            pass
        check(label + ": connection closed", closed_by_server(s))
        s.close()
        still_good(label)


def pastcap(limit):
    """limit connections open, each in the middle of a request (none idle):
    one more is closed at once; the others work; once they are gone, a new
    client is served."""
    cs = []
    req = netstring("postfix " + GOOD)
    try:
        for _ in range(limit):
            cs.append(conn())
            cs[-1].sendall(req[:-3])
    except OSError as e:
        check("%d connections opened" % limit, False, str(e))
        return
    time.sleep(0.5)
    extra = [conn() for _ in range(5)]
    closed = sum(1 for s in extra if closed_by_server(s, 3))
    check("past map_max_clients (%d), none idle: 5 more connections closed at once (%d)"
          % (limit, closed), closed == 5, "%d of 5 closed" % closed)
    s = cs[limit // 2]
    try:
        s.sendall(req[-3:])
        r = read_reply(s)
    except OSError as e:
        r = str(e)
    check("an open connection under the cap completes its request and is answered",
          r == WANT, repr(r))
    for s in extra + cs:
        s.close()
    time.sleep(0.5)
    still_good("the cap")


def closed_now(socks, wait):
    """The indexes of the sockets the server has closed (EOF or reset)
    within wait seconds; data waiting on one is a failure of its own."""
    p = select.poll()
    for i, s in enumerate(socks):
        p.register(s.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    gone = set()
    end = time.time() + wait
    while time.time() < end:
        for fd, _ev in p.poll(100):
            i = by_fd[fd]
            try:
                data = socks[i].recv(1, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                check("no unasked data on an idle connection", False, repr(data))
            gone.add(i)
            p.unregister(fd)
    return gone


def idlecap(limit):
    """limit connections open and idle (each asked once, then silent): new
    clients are not locked out; for each, the connection idle the longest
    is closed, and the others stay."""
    cs = []
    try:
        for _ in range(limit):
            s = conn()
            if ask(s, "postfix " + GOOD) != WANT:
                raise OSError("a held connection was not answered")
            cs.append(s)
    except OSError as e:
        check("%d connections opened" % limit, False, str(e))
        return
    time.sleep(2.5)  # past the listener's once-a-second look at idle connections
    extra, answers = [], []
    for _ in range(5):
        try:
            s = conn()
            extra.append(s)
            answers.append(ask(s, "postfix " + GOOD))
        except OSError as e:
            answers.append(str(e))
    check("map_max_clients (%d) idle connections open: 5 new clients are answered" % limit,
          answers == [WANT] * 5, repr(answers)[:300])
    gone = closed_now(cs, 2)
    check("for them, 5 idle connections closed (%d)" % len(gone), len(gone) == 5,
          repr(sorted(gone)[:20]))
    check("the closed ones are among the 20 idle the longest", all(i < 20 for i in gone),
          repr(sorted(gone)[:20]))
    live = [i for i in range(limit) if i not in gone]
    r = ask(cs[live[-1]], "postfix " + GOOD) if live else None
    check("an idle connection not closed is still answered", r == WANT, repr(r))
    for s in extra + cs:
        s.close()
    time.sleep(0.5)
    still_good("idle connections at the cap")


if __name__ == "__main__":
    if CASE == "names":
        names()
    elif CASE == "midrequest":
        midrequest()
    elif CASE == "oversize":
        oversize()
    elif CASE == "pastcap":
        pastcap(int(sys.argv[4]))
    elif CASE == "idlecap":
        idlecap(int(sys.argv[4]))
    else:
        sys.exit("unknown case " + CASE)
    for line in results:
        print(line)
