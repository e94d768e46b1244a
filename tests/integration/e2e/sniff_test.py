"""Routing after sniffing: a TLS connection to an IP destination is routed by its SNI, an HTTP
request by its Host, a UDP flow by its protocol; the server receives exactly the bytes the
client sent (sniffed bytes are replayed, never lost or duplicated)."""
import os
import socket
import ssl
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


def client_hello(sni):
    """A real ClientHello from Python's TLS stack (OpenSSL), as the first flight bytes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
    assert data[0] == 0x16, "not a TLS record"
    return data


def dns_query(name):
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


class SniffTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.echo = h.EchoTcp()
        cls.udp = h.UdpEcho()
        cls.http = h.HttpServer()
        cfg = h.base_config()
        cfg["inbounds"].append({"type": "direct", "tag": "fwd", "listen": "127.0.0.1",
                                "listen_port": 0, "network": "tcp",
                                "override_address": "127.0.0.1",
                                "override_port": cls.http.port})
        cfg["inbounds"].append({"type": "direct", "tag": "legacy", "listen": "127.0.0.1",
                                "listen_port": 0, "network": "tcp",
                                "override_address": "127.0.0.1", "override_port": cls.echo.port,
                                "sniff": True, "sniff_override_destination": False})
        cfg["route"]["rules"] = [
            {"inbound": ["mixed-in", "fwd"], "action": "sniff", "timeout": "500ms"},
            {"domain_suffix": ["blocked.test"], "action": "reject"},
            {"protocol": ["dns"], "action": "reject"},
            {"domain": ["legacy.test"], "action": "reject"},
        ]
        cls.veer = h.Veer(cfg)
        cls.port = cls.veer.ports["mixed-in"]

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop()
        cls.echo.stop()
        cls.udp.stop()
        cls.http.stop()
        assert rc == 0, cls.veer.logtext()

    def tls_through(self, sni):
        s, code = h.socks5_connect(self.port, "127.0.0.1", self.echo.port)
        self.assertEqual(code, 0)  # the reply comes before sniffing: the client must speak first
        hello = client_hello(sni)
        s.sendall(hello)
        s.settimeout(5)
        got = b""
        try:
            while len(got) < len(hello):
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        return hello, got

    def test_tls_routed_by_sni_with_bytes_intact(self):
        hello, got = self.tls_through("www.allowed.test")
        self.assertEqual(got, hello)  # echoed back byte for byte: nothing lost or doubled
        self.assertTrue(self.veer.wait_log(r"\(www\.allowed\.test\) \[tls\]"), self.veer.logtext())

    def test_tls_rejected_by_sni(self):
        _, got = self.tls_through("cdn.blocked.test")
        self.assertEqual(got, b"")
        self.assertTrue(self.veer.wait_log(r"\(cdn\.blocked\.test\) \[tls\] rejected"),
                        self.veer.logtext())

    def test_http_host_sniffed_on_direct_inbound(self):
        s = socket.create_connection(("127.0.0.1", self.veer.ports["fwd"]), timeout=5)
        status, _, body = h.http_get_raw(s, "ok.test", "/s", absolute=False)
        s.close()
        self.assertEqual(status, 200)
        self.assertEqual(body, b"path=/s host=ok.test\n")
        s = socket.create_connection(("127.0.0.1", self.veer.ports["fwd"]), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: www.blocked.test\r\n\r\n")
        s.settimeout(5)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        s.close()
        self.assertEqual(data, b"")

    def test_legacy_inbound_sniff(self):
        s = socket.create_connection(("127.0.0.1", self.veer.ports["legacy"]), timeout=5)
        s.sendall(client_hello("legacy.test"))
        s.settimeout(5)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        s.close()
        self.assertEqual(data, b"")  # rejected by SNI, sniffed by the legacy inbound option
        self.assertIn('inbound "sniff" is deprecated', self.veer.logtext())

    def test_server_first_protocol_is_not_delayed_forever(self):
        # Nothing is sent by the client: after the sniff timeout the connection is routed.
        s, code = h.socks5_connect(self.port, "127.0.0.1", self.echo.port)
        self.assertEqual(code, 0)
        time.sleep(0.7)
        s.sendall(b"late hello")
        self.assertEqual(h.recv_exact(s, 10), b"late hello")
        s.close()

    def test_udp_sniffed_protocol(self):
        ctl, relay = h.socks5_udp_associate(self.port)
        hdr = h.socks5_udp_header("127.0.0.1", self.udp.port)
        # A DNS query is sniffed as dns and rejected: no reply.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(1.5)
        u.sendto(hdr + dns_query("example.test"), relay)
        with self.assertRaises(socket.timeout):
            u.recvfrom(65535)
        u.close()
        # Anything else (from another source) is relayed.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(5)
        u.sendto(hdr + b"not dns at all", relay)
        data, _ = u.recvfrom(65535)
        self.assertEqual(data[10:], b"echo:not dns at all")
        u.close()
        ctl.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
