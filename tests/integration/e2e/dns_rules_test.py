"""DNS rules through the rule engine and FakeIP persistence, end to end with the real veer binary
and two dnsmasq instances on loopback:

- dns.rules use the route's rule sets (a local .json source and a .veer DSL file): one domain
  goes to dnsmasq B, the rest to dnsmasq A; the same rule set also serves a route rule;
- experimental.cache_file keeps the FakeIP table: a fake address handed out before a restart is
  the same after it, and a connection to it routes by its domain before anyone asks again;
- SIGHUP keeps the FakeIP mappings (same ranges).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
from dns_test import DNSMASQ, answers, free_udp_port, query  # noqa: E402


class Dnsmasq:
    """A dnsmasq child answering every name under .test with one address (only this PID is
    ever signalled)."""

    def __init__(self, address):
        self.port = free_udp_port()
        self.tmp = tempfile.mkdtemp(prefix="veer-dnsmasq-")
        self.err = open(os.path.join(self.tmp, "stderr"), "w")
        self.proc = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--port=%d" % self.port, "--listen-address=127.0.0.1", "--bind-interfaces",
             "--pid-file=" + os.path.join(self.tmp, "pid"), "--address=/test/" + address,
             "--log-facility=" + os.path.join(self.tmp, "log")],
            stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited %d" % self.proc.returncode)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(0.2)
            try:
                u.sendto(query("probe.test", 7), ("127.0.0.1", self.port))
                u.recvfrom(4096)
                return
            except OSError:
                pass
            finally:
                u.close()
        self.stop()
        raise RuntimeError("dnsmasq did not answer on port %d" % self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def ask(port, name, qid=0x1234):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    try:
        u.sendto(query(name, qid), ("127.0.0.1", port))
        data, _ = u.recvfrom(4096)
    finally:
        u.close()
    return answers(data)


def with_dns_inbound(cfg):
    cfg["inbounds"].append({"type": "direct", "tag": "dns-in", "listen": "127.0.0.1",
                            "listen_port": 0})
    cfg["route"]["rules"].insert(0, {"inbound": ["dns-in"], "action": "hijack-dns"})
    return cfg


@unittest.skipIf(DNSMASQ is None, "dnsmasq not installed (Debian package dnsmasq-base)")
class DnsRulesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.started = []
        try:
            cls.a = Dnsmasq("127.0.0.1")
            cls.started.append(cls.a)
            cls.b = Dnsmasq("127.0.0.2")
            cls.started.append(cls.b)
        except Exception:
            for s in cls.started:
                s.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        for s in cls.started:
            s.stop()

    def servers(self):
        return [{"type": "udp", "tag": "a", "server": "127.0.0.1", "server_port": self.a.port},
                {"type": "udp", "tag": "b", "server": "127.0.0.1", "server_port": self.b.port}]

    def test_rule_sets_pick_the_server(self):
        cfg = with_dns_inbound(h.base_config())
        cfg["route"]["rule_set"] = [
            {"tag": "special", "type": "local", "path": "special.json"},
            {"tag": "kw", "type": "local", "path": "kw.veer"},
        ]
        # The same rule set in a route rule: loaded once, used by both rule lists.
        cfg["route"]["rules"].append({"rule_set": "special", "domain": "never.test",
                                      "outbound": "block"})
        cfg["dns"] = {
            "servers": self.servers(),
            "rules": [
                {"rule_set": ["special", "kw"], "server": "b"},
                {"type": "logical", "mode": "and", "invert": True,
                 "rules": [{"domain_suffix": "plain.test"}], "action": "route", "server": "a",
                 "rewrite_ttl": 5},
            ],
            "final": "b",
        }
        files = {
            "special.json": json.dumps({"version": 1, "rules": [{"domain_suffix": "special.test"}]}),
            "kw.veer": "# DSL rule set\ndomain_keyword:magic\n",
        }
        v = h.Veer(cfg, extra_files=files)
        try:
            port = v.ports["dns-in"]
            self.assertEqual(ask(port, "special.test")[2], ["127.0.0.2"])
            self.assertEqual(ask(port, "www.special.test")[2], ["127.0.0.2"])
            self.assertEqual(ask(port, "a-magic-name.test")[2], ["127.0.0.2"])
            self.assertEqual(ask(port, "other.test")[2], ["127.0.0.1"])
            self.assertEqual(ask(port, "notspecial.test")[2], ["127.0.0.1"])
            # plain.test falls through the inverted rule to final (b).
            self.assertEqual(ask(port, "www.plain.test")[2], ["127.0.0.2"])
            self.assertTrue(v.wait_log(r"matched rule 0: .*rule_set=\[special kw\]"), v.logtext())
        finally:
            self.assertEqual(v.stop(), 0, v.logtext())

    def test_check_reports_unknown_dns_server_with_caret(self):
        cfg = h.base_config()
        cfg["dns"] = {"servers": self.servers(),
                      "rules": [{"domain": "x.test", "server": "nope"}], "final": "a"}
        d = tempfile.mkdtemp(prefix="veer-check-")
        try:
            path = os.path.join(d, "config.json")
            with open(path, "w") as f:
                json.dump(cfg, f, indent=2)
            r = subprocess.run([h.VEER, "check", "-c", path], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertRegex(r.stdout, r'config\.json:\d+:\d+: unknown DNS server "nope" at '
                                       r'dns\.rules\[0\]\.server')
            self.assertIn('"server": "nope"', r.stdout)
            self.assertIn("^", r.stdout)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def fakeip_config(self, cache):
        cfg = with_dns_inbound(h.base_config())
        cfg["dns"] = {
            "servers": self.servers() + [
                {"type": "fakeip", "tag": "fake", "inet4_range": "198.18.0.0/15"}],
            "rules": [{"inbound": "dns-in", "domain_suffix": "fake.test", "server": "fake"}],
            "final": "a",
        }
        cfg["experimental"] = {"cache_file": {"enabled": True, "path": cache,
                                              "store_fakeip": True}}
        return cfg

    def fetch_via(self, v, ip, host):
        s, code = h.socks5_connect(v.ports["mixed-in"], ip, self.http.port)
        self.assertEqual(code, 0, v.logtext())
        status, _, _ = h.http_get_raw(s, "%s:%d" % (host, self.http.port), "/p", absolute=False)
        s.close()
        self.assertEqual(status, 200)

    def test_fakeip_survives_restart_and_reload(self):
        self.http = h.HttpServer()
        d = tempfile.mkdtemp(prefix="veer-fakeip-")
        cache = os.path.join(d, "cache.db")
        cfg = self.fakeip_config(cache)
        try:
            v = h.Veer(cfg)
            try:
                _, rcode, ips = ask(v.ports["dns-in"], "www.fake.test")
                self.assertEqual(rcode, 0)
                fake = ips[0]
                self.assertTrue(fake.startswith("198.18.") or fake.startswith("198.19."), fake)
                _, _, other = ask(v.ports["dns-in"], "api.fake.test")
            finally:
                self.assertEqual(v.stop(), 0, v.logtext())
            self.assertTrue(os.path.exists(cache), "no cache file written at shutdown")
            with open(cache, "rb") as f:
                self.assertEqual(f.read(8), b"VEERCACH")

            v = h.Veer(cfg)
            try:
                self.assertIn("FakeIP mapping(s) loaded from " + cache, v.logtext())
                # Before anyone asks again: the fake address routes to its domain (dnsmasq A
                # resolves www.fake.test to 127.0.0.1, where the HTTP server listens).
                self.fetch_via(v, fake, "www.fake.test")
                self.assertTrue(v.wait_log(r"-> www\.fake\.test:%d" % self.http.port),
                                v.logtext())
                self.assertEqual(ask(v.ports["dns-in"], "www.fake.test")[2], [fake])
                self.assertEqual(ask(v.ports["dns-in"], "api.fake.test")[2], other)

                # Reload with a changed (still valid) config: the mappings stay.
                mark = len(v.logtext())
                cfg2 = json.loads(json.dumps(cfg))
                cfg2["route"]["rules"].append({"domain": "unused.test", "outbound": "block"})
                v.write_config(cfg2)
                v.proc.send_signal(signal.SIGHUP)
                self.assertTrue(v.wait_log(r"reloaded", start=mark), v.logtext())
                self.assertIn("kept 1 FakeIP table(s) across the reload", v.logtext()[mark:])
                # Listeners on port 0 get new ports on reload.
                v.ports = {m.group(1): int(m.group(2)) for m in re.finditer(
                    r"inbound/\w+\[([^\]]+)\]: listening on [^ \n]*:(\d+)", v.logtext()[mark:])}
                self.fetch_via(v, fake, "www.fake.test")
                self.assertEqual(ask(v.ports["dns-in"], "www.fake.test")[2], [fake])
                _, _, new = ask(v.ports["dns-in"], "new.fake.test")
                self.assertNotIn(new[0], (fake, other[0]))
            finally:
                self.assertEqual(v.stop(), 0, v.logtext())

            # A damaged file: a warning naming it and the offset, an empty table, veer runs.
            with open(cache, "r+b") as f:
                f.seek(30)
                b = f.read(1)
                f.seek(30)
                f.write(bytes([b[0] ^ 0xFF]))
            v = h.Veer(cfg)
            try:
                self.assertRegex(v.logtext(), r"cache file %s: offset \d+: " % cache)
                self.assertEqual(ask(v.ports["dns-in"], "zzz.fake.test")[2], ["198.18.0.2"])
            finally:
                self.assertEqual(v.stop(), 0, v.logtext())
        finally:
            self.http.stop()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
