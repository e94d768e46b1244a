"""socks, http, selector and urltest outbounds against real servers on loopback:
veer mixed inbound -> outbound -> microsocks / dante (sockd) / tinyproxy -> local servers."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import harness as h  # noqa: E402

MICROSOCKS = shutil.which("microsocks")
TINYPROXY = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if os.path.exists("/usr/bin/tinyproxy") else None)
DANTED = shutil.which("danted") or ("/usr/sbin/danted" if os.path.exists("/usr/sbin/danted") else None)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Garbage:
    """Replies junk to whatever a client sends first."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                c.settimeout(2)
                c.recv(4096)
                c.sendall(b"\xde\xad\xbe\xef garbage \r\n" * 4)
                time.sleep(0.5)
            except OSError:
                pass
            c.close()

    def stop(self):
        self.running = False
        self.sock.close()


def transfer(port, dst_port, size=4 * 1024 * 1024):
    """SOCKS5 CONNECT through veer to the echo server; send `size` random bytes, read them back."""
    s, code = h.socks5_connect(port, "127.0.0.1", dst_port, timeout=20)
    if code != 0:
        s.close()
        return code, None, None
    payload = os.urandom(size)
    got = bytearray()

    def reader():
        # microsocks and tinyproxy close both directions on a half-close, so read the echo
        # back in full before closing.
        while len(got) < size:
            d = s.recv(1 << 20)
            if not d:
                break
            got.extend(d)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(payload)
    t.join(30)
    s.close()
    return 0, payload, bytes(got)


class ProxyOutboundTest(unittest.TestCase):
    procs = []

    @classmethod
    def start(cls, argv, port, name, **kw):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        cls.procs.append(p)
        if not wait_port(port, p):
            raise RuntimeError("%s did not start: %s" % (name, argv))
        return p

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="veer-ob-")
        cls.echo = h.EchoTcp()
        cls.http = h.HttpServer()
        cls.udp = h.UdpEcho()
        cls.garbage = Garbage()
        outbounds = [{"type": "direct", "tag": "direct"}]
        rules = []
        inbounds = []

        def route(tag, outbound):
            inbounds.append({"type": "mixed", "tag": "in-" + tag, "listen": "127.0.0.1",
                             "listen_port": 0})
            rules.append({"inbound": ["in-" + tag], "outbound": outbound})

        cls.ms = {}
        if MICROSOCKS:
            for name, extra in (("s1", []), ("s2", []), ("auth", ["-u", "alice", "-P", "secret"])):
                port = free_port()
                cls.ms[name] = cls.start([MICROSOCKS, "-i", "127.0.0.1", "-p", str(port)] + extra,
                                         port, "microsocks")
                cls.ms[name].port = port
            outbounds += [
                {"type": "socks", "tag": "socks", "server": "127.0.0.1",
                 "server_port": cls.ms["s1"].port, "routing_mark": 0, "connect_timeout": "3s"},
                {"type": "socks", "tag": "socks-auth", "server": "127.0.0.1",
                 "server_port": cls.ms["auth"].port, "username": "alice", "password": "secret"},
                {"type": "socks", "tag": "socks-badpass", "server": "127.0.0.1",
                 "server_port": cls.ms["auth"].port, "username": "alice", "password": "wrong"},
                {"type": "socks", "tag": "socks-s2", "server": "127.0.0.1",
                 "server_port": cls.ms["s2"].port},
                {"type": "urltest", "tag": "auto", "outbounds": ["socks", "socks-s2"],
                 "url": "http://127.0.0.1:%d/probe" % cls.http.port, "interval": "1s",
                 "tolerance": 10000},
            ]
            route("socks", "socks")
            route("socksauth", "socks-auth")
            route("socksbad", "socks-badpass")
            route("urltest", "auto")
        cls.tiny = None
        if TINYPROXY:
            port = free_port()
            conf = os.path.join(cls.dir, "tinyproxy.conf")
            with open(conf, "w") as f:
                f.write("Port %d\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\n"
                        "MaxClients 50\nBasicAuth bob hunter2\n" % port)
            cls.tiny = cls.start([TINYPROXY, "-d", "-c", conf], port, "tinyproxy")
            cls.tiny.port = port
            outbounds += [
                {"type": "http", "tag": "http", "server": "127.0.0.1", "server_port": port,
                 "username": "bob", "password": "hunter2", "headers": {"X-Veer": "1"}},
                {"type": "http", "tag": "http-badpass", "server": "127.0.0.1",
                 "server_port": port, "username": "bob", "password": "nope"},
            ]
            route("http", "http")
            route("httpbad", "http-badpass")
            if MICROSOCKS:
                # socks chained behind the http proxy (detour).
                outbounds.append({"type": "socks", "tag": "socks-via-http", "server": "127.0.0.1",
                                  "server_port": cls.ms["s1"].port, "detour": "http"})
                route("chain", "socks-via-http")
        cls.dante = None
        if DANTED:
            port = free_port()
            conf = os.path.join(cls.dir, "danted.conf")
            with open(conf, "w") as f:
                f.write("logoutput: %s/danted.log\ninternal: 127.0.0.1 port = %d\n"
                        "external: 127.0.0.1\nsocksmethod: none\nclientmethod: none\n"
                        "user.privileged: root\nuser.unprivileged: nobody\n"
                        "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
                        "socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 "
                        "command: connect udpassociate udpreply }\n" % (cls.dir, port))
            cls.dante = cls.start([DANTED, "-f", conf, "-N", "1", "-p",
                                   os.path.join(cls.dir, "danted.pid")], port, "danted")
            cls.dante.port = port
            outbounds.append({"type": "socks", "tag": "dante", "server": "127.0.0.1",
                              "server_port": port, "version": "5"})
            route("dante", "dante")
        outbounds += [
            {"type": "socks", "tag": "junk-socks", "server": "127.0.0.1",
             "server_port": cls.garbage.port},
            {"type": "http", "tag": "junk-http", "server": "127.0.0.1",
             "server_port": cls.garbage.port},
            {"type": "selector", "tag": "select", "outbounds": ["junk-socks", "direct"],
             "default": "direct", "interrupt_exist_connections": False},
        ]
        route("junksocks", "junk-socks")
        route("junkhttp", "junk-http")
        route("selector", "select")
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
        cls.http.stop()
        cls.udp.stop()
        cls.garbage.stop()
        assert rc == 0, "veer exited %s:\n%s" % (rc, cls.veer.logtext())

    def port(self, tag):
        return self.veer.ports["in-" + tag]

    def need(self, what, why):
        if not what:
            self.skipTest(why)

    def check_transfer(self, tag):
        code, sent, got = transfer(self.port(tag), self.echo.port)
        self.assertEqual(code, 0, self.veer.logtext()[-3000:])
        self.assertEqual(len(got), len(sent))
        self.assertTrue(got == sent, "data corrupted through %s" % tag)

    def test_socks5_transfer(self):
        self.need(MICROSOCKS, "microsocks not installed (apt-get install microsocks)")
        self.check_transfer("socks")

    def test_socks5_auth(self):
        self.need(MICROSOCKS, "microsocks not installed (apt-get install microsocks)")
        self.check_transfer("socksauth")
        start = len(self.veer.logtext())
        s, code = h.socks5_connect(self.port("socksbad"), "127.0.0.1", self.echo.port)
        s.close()
        self.assertNotEqual(code, 0)
        self.assertTrue(self.veer.wait_log(r"authentication failed", start=start),
                        self.veer.logtext()[start:])
        self.check_transfer("socksauth")  # only that connection failed

    def test_http_transfer_and_auth(self):
        self.need(TINYPROXY, "tinyproxy not installed (apt-get install tinyproxy)")
        self.check_transfer("http")
        start = len(self.veer.logtext())
        s, code = h.socks5_connect(self.port("httpbad"), "127.0.0.1", self.echo.port)
        s.close()
        self.assertNotEqual(code, 0)
        self.assertTrue(self.veer.wait_log(r"HTTP proxy refused CONNECT: \"HTTP/1\.[01] 40[17]",
                                           start=start), self.veer.logtext()[start:])
        self.check_transfer("http")

    def test_detour_chain(self):
        self.need(TINYPROXY and MICROSOCKS, "tinyproxy or microsocks not installed")
        self.check_transfer("chain")

    def test_garbage_server(self):
        for tag in ("junksocks", "junkhttp"):
            start = len(self.veer.logtext())
            s, code = h.socks5_connect(self.port(tag), "127.0.0.1", self.echo.port, timeout=15)
            s.close()
            self.assertNotEqual(code, 0, tag)
            self.assertTrue(self.veer.wait_log(r"bad (SOCKS5|HTTP proxy) (method )?re", start=start),
                            self.veer.logtext()[start:])
        # Others are unaffected.
        self.check_transfer("selector")

    def test_selector_default(self):
        # "select" has a junk server first, but its default is direct.
        self.check_transfer("selector")

    def test_dante_udp(self):
        self.need(DANTED, "dante-server not installed (apt-get install dante-server)")
        self.check_transfer("dante")
        ctl, relay = h.socks5_udp_associate(self.port("dante"))
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        hdr = h.socks5_udp_header("127.0.0.1", self.udp.port)
        for i in range(3):
            big = os.urandom(1200)
            u.sendto(hdr + big, relay)
            data, _ = u.recvfrom(65535)
            self.assertEqual(data[:10], hdr)
            self.assertEqual(data[10:], b"echo:" + big)
        u.close()
        ctl.close()

    def test_urltest_failover(self):
        self.need(MICROSOCKS, "microsocks not installed (apt-get install microsocks)")
        # The first round picks one of the two (tolerance is huge, so it stays put).
        self.check_transfer("urltest")
        self.assertTrue(self.veer.wait_log(r"urltest auto: selected|", timeout=5))
        # Kill the member currently in use (the first member is used until a round completes,
        # and the huge tolerance keeps it): socks -> microsocks s1.
        text = self.veer.logtext()
        import re
        m = re.findall(r"urltest auto: selected (\S+)", text)
        current = m[-1] if m else "socks"
        victim = self.ms["s1"] if current == "socks" else self.ms["s2"]
        other = "socks-s2" if current == "socks" else "socks"
        start = len(text)
        victim.terminate()
        victim.wait(5)
        self.assertTrue(self.veer.wait_log(r"urltest auto: selected %s" % other, timeout=6,
                                           start=start), self.veer.logtext()[start:])
        self.check_transfer("urltest")


if __name__ == "__main__":
    unittest.main(verbosity=2)
