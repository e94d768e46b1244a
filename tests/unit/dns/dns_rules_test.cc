// DNS rules through the rule engine: DnsRules on its own (matching, errors with positions) and
// DnsRouter with compiled rules (rule sets, actions, the `outbound` item). No network: the
// servers are in-process hosts/rcode servers.
#include <gtest/gtest.h>

#include "dns/dns_rules.h"
#include "loop_fixture.h"
#include "rules/ruleset_json.h"

namespace veer::dns::test {
namespace {

rules::RuleSetMap ruleSets(std::initializer_list<std::pair<const char*, const char*>> sets) {
  rules::RuleSetMap out;
  for (const auto& [tag, text] : sets) {
    auto spec = rules::readRuleSetJson(text, std::string(tag) + ".json");
    EXPECT_TRUE(spec.has_value()) << (spec ? "" : spec.error().message());
    if (spec) out[tag] = std::move(spec->rules);
  }
  return out;
}

std::shared_ptr<const DnsRules> compile(const std::string& rules_json,
                                        const rules::RuleSetMap& sets, DiagList& diags) {
  json::Value v = parseJson(rules_json);
  return DnsRules::compile(&v, "test.json", sets, {}, diags);
}

// Index of the matching rule, or -1.
int matchIndex(const DnsRules& r, std::string_view domain, uint16_t type = rrtype::kA,
               std::string_view inbound = "", std::string_view outbound = "") {
  auto m = r.match(QueryInfo{domain, type, inbound, outbound});
  return m ? static_cast<int>(m->index) : -1;
}

TEST(DnsRules, FieldsOfTheRuleModel) {
  DiagList d;
  auto sets = ruleSets({{"ads", R"({"version": 2, "rules": [{"domain_suffix": "ads.test"},
                                                            {"domain_keyword": "tracker"}]})"}});
  auto r = compile(R"([
    {"rule_set": "ads", "action": "reject"},
    {"domain_regex": "^cdn[0-9]+\\.", "server": "cdn"},
    {"type": "logical", "mode": "and", "rules": [{"domain_suffix": "corp.test"},
                                                   {"query_type": "AAAA", "invert": true}],
     "server": "corp"},
    {"domain": ["exact.test"], "query_type": ["A", 28], "server": "exact"},
    {"inbound": "lan-dns", "server": "lan"},
    {"domain_suffix": "never.test", "invert": true, "server": "not-never"}
  ])", sets, d);
  ASSERT_NE(r, nullptr) << describe(d);
  EXPECT_EQ(matchIndex(*r, "x.ads.test"), 0);
  EXPECT_EQ(matchIndex(*r, "mytracker.example"), 0);
  EXPECT_EQ(matchIndex(*r, "cdn12.example"), 1);
  EXPECT_EQ(matchIndex(*r, "www.corp.test", rrtype::kA), 2);
  EXPECT_EQ(matchIndex(*r, "www.corp.test", rrtype::kAaaa), 5);  // inner invert excludes AAAA
  EXPECT_EQ(matchIndex(*r, "exact.test", rrtype::kAaaa), 3);
  EXPECT_EQ(matchIndex(*r, "exact.test", 16 /* TXT */), 5);
  EXPECT_EQ(matchIndex(*r, "never.test", rrtype::kA, "lan-dns"), 4);
  EXPECT_EQ(matchIndex(*r, "never.test"), -1);
  EXPECT_EQ(matchIndex(*r, "a.never.test"), -1);
  EXPECT_EQ(matchIndex(*r, "other.test"), 5);
  EXPECT_EQ(r->spec(0).action->type, rules::RuleAction::Type::Reject);
  EXPECT_EQ(r->spec(1).action->resolve_server, "cdn");  // the legacy {"server": ...} form
}

TEST(DnsRules, OutboundItem) {
  DiagList d;
  auto r = compile(R"([
    {"outbound": "any", "domain_suffix": "proxy.test", "server": "a"},
    {"outbound": ["direct"], "server": "b"},
    {"outbound": "direct", "invert": true, "domain": "x.test", "server": "c"}
  ])", {}, d);
  ASSERT_NE(r, nullptr) << describe(d);
  EXPECT_EQ(matchIndex(*r, "s.proxy.test", rrtype::kA, "", "proxy"), 0);
  EXPECT_EQ(matchIndex(*r, "s.proxy.test", rrtype::kA, "", "direct"), 0);
  // No outbound (a hijacked query, the resolve action): `any` does not match.
  EXPECT_EQ(matchIndex(*r, "s.proxy.test"), 2);
  EXPECT_EQ(matchIndex(*r, "other.test", rrtype::kA, "", "direct"), 1);
  // Rule 2 is !(domain x.test && outbound direct): true unless both hold.
  EXPECT_EQ(matchIndex(*r, "x.test", rrtype::kA, "", "proxy"), 2);
  EXPECT_EQ(matchIndex(*r, "y.test", rrtype::kA, "", "proxy"), 2);
  EXPECT_EQ(matchIndex(*r, "x.test", rrtype::kA, "", "direct"), 1);
  EXPECT_NE(r->describe(0).find("outbound=[any]"), std::string::npos) << r->describe(0);
}

TEST(DnsRules, ErrorsCarryPositions) {
  DiagList d;
  auto r = compile(R"([
    {"domain": "a.test", "server": "x"},
    {"ip_cidr": "10.0.0.0/8", "server": "x"},
    {"type": "logical", "mode": "or", "rules": [{"outbound": "direct"}], "server": "x"},
    {"rule_set": "missing", "server": "x"},
    {"domain_regex": "(", "server": "x"},
    {"source_port": 53, "server": "x"}
  ])", {}, d);
  EXPECT_EQ(r, nullptr);
  std::string text = describe(d);
  EXPECT_NE(text.find("test.json:3:17: DNS rule field \"ip_cidr\" is not implemented by veer"),
            std::string::npos) << text;
  EXPECT_NE(text.find("test.json:4:62: \"outbound\" is supported on top-level DNS rules only"),
            std::string::npos) << text;
  EXPECT_NE(text.find("test.json:7:21: DNS rule field \"source_port\""), std::string::npos) << text;
  // The compiler's errors (unknown rule set, bad regex) only come once the rules parse.
  DiagList d2;
  EXPECT_EQ(compile(R"([{"rule_set": "missing", "server": "x"},
                        {"domain_regex": "(", "server": "x"}])", {}, d2), nullptr);
  text = describe(d2);
  EXPECT_NE(text.find("test.json:1:2: rule-set not found: missing"), std::string::npos) << text;
  EXPECT_NE(text.find("test.json:2:25:"), std::string::npos) << text;
}

class DnsRulesRouterTest : public LoopTest {};

constexpr const char* kServers = R"(
    {"type": "hosts", "tag": "one", "predefined": {"a.test": "10.0.0.1", "b.test": "10.0.0.1",
                                                  "s.proxy.test": "10.0.0.1"}},
    {"type": "hosts", "tag": "two", "predefined": {"a.test": "10.0.0.2", "b.test": "10.0.0.2",
                                                  "s.proxy.test": "10.0.0.2"}})";

TEST_F(DnsRulesRouterTest, RuleSetSendsItsDomainsToAnotherServer) {
  auto sets = ruleSets({{"two-set", R"({"version": 1, "rules": [{"domain": "b.test"}]})"}});
  std::string cfg = std::string(R"({"servers": [)") + kServers + R"(],
      "rules": [{"rule_set": "two-set", "action": "route", "server": "two", "rewrite_ttl": 7}],
      "final": "one"})";
  json::Value v = parseJson(cfg);
  DiagList d;
  auto rules = DnsRules::compile(v.find("rules"), "test.json", sets, {}, d);
  ASSERT_NE(rules, nullptr) << describe(d);
  auto o = fastOptions();
  o.rules = rules;
  ASSERT_NE(makeRouter(cfg, o), nullptr);
  auto a = lookup("a.test", Strategy::Ipv4Only);
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_EQ(strings(a->addresses), std::vector<std::string>{"10.0.0.1"});
  auto b = lookup("b.test", Strategy::Ipv4Only);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(strings(b->addresses), std::vector<std::string>{"10.0.0.2"});
  EXPECT_EQ(b->ttl, 7u);
}

TEST_F(DnsRulesRouterTest, OutboundContextRouteOptionsAndReject) {
  std::string cfg = std::string(R"({"servers": [)") + kServers + R"(],
      "rules": [{"domain": "b.test", "action": "route-options", "rewrite_ttl": 42},
                {"outbound": "any", "server": "two"},
                {"domain": "b.test", "action": "reject"}],
      "final": "one"})";
  ASSERT_NE(makeRouter(cfg), nullptr);
  DnsRouter::Context via_proxy;
  via_proxy.outbound = "proxy";
  auto p = lookup("s.proxy.test", Strategy::Ipv4Only, via_proxy);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(strings(p->addresses), std::vector<std::string>{"10.0.0.2"});
  auto plain = lookup("s.proxy.test", Strategy::Ipv4Only);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(strings(plain->addresses), std::vector<std::string>{"10.0.0.1"});
  // route-options applies, then matching goes on to the outbound rule.
  auto b = lookup("b.test", Strategy::Ipv4Only, via_proxy);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->ttl, 42u);
  EXPECT_EQ(strings(b->addresses), std::vector<std::string>{"10.0.0.2"});
  auto rejected = exchange(makeQuery(9, "b.test", rrtype::kA, std::nullopt));
  ASSERT_TRUE(rejected.has_value());
  EXPECT_EQ(rejected->rcodeValue(), Rcode::Refused);
  EXPECT_EQ(router_->stats().rejected, 1u);
}

TEST_F(DnsRulesRouterTest, UnknownServersAreErrorsAtTheirPosition) {
  json::Value v = parseJson(R"({"servers": [{"type": "hosts", "tag": "h", "predefined": {}}],
  "rules": [{"domain": "a.test", "server": "nope"},
            {"domain": "b.test", "action": "reject", "method": "reply"}],
  "final": "gone"})");
  DiagList d;
  EXPECT_FALSE(DnsRouter::create(&loop_, v, "test.json", d, fastOptions()).has_value());
  std::string text = describe(d);
  EXPECT_NE(text.find("test.json:2:44: unknown DNS server \"nope\" at dns.rules[0].server"),
            std::string::npos) << text;
  EXPECT_NE(text.find("test.json:3:64: reject method \"reply\""), std::string::npos) << text;
  EXPECT_NE(text.find("test.json:4:12: unknown DNS server \"gone\""), std::string::npos) << text;
}

}  // namespace
}  // namespace veer::dns::test
