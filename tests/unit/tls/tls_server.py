#!/usr/bin/env python3
"""Test peer for tls_test: a TLS (or raw TCP) server on 127.0.0.1, ephemeral port.

Prints "PORT <n>" first, then one line per event, flushed:
  SNI <name or ->, VERSION <v>, ALPN <proto or ->, EOF close_notify, EOF ragged, ERROR <text>.
Serves connections until killed.

Modes (--mode):
  echo        TLS; echo until the client ends; then close_notify back.
  ragged      TLS; send "hello" and close the TCP connection without close_notify.
  garbage     TLS; after the handshake write non-TLS bytes on the raw socket.
  badmac      TLS; after the handshake write an application-data record with a bad MAC.
  truncate    TLS; after the handshake write half a record, then close.
  silent      TCP; accept and never answer.
  midclose    TCP; read the ClientHello, send a partial ServerHello, close.
  http        TCP; answer the ClientHello with an HTTP error response.
"""
import argparse
import os
import socket
import ssl
import sys
import threading

lock = threading.Lock()


def say(*parts):
    with lock:
        sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
        sys.stdout.flush()


def raw_dup(s):
    return socket.socket(fileno=os.dup(s.fileno()))


def serve_tls(conn, ctx, mode):
    sni = ["-"]

    def on_sni(sslobj, name, _ctx):
        sni[0] = name if name else "-"

    ctx.sni_callback = on_sni
    try:
        s = ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
    except Exception as e:  # noqa: BLE001 - report any handshake failure
        say("ERROR", type(e).__name__, str(e).replace("\n", " "))
        conn.close()
        return
    say("SNI", sni[0])
    say("VERSION", s.version())
    say("ALPN", s.selected_alpn_protocol() or "-")
    if mode == "echo":
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    say("EOF", "close_notify")
                    break
                s.sendall(data)
        except ssl.SSLEOFError:
            say("EOF", "ragged")
        except Exception as e:  # noqa: BLE001
            say("ERROR", type(e).__name__, str(e).replace("\n", " "))
        try:
            s.unwrap()
        except Exception:  # noqa: BLE001
            pass
        s.close()
        return
    if mode == "ragged":
        s.sendall(b"hello")
        r = raw_dup(s)
        r.shutdown(socket.SHUT_RDWR)
        r.close()
        s.close()
        return
    r = raw_dup(s)
    if mode == "garbage":
        r.sendall(b"this is not a TLS record at all\r\n" * 4)
    elif mode == "badmac":
        r.sendall(b"\x17\x03\x03\x00\x40" + bytes(range(0x40)))
    elif mode == "truncate":
        r.sendall(b"\x17\x03\x03\x01\x00" + b"\x00" * 40)
        r.shutdown(socket.SHUT_WR)
    try:
        r.settimeout(5)
        while r.recv(4096):
            pass
    except Exception:  # noqa: BLE001
        pass
    r.close()
    s.close()


def serve_raw(conn, mode):
    if mode == "silent":
        try:
            while conn.recv(4096):
                pass
        except Exception:  # noqa: BLE001
            pass
        conn.close()
        return
    conn.settimeout(5)
    try:
        conn.recv(4096)  # the ClientHello
        if mode == "midclose":
            conn.sendall(b"\x16\x03\x03\x00\x50\x02\x00\x00\x4c\x03\x03")
        elif mode == "http":
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    except Exception:  # noqa: BLE001
        pass
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="echo")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--alpn", default="")
    ap.add_argument("--min", default="")
    ap.add_argument("--max", default="")
    a = ap.parse_args()

    ctx = None
    if a.mode not in ("silent", "midclose", "http"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        versions = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
                    "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
        if a.min:
            ctx.minimum_version = versions[a.min]
        if a.max:
            ctx.maximum_version = versions[a.max]
        if a.alpn:
            ctx.set_alpn_protocols(a.alpn.split(","))

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    say("PORT", ls.getsockname()[1])
    while True:
        conn, _ = ls.accept()
        if ctx is not None:
            t = threading.Thread(target=serve_tls, args=(conn, ctx, a.mode), daemon=True)
        else:
            t = threading.Thread(target=serve_raw, args=(conn, a.mode), daemon=True)
        t.start()


if __name__ == "__main__":
    main()
