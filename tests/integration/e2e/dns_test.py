"""veer's DNS end to end, against a real dnsmasq on loopback: hijack-dns answers client queries
over UDP and TCP, the direct outbound resolves names through the `dns` section, and a FakeIP
handed to a client routes back to its domain."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None)


def free_udp_port():
    """A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        p = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


def query(name, qid=0x4242, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def answers(msg):
    """(id, rcode, [IPv4 strings]) from a DNS response."""
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
            ips.append(socket.inet_ntoa(msg[pos:pos + 4]))
        pos += rdlen
    return qid, flags & 0xF, ips


@unittest.skipIf(DNSMASQ is None, "dnsmasq not installed (Debian package dnsmasq-base)")
class DnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = h.HttpServer()
        cls.dns_port = free_udp_port()
        cls.tmp = tempfile.mkdtemp(prefix="veer-dns-")
        cls.dnsmasq = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--port=%d" % cls.dns_port, "--listen-address=127.0.0.1", "--bind-interfaces",
             "--pid-file=" + os.path.join(cls.tmp, "pid"), "--address=/web.test/127.0.0.1",
             "--address=/fake.test/127.0.0.1", "--log-facility=" + os.path.join(cls.tmp, "log")],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(cls.tmp, "stderr"), "w"))
        cls.wait_dnsmasq()
        cfg = h.base_config()
        cfg["dns"] = {
            "servers": [
                {"type": "udp", "tag": "up", "server": "127.0.0.1", "server_port": cls.dns_port},
                {"type": "fakeip", "tag": "fake", "inet4_range": "198.18.0.0/15"},
            ],
            "rules": [{"inbound": ["dns-in"], "domain_suffix": ["fake.test"], "server": "fake"}],
            "final": "up",
        }
        cfg["inbounds"].append({"type": "direct", "tag": "dns-in", "listen": "127.0.0.1",
                                "listen_port": 0})
        cfg["route"]["rules"].insert(0, {"inbound": ["dns-in"], "action": "hijack-dns"})
        # sing-box's older form: a `dns` outbound that routed DNS goes to.
        cfg["outbounds"].append({"type": "dns", "tag": "dns-out"})
        cfg["inbounds"].append({"type": "direct", "tag": "dns-out-in", "listen": "127.0.0.1",
                                "listen_port": 0})
        cfg["route"]["rules"].insert(0, {"inbound": ["dns-out-in"], "outbound": "dns-out"})
        try:
            cls.veer = h.Veer(cfg)
        except Exception:
            # setUpClass failing skips tearDownClass: stop what was started here.
            cls.dnsmasq.terminate()
            cls.dnsmasq.wait(timeout=5)
            cls.http.stop()
            raise
        cls.port = cls.veer.ports["mixed-in"]
        cls.dns_in = cls.veer.ports["dns-in"]

    @classmethod
    def wait_dnsmasq(cls):
        """Until dnsmasq answers a query itself (bounded: 10 s, then the test fails)."""
        deadline = time.time() + 10
        while time.time() < deadline:
            if cls.dnsmasq.poll() is not None:
                text = ""
                for name in ("stderr", "log"):
                    try:
                        with open(os.path.join(cls.tmp, name)) as f:
                            text += f.read()
                    except OSError:
                        pass
                raise RuntimeError("dnsmasq exited with %d: %s" % (cls.dnsmasq.returncode, text))
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(0.2)
            try:
                u.sendto(query("web.test", 7), ("127.0.0.1", cls.dns_port))
                u.recvfrom(4096)
                return
            except OSError:
                pass
            finally:
                u.close()
        cls.dnsmasq.kill()
        raise RuntimeError("dnsmasq did not answer on port %d" % cls.dns_port)

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop()
        cls.dnsmasq.terminate()
        cls.dnsmasq.wait(timeout=5)
        cls.http.stop()
        assert rc == 0, cls.veer.logtext()

    def udp_ask(self, name, qid, port=None):
        port = port or self.dns_in
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        u.sendto(query(name, qid), ("127.0.0.1", port))
        data, src = u.recvfrom(4096)
        u.close()
        self.assertEqual(src, ("127.0.0.1", port))  # answered from where it was asked
        return answers(data)

    def test_dns_outbound_answers_like_hijack(self):
        port = self.veer.ports["dns-out-in"]
        self.assertEqual(self.udp_ask("web.test", 0x5151, port), (0x5151, 0, ["127.0.0.1"]))
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        q = query("web.test", 0x5252)
        s.sendall(struct.pack(">H", len(q)) + q)
        n = struct.unpack(">H", h.recv_exact(s, 2))[0]
        self.assertEqual(answers(h.recv_exact(s, n)), (0x5252, 0, ["127.0.0.1"]))
        s.close()

    def test_hijack_udp(self):
        qid, rcode, ips = self.udp_ask("web.test", 0x1111)
        self.assertEqual((qid, rcode, ips), (0x1111, 0, ["127.0.0.1"]))

    def test_hijack_tcp_two_queries_on_one_connection(self):
        s = socket.create_connection(("127.0.0.1", self.dns_in), timeout=5)
        for qid in (0x2222, 0x3333):
            q = query("web.test", qid)
            s.sendall(struct.pack(">H", len(q)) + q)
            n = struct.unpack(">H", h.recv_exact(s, 2))[0]
            got = answers(h.recv_exact(s, n))
            self.assertEqual(got, (qid, 0, ["127.0.0.1"]))
        s.close()

    def test_nxdomain_passes_through(self):
        _, rcode, ips = self.udp_ask("nothing.invalid", 0x4444)
        self.assertIn(rcode, (3, 5))  # NXDOMAIN (or REFUSED, per dnsmasq's --no-resolv)
        self.assertEqual(ips, [])

    def test_direct_outbound_resolves_through_dns_section(self):
        # web.test exists only in dnsmasq: the system resolver could not find it.
        s, code = h.socks5_connect(self.port, "web.test", self.http.port)
        self.assertEqual(code, 0)
        status, _, body = h.http_get_raw(s, "web.test:%d" % self.http.port, "/r", absolute=False)
        s.close()
        self.assertEqual(status, 200)

    def test_fakeip_routes_back_to_its_domain(self):
        _, rcode, ips = self.udp_ask("www.fake.test", 0x5555)
        self.assertEqual(rcode, 0)
        self.assertEqual(len(ips), 1)
        a, b = (int(x) for x in ips[0].split(".")[:2])
        self.assertTrue(a == 198 and b in (18, 19), ips)  # from the FakeIP range
        # Connecting to the FakeIP reaches the real server behind the domain.
        s, code = h.socks5_connect(self.port, ips[0], self.http.port)
        self.assertEqual(code, 0)
        status, _, body = h.http_get_raw(s, "www.fake.test:%d" % self.http.port, "/f",
                                         absolute=False)
        s.close()
        self.assertEqual(status, 200)
        self.assertTrue(self.veer.wait_log(r"-> www\.fake\.test:%d" % self.http.port),
                        self.veer.logtext())


if __name__ == "__main__":
    unittest.main(verbosity=2)
