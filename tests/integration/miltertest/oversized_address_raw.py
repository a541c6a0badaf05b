r"""oversized_address_raw: a 2000-byte recipient (more than miltertest can
send) and one with a NUL inside are answered (deferred as unreadable), and
the milter goes on answering on the same connection.

config: main
log: BIG1: rcpt <y{190}.*: unreadable address \(address longer than 1024 bytes\): defer
log: BIG1: rcpt domain=enforce\.test .*action=tag
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from rawmilter import Milter, ok, name, REPLYCODE, CONTINUE  # noqa: E402

m = Milter()
m.connect()
m.mail(b"<alice@example.org>", b"BIG1", b"alice")
addr = b"<" + b"y" * 1986 + b"@enforce.test>"
cmd, data = m.rcpt(addr)
ok(cmd in (REPLYCODE, CONTINUE), "a %d-byte address is answered" % len(addr), name(cmd))
ok(cmd == REPLYCODE and data.startswith(b"450 4.7.5 "),
   "a %d-byte address is deferred as unreadable (450 4.7.5)" % len(addr),
   "got %s %r" % (name(cmd), data))
cmd, data = m.rcpt(b"<" + b"z" * 4000 + b"@" + b"a" * 4000 + b".test>")
ok(cmd == REPLYCODE and data.startswith(b"450 4.7.5 "), "an 8014-byte address is deferred",
   "got %s %r" % (name(cmd), data))
cmd, data = m.rcpt(b"<bob@enforce.test\0>")
ok(cmd in (REPLYCODE, CONTINUE), "an address with a NUL inside is answered", name(cmd))
cmd, _ = m.rcpt(b"<bob@enforce.test>", b"smtp", b"mx1.enforce.test")
ok(cmd == CONTINUE, "a normal recipient afterwards -> CONTINUE", name(cmd))
cmd, actions = m.eom()
ok(cmd == CONTINUE, "end of message -> CONTINUE", name(cmd))
tags = [d for c, d in actions if c == b"i" and b"MTA-STS-Status\0" in d]
ok(len(tags) == 1 and b"domain=enforce.test;" in tags[0], "one tag, for enforce.test", repr(tags))
m.quit()
