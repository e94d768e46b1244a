"""The control API (experimental.clash_api): groups listed, a selector switched at run time
while connections run through it, interrupt_exist_connections closing the old ones, the
connection list and closing, and the secret."""
import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.request
import urllib.error

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

SECRET = "s3cret"


def api(port, method, path, body=None, secret=SECRET):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if secret:
        req.add_header("Authorization", "Bearer " + secret)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            data = r.read()
            return r.status, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        data = e.read()
        return e.code, json.loads(data) if data else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def echo_once(port, echo_port, size=256 * 1024):
    s, code = h.socks5_connect(port, "127.0.0.1", echo_port, timeout=5)
    if code != 0:
        s.close()
        return code
    payload = os.urandom(size)
    got = bytearray()

    def reader():
        while len(got) < size:
            d = s.recv(65536)
            if not d:
                break
            got.extend(d)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(payload)
    t.join(10)
    s.close()
    return 0 if bytes(got) == payload else -1


class ControlApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.echo = h.EchoTcp()
        cls.api_port = free_port()
        cfg = {
            "log": {"level": "debug"},
            "inbounds": [{"type": "mixed", "tag": "in-sel", "listen": "127.0.0.1", "listen_port": 0},
                         {"type": "mixed", "tag": "in-keep", "listen": "127.0.0.1",
                          "listen_port": 0}],
            "outbounds": [
                {"type": "direct", "tag": "direct"},
                {"type": "direct", "tag": "direct-b"},
                {"type": "block", "tag": "blk"},
                {"type": "selector", "tag": "sel", "outbounds": ["direct", "direct-b", "blk"],
                 "default": "direct", "interrupt_exist_connections": True},
                {"type": "selector", "tag": "keep", "outbounds": ["direct", "blk"]},
            ],
            "route": {"rules": [{"inbound": ["in-sel"], "outbound": "sel"},
                                {"inbound": ["in-keep"], "outbound": "keep"}],
                      "final": "direct"},
            "experimental": {"clash_api": {"external_controller": "127.0.0.1:%d" % cls.api_port,
                                           "secret": SECRET}},
        }
        cls.veer = h.Veer(cfg)
        assert cls.veer.wait_log(r"control API on 127\.0\.0\.1:%d" % cls.api_port), \
            cls.veer.logtext()

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop()
        cls.echo.stop()
        assert rc == 0, cls.veer.logtext()

    def setUp(self):
        api(self.api_port, "PUT", "/proxies/sel", {"name": "direct"})
        api(self.api_port, "PUT", "/proxies/keep", {"name": "direct"})

    def test_secret_required(self):
        self.assertEqual(api(self.api_port, "GET", "/proxies", secret=None)[0], 401)
        self.assertEqual(api(self.api_port, "GET", "/proxies", secret="wrong")[0], 401)
        self.assertEqual(api(self.api_port, "GET", "/version")[0], 200)

    def test_proxies_listed(self):
        code, body = api(self.api_port, "GET", "/proxies")
        self.assertEqual(code, 200)
        sel = body["proxies"]["sel"]
        self.assertEqual(sel["type"], "Selector")
        self.assertEqual(sel["now"], "direct")
        self.assertEqual(sel["all"], ["direct", "direct-b", "blk"])
        self.assertEqual(body["proxies"]["blk"]["type"], "Reject")
        self.assertEqual(api(self.api_port, "GET", "/proxies/nope")[0], 404)

    def test_bad_switches_are_refused(self):
        self.assertEqual(api(self.api_port, "PUT", "/proxies/sel", {"name": "nope"})[0], 400)
        self.assertEqual(api(self.api_port, "PUT", "/proxies/direct", {"name": "x"})[0], 400)
        self.assertEqual(api(self.api_port, "PUT", "/proxies/sel", {"nam": "x"})[0], 400)
        self.assertEqual(api(self.api_port, "GET", "/proxies/sel")[1]["now"], "direct")

    def test_switch_under_load(self):
        port = self.veer.ports["in-keep"]
        results = []
        stop = time.time() + 3
        errors = []

        def load():
            while time.time() < stop:
                try:
                    results.append((time.time(), echo_once(port, self.echo.port)))
                except OSError as e:
                    errors.append(e)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1)
        t_block = time.time()
        self.assertEqual(api(self.api_port, "PUT", "/proxies/keep", {"name": "blk"})[0], 204)
        time.sleep(1)
        t_back = time.time()
        self.assertEqual(api(self.api_port, "PUT", "/proxies/keep", {"name": "direct"})[0], 204)
        for t in threads:
            t.join(20)
        # Every transfer either went through intact or was refused at connect: none corrupted.
        self.assertNotIn(-1, [r for _, r in results])
        before = [r for ts, r in results if ts < t_block - 0.2]
        during = [r for ts, r in results if t_block + 0.2 < ts < t_back - 0.2]
        after = [r for ts, r in results if ts > t_back + 0.2]
        self.assertTrue(before and all(r == 0 for r in before), results)
        self.assertTrue(during and all(r != 0 for r in during), results)
        self.assertTrue(after and all(r == 0 for r in after), results)

    def read_until_closed(self, s):
        s.settimeout(5)
        data = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return data, True
                data += d
        except socket.timeout:
            return data, False
        except OSError:
            return data, True

    def test_interrupt_existing_connections(self):
        # "sel" has interrupt_exist_connections: switching closes what runs through it.
        s, code = h.socks5_connect(self.veer.ports["in-sel"], "127.0.0.1", self.echo.port)
        self.assertEqual(code, 0)
        s.sendall(b"ping")
        self.assertEqual(h.recv_exact(s, 4), b"ping")
        start = len(self.veer.logtext())
        self.assertEqual(api(self.api_port, "PUT", "/proxies/sel", {"name": "direct-b"})[0], 204)
        _, closed = self.read_until_closed(s)
        s.close()
        self.assertTrue(closed, "the connection through sel stayed open after the switch")
        self.assertTrue(self.veer.wait_log(r"closed 1 connection\(s\) of sel", start=start),
                        self.veer.logtext()[start:])
        # "keep" does not interrupt: its connection lives on across a switch.
        k, code = h.socks5_connect(self.veer.ports["in-keep"], "127.0.0.1", self.echo.port)
        self.assertEqual(code, 0)
        self.assertEqual(api(self.api_port, "PUT", "/proxies/keep", {"name": "blk"})[0], 204)
        k.sendall(b"still")
        self.assertEqual(h.recv_exact(k, 5), b"still")
        k.close()

    def test_connections_listed_and_closed(self):
        port = self.veer.ports["in-sel"]
        s, code = h.socks5_connect(port, "127.0.0.1", self.echo.port)
        self.assertEqual(code, 0)
        s.sendall(b"x" * 1000)
        time.sleep(0.3)
        code, body = api(self.api_port, "GET", "/connections")
        self.assertEqual(code, 200)
        mine = [c for c in body["connections"]
                if c["metadata"]["destinationPort"] == str(self.echo.port)
                and c["chains"] == ["sel"]]
        self.assertEqual(len(mine), 1, body)
        self.assertGreaterEqual(mine[0]["upload"], 1000)
        self.assertEqual(api(self.api_port, "DELETE", "/connections/" + mine[0]["id"])[0], 204)
        _, closed = self.read_until_closed(s)
        s.close()
        self.assertTrue(closed, "DELETE /connections/{id} left the connection open")
        self.assertEqual(api(self.api_port, "DELETE", "/connections/999999")[0], 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
