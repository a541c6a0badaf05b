#!/usr/bin/env python3
"""HTTPS policy server for tests/unit/test_fetch.c (common/fetch.c).

Usage:
  fetch_server.py DIR

Creates a test CA and leaf certificates in DIR with the openssl CLI, then
listens on 127.0.0.1 (ephemeral ports, loopback only) with:
  main       HTTPS; the behaviour of each request is chosen by the policy
             domain in the Host header: mta-sts.<name>.test (see BEHAVIOURS).
             The certificate is chosen by SNI: the good leaf (SANs for every
             behaviour) unless the name is one of BAD_CERTS.
  blackhole  accepts TCP and never sends or reads a byte.
  tls11      HTTPS that offers only TLS 1.1 (0 when this OpenSSL cannot).
When every socket listens, DIR/ports is written atomically:
  main=N\nblackhole=N\ntls11=N\ntls11_note=...\n
One line per request goes to DIR/server.log: "<name> <method> <path>".
SIGTERM ends the process. Exit 4: the openssl CLI is missing.
"""

import http.server
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings

BEHAVIOURS = [
    "good", "utf8", "upper", "params", "html", "plainx", "notype", "twotypes",
    "notfound", "error500", "redirect", "redirectctl", "notmodified", "exact",
    "big", "chunked", "big404", "stall", "truncated", "garbage", "continue",
    "empty", "ua", "blackhole", "tls11",
]
BAD_CERTS = ["wrongname", "expired", "selfsigned"]
GOOD_BODY = b"version: STSv1\r\nmode: enforce\r\nmx: mail.good.test\r\nmax_age: 86400\r\n"
LIMIT = 65536

DIR = None
LOG_LOCK = threading.Lock()
PORTS = {}


def log(line):
    with LOG_LOCK:
        with open(os.path.join(DIR, "server.log"), "a") as f:
            f.write(line + "\n")


def run(*args):
    subprocess.run(args, cwd=DIR, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


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
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""


def gencerts():
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    with open(os.path.join(DIR, "ca.cnf"), "w") as f:
        f.write(CNF)
    open(os.path.join(DIR, "index.txt"), "w").close()
    with open(os.path.join(DIR, "serial"), "w") as f:
        f.write("1000\n")
    run("openssl", "req", "-config", "ca.cnf", "-x509", *ec, "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=fetch test CA",
        "-extensions", "ca_ext")

    def leaf(name, sans, dates):
        san = ",".join("DNS:" + s for s in sans)
        run("openssl", "req", "-config", "ca.cnf", "-new", *ec, "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + sans[0],
            "-addext", "subjectAltName=" + san)
        run("openssl", "ca", "-config", "ca.cnf", "-batch", "-notext", *dates,
            "-in", name + ".csr", "-out", name + ".pem")

    leaf("good", ["mta-sts.%s.test" % b for b in BEHAVIOURS], ["-days", "2"])
    leaf("wrongname", ["mta-sts.other.test"], ["-days", "2"])
    # openssl x509 -days cannot backdate; openssl ca -startdate/-enddate can.
    leaf("expired", ["mta-sts.expired.test"],
         ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"])
    run("openssl", "req", "-config", "ca.cnf", "-x509", *ec, "-keyout", "selfsigned.key",
        "-out", "selfsigned.pem", "-days", "2", "-subj", "/CN=mta-sts.selfsigned.test",
        "-addext", "subjectAltName=DNS:mta-sts.selfsigned.test")


def context(name, tls11=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls11:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        # OpenSSL 3 refuses TLS < 1.2 at the default security level.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(os.path.join(DIR, name + ".pem"), os.path.join(DIR, name + ".key"))
    return ctx


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def name(self):
        host = (self.headers.get("Host") or "").split(":")[0]
        if host.startswith("mta-sts.") and host.endswith(".test"):
            return host[len("mta-sts."):-len(".test")]
        return "?"

    def reply(self, code, ctype, body, extra=()):
        self.send_response(code)
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def raw(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def stream(self, head, chunk, total, chunked):
        """Writes head, then body bytes until total or the client goes away."""
        self.close_connection = True
        sent = 0
        try:
            self.raw(head)
            while sent < total:
                if chunked:
                    self.raw(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                else:
                    self.raw(chunk)
                sent += len(chunk)
            if chunked:
                self.raw(b"0\r\n\r\n")
        except OSError:
            pass
        log("%s sent %d" % (self.name(), sent))

    def do_GET(self):
        n = self.name()
        log("%s %s %s" % (n, self.command, self.path))
        self.close_connection = True
        port = PORTS.get("main", 0)
        if self.path == "/moved":
            self.reply(200, "text/plain", GOOD_BODY)
        elif n in ("good", "tls11") + tuple(BAD_CERTS):
            self.reply(200, "text/plain", GOOD_BODY)
        elif n == "utf8":
            self.reply(200, "text/plain; charset=utf-8", GOOD_BODY)
        elif n == "upper":
            self.reply(200, "TEXT/PLAIN", GOOD_BODY)
        elif n == "params":
            self.reply(200, "Text/Plain ; charset=\"us-ascii\" ; x=y", GOOD_BODY)
        elif n == "html":
            self.reply(200, "text/html", GOOD_BODY)
        elif n == "plainx":
            self.reply(200, "text/plaintext", GOOD_BODY)
        elif n == "notype":
            self.reply(200, None, GOOD_BODY)
        elif n == "twotypes":
            self.reply(200, "text/plain", GOOD_BODY, [("Content-Type", "text/html")])
        elif n == "notfound":
            self.reply(404, "text/plain", b"not found\n")
        elif n == "error500":
            self.reply(500, "text/plain", b"oops\n")
        elif n == "redirect":
            self.reply(301, "text/plain", b"moved\n",
                       [("Location", "https://mta-sts.redirect.test:%d/moved" % port)])
        elif n == "redirectctl":
            self.reply(302, "text/plain", b"",
                       [("Location", "https://evil.test/\x1b[31m\xe9")])
        elif n == "notmodified":
            self.send_response(304)
            self.send_header("Connection", "close")
            self.end_headers()
        elif n == "exact":
            self.reply(200, "text/plain", bytes(i % 256 for i in range(LIMIT)))
        elif n == "big":
            self.reply(200, "text/plain", b"a" * (LIMIT + 1))
        elif n == "chunked":
            self.stream(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                        b"a" * 1000, 1 << 20, True)
        elif n == "big404":
            self.stream(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n"
                        b"Content-Length: 10000000\r\nConnection: close\r\n\r\n",
                        b"x" * 4096, 10000000, False)
        elif n == "stall":
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 100\r\n\r\nversion: STSv1\r\n")
            time.sleep(60)
        elif n == "truncated":
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 100\r\nConnection: close\r\n\r\nversion: STSv1\r\n")
        elif n == "garbage":
            self.raw(b"this is not HTTP at all\r\n\r\n")
        elif n == "continue":
            self.raw(b"HTTP/1.1 100 Continue\r\nContent-Type: text/html\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(GOOD_BODY)
                     + GOOD_BODY)
        elif n == "empty":
            self.reply(200, "text/plain", b"")
        elif n == "ua":
            body = "user-agent: %s\nif-none-match: %s\nif-modified-since: %s\n" \
                   "cache-control: %s\n" % tuple(
                       self.headers.get(h, "(none)") for h in
                       ("User-Agent", "If-None-Match", "If-Modified-Since", "Cache-Control"))
            self.reply(200, "text/plain", body.encode("latin-1", "replace"))
        else:
            self.reply(404, "text/plain", b"unknown behaviour\n")


class TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ctx):
        self.ctx = ctx
        super().__init__(("127.0.0.1", 0), Handler)

    def finish_request(self, request, client_address):
        # The handshake runs in the request's thread, so a slow or failing
        # client cannot hold up the accept loop.
        try:
            request.settimeout(10)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except OSError as e:
            log("tls-error %s" % e)
            return
        try:
            tls.settimeout(None)
            self.RequestHandlerClass(tls, client_address, self)
        except OSError:
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass


def blackhole():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    held = []

    def loop():
        while True:
            conn, _ = s.accept()
            held.append(conn)  # never read, never written, never closed
    threading.Thread(target=loop, daemon=True).start()
    return s.getsockname()[1]


def tls11_check(port):
    """Does a TLS 1.1 client really complete a handshake with the server?"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="mta-sts.tls11.test") as tls:
            return tls.version()


def main():
    global DIR
    if len(sys.argv) != 2:
        sys.exit("usage: fetch_server.py DIR")
    DIR = sys.argv[1]
    if shutil.which("openssl") is None:
        print("openssl CLI not found", file=sys.stderr)
        sys.exit(4)
    gencerts()

    good = context("good")
    alt = {"mta-sts.%s.test" % n: context(n) for n in BAD_CERTS}

    def sni(sslobj, servername, _ctx):
        if servername in alt:
            sslobj.context = alt[servername]
    good.sni_callback = sni

    main_srv = TLSServer(good)
    PORTS["main"] = main_srv.server_address[1]
    threading.Thread(target=main_srv.serve_forever, daemon=True).start()
    PORTS["blackhole"] = blackhole()

    note = "ok"
    try:
        srv11 = TLSServer(context("good", tls11=True))
        threading.Thread(target=srv11.serve_forever, daemon=True).start()
        version = tls11_check(srv11.server_address[1])
        if version != "TLSv1.1":
            raise RuntimeError("negotiated %s" % version)
        PORTS["tls11"] = srv11.server_address[1]
    except (OSError, ValueError, RuntimeError, ssl.SSLError) as e:
        PORTS["tls11"] = 0
        note = str(e).replace("\n", " ")

    tmp = os.path.join(DIR, "ports.tmp")
    with open(tmp, "w") as f:
        f.write("main=%d\nblackhole=%d\ntls11=%d\ntls11_note=%s\n"
                % (PORTS["main"], PORTS["blackhole"], PORTS["tls11"], note))
    os.rename(tmp, os.path.join(DIR, "ports"))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
