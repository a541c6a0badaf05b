r"""requiretls_raw: the replies for MAIL FROM ... REQUIRETLS (RFC 8689): the
code RFC 8689 registers, X.7.30, 550 5.7.30 when the path is known not to
be authenticated, 450 4.7.30 when it could not be learnt now (a generic
text: the resolver's SERVFAIL goes to the log only). miltertest shows
only that a reply was set, not its text.

config: main
log: RTLSRAW: rcpt domain=servfail\.test status=unknown .*SERVFAIL
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from rawmilter import Milter, ok, name, REPLYCODE, CONTINUE  # noqa: E402


def expect_reply(m, addr, code_re, label, mailer=b"smtp", host=None, must_not=None):
    cmd, data = m.rcpt(addr, mailer, host)
    text = data.rstrip(b"\0").decode("utf-8", "replace")
    ok(cmd == REPLYCODE and re.match(code_re, text) is not None
       and (must_not is None or must_not not in text) and "\r" not in text and "\n" not in text,
       label, "got %s %r" % (name(cmd), text))


m = Milter()
cmd, _ = m.connect()
ok(cmd == CONTINUE, "connect -> CONTINUE", name(cmd))
cmd, _ = m.mail(b"<alice@example.org>", b"RTLSRAW", b"alice", params=(b"REQUIRETLS",))
ok(cmd == CONTINUE, "MAIL FROM ... REQUIRETLS -> CONTINUE", name(cmd))
expect_reply(m, b"<bob@testing.test>",
             r"^550 5\.7\.30 REQUIRETLS: testing\.test has no authenticated path "
             r"\(no MTA-STS enforce policy: testing; no DANE\)$",
             "testing.test: 550 5.7.30 REQUIRETLS: ... no authenticated path")
expect_reply(m, b"<bob@mxmismatch.test>",
             r"^550 5\.7\.30 REQUIRETLS: the path to mxmismatch\.test is not authenticated: "
             r"mxmismatch\.test requires MTA-STS \(enforce\) and none of its MX hosts",
             "mxmismatch.test: 550 5.7.30, the MTA-STS reason with it (not 550 5.7.5)")
expect_reply(m, b"<bob@servfail.test>",
             r"^450 4\.7\.30 REQUIRETLS: the path to servfail\.test could not be determined "
             r"now; try again later$",
             "servfail.test: 450 4.7.30 ... try again later (no resolver detail)",
             must_not="SERVFAIL")
expect_reply(m, b"<bob@enforce.test>",
             r"^550 5\.7\.30 REQUIRETLS: the path to enforce\.test is not authenticated: .*"
             r"relay:\[smarthost\.example\]:587 does not enforce it",
             "enforce.test via a relay that does not enforce: 550 5.7.30",
             b"relay", b"[smarthost.example]:587")
cmd, _ = m.rcpt(b"<bob@enforce.test>", b"smtp", b"mx1.enforce.test")
ok(cmd == CONTINUE, "enforce.test over smtp -> CONTINUE", name(cmd))
m.quit()
sys.exit(0)
