"""The same transparent proxying with iptables instead of nftables: the router's firewall is
examples/openwrt/iptables.sh itself (mangle TPROXY + marks + `ip rule fwmark ... lookup 100`),
run with the test network's interface and bypass lists, plus a nat REDIRECT rule for the
redirect inbound. Uses whichever iptables is installed (iptables-nft or iptables-legacy)."""
import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns as n  # noqa: E402

NET = None
IPT = IP6T = None
SCRIPT = os.path.join(n.SOURCE, "examples", "openwrt", "iptables.sh")


def find_iptables():
    for v4, v6 in (("iptables", "ip6tables"), ("iptables-nft", "ip6tables-nft"),
                   ("iptables-legacy", "ip6tables-legacy")):
        if shutil.which(v4) and shutil.which(v6):
            return v4, v6
    return None, None


def setUpModule():
    global NET, IPT, IP6T
    why = n.skip_reason(need=("ip",))
    if why:
        raise unittest.SkipTest(why)
    IPT, IP6T = find_iptables()
    if IPT is None:
        raise unittest.SkipTest("iptables is not installed (apt-get install iptables)")
    NET = n.Net()
    env = ["env", "LAN_IF=r0", "IPT=" + IPT, "IP6T=" + IP6T,
           "VEER_PORT=%d" % n.TPROXY_PORT, "VEER_MARK=0x%x" % n.VEER_MARK,
           "TPROXY_MARK=0x%x" % n.TPROXY_MARK,
           # The test network lives in 198.18.0.0/15, which the example bypasses by default.
           "BYPASS4=198.18.0.0/30", "BYPASS6=fd00:1::/64 ::1/128"]
    r = NET.run(NET.router, env + ["sh", SCRIPT, "start"])
    if r.returncode != 0:
        NET.destroy()
        raise RuntimeError("iptables.sh start failed: %s%s" % (r.stdout, r.stderr))
    # TCP to port 8001 goes to the redirect inbound (nat REDIRECT) instead of TPROXY.
    for ipt in (IPT, IP6T):
        NET.run(NET.router, [ipt, "-w", "-t", "mangle", "-I", "VEER", "1", "-p", "tcp",
                             "--dport", "8001", "-j", "RETURN"], check=True)
        NET.run(NET.router, [ipt, "-w", "-t", "nat", "-A", "PREROUTING", "-i", "r0", "-p", "tcp",
                             "--dport", "8001", "-j", "REDIRECT", "--to-ports",
                             str(n.REDIRECT_PORT)], check=True)


def tearDownModule():
    if NET:
        NET.destroy()


class IptablesTproxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.veer = n.Veer(NET, n.config())

    @classmethod
    def tearDownClass(cls):
        assert cls.veer.stop() == 0, cls.veer.logtext()[-3000:]

    def tcp(self, host, port, msg):
        r = NET.peer("tcp", host, port, msg)
        self.assertTrue(r["ok"], "%s\n%s" % (r, self.veer.logtext()[-3000:]))
        self.assertRegex(r["reply"], r"^echo %d from .*: %s$" % (port, msg))

    def test_tcp_tproxy_v4(self):
        m = self.veer.mark()
        self.tcp(n.SERVER4, 8002, "ipt tproxy v4")
        self.assertTrue(self.veer.wait_log(r"tproxy/tproxy-in\] tcp 198\.18\.0\.1:\d+ -> "
                                           r"198\.18\.1\.2:8002 matched", start=m))

    def test_tcp_tproxy_v6(self):
        m = self.veer.mark()
        self.tcp(n.SERVER6, 8002, "ipt tproxy v6")
        self.assertTrue(self.veer.wait_log(r"tproxy/tproxy-in\] tcp \[fd00:1::1\]:\d+ -> "
                                           r"\[fd00:2::2\]:8002 matched", start=m))

    def test_tcp_redirect_v4(self):
        m = self.veer.mark()
        self.tcp(n.SERVER4, 8001, "ipt redirect v4")
        self.assertTrue(self.veer.wait_log(r"redirect/redir-in\] tcp 198\.18\.0\.1:\d+ -> "
                                           r"198\.18\.1\.2:8001 matched", start=m))

    def test_tcp_redirect_v6(self):
        m = self.veer.mark()
        self.tcp(n.SERVER6, 8001, "ipt redirect v6")
        self.assertTrue(self.veer.wait_log(r"redirect/redir-in\] tcp \[fd00:1::1\]:\d+ -> "
                                           r"\[fd00:2::2\]:8001 matched", start=m))

    def udp(self, server):
        r = NET.peer("udp", server, 9000, "ipt", "--count", 2)
        self.assertTrue(r["ok"], "%s\n%s" % (r, self.veer.logtext()[-3000:]))
        for rep in r["replies"]:
            self.assertEqual(rep["from"], server)
            self.assertEqual(rep["port"], 9000)

    def test_udp_tproxy_v4(self):
        self.udp(n.SERVER4)

    def test_udp_tproxy_v6(self):
        self.udp(n.SERVER6)

    def test_zz_routing_mark_rule_let_veer_out(self):
        # veer's outbound packets matched the first VEER_OUT rule (mark 0xff -> RETURN).
        for ipt in (IPT, IP6T):
            out = NET.run(NET.router, [ipt, "-w", "-t", "mangle", "-L", "VEER_OUT", "-v", "-n",
                                       "-x"], check=True).stdout
            first = [ln for ln in out.splitlines() if "RETURN" in ln][0]
            self.assertGreater(int(first.split()[0]), 0, out)
            self.assertIn("mark match 0xff", first)
        self.assertNotRegex(self.veer.logtext(), r"(198\.18\.1\.1|fd00:2::1\]):\d+ -> .*rejected")


class IptablesScriptTest(unittest.TestCase):
    def test_stop_removes_everything(self):
        # In a namespace of its own: start, then stop leaves no chain, rule or route behind.
        ns = "veer-t-%d-scratch" % os.getpid()
        n.sh("ip", "netns", "add", ns)
        try:
            n.sh("ip", "-n", ns, "link", "set", "lo", "up")
            env = ["env", "IPT=" + IPT, "IP6T=" + IP6T]
            r = n.sh("ip", "netns", "exec", ns, *env, "sh", SCRIPT, "start", check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            rules = n.sh("ip", "netns", "exec", ns, IPT, "-w", "-t", "mangle", "-S").stdout
            self.assertIn("-j TPROXY", rules)
            self.assertIn("-A OUTPUT -j VEER_OUT", rules)
            self.assertIn("lookup 100", n.sh("ip", "-n", ns, "rule").stdout)
            n.sh("ip", "netns", "exec", ns, *env, "sh", SCRIPT, "stop")
            rules = n.sh("ip", "netns", "exec", ns, IPT, "-w", "-t", "mangle", "-S").stdout
            self.assertNotIn("VEER", rules)
            self.assertNotIn("lookup 100", n.sh("ip", "-n", ns, "rule").stdout)
            self.assertNotIn("lookup 100", n.sh("ip", "-n", ns, "-6", "rule").stdout)
        finally:
            n.sh("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
