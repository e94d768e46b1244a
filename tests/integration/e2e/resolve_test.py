"""IP rules and domain destinations: sing-box semantics by default (an ip_cidr rule does not
match a name), the `resolve` action, and veer's route.resolve_on_demand (the name is resolved
when an IP rule is reached, and the addresses are reused for the dial)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

LOOPBACK = ["127.0.0.0/8", "::1/128"]


class ResolveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = h.HttpServer()

    @classmethod
    def tearDownClass(cls):
        cls.http.stop()

    def outcome(self, rules, **route):
        cfg = h.base_config(extra_rules=rules)
        cfg["route"].update(route)
        v = h.Veer(cfg)
        try:
            s, code = h.socks5_connect(v.ports["mixed-in"], "localhost", self.http.port)
            if code == 0:
                status, _, _ = h.http_get_raw(s, "localhost:%d" % self.http.port, "/",
                                              absolute=False)
                code = status
            s.close()
            return code, v.logtext()
        finally:
            self.assertEqual(v.stop(), 0)

    def test_ip_rule_does_not_match_a_name_by_default(self):
        code, _ = self.outcome([{"ip_cidr": LOOPBACK, "action": "reject"}])
        self.assertEqual(code, 200)

    def test_resolve_action_lets_ip_rules_match(self):
        code, log = self.outcome([{"action": "resolve"},
                                  {"ip_cidr": LOOPBACK, "action": "reject"}])
        self.assertEqual(code, 2)  # SOCKS "not allowed by ruleset"
        self.assertIn("rejected by rule[2]", log)

    def test_resolve_on_demand(self):
        code, log = self.outcome([{"domain": ["other.test"], "outbound": "direct"},
                                  {"ip_cidr": LOOPBACK, "action": "reject"}],
                                 resolve_on_demand=True)
        self.assertEqual(code, 2)
        self.assertIn("rejected by rule[2]", log)

    def test_name_resolved_on_demand_but_not_matched_is_still_dialed(self):
        code, log = self.outcome([{"ip_cidr": ["192.0.2.0/24"], "action": "reject"}],
                                 resolve_on_demand=True)
        self.assertEqual(code, 200)  # resolved, not matched, then dialed


if __name__ == "__main__":
    unittest.main(verbosity=2)
