"""DNS over TLS and DNS over HTTPS servers (`tls` and `https` server types) end to end: veer's
hijack-dns answers client queries through a DoT and a DoH front (Python ssl servers made for the
test, trusting a test CA made with the openssl CLI) that forward to a dnsmasq with its own
zone. Checks A/AAAA answers, connection reuse and pipelining, reconnect after a server
restart, a wrong CA (clear error, other servers unaffected), a server name resolved through
another DNS server, and malformed DoH responses (bad status, wrong content type, truncated
body)."""
import os
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from dns_test import DNSMASQ, free_udp_port, query  # noqa: E402

OPENSSL = shutil.which("openssl")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(argv, cwd):
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    """ca.pem signs server.pem (SAN dns.test and 127.0.0.1); other-ca.pem is a stranger."""
    for name in ("ca", "other-ca"):
        run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=veer test %s" % name, "-keyout", name + ".key", "-out", name + ".pem"],
            d)
    run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=dns.test",
         "-keyout", "server.key", "-out", "server.csr"], d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:dns.test,IP:127.0.0.1\n")
    run([OPENSSL, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem"], d)


def qname(msg):
    """The question name of a DNS message (no compression in questions)."""
    pos, labels = 12, []
    while msg[pos]:
        labels.append(msg[pos + 1:pos + 1 + msg[pos]].decode())
        pos += 1 + msg[pos]
    return ".".join(labels)


def parse_answers(msg):
    """(id, rcode, [addresses]) with A and AAAA answers."""
    qid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    pos = 12

    def skip_name(p):
        while True:
            n = msg[p]
            if n == 0:
                return p + 1
            if n & 0xC0 == 0xC0:
                return p + 2
            p += 1 + n
    for _ in range(qd):
        pos = skip_name(pos) + 4
    ips = []
    for _ in range(an):
        pos = skip_name(pos)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            ips.append(socket.inet_ntop(socket.AF_INET, msg[pos:pos + 4]))
        elif rtype == 28 and rdlen == 16:
            ips.append(socket.inet_ntop(socket.AF_INET6, msg[pos:pos + 16]))
        pos += rdlen
    return qid, flags & 0xF, ips


class Upstream:
    """Forwards one DNS message to dnsmasq over UDP."""

    def __init__(self, port):
        self.port = port

    def ask(self, msg):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        try:
            u.sendto(msg, ("127.0.0.1", self.port))
            return u.recvfrom(65535)[0]
        finally:
            u.close()


class TlsFront:
    """A threaded TLS server on a fixed port: DoT (length-prefixed messages) or DoH (HTTP/1.1
    POST); counts the connections it accepted; stop() closes the listener and every open
    connection (a server restart)."""

    def __init__(self, kind, port, certdir, upstream):
        self.kind, self.port, self.upstream = kind, port, upstream
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(certdir, "server.pem"),
                                 os.path.join(certdir, "server.key"))
        self.accepted = 0
        self.requests = []
        self.conns = set()
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, raw):
        c = None
        try:
            c = self.ctx.wrap_socket(raw, server_side=True)
            # The wrapper took the descriptor over: stop() must close the wrapper.
            with self.lock:
                self.conns.discard(raw)
                self.conns.add(c)
            c.settimeout(10)
            if self.kind == "dot":
                self._serve_dot(c)
            else:
                self._serve_doh(c)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            with self.lock:
                self.conns.discard(raw)
                self.conns.discard(c)
            for sock in (c, raw):
                try:
                    if sock is not None:
                        sock.close()
                except OSError:
                    pass

    @staticmethod
    def _read_exact(c, n):
        b = b""
        while len(b) < n:
            d = c.recv(n - len(b))
            if not d:
                raise OSError("eof")
            b += d
        return b

    def _serve_dot(self, c):
        while True:
            n = struct.unpack(">H", self._read_exact(c, 2))[0]
            msg = self._read_exact(c, n)
            with self.lock:
                self.requests.append(qname(msg))
            resp = self.upstream.ask(msg)
            c.sendall(struct.pack(">H", len(resp)) + resp)

    def _serve_doh(self, c):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in lines[1:])}
            n = int(headers.get("content-length", "0"))
            while len(buf) < n:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            body, buf = buf[:n], buf[n:]
            name = qname(body)
            with self.lock:
                self.requests.append((lines[0], headers.get("host"),
                                      headers.get("content-type"), name, body[:2]))
            resp = self.upstream.ask(body)
            if name.startswith("bad-status."):
                c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops\n")
                continue
            if name.startswith("wrong-type."):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d"
                          b"\r\n\r\n" % len(resp) + resp)
                continue
            if name.startswith("truncated."):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n"
                          b"Content-Length: %d\r\n\r\n" % (len(resp) + 40) + resp)
                return  # close mid-body
            if name.startswith("chunked."):
                half = len(resp) // 2
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % half + resp[:half] +
                          b"\r\n%x\r\n" % (len(resp) - half) + resp[half:] + b"\r\n0\r\n\r\n")
                continue
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(resp) + resp)

    def stop(self):
        self.running = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept() in the other thread
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


@unittest.skipIf(DNSMASQ is None, "dnsmasq not installed (Debian package dnsmasq-base)")
@unittest.skipIf(OPENSSL is None, "openssl not installed")
class DnsTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="veer-dnstls-")
        make_pki(cls.tmp)
        cls.dns_port = free_udp_port()
        cls.dnsmasq = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--port=%d" % cls.dns_port, "--listen-address=127.0.0.1", "--bind-interfaces",
             "--pid-file=" + os.path.join(cls.tmp, "pid"), "--address=/test/127.0.0.7",
             "--address=/test/::7", "--log-facility=" + os.path.join(cls.tmp, "log")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(cls.tmp, "stderr"), "w"))
        cls.fronts = []
        try:
            cls.wait_dnsmasq()
            up = Upstream(cls.dns_port)
            cls.dot_port, cls.doh_port = free_port(), free_port()
            cls.dot = TlsFront("dot", cls.dot_port, cls.tmp, up)
            cls.doh = TlsFront("doh", cls.doh_port, cls.tmp, up)
            cls.fronts = [cls.dot, cls.doh]
            ca = os.path.join(cls.tmp, "ca.pem")
            other = os.path.join(cls.tmp, "other-ca.pem")
            cfg = h.base_config()
            cfg["log"] = {"level": "debug"}
            cfg["dns"] = {
                "servers": [
                    {"type": "tls", "tag": "dot", "server": "127.0.0.1",
                     "server_port": cls.dot_port, "tls": {"certificate_path": ca}},
                    {"type": "https", "tag": "doh", "server": "127.0.0.1",
                     "server_port": cls.doh_port, "headers": {"X-Veer": "1"},
                     "tls": {"certificate_path": ca}},
                    {"type": "tls", "tag": "dot-name", "server": "dns.test",
                     "server_port": cls.dot_port, "domain_resolver": "hosts",
                     "tls": {"certificate_path": ca}},
                    {"type": "hosts", "tag": "hosts", "predefined": {"dns.test": "127.0.0.1"}},
                    {"type": "tls", "tag": "dot-wrongca", "server": "127.0.0.1",
                     "server_port": cls.dot_port, "tls": {"certificate_path": other}},
                    {"type": "https", "tag": "doh-wrongca", "server": "127.0.0.1",
                     "server_port": cls.doh_port, "tls": {"certificate_path": other}},
                ],
                "rules": [
                    {"domain_suffix": ["doh.test"], "server": "doh"},
                    {"domain_suffix": ["name.test"], "server": "dot-name"},
                    {"domain_suffix": ["wrongca.test"], "server": "dot-wrongca"},
                    {"domain_suffix": ["wrongdoh.test"], "server": "doh-wrongca"},
                ],
                "final": "dot",
                "disable_cache": True,
            }
            cfg["inbounds"].append({"type": "direct", "tag": "dns-in", "listen": "127.0.0.1",
                                    "listen_port": 0})
            cfg["route"]["rules"].insert(0, {"inbound": ["dns-in"], "action": "hijack-dns"})
            cls.veer = h.Veer(cfg)
        except Exception:
            for f in cls.fronts:
                f.stop()
            cls.dnsmasq.terminate()
            cls.dnsmasq.wait(timeout=5)
            raise
        cls.dns_in = cls.veer.ports["dns-in"]

    @classmethod
    def wait_dnsmasq(cls):
        deadline = time.time() + 10
        while time.time() < deadline:
            if cls.dnsmasq.poll() is not None:
                raise RuntimeError("dnsmasq exited with %d" % cls.dnsmasq.returncode)
            try:
                Upstream(cls.dns_port).ask(query("up.test", 7))
                return
            except OSError:
                time.sleep(0.05)
        cls.dnsmasq.kill()
        raise RuntimeError("dnsmasq did not answer on port %d" % cls.dns_port)

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop()
        for f in cls.fronts:
            f.stop()
        cls.dnsmasq.terminate()
        cls.dnsmasq.wait(timeout=5)
        assert rc == 0, cls.veer.logtext()

    def ask(self, name, qid=0x1234, qtype=1, timeout=8):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(timeout)
        try:
            u.sendto(query(name, qid, qtype), ("127.0.0.1", self.dns_in))
            return parse_answers(u.recvfrom(4096)[0])
        finally:
            u.close()

    def ask_many(self, names, qtype=1):
        """Sends every query at once (one socket), then collects the answers by ID."""
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(8)
        try:
            for i, n in enumerate(names):
                u.sendto(query(n, 0x100 + i, qtype), ("127.0.0.1", self.dns_in))
            got = {}
            while len(got) < len(names):
                qid, rcode, ips = parse_answers(u.recvfrom(4096)[0])
                got[qid - 0x100] = (rcode, ips)
            return [got[i] for i in range(len(names))]
        finally:
            u.close()

    def test_a_and_aaaa_over_dot(self):
        self.assertEqual(self.ask("a.dot-a.test", 0x1111), (0x1111, 0, ["127.0.0.7"]))
        self.assertEqual(self.ask("a.dot-aaaa.test", 0x2222, qtype=28), (0x2222, 0, ["::7"]))

    def test_a_and_aaaa_over_doh(self):
        self.assertEqual(self.ask("a.doh.test", 0x3333), (0x3333, 0, ["127.0.0.7"]))
        self.assertEqual(self.ask("b.doh.test", 0x4444, qtype=28), (0x4444, 0, ["::7"]))
        with self.doh.lock:
            reqs = [r for r in self.doh.requests if r[3] in ("a.doh.test", "b.doh.test")]
        self.assertEqual(len(reqs), 2)
        line, host, ctype, _, wire_id = reqs[0]
        self.assertEqual(line, "POST /dns-query HTTP/1.1")
        self.assertEqual(host, "127.0.0.1:%d" % self.doh_port)
        self.assertEqual(ctype, "application/dns-message")
        self.assertEqual(wire_id, b"\x00\x00")  # RFC 8484 §4.1

    def test_doh_chunked_response(self):
        self.assertEqual(self.ask("chunked.doh.test", 0x5555), (0x5555, 0, ["127.0.0.7"]))

    def test_dot_reuses_one_connection_and_pipelines(self):
        self.ask("warm.reuse.test")
        with self.dot.lock:
            before = self.dot.accepted
        names = ["q%d.reuse.test" % i for i in range(8)]
        res = self.ask_many(names)
        self.assertEqual(res, [(0, ["127.0.0.7"])] * 8)
        for i in range(4):
            self.assertEqual(self.ask("s%d.reuse.test" % i)[1:], (0, ["127.0.0.7"]))
        with self.dot.lock:
            self.assertEqual(self.dot.accepted, before)  # no new connection

    def test_doh_keeps_alive(self):
        self.ask("warm.doh.test")
        with self.doh.lock:
            before = self.doh.accepted
        for i in range(5):
            self.assertEqual(self.ask("k%d.doh.test" % i)[1:], (0, ["127.0.0.7"]))
        with self.doh.lock:
            self.assertEqual(self.doh.accepted, before)

    def test_server_name_resolved_through_another_server(self):
        self.assertEqual(self.ask("x.name.test", 0x6666), (0x6666, 0, ["127.0.0.7"]))

    def test_wrong_ca_is_a_clear_error_and_nothing_else_is_affected(self):
        start = len(self.veer.logtext())
        qid, rcode, ips = self.ask("x.wrongca.test", 0x7777)
        self.assertEqual((qid, rcode, ips), (0x7777, 2, []))  # SERVFAIL
        self.veer.wait_log(r"dns/dot-wrongca \(tls://127\.0\.0\.1:\d+\): tls: .*verif", start=start)
        qid, rcode, ips = self.ask("x.wrongdoh.test", 0x7778)
        self.assertEqual(rcode, 2)
        self.veer.wait_log(r"dns/doh-wrongca \(https://127\.0\.0\.1:\d+\): tls: .*verif",
                           start=start)
        self.assertEqual(self.ask("after-wrongca.test")[1:], (0, ["127.0.0.7"]))
        self.assertEqual(self.ask("after.doh.test")[1:], (0, ["127.0.0.7"]))

    def test_malformed_doh_responses(self):
        for name, pattern in (("bad-status.doh.test", r"HTTP status 500"),
                              ("wrong-type.doh.test", r"unexpected Content-Type \"text/html\""),
                              ("truncated.doh.test", r"truncated")):
            start = len(self.veer.logtext())
            qid, rcode, ips = self.ask(name, 0x0808)
            self.assertEqual((qid, rcode, ips), (0x0808, 2, []), name)
            self.veer.wait_log(r"dns/doh \(https://127\.0\.0\.1:\d+\): .*" + pattern, start=start)
            # The next query gets a fresh, working connection.
            self.assertEqual(self.ask("ok-after-" + name)[1:], (0, ["127.0.0.7"]))

    def test_zz_restart_reconnects(self):
        # Runs last (unittest orders by name): it restarts the fronts.
        self.assertEqual(self.ask("before.restart.test")[1:], (0, ["127.0.0.7"]))
        self.assertEqual(self.ask("before.doh.test")[1:], (0, ["127.0.0.7"]))
        up = Upstream(self.dns_port)
        for attr, kind, port in (("dot", "dot", self.dot_port), ("doh", "doh", self.doh_port)):
            old = getattr(self, attr)
            old.stop()
            new = TlsFront(kind, port, self.tmp, up)
            setattr(type(self), attr, new)
            type(self).fronts.append(new)
        self.assertEqual(self.ask("after.restart.test")[1:], (0, ["127.0.0.7"]))
        self.assertEqual(self.ask("after.doh.test")[1:], (0, ["127.0.0.7"]))
        self.assertEqual(self.dot.accepted, 1)
        self.assertEqual(self.doh.accepted, 1)


if __name__ == "__main__":
    unittest.main()
