#include "rules/dsl.h"

#include <gtest/gtest.h>

#include "fakes.h"
#include "rules/rule_engine.h"

namespace veer::rules {
namespace {

using test::FakeGeoip;
using test::FakeGeosite;

DslFile parseOk(std::string_view text, DslMode mode = DslMode::Route) {
  DiagList diags;
  DslFile f = parseDsl(text, "t.veer", mode, diags);
  EXPECT_TRUE(diags.empty()) << renderDiags(text, diags);
  return f;
}

/// The single rule's condition, re-written canonically.
std::string cond(std::string_view line) {
  DslFile f = parseOk(std::string(line) + " => x");
  EXPECT_EQ(f.rules.size(), 1u);
  return f.rules.empty() ? "" : writeDslCondition(f.rules[0]);
}

TEST(Dsl, DesignSketchParses) {
  const char* text =
      "# a comment\n"
      "geosite:category-ads-all                            => reject\n"
      "protocol:dns                                        => hijack-dns\n"
      "geoip:[cn, private] || geosite:cn                   => direct\n"
      "domain_suffix:[google.com, youtube.com] && port:443 => proxy\n"
      "network:udp && port:443 && !geoip:cn                => reject   # push QUIC back to TCP\n"
      "final                                               => proxy\n";
  DslFile f = parseOk(text);
  ASSERT_EQ(f.rules.size(), 5u);
  ASSERT_TRUE(f.final_outbound.has_value());
  EXPECT_EQ(*f.final_outbound, "proxy");
  EXPECT_EQ(f.final_pos.line, 7u);
  EXPECT_EQ(f.rules[0].geosite, std::vector<std::string>{"category-ads-all"});
  EXPECT_EQ(f.rules[0].action->type, RuleAction::Type::Reject);
  EXPECT_EQ(f.rules[0].pos.line, 2u);
  EXPECT_EQ(f.rules[0].pos.column, 1u);
  EXPECT_EQ(f.rules[0].pos.file, "t.veer");
  EXPECT_EQ(f.rules[1].action->type, RuleAction::Type::HijackDns);
  // Same group ORed: one default rule, exactly like the JSON {geoip: [...], geosite: [...]}.
  EXPECT_EQ(f.rules[2].type, RuleSpec::Type::Default);
  EXPECT_EQ(f.rules[2].geoip, (std::vector<std::string>{"cn", "private"}));
  EXPECT_EQ(f.rules[2].geosite, std::vector<std::string>{"cn"});
  // Different groups ANDed: one default rule.
  EXPECT_EQ(f.rules[3].type, RuleSpec::Type::Default);
  EXPECT_EQ(f.rules[3].domain_suffix.size(), 2u);
  EXPECT_EQ(f.rules[3].port, std::vector<uint16_t>{443});
  EXPECT_EQ(f.rules[3].action->outbound, "proxy");
  // An inverted operand cannot merge: logical and.
  EXPECT_EQ(f.rules[4].type, RuleSpec::Type::Logical);
  EXPECT_EQ(f.rules[4].mode, RuleSpec::Mode::And);
  ASSERT_EQ(f.rules[4].rules.size(), 2u);
  EXPECT_EQ(f.rules[4].rules[0].network, std::vector<std::string>{"udp"});
  EXPECT_TRUE(f.rules[4].rules[1].invert);
}

/// The rule tree as an S-expression: `or(domain:a, and(domain:b, !port:80))`.
std::string shape(const RuleSpec& r) {
  if (r.type == RuleSpec::Type::Default) return writeDslCondition(r);
  std::string out = r.invert ? "!" : "";
  out += r.mode == RuleSpec::Mode::And ? "and(" : "or(";
  for (size_t i = 0; i < r.rules.size(); ++i) out += (i ? ", " : "") + shape(r.rules[i]);
  return out + ")";
}

std::string tree(std::string_view line) {
  DslFile f = parseOk(std::string(line) + " => x");
  EXPECT_EQ(f.rules.size(), 1u);
  return f.rules.empty() ? "" : shape(f.rules[0]);
}

TEST(Dsl, NotBindsTighterThanAndTighterThanOr) {
  EXPECT_EQ(tree("domain:a || domain:b && !port:80"), "or(domain:a, and(domain:b, !port:80))");
  EXPECT_EQ(tree("(domain:a || domain:b) && !port:80"), "and(domain:[a, b], !port:80)");
  EXPECT_EQ(tree("!domain:a && port:443"), "and(!domain:a, port:443)");
  EXPECT_EQ(tree("!(domain:a && port:443)"), "!(domain:a && port:443)");
  EXPECT_EQ(tree("!!domain:a"), "domain:a");
  EXPECT_EQ(tree("port:80 || domain:a && port:443"), "or(port:80, domain:a && port:443)");
  EXPECT_EQ(tree("!(port:80 || inbound:a) && domain:b"), "and(!or(port:80, inbound:a), domain:b)");
  // The writer only adds the parentheses the precedence needs.
  EXPECT_EQ(cond("domain:a || domain:b && !port:80"), "domain:a || domain:b && !port:80");
  EXPECT_EQ(cond("(port:1 || inbound:a) && !port:80"), "(port:1 || inbound:a) && !port:80");
}

TEST(Dsl, ConjunctionsMergeOnlyAcrossGroups) {
  DslFile f = parseOk("domain:a.com && domain_suffix:b.com => x");  // same group: must stay AND
  ASSERT_EQ(f.rules[0].type, RuleSpec::Type::Logical);
  EXPECT_EQ(f.rules[0].mode, RuleSpec::Mode::And);
  f = parseOk("inbound:a && inbound:b => x");  // same AND field
  EXPECT_EQ(f.rules[0].type, RuleSpec::Type::Logical);
  f = parseOk("inbound:a && network:tcp && source_ip_cidr:10.0.0.0/8 && source_port:53 => x");
  EXPECT_EQ(f.rules[0].type, RuleSpec::Type::Default);
  f = parseOk("inbound:a || inbound:b => x");
  EXPECT_EQ(f.rules[0].type, RuleSpec::Type::Default);
  EXPECT_EQ(f.rules[0].inbound, (std::vector<std::string>{"a", "b"}));
  f = parseOk("domain:a || port:80 || domain_keyword:b => x");
  ASSERT_EQ(f.rules[0].type, RuleSpec::Type::Logical);
  EXPECT_EQ(f.rules[0].mode, RuleSpec::Mode::Or);
  ASSERT_EQ(f.rules[0].rules.size(), 2u);
  EXPECT_EQ(f.rules[0].rules[0].domain_keyword, std::vector<std::string>{"b"});
}

TEST(Dsl, ListsRangesAndBooleans) {
  DslFile f = parseOk("port:[80, 443, 1000-2000, :10, 60000:,] && source_port:5353-5354 => x\n"
                      "ip_is_private => y\n"
                      "source_ip_is_private:true && ip_version:[4,6] && query_type:[A, aaaa, 65] => z\n");
  ASSERT_EQ(f.rules.size(), 3u);
  EXPECT_EQ(f.rules[0].port, (std::vector<uint16_t>{80, 443}));
  EXPECT_EQ(f.rules[0].port_range, (std::vector<std::string>{"1000:2000", ":10", "60000:"}));
  EXPECT_EQ(f.rules[0].source_port_range, std::vector<std::string>{"5353:5354"});
  EXPECT_TRUE(f.rules[1].ip_is_private);
  EXPECT_TRUE(f.rules[2].source_ip_is_private);
  EXPECT_EQ(f.rules[2].ip_version, (std::vector<int>{4, 6}));
  EXPECT_EQ(f.rules[2].query_type, (std::vector<uint16_t>{1, 28, 65}));
}

TEST(Dsl, IpV6ValuesKeepTheirColons) {
  DslFile f = parseOk("ip_cidr:[::1/128, 2001:db8::/32] && port::1024 => x");
  EXPECT_EQ(f.rules[0].ip_cidr, (std::vector<std::string>{"::1/128", "2001:db8::/32"}));
  EXPECT_EQ(f.rules[0].port_range, std::vector<std::string>{":1024"});
}

TEST(Dsl, CommentsAndBlankLines) {
  DslFile f = parseOk("\n   # full line\n\t\ndomain:a.com => x # trailing\n#\n"
                      "domain_regex:\"a#b\" => y\r\n");
  ASSERT_EQ(f.rules.size(), 2u);
  EXPECT_EQ(f.rules[0].pos.line, 4u);
  EXPECT_EQ(f.rules[1].domain_regex, std::vector<std::string>{"a#b"});  // '#' inside quotes
}

TEST(Dsl, QuotedStrings) {
  DslFile f = parseOk(
      R"(domain_regex:["^(www\.)?ex[a-z]+\.com$", "a\"b", "c\\d"] => "my proxy")");
  ASSERT_EQ(f.rules.size(), 1u);
  EXPECT_EQ(f.rules[0].domain_regex,
            (std::vector<std::string>{R"(^(www\.)?ex[a-z]+\.com$)", "a\"b", "c\\d"}));
  EXPECT_EQ(f.rules[0].action->outbound, "my proxy");
}

TEST(Dsl, Actions) {
  DslFile f = parseOk(
      "any => sniff\n"
      "any => sniff(tls, http, timeout=500ms)\n"
      "any => resolve\n"
      "any => resolve(server=dns1, strategy=ipv4_only, disable_cache, rewrite_ttl=60)\n"
      "any => route-options(override_address=1.1.1.1, override_port=53, udp_timeout=1m, "
      "fallback_delay=300ms, tls_fragment, udp_connect=false)\n"
      "any => reject\n"
      "any => reject(drop)\n"
      "any => reject(reply, no_drop)\n"
      "any => hijack-dns\n"
      "any => route(proxy, override_port=8443)\n"
      "any => \"reject\"\n");
  ASSERT_EQ(f.rules.size(), 11u);
  const auto& a = f.rules;
  EXPECT_EQ(a[0].action->type, RuleAction::Type::Sniff);
  EXPECT_TRUE(a[0].action->sniffers.empty());
  EXPECT_EQ(a[0].action->sniff_timeout_ms, 300u);
  EXPECT_EQ(a[1].action->sniffers, (std::vector<std::string>{"tls", "http"}));
  EXPECT_EQ(a[1].action->sniff_timeout_ms, 500u);
  EXPECT_EQ(a[2].action->type, RuleAction::Type::Resolve);
  EXPECT_EQ(a[3].action->resolve_server, "dns1");
  EXPECT_EQ(a[3].action->resolve_strategy, "ipv4_only");
  EXPECT_TRUE(a[3].action->disable_cache);
  EXPECT_EQ(a[3].action->rewrite_ttl, 60u);
  EXPECT_EQ(a[4].action->type, RuleAction::Type::RouteOptions);
  EXPECT_EQ(a[4].action->override_address, "1.1.1.1");
  EXPECT_EQ(a[4].action->override_port, 53);
  EXPECT_EQ(a[4].action->udp_timeout_s, 60u);
  EXPECT_EQ(a[4].action->fallback_delay_ms, 300u);
  EXPECT_TRUE(a[4].action->tls_fragment);
  EXPECT_FALSE(a[4].action->udp_connect);
  EXPECT_EQ(a[5].action->reject_method, "default");
  EXPECT_EQ(a[6].action->reject_method, "drop");
  EXPECT_EQ(a[7].action->reject_method, "reply");
  EXPECT_TRUE(a[7].action->no_drop);
  EXPECT_EQ(a[8].action->type, RuleAction::Type::HijackDns);
  EXPECT_EQ(a[9].action->type, RuleAction::Type::Route);
  EXPECT_EQ(a[9].action->outbound, "proxy");
  EXPECT_EQ(a[9].action->override_port, 8443);
  EXPECT_EQ(a[10].action->type, RuleAction::Type::Route);
  EXPECT_EQ(a[10].action->outbound, "reject");
  // `any` is the rule without conditions.
  EXPECT_EQ(writeDslCondition(a[0]), "any");
}

TEST(Dsl, HeadlessRuleSetMode) {
  DslFile f = parseOk("domain_suffix:cn\nip_cidr:1.0.1.0/24 || ip_cidr:1.0.2.0/23\n# c\n!domain:x.cn\n",
                      DslMode::RuleSet);
  ASSERT_EQ(f.rules.size(), 3u);
  EXPECT_FALSE(f.rules[0].action.has_value());
  EXPECT_EQ(f.rules[1].ip_cidr.size(), 2u);
  EXPECT_TRUE(f.rules[2].invert);
}

struct ErrorCase {
  const char* line;
  uint32_t col;
  const char* message;  // substring
};

TEST(Dsl, EverySyntaxErrorHasLineAndColumnAndAllAreReported) {
  const ErrorCase cases[] = {
      {"domian:a.com => proxy", 1, "unknown field 'domian'"},
      {"domain:a.com proxy", 14, "expected '&&', '||' or '=>', found 'p'"},
      {"domain:[a.com, b.com => proxy", 22, "expected ',' or ']' in the list, found '=>'"},
      {"(domain:a.com => proxy", 15, "expected ')' to close '(' at column 1"},
      {"domain_regex:\"abc => proxy", 14, "unterminated string"},
      {"port:99999 => proxy", 6, "invalid port or port range \"99999\""},
      {"ip_cidr:10.0.0.0/33 => x", 9, "invalid IP prefix"},
      {"domain_regex:\"(a\" => x", 14, "invalid regular expression"},
      {"domain:a.com => reject(bounce)", 24, "unknown reject method 'bounce'"},
      {"&& port:80 => x", 1, "expected a condition, found '&'"},
      {"port => x", 5, "field 'port' needs a value"},
      {"domain: => x", 9, "expected a value, found '=>'"},
      {"domain:a.com => sniff(tls, timeout=fast)", 36, "timeout needs a duration"},
      {"domain:a.com => route-options()", 31, "expected at least one option"},
      {"domain:a.com => proxy extra", 23, "unexpected 'e' after the action"},
      {"ip_is_private:false => x", 15, "write '!ip_is_private'"},
      {"domain:a.com)", 13, "found ')'"},
      {"domain:[] => x", 9, "empty list"},
      {"domain:a.com", 13, "expected '=>' and an action at end of line"},
      {"domain:a.com =>", 16, "expected an action after '=>'"},
      {"network:sctp => x", 9, "unknown network"},
      {"ip_version:5 => x", 12, "ip_version must be 4 or 6"},
      {"domain:a => resolve(strategy=fast)", 30, "unknown strategy"},
      {"final => reject(drop)", 10, "final takes an outbound tag"},
      {"rule_set_ip_cidr_match_source => x", 1, "needs a rule_set"},
      {"domain:a => route-options(override_port=http)", 41, "invalid port"},
      {"domain:a => sniff(smtp)", 19, "unknown sniffer"},
      {"((((((((((((((((((((((((((((((((((domain:a)))))))))))))))))))))))))))))))))) => x", 33,
       "nested too deeply"},
  };
  std::string text;
  size_t n = 0;
  for (const auto& c : cases) {
    text += c.line;
    text += "\ndomain:ok.example => fine\n";  // valid lines in between must still parse
    ++n;
  }
  text += "final => a\nfinal => b\n";
  DiagList diags;
  DslFile f = parseDsl(text, "bad.veer", DslMode::Route, diags);
  EXPECT_EQ(f.rules.size(), n);
  ASSERT_EQ(diags.all().size(), n + 1) << renderDiags(text, diags);
  for (size_t i = 0; i < n; ++i) {
    const Diag& d = diags.all()[i];
    SCOPED_TRACE(cases[i].line);
    EXPECT_EQ(d.file, "bad.veer");
    EXPECT_EQ(d.line, 2 * i + 1);
    EXPECT_EQ(d.column, cases[i].col) << d.message;
    EXPECT_NE(d.message.find(cases[i].message), std::string::npos) << d.message;
    EXPECT_EQ(d.severity, Diag::Severity::Error);
  }
  const Diag& dup = diags.all().back();
  EXPECT_EQ(dup.line, 2 * n + 2);
  EXPECT_EQ(dup.column, 1u);
  EXPECT_NE(dup.message.find("duplicate 'final' (first at line " + std::to_string(2 * n + 1)),
            std::string::npos);
  EXPECT_EQ(*f.final_outbound, "a");
  // The rendering shows file:line:col, the line and a caret under the column.
  std::string shown = renderDiags(text, diags);
  EXPECT_NE(shown.find("bad.veer:3:14: expected '&&'"), std::string::npos) << shown;
  EXPECT_NE(shown.find("    3 | domain:a.com proxy\n      |              ^\n"), std::string::npos)
      << shown;
}

TEST(Dsl, RuleSetModeErrors) {
  DiagList diags;
  parseDsl("domain:a.com => x\nfinal => y\ndomain:b.com extra\n", "set.veer", DslMode::RuleSet,
           diags);
  ASSERT_EQ(diags.all().size(), 3u);
  EXPECT_EQ(diags.all()[0].column, 14u);
  EXPECT_NE(diags.all()[0].message.find("not allowed in a rule-set file"), std::string::npos);
  EXPECT_EQ(diags.all()[1].line, 2u);
  EXPECT_EQ(diags.all()[2].column, 14u);
}

TEST(Dsl, RuleSetModeAcceptsOnlyHeadlessFields) {
  DiagList diags;
  DslFile f = parseDsl("domain:a.com && port:443 && network:udp\n"
                       "inbound:lan\n"
                       "domain:b.com || ip_is_private\n"
                       "!rule_set:x\n",
                       "set.veer", DslMode::RuleSet, diags);
  EXPECT_EQ(f.rules.size(), 1u);
  ASSERT_EQ(diags.all().size(), 3u) << renderDiags("", diags);
  EXPECT_EQ(diags.all()[0].line, 2u);
  EXPECT_EQ(diags.all()[0].column, 1u);
  EXPECT_EQ(diags.all()[1].column, 17u);
  EXPECT_EQ(diags.all()[2].column, 2u);
  for (const auto& d : diags.all()) {
    EXPECT_NE(d.message.find("not allowed in a rule-set file"), std::string::npos) << d.message;
  }
}

TEST(Dsl, WriterRoundTrips) {
  const char* text =
      "geosite:category-ads-all => reject\n"
      "domain:a.com || domain_suffix:[b.com, .c.com] => proxy\n"
      "(domain:a.com || domain_suffix:b.com) && (port:[80, 443] || port_range:8000:9000) => proxy\n"
      "network:udp && port:443 && !geoip:cn => reject(drop)\n"
      "!(inbound:in1 || auth_user:bob) => route(direct, override_port=53)\n"
      "domain_regex:\"^a b\\\"c\" => \"my proxy\"\n"
      "any => sniff(tls, timeout=1s)\n"
      "rule_set:[x, y] && rule_set_ip_cidr_match_source => resolve(server=dns1)\n"
      "query_type:[A, 99] && network_type:wifi && process_name:curl => \"route\"\n"
      "final => proxy\n";
  DslFile f = parseOk(text);
  std::string once = writeDsl(f, DslMode::Route);
  DslFile g = parseOk(once);
  EXPECT_EQ(writeDsl(g, DslMode::Route), once);
  ASSERT_EQ(g.rules.size(), f.rules.size());
  // Default rules come back as the very same RuleSpec fields.
  EXPECT_EQ(g.rules[2].type, RuleSpec::Type::Default);
  EXPECT_EQ(g.rules[2].domain, f.rules[2].domain);
  EXPECT_EQ(g.rules[2].domain_suffix, f.rules[2].domain_suffix);
  EXPECT_EQ(g.rules[2].port, f.rules[2].port);
  EXPECT_EQ(g.rules[2].port_range, f.rules[2].port_range);
  EXPECT_EQ(g.rules[5].domain_regex, std::vector<std::string>{"^a b\"c"});
  EXPECT_EQ(g.rules[8].action->outbound, "route");
  EXPECT_EQ(writeDslCondition(f.rules[2]),
            "(domain:a.com || domain_suffix:b.com) && (port:[80, 443] || port_range:8000:9000)");
  // In the DSL `&&` is always an AND, also within one sing-box group (a logical rule).
  DslFile h = parseOk("port:[80, 443] && port_range:8000:9000 => x");
  EXPECT_EQ(h.rules[0].type, RuleSpec::Type::Logical);
  EXPECT_NE(once.find("final => proxy\n"), std::string::npos);
}

TEST(Dsl, WriterForJsonRuleWithSeveralFieldsOfOneGroup) {
  RuleSpec r;
  r.domain = {"a.com"};
  r.ip_cidr = {"10.0.0.0/8"};
  r.ip_is_private = true;
  r.invert = true;
  std::string text = writeDslCondition(r);
  EXPECT_EQ(text, "!(domain:a.com || ip_cidr:10.0.0.0/8 || ip_is_private)");
  DslFile f = parseOk(text + " => x");
  ASSERT_EQ(f.rules.size(), 1u);
  EXPECT_EQ(f.rules[0].type, RuleSpec::Type::Default);
  EXPECT_TRUE(f.rules[0].invert);
  EXPECT_TRUE(f.rules[0].ip_is_private);
  EXPECT_EQ(f.rules[0].ip_cidr, r.ip_cidr);
}

// The same rules written as RuleSpecs (as the JSON front end builds them) and as DSL must make
// the same decisions.
TEST(Dsl, SameDecisionsAsJsonRules) {
  FakeGeosite geosite;
  geosite.add("category-ads-all", GeositeItem::Type::Suffix, "doubleclick.net");
  geosite.add("cn", GeositeItem::Type::Suffix, "baidu.com");
  FakeGeoip geoip;
  geoip.entries = {{"1.0.1.0/24", "CN"}};
  const char* dsl =
      "geosite:category-ads-all                            => reject\n"
      "protocol:dns                                        => hijack-dns\n"
      "geoip:[cn, private] || geosite:cn                   => direct\n"
      "domain_suffix:[google.com, youtube.com] && port:443 => proxy\n"
      "network:udp && port:443 && !geoip:cn                => reject   # push QUIC back to TCP\n"
      "source_port:[1000-2000] || inbound:lan-in && !domain_keyword:bank => lan\n"
      "final                                               => proxy\n";
  auto action = [](RuleAction::Type t, const std::string& tag = "") {
    RuleAction a;
    a.type = t;
    a.outbound = tag;
    return a;
  };
  std::vector<RuleSpec> json(6);
  json[0].geosite = {"category-ads-all"};
  json[0].action = action(RuleAction::Type::Reject);
  json[1].protocol = {"dns"};
  json[1].action = action(RuleAction::Type::HijackDns);
  json[2].geoip = {"cn", "private"};
  json[2].geosite = {"cn"};
  json[2].action = action(RuleAction::Type::Route, "direct");
  json[3].domain_suffix = {"google.com", "youtube.com"};
  json[3].port = {443};
  json[3].action = action(RuleAction::Type::Route, "proxy");
  json[4].type = RuleSpec::Type::Logical;
  json[4].mode = RuleSpec::Mode::And;
  json[4].rules.resize(2);
  json[4].rules[0].network = {"udp"};
  json[4].rules[0].port = {443};
  json[4].rules[1].geoip = {"cn"};
  json[4].rules[1].invert = true;
  json[4].action = action(RuleAction::Type::Reject);
  json[5].type = RuleSpec::Type::Logical;
  json[5].mode = RuleSpec::Mode::Or;
  json[5].rules.resize(2);
  json[5].rules[0].source_port_range = {"1000:2000"};
  json[5].rules[1].type = RuleSpec::Type::Logical;
  json[5].rules[1].mode = RuleSpec::Mode::And;
  json[5].rules[1].rules.resize(2);
  json[5].rules[1].rules[0].inbound = {"lan-in"};
  json[5].rules[1].rules[1].domain_keyword = {"bank"};
  json[5].rules[1].rules[1].invert = true;
  json[5].action = action(RuleAction::Type::Route, "lan");

  DiagList diags;
  DslFile f = parseDsl(dsl, "t.veer", DslMode::Route, diags);
  ASSERT_TRUE(diags.empty()) << renderDiags(dsl, diags);
  GeoSources src{&geosite, &geoip};
  auto a = RuleEngine::compile(json, {}, src, diags);
  auto b = RuleEngine::compile(f.rules, {}, src, diags);
  ASSERT_TRUE(a.has_value() && b.has_value());
  auto decide = [&](const RuleEngine& e, const MatchInput& in) -> std::string {
    MatchResult m = e.matchFrom(in);
    if (!m.matched()) return *f.final_outbound;
    switch (m.action->type) {
      case RuleAction::Type::Reject: return "reject";
      case RuleAction::Type::HijackDns: return "hijack-dns";
      default: return m.action->outbound;
    }
  };
  struct Row {
    const char* host;  // domain or IP literal
    uint16_t port;
    const char* network;
    const char* protocol;
    const char* inbound;
    uint16_t source_port;
    const char* expected;
  };
  const Row rows[] = {
      {"ads.doubleclick.net", 443, "tcp", "", "", 40000, "reject"},
      {"8.8.8.8", 53, "udp", "dns", "", 40000, "hijack-dns"},
      {"www.baidu.com", 443, "tcp", "tls", "", 40000, "direct"},
      {"1.0.1.1", 443, "tcp", "", "", 40000, "direct"},
      {"192.168.1.1", 80, "tcp", "", "", 40000, "direct"},
      {"www.google.com", 443, "tcp", "tls", "", 40000, "proxy"},
      {"www.google.com", 443, "udp", "quic", "", 40000, "proxy"},
      {"example.org", 443, "udp", "quic", "", 40000, "reject"},
      {"9.9.9.9", 443, "udp", "", "", 40000, "reject"},
      {"example.org", 80, "tcp", "", "", 1500, "lan"},
      {"example.org", 80, "tcp", "", "lan-in", 40000, "lan"},
      {"mybank.example", 80, "tcp", "", "lan-in", 40000, "proxy"},
      {"example.org", 80, "tcp", "", "", 40000, "proxy"},
  };
  for (const auto& r : rows) {
    MatchInput in;
    Destination d = Destination::fromHost(r.host, r.port);
    in.domain = d.domain;
    in.destination = d.ip;
    in.port = r.port;
    in.network = r.network;
    in.protocol = r.protocol;
    in.inbound = r.inbound;
    in.source = *IpAddress::parse("192.168.1.10");
    in.source_port = r.source_port;
    SCOPED_TRACE(std::string(r.host) + ":" + std::to_string(r.port) + "/" + r.network);
    EXPECT_EQ(decide(**a, in), r.expected);
    EXPECT_EQ(decide(**b, in), r.expected);
  }
}

}  // namespace
}  // namespace veer::rules
