"""rawmilter - a minimal MTA side of the milter protocol (version 6), for
the few things miltertest cannot express: arguments of 1024 bytes or more,
a connection from 127.0.0.1 port 0 (Postfix's non-SMTP mail), and reading
the text of a reply. Not a scenario; scenarios import it.

Checks are printed like the Lua scenarios do ("ok - ..." / "not ok - ...");
the runner numbers them. The socket path comes from MT_SOCKET.
"""
import os
import socket
import struct

CONTINUE, REPLYCODE, REJECT, TEMPFAIL = b"c", b"y", b"r", b"t"
NAMES = {b"c": "CONTINUE", b"y": "REPLYCODE", b"r": "REJECT", b"t": "TEMPFAIL",
         b"a": "ACCEPT", b"d": "DISCARD"}

failed = 0


def ok(cond, desc, diag=None):
    global failed
    print(("ok - " if cond else "not ok - ") + desc)
    if not cond:
        failed += 1
        if diag is not None:
            for line in str(diag).splitlines():
                print("#   " + line)
    return cond


class Milter:
    def __init__(self, path=None, timeout=15):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path or os.environ["MT_SOCKET"])
        # Offer every action and no protocol options: every step is sent
        # and answered.
        cmd, data = self.command(b"O", struct.pack(">III", 6, 0x1FF, 0))
        if cmd != b"O":
            raise RuntimeError("option negotiation answered %r" % cmd)

    def send(self, cmd, data=b""):
        self.s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def _exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise EOFError("the milter closed the connection")
            b += chunk
        return b

    def read(self):
        (n,) = struct.unpack(">I", self._exact(4))
        d = self._exact(n)
        return d[:1], d[1:]

    def command(self, cmd, data=b""):
        self.send(cmd, data)
        return self.read()

    def macros(self, stage, pairs):
        self.send(b"D", stage + b"".join(k + b"\0" + v + b"\0" for k, v in pairs))

    def connect(self, host=b"client.example", family=b"4", port=12345, addr=b"192.0.2.10"):
        if family == b"U":
            data = host + b"\0U"
        else:
            data = host + b"\0" + family + struct.pack(">H", port) + addr + b"\0"
        return self.command(b"C", data)

    def mail(self, sender, qid, auth=None, params=()):
        """MAIL FROM; params: its ESMTP parameters, one NUL-terminated each."""
        pairs = [(b"i", qid)]
        if auth is not None:
            pairs.append((b"{auth_authen}", auth))
        self.macros(b"M", pairs)
        return self.command(b"M", sender + b"\0" + b"".join(p + b"\0" for p in params))

    def rcpt(self, addr, mailer=b"smtp", host=None):
        pairs = [(b"{rcpt_addr}", b"x")]
        if mailer is not None:
            pairs.append((b"{rcpt_mailer}", mailer))
        if host is not None:
            pairs.append((b"{rcpt_host}", host))
        self.macros(b"R", pairs)
        return self.command(b"R", addr + b"\0")

    def header(self, name, value):
        return self.command(b"L", name + b"\0" + value + b"\0")

    def eom(self):
        """End of message: returns (final reply, list of (cmd, data))."""
        self.send(b"E")
        actions = []
        while True:
            cmd, data = self.read()
            if cmd in (b"c", b"a", b"r", b"t", b"d", b"y"):
                return cmd, actions
            actions.append((cmd, data))

    def quit(self):
        try:
            self.send(b"Q")
        finally:
            self.s.close()


def name(cmd):
    return NAMES.get(cmd, repr(cmd))
