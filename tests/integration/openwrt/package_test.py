"""Checks of the OpenWrt package in openwrt/veer and the rules it installs (examples/openwrt)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("VEER_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "../../..")))
VEER = os.environ.get("VEER_BIN", os.path.join(SOURCE, "build/veer"))
PKG = os.path.join(SOURCE, "openwrt/veer")
INIT = os.path.join(PKG, "files/veer.init")
EXAMPLES = os.path.join(SOURCE, "examples/openwrt")
NFT = os.path.join(EXAMPLES, "veer.nft")
ROUTE = os.path.join(EXAMPLES, "veer-route.sh")
CONFIG = os.path.join(EXAMPLES, "veer.json")


def run(*cmd, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, **kw)


# Just enough of OpenWrt's rules.mk/package.mk/cmake.mk for the package Makefile to be read by
# GNU make: BuildPackage prints the package's fields so that the test can check them.
STUB_MK = {
    "rules.mk": "INCLUDE_DIR:=$(TOPDIR)/include\nTAR:=tar\nINSTALL_DIR:=install -d\n"
                "INSTALL_BIN:=install -m0755\nINSTALL_CONF:=install -m0600\n",
    "include/package.mk": "PKG_BUILD_DIR:=/build/$(PKG_NAME)-$(PKG_VERSION)\nDL_DIR:=/dl\n"
                          "Download=$$(info download $(1) $$(Download/$(1)))\n"
                          "BuildPackage=$$(eval $$(Package/$(1))) $$(info DEPENDS=$$(DEPENDS)) \\\n"
                          "  $$(info CONFFILES=$$(Package/$(1)/conffiles)) \\\n"
                          "  $$(info INSTALL=$$(Package/$(1)/install)) \\\n"
                          "  $$(info CMAKE_OPTIONS=$$(CMAKE_OPTIONS))\n"
                          "all:\n\t@true\n",
    "include/cmake.mk": "CMAKE_OPTIONS:=\n",
}


class PackageTest(unittest.TestCase):
    def test_makefile_parses_and_names_the_dependencies(self):
        if shutil.which("make") is None:
            self.skipTest("make is not installed")
        with tempfile.TemporaryDirectory() as top:
            for name, text in STUB_MK.items():
                os.makedirs(os.path.dirname(os.path.join(top, name)), exist_ok=True)
                with open(os.path.join(top, name), "w") as f:
                    f.write(text)
            r = run("make", "-s", "-C", PKG, "TOPDIR=" + top)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        deps = [l for l in out.splitlines() if l.startswith("DEPENDS=")][0][len("DEPENDS="):].split()
        for d in ("+libuv", "+libmbedtls", "+libcares", "+libmaxminddb", "+re2", "+zlib",
                  "+libstdcpp", "+libatomic"):
            self.assertIn(d, deps)
        self.assertIn("/etc/veer/", out)
        self.assertIn("RAPIDJSON_INCLUDE_DIR=", out)
        # the feed ships the libraries as packages of their own: the daemon links them shared
        self.assertIn("-DVEER_STATIC_DEPS=OFF", out)
        with open(os.path.join(PKG, "Makefile")) as f:
            makefile = f.read()
        # Every file the package installs from the source tree exists.
        for rel in ("examples/openwrt/veer.json", "examples/openwrt/veer.nft",
                    "examples/openwrt/veer-route.sh"):
            self.assertIn("$(PKG_BUILD_DIR)/" + rel, makefile)
            self.assertTrue(os.path.exists(os.path.join(SOURCE, rel)), rel)

    def test_source_tarball(self):
        # PKG_SOURCE is veer-$(PKG_VERSION).tar.gz with everything under veer-$(PKG_VERSION)/,
        # as make-source-tarball.sh writes it (git archive of HEAD); the same commit gives the
        # same bytes, so its sha256 can serve as PKG_HASH.
        if shutil.which("git") is None or run("git", "-C", SOURCE, "rev-parse").returncode != 0:
            self.skipTest("not a git checkout")
        with open(os.path.join(PKG, "Makefile")) as f:
            makefile = f.read()
        self.assertIn("PKG_SOURCE:=$(PKG_NAME)-$(PKG_VERSION).tar.gz", makefile)
        self.assertIn("PKG_HASH:=skip", makefile)
        version = re.search(r"^PKG_VERSION:=(\S+)", makefile, re.M).group(1)
        script = os.path.join(SOURCE, "openwrt", "make-source-tarball.sh")
        with tempfile.TemporaryDirectory() as out:
            r1 = run("sh", script, "HEAD", out)
            self.assertEqual(r1.returncode, 0, r1.stderr)
            r2 = run("sh", script, "HEAD", out)
            self.assertEqual(r1.stdout.split()[0], r2.stdout.split()[0], "not reproducible")
            names = run("tar", "tzf", os.path.join(out, "veer-%s.tar.gz" % version)).stdout.split()
        top = "veer-%s/" % version
        self.assertTrue(all(n.startswith(top) for n in names), names[:5])
        for rel in ("CMakeLists.txt", "openwrt/veer/files/veer.init", "examples/openwrt/veer.json",
                    "examples/openwrt/veer.nft", "examples/openwrt/veer-route.sh"):
            self.assertIn(top + rel, names)

    def test_init_script_syntax(self):
        for f in (INIT, ROUTE):
            r = run("sh", "-n", f)
            self.assertEqual(r.returncode, 0, f + ": " + r.stderr)

    def test_shellcheck(self):
        if shutil.which("shellcheck") is None:
            self.skipTest("shellcheck is not installed (apt-get install shellcheck)")
        files = [INIT, os.path.join(SOURCE, "openwrt/make-source-tarball.sh"),
                 os.path.join(SOURCE, "scripts/cross-test.sh"),
                 os.path.join(SOURCE, "scripts/check-musl-symbols.sh")]
        r = run("shellcheck", "-s", "sh", *files)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def procd(self, config, action):
        """Runs the init script's ACTION with procd, logger and the route script stubbed;
        returns the calls it made."""
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "calls")
            harness = r"""
set -u
. "$INIT"
PROG="$VEER" CONF="$CONFIG" NFT="$D/none.nft" ROUTE="$D/route"
procd_open_instance() { echo "open $*" >>"$LOG"; }
procd_set_param() { echo "param $*" >>"$LOG"; }
procd_close_instance() { echo "close" >>"$LOG"; }
procd_send_signal() { echo "signal $*" >>"$LOG"; }
logger() { cat >/dev/null; }
$ACTION
echo "rc $?" >>"$LOG"
"""
            env = dict(os.environ, INIT=INIT, VEER=VEER, CONFIG=config, D=d, LOG=log,
                       ACTION=action)
            r = run("sh", "-c", harness, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(log) as f:
                return f.read(), r.stderr

    def test_init_checks_config_before_start_and_reload(self):
        if not os.path.exists(VEER):
            self.skipTest("veer binary not found at %s" % VEER)
        calls, _ = self.procd(CONFIG, "start_service")
        self.assertIn("open veer", calls)
        self.assertIn("param command %s run -c %s" % (VEER, CONFIG), calls)
        self.assertIn("param respawn", calls)
        self.assertTrue(calls.endswith("rc 0\n"), calls)
        calls, _ = self.procd(CONFIG, "reload_service")
        self.assertIn("signal veer * HUP", calls)

        with tempfile.NamedTemporaryFile("w", suffix=".json") as bad:
            bad.write('{"inbounds": [{"type": "mixed", "listen_prot": 1}]}')
            bad.flush()
            calls, err = self.procd(bad.name, "start_service")
            self.assertNotIn("open", calls)
            self.assertTrue(calls.endswith("rc 1\n"), calls)
            self.assertIn("veer check", err)
            calls, _ = self.procd(bad.name, "reload_service")
            self.assertNotIn("signal", calls)
            self.assertTrue(calls.endswith("rc 1\n"), calls)

    def test_default_config_passes_check(self):
        if not os.path.exists(VEER):
            self.skipTest("veer binary not found at %s" % VEER)
        r = run(VEER, "check", "-c", CONFIG)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class FirewallTest(unittest.TestCase):
    """The fw4 include and the policy routing, in a network namespace of their own."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("network namespaces need root (CI runs as root)")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                self.skipTest("%s is not installed" % tool)
        self.ns = "veer-owrt-%d" % os.getpid()
        r = run("ip", "netns", "add", self.ns)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(run, "ip", "netns", "del", self.ns)

    def ns_run(self, *cmd, **kw):
        return run("ip", "netns", "exec", self.ns, *cmd, **kw)

    def test_nft_check(self):
        r = self.ns_run("nft", "-c", "-f", NFT)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_route_script_start_stop(self):
        self.ns_run("ip", "link", "set", "lo", "up")
        env = dict(os.environ, NFT_FILE=NFT)
        for attempt in (1, 2):  # start must be repeatable
            r = self.ns_run("sh", ROUTE, "start", env=env)
            self.assertEqual(r.returncode, 0, "start #%d: %s" % (attempt, r.stderr))
        table = self.ns_run("nft", "list", "table", "inet", "veer").stdout
        self.assertIn("tproxy", table)
        self.assertIn("meta mark 0x000000ff", table)  # veer's own traffic excluded
        for v in ("-4", "-6"):
            rules = self.ns_run("ip", v, "rule", "show").stdout
            self.assertIn("fwmark 0x1 lookup 100", rules, v)
            routes = self.ns_run("ip", v, "route", "show", "table", "100").stdout
            self.assertIn("local default dev lo", routes, v)
        r = self.ns_run("sh", ROUTE, "stop", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(self.ns_run("nft", "list", "table", "inet", "veer").returncode, 0)
        self.assertNotIn("lookup 100", self.ns_run("ip", "-4", "rule", "show").stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
