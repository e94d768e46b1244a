"""`veer check` and `veer run` on good and bad configs: exit status and positioned errors."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

TYPO = """{
  "inbounds": [
    {
      "type": "mixed",
      "listen": "127.0.0.1",
      "listen_prot": 2080
    }
  ],
  "outbounds": [{"type": "direct", "tag": "direct"}]
}
"""


def veer(*args, cwd=None):
    return subprocess.run([h.VEER] + list(args), capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def write(dirname, name, text):
    p = os.path.join(dirname, name)
    with open(p, "w") as f:
        f.write(text)
    return p


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="veer-check-")

    def test_typo_is_reported_with_position(self):
        p = write(self.dir, "config.json", TYPO)
        r = veer("check", "-c", p)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('%s:6:7: unknown field "listen_prot" at inbounds[0]' % p, r.stdout)
        # The offending line is shown with a caret.
        self.assertIn('"listen_prot": 2080', r.stdout)
        self.assertIn("^", r.stdout)
        r = veer("run", "-c", p)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('unknown field "listen_prot"', r.stderr)

    def test_every_error_is_reported(self):
        cfg = {
            "inbounds": [{"type": "mixed", "listen_port": "2080"}],
            "outbounds": [{"type": "direct", "tag": "direct"}, {"type": "direct", "tag": "direct"}],
            "route": {"rules": [{"domain": "a.com", "outbound": "nope"},
                                {"port": 99999, "outbound": "direct"}],
                      "final": "missing"},
        }
        p = write(self.dir, "c.json", json.dumps(cfg, indent=2))
        r = veer("check", "--json", "-c", p)
        self.assertEqual(r.returncode, 1)
        diags = json.loads(r.stdout)
        codes = [d["code"] for d in diags]
        msgs = " | ".join(d["message"] for d in diags)
        self.assertIn("duplicate outbound tag", msgs)
        self.assertIn('unknown outbound "nope"', msgs)
        self.assertIn('unknown outbound "missing"', msgs)
        self.assertIn("unknown-outbound", codes)
        self.assertTrue(all(d["line"] > 0 for d in diags if d["code"] != "io"), diags)
        self.assertGreaterEqual(len(diags), 5, diags)

    def test_examples_are_clean(self):
        ex = os.path.join(h.SOURCE, "examples")
        found = 0
        for name in sorted(os.listdir(ex)) + ["openwrt/" + f for f in sorted(os.listdir(os.path.join(ex, "openwrt")))]:
            if name.endswith(".json"):
                found += 1
                r = veer("check", "-c", os.path.join(ex, name))
                self.assertEqual(r.returncode, 0, name + ":\n" + r.stdout + r.stderr)
        self.assertGreater(found, 0)

    def test_dsl_error_has_caret(self):
        write(self.dir, "rules.veer", "domain:example.com => direct\nport:[80, => direct\n")
        cfg = {"outbounds": [{"type": "direct", "tag": "direct"}],
               "route": {"rules_file": "rules.veer"}}
        p = write(self.dir, "config.json", json.dumps(cfg))
        r = veer("check", "-c", p)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("rules.veer:2:", r.stdout)
        self.assertIn("port:[80, => direct", r.stdout)

    def test_unknown_rule_set_and_bad_regex(self):
        cfg = {"outbounds": [{"type": "direct", "tag": "direct"}],
               "route": {"rules": [{"rule_set": "nope", "outbound": "direct"},
                                   {"domain_regex": "(", "outbound": "direct"}]}}
        p = write(self.dir, "config.json", json.dumps(cfg))
        r = veer("check", "-c", p)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('unknown rule-set "nope"', r.stdout)

    def test_shadowed_rule_is_a_warning(self):
        cfg = {"outbounds": [{"type": "direct", "tag": "direct"}, {"type": "block", "tag": "block"}],
               "route": {"rules": [{"domain": "a.com", "outbound": "direct"},
                                   {"domain": "a.com", "outbound": "block"}]}}
        p = write(self.dir, "config.json", json.dumps(cfg))
        r = veer("check", "-c", p)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("warning", r.stdout)
        r = veer("check", "--strict", "-c", p)
        self.assertEqual(r.returncode, 1, r.stdout)

    def test_unknown_geosite_category_and_geoip_code(self):
        td = os.environ.get("VEER_TESTDATA") or os.path.join(h.SOURCE, "..", "shared", "testdata")
        db = os.path.join(td, "singbox-db")
        if not os.path.isdir(db):
            self.skipTest("../shared/testdata not found (set VEER_TESTDATA)")
        cfg = {"outbounds": [{"type": "direct", "tag": "direct"}],
               "route": {"geoip": {"path": os.path.join(db, "geoip.db")},
                         "geosite": {"path": os.path.join(db, "geosite.db")},
                         "rules": [{"geosite": ["google", "no-such-category"], "outbound": "direct"},
                                   {"geoip": ["cn", "zz"], "outbound": "direct"}]}}
        p = write(self.dir, "config.json", json.dumps(cfg, indent=2))
        r = veer("check", "--json", "-c", p)
        self.assertEqual(r.returncode, 1, r.stdout)
        msgs = [d["message"] for d in json.loads(r.stdout)]
        self.assertTrue(any('"no-such-category" not found' in m for m in msgs), msgs)
        self.assertTrue(any('unknown geoip code "zz"' in m for m in msgs), msgs)
        self.assertEqual(len(msgs), 2, msgs)  # google and cn are fine

    def test_usage(self):
        self.assertEqual(veer("check").returncode, 2)
        r = veer("check", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--json", r.stdout)
        r = veer("version")
        self.assertEqual(r.returncode, 0)
        self.assertIn("veer version", r.stdout)
        self.assertEqual(veer("frobnicate").returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
