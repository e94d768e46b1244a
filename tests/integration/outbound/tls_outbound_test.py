"""TLS outbounds against real servers on loopback, with a CA made by the test:
veer mixed inbound -> trojan outbound (TLS) -> Debian's trojan server -> local echo servers, and
veer -> http outbound with tls -> stunnel -> tinyproxy. Certificate checks: the configured CA
verifies, SNI picks the name, a wrong CA and a wrong name fail with a clear log line,
`insecure` accepts what it is told to, and nothing else is affected by a failure."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import http.server
import ssl
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import harness as h  # noqa: E402
from proxy_outbound_test import free_port, transfer, wait_port  # noqa: E402

TROJAN = shutil.which("trojan")
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")
TINYPROXY = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if os.path.exists("/usr/bin/tinyproxy") else None)
OPENSSL = shutil.which("openssl")


def run(argv, cwd):
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d):
    """ca.pem signs server.pem (CN/SAN proxy.test and 127.0.0.1); other-ca.pem is a stranger."""
    for name in ("ca", "other-ca"):
        run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=veer test %s" % name, "-keyout", name + ".key", "-out", name + ".pem"],
            d)
    run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=proxy.test",
         "-keyout", "server.key", "-out", "server.csr"], d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:proxy.test,IP:127.0.0.1\n")
    run([OPENSSL, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem"], d)


class HttpsProbeTarget:
    """An HTTPS server with the test certificate answering 204 (the urltest probe target)."""

    def __init__(self, d):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d, "server.pem"), os.path.join(d, "server.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class TlsOutboundTest(unittest.TestCase):
    procs = []

    @classmethod
    def start(cls, argv, port, name):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.procs.append(p)
        if not wait_port(port, p):
            raise RuntimeError("%s did not start: %s" % (name, argv))
        return p

    @classmethod
    def setUpClass(cls):
        cls.veer = None
        if not OPENSSL:
            raise unittest.SkipTest("openssl not installed (apt-get install openssl)")
        cls.dir = tempfile.mkdtemp(prefix="veer-tls-")
        make_pki(cls.dir)
        ca = os.path.join(cls.dir, "ca.pem")
        other = os.path.join(cls.dir, "other-ca.pem")
        cls.echo = h.EchoTcp()
        cls.udp = h.UdpEcho()
        cls.fallback = h.HttpServer()
        outbounds = [{"type": "direct", "tag": "direct"}]
        inbounds, rules = [], []

        def route(tag, outbound):
            inbounds.append({"type": "mixed", "tag": "in-" + tag, "listen": "127.0.0.1",
                             "listen_port": 0})
            rules.append({"inbound": ["in-" + tag], "outbound": outbound})

        if TROJAN:
            port = free_port()
            conf = os.path.join(cls.dir, "trojan.json")
            with open(conf, "w") as f:
                f.write("""{"run_type": "server", "local_addr": "127.0.0.1", "local_port": %d,
                  "remote_addr": "127.0.0.1", "remote_port": %d, "password": ["correct horse"],
                  "log_level": 1,
                  "ssl": {"cert": "%s/server.pem", "key": "%s/server.key",
                          "alpn": ["h2", "http/1.1"]},
                  "tcp": {"no_delay": true}}""" % (port, cls.fallback.port, cls.dir, cls.dir))
            cls.start([TROJAN, "-c", conf], port, "trojan")
            tr = {"type": "trojan", "server": "127.0.0.1", "server_port": port,
                  "password": "correct horse"}
            outbounds += [
                dict(tr, tag="trojan", tls={"enabled": True, "server_name": "proxy.test",
                                            "certificate_path": ca, "alpn": ["http/1.1"]}),
                dict(tr, tag="trojan-ip", tls={"enabled": True, "certificate_path": ca}),
                dict(tr, tag="trojan-wrongca", tls={"enabled": True, "server_name": "proxy.test",
                                                    "certificate_path": other}),
                dict(tr, tag="trojan-wrongname", tls={"enabled": True, "certificate_path": ca,
                                                      "server_name": "other.test"}),
                dict(tr, tag="trojan-insecure", tls={"enabled": True, "insecure": True,
                                                     "server_name": "proxy.test"}),
                dict(tr, tag="trojan-badpass", password="wrong",
                     tls={"enabled": True, "server_name": "proxy.test", "certificate_path": ca}),
            ]
            for t in ("trojan", "trojan-ip", "trojan-wrongca", "trojan-wrongname",
                      "trojan-insecure", "trojan-badpass"):
                route(t, t)
            # urltest over https://: the member whose TLS to the trojan server fails is skipped;
            # the probe's own TLS is verified against SSL_CERT_FILE (the test CA), as Go does.
            cls.probe = HttpsProbeTarget(cls.dir)
            outbounds.append({"type": "urltest", "tag": "auto",
                              "outbounds": ["trojan-wrongca", "trojan"],
                              "url": "https://127.0.0.1:%d/generate_204" % cls.probe.port,
                              "interval": "1s"})
            route("auto", "auto")
        if STUNNEL and TINYPROXY:
            tport, sport = free_port(), free_port()
            tconf = os.path.join(cls.dir, "tinyproxy.conf")
            with open(tconf, "w") as f:
                f.write("Port %d\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 20\n"
                        % tport)
            cls.start([TINYPROXY, "-d", "-c", tconf], tport, "tinyproxy")
            sconf = os.path.join(cls.dir, "stunnel.conf")
            with open(sconf, "w") as f:
                f.write("foreground = yes\npid =\n[https-proxy]\naccept = 127.0.0.1:%d\n"
                        "connect = 127.0.0.1:%d\ncert = %s/server.pem\nkey = %s/server.key\n"
                        % (sport, tport, cls.dir, cls.dir))
            cls.start([STUNNEL, sconf], sport, "stunnel")
            with open(ca) as f:
                ca_lines = f.read().strip().split("\n")
            outbounds.append({"type": "http", "tag": "https-proxy", "server": "127.0.0.1",
                              "server_port": sport,
                              "tls": {"enabled": True, "server_name": "proxy.test",
                                      "certificate": ca_lines}})
            route("https", "https-proxy")
        cfg = {"log": {"level": "debug"}, "inbounds": inbounds, "outbounds": outbounds,
               "route": {"rules": rules, "final": "direct"}}
        cls.veer = h.Veer(cfg, env={"SSL_CERT_FILE": ca})

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop() if cls.veer else 0
        for p in cls.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if hasattr(cls, "probe"):
            cls.probe.stop()
        if hasattr(cls, "echo"):
            cls.echo.stop()
            cls.udp.stop()
            cls.fallback.stop()
        assert rc == 0, "veer exited %s:\n%s" % (rc, cls.veer.logtext())

    def port(self, tag):
        return self.veer.ports["in-" + tag]

    def need(self, what, why):
        if not what:
            self.skipTest(why)

    def check_transfer(self, tag, size=4 * 1024 * 1024):
        code, sent, got = transfer(self.port(tag), self.echo.port, size)
        self.assertEqual(code, 0, self.veer.logtext()[-3000:])
        self.assertEqual(len(got), len(sent), self.veer.logtext()[-3000:])
        self.assertTrue(got == sent, "data corrupted through %s" % tag)

    def expect_failure(self, tag, pattern):
        start = len(self.veer.logtext())
        s, code = h.socks5_connect(self.port(tag), "127.0.0.1", self.echo.port, timeout=15)
        s.close()
        self.assertNotEqual(code, 0, tag)
        self.assertTrue(self.veer.wait_log(pattern, start=start), self.veer.logtext()[start:])

    def test_trojan_transfer_verified(self):
        self.need(TROJAN, "trojan not installed (apt-get install trojan)")
        self.check_transfer("trojan", 8 * 1024 * 1024)
        self.check_transfer("trojan-ip")  # no server_name: verified against the IP SAN

    def test_trojan_insecure(self):
        self.need(TROJAN, "trojan not installed (apt-get install trojan)")
        self.check_transfer("trojan-insecure")

    def test_trojan_wrong_ca_and_name(self):
        self.need(TROJAN, "trojan not installed (apt-get install trojan)")
        self.expect_failure("trojan-wrongca", r"trojan server 127\.0\.0\.1:\d+: .*tls: certificate")
        self.expect_failure("trojan-wrongname", r"trojan server 127\.0\.0\.1:\d+: .*tls: certificate")
        self.check_transfer("trojan")  # only those connections failed

    def test_trojan_wrong_password_goes_to_the_fallback(self):
        # A trojan server answers a wrong password by handing the connection to its fallback
        # (an HTTP server here): the client's bytes never reach the destination.
        self.need(TROJAN, "trojan not installed (apt-get install trojan)")
        s, code = h.socks5_connect(self.port("trojan-badpass"), "127.0.0.1", self.echo.port,
                                   timeout=10)
        self.assertEqual(code, 0)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.settimeout(10)
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        # The fallback (Python's http.server) answers the garbled request with its error page.
        self.assertTrue(data.startswith(b"HTTP/") or b"Error response" in data, data[:100])
        self.check_transfer("trojan")

    def test_trojan_udp(self):
        self.need(TROJAN, "trojan not installed (apt-get install trojan)")
        ctl, relay = h.socks5_udp_associate(self.port("trojan"))
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        hdr = h.socks5_udp_header("127.0.0.1", self.udp.port)
        for _ in range(5):
            big = os.urandom(1200)
            u.sendto(hdr + big, relay)
            data, _ = u.recvfrom(65535)
            self.assertEqual(data[:10], hdr)
            self.assertEqual(data[10:], b"echo:" + big)
        u.close()
        ctl.close()

    def test_urltest_https_probe(self):
        self.need(TROJAN, "trojan not installed (apt-get install trojan)")
        self.assertTrue(self.veer.wait_log(r"urltest auto: selected trojan\b", timeout=8),
                        self.veer.logtext()[-3000:])
        self.check_transfer("auto")

    def test_https_proxy(self):
        self.need(STUNNEL and TINYPROXY, "stunnel4 or tinyproxy not installed")
        self.check_transfer("https")


if __name__ == "__main__":
    unittest.main(verbosity=2)
