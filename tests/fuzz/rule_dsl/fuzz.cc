// Fuzzes the DSL front end and everything behind it: parse (both modes), render the diagnostics,
// write the rules back and re-parse them (the writer's output must parse without errors, write
// identically, and make the same decisions), lint them, and compile and match them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rules/dsl.h"
#include "rules/lint.h"
#include "rules/rule_engine.h"

using namespace veer;
using namespace veer::rules;

namespace {

// Tiny geodata so that geosite/geoip rules compile: every code exists.
class AnyGeosite : public GeositeSource {
 public:
  Result<std::vector<GeositeItem>> load(std::string_view code) const override {
    return std::vector<GeositeItem>{{GeositeItem::Type::Suffix, std::string(code) + ".example"},
                                    {GeositeItem::Type::Keyword, "ads"}};
  }
  bool has(std::string_view) const override { return true; }
  std::vector<std::string> codes() const override { return {}; }
};
class FirstOctetGeoip : public GeoipSource {
 public:
  std::string_view lookup(const IpAddress& ip) const override {
    return ip.isV4() && ip.data()[0] == 1 ? "CN" : "";
  }
  std::vector<std::string> codes() const override { return {}; }
};

const RuleSetMap& ruleSets() {
  static const RuleSetMap sets = [] {
    RuleSetMap m;
    RuleSpec a;
    a.domain = {"a.com"};
    a.port = {80};
    RuleSpec b;
    b.ip_cidr = {"10.0.0.0/8"};
    m["x"] = {a, b};
    m["y"] = {};
    return m;
  }();
  return sets;
}

/// Every decision the router would take for `in`, as text.
std::string decisions(const RuleEngine& e, const MatchInput& in) {
  std::string out;
  for (size_t i = 0, n = 0; n < 64; ++n) {
    MatchResult m = e.matchFrom(in, i);
    out += std::to_string(static_cast<int>(m.status)) + ":" + std::to_string(m.index) + " ";
    if (m.status != MatchResult::Status::Matched) break;
    i = m.index + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const AnyGeosite geosite;
  static const FirstOctetGeoip geoip;
  const GeoSources sources{&geosite, &geoip};
  for (DslMode mode : {DslMode::Route, DslMode::RuleSet}) {
    DiagList diags;
    DslFile f = parseDsl(text, "fuzz.veer", mode, diags);
    (void)renderDiags(text, diags);
    std::string written = writeDsl(f, mode);
    DiagList again;
    DslFile g = parseDsl(written, "rewritten.veer", mode, again);
    if (!again.empty() || writeDsl(g, mode) != written) {
      // The writer produced text its own parser rejects or reads differently.
      std::abort();
    }
    DiagList lint;
    lintRules(f.rules, ruleSets(), lint);
    DiagList cdiags;
    auto e1 = RuleEngine::compile(f.rules, ruleSets(), sources, cdiags);
    auto e2 = RuleEngine::compile(g.rules, ruleSets(), sources, cdiags);
    if (e1.has_value() != e2.has_value()) std::abort();
    if (!e1) continue;
    IpAddress addrs[] = {*IpAddress::parse("10.1.2.3")};
    MatchInput inputs[4];
    inputs[0].domain = "www.a.com";
    inputs[0].port = 443;
    inputs[0].network = "tcp";
    inputs[1].domain = "a.com";
    inputs[1].port = 80;
    inputs[1].network = "udp";
    inputs[1].on_demand_resolve = true;
    inputs[2].destination = *IpAddress::parse("1.2.3.4");
    inputs[2].source = *IpAddress::parse("192.168.1.2");
    inputs[2].port = 53;
    inputs[2].protocol = "dns";
    inputs[3].domain = "cn.example";
    inputs[3].destination_addresses = addrs;
    inputs[3].inbound = "in";
    for (const auto& in : inputs) {
      // The rewritten rules must decide exactly like the original ones.
      if (decisions(**e1, in) != decisions(**e2, in)) std::abort();
    }
    Trace t;
    (void)(*e1)->matchFrom(inputs[0], 0, &t);
    (void)t.toString();
  }
  return 0;
}
