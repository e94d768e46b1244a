#include "base/json.h"
#include "rules/rule_json.h"
#include "rules/ruleset_json.h"
#include "testutil/testutil.h"

namespace veer::rules {
namespace {

struct Parsed {
  bool ok = false;
  RuleSpec rule;
  DiagList diags;
  std::string messages() const {
    std::string s;
    for (const auto& d : diags.all()) s += d.toString() + "\n";
    return s;
  }
};

Parsed parse(RuleKind kind, const std::string& text) {
  Parsed p;
  auto v = json::parse(text, "config.json");
  EXPECT_TRUE(v) << v.error().message();
  if (!v) return p;
  p.ok = parseRule(kind, *v, "route.rules[3]", "config.json", p.diags, p.rule);
  return p;
}

TEST(RuleJson, RouteRuleWithFieldsAndLegacyOutbound) {
  auto p = parse(RuleKind::Route, R"({
    "domain_suffix": ["google.com", ".youtube.com"], "domain": "a.com",
    "ip_cidr": ["10.0.0.0/8", "1.1.1.1"], "port": [443, 80], "port_range": "1000:2000",
    "network": "tcp", "ip_version": 4, "geosite": "cn", "rule_set": ["x", "y"],
    "outbound": "proxy"})");
  ASSERT_TRUE(p.ok) << p.messages();
  const RuleSpec& r = p.rule;
  EXPECT_EQ(r.domain_suffix, (std::vector<std::string>{"google.com", ".youtube.com"}));
  EXPECT_EQ(r.domain, (std::vector<std::string>{"a.com"}));
  EXPECT_EQ(r.port, (std::vector<uint16_t>{443, 80}));
  EXPECT_EQ(r.ip_version, (std::vector<int>{4}));
  EXPECT_EQ(r.geosite, (std::vector<std::string>{"cn"}));
  ASSERT_TRUE(r.action);
  EXPECT_EQ(r.action->type, RuleAction::Type::Route);
  EXPECT_EQ(r.action->outbound, "proxy");
  EXPECT_EQ(r.pos.file, "config.json");
  EXPECT_EQ(r.pos.line, 1u);
  EXPECT_EQ(r.pos.path, "route.rules[3]");
}

TEST(RuleJson, Actions) {
  auto rej = parse(RuleKind::Route, R"({"protocol": "quic", "action": "reject", "method": "drop"})");
  ASSERT_TRUE(rej.ok) << rej.messages();
  EXPECT_EQ(rej.rule.action->type, RuleAction::Type::Reject);
  EXPECT_EQ(rej.rule.action->reject_method, "drop");
  auto sniff = parse(RuleKind::Route, R"({"action": "sniff", "sniffer": ["tls", "http"], "timeout": "1s"})");
  ASSERT_TRUE(sniff.ok) << sniff.messages();
  EXPECT_EQ(sniff.rule.action->sniffers.size(), 2u);
  EXPECT_EQ(sniff.rule.action->sniff_timeout_ms, 1000u);
  auto res = parse(RuleKind::Route, R"({"action": "resolve", "strategy": "ipv4_only", "server": "dns1", "rewrite_ttl": 60})");
  ASSERT_TRUE(res.ok) << res.messages();
  EXPECT_EQ(res.rule.action->resolve_strategy, "ipv4_only");
  EXPECT_EQ(res.rule.action->rewrite_ttl, 60u);
  auto ro = parse(RuleKind::Route, R"({"action": "route-options", "udp_timeout": "1m", "override_port": 53})");
  ASSERT_TRUE(ro.ok) << ro.messages();
  EXPECT_EQ(ro.rule.action->udp_timeout_s, 60u);
  EXPECT_EQ(ro.rule.action->override_port, 53);
  EXPECT_FALSE(ro.rule.action->isFinal());
  auto hj = parse(RuleKind::Route, R"({"port": 53, "action": "hijack-dns"})");
  ASSERT_TRUE(hj.ok) << hj.messages();
  EXPECT_EQ(hj.rule.action->type, RuleAction::Type::HijackDns);
}

TEST(RuleJson, ErrorsCarryPositionAndPath) {
  auto p = parse(RuleKind::Route, "{\n  \"domain\": \"a.com\",\n  \"outbund\": \"x\"\n}");
  EXPECT_FALSE(p.ok);
  ASSERT_GE(p.diags.all().size(), 1u);
  bool unknown = false;
  for (const auto& d : p.diags.all()) {
    if (d.message.find("unknown field \"outbund\"") != std::string::npos) {
      unknown = true;
      EXPECT_EQ(d.line, 3u);
      EXPECT_EQ(d.file, "config.json");
      EXPECT_EQ(d.path, "route.rules[3]");
    }
  }
  EXPECT_TRUE(unknown) << p.messages();
  // Fields of another action are unknown for this one.
  auto q = parse(RuleKind::Route, R"({"action": "reject", "outbound": "x"})");
  EXPECT_FALSE(q.ok);
  EXPECT_NE(q.messages().find("unknown field \"outbound\""), std::string::npos) << q.messages();
}

TEST(RuleJson, BadValuesAndTypes) {
  struct Case {
    const char* text;
    const char* needle;
  };
  const Case cases[] = {
      {R"({"action": "teleport"})", "unknown rule action"},
      {R"({"action": "reject", "method": "explode"})", "unknown reject method"},
      {R"({"action": "reject", "method": "drop", "no_drop": true})", "no_drop"},
      {R"({"domain": 5, "outbound": "x"})", "expected a string"},
      {R"({"port": "443", "outbound": "x"})", "0..65535"},
      {R"({"port": 70000, "outbound": "x"})", "0..65535"},
      {R"({"network": "sctp", "outbound": "x"})", "tcp, udp or icmp"},
      {R"({"ip_cidr": "10.0.0.0/40", "outbound": "x"})", "not an IP prefix"},
      {R"({"port_range": "9:1", "outbound": "x"})", "port_range"},
      {R"({"ip_version": 5, "outbound": "x"})", "4 or 6"},
      {R"({"domain": "a.com"})", "missing \"outbound\""},
      {R"({"clash_mode": "rule", "outbound": "x"})", "not supported by veer"},
      {R"({"type": "logical", "mode": "xor", "rules": [{}], "outbound": "x"})", "unknown logical mode"},
      {R"({"type": "logical", "mode": "and", "rules": [], "outbound": "x"})", "non-empty"},
      {R"({"type": "logical", "mode": "and", "rules": [{"outbound": "y"}], "outbound": "x"})",
       "route.rules[3].rules[0]"},
      {R"({"action": "route-options"})", "empty route-options"},
      {R"({"action": "sniff", "timeout": 300})", "duration"},
  };
  for (const auto& c : cases) {
    auto p = parse(RuleKind::Route, c.text);
    EXPECT_FALSE(p.ok) << c.text;
    EXPECT_NE(p.messages().find(c.needle), std::string::npos) << c.text << "\n" << p.messages();
  }
}

TEST(RuleJson, DnsRules) {
  auto p = parse(RuleKind::Dns, R"({"query_type": ["A", "HTTPS", 28, "TYPE999"], "domain_suffix": "cn", "server": "local", "disable_cache": true})");
  ASSERT_TRUE(p.ok) << p.messages();
  EXPECT_EQ(p.rule.query_type, (std::vector<uint16_t>{1, 65, 28, 999}));
  EXPECT_EQ(p.rule.action->resolve_server, "local");
  EXPECT_TRUE(p.rule.action->disable_cache);
  auto bad = parse(RuleKind::Dns, R"({"query_type": "AAAAA", "server": "x"})");
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.messages().find("unknown DNS query type"), std::string::npos);
  auto rej = parse(RuleKind::Dns, R"({"domain": "ads.example", "action": "reject"})");
  ASSERT_TRUE(rej.ok) << rej.messages();
  EXPECT_EQ(rej.rule.action->type, RuleAction::Type::Reject);
  auto route_only = parse(RuleKind::Dns, R"({"action": "hijack-dns"})");
  EXPECT_FALSE(route_only.ok);
  // query_type is not a route-rule field.
  auto rq = parse(RuleKind::Route, R"({"query_type": "A", "outbound": "x"})");
  EXPECT_FALSE(rq.ok);
}

TEST(RuleJson, HeadlessRules) {
  auto p = parse(RuleKind::Headless, R"({"domain_suffix": "x.org", "network_type": ["wifi", "ethernet"], "invert": true})");
  ASSERT_TRUE(p.ok) << p.messages();
  EXPECT_EQ(p.rule.network_type, (std::vector<uint8_t>{0, 2}));
  EXPECT_TRUE(p.rule.invert);
  EXPECT_FALSE(p.rule.action);
  auto q = parse(RuleKind::Headless, R"({"domain": "a", "outbound": "x"})");
  EXPECT_FALSE(q.ok);
  auto g = parse(RuleKind::Headless, R"({"geosite": "cn"})");
  EXPECT_FALSE(g.ok);
}

TEST(RuleJson, WriterRoundTrips) {
  const char* texts[] = {
      R"({"inbound":["a","b"],"ip_version":6,"network":"udp","domain_suffix":["x.org",".y.org"],"geoip":"cn","ip_cidr":"10.0.0.0/8","ip_is_private":true,"port":443,"rule_set":"s","invert":true,"outbound":"proxy","udp_timeout":"1m30s"})",
      R"({"type":"logical","mode":"or","rules":[{"port":53},{"protocol":"dns"}],"action":"hijack-dns"})",
      R"({"action":"reject","method":"drop"})",
      R"({"action":"sniff","sniffer":"tls","timeout":"1.5s"})",
  };
  for (const char* t : texts) {
    auto a = parse(RuleKind::Route, t);
    ASSERT_TRUE(a.ok) << t << "\n" << a.messages();
    std::string out = json::serialize(ruleToJson(RuleKind::Route, a.rule), false);
    auto b = parse(RuleKind::Route, out);
    ASSERT_TRUE(b.ok) << out << "\n" << b.messages();
    EXPECT_EQ(json::serialize(ruleToJson(RuleKind::Route, b.rule), false), out);
    // Key order and the single-value shape follow sing-box: the input here is already in it.
    auto orig = json::parse(t, "x");
    EXPECT_EQ(json::serialize(*orig, false), out);
  }
  auto d = parse(RuleKind::Dns, R"({"query_type":["A","AAAA",999],"server":"local"})");
  ASSERT_TRUE(d.ok) << d.messages();
  EXPECT_EQ(json::serialize(ruleToJson(RuleKind::Dns, d.rule), false),
            R"({"query_type":["A","AAAA",999],"server":"local"})");
}

TEST(RuleSetJson, Versions) {
  EXPECT_TRUE(readRuleSetJson(R"({"version": 3, "rules": [{"domain": "a"}]})", "s.json"));
  auto missing = readRuleSetJson(R"({"rules": []})", "s.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("missing rule-set version"), std::string::npos);
  auto zero = readRuleSetJson(R"({"version": 0, "rules": []})", "s.json");
  ASSERT_FALSE(zero);
  auto five = readRuleSetJson(R"({"version": 5, "rules": []})", "s.json");
  ASSERT_FALSE(five);
  EXPECT_NE(five.error().message().find("unknown rule-set version 5"), std::string::npos);
  auto extra = readRuleSetJson("{\"version\": 2,\n \"rules\": [{\"domain\": \"a\", \"x\": 1}]}",
                               "s.json");
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.error().message().find("s.json:2:"), std::string::npos) << extra.error().message();
  EXPECT_NE(extra.error().message().find("rules[0]"), std::string::npos) << extra.error().message();
  auto syntax = readRuleSetJson("{\"version\": 2, ", "s.json");
  ASSERT_FALSE(syntax);
  // Comments are accepted, as sing-box accepts them.
  EXPECT_TRUE(readRuleSetJson("// c\n{\"version\": 1, /* x */ \"rules\": []}", "s.json"));
}

}  // namespace
}  // namespace veer::rules
