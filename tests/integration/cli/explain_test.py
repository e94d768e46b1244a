"""`veer route explain` on configs written here: JSON rules and the same rules in the DSL,
with rule sets (JSON, DSL, inline), logical rules and non-final actions."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import cli_common as c  # noqa: E402

OUTBOUNDS = [{"type": "direct", "tag": "direct"}, {"type": "direct", "tag": "proxy"},
             {"type": "block", "tag": "block"}]

RULE_SETS = [
    {"tag": "ads", "type": "local", "path": "ads.veer"},
    {"tag": "streaming", "type": "local", "path": "streaming.json"},
    {"tag": "lan", "type": "inline", "rules": [{"ip_cidr": ["192.168.0.0/16", "10.0.0.0/8"]}]},
]

JSON_RULES = [
    {"protocol": "dns", "action": "hijack-dns"},                                      # 0
    {"action": "sniff"},                                                               # 1
    {"rule_set": "ads", "action": "reject"},                                           # 2
    {"type": "logical", "mode": "and",                                                 # 3
     "rules": [{"domain_suffix": "example.com"}, {"port": 443}], "outbound": "proxy"},
    {"rule_set": "lan", "outbound": "direct"},                                         # 4
    {"domain_keyword": "video", "action": "route-options", "override_port": 8443},     # 5
    {"rule_set": "streaming", "network": "tcp", "outbound": "proxy"},                  # 6
    {"network": "udp", "port": 443, "action": "reject", "method": "drop"},             # 7
    {"type": "logical", "mode": "or",                                                  # 8
     "rules": [{"inbound": "guest-in"}, {"auth_user": "kid"}], "outbound": "block"},
]

# The same rules in the DSL (route.rules_file), line for line.
DSL_RULES = """# the same rules as JSON_RULES
protocol:dns => hijack-dns
any => sniff
rule_set:ads => reject
domain_suffix:example.com && (port:443 || port:443) => proxy
rule_set:lan => direct
domain_keyword:video => route-options(override_port=8443)
rule_set:streaming && network:tcp => proxy
network:udp && port:443 => reject(drop)
inbound:guest-in || auth_user:kid => block
final => proxy
"""

ADS = "domain_suffix:ads.test\ndomain_keyword:tracker\n"
STREAMING = json.dumps({"version": 2, "rules": [{"domain_suffix": ["video.test", "tv.test"]}]})


class ExplainTest(c.CliTest):
    def write_config(self, form):
        d = c.tmpdir("explain-" + form)
        c.write(d, "ads.veer", ADS)
        c.write(d, "streaming.json", STREAMING)
        route = {"rule_set": RULE_SETS}
        if form == "json":
            route["rules"] = JSON_RULES
            route["final"] = "proxy"
        else:
            c.write(d, "rules.veer", DSL_RULES)
            route["rules_file"] = "rules.veer"
        cfg = {"inbounds": [{"type": "mixed", "tag": "mixed-in", "listen_port": 0},
                            {"type": "mixed", "tag": "guest-in", "listen_port": 0}],
               "outbounds": OUTBOUNDS, "route": route}
        c.write(d, "config.json", json.dumps(cfg, indent=2))
        r = c.veer("check", "-c", "config.json", cwd=d)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return d

    def explain(self, d, *args):
        r = self.run_ok("route", "explain", "-c", "config.json", "--json", *args, cwd=d)
        return json.loads(r.stdout)

    def both(self):
        return [(form, self.write_config(form)) for form in ("json", "dsl")]

    def test_decisions(self):
        cases = [
            # (args, action, outbound, rule)
            (["--domain", "www.example.com", "--port", "443"], "route", "proxy", 3),
            (["--domain", "www.example.com", "--port", "80"], "route", "proxy", None),
            (["--domain", "x.ads.test", "--port", "443"], "reject", None, 2),
            (["--domain", "my-tracker.net"], "reject", None, 2),
            (["--ip", "192.168.1.10", "--port", "22"], "route", "direct", 4),
            (["--domain", "www.video.test", "--port", "443"], "route", "proxy", 6),
            (["--domain", "www.video.test", "--port", "443", "--network", "udp"],
             "reject", None, 7),
            (["--ip", "8.8.8.8", "--port", "53", "--protocol", "dns"], "hijack-dns", None, 0),
            (["--ip", "1.1.1.1", "--port", "80", "--inbound", "guest-in"], "route", "block", 8),
            (["--ip", "1.1.1.1", "--port", "80", "--user", "kid"], "route", "block", 8),
            (["--ip", "1.1.1.1", "--port", "80", "--inbound", "mixed-in"], "route", "proxy", None),
            # A sniffed domain on an IP connection: domain rules see it, IP rules the address.
            (["--ip", "10.0.0.1", "--domain", "a.ads.test", "--port", "443"], "reject", None, 2),
        ]
        for form, d in self.both():
            for args, action, outbound, rule in cases:
                with self.subTest(form=form, args=args):
                    doc = self.explain(d, *args)
                    self.assertEqual(doc["action"], action)
                    self.assertEqual(doc["outbound"], outbound)
                    self.assertEqual(doc["rule"], rule)
                    self.assertEqual(doc["final"], rule is None)
                    last = doc["steps"][-1]
                    if rule is None:
                        self.assertFalse(last["matched"])
                        self.assertEqual(len(doc["steps"]), len(JSON_RULES))
                    else:
                        self.assertEqual(last["index"], rule)
                        self.assertTrue(last["matched"])
                        self.assertTrue(last["detail"])
                    # Every rule up to the decision was tried, in order.
                    self.assertEqual([s["index"] for s in doc["steps"]],
                                     list(range(len(doc["steps"]))))

    def test_steps_name_positions_fields_and_non_final_actions(self):
        for form, d in self.both():
            with self.subTest(form=form):
                doc = self.explain(d, "--domain", "cdn.video.test", "--port", "443")
                steps = doc["steps"]
                self.assertEqual(doc["rule"], 6)
                self.assertEqual(doc["outbound"], "proxy")
                # The sniff rule matched, was passed through, and said so.
                self.assertTrue(steps[1]["matched"])
                self.assertEqual(steps[1]["action"], "sniff")
                self.assertIn("not carried out", steps[1]["note"])
                # route-options: matched, collected, matching went on.
                self.assertTrue(steps[5]["matched"])
                self.assertIn('domain_keyword "video"', steps[5]["detail"])
                self.assertEqual(doc["route_options"], {"override_port": 8443})
                # The rule set names the set and the item that matched.
                self.assertIn("streaming", steps[6]["detail"])
                self.assertIn('"video.test"', steps[6]["detail"])
                if form == "json":
                    self.assertEqual(steps[6]["file"], "config.json")
                    self.assertEqual(steps[6]["path"], "route.rules[6]")
                else:
                    self.assertEqual(steps[6]["file"], "rules.veer")
                    self.assertEqual((steps[6]["line"], steps[6]["column"]), (8, 1))
                self.assertFalse(steps[0]["matched"])
                self.assertIsNone(steps[0]["detail"])

    def test_human_output(self):
        d = self.write_config("dsl")
        r = self.run_ok("route", "explain", "-c", "config.json", "--domain", "www.example.com",
                        "--port", "443", cwd=d)
        out = r.stdout
        self.assertIn("#0 rules.veer:2:1: protocol=dns => hijack-dns\n    no match\n", out)
        self.assertIn("#1 rules.veer:3:1: ", out)
        self.assertIn("not carried out by explain", out)
        self.assertIn("#3 rules.veer:5:1: ", out)
        self.assertIn('domain_suffix "example.com"', out)
        self.assertTrue(out.endswith('decision: route to outbound "proxy" (rule #3)\n'), out)
        self.assertNotIn("#4 ", out)
        r = self.run_ok("route", "explain", "-c", "config.json", "--ip", "1.1.1.1", cwd=d)
        self.assertIn('decision: no rule matched: route to the final outbound "proxy" '
                      "(final at rules.veer:11:1)", r.stdout)
        r = self.run_ok("route", "explain", "-c", "config.json", "--domain", "a.ads.test", cwd=d)
        self.assertIn("decision: reject, method default (rule #2)", r.stdout)

    def test_final_is_first_outbound_without_route_final(self):
        d = c.tmpdir("explain-final")
        c.write(d, "config.json", json.dumps({
            "outbounds": [{"type": "direct", "tag": "out-a"}, {"type": "block", "tag": "out-b"}],
            "route": {"rules": [{"domain": "b.test", "outbound": "out-b"}]}}))
        doc = self.explain(d, "--domain", "a.test")
        self.assertEqual((doc["outbound"], doc["rule"], doc["final"]), ("out-a", None, True))
        self.assertIn("first outbound", doc["final_source"])
        doc = self.explain(d, "--domain", "B.TEST.")
        self.assertEqual((doc["outbound"], doc["rule"], doc["final"]), ("out-b", 0, False))

    def test_geodata_rules(self):
        td = c.require_testdata(self)
        d = c.tmpdir("explain-geo")
        c.write(d, "config.json", json.dumps({
            "outbounds": OUTBOUNDS,
            "route": {"geosite": {"path": os.path.join(td, "singbox-db", "geosite.db")},
                      "geoip": {"path": os.path.join(td, "singbox-db", "geoip.db")},
                      "rules": [{"geosite": ["google"], "outbound": "proxy"},
                                {"geoip": ["cn"], "outbound": "direct"}],
                      "final": "block"}}))
        doc = self.explain(d, "--domain", "www.google.com", "--port", "443")
        self.assertEqual((doc["outbound"], doc["rule"]), ("proxy", 0))
        self.assertIn("geosite:google", doc["steps"][0]["detail"])
        doc = self.explain(d, "--ip", "114.114.114.114")
        self.assertEqual((doc["outbound"], doc["rule"]), ("direct", 1))
        doc = self.explain(d, "--ip", "8.8.8.8")
        self.assertEqual((doc["outbound"], doc["rule"], doc["final"]), ("block", None, True))

    def test_errors_and_usage(self):
        d = self.write_config("json")
        for args in ([], ["-c", "config.json"], ["-c", "config.json", "--domain", "a",
                                                 "--network", "sctp"],
                     ["-c", "config.json", "--ip", "nope"],
                     ["-c", "config.json", "--domain", "a", "--port", "70000"],
                     ["-c", "config.json", "--domain", "a", "--source", "x:y"],
                     ["-c", "config.json", "--domain", "a", "extra"]):
            with self.subTest(args=args):
                r = c.veer("route", "explain", *args, cwd=d)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("Usage: veer route explain", r.stderr)
        self.assertEqual(c.veer("route").returncode, 2)
        self.assertEqual(c.veer("route", "explain", "--help").returncode, 0)
        c.write(d, "broken.json", '{"outbounds": [{"type": "direct", "tag": "x"}],'
                                  ' "route": {"rules": [{"domain": "a", "outbound": "nope"}]}}')
        r = c.veer("route", "explain", "-c", "broken.json", "--domain", "a", cwd=d)
        self.assertEqual(r.returncode, 1)
        self.assertIn('"nope"', r.stderr)
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main()
