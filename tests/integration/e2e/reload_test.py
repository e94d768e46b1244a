"""Signals: SIGHUP reloads a good config and keeps the running one when the new config is bad;
SIGTERM closes the listeners and every open connection and exits 0."""
import json
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.http = h.HttpServer()

    def tearDown(self):
        self.http.stop()

    def fetch(self, port, host):
        s, code = h.socks5_connect(port, host, self.http.port)
        if code == 0:
            status, _, _ = h.http_get_raw(s, "%s:%d" % (host, self.http.port), "/", absolute=False)
            s.close()
            return status
        s.close()
        return "socks-%d" % code

    def test_sighup_good_then_bad(self):
        port = free_port()
        v = h.Veer(h.base_config(port=port))
        try:
            self.assertEqual(self.fetch(port, "localhost"), 200)
            # A tunnel opened before the reload keeps working after it.
            echo = h.EchoTcp()
            tunnel, code = h.socks5_connect(port, "127.0.0.1", echo.port)
            self.assertEqual(code, 0)

            # Good reload: localhost is now rejected.
            mark = len(v.logtext())
            v.write_config(h.base_config(port=port, extra_rules=[
                {"domain": ["localhost"], "action": "reject"}]))
            v.proc.send_signal(signal.SIGHUP)
            self.assertTrue(v.wait_log(r"reloaded", start=mark), v.logtext())
            self.assertEqual(self.fetch(port, "localhost"), "socks-2")

            # Bad reload (a typo): the running config stays, veer keeps serving.
            mark = len(v.logtext())
            bad = json.dumps(h.base_config(port=port)).replace('"final"', '"finall"')
            v.write_config(bad)
            v.proc.send_signal(signal.SIGHUP)
            self.assertTrue(v.wait_log(r"reload failed", start=mark), v.logtext())
            self.assertIn('unknown field "finall"', v.logtext()[mark:])
            self.assertIsNone(v.proc.poll())
            self.assertEqual(self.fetch(port, "localhost"), "socks-2")

            tunnel.sendall(b"across reloads")
            self.assertEqual(h.recv_exact(tunnel, 14), b"across reloads")

            # SIGUSR1 lists the live connections with their metadata and byte counts.
            mark = len(v.logtext())
            v.proc.send_signal(signal.SIGUSR1)
            self.assertTrue(v.wait_log(r"connections: \d+ TCP", start=mark), v.logtext())
            listing = v.logtext()[mark:]
            self.assertRegex(listing, r"-> 127\.0\.0\.1:%d .*outbound=direct up=14 down=14"
                             % echo.port)
            self.assertIn("counters: tcp=", listing)

            # SIGTERM with the tunnel still open: the tunnel is closed, exit status 0.
            v.proc.send_signal(signal.SIGTERM)
            v.proc.wait(timeout=10)
            self.assertEqual(v.proc.returncode, 0)
            tunnel.settimeout(5)
            try:
                rest = tunnel.recv(100)
            except ConnectionResetError:
                rest = b""
            self.assertEqual(rest, b"")
            tunnel.close()
            echo.stop()
            # The listener is gone.
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2)
        finally:
            v.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
