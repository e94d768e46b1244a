"""End to end through the mixed inbound: SOCKS5 (with and without auth, CONNECT, UDP
ASSOCIATE), SOCKS4a, HTTP CONNECT, plain HTTP with keep-alive, block, bad input, and the
direct inbound (TCP and UDP port forwarding)."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


class MixedInboundTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = h.HttpServer()
        cls.echo = h.EchoTcp()
        cls.udp = h.UdpEcho()
        cls.veer = h.Veer(h.base_config())
        cls.port = cls.veer.ports["mixed-in"]

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop()
        cls.http.stop()
        cls.echo.stop()
        cls.udp.stop()
        assert rc == 0, "veer exited %s on SIGTERM:\n%s" % (rc, cls.veer.logtext())

    def curl(self, *args):
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        r = subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args),
                           capture_output=True, text=True, timeout=20)
        return r.returncode, r.stdout, r.stderr

    def test_curl_socks5_hostname(self):
        rc, out, err = self.curl("--socks5-hostname", "127.0.0.1:%d" % self.port,
                                 "http://localhost:%d/a" % self.http.port)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "path=/a host=localhost:%d\n" % self.http.port)

    def test_curl_http_proxy(self):
        rc, out, err = self.curl("-x", "http://127.0.0.1:%d" % self.port,
                                 "http://localhost:%d/b?x=1" % self.http.port)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "path=/b?x=1 host=localhost:%d\n" % self.http.port)

    def test_curl_http_connect(self):
        rc, out, err = self.curl("-p", "-x", "http://127.0.0.1:%d" % self.port,
                                 "http://localhost:%d/c" % self.http.port)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "path=/c host=localhost:%d\n" % self.http.port)

    def test_curl_socks4a(self):
        rc, out, err = self.curl("--socks4a", "127.0.0.1:%d" % self.port,
                                 "http://localhost:%d/d" % self.http.port)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "path=/d host=localhost:%d\n" % self.http.port)

    def test_socks5_connect_echo_and_half_close(self):
        s, code = h.socks5_connect(self.port, "127.0.0.1", self.echo.port)
        self.assertEqual(code, 0)
        payload = os.urandom(300000)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # half-close: the response must still arrive in full
        got = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
        s.close()
        self.assertEqual(got, payload)

    def test_socks5_refused_reports_code(self):
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        s, code = h.socks5_connect(self.port, "127.0.0.1", port)
        s.close()
        self.assertEqual(code, 5)  # connection refused, reported only after the dial failed

    def test_block_socks_and_http(self):
        s, code = h.socks5_connect(self.port, "www.blocked.test", 80)
        s.close()
        self.assertEqual(code, 2)  # not allowed by ruleset
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        status, _, _ = h.http_get_raw(s, "blocked.test")
        s.close()
        self.assertEqual(status, 403)
        rc, out, err = self.curl("--socks5-hostname", "127.0.0.1:%d" % self.port,
                                 "http://blocked.test/")
        self.assertNotEqual(rc, 0)

    def test_plain_http_keep_alive_two_requests(self):
        before = len(self.http.connections)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        host = "localhost:%d" % self.http.port
        st1, _, b1 = h.http_get_raw(s, host, "/one")
        st2, _, b2 = h.http_get_raw(s, host, "/two")
        s.close()
        self.assertEqual((st1, st2), (200, 200))
        self.assertEqual(b1, ("path=/one host=%s\n" % host).encode())
        self.assertEqual(b2, ("path=/two host=%s\n" % host).encode())
        # Both requests went over one upstream connection.
        self.assertEqual(len(self.http.connections) - before, 1)

    def test_plain_http_post_body(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        body = b"x" * 100000
        req = ("POST http://localhost:%d/p HTTP/1.1\r\nHost: localhost:%d\r\n"
               "Content-Length: %d\r\n\r\n" % (self.http.port, self.http.port, len(body)))
        s.sendall(req.encode() + body)
        status, _, resp = h.read_response(s)
        s.close()
        self.assertEqual(status, 200)
        self.assertEqual(resp, b"got 100000 bytes\n")

    def test_socks5_udp_associate(self):
        ctl, (_, relay_port) = h.socks5_udp_associate(self.port)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        hdr = h.socks5_udp_header("127.0.0.1", self.udp.port)
        for i in range(3):
            u.sendto(hdr + b"ping%d" % i, ("127.0.0.1", relay_port))
            data, _ = u.recvfrom(65535)
            # The reply carries the echo server's address in its SOCKS header.
            self.assertEqual(data[:10], hdr)
            self.assertEqual(data[10:], b"echo:ping%d" % i)
        u.close()
        # A domain destination (from a new client socket, so a new NAT session): the reply is
        # shown as coming from the domain the client sent to.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        dom = b"localhost"
        hdr2 = b"\x00\x00\x00\x03" + bytes([len(dom)]) + dom + struct.pack(">H", self.udp.port)
        u.sendto(hdr2 + b"dom", ("127.0.0.1", relay_port))
        data, _ = u.recvfrom(65535)
        self.assertEqual(data[:len(hdr2)], hdr2)
        self.assertEqual(data[len(hdr2):], b"echo:dom")
        u.close()
        ctl.close()

    def test_bad_input_closes_only_that_connection(self):
        # A tunnel in flight must survive garbage, truncated and oversized handshakes.
        tunnel, code = h.socks5_connect(self.port, "127.0.0.1", self.echo.port)
        self.assertEqual(code, 0)
        bad_inputs = [
            b"\x16\x03\x01\x02\x00" + os.urandom(64),         # TLS to a proxy port
            b"\x05\x00",                                       # SOCKS5, no methods
            b"\x05\x01\x00\x05\x09\x00\x07",                   # SOCKS5 bad address type
            b"\x04\x01\x00\x50" + b"\x00\x00\x00\x01" + b"u" * 600,  # SOCKS4 user too long
            b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 40000,  # oversized HTTP head
            b"\x00\xff\x13\x37garbage\r\n\r\n",
        ]
        for data in bad_inputs:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            try:
                s.sendall(data)
            except OSError:
                pass
            s.settimeout(5)
            try:
                while s.recv(65536):
                    pass  # whatever veer answers, it must then close
            except (ConnectionResetError, socket.timeout):
                pass
            s.close()
        # Truncated handshake: veer waits, then the handshake timer would close it; the
        # client gives up here. The tunnel still works.
        t = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        t.sendall(b"\x05\x01")
        tunnel.sendall(b"still alive")
        self.assertEqual(h.recv_exact(tunnel, 11), b"still alive")
        t.close()
        tunnel.close()
        self.assertIsNone(self.veer.proc.poll(), "veer died")


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = h.HttpServer()
        cls.veer = h.Veer(h.base_config(users=[{"username": "alice", "password": "s3cret"}]))
        cls.port = cls.veer.ports["mixed-in"]

    @classmethod
    def tearDownClass(cls):
        cls.veer.stop()
        cls.http.stop()

    def test_socks5_with_auth(self):
        s, code = h.socks5_connect(self.port, "localhost", self.http.port, "alice", "s3cret")
        self.assertEqual(code, 0)
        status, _, body = h.http_get_raw(s, "localhost:%d" % self.http.port, "/x", absolute=False)
        s.close()
        self.assertEqual(status, 200)
        self.assertIn(b"path=/x", body)

    def test_socks5_wrong_password(self):
        s, code = h.socks5_connect(self.port, "localhost", self.http.port, "alice", "nope")
        s.close()
        self.assertEqual(code, -2)

    def test_socks5_no_auth_refused(self):
        s, code = h.socks5_connect(self.port, "localhost", self.http.port)
        s.close()
        self.assertEqual(code, -1)

    def test_http_proxy_auth(self):
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        url = "http://localhost:%d/y" % self.http.port
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-x",
                            "http://127.0.0.1:%d" % self.port, url],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.stdout, "407")
        r = subprocess.run(["curl", "-sS", "-x", "http://alice:s3cret@127.0.0.1:%d" % self.port, url],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("path=/y", r.stdout)


class DirectInboundTest(unittest.TestCase):
    def test_tcp_and_udp_forward(self):
        echo = h.EchoTcp()
        udp = h.UdpEcho()
        cfg = h.base_config()
        cfg["inbounds"].append({"type": "direct", "tag": "fwd-tcp", "listen": "127.0.0.1",
                                "listen_port": 0, "network": "tcp",
                                "override_address": "127.0.0.1", "override_port": echo.port})
        cfg["inbounds"].append({"type": "direct", "tag": "fwd-udp", "listen": "127.0.0.1",
                                "listen_port": 0, "network": "udp",
                                "override_address": "127.0.0.1", "override_port": udp.port})
        v = h.Veer(cfg)
        try:
            s = socket.create_connection(("127.0.0.1", v.ports["fwd-tcp"]), timeout=5)
            s.sendall(b"hello forward")
            self.assertEqual(h.recv_exact(s, 13), b"hello forward")
            s.close()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(5)
            u.sendto(b"dgram", ("127.0.0.1", v.ports["fwd-udp"]))
            data, src = u.recvfrom(65535)
            self.assertEqual(data, b"echo:dgram")
            self.assertEqual(src[1], v.ports["fwd-udp"])  # the reply comes from where we sent
            u.close()
        finally:
            self.assertEqual(v.stop(), 0)
            echo.stop()
            udp.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
