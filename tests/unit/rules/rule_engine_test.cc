#include "rules/rule_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "fakes.h"

// Counts heap allocations made while `g_counting` is set, to check that matching does not
// allocate.
static std::atomic<bool> g_counting{false};
static std::atomic<long> g_allocs{0};
void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return operator new(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return operator new(n); }
// Every delete form goes to free(), matching the malloc() above (ASan checks the pairing).
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace veer::rules {
namespace {

using test::FakeGeoip;
using test::FakeGeosite;

IpAddress ip(const char* s) { return *IpAddress::parse(s); }

RuleAction route(const std::string& tag) {
  RuleAction a;
  a.outbound = tag;
  return a;
}

/// A rule built by a setter, routed to `tag`.
template <typename F>
RuleSpec rule(F&& set, const std::string& tag = "hit") {
  RuleSpec r;
  set(r);
  r.action = route(tag);
  return r;
}

MatchInput toDomain(std::string_view d, uint16_t port = 443) {
  MatchInput in;
  in.domain = d;
  in.port = port;
  in.network = "tcp";
  return in;
}
MatchInput toIp(const char* a, uint16_t port = 443) {
  MatchInput in;
  in.destination = ip(a);
  in.port = port;
  in.network = "tcp";
  return in;
}

class Engine : public ::testing::Test {
 protected:
  void compile(std::vector<RuleSpec> rules) {
    diags = DiagList();
    auto r = RuleEngine::compile(rules, sets, GeoSources{&geosite, &geoip}, diags);
    ASSERT_TRUE(r.has_value()) << r.error().message() << "\n" << dump();
    engine = std::move(*r);
  }
  std::string dump() const {
    std::string s;
    for (const auto& d : diags.all()) s += d.toString() + "\n";
    return s;
  }
  /// The outbound chosen, or "" for no match.
  std::string decide(const MatchInput& in) const {
    MatchResult m = engine->matchFrom(in);
    if (!m.matched()) return "";
    return m.action != nullptr ? m.action->outbound : "(headless)";
  }
  bool hit(const MatchInput& in) const { return decide(in) == "hit"; }

  FakeGeosite geosite;
  FakeGeoip geoip;
  RuleSetMap sets;
  DiagList diags;
  std::unique_ptr<RuleEngine> engine;
};

// ---- single fields ----

TEST_F(Engine, Domain) {
  compile({rule([](RuleSpec& r) { r.domain = {"example.com"}; })});
  EXPECT_TRUE(hit(toDomain("example.com")));
  EXPECT_FALSE(hit(toDomain("www.example.com")));
  EXPECT_FALSE(hit(toIp("1.2.3.4")));
}

TEST_F(Engine, DomainSuffix) {
  compile({rule([](RuleSpec& r) { r.domain_suffix = {"google.com", ".sub.org"}; })});
  EXPECT_TRUE(hit(toDomain("google.com")));
  EXPECT_TRUE(hit(toDomain("mail.google.com")));
  EXPECT_FALSE(hit(toDomain("notgoogle.com")));
  EXPECT_FALSE(hit(toDomain("sub.org")));
  EXPECT_TRUE(hit(toDomain("a.sub.org")));
}

TEST_F(Engine, DomainKeywordIsSubstringAndLowerCased) {
  compile({rule([](RuleSpec& r) { r.domain_keyword = {"GooG"}; })});
  EXPECT_TRUE(hit(toDomain("www.google.com")));
  EXPECT_TRUE(hit(toDomain("googxgoog")));
  EXPECT_FALSE(hit(toDomain("goo.gle")));
}

TEST_F(Engine, DomainRegexIsUnanchoredRe2) {
  compile({rule([](RuleSpec& r) { r.domain_regex = {"^ad[0-9]+\\.", "tracker"}; })});
  EXPECT_TRUE(hit(toDomain("ad12.example.com")));
  EXPECT_FALSE(hit(toDomain("bad12.example.com")));
  EXPECT_TRUE(hit(toDomain("x.tracker.net")));
  EXPECT_FALSE(hit(toDomain("example.com")));
}

TEST_F(Engine, BadRegexIsACompileErrorWithPosition) {
  RuleSpec r = rule([](RuleSpec& r) { r.domain_regex = {"(unclosed"}; });
  r.pos.file = "config.json";
  r.pos.line = 12;
  r.pos.column = 5;
  r.pos.path = "route.rules[0]";
  auto res = RuleEngine::compile({r}, sets, {}, diags);
  ASSERT_FALSE(res.has_value());
  ASSERT_EQ(diags.errorCount(), 1u);
  EXPECT_EQ(diags.all()[0].line, 12u);
  EXPECT_EQ(diags.all()[0].code, "bad-regex");
  EXPECT_NE(diags.all()[0].toString().find("config.json:12:5"), std::string::npos);
}

TEST_F(Engine, GeositeExpandsIntoDomainMatchers) {
  geosite.add("google", GeositeItem::Type::Suffix, "google.com");
  geosite.add("google", GeositeItem::Type::Domain, "g.co");
  geosite.add("google", GeositeItem::Type::Keyword, "gstatic");
  geosite.add("google", GeositeItem::Type::Regex, "^youtube[0-9]\\.");
  geosite.add("google@cn", GeositeItem::Type::Domain, "google.cn");
  compile({rule([](RuleSpec& r) { r.geosite = {"GOOGLE"}; }, "g"),
           rule([](RuleSpec& r) { r.geosite = {"google@cn"}; }, "gcn")});
  EXPECT_EQ(decide(toDomain("www.google.com")), "g");
  EXPECT_EQ(decide(toDomain("g.co")), "g");
  EXPECT_EQ(decide(toDomain("www.g.co")), "");
  EXPECT_EQ(decide(toDomain("fonts.gstatic.net")), "g");
  EXPECT_EQ(decide(toDomain("youtube1.example")), "g");
  EXPECT_EQ(decide(toDomain("google.cn")), "gcn");
}

TEST_F(Engine, UnknownGeositeCodeAndMissingDatabaseAreErrors) {
  auto r1 = RuleEngine::compile({rule([](RuleSpec& r) { r.geosite = {"nope"}; })}, sets,
                                GeoSources{&geosite, nullptr}, diags);
  EXPECT_FALSE(r1.has_value());
  EXPECT_EQ(diags.all().back().code, "unknown-geosite");
  auto r2 = RuleEngine::compile({rule([](RuleSpec& r) { r.geosite = {"x"}; })}, sets, {}, diags);
  EXPECT_FALSE(r2.has_value());
  EXPECT_EQ(diags.all().back().code, "no-geosite");
  auto r3 = RuleEngine::compile({rule([](RuleSpec& r) { r.geoip = {"cn"}; })}, sets, {}, diags);
  EXPECT_FALSE(r3.has_value());
  EXPECT_EQ(diags.all().back().code, "no-geoip");
  // geoip:private needs no database.
  auto r4 = RuleEngine::compile({rule([](RuleSpec& r) { r.geoip = {"private"}; })}, sets, {}, diags);
  EXPECT_TRUE(r4.has_value());
}

TEST_F(Engine, GeoipIsCaseInsensitiveAndPrivateMeansNonPublic) {
  geoip.entries = {{"1.0.1.0/24", "CN"}, {"8.8.8.0/24", "US"}};
  compile({rule([](RuleSpec& r) { r.geoip = {"cn", "private"}; })});
  EXPECT_TRUE(hit(toIp("1.0.1.5")));
  EXPECT_FALSE(hit(toIp("8.8.8.8")));
  EXPECT_TRUE(hit(toIp("192.168.1.1")));
  EXPECT_TRUE(hit(toIp("127.0.0.1")));
  EXPECT_TRUE(hit(toIp("fe80::1")));
  EXPECT_FALSE(hit(toDomain("example.cn")));  // no IP: sing-box does not resolve on its own
}

TEST_F(Engine, SourceGeoip) {
  geoip.entries = {{"1.0.1.0/24", "CN"}};
  compile({rule([](RuleSpec& r) { r.source_geoip = {"CN"}; })});
  MatchInput in = toIp("8.8.8.8");
  in.source = ip("1.0.1.9");
  EXPECT_TRUE(hit(in));
  in.source = ip("9.9.9.9");
  EXPECT_FALSE(hit(in));
}

TEST_F(Engine, IpCidrTestsDestinationOrResolvedAddresses) {
  compile({rule([](RuleSpec& r) { r.ip_cidr = {"10.0.0.0/8", "2001:db8::/32"}; })});
  EXPECT_TRUE(hit(toIp("10.1.1.1")));
  EXPECT_TRUE(hit(toIp("::ffff:10.1.1.1")));
  EXPECT_TRUE(hit(toIp("2001:db8::5")));
  EXPECT_FALSE(hit(toIp("11.1.1.1")));
  MatchInput in = toDomain("intranet.example");
  EXPECT_FALSE(hit(in));
  IpAddress resolved[] = {ip("203.0.113.1"), ip("10.2.3.4")};
  in.destination_addresses = resolved;
  EXPECT_TRUE(hit(in));
}

TEST_F(Engine, BadCidrIsAnError) {
  auto r = RuleEngine::compile({rule([](RuleSpec& r) { r.ip_cidr = {"10.0.0.0/40"}; })}, sets, {}, diags);
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(diags.all().back().code, "bad-cidr");
}

TEST_F(Engine, SourceIpCidrAndPrivate) {
  compile({rule([](RuleSpec& r) { r.source_ip_cidr = {"192.168.8.0/24"}; }, "a"),
           rule([](RuleSpec& r) { r.source_ip_is_private = true; }, "b"),
           rule([](RuleSpec& r) { r.ip_is_private = true; }, "c")});
  MatchInput in = toIp("8.8.8.8");
  in.source = ip("192.168.8.20");
  EXPECT_EQ(decide(in), "a");
  in.source = ip("10.0.0.1");
  EXPECT_EQ(decide(in), "b");
  in.source = ip("9.9.9.9");
  EXPECT_EQ(decide(in), "");
  in.destination = ip("172.16.0.1");
  EXPECT_EQ(decide(in), "c");
}

TEST_F(Engine, PortsAndRanges) {
  compile({rule([](RuleSpec& r) { r.port = {80, 443}; }, "p"),
           rule([](RuleSpec& r) { r.port_range = {"1000:2000", ":10", "60000:"}; }, "r"),
           rule([](RuleSpec& r) { r.source_port = {5353}; }, "sp"),
           rule([](RuleSpec& r) { r.source_port_range = {"40000:40010"}; }, "sr")});
  EXPECT_EQ(decide(toIp("1.1.1.1", 443)), "p");
  EXPECT_EQ(decide(toIp("1.1.1.1", 1500)), "r");
  EXPECT_EQ(decide(toIp("1.1.1.1", 5)), "r");
  EXPECT_EQ(decide(toIp("1.1.1.1", 65535)), "r");
  MatchInput in = toIp("1.1.1.1", 3000);
  EXPECT_EQ(decide(in), "");
  in.source_port = 5353;
  EXPECT_EQ(decide(in), "sp");
  in.source_port = 40005;
  EXPECT_EQ(decide(in), "sr");
}

TEST_F(Engine, BadPortRangeIsAnError) {
  auto r = RuleEngine::compile({rule([](RuleSpec& r) { r.port_range = {"9:1"}; })}, sets, {}, diags);
  EXPECT_FALSE(r.has_value());
}

TEST_F(Engine, AndItems) {
  compile({rule([](RuleSpec& r) { r.inbound = {"tproxy-in"}; }, "inbound"),
           rule([](RuleSpec& r) { r.auth_user = {"alice"}; }, "user"),
           rule([](RuleSpec& r) { r.protocol = {"QUIC"}; }, "proto"),
           rule([](RuleSpec& r) { r.client = {"chromium"}; }, "client"),
           rule([](RuleSpec& r) { r.network = {"udp"}; }, "udp"),
           rule([](RuleSpec& r) { r.ip_version = {6}; }, "v6"),
           rule([](RuleSpec& r) { r.query_type = {28}; }, "aaaa")});
  MatchInput in = toIp("1.1.1.1");
  EXPECT_EQ(decide(in), "");
  in.inbound = "tproxy-in";
  EXPECT_EQ(decide(in), "inbound");
  in.inbound = "mixed-in";
  in.auth_user = "alice";
  EXPECT_EQ(decide(in), "user");
  in.auth_user = "bob";
  in.protocol = "quic";
  EXPECT_EQ(decide(in), "proto");
  in.protocol = "tls";
  in.client = "chromium";
  EXPECT_EQ(decide(in), "client");
  in.client = "";
  in.network = "udp";
  EXPECT_EQ(decide(in), "udp");
  in.network = "tcp";
  EXPECT_EQ(decide(in), "");
  in.destination = ip("2001:db8::1");
  EXPECT_EQ(decide(in), "v6");
  MatchInput q = toDomain("example.com");
  q.query_type = 28;
  EXPECT_EQ(decide(q), "aaaa");
  q.query_type = 1;
  EXPECT_EQ(decide(q), "");
}

TEST_F(Engine, RouterOnlyFieldsNeverMatchAndWarn) {
  compile({rule([](RuleSpec& r) { r.process_name = {"curl"}; }, "never"),
           rule([](RuleSpec& r) { r.wifi_ssid = {"home"}; r.invert = true; }, "inv")});
  EXPECT_EQ(diags.warningCount(), 2u);
  EXPECT_EQ(diags.all()[0].code, "unsupported-field");
  EXPECT_EQ(decide(toDomain("a.com")), "inv");
}

// ---- grouping (sing-box docs: groups ORed inside, ANDed across) ----

TEST_F(Engine, SameGroupIsOredAcrossFields) {
  // (domain || domain_suffix || ip_cidr) && (port || port_range)
  compile({rule([](RuleSpec& r) {
    r.domain = {"a.com"};
    r.domain_suffix = {"b.com"};
    r.ip_cidr = {"10.0.0.0/8"};
    r.port = {443};
    r.port_range = {"8000:8100"};
  })});
  EXPECT_TRUE(hit(toDomain("a.com", 443)));
  EXPECT_TRUE(hit(toDomain("x.b.com", 8050)));
  EXPECT_TRUE(hit(toIp("10.0.0.1", 443)));
  EXPECT_FALSE(hit(toDomain("a.com", 80)));
  EXPECT_FALSE(hit(toDomain("c.com", 443)));
}

TEST_F(Engine, SourceAndDestinationGroupsAreAnded) {
  compile({rule([](RuleSpec& r) {
    r.source_ip_cidr = {"192.168.1.0/24"};
    r.source_ip_is_private = false;
    r.source_port_range = {"1024:"};
    r.domain_suffix = {"example.com"};
    r.network = {"tcp"};
  })});
  MatchInput in = toDomain("www.example.com");
  in.source = ip("192.168.1.5");
  in.source_port = 50000;
  EXPECT_TRUE(hit(in));
  in.source_port = 53;
  EXPECT_FALSE(hit(in));
  in.source_port = 50000;
  in.source = ip("192.168.2.5");
  EXPECT_FALSE(hit(in));
  in.source = ip("192.168.1.5");
  in.network = "udp";
  EXPECT_FALSE(hit(in));
}

TEST_F(Engine, RuleWithoutConditionsMatchesEvenInverted) {
  RuleSpec any = rule([](RuleSpec&) {}, "any");
  RuleSpec inv = rule([](RuleSpec& r) { r.invert = true; }, "inv");
  compile({inv, any});
  EXPECT_EQ(decide(toDomain("x.org")), "inv");
}

TEST_F(Engine, InvertNegatesTheWholeDefaultRule) {
  compile({rule([](RuleSpec& r) {
    r.domain_suffix = {"cn"};
    r.port = {443};
    r.invert = true;
  })});
  EXPECT_FALSE(hit(toDomain("a.cn", 443)));
  EXPECT_TRUE(hit(toDomain("a.cn", 80)));
  EXPECT_TRUE(hit(toDomain("a.com", 443)));
}

// ---- logical rules ----

RuleSpec logical(RuleSpec::Mode mode, std::vector<RuleSpec> rules, bool invert = false) {
  RuleSpec r;
  r.type = RuleSpec::Type::Logical;
  r.mode = mode;
  r.rules = std::move(rules);
  r.invert = invert;
  return r;
}

RuleSpec headless(std::function<void(RuleSpec&)> f) {
  RuleSpec r;
  f(r);
  return r;
}

TEST_F(Engine, LogicalAndOrNestedAndInverted) {
  // (a.com || b.com) && !(port 80)
  RuleSpec r = logical(RuleSpec::Mode::And,
                       {logical(RuleSpec::Mode::Or, {headless([](RuleSpec& r) { r.domain = {"a.com"}; }),
                                                     headless([](RuleSpec& r) { r.domain = {"b.com"}; })}),
                        headless([](RuleSpec& r) {
                          r.port = {80};
                          r.invert = true;
                        })});
  r.action = route("hit");
  compile({r});
  EXPECT_TRUE(hit(toDomain("a.com", 443)));
  EXPECT_TRUE(hit(toDomain("b.com", 443)));
  EXPECT_FALSE(hit(toDomain("b.com", 80)));
  EXPECT_FALSE(hit(toDomain("c.com", 443)));
}

TEST_F(Engine, LogicalSubRulesDoNotShareGroupFlags) {
  // and(domain a.com, domain b.com): each sub-rule starts fresh, so the second one must match
  // on its own (a plain rule {domain: [a.com, b.com]} would OR them).
  RuleSpec r = logical(RuleSpec::Mode::And, {headless([](RuleSpec& r) { r.domain = {"a.com"}; }),
                                             headless([](RuleSpec& r) { r.domain = {"b.com"}; })});
  r.action = route("hit");
  compile({r});
  EXPECT_FALSE(hit(toDomain("a.com")));
  EXPECT_FALSE(hit(toDomain("b.com")));
}

TEST_F(Engine, InvertedLogicalOr) {
  RuleSpec r = logical(RuleSpec::Mode::Or,
                       {headless([](RuleSpec& r) { r.domain_suffix = {"cn"}; }),
                        headless([](RuleSpec& r) { r.ip_is_private = true; })},
                       true);
  r.action = route("hit");
  compile({r});
  EXPECT_FALSE(hit(toDomain("a.cn")));
  EXPECT_FALSE(hit(toIp("10.0.0.1")));
  EXPECT_TRUE(hit(toDomain("a.com")));
}

TEST_F(Engine, EmptyLogicalRuleIsAnError) {
  RuleSpec r = logical(RuleSpec::Mode::Or, {});
  r.action = route("x");
  EXPECT_FALSE(RuleEngine::compile({r}, sets, {}, diags).has_value());
}

// ---- rule sets ----

TEST_F(Engine, RuleSetTagsAreOredAndUnknownTagIsAnError) {
  sets["a"] = {headless([](RuleSpec& r) { r.domain = {"a.com"}; })};
  sets["b"] = {headless([](RuleSpec& r) { r.domain = {"b.com"}; })};
  compile({rule([](RuleSpec& r) { r.rule_set = {"a", "b"}; })});
  EXPECT_TRUE(hit(toDomain("a.com")));
  EXPECT_TRUE(hit(toDomain("b.com")));
  EXPECT_FALSE(hit(toDomain("c.com")));
  auto bad = RuleEngine::compile({rule([](RuleSpec& r) { r.rule_set = {"nope"}; })}, sets, {}, diags);
  EXPECT_FALSE(bad.has_value());
  EXPECT_EQ(diags.all().back().code, "unknown-rule-set");
}

TEST_F(Engine, RuleSetMergeOuterDomainOrSet) {
  // {domain: a.com, rule_set: X} = "a.com OR anything in X" (sing-box merge semantics).
  sets["x"] = {headless([](RuleSpec& r) { r.domain_suffix = {"x.org"}; })};
  compile({rule([](RuleSpec& r) {
    r.domain = {"a.com"};
    r.rule_set = {"x"};
  })});
  EXPECT_TRUE(hit(toDomain("a.com")));
  EXPECT_TRUE(hit(toDomain("www.x.org")));
  EXPECT_FALSE(hit(toDomain("b.com")));
}

TEST_F(Engine, RuleSetMergeOuterSatisfiedGroupIsSkippedInside) {
  // Outer port:443 satisfies the port group, so the set's port:80 is not tested.
  sets["x"] = {headless([](RuleSpec& r) {
    r.domain = {"a.com"};
    r.port = {80};
  })};
  compile({rule([](RuleSpec& r) {
    r.port = {443};
    r.rule_set = {"x"};
  })});
  EXPECT_TRUE(hit(toDomain("a.com", 443)));
  // The outer port group fails for 80, but the set's port:80 then satisfies the (shared) port
  // group: merged, the rule reads (port 443 OR the set's port) && the set's domain.
  EXPECT_TRUE(hit(toDomain("a.com", 80)));
  EXPECT_FALSE(hit(toDomain("a.com", 22)));
  EXPECT_FALSE(hit(toDomain("b.com", 443)));
}

TEST_F(Engine, RuleSetFlagsDoNotLeakBetweenHeadlessRules) {
  // The DECISION in rule_engine.h: R1 {a.com, 80} / R2 {b.com, 443} must not match a.com:443
  // (sing-box's un-reset flags would make it match).
  sets["x"] = {headless([](RuleSpec& r) {
                 r.domain = {"a.com"};
                 r.port = {80};
               }),
               headless([](RuleSpec& r) {
                 r.domain = {"b.com"};
                 r.port = {443};
               })};
  compile({rule([](RuleSpec& r) { r.rule_set = {"x"}; })});
  EXPECT_FALSE(hit(toDomain("a.com", 443)));
  EXPECT_FALSE(hit(toDomain("b.com", 80)));
  EXPECT_TRUE(hit(toDomain("a.com", 80)));
  EXPECT_TRUE(hit(toDomain("b.com", 443)));
}

TEST_F(Engine, RuleSetFlagsDoNotLeakBetweenSets) {
  sets["x"] = {headless([](RuleSpec& r) {
    r.domain = {"a.com"};
    r.port = {80};
  })};
  sets["y"] = {headless([](RuleSpec& r) { r.port = {443}; r.domain = {"b.com"}; })};
  compile({rule([](RuleSpec& r) { r.rule_set = {"x", "y"}; })});
  EXPECT_FALSE(hit(toDomain("a.com", 443)));
}

TEST_F(Engine, RuleSetMatchSourceMakesIpCidrTestTheSource) {
  sets["lan"] = {headless([](RuleSpec& r) { r.ip_cidr = {"192.168.0.0/16"}; })};
  compile({rule([](RuleSpec& r) {
             r.rule_set = {"lan"};
             r.rule_set_ip_cidr_match_source = true;
           }, "src"),
           rule([](RuleSpec& r) { r.rule_set = {"lan"}; }, "dst")});
  MatchInput in = toIp("192.168.5.5");
  in.source = ip("10.0.0.2");
  EXPECT_EQ(decide(in), "dst");
  in.source = ip("192.168.1.1");
  in.destination = ip("8.8.8.8");
  EXPECT_EQ(decide(in), "src");
}

TEST_F(Engine, RuleSetInsideARuleSetIsAnError) {
  sets["a"] = {headless([](RuleSpec& r) { r.rule_set = {"b"}; })};
  sets["b"] = {headless([](RuleSpec& r) { r.domain = {"b.com"}; })};
  EXPECT_FALSE(RuleEngine::compile({rule([](RuleSpec& r) { r.rule_set = {"a"}; })}, sets, {}, diags)
                   .has_value());
}

TEST_F(Engine, InvertedHeadlessRuleInSet) {
  sets["notcn"] = {headless([](RuleSpec& r) {
    r.domain_suffix = {"cn"};
    r.invert = true;
  })};
  compile({rule([](RuleSpec& r) { r.rule_set = {"notcn"}; })});
  EXPECT_TRUE(hit(toDomain("a.com")));
  EXPECT_FALSE(hit(toDomain("a.cn")));
}

TEST_F(Engine, OneItemPerRuleSetsAreMergedWithoutChangingDecisions) {
  std::vector<RuleSpec> many;
  for (int i = 0; i < 1000; ++i) {
    many.push_back(headless([&](RuleSpec& r) { r.domain_suffix = {"d" + std::to_string(i) + ".test"}; }));
  }
  many.push_back(headless([](RuleSpec& r) { r.port = {8080}; }));  // another group: new run
  many.push_back(headless([](RuleSpec& r) { r.ip_cidr = {"10.0.0.0/8"}; }));
  many.push_back(headless([](RuleSpec& r) { r.domain = {"x.org"}; }));  // merges with ip_cidr
  many.push_back(headless([](RuleSpec& r) {
    r.domain = {"inv.org"};
    r.invert = true;
  }));  // inverted: kept alone
  sets["many"] = many;
  // Outer port:443 shares the port group with the set (merge semantics).
  compile({rule([](RuleSpec& r) {
    r.rule_set = {"many"};
    r.port = {443};
  })});
  EXPECT_EQ(engine->ruleSetRuleCount("many"), 4u);
  EXPECT_TRUE(hit(toDomain("www.d999.test", 443)));
  EXPECT_TRUE(hit(toDomain("d0.test", 443)));
  EXPECT_FALSE(hit(toDomain("d1000.test", 80)));
  EXPECT_TRUE(hit(toDomain("x.org", 443)));
  EXPECT_TRUE(hit(toIp("10.0.0.1", 443)));
  // Through the {port:8080} rule: satisfies the port group; the outer rule has no address group.
  EXPECT_TRUE(hit(toDomain("nothing.example", 8080)));
  // The inverted rule matches everything but inv.org, so only inv.org on a port other than 443
  // and 8080 fails.
  EXPECT_TRUE(hit(toDomain("other.example", 443)));
  EXPECT_FALSE(hit(toDomain("inv.org", 22)));
}

TEST_F(Engine, MergedRuleSetRulesKeepTheirErrorPositions) {
  RuleSpec good = headless([](RuleSpec& r) { r.ip_cidr = {"10.0.0.0/8"}; });
  good.pos.path = "rules[0]";
  RuleSpec bad = headless([](RuleSpec& r) { r.ip_cidr = {"10.0.0.0/99"}; });
  bad.pos.path = "rules[1]";
  sets["s"] = {good, bad};
  auto r = RuleEngine::compile({rule([](RuleSpec& r) { r.rule_set = {"s"}; })}, sets, {}, diags);
  ASSERT_FALSE(r.has_value());
  ASSERT_EQ(diags.errorCount(), 1u);
  EXPECT_EQ(diags.all()[0].path, "rules[1]");
}

// ---- actions and continuation ----

TEST_F(Engine, NonFinalActionsContinueFromNextIndex) {
  RuleSpec sniff;
  sniff.action = RuleAction{};
  sniff.action->type = RuleAction::Type::Sniff;
  RuleSpec resolve = rule([](RuleSpec& r) { r.domain_suffix = {"example.com"}; });
  resolve.action = RuleAction{};
  resolve.action->type = RuleAction::Type::Resolve;
  resolve.action->resolve_strategy = "ipv4_only";
  compile({sniff, resolve, rule([](RuleSpec& r) { r.ip_cidr = {"93.184.0.0/16"}; }, "proxy")});
  MatchInput in = toDomain("www.example.com");
  MatchResult m = engine->matchFrom(in);
  ASSERT_TRUE(m.matched());
  EXPECT_EQ(m.index, 0u);
  EXPECT_EQ(m.action->type, RuleAction::Type::Sniff);
  EXPECT_FALSE(m.action->isFinal());
  m = engine->matchFrom(in, m.index + 1);
  ASSERT_TRUE(m.matched());
  EXPECT_EQ(m.index, 1u);
  EXPECT_EQ(m.action->resolve_strategy, "ipv4_only");
  IpAddress addrs[] = {ip("93.184.216.34")};
  in.destination_addresses = addrs;
  m = engine->matchFrom(in, m.index + 1);
  ASSERT_TRUE(m.matched());
  EXPECT_EQ(m.index, 2u);
  EXPECT_EQ(m.action->outbound, "proxy");
  EXPECT_EQ(engine->matchFrom(in, 3).status, MatchResult::Status::NoMatch);
  EXPECT_EQ(engine->matchFrom(in, 99).status, MatchResult::Status::NoMatch);
}

TEST_F(Engine, OnDemandResolveAsksOnlyWhenTheRuleIsReached) {
  geoip.entries = {{"1.0.1.0/24", "CN"}};
  compile({rule([](RuleSpec& r) { r.domain_suffix = {"local"}; }, "lan"),
           rule([](RuleSpec& r) {
             r.domain_suffix = {"cn"};
             r.geoip = {"cn"};
           }, "direct"),
           rule([](RuleSpec& r) {
             r.ip_cidr = {"10.0.0.0/8"};
             r.port = {22};
           }, "ssh"),
           rule([](RuleSpec&) {}, "proxy")});
  MatchInput in = toDomain("printer.local");
  in.on_demand_resolve = true;
  EXPECT_EQ(decide(in), "lan");  // reached before any IP rule: no resolution
  in.domain = "shop.cn";
  EXPECT_EQ(decide(in), "direct");  // the domain item matches; no need to resolve
  in.domain = "example.com";
  MatchResult m = engine->matchFrom(in);
  EXPECT_EQ(m.status, MatchResult::Status::NeedResolve);
  EXPECT_EQ(m.index, 1u);
  IpAddress cn[] = {ip("1.0.1.1")};
  in.destination_addresses = cn;
  m = engine->matchFrom(in, m.index);
  ASSERT_TRUE(m.matched());
  EXPECT_EQ(m.action->outbound, "direct");
  // Port 443 can never satisfy the ssh rule, so no resolution is requested for it.
  IpAddress other[] = {ip("9.9.9.9")};
  in.destination_addresses = {};
  in.port = 443;
  m = engine->matchFrom(in, 2);
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.action->outbound, "proxy");
  in.destination_addresses = other;
  EXPECT_EQ(decide(in), "proxy");
  // With the flag off (sing-box semantics), IP items simply do not match a domain.
  in.destination_addresses = {};
  in.on_demand_resolve = false;
  EXPECT_EQ(decide(in), "proxy");
}

TEST_F(Engine, OnDemandResolveForInvertedRuleAsksFirst) {
  compile({rule([](RuleSpec& r) {
             r.ip_cidr = {"10.0.0.0/8"};
             r.invert = true;
           }, "public"),
           rule([](RuleSpec&) {}, "other")});
  MatchInput in = toDomain("example.com");
  in.on_demand_resolve = true;
  EXPECT_EQ(engine->matchFrom(in).status, MatchResult::Status::NeedResolve);
  IpAddress lan[] = {ip("10.1.1.1")};
  in.destination_addresses = lan;
  EXPECT_EQ(decide(in), "other");
}

// ---- trace and describe ----

TEST_F(Engine, TraceNamesTheMatchingFieldAndValue) {
  geosite.add("ads", GeositeItem::Type::Suffix, "doubleclick.net");
  sets["cn"] = {headless([](RuleSpec& r) { r.domain_suffix = {"cn"}; })};
  RuleSpec r0 = rule([](RuleSpec& r) { r.geosite = {"ads"}; }, "block");
  r0.pos.file = "rules.veer";
  r0.pos.line = 1;
  r0.pos.column = 1;
  compile({r0, rule([](RuleSpec& r) {
             r.domain_suffix = {"google.com", "youtube.com"};
             r.port = {443};
           }, "proxy"),
           rule([](RuleSpec& r) { r.rule_set = {"cn"}; }, "direct"),
           rule([](RuleSpec& r) { r.ip_cidr = {"10.0.0.0/8", "1.2.3.0/24"}; }, "lan")});
  Trace t;
  MatchResult m = engine->matchFrom(toDomain("www.google.com", 443), 0, &t);
  ASSERT_TRUE(m.matched());
  ASSERT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.steps[0].outcome, TraceStep::Outcome::NoMatch);
  EXPECT_EQ(t.steps[0].pos.line, 1u);
  EXPECT_EQ(t.steps[1].outcome, TraceStep::Outcome::Matched);
  EXPECT_EQ(t.steps[1].detail, "domain_suffix \"google.com\", port 443");
  EXPECT_EQ(t.steps[1].rule, "domain_suffix=[google.com youtube.com] port=443 => route(proxy)");

  t.clear();
  engine->matchFrom(toDomain("ad.doubleclick.net"), 0, &t);
  EXPECT_EQ(t.steps[0].detail, "geosite:ads (domain_suffix \"doubleclick.net\")");
  t.clear();
  engine->matchFrom(toDomain("a.cn"), 0, &t);
  EXPECT_EQ(t.steps.back().detail, "rule_set cn: domain_suffix \"cn\"");
  t.clear();
  engine->matchFrom(toIp("1.2.3.9"), 0, &t);
  EXPECT_EQ(t.steps.back().detail, "ip_cidr \"1.2.3.0/24\" (1.2.3.9)");
  EXPECT_NE(t.toString().find("#0 rules.veer:1:1 no match"), std::string::npos) << t.toString();
}

TEST_F(Engine, DescribeActions) {
  RuleAction a;
  a.type = RuleAction::Type::Reject;
  a.reject_method = "drop";
  EXPECT_EQ(describeAction(a), "reject(drop)");
  a = RuleAction{};
  a.type = RuleAction::Type::Sniff;
  a.sniffers = {"tls", "http"};
  a.sniff_timeout_ms = 500;
  EXPECT_EQ(describeAction(a), "sniff(tls http timeout=500ms)");
  a = RuleAction{};
  a.type = RuleAction::Type::HijackDns;
  EXPECT_EQ(describeAction(a), "hijack-dns");
  RuleSpec r;
  for (int i = 0; i < 10; ++i) r.domain.push_back("d" + std::to_string(i));
  r.invert = true;
  EXPECT_EQ(describeRule(r), "!(domain=[d0 d1 d2 d3 d4 d5 d6 d7 ... +2])");
}

TEST_F(Engine, DescribeCompiledShowsTheMatchers) {
  geosite.add("cn", GeositeItem::Type::Suffix, "cn");
  geosite.add("cn", GeositeItem::Type::Domain, "baidu.com");
  sets["s"] = {headless([](RuleSpec& r) { r.domain = {"x"}; })};
  compile({rule([](RuleSpec& r) {
             r.domain = {"a.com"};
             r.geosite = {"cn"};
             r.ip_cidr = {"10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16"};
             r.port = {443};
             r.port_range = {"1000:2000", "2001:2002"};
             r.network = {"tcp"};
           }),
           rule([](RuleSpec& r) {
             r.rule_set = {"s"};
             r.rule_set_ip_cidr_match_source = true;
             r.invert = true;
           })});
  EXPECT_EQ(engine->describeCompiled(0),
            "(domain_set(2 exact, 1 suffix, geosite=[cn]) || ip_cidr(3 prefixes, 2 ranges)) && "
            "port=[443 1000-2002] && network=[tcp]");
  EXPECT_EQ(engine->describeCompiled(1), "!(rule_set=[s] (ip_cidr matches source))");
  EXPECT_GT(engine->memoryBytes(), 0u);
}

TEST_F(Engine, TraceRecordsNeedResolve) {
  compile({rule([](RuleSpec& r) { r.geoip = {"private"}; }, "lan")});
  MatchInput in = toDomain("nas.example");
  in.on_demand_resolve = true;
  Trace t;
  MatchResult m = engine->matchFrom(in, 0, &t);
  EXPECT_EQ(m.status, MatchResult::Status::NeedResolve);
  ASSERT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.steps[0].outcome, TraceStep::Outcome::NeedResolve);
  EXPECT_NE(t.toString().find("needs the destination resolved"), std::string::npos);
}

// ---- performance contract ----

TEST_F(Engine, MatchingDoesNotAllocate) {
  geoip.entries = {{"1.0.1.0/24", "CN"}};
  geosite.add("ads", GeositeItem::Type::Suffix, "doubleclick.net");
  geosite.add("ads", GeositeItem::Type::Keyword, "adserver");
  geosite.add("ads", GeositeItem::Type::Regex, "^ads?[0-9]*\\.");
  sets["cn"] = {headless([](RuleSpec& r) { r.domain_suffix = {"cn"}; }),
                headless([](RuleSpec& r) { r.ip_cidr = {"1.0.0.0/8"}; })};
  compile({rule([](RuleSpec& r) { r.geosite = {"ads"}; }, "block"),
           rule([](RuleSpec& r) {
             r.domain_keyword = {"google"};
             r.port_range = {"400:500"};
           }, "g"),
           rule([](RuleSpec& r) { r.rule_set = {"cn"}; r.network = {"tcp"}; }, "cn"),
           rule([](RuleSpec& r) { r.geoip = {"cn", "private"}; }, "direct"),
           logical(RuleSpec::Mode::Or, {headless([](RuleSpec& r) { r.domain = {"x.y"}; }),
                                        headless([](RuleSpec& r) { r.port = {22}; r.invert = true; })})});
  // The last rule has no action: headless-style match.
  IpAddress addrs[] = {ip("8.8.8.8")};
  std::vector<MatchInput> inputs = {toDomain("ad1.example.com"), toDomain("www.google.com", 443),
                                    toDomain("nothing.example", 22), toIp("1.0.1.1"), toIp("9.9.9.9", 80)};
  inputs[2].destination_addresses = addrs;
  for (const auto& in : inputs) engine->matchFrom(in);  // warm RE2's DFA cache
  g_allocs = 0;
  g_counting = true;
  size_t matched = 0;
  for (int i = 0; i < 100; ++i) {
    for (const auto& in : inputs) matched += engine->matchFrom(in).matched();
  }
  g_counting = false;
  EXPECT_EQ(g_allocs.load(), 0);
  EXPECT_EQ(matched, 500u - 100u);  // only "nothing.example:22" falls through
}

}  // namespace
}  // namespace veer::rules
