"""`veer geosite ...` and `veer geoip ...` against sing-box's geosite.db / geoip.db and the
expected lookups in testdata/lookups/."""
import glob
import ipaddress
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import cli_common as c  # noqa: E402

MATCH_LINE = re.compile(r"^Match code \((?P<code>[^)]+)\) (?P<type>\w+) (?P<value>.*)$")


class GeositeTest(c.CliTest):
    def setUp(self):
        self.td = c.require_testdata(self)
        self.db = os.path.join(self.td, "singbox-db", "geosite.db")
        self.lookups = c.load_json(os.path.join(self.td, "lookups", "geosite-lookups.json"))
        self.dir = c.tmpdir("geosite")

    def lookup(self, *args):
        r = c.veer("geosite", "lookup", "-f", self.db, *args)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        hits = {}
        for line in r.stdout.splitlines():
            m = MATCH_LINE.match(line)
            self.assertIsNotNone(m, "unexpected line: " + line)
            hits.setdefault(m["code"], set()).add((m["type"], m["value"]))
        self.assertEqual(r.returncode, 0 if hits else 1)
        return hits

    def test_lookup_matches_expected_categories(self):
        checked = set(self.lookups["categories_checked"])
        self.assertTrue(self.lookups["cases"])
        for case in self.lookups["cases"]:
            with self.subTest(domain=case["domain"]):
                hits = self.lookup(case["domain"])
                self.assertEqual(set(hits) & checked, set(case["matching_categories"]))
                self.assertFalse(set(hits) & set(case["non_matching_checked"]))
                for code, by in case.get("matched_by", {}).items():
                    self.assertIn((by["type"], by["value"]), hits[code])

    def test_lookup_one_code(self):
        case = next(x for x in self.lookups["cases"] if x["matching_categories"])
        code = case["matching_categories"][0]
        hits = self.lookup(code, case["domain"])
        self.assertEqual(set(hits), {code})
        miss = next(x for x in self.lookups["cases"] if code in x["non_matching_checked"])
        self.assertEqual(self.lookup(code, miss["domain"]), {})
        r = c.veer("geosite", "lookup", "-f", self.db, "no-such-code", case["domain"])
        self.assertEqual(r.returncode, 1)
        self.assertIn('"no-such-code" not found', r.stderr)

    def test_list_counts_agree_with_export(self):
        r = self.run_ok("geosite", "list", "-f", self.db)
        counts = {}
        for line in r.stdout.splitlines():
            m = re.match(r"^(\S+) \((\d+)\)$", line)
            self.assertIsNotNone(m, line)
            counts[m[1]] = int(m[2])
        self.assertEqual(list(counts), sorted(counts))
        for code in self.lookups["categories_checked"]:
            self.assertIn(code, counts)
        for code in ("google", "cn", "private"):
            out = os.path.join(self.dir, code + ".json")
            self.run_ok("geosite", "export", "-f", self.db, code, "-o", out)
            rules = c.load_json(out)["rules"]
            self.assertEqual(len(rules), 1)
            n = sum(len(v) if isinstance(v, list) else 1 for v in rules[0].values())
            self.assertEqual(n, counts[code], code)

    def test_export_equals_singbox_rule_set(self):
        # sing-geosite publishes one .srs per code, built from the same geosite.db: exporting
        # a code and compiling it gives the same rules.
        srs_files = sorted(glob.glob(os.path.join(self.td, "ruleset", "sing-geosite-rule-set",
                                                  "geosite-*.srs")))
        self.assertGreaterEqual(len(srs_files), 5)
        for srs in srs_files:
            code = os.path.basename(srs)[len("geosite-"):-len(".srs")]
            with self.subTest(code=code):
                src = os.path.join(self.dir, "export-" + code + ".json")
                self.run_ok("geosite", "export", "-f", self.db, code, "-o", src)
                self.assertEqual(c.load_json(src)["version"], 1)
                out = os.path.join(self.dir, "export-" + code + ".srs")
                self.run_ok("rule-set", "compile", "-o", out, src)
                mine = self.run_ok("rule-set", "decompile", "-o", "-", out).stdout
                theirs = self.run_ok("rule-set", "decompile", "-o", "-", srs).stdout
                self.assertEqual(json.loads(mine), json.loads(theirs))

    def test_export_default_output_name(self):
        self.run_ok("geosite", "export", "-f", self.db, "telegram", cwd=self.dir)
        doc = c.load_json(os.path.join(self.dir, "geosite-telegram.json"))
        self.assertTrue(doc["rules"][0]["domain_suffix"])
        r = c.veer("rule-set", "match", os.path.join(self.dir, "geosite-telegram.json"), "t.me")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_compile_text_lists_reproduces_geosite_db(self):
        data = os.path.join(self.td, "geosite-text", "dlc-20241007", "data")
        if not os.path.isdir(data):
            self.skipTest("no domain-list-community data in testdata")
        out = os.path.join(self.dir, "compiled.db")
        r = self.run_ok("geosite", "compile", data, "-o", out)
        self.assertIn("codes", r.stderr)
        mine = self.run_ok("geosite", "list", "-f", out).stdout
        theirs = self.run_ok("geosite", "list", "-f", self.db).stdout
        self.assertEqual(mine, theirs)
        for case in self.lookups["cases"][:5]:
            r1 = c.veer("geosite", "lookup", "-f", out, case["domain"])
            r2 = c.veer("geosite", "lookup", "-f", self.db, case["domain"])
            self.assertEqual(r1.stdout, r2.stdout)

    def test_errors_and_usage(self):
        r = c.veer("geosite", "list", "-f", os.path.join(self.dir, "missing.db"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.db", r.stderr)
        bad = c.write(self.dir, "bad.db", "\x00\x05garbage")
        self.assertEqual(c.veer("geosite", "list", "-f", bad).returncode, 1)
        r = c.veer("geosite", "compile", os.path.join(self.dir, "nodir"), "-o",
                   os.path.join(self.dir, "x.db"))
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "x.db")))
        for args in (["geosite"], ["geosite", "nope"], ["geosite", "lookup", "-f", self.db],
                     ["geosite", "compile", self.dir], ["geosite", "export", "-f", self.db],
                     ["geosite", "list", "--bogus"]):
            with self.subTest(args=args):
                r = c.veer(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("Usage: veer geosite", r.stderr)
        for sub in ("list", "lookup", "export", "compile"):
            r = c.veer("geosite", sub, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage: veer geosite " + sub, r.stdout)


class GeoipTest(c.CliTest):
    def setUp(self):
        self.td = c.require_testdata(self)
        self.cases = [x for x in c.load_json(os.path.join(self.td, "lookups",
                                                          "geoip-lookups.json"))["cases"]
                      if x["db"].startswith("singbox-db/")]

    def test_lookups(self):
        self.assertGreaterEqual(len(self.cases), 5)
        for case in self.cases:
            db = os.path.join(self.td, case["db"])
            with self.subTest(db=case["db"], ip=case["ip"]):
                addr = ipaddress.ip_address(case["ip"])
                # sing-box's CLI says "private" for non-public addresses without a lookup.
                if addr.is_private or addr.is_loopback or addr.is_link_local:
                    want = "private"
                elif case["expected"] is None:
                    want = "unknown"
                else:
                    want = case["expected"].lower()
                r = self.run_ok("geoip", "lookup", "-f", db, case["ip"])
                self.assertEqual(r.stdout, want + "\n")

    def test_private_and_unknown(self):
        db = os.path.join(self.td, "singbox-db", "geoip.db")
        for ip in ("10.1.2.3", "192.168.0.1", "fe80::1", "::1", "::ffff:192.168.1.1"):
            self.assertEqual(self.run_ok("geoip", "lookup", "-f", db, ip).stdout, "private\n")
        cn_only = os.path.join(self.td, "singbox-db", "geoip-cn.db")
        self.assertEqual(self.run_ok("geoip", "lookup", "-f", cn_only, "1.1.1.1").stdout,
                         "unknown\n")
        self.assertEqual(self.run_ok("geoip", "lookup", "-f", cn_only, "::ffff:114.114.114.114")
                         .stdout, "cn\n")

    def test_list(self):
        db = os.path.join(self.td, "singbox-db", "geoip.db")
        codes = self.run_ok("geoip", "list", "-f", db).stdout.split()
        self.assertEqual(codes, sorted(codes))
        for case in self.cases:
            if case["db"] == "singbox-db/geoip.db" and case["expected"]:
                self.assertIn(case["expected"].lower(), codes)
        self.assertEqual(self.run_ok("geoip", "list", "-f", os.path.join(
            self.td, "singbox-db", "geoip-cn.db")).stdout.split(), ["cn"])
        # A GeoLite2-style database does not list its codes: an error, not empty output.
        country = os.path.join(self.td, "mmdb", "maxmind-test-data", "GeoLite2-Country-Test.mmdb")
        if os.path.exists(country):
            r = c.veer("geoip", "list", "-f", country)
            self.assertEqual(r.returncode, 1)
            self.assertIn("does not list", r.stderr)
            self.assertEqual(self.run_ok("geoip", "lookup", "-f", country, "81.2.69.160").stdout,
                             "gb\n")

    def test_errors_and_usage(self):
        db = os.path.join(self.td, "singbox-db", "geoip.db")
        r = c.veer("geoip", "lookup", "-f", "/nonexistent/geoip.db", "8.8.8.8")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/geoip.db", r.stderr)
        for args in (["geoip"], ["geoip", "nope"], ["geoip", "lookup", "-f", db],
                     ["geoip", "lookup", "-f", db, "not-an-ip"], ["geoip", "list", "x"]):
            with self.subTest(args=args):
                r = c.veer(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("Usage: veer geoip", r.stderr)
        self.assertEqual(c.veer("geoip", "lookup", "--help").returncode, 0)


if __name__ == "__main__":
    unittest.main()
