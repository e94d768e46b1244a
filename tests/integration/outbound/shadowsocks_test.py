"""The shadowsocks outbound against shadowsocks-libev's ss-server on loopback, for each AEAD
method: veer mixed inbound -> shadowsocks outbound -> ss-server -> local TCP/UDP echo servers.
Also: a wrong password (ss-server stays silent: veer warns after its reply deadline), a
server answering garbage (decryption failure), and veer serving others meanwhile."""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import harness as h  # noqa: E402
from proxy_outbound_test import Garbage, free_port, wait_port  # noqa: E402

SS_SERVER = shutil.which("ss-server")
METHODS = ["aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"]
PASSWORD = "correct horse battery staple"


def short(m):
    return m.split("-")[0] + m.split("-")[1]


def transfer(port, dst_port, size):
    """SOCKS5 CONNECT through veer to the echo server; send `size` random bytes while reading
    the echo back; returns (code, sha256 sent, sha256 received, bytes received)."""
    s, code = h.socks5_connect(port, "127.0.0.1", dst_port, timeout=30)
    if code != 0:
        s.close()
        return code, None, None, 0
    payload = os.urandom(size)
    got = hashlib.sha256()
    n = [0]

    def reader():
        try:
            while n[0] < size:
                d = s.recv(1 << 20)
                if not d:
                    break
                got.update(d)
                n[0] += len(d)
        except OSError:
            pass

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(payload)
    t.join(60)
    s.close()
    return 0, hashlib.sha256(payload).hexdigest(), got.hexdigest(), n[0]


@unittest.skipUnless(SS_SERVER, "ss-server not installed (apt-get install shadowsocks-libev)")
class ShadowsocksTest(unittest.TestCase):
    procs = []

    @classmethod
    def setUpClass(cls):
        cls.echo = h.EchoTcp()
        cls.udp = h.UdpEcho()
        cls.garbage = Garbage()
        inbounds, outbounds, rules = [], [{"type": "direct", "tag": "direct"}], []

        def route(tag, outbound):
            inbounds.append({"type": "mixed", "tag": "in-" + tag, "listen": "127.0.0.1",
                             "listen_port": 0})
            rules.append({"inbound": ["in-" + tag], "outbound": outbound})

        for m in METHODS:
            port = free_port()
            p = subprocess.Popen([SS_SERVER, "-s", "127.0.0.1", "-p", str(port), "-k", PASSWORD,
                                  "-m", m, "-u"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            cls.procs.append(p)
            if not wait_port(port, p):
                raise RuntimeError("ss-server did not start for " + m)
            outbounds.append({"type": "shadowsocks", "tag": "ss-" + short(m),
                              "server": "127.0.0.1", "server_port": port, "method": m,
                              "password": PASSWORD})
            route(short(m), "ss-" + short(m))
            if m == "chacha20-ietf-poly1305":
                outbounds.append({"type": "shadowsocks", "tag": "ss-badpass",
                                  "server": "127.0.0.1", "server_port": port, "method": m,
                                  "password": "wrong"})
                route("badpass", "ss-badpass")
        outbounds.append({"type": "shadowsocks", "tag": "ss-junk", "server": "127.0.0.1",
                          "server_port": cls.garbage.port, "method": "aes-128-gcm",
                          "password": PASSWORD})
        route("junk", "ss-junk")
        cfg = {"log": {"level": "debug"}, "inbounds": inbounds, "outbounds": outbounds,
               "route": {"rules": rules, "final": "direct"}}
        cls.veer = h.Veer(cfg)

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop()
        for p in cls.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        cls.echo.stop()
        cls.udp.stop()
        cls.garbage.stop()
        assert rc == 0, "veer exited %s:\n%s" % (rc, cls.veer.logtext())

    def port(self, tag):
        return self.veer.ports["in-" + tag]

    def check_transfer(self, tag, size=8 * 1024 * 1024):
        code, sent, got, n = transfer(self.port(tag), self.echo.port, size)
        self.assertEqual(code, 0, self.veer.logtext()[-3000:])
        self.assertEqual(n, size, "%s: %d of %d bytes came back" % (tag, n, size))
        self.assertEqual(got, sent, "data corrupted through %s" % tag)

    def test_tcp_each_method(self):
        for m in METHODS:
            with self.subTest(method=m):
                self.check_transfer(short(m))
                self.assertIn("=> outbound/shadowsocks[ss-%s]" % short(m), self.veer.logtext())

    def test_tcp_parallel(self):
        results = []

        def one(tag):
            results.append((tag, transfer(self.port(tag), self.echo.port, 2 * 1024 * 1024)))

        ts = [threading.Thread(target=one, args=(short(m),)) for m in METHODS for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(90)
        self.assertEqual(len(results), 9)
        for tag, (code, sent, got, n) in results:
            self.assertEqual(code, 0, tag)
            self.assertEqual((n, got), (2 * 1024 * 1024, sent), tag)

    def test_server_first_protocol(self):
        # The client sends nothing: the target header goes out alone after a short delay, so
        # ss-server connects and a server-first target (here: a greeting server) can speak.
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(10)

        def greet():
            try:
                c, _ = srv.accept()
                c.sendall(b"220 hello\r\n")
                c.recv(10)
                c.close()
            except OSError:
                pass

        t = threading.Thread(target=greet)
        t.start()
        s, code = h.socks5_connect(self.port("aes128"), "127.0.0.1", srv.getsockname()[1],
                                   timeout=10)
        self.assertEqual(code, 0)
        self.assertEqual(h.recv_exact(s, 11), b"220 hello\r\n")
        s.close()
        t.join(10)
        srv.close()

    def test_udp_each_method(self):
        for m in METHODS:
            with self.subTest(method=m):
                ctl, relay = h.socks5_udp_associate(self.port(short(m)))
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.settimeout(1)
                hdr = h.socks5_udp_header("127.0.0.1", self.udp.port)
                ok = 0
                deadline = time.time() + 15
                for size in (1, 100, 1200, 1400, 1200):
                    payload = os.urandom(size)
                    # UDP may drop: retry each datagram a few times, bounded in time.
                    while time.time() < deadline:
                        u.sendto(hdr + payload, relay)
                        try:
                            data, _ = u.recvfrom(65535)
                        except socket.timeout:
                            continue
                        self.assertEqual(data[:10], hdr)
                        self.assertEqual(data[10:], b"echo:" + payload)
                        ok += 1
                        break
                self.assertEqual(ok, 5, self.veer.logtext()[-3000:])
                u.close()
                ctl.close()

    def test_wrong_password_is_reported_and_affects_only_that_connection(self):
        start = len(self.veer.logtext())
        s, code = h.socks5_connect(self.port("badpass"), "127.0.0.1", self.echo.port, timeout=30)
        self.assertEqual(code, 0)  # the TCP connection to the server itself succeeds
        s.sendall(b"hello")
        # Others are served meanwhile.
        self.check_transfer(short(METHODS[2]), size=1024 * 1024)
        # ss-server never answers a request it cannot decrypt; after its reply deadline (15 s)
        # veer says so in the log, and leaves the connection to the client (a slow but honest
        # server, a long poll, must not be cut).
        self.assertTrue(self.veer.wait_log(r"shadowsocks: no answer from the server 127\.0\.0\.1:"
                                           r"\d+ \(outbound ss-badpass\) within 15000 ms",
                                           start=start, timeout=25),
                        self.veer.logtext()[start:])
        s.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            s.recv(100)  # nothing came back, and the connection is still open
        s.close()
        self.check_transfer(short(METHODS[2]), size=1024 * 1024)

    def test_garbage_reply_is_a_decryption_failure(self):
        start = len(self.veer.logtext())
        s, code = h.socks5_connect(self.port("junk"), "127.0.0.1", self.echo.port, timeout=10)
        self.assertEqual(code, 0)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            self.assertEqual(s.recv(100), b"")
        except ConnectionResetError:
            pass
        s.close()
        self.assertTrue(self.veer.wait_log(r"shadowsocks: decryption failed \(wrong password or "
                                           r"corrupted data\)", start=start, timeout=5),
                        self.veer.logtext()[start:])
        self.check_transfer("aes256", size=1024 * 1024)


if __name__ == "__main__":
    unittest.main(verbosity=2)
