r"""probes_client - the MTA side for test_probes.sh: RCPTs to the world's
STARTTLS MX domains through a running mtasts-milter (MT_SOCKET), with
mx_probes = yes. Prints TAP.

usage: probes_client.py PHASE      (enforce | rules | restart)

enforce: the built-in rule (plus shared2.test require=tls): the first RCPT
to a fresh domain waits for its MX probes within the RCPT deadline (the
first message): goodmx is accepted at once with tls=verified; hangmx,
whose MX never greets, is answered at the deadline with the rule's
unknown= action (450 4.7.5); then goodmx and mixedmx pass with
tls=verified; expiredmx, wrongnamemx, nostarttls and mismatchmx defer
naming the host and the failure; hangmx and downmx stay unknown, answered
at once once their probes ended.
rules: expiredmx.test without MTA-STS under require=verified-tls
fail=reject is rejected; wrongnamemx.test under require=tls passes with
tls=unverified; cnamemx.test (MX through a CNAME) passes; nullmx.test under
require=tls is deferred (a null MX takes no mail).
edges: the probe's edge hosts (TLS 1.1 only, another CA, hostile banners, a
hang after STARTTLS, a dripping banner): each enforce domain is deferred
450 4.7.5 naming its MX host and what failed; an RCPT never waits for them.
first-off: the first RCPT to goodmx.test with mx_probes = no, for the figure.
slow-ask: one RCPT to each of slow1..slow8.test at once (their probes start
together), each answered within the RCPT deadline.
slow: RCPTs to slow1..slow8.test until each passes with tls=verified.
dane-first, dane: the DANE domains (tests/world/test_dane.sh): the first RCPT
to each, fresh cache, is answered by DANE; then each case again.
"""
import os
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "miltertest", "lib"))
from rawmilter import Milter, name, REPLYCODE, CONTINUE  # noqa: E402

HEADER = b"MTA-STS-Status"
n = 0
fails = 0


def check(cond, desc, diag=None):
    global n, fails
    n += 1
    print(("ok %d - " if cond else "not ok %d - ") % n + desc)
    if not cond:
        fails += 1
        if diag is not None:
            for line in str(diag).splitlines():
                print("#   " + line)
    sys.stdout.flush()
    return cond


def ask(domain):
    """One message to bob@DOMAIN: (reply kind, reply text, tag header, seconds)."""
    for i in range(50):  # a milter just started may not listen yet
        try:
            m = Milter(timeout=30)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if i == 49:
                raise
            time.sleep(0.1)
    m.connect()
    m.mail(b"<alice@example.org>", b"PROBE1", b"alice")
    t0 = time.monotonic()
    cmd, data = m.rcpt(b"<bob@" + domain.encode() + b">", b"smtp", domain.encode())
    took = time.monotonic() - t0
    text = data.rstrip(b"\0").decode("utf-8", "replace")
    tag = ""
    if cmd == CONTINUE:
        m.header(b"Subject", b"probe test")
        final, actions = m.eom()
        for kind, d in actions:
            if kind == b"h" or kind == b"i":
                body = d[4:] if kind == b"i" else d
                parts = body.split(b"\0")
                if parts[0] == HEADER:
                    tag = parts[1].decode("utf-8", "replace")
    m.quit()
    return cmd, text, tag, took


def unknown_yet(cmd, text, tag):
    return (cmd == REPLYCODE and ("is not known yet" in text or "is known to pass" in text)) \
        or "tls=unknown" in tag


def wait_known(domain, limit=40):
    """Asks until the path is no longer unknown (the probes ran)."""
    end = time.monotonic() + limit
    while True:
        r = ask(domain)
        if not unknown_yet(*r[:3]) or time.monotonic() > end:
            return r
        time.sleep(0.3)


def wait_for(domain, done, limit):
    """Asks until done(reply) (or limit seconds have passed): the last reply."""
    end = time.monotonic() + limit
    while True:
        r = ask(domain)
        if done(r) or time.monotonic() > end:
            return r
        time.sleep(0.3)


def show(r):
    return "%s %r tag=%r (%.2f s)" % (name(r[0]), r[1], r[2], r[3])


def phase_enforce():
    deadline = float(os.environ.get("RCPT_DEADLINE_S", "3"))
    domains = ["goodmx.test", "expiredmx.test", "wrongnamemx.test", "nostarttls.test",
               "mixedmx.test", "mismatchmx.test", "hangmx.test", "downmx.test",
               "shared1.test", "shared2.test", "tls10mx.test"]
    # Cold: the policy is learnt, the probes start, the RCPT waits for them
    # (the first message), at most until the RCPT deadline.
    first = {d: ask(d) for d in domains}
    r = first["goodmx.test"]
    print("# first RCPT to goodmx.test (fresh cache, probes on): %.3f s" % r[3])
    check(r[0] == CONTINUE and "verdict=pass" in r[2] and r[2].endswith("; tls=verified"),
          "goodmx.test, fresh: the first RCPT waits for the probe and is accepted, "
          "tls=verified (%.2f s)" % r[3], show(r))
    r = first["hangmx.test"]
    check(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 ") and unknown_yet(*r[:3])
          and deadline - 0.3 <= r[3] < deadline + 0.5,
          "hangmx.test, fresh, its MX never greets: 450 4.7.5 (unknown=defer) at the RCPT "
          "deadline (%.2f s)" % r[3], show(r))
    check(all(v[3] < deadline + 0.5 for v in first.values()),
          "every cold RCPT answered within the RCPT deadline (%.1f s)" % deadline,
          "\n".join("%s: %s" % (d, show(v)) for d, v in first.items()))

    r = wait_known("goodmx.test")
    check(r[0] == CONTINUE and "verdict=pass" in r[2] and r[2].endswith("; tls=verified"),
          "goodmx.test: accepted, tag verdict=pass ... tls=verified", show(r))
    check(r[2].startswith("domain=goodmx.test; status=enforce; id="),
          "goodmx.test: the tag keeps its fields and order", show(r))
    # The reply names the host and a fixed word (common/probeword.h), never
    # what the server sent: not the names in its certificate, not its greeting.
    for dom, host, why in (("expiredmx.test", "mx.expiredmx.test", "certificate-expired"),
                           ("wrongnamemx.test", "mx.wrongnamemx.test",
                            "certificate-host-mismatch"),
                           ("nostarttls.test", "mx.nostarttls.test", "starttls-not-supported"),
                           ("tls10mx.test", "mx.tls10mx.test", "tls-too-old"),
                           ("mismatchmx.test", "mx1.mismatchmx.test",
                            "starttls-not-supported")):
        r = wait_known(dom)
        check(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 MTA-STS: " + dom +
                                                   " requires MTA-STS (enforce) and no MX host")
              and host in r[1] and why in r[1] and "someone-else" not in r[1]
              and "127.0." not in r[1] and "ESMTP" not in r[1],
              "%s: 450 4.7.5 naming %s and \"%s\"" % (dom, host, why), show(r))
    r = wait_known("mixedmx.test")
    check(r[0] == CONTINUE and "verdict=pass" in r[2] and "tls=verified" in r[2],
          "mixedmx.test (one good MX, one self-signed): accepted, tls=verified", show(r))
    r = wait_known("shared1.test")
    check(r[0] == CONTINUE and "tls=verified" in r[2], "shared1.test: accepted, tls=verified",
          show(r))
    r = wait_known("shared2.test")
    check(r[0] == CONTINUE and "requirement=tls; verdict=pass" in r[2] and "tls=verified" in r[2],
          "shared2.test (require=tls, same MX host): accepted, tls=verified", show(r))
    # Both stay unknown: hangmx times out at the greeting, downmx refuses.
    time.sleep(float(os.environ.get("PROBE_TIMEOUT_S", "3")) + 0.5)
    # Both the same word: how a connection failed is not for the sender.
    for dom, why in (("hangmx.test", "unreachable"), ("downmx.test", "unreachable")):
        r = ask(dom)
        check(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 ") and unknown_yet(*r[:3])
              and why in r[1] and "refused" not in r[1] and "timed out" not in r[1]
              and r[3] < 1.0, "%s: still unknown after its probe (%s): 450 4.7.5 at once" % (dom, why),
              show(r))


def phase_first_off():
    r = ask("goodmx.test")
    print("# first RCPT to goodmx.test (fresh cache, probes off): %.3f s" % r[3])
    check(r[0] == CONTINUE and "verdict=pass" in r[2],
          "probes off: goodmx.test, fresh, accepted (%.2f s)" % r[3], show(r))


def phase_rules():
    r = ask("expiredmx.test")
    r = wait_known("expiredmx.test")
    check(r[0] == REPLYCODE and
          r[1].startswith("550 5.7.5 MTA-STS: expiredmx.test requires verified-tls and its MX "
                          "host mx.expiredmx.test") and "expired" in r[1],
          "expiredmx.test without MTA-STS, require=verified-tls fail=reject: 550 5.7.5 naming "
          "the host", show(r))
    r = wait_known("wrongnamemx.test")
    check(r[0] == CONTINUE and "requirement=tls; verdict=pass" in r[2]
          and r[2].endswith("; tls=unverified"),
          "wrongnamemx.test, require=tls: an unverified certificate is enough (tls=unverified)",
          show(r))
    r = wait_known("cnamemx.test")
    check(r[0] == CONTINUE and "verdict=pass" in r[2] and r[2].endswith("; tls=verified"),
          "cnamemx.test (its MX a CNAME to mx.provider.test, the certificate names both): "
          "accepted, tls=verified", show(r))
    r = ask("nullmx.test")
    check(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 MTA-STS: nullmx.test requires tls")
          and "null MX" in r[1], "nullmx.test, require=tls: 450 4.7.5, a null MX takes no mail",
          show(r))


def phase_restart():
    r = ask("goodmx.test")
    check(r[0] == CONTINUE and r[2].endswith("; tls=verified"),
          "after a restart, goodmx.test passes at the first RCPT (probes loaded from the cache)",
          show(r))


def phase_edges():
    deadline = float(os.environ.get("RCPT_DEADLINE_S", "3"))
    # The word in the reply; the probe's own account goes to the log
    # (test_probes.sh looks there).
    cases = (("tls11mx", "TLS too old (tls-too-old)"),
             ("untrustedmx", "certificate not trusted (certificate-not-trusted)"),
             ("hugebannermx", "(validation-failure)"),
             ("binarybannermx", "(validation-failure)"),
             ("endlessmx", "(validation-failure)"),
             ("longlinemx", "(validation-failure)"),
             ("hangtlsmx", "(validation-failure)"),
             ("dripmx", "unreachable (unreachable)"))
    first = [ask(d + ".test") for d, _ in cases]
    check(all(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 ") and r[3] < deadline + 0.5
              for r in first),
          "edge domains, cold: 450 4.7.5 each, within the RCPT deadline",
          "\n".join(show(r) for r in first))
    # The two that only a deadline ends are judged after it.
    time.sleep(float(os.environ.get("PROBE_TIMEOUT_S", "3")) + 0.5)
    for dom, why in cases:
        host = "mx.%s.test" % dom
        if dom == "dripmx":  # a timeout at the greeting: the path stays unknown
            # (wait_known would ask for its whole 10 s): asked until the reply
            # has the probe's result, within the same 10 s, then once more
            wait_for(dom + ".test", lambda r, why=why: why in r[1], 10)
            r = ask(dom + ".test")
        else:
            r = wait_known(dom + ".test", 10)
        check(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 MTA-STS: %s.test" % dom)
              and host in r[1] and why in r[1] and r[3] < 1.0
              and not re.search(r"TLSv1\.1|CA|lines|octets|handshake|SMTP|127\.0\.", r[1][25:]),
              "%s.test: 450 4.7.5 at once, naming %s and \"%s\", nothing the server sent"
              % (dom, host, why), show(r))


def phase_private():
    """Without probe_allow_networks: the world's MX hosts (127.0.50.x) are
    never probed, the path is unknown, the reply says why in fixed words."""
    want = "mx.goodmx.test: not probed: private address (not-probed-private-address)"
    end = time.monotonic() + 10
    r = ask("goodmx.test")
    while want not in r[1] and time.monotonic() < end:
        time.sleep(0.3)
        r = ask("goodmx.test")
    check(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 MTA-STS: goodmx.test requires "
                                                "MTA-STS (enforce)")
          and want in r[1] and "127.0." not in r[1] and "loopback" not in r[1]
          and "tls=unknown" not in r[2] and r[3] < 1.0,
          "goodmx.test, its MX on loopback, not allowed: 450 4.7.5 naming the host and "
          "\"not probed: private address\", no address", show(r))


DANE = ["daneee.test", "daneta.test", "danebad.test", "danefail.test", "danepkix.test",
        "daneinsecure.test", "stsdane.test", "stsdanebad.test", "stsdaneee.test"]


def phase_dane_first():
    """The first message to each DANE domain, fresh cache: its TLSA records
    tell that DANE applies before its probe does, so the RCPT waits for the
    probe and is answered by DANE (before: accepted as not required)."""
    deadline = float(os.environ.get("RCPT_DEADLINE_S", "3"))
    for dom in ("daneee.test", "daneta.test", "stsdane.test", "stsdaneee.test"):
        r = ask(dom)
        check(r[0] == CONTINUE and "verdict=pass" in r[2] and r[2].endswith("; dane=verified"),
              "first RCPT to %s (fresh): accepted, verdict=pass, dane=verified" % dom, show(r))
        print("# first RCPT %s: %s" % (dom, show(r)))
    for dom, why in (("danebad.test", "DANE failed (tlsa-invalid)"),
                     ("danefail.test", "DANE lookup-failed (dnssec-invalid)"),
                     ("stsdanebad.test", "DANE failed (tlsa-invalid)")):
        r = ask(dom)
        check(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 ") and why in r[1]
              and r[3] < deadline + 1.0,
              "first RCPT to %s (fresh): 450 4.7.5 \"%s\" within the deadline" % (dom, why),
              show(r))
        print("# first RCPT %s: %s" % (dom, show(r)))
    for dom in ("danepkix.test", "daneinsecure.test"):
        r = ask(dom)
        check(r[0] == CONTINUE and "verdict=not-required" in r[2] and r[3] < 1.0,
              "first RCPT to %s (fresh): no DANE, accepted at once (not-required)" % dom,
              show(r))
        print("# first RCPT %s: %s" % (dom, show(r)))


def phase_dane():
    """RFC 7672 per case, once test_dane.sh saw every host's probe row.
    stsdaneee.test (MTA-STS enforce, a self-signed DANE-EE MX): accepted
    because the harness's route (smtp) enforces DANE (dane_transports)."""
    for dom in ("daneee.test", "daneta.test", "stsdane.test", "stsdaneee.test"):
        r = wait_known(dom)
        check(r[0] == CONTINUE and "verdict=pass" in r[2] and "tls=verified" in r[2]
              and r[2].endswith("; dane=verified"),
              "%s: accepted, tag verdict=pass, tls=verified, dane=verified" % dom, show(r))
        print("# %s: %s" % (dom, show(r)))
    # The reply names the host and the RFC 8460 word, never its address
    # (the probe's account goes to the log).
    for dom, why in (("danebad.test", "DANE failed (tlsa-invalid)"),
                     ("danefail.test", "DANE lookup-failed (dnssec-invalid)"),
                     ("stsdanebad.test", "DANE failed (tlsa-invalid)")):
        r = wait_known(dom)
        host = "mx." + dom
        check(r[0] == REPLYCODE and r[1].startswith("450 4.7.5 ") and host in r[1]
              and "has DANE" in r[1] and why in r[1] and "127.0." not in r[1],
              "%s: 450 4.7.5 naming %s and \"%s\", no address" % (dom, host, why), show(r))
        print("# %s: %s" % (dom, show(r)))
    for dom in ("danepkix.test", "daneinsecure.test"):
        r = ask(dom)
        check(r[0] == CONTINUE and "verdict=not-required" in r[2] and "dane=" not in r[2],
              "%s: no DANE for SMTP: accepted, verdict=not-required, no dane=" % dom, show(r))
        print("# %s: %s" % (dom, show(r)))


SLOW = ["slow%d.test" % i for i in (1, 5, 2, 6, 3, 7, 4, 8)]  # the two /24s in turn


def phase_slow_ask():
    # At once, so that the probes start together (each RCPT waits for its own).
    deadline = float(os.environ.get("RCPT_DEADLINE_S", "3"))
    r = [None] * len(SLOW)

    def one(i):
        r[i] = ask(SLOW[i])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(SLOW))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Debian's libmilter runs callbacks on a worker pool (_FFR_WORKERS_POOL,
    # libmilter/worker.c): when several sessions become ready together, its
    # count of idle workers can be stale, and a session then waits for a
    # worker until another session's callback returns, at most one RCPT
    # deadline here: the RCPT's own deadline starts only then (seen in CI:
    # slow7 answered after 4.74 s, 1.74 s of it before its callback began).
    # So an answer after the deadline must be the deadline's own answer (not
    # probed yet, 450): a milter that waited for the probe past its deadline
    # would have answered from the probe (accepted, tls=verified).
    def in_time(v):
        if v is None or not (v[0] == CONTINUE or v[1].startswith("450 4.7.5 ")):
            return False
        if v[3] < deadline + 1.0:
            return True
        return (v[3] < 2 * deadline + 1.0 and v[0] == REPLYCODE
                and "not probed yet" in v[1])
    check(all(in_time(v) for v in r),
          "slow1..8.test, asked at once: each answered within the RCPT deadline "
          "(or at its own deadline, once libmilter's pool started its callback)",
          "\n".join(show(v) if v else "no answer" for v in r))


def phase_slow():
    r = [wait_known(d) for d in SLOW]
    check(all(v[0] == CONTINUE and v[2].endswith("; tls=verified") for v in r),
          "slow1..8.test: each accepted, tls=verified", "\n".join(show(v) for v in r))


if __name__ == "__main__":
    try:
        {"enforce": phase_enforce, "rules": phase_rules, "restart": phase_restart,
         "edges": phase_edges, "private": phase_private, "slow-ask": phase_slow_ask,
         "first-off": phase_first_off, "slow": phase_slow, "dane-first": phase_dane_first,
         "dane": phase_dane}[sys.argv[1]]()
    except Exception as e:  # a crash is a failure, never a silent pass
        check(False, "phase %s ran to its end" % sys.argv[1], repr(e))
    sys.exit(1 if fails else 0)
