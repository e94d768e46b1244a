#!/usr/bin/env python3
"""Test peer for tls_transport_test: a DNS over TLS or DNS over HTTPS server on 127.0.0.1.

Usage: dns_front.py dot|doh CERT KEY [PORT]   (PORT 0 or absent: an ephemeral port)
Prints "PORT <n>", then "ACCEPT" per connection and "QUERY <name>" per query, flushed. Answers
every A query with 127.0.0.7 and AAAA with ::7 (TTL 60) by itself. Names starting with
  silent.      never answered (DoT and DoH);
  bad-status.  DoH: 500; wrong-type. DoH: text/html; truncated. DoH: body cut by a close;
  chunked.     DoH: a chunked body;  close.  DoT: the connection is closed instead.
Serves until killed.
"""
import socket
import ssl
import struct
import sys
import threading

lock = threading.Lock()


def say(*parts):
    with lock:
        sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
        sys.stdout.flush()


def qname_end(msg):
    pos, labels = 12, []
    while msg[pos]:
        labels.append(msg[pos + 1:pos + 1 + msg[pos]].decode())
        pos += 1 + msg[pos]
    return ".".join(labels), pos + 1


def answer(msg):
    name, end = qname_end(msg)
    qtype = struct.unpack(">H", msg[end:end + 2])[0]
    question = msg[12:end + 4]
    if qtype == 1:
        rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_pton(socket.AF_INET, "127.0.0.7")
    elif qtype == 28:
        rr = b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 60, 16) + socket.inet_pton(socket.AF_INET6, "::7")
    else:
        rr = b""
    head = msg[:2] + struct.pack(">HHHHH", 0x8180, 1, 1 if rr else 0, 0, 0)
    return name, head + question + rr


def read_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise OSError("eof")
        b += d
    return b


def serve_dot(c):
    while True:
        n = struct.unpack(">H", read_exact(c, 2))[0]
        name, resp = answer(read_exact(c, n))
        say("QUERY", name)
        if name.startswith("silent."):
            continue
        if name.startswith("close."):
            return
        c.sendall(struct.pack(">H", len(resp)) + resp)


def serve_doh(c):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(buf) < n:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        body, buf = buf[:n], buf[n:]
        name, resp = answer(body)
        say("QUERY", name)
        ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n"
        if name.startswith("silent."):
            continue
        if name.startswith("bad-status."):
            c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops\n")
        elif name.startswith("wrong-type."):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
                      % len(resp) + resp)
        elif name.startswith("truncated."):
            c.sendall(ok + b"Content-Length: %d\r\n\r\n" % (len(resp) + 40) + resp)
            return
        elif name.startswith("chunked."):
            h = len(resp) // 2
            c.sendall(ok + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % h + resp[:h] +
                      b"\r\n%x\r\n" % (len(resp) - h) + resp[h:] + b"\r\n0\r\n\r\n")
        else:
            c.sendall(ok + b"Content-Length: %d\r\n\r\n" % len(resp) + resp)


def serve(raw, ctx, kind):
    c = None
    try:
        c = ctx.wrap_socket(raw, server_side=True)
        (serve_dot if kind == "dot" else serve_doh)(c)
    except (OSError, ssl.SSLError, ValueError, IndexError, struct.error):
        pass
    finally:
        for s in (c, raw):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass


def main():
    kind, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
    port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    say("PORT", ls.getsockname()[1])
    while True:
        raw, _ = ls.accept()
        say("ACCEPT")
        threading.Thread(target=serve, args=(raw, ctx, kind), daemon=True).start()


if __name__ == "__main__":
    main()
