r"""custom_reply_codes_raw: defer_reply and reject_reply set the SMTP and
enhanced codes of the replies (451 4.7.1 and 554 5.7.1 here).

config: custom (act_on = daemon:ORIGINATING, defer_reply = 451 4.7.1,
                reject_reply = 554 5.7.1)
log: CRC1: rcpt domain=mxmismatch\.test .*action=reject
log: CRC1: rcpt domain=servfail\.test .*action=defer
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from rawmilter import Milter, ok, name, REPLYCODE  # noqa: E402

m = Milter()
m.macros(b"C", [(b"{daemon_name}", b"ORIGINATING")])
m.connect()
m.mail(b"<alice@example.org>", b"CRC1")
cmd, data = m.rcpt(b"<bob@mxmismatch.test>")
ok(cmd == REPLYCODE and data.startswith(b"554 5.7.1 MTA-STS: mxmismatch.test "),
   "mxmismatch.test: 554 5.7.1 MTA-STS: mxmismatch.test ...", "got %s %r" % (name(cmd), data))
cmd, data = m.rcpt(b"<bob@servfail.test>")
ok(cmd == REPLYCODE and data.startswith(b"451 4.7.1 MTA-STS: "),
   "servfail.test: 451 4.7.1 MTA-STS: ...", "got %s %r" % (name(cmd), data))
cmd, data = m.rcpt(b"<broken@")
ok(cmd == REPLYCODE and data.startswith(b"451 4.7.1 "), "unreadable address: 451 4.7.1",
   "got %s %r" % (name(cmd), data))
m.quit()
