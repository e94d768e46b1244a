// Fuzzes the DSL front end and everything behind it: parse (both modes), render the diagnostics,
// write the rules back and re-parse them (the writer's output must parse without errors and
// write identically), lint them, and compile and match them.
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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
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
    lintRules(f.rules, {}, lint);
    DiagList cdiags;
    // geosite/geoip/rule_set references fail to compile (no sources): that is fine.
    auto engine = RuleEngine::compile(f.rules, {}, {}, cdiags);
    if (engine) {
      MatchInput in;
      in.domain = "www.example.com";
      in.port = 443;
      in.network = "tcp";
      in.on_demand_resolve = true;
      size_t i = 0;
      while (i < (*engine)->size()) {
        MatchResult m = (*engine)->matchFrom(in, i);
        if (m.status == MatchResult::Status::NoMatch) break;
        i = m.index + 1;
      }
      Trace t;
      (void)(*engine)->matchFrom(in, 0, &t);
      (void)t.toString();
    }
  }
  return 0;
}
