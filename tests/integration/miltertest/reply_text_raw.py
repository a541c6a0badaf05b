r"""reply_text_raw: the SMTP reply the milter asks the MTA to send for a
refused recipient: the configured codes (reject 550 5.7.5, defer 450 4.7.5),
"MTA-STS: " and the reason naming the domain, one line; for a status that
could not be learnt, a generic text (the details, here "SERVFAIL", go to
the log only). miltertest shows only that a reply was set
(SMFIR_REPLYCODE), not its text.

config: main
log: RAW1: rcpt domain=mxmismatch\.test .*action=reject
log: RAW1: rcpt domain=servfail\.test status=unknown .*SERVFAIL
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from rawmilter import Milter, ok, name, REPLYCODE, CONTINUE  # noqa: E402


def expect_reply(m, addr, code_re, must_contain, label, mailer=b"smtp", host=None,
                 must_not=None):
    cmd, data = m.rcpt(addr, mailer, host)
    text = data.rstrip(b"\0").decode("utf-8", "replace")
    ok(cmd == REPLYCODE and re.match(code_re, text) is not None and must_contain in text
       and (must_not is None or must_not not in text)
       and "\r" not in text and "\n" not in text and len(text) <= 980,
       label, "got %s %r" % (name(cmd), text))
    return text


m = Milter()
cmd, _ = m.connect()
ok(cmd == CONTINUE, "connect -> CONTINUE", name(cmd))
cmd, _ = m.mail(b"<alice@example.org>", b"RAW1", b"alice")
ok(cmd == CONTINUE, "MAIL FROM -> CONTINUE", name(cmd))
expect_reply(m, b"<bob@mxmismatch.test>",
             r"^550 5\.7\.5 MTA-STS: mxmismatch\.test requires MTA-STS \(enforce\) and none of its MX hosts",
             "mx1.mxmismatch.test", "mxmismatch.test: 550 5.7.5 MTA-STS: ... none of its MX hosts ...")
expect_reply(m, b"<bob@servfail.test>",
             r"^450 4\.7\.5 MTA-STS: MTA-STS status of servfail\.test could not be determined "
             r"now; try again later$",
             "", "servfail.test: 450 4.7.5 MTA-STS: ... could not be determined now; try again later "
             "(no resolver detail)", must_not="SERVFAIL")
expect_reply(m, b"<bob@enforce.test>",
             r"^450 4\.7\.5 MTA-STS: enforce\.test requires MTA-STS \(enforce\) and the route",
             "relay:[smarthost.example]:587", "enforce.test via a relay: 450 4.7.5 ... the route relay:[smarthost.example]:587 ...",
             b"relay", b"[smarthost.example]:587")
expect_reply(m, b"<broken@", r"^450 4\.7\.5 MTA-STS: the recipient address could not be read$",
             "", "unreadable address: 450 4.7.5 MTA-STS: the recipient address could not be read")
cmd, _ = m.rcpt(b"<bob@enforce.test>", b"smtp", b"mx1.enforce.test")
ok(cmd == CONTINUE, "enforce.test over smtp -> CONTINUE (no reply text)", name(cmd))
m.quit()
sys.exit(0)
