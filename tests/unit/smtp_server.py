#!/usr/bin/env python3
"""STARTTLS SMTP servers for tests/unit/test_tlsprobe.c (common/tlsprobe.c).

Usage:
  smtp_server.py DIR
  smtp_server.py --pidfile FILE --log FILE LISTEN [LISTEN ...]

Creates two CAs (the trusted test CA and an "other" CA the client does not
trust) and leaf certificates in DIR with the openssl CLI, then listens on
127.0.0.1, one ephemeral port per behaviour (see BEHAVIOURS). When every
socket listens, DIR/ports is written atomically, one "name=port" line per
behaviour, plus tls10_note= and tls11_note= ("ok", or why this OpenSSL
cannot serve that version; the port is then 0).
Every command a client sends goes to DIR/server.log as "<behaviour> <line>"
(and "<behaviour> tls-error <reason>" when a handshake fails), so a test
can see that the probe said QUIT and never MAIL or RCPT.
SIGTERM ends the process. Exit 4: the openssl CLI is missing.

The second form is the test world's (tests/world/world.sh): no certificates
are made; each LISTEN is ADDR:PORT:BEHAVIOUR[:CERT:KEY] (PEM files; needed
by the behaviours that do TLS), and the log FILE gets "<time> accept
<behaviour>@<addr>:<port> <peer>" per connection and "<time>
<behaviour>@<addr>:<port> <line>" per command. FILE (the pid file) is
written once every socket listens.
"""

import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import warnings

DIR = None
LOG_PATH = None   # world mode: the --log file (else DIR/server.log)
LOG_LOCK = threading.Lock()

# behaviour -> (certificate, what happens); the good path unless said.
BEHAVIOURS = {
    "good": "good",            # multi-line greeting, STARTTLS, mx.good.test
    "nostarttls": "good",      # EHLO reply without STARTTLS
    "refuse454": "good",       # STARTTLS answered 454
    "expired": "expired",
    "notyet": "notyet",
    "wrongname": "wrongname",  # SAN other.test only
    "cnonly": "cnonly",        # CN = the MX name, no subjectAltName
    "selfsigned": "selfsigned",
    "untrusted": "untrusted",  # issued by the other CA
    "wildcard": "wildcard",    # *.mx.test
    "tls10": "good",           # TLS 1.0 only
    "tls11": "good",           # TLS 1.1 only
    "longline": None,          # a greeting line that never ends
    "manylines": None,         # "220-..." lines forever
    "mixed": None,             # 220- then 250: not one reply
    "greet554": None,          # 554 greeting
    "silent": None,            # accepts, never a byte
    "hangtls": "good",         # 220 to STARTTLS, then never a TLS byte
    "inject": "good",          # 220 to STARTTLS plus bytes before TLS
    "ehlo550": None,           # EHLO answered 550
    "binary": None,            # a greeting of binary bytes (NUL, 0xff), then CRLF
    "hugebanner": "good",      # 5000 "220-" lines of 900 octets, then "220 ready"
    "slow": "good",            # the good path, greeting after SLOW_GREETING_S
    "drip": None,              # a "220-" line every 0.2 s for 60 s: under any
                               # line bound, only a deadline ends it
}

# "slow": long enough that probes started together overlap (the world's
# concurrency test reads the "concurrent" log lines, see Handler.handle)
SLOW_GREETING_S = 1.5
ACTIVE_LOCK = threading.Lock()
ACTIVE = {}  # "total" and "<a.b.c>/24" -> handlers running now for "slow" listeners
OPEN = []    # [(net, Conn)] of those handlers, for peer_open
TCP_ESTABLISHED = 1


def peer_open(conn):
    """Is the client still connected? A handler runs on after the client
    closed (it has yet to read the EOF, or to return after its 221), and
    on a loaded machine the client's next connection can arrive first: so
    a connection counts as open only while the kernel still sees it
    established (no FIN from the client, none from us)."""
    try:
        info = conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except (OSError, ValueError):
        return False
    return info[0] == TCP_ESTABLISHED

CNF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca ]
default_ca = ca_default
[ ca_default ]
database = index.txt
new_certs_dir = .
certificate = ca.pem
private_key = ca.key
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
x509_extensions = leaf_ext
[ any ]
commonName = supplied
[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""


def log(line):
    with LOG_LOCK:
        if LOG_PATH is not None:
            with open(LOG_PATH, "a") as f:
                f.write("%.3f %s\n" % (time.time(), line))
            return
        with open(os.path.join(DIR, "server.log"), "a") as f:
            f.write(line + "\n")


def run(*args):
    subprocess.run(args, cwd=DIR, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def gencerts():
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    with open(os.path.join(DIR, "ca.cnf"), "w") as f:
        f.write(CNF)
    with open(os.path.join(DIR, "other.cnf"), "w") as f:
        f.write(CNF.replace("ca.pem", "other.pem").replace("ca.key", "other.key")
                .replace("index.txt", "index-other.txt"))
    for idx in ("index.txt", "index-other.txt"):
        open(os.path.join(DIR, idx), "w").close()
    with open(os.path.join(DIR, "serial"), "w") as f:
        f.write("1000\n")
    for ca, cn in (("ca", "probe test CA"), ("other", "untrusted other CA")):
        run("openssl", "req", "-config", "ca.cnf", "-x509", *ec, "-keyout", ca + ".key",
            "-out", ca + ".pem", "-days", "2", "-subj", "/CN=" + cn, "-extensions", "ca_ext")

    def leaf(name, cn, sans, dates, cnf="ca.cnf"):
        ext = ["-addext", "subjectAltName=" + ",".join("DNS:" + s for s in sans)] if sans else []
        run("openssl", "req", "-config", cnf, "-new", *ec, "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + cn, *ext)
        run("openssl", "ca", "-config", cnf, "-batch", "-notext", *dates,
            "-in", name + ".csr", "-out", name + ".pem")

    two_days = ["-days", "2"]
    leaf("good", "mx.good.test", ["mx.good.test"], two_days)
    leaf("wrongname", "other.test", ["other.test"], two_days)
    leaf("cnonly", "mx.cnonly.test", [], two_days)
    leaf("wildcard", "*.mx.test", ["*.mx.test"], two_days)
    # openssl x509 -days cannot backdate; openssl ca -startdate/-enddate can.
    leaf("expired", "mx.expired.test", ["mx.expired.test"],
         ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"])
    leaf("notyet", "mx.notyet.test", ["mx.notyet.test"],
         ["-startdate", "20991201000000Z", "-enddate", "20991231000000Z"])
    leaf("untrusted", "mx.untrusted.test", ["mx.untrusted.test"], two_days, "other.cnf")
    run("openssl", "req", "-config", "ca.cnf", "-x509", *ec, "-keyout", "selfsigned.key",
        "-out", "selfsigned.pem", "-days", "2", "-subj", "/CN=mx.selfsigned.test",
        "-addext", "subjectAltName=DNS:mx.selfsigned.test")


def context(cert, version=None):
    return context_files(os.path.join(DIR, cert + ".pem"), os.path.join(DIR, cert + ".key"),
                         version)


def context_files(certfile, keyfile, version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if version is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = version
            ctx.maximum_version = version
        # OpenSSL 3 refuses TLS < 1.2 at the default security level.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


class Conn:
    """Line I/O over a plain or TLS socket."""

    def __init__(self, sock, name):
        self.sock = sock
        self.name = name
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                return None
            self.buf += d
            if len(self.buf) > 4096:
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.rstrip(b"\r").decode("latin-1")
        log("%s %s" % (self.name, text))
        return text


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        name = self.server.behaviour
        label = self.server.label
        s = self.request
        s.settimeout(30)
        c = Conn(s, label)
        if label != name:
            log("accept %s %s:%d" % (label, self.client_address[0], self.client_address[1]))
        net = None
        if name == "slow":
            # Connections open at once, in total and per /24 of the listener,
            # logged at each accept: the peak is the largest value logged.
            # (Counted from the kernel's view, see peer_open: the handlers
            # running, also logged, lag behind the client's closes.)
            net = ".".join(self.server.server_address[0].split(".")[:3]) + "/24"
            with ACTIVE_LOCK:
                ACTIVE["total"] = ACTIVE.get("total", 0) + 1
                ACTIVE[net] = ACTIVE.get(net, 0) + 1
                OPEN.append((net, c))
                live = [n for n, o in OPEN if o is c or peer_open(o)]
                log("concurrent %s total=%d net=%s:%d handlers=%d net_handlers=%d"
                    % (label, len(live), net, live.count(net), ACTIVE["total"], ACTIVE[net]))
        try:
            self.dialogue(name, c)
        except (OSError, ssl.SSLError) as e:
            log("%s error %s" % (label, e))
        finally:
            if net is not None:
                with ACTIVE_LOCK:
                    ACTIVE["total"] -= 1
                    ACTIVE[net] -= 1
                    OPEN[:] = [(n, o) for n, o in OPEN if o is not c]

    def dialogue(self, name, c):
        if name == "silent":
            time.sleep(30)
            return
        if name == "longline":
            c.send(b"220 " + b"x" * 100000)  # no CRLF, ever
            time.sleep(30)
            return
        if name == "manylines":
            try:
                for i in range(100000):
                    c.send(b"220-still greeting you, line %d\r\n" % i)
            except OSError:
                pass
            return
        if name == "binary":
            c.send(b"220 \x00\xff\xfe\x01binary\x00greeting\x1b[2J\r\n")
            time.sleep(30)
            return
        if name == "drip":
            try:
                for i in range(300):
                    c.send(b"220-still greeting you, slowly, line %d\r\n" % i)
                    time.sleep(0.2)
            except OSError:
                pass
            return
        if name == "hugebanner":
            try:
                for i in range(5000):
                    c.send(b"220-" + b"h" * 894 + b"\r\n")
                c.send(b"220 ready\r\n")
            except OSError:
                return
        elif name == "slow":
            time.sleep(SLOW_GREETING_S)
            c.send(b"220 mx.slow.test ESMTP\r\n")
        elif name == "mixed":
            c.send(b"220-mx.mixed.test\r\n250 not a greeting\r\n")
        elif name == "greet554":
            c.send(b"554 5.7.1 mx.greet554.test no service for you\r\n")
        else:
            c.send(b"220-mx.%s.test ESMTP\r\n220-a second line\r\n220 ready\r\n"
                   % name.encode())
        tls = False
        while True:
            line = c.line()
            if line is None:
                return
            verb = line.split(" ")[0].upper()
            if verb == "QUIT":
                c.send(b"221 2.0.0 bye\r\n")
                return
            if verb == "EHLO":
                if name == "ehlo550":
                    c.send(b"550 5.7.1 not you\r\n")
                    continue
                c.send(b"250-mx.%s.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                       % name.encode())
                if name != "nostarttls" and not tls:
                    c.send(b"250-STARTTLS\r\n")
                c.send(b"250 8BITMIME\r\n")
            elif verb == "STARTTLS" and not tls:
                if name == "refuse454":
                    c.send(b"454 4.7.0 TLS not available due to temporary reason\r\n")
                    continue
                if name == "inject":
                    c.send(b"220 2.0.0 go ahead\r\n250 injected\r\n")
                    time.sleep(2)
                    return
                c.send(b"220 2.0.0 go ahead\r\n")
                if name == "hangtls":
                    time.sleep(30)
                    return
                try:
                    c.sock = self.server.ctx.wrap_socket(c.sock, server_side=True)
                except (OSError, ssl.SSLError) as e:
                    log("%s tls-error %s" % (c.name, e))
                    return
                log("%s tls %s %s" % (c.name, c.sock.version(), c.sock.cipher()[0]))
                tls = True
            else:
                c.send(b"502 5.5.1 not here\r\n")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, behaviour, ctx, addr=("127.0.0.1", 0), label=None):
        self.behaviour = behaviour
        self.label = label or behaviour
        self.ctx = ctx
        super().__init__(addr, Handler)


def version_check(port, version, name):
    """Does a client limited to version really complete a STARTTLS handshake?"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = version
        ctx.maximum_version = version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        c = Conn(raw, name + "-selfcheck")
        while not (c.line() or "").startswith("220 "):
            pass
        raw.sendall(b"EHLO selfcheck\r\n")
        while not (c.line() or "250 ").startswith("250 "):
            pass
        raw.sendall(b"STARTTLS\r\n")
        c.line()
        with ctx.wrap_socket(raw, server_hostname="mx.good.test") as tls:
            got = tls.version()
            tls.sendall(b"QUIT\r\n")
            return got


VERSIONS = {"tls10": ssl.TLSVersion.TLSv1, "tls11": ssl.TLSVersion.TLSv1_1}


def world_main(args):
    """The test world's form: fixed addresses, the world's certificates."""
    global LOG_PATH
    pidfile = None
    i = 0
    while i < len(args) and args[i].startswith("--"):
        if args[i] == "--pidfile" and i + 1 < len(args):
            pidfile = args[i + 1]
        elif args[i] == "--log" and i + 1 < len(args):
            LOG_PATH = args[i + 1]
        else:
            sys.exit("smtp_server.py: unknown option %s" % args[i])
        i += 2
    if pidfile is None or LOG_PATH is None or i == len(args):
        sys.exit("usage: smtp_server.py --pidfile FILE --log FILE ADDR:PORT:BEHAVIOUR[:CERT:KEY]...")
    for spec in args[i:]:
        f = spec.split(":")
        if len(f) not in (3, 5) or f[2] not in BEHAVIOURS:
            sys.exit("smtp_server.py: bad listener %s" % spec)
        addr, port, name = f[0], int(f[1]), f[2]
        ctx = None
        if BEHAVIOURS[name] is not None:
            if len(f) != 5:
                sys.exit("smtp_server.py: %s needs CERT:KEY" % spec)
            ctx = context_files(f[3], f[4], VERSIONS.get(name))
        srv = Server(name, ctx, (addr, port), "%s@%s:%d" % (name, addr, port))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    tmp = pidfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(tmp, pidfile)
    while True:
        time.sleep(3600)


def main():
    global DIR
    if len(sys.argv) > 1 and sys.argv[1].startswith("--"):
        world_main(sys.argv[1:])
        return
    if len(sys.argv) != 2:
        sys.exit("usage: smtp_server.py DIR")
    DIR = sys.argv[1]
    if shutil.which("openssl") is None:
        print("openssl CLI not found", file=sys.stderr)
        sys.exit(4)
    gencerts()
    ports, notes = {}, {}
    for name, cert in BEHAVIOURS.items():
        version = {"tls10": ssl.TLSVersion.TLSv1,
                   "tls11": ssl.TLSVersion.TLSv1_1}.get(name)
        try:
            srv = Server(name, context(cert, version) if cert else None)
        except (OSError, ValueError, ssl.SSLError) as e:
            ports[name], notes[name] = 0, str(e).replace("\n", " ")
            continue
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        ports[name] = srv.server_address[1]
        if version is not None:
            try:
                got = version_check(ports[name], version, name)
                want = "TLSv1" if name == "tls10" else "TLSv1.1"
                if got != want:
                    raise RuntimeError("negotiated %s" % got)
                notes[name] = "ok"
            except (OSError, ValueError, RuntimeError, ssl.SSLError) as e:
                ports[name], notes[name] = 0, str(e).replace("\n", " ")
    tmp = os.path.join(DIR, "ports.tmp")
    with open(tmp, "w") as f:
        for name, port in ports.items():
            f.write("%s=%d\n" % (name, port))
        for name in ("tls10", "tls11"):
            f.write("%s_note=%s\n" % (name, notes.get(name, "?")))
    os.rename(tmp, os.path.join(DIR, "ports"))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
