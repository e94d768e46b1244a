"""`veer rule-set compile|decompile|format|match` against sing-box's own .json/.srs pairs."""
import glob
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import cli_common as c  # noqa: E402


def pairs(td):
    """Every (source .json, sing-box .srs) pair of meta-rules-dat's sing branch."""
    out = []
    for j in sorted(glob.glob(os.path.join(td, "ruleset", "meta-rules-dat-sing", "*", "*.json"))):
        s = j[:-5] + ".srs"
        if os.path.exists(s):
            out.append((j, s))
    return out


class RuleSetRealDataTest(c.CliTest):
    def setUp(self):
        self.td = c.require_testdata(self)
        self.dir = c.tmpdir("ruleset")

    def decompile(self, srs):
        r = self.run_ok("rule-set", "decompile", "-o", "-", srs)
        return json.loads(r.stdout)

    def test_compile_then_decompile_equals_singbox_srs(self):
        ps = pairs(self.td)
        self.assertGreaterEqual(len(ps), 20)
        for src, srs in ps:
            with self.subTest(src=os.path.relpath(src, self.td)):
                out = os.path.join(self.dir, os.path.basename(os.path.dirname(src)) + "-" +
                                   os.path.basename(src)[:-5] + ".srs")
                self.run_ok("rule-set", "compile", "-o", out, src)
                mine = self.decompile(out)
                theirs = self.decompile(srs)
                self.assertEqual(mine["rules"], theirs["rules"])
                self.assertEqual(mine["version"], theirs["version"])
                self.assertTrue(theirs["rules"], "sing-box's set decompiled to no rules")

    def test_decompile_to_default_path(self):
        src, srs = pairs(self.td)[0]
        copy = os.path.join(self.dir, "copy.srs")
        with open(srs, "rb") as f, open(copy, "wb") as g:
            g.write(f.read())
        self.run_ok("rule-set", "decompile", copy)
        decoded = c.load_json(os.path.join(self.dir, "copy.json"))
        self.assertEqual(decoded, self.decompile(srs))

    def test_lookups_match_json_and_srs(self):
        cases = c.load_json(os.path.join(self.td, "lookups", "ruleset-lookups.json"))["cases"]
        self.assertTrue(cases)
        for case in cases:
            target = case.get("domain") or case.get("ip")
            for key in ("ruleset_json", "ruleset_srs"):
                path = os.path.join(self.td, case[key])
                with self.subTest(file=case[key], target=target):
                    r = c.veer("rule-set", "match", path, target)
                    self.assertEqual(r.returncode, 0 if case["expected_match"] else 1,
                                     r.stdout + r.stderr)
                    lines = [l for l in r.stdout.splitlines() if l.startswith("match rules.[")]
                    self.assertEqual(bool(lines), case["expected_match"], r.stdout)
                    self.assertEqual(r.stderr, "")

    def test_match_format_flag_overrides_extension(self):
        case = c.load_json(os.path.join(self.td, "lookups", "ruleset-lookups.json"))["cases"][0]
        src = os.path.join(self.td, case["ruleset_srs"])
        renamed = os.path.join(self.dir, "set.bin")
        with open(src, "rb") as f, open(renamed, "wb") as g:
            g.write(f.read())
        r = c.veer("rule-set", "match", renamed, case["domain"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot tell the format", r.stderr)
        r = c.veer("rule-set", "match", "-f", "binary", renamed, case["domain"])
        self.assertEqual(r.returncode, 0 if case["expected_match"] else 1, r.stdout + r.stderr)
        # Read as JSON, the binary file is a syntax error, not a silent non-match.
        r = c.veer("rule-set", "match", "-f", "source", src, case["domain"])
        self.assertEqual(r.returncode, 1)
        self.assertNotEqual(r.stderr, "")


DSL_SET = """# a rule set in the veer DSL
domain_suffix:[example.com, example.org]
domain_keyword:tracker
ip_cidr:[10.0.0.0/8, 2001:db8::/32]
domain:exact.test && port:443
"""


class RuleSetDslAndFormatTest(c.CliTest):
    def setUp(self):
        self.dir = c.tmpdir("ruleset-dsl")

    def test_dsl_compiles_to_the_same_rules_as_json(self):
        src = c.write(self.dir, "set.veer", DSL_SET)
        self.run_ok("rule-set", "compile", src)  # default output: set.srs
        out = os.path.join(self.dir, "set.srs")
        self.assertTrue(os.path.exists(out))
        r = self.run_ok("rule-set", "decompile", "-o", "-", out)
        rules = json.loads(r.stdout)["rules"]
        self.assertEqual(rules, [
            {"domain_suffix": ["example.com", "example.org"]},
            {"domain_keyword": "tracker"},
            {"ip_cidr": ["10.0.0.0/8", "2001:db8::/32"]},
            {"domain": "exact.test", "port": 443},
        ])
        # The same rules written as sing-box JSON compile to the same binary payload's rules.
        js = c.write(self.dir, "set.json", json.dumps({"version": 3, "rules": rules}))
        self.run_ok("rule-set", "compile", "-o", os.path.join(self.dir, "fromjson.srs"), js)
        r2 = self.run_ok("rule-set", "decompile", "-o", "-", os.path.join(self.dir, "fromjson.srs"))
        self.assertEqual(json.loads(r2.stdout)["rules"], rules)

    def test_match_dsl_and_srs(self):
        src = c.write(self.dir, "set.veer", DSL_SET)
        self.run_ok("rule-set", "compile", "-o", os.path.join(self.dir, "set.srs"), src)
        for f in (src, os.path.join(self.dir, "set.srs")):
            r = c.veer("rule-set", "match", f, "WWW.Example.ORG.")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("match rules.[0]: ", r.stdout)
            self.assertIn('domain_suffix "example.org"', r.stdout)
            r = c.veer("rule-set", "match", f, "10.1.2.3")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertRegex(r.stdout, r"(?m)^match rules\.\[2\]: ip_cidr")
            # No port is given, so the port-bound rule never matches.
            r = c.veer("rule-set", "match", f, "exact.test")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertEqual(r.stdout, "")
            r = c.veer("rule-set", "match", f, "example.net")
            self.assertEqual(r.returncode, 1)

    def test_every_matching_rule_is_printed(self):
        src = c.write(self.dir, "two.veer", "domain_suffix:a.test\ndomain_keyword:b\ndomain:x.test\n")
        r = c.veer("rule-set", "match", src, "b.a.test")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([l.split(":")[0] for l in r.stdout.splitlines()
                          if l.startswith("match")], ["match rules.[0]", "match rules.[1]"])

    def test_format_json_is_canonical_and_idempotent(self):
        messy = """// comment
{ "rules": [ {"port": [443], "domain": ["b.test"], },
             {"type": "logical", "mode": "or", "rules": [{"domain_suffix": "x.test"},
                                                          {"ip_cidr": "10.0.0.1"}]} ],
  "version": 2 }
"""
        p = c.write(self.dir, "messy.json", messy)
        r = self.run_ok("rule-set", "format", p)
        once = r.stdout
        doc = json.loads(once)
        self.assertEqual(list(doc), ["version", "rules"])
        self.assertEqual(doc["rules"][0], {"domain": "b.test", "port": 443})
        self.assertEqual(doc["rules"][1]["type"], "logical")
        p2 = c.write(self.dir, "once.json", once)
        self.assertEqual(self.run_ok("rule-set", "format", p2).stdout, once)
        # -w rewrites in place and prints nothing.
        r = self.run_ok("rule-set", "format", "-w", p)
        self.assertEqual(r.stdout, "")
        with open(p) as f:
            self.assertEqual(f.read(), once)

    def test_format_dsl_rule_set_and_route_file(self):
        p = c.write(self.dir, "set.veer",
                    "  domain_suffix: [ b.com,a.com ]   # comment\n\nport:443&&domain:x.test\n")
        r = self.run_ok("rule-set", "format", p)
        self.assertEqual(r.stdout, "domain_suffix:[b.com, a.com]\ndomain:x.test && port:443\n")
        p2 = c.write(self.dir, "formatted.veer", r.stdout)
        self.assertEqual(self.run_ok("rule-set", "format", p2).stdout, r.stdout)
        route = c.write(self.dir, "rules.veer",
                        "geoip:cn||geosite:cn=>direct\nfinal=>proxy # the rest\n")
        self.run_ok("rule-set", "format", "-w", route)
        with open(route) as f:
            text = f.read()
        self.assertIn("=> direct\n", text)
        self.assertTrue(text.endswith('final => "proxy"\n') or text.endswith("final => proxy\n"),
                        text)

    def test_errors_and_usage(self):
        bad = c.write(self.dir, "bad.json", '{"version": 2, "rules": [{"domian": "a.com"}]}')
        r = c.veer("rule-set", "compile", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn(bad + ":1:", r.stderr)
        self.assertIn('unknown field "domian"', r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "bad.srs")))
        dsl = c.write(self.dir, "bad.veer", "domain_suffix:[a.com\nport:99999\n")
        r = c.veer("rule-set", "compile", dsl)
        self.assertEqual(r.returncode, 1)
        self.assertIn(dsl + ":1:", r.stderr)
        self.assertIn(dsl + ":2:", r.stderr)
        self.assertIn("^", r.stderr)
        regex = c.write(self.dir, "regex.json", '{"version": 2, "rules": [{"domain_regex": "(["}]}')
        r = c.veer("rule-set", "compile", regex)
        self.assertEqual(r.returncode, 1)
        self.assertIn("regex", r.stderr)
        r = c.veer("rule-set", "decompile", os.path.join(self.dir, "missing.srs"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.srs", r.stderr)
        notsrs = c.write(self.dir, "not.srs", "hello")
        r = c.veer("rule-set", "decompile", notsrs)
        self.assertEqual(r.returncode, 1)
        for args in (["rule-set"], ["rule-set", "nope"], ["rule-set", "compile"],
                     ["rule-set", "compile", "--bogus", bad], ["rule-set", "match", bad],
                     ["rule-set", "compile", "-o"]):
            with self.subTest(args=args):
                r = c.veer(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("Usage: veer rule-set", r.stderr)
        for sub in ("compile", "decompile", "format", "match"):
            r = c.veer("rule-set", sub, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage: veer rule-set " + sub, r.stdout)

    def test_geodata_build_script(self):
        # geodata/build.sh compiles the shipped sources with the CLI and checks the round trip.
        out = os.path.join(self.dir, "geodata-out")
        import subprocess
        r = subprocess.run(["sh", os.path.join(c.SOURCE, "geodata", "build.sh"), c.VEER, out],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "private.srs")))
        r = c.veer("rule-set", "match", os.path.join(out, "private.srs"), "192.168.1.1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = c.veer("rule-set", "match", os.path.join(out, "private.srs"), "8.8.8.8")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
