"""Programs the tproxy tests run inside their network namespaces (`ip netns exec NS python3
peer.py ...`): the servers (TCP echo, UDP echo, a tiny DNS server) and the clients. Clients
print one JSON object on stdout; the server prints "ready" once every socket is bound.

  peer.py serve --tcp 8001,8002 --udp 9000 --dns 53
  peer.py tcp HOST PORT MESSAGE [--timeout S]
  peer.py udp HOST PORT MESSAGE [--timeout S] [--count N]
  peer.py flood HOST PORT N
  peer.py dns HOST NAME [--tcp] [--timeout S]
"""
import argparse
import json
import random
import selectors
import socket
import struct
import sys
import threading
import time


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# ---- servers -------------------------------------------------------------------------------

def tcp_echo(port):
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind(("::", port))
    ls.listen(256)

    def serve(c, peer):
        # Echo with a prefix naming the port and the peer the server saw.
        with c:
            c.settimeout(10)
            try:
                data = c.recv(65536)
                if data:
                    c.sendall(b"echo %d from %s: " % (port, peer[0].encode()) + data)
            except OSError:
                pass

    def loop():
        while True:
            c, peer = ls.accept()
            threading.Thread(target=serve, args=(c, peer), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def udp_echo(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("::", port))

    def loop():
        while True:
            data, peer = s.recvfrom(65536)
            try:
                s.sendto(b"echo %d: " % port + data, peer)
            except OSError:
                pass

    threading.Thread(target=loop, daemon=True).start()


DNS_ANSWER = "198.18.99.99"


def dns_answer(query):
    """An A answer (DNS_ANSWER) for any question; None for garbage."""
    if len(query) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", query[:6])
    if qd != 1:
        return None
    i = 12
    while i < len(query) and query[i] != 0:
        i += 1 + query[i]
    end = i + 5
    if end > len(query):
        return None
    question = query[12:end]
    header = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(DNS_ANSWER)
    return header + question + answer


def dns_server(port):
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", port))

    def uloop():
        while True:
            q, peer = u.recvfrom(4096)
            a = dns_answer(q)
            if a:
                u.sendto(a, peer)

    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    t.bind(("::", port))
    t.listen(64)

    def tloop():
        while True:
            c, _ = t.accept()
            with c:
                c.settimeout(5)
                try:
                    n = struct.unpack("!H", recv_exact(c, 2))[0]
                    a = dns_answer(recv_exact(c, n))
                    if a:
                        c.sendall(struct.pack("!H", len(a)) + a)
                except (OSError, struct.error):
                    pass

    threading.Thread(target=uloop, daemon=True).start()
    threading.Thread(target=tloop, daemon=True).start()


def recv_exact(c, n):
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            raise OSError("eof")
        buf += chunk
    return buf


def ports(text):
    return [int(p) for p in text.split(",") if p] if text else []


def serve(args):
    for p in ports(args.tcp):
        tcp_echo(p)
    for p in ports(args.udp):
        udp_echo(p)
    for p in ports(args.dns):
        dns_server(p)
    print("ready", flush=True)
    # Runs until the test kills it (its parent is the test, which kills it by pid).
    deadline = time.time() + args.lifetime
    while time.time() < deadline:
        time.sleep(0.5)


# ---- clients -------------------------------------------------------------------------------

def out(obj):
    print(json.dumps(obj), flush=True)


def tcp_client(args):
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout,
                                      source_address=(args.bind, 0) if args.bind else None) as c:
            c.settimeout(args.timeout)
            c.sendall(args.message.encode())
            data = b""
            while True:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    out({"ok": bool(data), "reply": data.decode(errors="replace"), "error": "timeout"})
                    return
                if not chunk:
                    break
                data += chunk
            out({"ok": bool(data), "reply": data.decode(errors="replace"), "error": "" if data else "eof"})
    except OSError as e:
        out({"ok": False, "reply": "", "error": str(e)})


def udp_client(args):
    s = socket.socket(family_of(args.host), socket.SOCK_DGRAM)
    s.settimeout(args.timeout)
    if args.bind:
        s.bind((args.bind, 0))
    replies = []
    try:
        for i in range(args.count):
            s.sendto(("%s #%d" % (args.message, i)).encode(), (args.host, args.port))
            try:
                data, peer = s.recvfrom(65536)
                replies.append({"reply": data.decode(errors="replace"), "from": peer[0],
                                "port": peer[1]})
            except socket.timeout:
                pass
    finally:
        s.close()
    out({"ok": len(replies) == args.count, "replies": replies})


def flood(args):
    """N datagrams, each from its own source port (a new NAT session each). Self-paced: each
    batch waits (a bounded time) for its echoes, so the flood runs at the proxy's speed instead
    of overflowing socket buffers, and the count of sessions veer saw is predictable."""
    batch = 100
    sent = answered = 0
    fam = family_of(args.host)
    sel = selectors.DefaultSelector()
    while sent < args.n:
        socks = []
        for _ in range(min(batch, args.n - sent)):
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.setblocking(False)
            try:
                # Distinct source ports (an ephemeral port could repeat one still in veer's NAT).
                s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 20000 + sent))
                s.sendto(b"flood %d" % sent, (args.host, args.port))
            except OSError:
                pass
            socks.append(s)
            sel.register(s, selectors.EVENT_READ)
            sent += 1
        pending = len(socks)
        deadline = time.time() + 0.5
        while pending and time.time() < deadline:
            for key, _ in sel.select(timeout=0.1):
                try:
                    key.fileobj.recv(65536)
                    answered += 1
                except OSError:
                    pass
                sel.unregister(key.fileobj)
                pending -= 1
        for s in socks:
            if s.fileno() >= 0:
                try:
                    sel.unregister(s)
                except (KeyError, ValueError):
                    pass
            s.close()
    out({"ok": True, "sent": sent, "answered": answered})


def dns_query(name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", 1, 1)


def parse_a(resp, qid):
    if len(resp) < 12:
        return None
    rid, flags, qd, an = struct.unpack("!HHHH", resp[:8])
    if rid != qid or not flags & 0x8000:
        return None
    i = 12
    for _ in range(qd):
        while resp[i] != 0:
            if resp[i] & 0xC0 == 0xC0:
                i += 1
                break
            i += 1 + resp[i]
        i += 5
    addrs = []
    for _ in range(an):
        if resp[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while resp[i] != 0:
                i += 1 + resp[i]
            i += 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", resp[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(resp[i:i + 4]))
        i += rdlen
    return {"rcode": flags & 0xF, "addrs": addrs}


def client_hello(sni):
    """A real ClientHello from Python's TLS stack (OpenSSL) for `sni`."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_client(args):
    """Sends a ClientHello for --sni to host:port and reports whether the echo server returned
    exactly those bytes (after its "echo PORT from PEER: " prefix)."""
    hello = client_hello(args.sni)
    data = b""
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as c:
            c.settimeout(args.timeout)
            c.sendall(hello)
            while True:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        out({"ok": False, "intact": False, "got": len(data), "error": str(e)})
        return
    intact = data.startswith(b"echo ") and data.endswith(b": " + hello)
    out({"ok": bool(data), "intact": intact, "got": len(data), "hello": len(hello)})


def dns_client(args):
    qid = random.randint(1, 65535)
    q = dns_query(args.name, qid)
    try:
        if args.tcp:
            with socket.create_connection((args.host, 53), timeout=args.timeout) as c:
                c.settimeout(args.timeout)
                c.sendall(struct.pack("!H", len(q)) + q)
                n = struct.unpack("!H", recv_exact(c, 2))[0]
                resp = recv_exact(c, n)
                peer = args.host
        else:
            s = socket.socket(family_of(args.host), socket.SOCK_DGRAM)
            s.settimeout(args.timeout)
            s.sendto(q, (args.host, 53))
            resp, addr = s.recvfrom(4096)
            peer = addr[0]
            s.close()
        r = parse_a(resp, qid)
        out({"ok": r is not None, "answer": r, "from": peer})
    except (OSError, struct.error) as e:
        out({"ok": False, "error": str(e)})


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tcp", default="")
    s.add_argument("--udp", default="")
    s.add_argument("--dns", default="")
    s.add_argument("--lifetime", type=float, default=600)
    for name in ("tcp", "udp"):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("message")
        c.add_argument("--timeout", type=float, default=3)
        c.add_argument("--count", type=int, default=1)
        c.add_argument("--bind", default="", help="source address")
    f = sub.add_parser("flood")
    f.add_argument("host")
    f.add_argument("port", type=int)
    f.add_argument("n", type=int)
    t = sub.add_parser("tls")
    t.add_argument("host")
    t.add_argument("port", type=int)
    t.add_argument("sni")
    t.add_argument("--timeout", type=float, default=3)
    d = sub.add_parser("dns")
    d.add_argument("host")
    d.add_argument("name")
    d.add_argument("--tcp", action="store_true")
    d.add_argument("--timeout", type=float, default=3)
    args = p.parse_args()
    {"serve": serve, "tcp": tcp_client, "udp": udp_client, "flood": flood,
     "dns": dns_client, "tls": tls_client}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
