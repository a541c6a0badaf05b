#!/usr/bin/env python3
"""fakefilter.py MODE SOCKET - a broken milter for miltload's own tests.

Listens on the unix socket SOCKET, serves one connection, and breaks the
milter protocol in the way MODE says:

  silent        never answers SMFIC_OPTNEG
  oversize      answers OPTNEG with a packet longer than 64 KiB
  badrcpt       answers RCPT with SMFIR_ADDHEADER (allowed only at EOM)
  unnegotiated  adds a header at EOM without having asked for SMFIF_ADDHDRS
  good          follows the protocol (declines every step but MAIL, RCPT, EOM)
"""
import socket
import struct
import sys
import time

# SMFIP_NOCONNECT | NOHELO | NOBODY | NOHDRS | NOEOH | NOUNKNOWN | NODATA
PROTO = 0x01 | 0x02 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200


def main():
    mode, path = sys.argv[1], sys.argv[2]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    conn, _ = srv.accept()

    def recv_exact(n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def send(cmd, data=b""):
        conn.sendall(struct.pack("!I", len(data) + 1) + cmd + data)

    while True:
        hdr = recv_exact(4)
        if hdr is None:
            break
        pkt = recv_exact(struct.unpack("!I", hdr)[0])
        if pkt is None:
            break
        cmd = pkt[:1]
        if cmd == b"O":
            if mode == "silent":
                time.sleep(10)
                break
            if mode == "oversize":
                conn.sendall(struct.pack("!I", 70000) + b"O" + b"\0" * 100)
                time.sleep(2)
                break
            actions = 0 if mode == "unnegotiated" else 0x01  # SMFIF_ADDHDRS
            send(b"O", struct.pack("!III", 6, actions, PROTO))
        elif cmd == b"M":
            send(b"c")
        elif cmd == b"R":
            if mode == "badrcpt":
                send(b"h", b"X-Bad\0here\0")
            else:
                send(b"c")
        elif cmd == b"E":
            send(b"h", b"X-Fake\0yes\0")
            send(b"c")
        elif cmd == b"Q":
            break
        # SMFIC_MACRO and SMFIC_ABORT get no reply
    conn.close()


if __name__ == "__main__":
    main()
