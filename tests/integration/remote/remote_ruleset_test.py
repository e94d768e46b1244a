"""Remote rule sets end to end: the real veer downloads rule sets from a local HTTP server
(real .srs files from ../shared/testdata and small .json sets written here), routes with them,
keeps them in its cache directory, starts offline from the cache, picks up changes on refresh,
and keeps the cached copy when the server fails or serves something invalid."""
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness as h  # noqa: E402


def testdata_dir():
    d = os.environ.get("VEER_TESTDATA") or os.path.join(h.SOURCE, "..", "shared", "testdata")
    return d if os.path.isdir(d) else None


class RuleSetServer:
    """Serves files from a directory, with an ETag per content (If-None-Match -> 304). `mode`
    makes it misbehave: "500" answers 500, "corrupt" serves garbage with 200, "chunked" sends
    bodies with chunked transfer coding. Records (path, if-none-match) per request."""

    def __init__(self, port=0, tls=None):
        self.dir = tempfile.mkdtemp(prefix="veer-rs-srv-")
        self.scheme = "https" if tls else "http"
        self.mode = ""
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("If-None-Match")))
                if server.mode == "500":
                    body = b"internal error"
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                path = os.path.join(server.dir, self.path.lstrip("/").split("?")[0])
                if not os.path.isfile(path):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with open(path, "rb") as f:
                    body = f.read()
                if server.mode == "corrupt":
                    body = b"SRS\x01" + b"\x00garbage" * 10 if path.endswith(".srs") else b"{oops"
                etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                if server.mode == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 100):
                        piece = body[i:i + 100]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name, host="127.0.0.1"):
        return "%s://%s:%d/%s" % (self.scheme, host, self.port, name)

    def put(self, name, data):
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(os.path.join(self.dir, name), mode) as f:
            f.write(data)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


def json_set(*domains):
    return json.dumps({"version": 1, "rules": [{"domain": list(domains)}]})


def config(sets, rules, port=0):
    return {
        "log": {"level": "debug"},
        "inbounds": [{"type": "mixed", "tag": "mixed-in", "listen": "127.0.0.1",
                      "listen_port": port}],
        "outbounds": [{"type": "direct", "tag": "direct"}, {"type": "block", "tag": "block"}],
        "route": {"rule_set": sets, "rules": rules, "final": "direct"},
    }


def check_clean_exit(test, v):
    """veer exits 0 on SIGTERM, with no sanitizer report (under `make test-asan`)."""
    rc = v.stop()
    log = v.logtext()
    test.assertEqual(rc, 0, log[-3000:])
    test.assertNotIn("AddressSanitizer", log)
    test.assertNotIn("runtime error:", log)


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


class RemoteRuleSetTest(unittest.TestCase):
    def setUp(self):
        self.srv = RuleSetServer()
        self.web = h.HttpServer()  # the destination of allowed connections
        self.cache = tempfile.mkdtemp(prefix="veer-rs-cache-")
        self.env = {"VEER_RULE_SET_CACHE": self.cache}
        self.procs = []

    def tearDown(self):
        for v in self.procs:
            check_clean_exit(self, v)
        self.web.stop()
        self.srv.stop()
        shutil.rmtree(self.cache, ignore_errors=True)

    def start(self, cfg):
        v = h.Veer(cfg, env=self.env)
        self.procs.append(v)
        return v

    def route(self, v, host):
        """'direct' when veer connected (to the local web server, for "localhost" and
        127.0.0.1), 'blocked' when the block outbound refused it (SOCKS reply 2, "not allowed
        by ruleset"), 'failed-N' for any other reply (a direct dial that failed)."""
        s, code = h.socks5_connect(v.ports["mixed-in"], host, self.web.port)
        try:
            return {0: "direct", 2: "blocked"}.get(code, "failed-%d" % code)
        finally:
            s.close()

    def cache_file(self, tag):
        return os.path.join(self.cache, tag + ".cache")

    # The routed names: "localhost" resolves locally, so a connection that is not blocked
    # reaches the local web server.

    def test_first_download_routing_and_offline_restart(self):
        td = testdata_dir()
        if td is None:
            self.skipTest("shared testdata not found (set VEER_TESTDATA)")
        with open(os.path.join(td, "ruleset/meta-rules-dat-sing/geosite/github.srs"), "rb") as f:
            srs = f.read()
        self.srv.put("github.srs", srs)
        self.srv.put("local.json", json_set("localhost"))
        sets = [{"tag": "gh", "type": "remote", "url": self.srv.url("github.srs")},
                {"tag": "lh", "type": "remote", "url": self.srv.url("local.json"),
                 "download_detour": "direct", "update_interval": "1h"}]
        rules = [{"rule_set": ["gh"], "outbound": "block"}]
        cfg = config(sets, rules)
        v = self.start(cfg)
        log = v.logtext()
        self.assertIn("rule-set gh: updated from " + self.srv.url("github.srs"), log)
        self.assertIn("rule-set lh: updated", log)
        # Downloaded before the inbound started listening.
        self.assertLess(log.index("rule-set gh: updated"), log.index("veer started"))
        # The cache holds the bytes as served.
        with open(self.cache_file("gh"), "rb") as f:
            meta, body = f.read().split(b"\n", 1)
        self.assertEqual(body, srs)
        self.assertEqual(json.loads(meta)["url"], self.srv.url("github.srs"))
        # Routing uses the downloaded .srs (github.com and subdomains -> block).
        self.assertEqual(self.route(v, "github.com"), "blocked")
        self.assertEqual(self.route(v, "api.github.com"), "blocked")
        self.assertEqual(self.route(v, "localhost"), "direct")
        v.stop()

        # Restart with the server down: veer starts from the cache and routes the same way.
        self.srv.server.shutdown()
        self.srv.server.server_close()
        n = len(self.srv.requests)
        v2 = self.start(cfg)
        self.assertIn("rule-set gh: using the cached copy", v2.logtext())
        self.assertEqual(self.route(v2, "github.com"), "blocked")
        self.assertEqual(self.route(v2, "localhost"), "direct")
        self.assertEqual(len(self.srv.requests), n)

        # `veer check` validates the cached copies, without network.
        cfg_path = v2.config_path
        r = subprocess.run([h.VEER, "check", "-c", cfg_path], capture_output=True, text=True,
                           env=dict(os.environ, **self.env), timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("remote rule-set", r.stdout)

    def test_offline_start_without_cache_then_reload(self):
        port = self.srv.port
        self.srv.put("local.json", json_set("localhost"))
        self.srv.server.shutdown()
        self.srv.server.server_close()
        sets = [{"tag": "lh", "type": "remote", "url": "http://127.0.0.1:%d/local.json" % port}]
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        listen_port = sock.getsockname()[1]  # fixed, so that the reload listens there again
        sock.close()
        v = self.start(config(sets, [{"rule_set": "lh", "outbound": "block"}], port=listen_port))
        # veer starts without the set, says why, and routes as if it matched nothing.
        log = v.logtext()
        self.assertIn("rule-set lh: update from", log)
        self.assertIn("no copy yet", log)
        self.assertEqual(self.route(v, "localhost"), "direct")
        # The server comes back; a reload downloads the missing set at once.
        srv2 = RuleSetServer(port)
        try:
            srv2.put("local.json", json_set("localhost"))
            mark = len(v.logtext())
            v.proc.send_signal(signal.SIGHUP)
            self.assertTrue(v.wait_log(r"rule-set lh: updated", timeout=10, start=mark),
                            v.logtext())
            self.assertEqual(self.route(v, "localhost"), "blocked")
        finally:
            srv2.stop()

    def test_refresh_picks_up_changes_without_restart(self):
        self.srv.mode = "chunked"
        self.srv.put("set.json", json_set("localhost"))
        sets = [{"tag": "s", "type": "remote", "url": self.srv.url("set.json"),
                 "update_interval": "1s"}]
        v = self.start(config(sets, [{"rule_set": ["s"], "outbound": "block"}]))
        self.assertEqual(self.route(v, "localhost"), "blocked")
        self.assertEqual(self.route(v, "127.0.0.1"), "direct")
        # An unchanged file: the next refresh sends the ETag and gets 304.
        self.assertTrue(v.wait_log(r"rule-set s: not modified", timeout=5), v.logtext())
        self.assertTrue(any(inm for _, inm in self.srv.requests))
        # A changed file is swapped in on the next refresh.
        mark = len(v.logtext())
        self.srv.put("set.json", json.dumps({"version": 1, "rules": [{"ip_cidr": ["127.0.0.0/8"]}]}))
        self.assertTrue(v.wait_log(r"rule-set s: updated", timeout=5, start=mark), v.logtext())
        self.assertTrue(wait_for(lambda: self.route(v, "127.0.0.1") == "blocked", 3))
        self.assertEqual(self.route(v, "localhost"), "direct")  # a name: ip_cidr does not match
        with open(self.cache_file("s"), "rb") as f:
            self.assertIn(b"127.0.0.0/8", f.read())
        # A connection open across the swap keeps working.
        echo = h.EchoTcp()
        s, code = h.socks5_connect(v.ports["mixed-in"], "localhost", echo.port)
        self.assertEqual(code, 0)
        self.srv.put("set.json", json_set("other.test"))
        self.assertTrue(v.wait_log(r"rule-set s: updated", timeout=5,
                                   start=len(v.logtext())), v.logtext())
        s.sendall(b"ping")
        self.assertEqual(h.recv_exact(s, 4), b"ping")
        s.close()
        echo.stop()

    def test_server_error_and_corrupt_download_keep_the_cache(self):
        self.srv.put("set.json", json_set("localhost"))
        self.srv.put("gh.srs", b"")  # replaced below
        td = testdata_dir()
        srs_name = None
        if td is not None:
            with open(os.path.join(td, "ruleset/meta-rules-dat-sing/geosite/github.srs"), "rb") as f:
                self.srv.put("gh.srs", f.read())
            srs_name = "gh.srs"
        sets = [{"tag": "s", "type": "remote", "url": self.srv.url("set.json"),
                 "update_interval": "1s"}]
        rules = [{"rule_set": ["s"], "outbound": "block"}]
        if srs_name:
            sets.append({"tag": "g", "type": "remote", "format": "binary",
                         "url": self.srv.url(srs_name), "update_interval": "1s"})
            rules.append({"rule_set": ["g"], "outbound": "block"})
        v = self.start(config(sets, rules))
        self.assertEqual(self.route(v, "localhost"), "blocked")
        with open(self.cache_file("s"), "rb") as f:
            cached = f.read()

        # 500: a warning naming the set and the status; the copy in use and the cache stay.
        self.srv.mode = "500"
        mark = len(v.logtext())
        self.assertTrue(v.wait_log(r"WARN rule-set s: update from .* failed: HTTP 500", timeout=5,
                                   start=mark), v.logtext())
        self.assertIn("keeping the copy in use", v.logtext()[mark:])
        self.assertEqual(self.route(v, "localhost"), "blocked")
        with open(self.cache_file("s"), "rb") as f:
            self.assertEqual(f.read(), cached)

        # A corrupt download is parsed before anything is replaced, and refused.
        self.srv.mode = "corrupt"
        self.srv.put("set.json", json_set("other.test"))  # (served corrupted)
        mark = len(v.logtext())
        self.assertTrue(v.wait_log(r"WARN rule-set s: update from .* failed: invalid source rule "
                                   r"set", timeout=10, start=mark), v.logtext())
        if srs_name:
            self.assertTrue(v.wait_log(r"WARN rule-set g: update from .* failed: invalid binary "
                                       r"rule set", timeout=10, start=mark), v.logtext())
            self.assertEqual(self.route(v, "github.com"), "blocked")
        self.assertEqual(self.route(v, "localhost"), "blocked")
        with open(self.cache_file("s"), "rb") as f:
            self.assertEqual(f.read(), cached)

        # Rules that parse but do not compile (a bad regex) are refused too.
        self.srv.mode = ""
        self.srv.put("set.json", json.dumps({"version": 1, "rules": [{"domain_regex": ["(("]}]}))
        mark = len(v.logtext())
        self.assertTrue(v.wait_log(r"WARN rule-set s: update from .* failed", timeout=10,
                                   start=mark), v.logtext())
        self.assertEqual(self.route(v, "localhost"), "blocked")

        # The server recovers: the next refresh succeeds.
        self.srv.put("set.json", json_set("other.test"))
        mark = len(v.logtext())
        self.assertTrue(v.wait_log(r"rule-set s: updated", timeout=10, start=mark), v.logtext())
        self.assertTrue(wait_for(lambda: self.route(v, "localhost") == "direct", 3))

    def test_dns_rules_follow_a_refreshed_set(self):
        from dns_test import answers, query  # noqa: E402 (tests/integration/e2e)
        self.srv.put("d.json", json_set("other.test"))
        sets = [{"tag": "d", "type": "remote", "url": self.srv.url("d.json"),
                 "update_interval": "1s"}]
        cfg = config(sets, [{"inbound": ["dns-in"], "action": "hijack-dns"}])
        cfg["inbounds"].append({"type": "direct", "tag": "dns-in", "listen": "127.0.0.1",
                                "listen_port": 0})
        cfg["dns"] = {"servers": [{"type": "hosts", "tag": "h",
                                   "predefined": {"a.test": "10.1.2.3"}}],
                      "rules": [{"rule_set": "d", "action": "reject"}],
                      "final": "h", "disable_cache": True}
        v = self.start(cfg)

        def ask():
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(2)
            try:
                u.sendto(query("a.test"), ("127.0.0.1", v.ports["dns-in"]))
                return answers(u.recvfrom(4096)[0])[1:]
            finally:
                u.close()

        self.assertEqual(ask(), (0, ["10.1.2.3"]))
        mark = len(v.logtext())
        self.srv.put("d.json", json_set("a.test"))
        self.assertTrue(v.wait_log(r"rule-set d: updated", timeout=5, start=mark), v.logtext())
        self.assertTrue(wait_for(lambda: ask()[0] == 5, 3), ask())  # REFUSED by the DNS rule

    def test_default_cache_directory_is_beside_the_config(self):
        d = tempfile.mkdtemp(prefix="veer-rs-default-")
        try:
            self.srv.put("set.json", json_set("localhost"))
            url = self.srv.url("set.json")
            cfg = config([{"tag": "s", "type": "remote", "url": url}],
                         [{"rule_set": "s", "outbound": "block"}])
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f)
            env = {k: v for k, v in os.environ.items() if k != "VEER_RULE_SET_CACHE"}
            # Run from another working directory: the cache still lands beside the config.
            p = subprocess.Popen([h.VEER, "run", "-c", os.path.join(d, "config.json")],
                                 cwd=self.cache, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            try:
                path = os.path.join(d, "cache", "rule-set", "s.cache")
                self.assertTrue(wait_for(lambda: os.path.exists(path), 10))
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)
            self.assertEqual(os.listdir(self.cache), [])
            r = subprocess.run([h.VEER, "check", "-c", os.path.join(d, "config.json")],
                               capture_output=True, text=True, env=env, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertNotIn("no cached copy", r.stdout)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_check(self):
        d = tempfile.mkdtemp(prefix="veer-rs-check-")
        env = dict(os.environ, **self.env)

        def check(sets, rules=None):
            p = os.path.join(d, "config.json")
            with open(p, "w") as f:
                json.dump(config(sets, rules or []), f)
            r = subprocess.run([h.VEER, "check", "-c", p], capture_output=True, text=True,
                               env=env, timeout=30)
            return r.returncode, r.stdout + r.stderr

        url = self.srv.url("set.json")
        # No cached copy: accepted with a warning (check never downloads).
        rc, out = check([{"tag": "s", "type": "remote", "url": url}], [{"rule_set": "s",
                                                                         "outbound": "block"}])
        self.assertEqual(rc, 0, out)
        self.assertIn("no cached copy yet", out)
        self.assertEqual(self.srv.requests, [])
        # Field errors.
        for bad, msg in [
            ({"tag": "s", "type": "remote"}, "missing rule-set \"url\""),
            ({"tag": "s", "type": "remote", "url": "ftp://x/a.srs"}, "not an http:// or https://"),
            ({"tag": "s", "type": "remote", "url": "http://x/download"}, "missing \"format\""),
            ({"tag": "s", "type": "remote", "url": url, "format": "dsl"}, "unknown format"),
            ({"tag": "s", "type": "remote", "url": url, "download_detour": "nope"},
             "unknown download_detour outbound \"nope\""),
            ({"tag": "s", "type": "remote", "url": url, "update_interval": "soon"},
             "update_interval"),
            ({"tag": "s", "type": "remote", "url": url, "path": "x.json"}, "path"),
            ({"tag": "s", "type": "remote", "url": url, "http_client": {}}, "http_client"),
        ]:
            rc, out = check([bad])
            self.assertEqual(rc, 1, out)
            self.assertIn(msg, out)
        # A damaged cached copy: a warning, it will be downloaded again.
        os.makedirs(self.cache, exist_ok=True)
        with open(self.cache_file("s"), "w") as f:
            f.write('{"url":"%s","format":"source","size":5}\n{oops' % url)
        rc, out = check([{"tag": "s", "type": "remote", "url": url}])
        self.assertEqual(rc, 0, out)
        self.assertIn("cached copy is invalid", out)
        # A good cached copy is validated and used (its rules reach the linter).
        body = json_set("a.test")
        with open(self.cache_file("s"), "w") as f:
            f.write('{"url":"%s","format":"source","size":%d}\n%s' % (url, len(body), body))
        rc, out = check([{"tag": "s", "type": "remote", "url": url}], [{"rule_set": "s",
                                                                         "outbound": "block"}])
        self.assertEqual(rc, 0, out)
        self.assertNotIn("remote rule-set", out)
        shutil.rmtree(d, ignore_errors=True)


def make_ca_and_server_cert(d):
    """A CA and a server certificate for localhost/127.0.0.1 signed by it (openssl CLI)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=d,
                       timeout=60)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=veer test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return [os.path.join(d, n) for n in ("ca.pem", "srv.pem", "srv.key")]


class RemoteRuleSetHttpsTest(unittest.TestCase):
    """https:// rule sets through veer's TLS client; the test's own CA is trusted through
    SSL_CERT_FILE (which replaces the system CAs, as in OpenSSL)."""

    def setUp(self):
        if not os.path.exists(os.path.join(h.SOURCE, "src", "tls", "client.h")):
            self.skipTest("this build has no TLS client (src/tls)")
        if shutil.which("openssl") is None:
            self.skipTest("openssl CLI not found")
        self.dir = tempfile.mkdtemp(prefix="veer-rs-tls-")
        self.ca, cert, key = make_ca_and_server_cert(self.dir)
        self.srv = RuleSetServer(tls=(cert, key))
        self.srv.put("set.json", json_set("localhost"))
        self.cache = os.path.join(self.dir, "cache")
        self.procs = []

    def tearDown(self):
        for v in self.procs:
            check_clean_exit(self, v)
        self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, url, env):
        sets = [{"tag": "s", "type": "remote", "url": url}]
        v = h.Veer(config(sets, [{"rule_set": ["s"], "outbound": "block"}]),
                   env=dict({"VEER_RULE_SET_CACHE": self.cache}, **env))
        self.procs.append(v)
        return v

    def test_https_with_own_ca(self):
        v = self.start(self.srv.url("set.json", host="localhost"), {"SSL_CERT_FILE": self.ca})
        self.assertIn("rule-set s: updated from https://localhost:%d/set.json" % self.srv.port,
                      v.logtext())
        s, code = h.socks5_connect(v.ports["mixed-in"], "localhost", 9)
        s.close()
        self.assertEqual(code, 2)

    def test_https_untrusted_certificate_is_refused(self):
        v = self.start(self.srv.url("set.json", host="localhost"), {"SSL_CERT_FILE": ""})
        log = v.logtext()
        self.assertRegex(log, r"rule-set s: update from https://\S+ failed: .*(certificate|verif)")
        self.assertFalse(os.path.exists(os.path.join(self.cache, "s.cache")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
