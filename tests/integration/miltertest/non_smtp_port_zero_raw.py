r"""non_smtp_port_zero_raw: Postfix's cleanup presents sendmail(1)/pickup
mail to non_smtpd_milters as a connection from localhost, 127.0.0.1, port 0
(tests/integration/README). The milter treats it as non-SMTP mail (act_on
non-smtpd): no refusal per recipient, the message is held. miltertest always
sends port 12345, so this needs the raw protocol.

config: main
log: connect from localhost \(non-SMTP mail\)
log: P0M1: held \(non-SMTP mail cannot be refused per recipient\)
log: P0M2: from=<mallory@example\.org> auth=- not in scope
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from rawmilter import Milter, ok, name, CONTINUE  # noqa: E402

m = Milter()
cmd, _ = m.connect(b"localhost", b"4", 0, b"127.0.0.1")
ok(cmd == CONTINUE, "connect localhost 127.0.0.1 port 0 -> CONTINUE", name(cmd))
m.mail(b"alice@example.org", b"P0M1")
cmd, _ = m.rcpt(b"bob@mxmismatch.test", None, None)
ok(cmd == CONTINUE, "port 0: mxmismatch.test is not refused", name(cmd))
cmd, actions = m.eom()
ok(cmd == CONTINUE, "port 0: end of message -> CONTINUE", name(cmd))
ok(any(c == b"q" for c, _ in actions), "port 0: the message is held (quarantine)",
   repr(actions))
tags = [d for c, d in actions if c == b"i" and b"MTA-STS-Status\0" in d]
ok(len(tags) == 1 and b"action=hold" in tags[0], "port 0: tagged action=hold", repr(tags))
m.quit()

# The same with a real client port is SMTP mail: without AUTH, out of scope.
m = Milter()
m.connect(b"localhost", b"4", 40000, b"127.0.0.1")
m.mail(b"<mallory@example.org>", b"P0M2")
cmd, _ = m.rcpt(b"<bob@mxmismatch.test>", b"smtp", None)
ok(cmd == CONTINUE, "port 40000, no AUTH: mxmismatch.test passes untouched", name(cmd))
cmd, actions = m.eom()
ok(not any(c in (b"q", b"i", b"h") for c, _ in actions),
   "port 40000, no AUTH: neither held nor tagged", repr(actions))
m.quit()
