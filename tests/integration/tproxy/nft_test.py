"""Transparent proxying through a real kernel firewall: examples/openwrt/veer.nft itself (fw4
style), loaded with veer-route.sh; client, router (running veer) and server in their own
network namespaces. TCP through the redirect and the tproxy inbounds, UDP through tproxy with
replies from the server's address, IPv4 and IPv6, the router's own traffic (the file's output
chain), the routing mark that keeps veer's own traffic from being captured again, DNS hijack
(the file's port-53 rule), and bad input (connections and datagrams that were not redirected,
a flood of UDP sources)."""
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns as n  # noqa: E402

# The router's firewall is examples/openwrt/veer.nft itself, loaded by veer-route.sh (as the
# OpenWrt init script does), with its `define` lines set for the test network:
#   LAN_IFACES   { "r0" }: the client's side of the router (br-lan on OpenWrt)
#   VEER_PORT, VEER_MARK, TPROXY_MARK: the test's (the same values as the file's defaults)
#   BYPASS_V4/6  the file's lists, but the test network lives in 198.18.0.0/15 and fd00::/8,
#                which the file bypasses: 198.18.0.0/15 becomes the client LAN 198.18.0.0/30 and
#                fc00::/7 the client LAN fd00:1::/64, so the server's prefixes count as public.
# Nothing else in the file is changed. The redirect inbound is not in veer.nft (it is TPROXY
# only; veer.json's redirect inbound is for firewalls without TPROXY): for the redirect tests a
# table of the test's own NATs TCP to port 8001 to it, and one rule inserted first in the
# file's prerouting chain keeps port 8001 out of TPROXY (as iptables_test does with iptables.sh).
EXAMPLE_NFT = os.path.join(n.SOURCE, "examples", "openwrt", "veer.nft")
ROUTE_SCRIPT = os.path.join(n.SOURCE, "examples", "openwrt", "veer-route.sh")


def example_ruleset():
    """The text of veer.nft with the test network's values in its `define` lines."""
    with open(EXAMPLE_NFT) as f:
        text = f.read()

    def define(name, fn):
        nonlocal text
        pat = re.compile(r"^(define %s = )(\{[^}]*\}|[^\s#]+)" % name, re.M)
        found = pat.findall(text)
        assert len(found) == 1, "veer.nft: expected one `define %s`, found %d" % (name, len(found))
        text = pat.sub(lambda m: m.group(1) + fn(m.group(2)), text)

    def swap(old, new):
        def fn(value):
            assert old in value, "veer.nft's bypass list no longer has %s: %s" % (old, value)
            return value.replace(old, new)
        return fn
    define("LAN_IFACES", lambda _: '{ "r0" }')
    define("VEER_PORT", lambda _: str(n.TPROXY_PORT))
    define("VEER_MARK", lambda _: "0x%x" % n.VEER_MARK)
    define("TPROXY_MARK", lambda _: "0x%x" % n.TPROXY_MARK)
    define("BYPASS_V4", swap("198.18.0.0/15", "198.18.0.0/30"))
    define("BYPASS_V6", swap("fc00::/7", "fd00:1::/64"))
    return text


REDIRECT_RULES = """
table inet veer_test_redirect
delete table inet veer_test_redirect
table inet veer_test_redirect {
  chain dstnat {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "r0" tcp dport 8001 redirect to :%d
  }
}
""" % n.REDIRECT_PORT


def load_firewall(net):
    """veer-route.sh start with NFT_FILE = the substituted veer.nft (ip rules + `nft -f`), then
    the redirect additions."""
    net.run(net.router, ["nft", "flush", "ruleset"], check=True)
    with tempfile.TemporaryDirectory(prefix="veer-nft-") as tmp:
        path = os.path.join(tmp, "veer.nft")
        with open(path, "w") as f:
            f.write(example_ruleset())
        r = net.run(net.router, ["env", "NFT_FILE=" + path, "TPROXY_MARK=0x%x" % n.TPROXY_MARK,
                                 "TPROXY_TABLE=100", "sh", ROUTE_SCRIPT, "start"])
    if r.returncode != 0:
        raise RuntimeError("veer-route.sh start with veer.nft failed: %s%s" % (r.stdout, r.stderr))
    net.run(net.router, ["nft", "insert", "rule", "inet", "veer", "prerouting", "tcp", "dport",
                         "8001", "return"], check=True)
    r = n.sh("ip", "netns", "exec", net.router, "nft", "-f", "-", input=REDIRECT_RULES,
             check=False)
    if r.returncode != 0:
        raise RuntimeError("nft rejected the redirect table: " + r.stderr)


NET = None


def setUpModule():
    global NET
    why = n.skip_reason()
    if why:
        raise unittest.SkipTest(why)
    NET = n.Net()
    load_firewall(NET)


def tearDownModule():
    if NET:
        NET.destroy()


class TransparentProxyTest(unittest.TestCase):
    """One veer (redirect + tproxy inbounds, outbound with routing_mark) for all these tests."""

    @classmethod
    def setUpClass(cls):
        cls.veer = n.Veer(NET, n.config())

    @classmethod
    def tearDownClass(cls):
        rc = cls.veer.stop()
        if rc != 0:
            print("veer exit status %s; log:\n%s" % (rc, cls.veer.logtext()[-4000:]),
                  file=sys.stderr)
        assert rc == 0, "veer did not shut down cleanly (%s)" % rc

    def tcp(self, host, port, msg="hello", timeout=3):
        return NET.peer("tcp", host, port, msg, "--timeout", timeout)

    def assertEcho(self, r, port, msg="hello"):
        self.assertTrue(r["ok"], "%s\nveer log tail:\n%s" % (r, self.veer.logtext()[-3000:]))
        # The server saw veer's outbound (the router's WAN address), not the client.
        self.assertRegex(r["reply"], r"^echo %d from (::ffff:)?(%s|%s): %s$" % (
            port, re.escape(n.ROUTER4_WAN), re.escape(n.ROUTER6_WAN), re.escape(msg)))

    # ---- TCP -----------------------------------------------------------------------------

    def test_tcp_redirect_v4(self):
        m = self.veer.mark()
        self.assertEcho(self.tcp(n.SERVER4, 8001, "redirect v4"), 8001, "redirect v4")
        self.assertTrue(self.veer.wait_log(r"redirect/redir-in\] tcp 198\.18\.0\.1:\d+ -> "
                                           r"198\.18\.1\.2:8001 matched final", start=m),
                        self.veer.logtext()[m:])

    def test_tcp_redirect_v6(self):
        m = self.veer.mark()
        self.assertEcho(self.tcp(n.SERVER6, 8001, "redirect v6"), 8001, "redirect v6")
        self.assertTrue(self.veer.wait_log(r"redirect/redir-in\] tcp \[fd00:1::1\]:\d+ -> "
                                           r"\[fd00:2::2\]:8001 matched", start=m))

    def test_tcp_tproxy_v4(self):
        m = self.veer.mark()
        self.assertEcho(self.tcp(n.SERVER4, 8002, "tproxy v4"), 8002, "tproxy v4")
        self.assertTrue(self.veer.wait_log(r"tproxy/tproxy-in\] tcp 198\.18\.0\.1:\d+ -> "
                                           r"198\.18\.1\.2:8002 matched", start=m))

    def test_tcp_tproxy_v6(self):
        m = self.veer.mark()
        self.assertEcho(self.tcp(n.SERVER6, 8003, "tproxy v6"), 8003, "tproxy v6")
        self.assertTrue(self.veer.wait_log(r"tproxy/tproxy-in\] tcp \[fd00:1::1\]:\d+ -> "
                                           r"\[fd00:2::2\]:8003 matched", start=m))

    # ---- UDP -----------------------------------------------------------------------------

    def udp_roundtrip(self, server, family_re):
        m = self.veer.mark()
        r = NET.peer("udp", server, 9000, "ping", "--count", 3)
        self.assertTrue(r["ok"], "%s\n%s" % (r, self.veer.logtext()[m:]))
        for i, rep in enumerate(r["replies"]):
            # The client sees the answer come from where it sent the datagram.
            self.assertEqual(rep["from"], server)
            self.assertEqual(rep["port"], 9000)
            self.assertEqual(rep["reply"], "echo 9000: ping #%d" % i)
        # Three datagrams, one NAT session.
        self.assertTrue(self.veer.wait_log(r"tproxy/tproxy-in\] udp %s:\d+ -> .*:9000 matched"
                                           % family_re, start=m))
        self.assertEqual(self.veer.count(r"tproxy/tproxy-in\] udp %s:\d+ -> .*matched" % family_re,
                                         start=m), 1)

    def test_udp_tproxy_v4(self):
        self.udp_roundtrip(n.SERVER4, r"198\.18\.0\.1")

    def test_udp_tproxy_v6(self):
        self.udp_roundtrip(n.SERVER6, r"\[fd00:1::1\]")

    def test_udp_reply_socket_shared_by_clients(self):
        # Eight clients (eight source ports, eight NAT sessions) talk to one server address:
        # replies leave through one transparent socket, not one per session (sing-box#1505).
        m = self.veer.mark()
        for i in range(8):
            r = NET.peer("udp", n.SERVER4, 9001, "client %d" % i)
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["replies"][0]["from"], n.SERVER4)
        self.assertEqual(self.veer.count(r"tproxy/tproxy-in\] udp 198\.18\.0\.1:\d+ -> "
                                         r"198\.18\.1\.2:9001 matched", start=m), 8)
        self.assertLessEqual(self.veer.count(r"reply socket for 198\.18\.1\.2:9001 opened"), 1)

    # ---- routing mark --------------------------------------------------------------------

    def test_routing_mark_lets_veer_traffic_out(self):
        # veer.nft's output chain sends the router's own TCP/UDP back into veer; veer's own
        # sockets (mark 0xff) are let out by its first rule. RoutingMarkLoopTest shows the same
        # file capturing veer's connections when they are not marked.
        listing = NET.run(NET.router, ["nft", "list", "chain", "inet", "veer", "output"],
                          check=True).stdout
        self.assertRegex(listing, r"meta mark 0x0*ff return")
        self.assertEcho(self.tcp(n.SERVER4, 8002, "marked"), 8002, "marked")
        r = NET.peer("udp", n.SERVER6, 9000, "marked")
        self.assertTrue(r["ok"], r)
        # None of veer's outbound traffic came back into veer (the loop breaker never fired).
        self.assertNotRegex(self.veer.logtext(), r"(198\.18\.1\.1|fd00:2::1\]):\d+ -> .*rejected",
                            "veer's own traffic was captured again")

    # ---- the router's own traffic (veer.nft's output chain, back in through lo) ------------

    def test_router_own_tcp(self):
        for bind, server, src_re in ((n.ROUTER4_LAN, n.SERVER4, r"198\.18\.0\.2"),
                                     (n.ROUTER6_LAN, n.SERVER6, r"\[fd00:1::2\]")):
            m = self.veer.mark()
            r = NET.peer("tcp", server, 8003, "own", "--bind", bind, ns=NET.router)
            self.assertEcho(r, 8003, "own")
            self.assertTrue(self.veer.wait_log(r"tproxy/tproxy-in\] tcp %s:\d+ -> [^ ]+:8003 matched"
                                               % src_re, start=m), self.veer.logtext()[m:])

    def test_router_own_udp(self):
        for bind, server, src_re in ((n.ROUTER4_LAN, n.SERVER4, r"198\.18\.0\.2"),
                                     (n.ROUTER6_LAN, n.SERVER6, r"\[fd00:1::2\]")):
            m = self.veer.mark()
            r = NET.peer("udp", server, 9001, "own", "--bind", bind, ns=NET.router)
            self.assertTrue(r["ok"], "%s\n%s" % (r, self.veer.logtext()[m:]))
            self.assertEqual(r["replies"][0]["from"], server)
            self.assertTrue(self.veer.wait_log(r"tproxy/tproxy-in\] udp %s:\d+ -> [^ ]+:9001 matched"
                                               % src_re, start=m), self.veer.logtext()[m:])

    # ---- DNS hijack ----------------------------------------------------------------------

    def dns_hijack(self, server, tcp):
        m = self.veer.mark()
        args = ["dns", server, "hijack.test", "--timeout", 1.5] + (["--tcp"] if tcp else [])
        r = NET.peer(*args)
        net = "tcp" if tcp else "udp"
        # The path from the client to the action: nft -> tproxy inbound -> the hijack-dns rule.
        self.assertTrue(self.veer.wait_log(r"tproxy/tproxy-in\] %s [^ ]+ -> [^ ]+:53 .*hijack-dns"
                                           % net, start=m, timeout=3),
                        "the DNS query did not reach the hijack-dns rule:\n" +
                        self.veer.logtext()[m:])
        self.assertTrue(r["ok"], "%s\n%s" % (r, self.veer.logtext()[m:]))
        self.assertEqual(r["answer"]["rcode"], 0, r)
        self.assertIn("198.18.99.99", r["answer"]["addrs"], r)
        self.assertEqual(r["from"], server)

    def test_dns_hijack_udp_v4(self):
        self.dns_hijack(n.NOBODY4, tcp=False)

    def test_dns_hijack_udp_v6(self):
        self.dns_hijack(n.NOBODY6, tcp=False)

    def test_dns_hijack_tcp_v4(self):
        self.dns_hijack(n.NOBODY4, tcp=True)

    def test_dns_hijack_tcp_v6(self):
        self.dns_hijack(n.NOBODY6, tcp=True)

    # ---- bad input -----------------------------------------------------------------------

    def test_redirect_without_original_destination(self):
        # Straight to the redirect port: no NAT, so conntrack's original destination is the
        # listener itself. veer closes that connection and keeps serving the others.
        m = self.veer.mark()
        for addr in (n.ROUTER4_LAN, n.ROUTER6_LAN):
            r = self.tcp(addr, n.REDIRECT_PORT, "not redirected", timeout=2)
            self.assertFalse(r["ok"], r)
        self.assertTrue(self.veer.wait_log(r"redirect\[redir-in\]: tcp 198\.18\.0\.1:\d+: "
                                           r"original destination", start=m), self.veer.logtext()[m:])
        self.assertTrue(self.veer.wait_log(r"redirect\[redir-in\]: tcp \[fd00:1::1\]:\d+: "
                                           r"original destination", start=m))
        self.assertEcho(self.tcp(n.SERVER4, 8001, "after"), 8001, "after")
        self.assertTrue(self.veer.alive())

    def test_tproxy_tcp_not_redirected(self):
        m = self.veer.mark()
        r = self.tcp(n.ROUTER4_LAN, n.TPROXY_PORT, "direct", timeout=2)
        self.assertFalse(r["ok"], r)
        self.assertTrue(self.veer.wait_log(r"tproxy\[tproxy-in\]: tcp 198\.18\.0\.1:\d+ -> "
                                           r"198\.18\.0\.2:%d was not sent by TPROXY" % n.TPROXY_PORT,
                                           start=m), self.veer.logtext()[m:])
        self.assertEcho(self.tcp(n.SERVER4, 8002, "after"), 8002, "after")

    def test_udp_without_original_destination(self):
        # A datagram sent straight to the tproxy port has no foreign original destination
        # (routing it would send it back to veer): dropped, counted, others unaffected.
        m = self.veer.mark()
        for addr in (n.ROUTER4_LAN, n.ROUTER6_LAN):
            r = NET.peer("udp", addr, n.TPROXY_PORT, "direct", "--timeout", 0.5)
            self.assertFalse(r["ok"], r)
        self.assertEqual(self.veer.count(r"udp from [^ ]+ to the listener itself.*dropped",
                                         start=m), 2, self.veer.logtext()[m:])
        self.assertEqual(self.veer.count(r"tproxy-in\] udp [^ ]+ -> [^ ]+:%d" % n.TPROXY_PORT,
                                         start=m), 0)
        r = NET.peer("udp", n.SERVER4, 9000, "after")
        self.assertTrue(r["ok"], r)

    def test_zz_udp_flood_evicts_oldest(self):
        # More client source ports than the router's NAT table holds (4096): the oldest
        # sessions are evicted (logged per session) and veer keeps serving everyone else.
        m = self.veer.mark()
        r = NET.peer("flood", n.SERVER4, 9000, 5200, timeout=60)
        self.assertTrue(r["ok"], r)
        self.assertTrue(self.veer.wait_log(r"evicted \(NAT table full\)", start=m, timeout=10),
                        self.veer.logtext()[-3000:])
        # Let the burst drain before counting.
        NET.peer("udp", n.SERVER4, 9000, "sync")
        evicted = self.veer.count(r"closed: evicted \(NAT table full\)", start=m)
        created = self.veer.count(r"tproxy-in\] udp [^ ]+ -> 198\.18\.1\.2:9000 matched", start=m)
        self.assertGreater(created, 4096, "too few datagrams reached veer")
        self.assertGreaterEqual(evicted, created - 4096)
        self.assertTrue(self.veer.alive())
        for server in (n.SERVER4, n.SERVER6):
            r = NET.peer("udp", server, 9000, "after flood")
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["replies"][0]["from"], server)
        self.assertEcho(self.tcp(n.SERVER4, 8002, "after flood"), 8002, "after flood")
        # Every one of those sessions was answered through one reply socket.
        self.assertLessEqual(self.veer.count(r"reply socket for 198\.18\.1\.2:9000 opened"), 1)


class SniffThroughTproxyTest(unittest.TestCase):
    """A TLS connection to an IP address, captured by TPROXY, is routed by its SNI; the server
    gets exactly the bytes the client sent (the sniffed ClientHello is replayed, not lost)."""

    @classmethod
    def setUpClass(cls):
        cls.veer = n.Veer(NET, n.config(extra_rules=[
            {"inbound": ["tproxy-in"], "network": ["tcp"], "action": "sniff"},
            {"domain_suffix": ["blocked-sni.test"], "action": "reject"},
        ]))

    @classmethod
    def tearDownClass(cls):
        assert cls.veer.stop() == 0, cls.veer.logtext()[-3000:]

    def tls(self, host, sni):
        return NET.peer("tls", host, 8002, sni, "--timeout", 3)

    def test_allowed_sni_reaches_server_byte_for_byte(self):
        for host in (n.SERVER4, n.SERVER6):
            m = self.veer.mark()
            r = self.tls(host, "www.allowed-sni.test")
            self.assertTrue(r["intact"], "%s\n%s" % (r, self.veer.logtext()[m:]))
            self.assertTrue(self.veer.wait_log(r"\(www\.allowed-sni\.test\) \[tls\] matched",
                                               start=m), self.veer.logtext()[m:])

    def test_blocked_sni_is_rejected(self):
        for host in (n.SERVER4, n.SERVER6):
            m = self.veer.mark()
            r = self.tls(host, "cdn.blocked-sni.test")
            self.assertEqual(r["got"], 0, r)
            self.assertTrue(self.veer.wait_log(r"\(cdn\.blocked-sni\.test\) \[tls\] rejected",
                                               start=m), self.veer.logtext()[m:])


class RoutingMarkLoopTest(unittest.TestCase):
    """The same firewall with veer's outbound unmarked: veer's own connection is captured by
    the output chain and comes back into veer (caught here by the loop-breaker rule). With
    route.default_mark instead of the outbound's routing_mark, traffic flows again."""

    def test_without_mark_traffic_loops(self):
        veer = n.Veer(NET, n.config(routing_mark=0))
        try:
            r = NET.peer("tcp", n.SERVER4, 8002, "loop", "--timeout", 3)
            self.assertFalse(r["ok"] and r["reply"].startswith("echo"), r)
            # The connection veer dialed toward the server arrived at veer's own listener.
            self.assertTrue(veer.wait_log(r"tproxy/tproxy-in\] tcp 198\.18\.1\.1:\d+ -> "
                                          r"198\.18\.1\.2:8002 rejected", timeout=5),
                            veer.logtext())
        finally:
            self.assertEqual(veer.stop(), 0)

    def test_default_mark_prevents_loop(self):
        cfg = n.config(routing_mark=0)
        cfg["route"]["default_mark"] = n.VEER_MARK
        veer = n.Veer(NET, cfg)
        try:
            r = NET.peer("tcp", n.SERVER4, 8002, "default mark")
            self.assertTrue(r["ok"] and r["reply"].endswith("default mark"), r)
            self.assertNotRegex(veer.logtext(), r"198\.18\.1\.1:\d+ -> .*rejected")
        finally:
            self.assertEqual(veer.stop(), 0)


class ExampleRulesetTest(unittest.TestCase):
    def test_example_nft_is_accepted_by_the_kernel(self):
        path = os.path.join(n.SOURCE, "examples", "openwrt", "veer.nft")
        r = NET.run(NET.router, ["nft", "-c", "-f", path])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_example_route_script_starts_and_stops(self):
        # veer-route.sh in a namespace of its own: loads veer.nft and the policy routing, and
        # removes both again.
        script = os.path.join(n.SOURCE, "examples", "openwrt", "veer-route.sh")
        ns = "veer-t-%d-scratch" % os.getpid()
        n.sh("ip", "netns", "add", ns)
        try:
            n.sh("ip", "-n", ns, "link", "set", "lo", "up")
            r = n.sh("ip", "netns", "exec", ns, "sh", script, "start", check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("table inet veer", n.sh("ip", "netns", "exec", ns, "nft", "list",
                                                  "tables").stdout)
            for fam in ("-4", "-6"):
                self.assertIn("fwmark 0x1 lookup 100", n.sh("ip", "-n", ns, fam, "rule").stdout)
                self.assertIn("local", n.sh("ip", "-n", ns, fam, "route", "show", "table",
                                            "100").stdout)
            # Running it again is harmless (the table is replaced, the rule not duplicated).
            n.sh("ip", "netns", "exec", ns, "sh", script, "start")
            self.assertEqual(n.sh("ip", "-n", ns, "rule").stdout.count("lookup 100"), 1)
            n.sh("ip", "netns", "exec", ns, "sh", script, "stop")
            self.assertNotIn("veer", n.sh("ip", "netns", "exec", ns, "nft", "list",
                                          "tables").stdout)
            self.assertNotIn("lookup 100", n.sh("ip", "-n", ns, "rule").stdout)
        finally:
            n.sh("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
