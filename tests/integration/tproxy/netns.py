"""A three-namespace network for the transparent-proxy tests, built and torn down by the tests:

    client  c0 ==veth== r0  router  r1 ==veth== s0  server
    198.18.0.1/30      198.18.0.2/30   198.18.1.1/30    198.18.1.2/30
    fd00:1::1/64       fd00:1::2/64    fd00:2::1/64     fd00:2::2/64

Addresses come from 198.18.0.0/15 and fd00::/8; client and server route only those prefixes
through the router (there is no default route anywhere, so nothing can leave the namespaces).
veer runs in the router namespace; the firewall rules (nft or iptables) are loaded there.
"""
import atexit
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VEER = os.environ.get("VEER_BIN", "build/veer")
SOURCE = os.environ.get("VEER_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "../../..")))
PEER = os.path.join(HERE, "peer.py")

CLIENT4, ROUTER4_LAN, ROUTER4_WAN, SERVER4 = "198.18.0.1", "198.18.0.2", "198.18.1.1", "198.18.1.2"
CLIENT6, ROUTER6_LAN, ROUTER6_WAN, SERVER6 = "fd00:1::1", "fd00:1::2", "fd00:2::1", "fd00:2::2"
# An address behind the router where nothing listens (for DNS hijack: only veer can answer).
NOBODY4, NOBODY6 = "198.18.2.1", "fd00:3::1"

REDIRECT_PORT, TPROXY_PORT = 7892, 7893
VEER_MARK = 0xFF  # routing_mark of veer's outbounds
TPROXY_MARK = 1   # the mark TPROXY sets, routed to `local` by table 100


def skip_reason(need=("ip", "nft")):
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "network-namespace tests need root (CI runs them as root)"
    for tool in need:
        if shutil.which(tool) is None:
            return "%s is not installed (apt-get install %s)" % (
                tool, {"ip": "iproute2", "nft": "nftables"}.get(tool, tool))
    if not os.path.exists(VEER):
        return "veer binary not found at %s (set VEER_BIN)" % VEER
    return None


def sh(*cmd, check=True, input=None, timeout=30):
    r = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), r.returncode, r.stdout,
                                                    r.stderr))
    return r


def _interrupted(*_):
    # unittest lets KeyboardInterrupt through (and stops); atexit then deletes the namespaces.
    raise KeyboardInterrupt("SIGTERM")


def _remove_stale():
    """Deletes namespaces left by an earlier run of these tests that was killed (only names of
    this scheme, veer-t-<pid>-..., whose pid no longer exists)."""
    r = sh("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"(veer-t-(\d+)-\w+)", line)
        if m and not os.path.exists("/proc/" + m.group(2)):
            sh("ip", "netns", "del", m.group(1), check=False)


class Net:
    def __init__(self):
        _remove_stale()
        # A test runner's timeout sends SIGTERM: exit through atexit so the namespaces go.
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _interrupted)
        tag = "veer-t-%d" % os.getpid()
        self.client, self.router, self.server = (tag + "-client", tag + "-router",
                                                 tag + "-server")
        self.names = [self.client, self.router, self.server]
        self.procs = []  # Popen objects this test started
        self.up = False
        atexit.register(self.destroy)
        try:
            self._build()
        except Exception:
            self.destroy()
            raise

    def _build(self):
        for n in self.names:
            sh("ip", "netns", "add", n)
        self.up = True
        for n in self.names:
            sh("ip", "-n", n, "link", "set", "lo", "up")
        sh("ip", "-n", self.client, "link", "add", "c0", "type", "veth", "peer", "name", "r0",
           "netns", self.router)
        sh("ip", "-n", self.server, "link", "add", "s0", "type", "veth", "peer", "name", "r1",
           "netns", self.router)
        for ns, dev, v4, v6 in ((self.client, "c0", CLIENT4, CLIENT6),
                                (self.router, "r0", ROUTER4_LAN, ROUTER6_LAN),
                                (self.router, "r1", ROUTER4_WAN, ROUTER6_WAN),
                                (self.server, "s0", SERVER4, SERVER6)):
            sh("ip", "-n", ns, "addr", "add", v4 + "/30", "dev", dev)
            sh("ip", "-n", ns, "-6", "addr", "add", v6 + "/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        for ns, gw4, gw6 in ((self.client, ROUTER4_LAN, ROUTER6_LAN),
                             (self.server, ROUTER4_WAN, ROUTER6_WAN)):
            sh("ip", "-n", ns, "route", "add", "198.18.0.0/15", "via", gw4)
            sh("ip", "-n", ns, "-6", "route", "add", "fd00::/8", "via", gw6)
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                    "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv4.conf.r0.rp_filter=0", "net.ipv4.conf.lo.rp_filter=0"):
            sh("ip", "netns", "exec", self.router, "sysctl", "-qw", key)
        # TPROXY: packets marked TPROXY_MARK are delivered locally (to veer's listener).
        sh("ip", "-n", self.router, "rule", "add", "fwmark", str(TPROXY_MARK), "lookup", "100")
        sh("ip", "-n", self.router, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table",
           "100")
        sh("ip", "-n", self.router, "-6", "rule", "add", "fwmark", str(TPROXY_MARK), "lookup",
           "100")
        sh("ip", "-n", self.router, "-6", "route", "add", "local", "::/0", "dev", "lo", "table",
           "100")
        self.server_proc = self.spawn(self.server, ["python3", PEER, "serve", "--tcp",
                                                    "8001,8002,8003", "--udp", "9000,9001",
                                                    "--dns", "53"])
        line = self.server_proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError("test servers did not start: " + line)

    # ---- processes ---------------------------------------------------------------------

    def spawn(self, ns, argv, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("text", True)
        p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, **kw)
        self.procs.append(p)
        return p

    def run(self, ns, argv, timeout=30, check=False):
        return sh("ip", "netns", "exec", ns, *argv, timeout=timeout, check=check)

    def peer(self, *args, timeout=30, ns=None):
        """Runs a peer.py client in the client namespace (or `ns`); returns its JSON result."""
        r = self.run(ns or self.client, ["python3", PEER] + [str(a) for a in args], timeout=timeout)
        try:
            return json.loads(r.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise RuntimeError("peer %s: %s %s" % (args, r.stdout, r.stderr))

    def nft(self, ruleset):
        self.run(self.router, ["nft", "flush", "ruleset"], check=True)
        r = sh("ip", "netns", "exec", self.router, "nft", "-f", "-", input=ruleset, check=False)
        if r.returncode != 0:
            raise RuntimeError("nft rejected the ruleset: " + r.stderr)

    def destroy(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []
        if self.up:
            for n in self.names:
                subprocess.run(["ip", "netns", "del", n], capture_output=True)
            self.up = False


def _raise_nofile():
    # The UDP flood test holds thousands of NAT sessions, each with its own socket.
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (32768, 32768))
    except (ValueError, OSError):
        pass


class Veer:
    """veer running in the router namespace on `config` (a dict)."""

    def __init__(self, net, config):
        self.net = net
        self.dir = tempfile.mkdtemp(prefix="veer-tproxy-")
        self.config_path = os.path.join(self.dir, "config.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        self.log_path = os.path.join(self.dir, "veer.log")
        self.log = open(self.log_path, "w")
        self.proc = net.spawn(net.router, [VEER, "run", "-c", self.config_path],
                              stdout=self.log, stderr=subprocess.STDOUT,
                              preexec_fn=_raise_nofile)
        deadline = time.time() + 15
        while "veer started" not in self.logtext():
            if self.proc.poll() is not None:
                raise RuntimeError("veer exited %d:\n%s" % (self.proc.returncode, self.logtext()))
            if time.time() > deadline:
                raise RuntimeError("veer did not start:\n" + self.logtext())
            time.sleep(0.05)

    def logtext(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def mark(self):
        """An offset into the log: count() and wait_log() can look only at what came later."""
        return len(self.logtext())

    def count(self, pattern, start=0):
        return len(re.findall(pattern, self.logtext()[start:]))

    def wait_log(self, pattern, timeout=5, start=0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if re.search(pattern, self.logtext()[start:]):
                return True
            time.sleep(0.05)
        return False

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM; returns the exit status (0 expected: every handle closed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def config(routing_mark=VEER_MARK, level="debug", extra_rules=()):
    """redirect on REDIRECT_PORT, tproxy (TCP+UDP) on TPROXY_PORT, both on "::"."""
    outbound = {"type": "direct", "tag": "direct"}
    if routing_mark:
        outbound["routing_mark"] = routing_mark
    rules = [
        # Loop breaker: a connection from the router's WAN address (where veer's outbound
        # connections to the server come from) means veer's outbound traffic came back into
        # veer. Refuse it (and the tests look for it in the log). The router's own clients
        # bind its LAN address when a test sends them through veer on purpose.
        {"source_ip_cidr": [ROUTER4_WAN + "/32", ROUTER6_WAN + "/128"], "action": "reject"},
        {"port": 53, "action": "hijack-dns"},
    ] + list(extra_rules)
    return {
        "log": {"level": level, "timestamp": False},
        "inbounds": [
            {"type": "redirect", "tag": "redir-in", "listen": "::", "listen_port": REDIRECT_PORT},
            {"type": "tproxy", "tag": "tproxy-in", "listen": "::", "listen_port": TPROXY_PORT,
             "udp_timeout": "1m"},
        ],
        "outbounds": [outbound, {"type": "block", "tag": "block"}],
        "route": {"rules": rules, "final": "direct"},
        # hijack-dns answers through veer's DNS module, whose upstream is the DNS server in
        # the server namespace (it answers every A question with peer.DNS_ANSWER).
        "dns": {"servers": [{"type": "udp", "tag": "up", "server": SERVER4, "server_port": 53}],
                "final": "up"},
    }
