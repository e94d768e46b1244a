"""Route options tls_record_fragment and tls_fragment: a real ClientHello (made by Python's ssl
module) sent through veer's mixed inbound arrives at a local server cut inside the server
name: as several TLS records whose payloads join back to the original, or as the original bytes
written in several TCP segments."""
import os
import socket
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

SNI = "www.fragment-test.example.com"


def client_hello():
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=SNI)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class Capture:
    """Accepts connections; records every recv() of each as a list of chunks until EOF."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            chunks = []
            with self.lock:
                self.conns.append(chunks)
            threading.Thread(target=self._serve, args=(c, chunks), daemon=True).start()

    def _serve(self, c, chunks):
        c.settimeout(10)
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                chunks.append(d)

    def stop(self):
        self.srv.close()


def records(data):
    out = []
    off = 0
    while off + 5 <= len(data):
        n = int.from_bytes(data[off + 3:off + 5], "big")
        out.append((data[off], data[off + 1:off + 3], data[off + 5:off + 5 + n]))
        off += 5 + n
    return out, data[off:]


class TlsFragmentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cap = Capture()
        inbounds, rules = [], [{"action": "sniff"}]
        for tag, opt in (("rec", {"tls_record_fragment": True}),
                         ("seg", {"tls_fragment": True, "tls_fragment_fallback_delay": "100ms"}),
                         ("plain", None)):
            inbounds.append({"type": "mixed", "tag": "in-" + tag, "listen": "127.0.0.1",
                             "listen_port": 0})
            if opt:
                rules.append(dict({"inbound": ["in-" + tag], "action": "route-options"}, **opt))
        cfg = {"log": {"level": "debug"}, "inbounds": inbounds,
               "outbounds": [{"type": "direct", "tag": "direct"}],
               "route": {"rules": rules, "final": "direct"}}
        cls.veer = h.Veer(cfg)

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop()
        cls.cap.stop()
        assert rc == 0, cls.veer.logtext()

    def send_hello(self, tag):
        hello = client_hello()
        before = len(self.cap.conns)
        s, code = h.socks5_connect(self.veer.ports["in-" + tag], "127.0.0.1", self.cap.port)
        self.assertEqual(code, 0)
        s.sendall(hello)
        time.sleep(0.5)
        s.close()
        deadline = time.time() + 5
        while time.time() < deadline and len(self.cap.conns) <= before:
            time.sleep(0.02)
        chunks = self.cap.conns[before]
        deadline = time.time() + 5
        while time.time() < deadline and len(b"".join(chunks)) < len(hello):
            time.sleep(0.02)
        return hello, chunks

    def test_record_fragment(self):
        hello, chunks = self.send_hello("rec")
        got = b"".join(chunks)
        orig, rest = records(hello)
        self.assertEqual(len(orig), 1)
        self.assertEqual(rest, b"")
        recs, tail = records(got)
        self.assertEqual(tail, b"")
        # www, fragment-test and example are cut; the last label is not: four records.
        self.assertEqual(len(recs), 4, self.veer.logtext()[-2000:])
        for ctype, ver, _ in recs:
            self.assertEqual(ctype, 0x16)
            self.assertEqual(ver, orig[0][1])
        self.assertEqual(b"".join(p for _, _, p in recs), orig[0][2])
        # No single record holds the whole name.
        for _, _, p in recs:
            self.assertNotIn(SNI.encode(), p)

    def test_tcp_fragment(self):
        start = len(self.veer.logtext())
        hello, chunks = self.send_hello("seg")
        self.assertEqual(b"".join(chunks), hello)  # the bytes are untouched
        self.assertTrue(self.veer.wait_log(r"ClientHello sent in 4 TCP segments", start=start),
                        self.veer.logtext()[start:])

    def test_without_options_the_hello_is_unchanged(self):
        hello, chunks = self.send_hello("plain")
        self.assertEqual(b"".join(chunks), hello)


if __name__ == "__main__":
    unittest.main(verbosity=2)
