r"""metrics_client - the two clients of test_metrics.sh.

usage: metrics_client.py rcpts ADDRESS...   one message, one RCPT per ADDRESS
                                            (given without <>), through the
                                            milter at MT_SOCKET; prints, per
                                            RCPT, "ADDRESS CMD REPLY"
       metrics_client.py abuse HOST PORT    what a hostile scraper can do to
                                            the metrics endpoint; prints TAP
                                            lines "ok - ..." / "not ok - ..."

abuse: binary garbage and a request line without a method the endpoint knows
get an HTTP error or are closed, never a metrics page; a 100 KB header is
refused (431) and closed; 30 connections that send nothing: beyond the
per-address limit (metricsd.h: 8) they are closed at once, the others after
the idle timeout (10 s) - none is left open past 15 s.
"""
import os
import select
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "miltertest", "lib"))
from rawmilter import Milter, name  # noqa: E402


def rcpts(addrs):
    for i in range(50):  # a milter just started may not listen yet
        try:
            m = Milter(timeout=30)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if i == 49:
                raise
            time.sleep(0.1)
    m.connect()
    m.mail(b"<alice@example.org>", b"METRICS1", b"alice")
    for a in addrs:
        dom = a.split("@", 1)[1] if "@" in a else ""
        cmd, data = m.rcpt(b"<" + a.encode() + b">", b"smtp", dom.encode() or None)
        print("%s %s %s" % (a or "<>", name(cmd), data.rstrip(b"\0").decode("utf-8", "replace")))
    m.quit()


n = 0
fails = 0


def check(cond, desc, diag=None):
    global n, fails
    n += 1
    print(("ok - " if cond else "not ok - ") + desc)
    if not cond:
        fails += 1
        if diag is not None:
            print("#   %r" % (diag,))
    sys.stdout.flush()


def exchange(hp, data, limit=15, source=None):
    """Sends data, reads to EOF: (seconds, what came back)."""
    t0 = time.monotonic()
    s = socket.create_connection(hp, timeout=limit,
                                 source_address=(source, 0) if source else None)
    out = b""
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError as e:
        out += ("<%s>" % e.__class__.__name__).encode()
    s.close()
    return time.monotonic() - t0, out


def abuse(host, port):
    hp = (host, port)
    # The garbage may be held until the idle timeout (10 s): it runs beside
    # the rest, from an address of its own (127.0.0.2: the per-address limit
    # below counts 127.0.0.1 only), so that the two waits overlap
    garbage = {}
    gt = threading.Thread(target=lambda: garbage.update(r=exchange(
        hp, b"\x00\x01\xff garbage \xfe\r\n\r\n", source="127.0.0.2")))
    gt.start()
    brew = exchange(hp, b"BREW /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    big = exchange(hp, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100000
                   + b"\r\n\r\n")
    t0 = time.monotonic()
    conns = [socket.create_connection(hp, timeout=20) for _ in range(30)]
    when = {}
    while len(when) < len(conns) and time.monotonic() - t0 < 15:
        r, _, _ = select.select([c for c in conns if c not in when], [], [], 0.5)
        for c in r:
            try:
                c.recv(16)
            except OSError:
                pass
            when[c] = time.monotonic() - t0
    gt.join()
    took, out = garbage["r"]
    check((out == b"" or out.startswith(b"HTTP/1.1 4")) and b"mtasts_" not in out and took < 12,
          "binary garbage: an HTTP 4xx or closed within the idle timeout (%.1f s)" % took, out[:80])
    took, out = brew
    check(out.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in out,
          "an unknown method: 405 with Allow", out[:120])
    took, out = big
    check(out.startswith(b"HTTP/1.1 431 ") or out.startswith(b"HTTP/1.1 413 ") or out == b"",
          "a 100 KB header: refused (431) and closed", out[:80])
    at_once = sum(1 for t in when.values() if t < 2)
    later = sum(1 for t in when.values() if t >= 2)
    check(len(when) == 30, "30 idle connections: all closed by the endpoint within 15 s "
          "(%d closed)" % len(when))
    check(at_once >= 22 and later <= 8,
          "beyond 8 from one address they are closed at once (%d at once, %d at the idle "
          "timeout)" % (at_once, later))
    for c in conns:
        c.close()
    took, out = exchange(hp, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 200 ") and b"mtasts_build_info" in out,
          "after all that, a scrape is answered", out[:80])
    return 1 if fails else 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "rcpts":
        rcpts(sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "abuse":
        sys.exit(abuse(sys.argv[2], int(sys.argv[3])))
    else:
        sys.exit(__doc__)
