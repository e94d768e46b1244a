// json::parse plus the route/DNS/headless rule parsers over arbitrary text. Whatever parses as a
// rule is written back to JSON and must parse again to the same JSON.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/json.h"
#include "rules/rule_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace veer;
  using namespace veer::rules;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v = json::parse(text, "fuzz.json");
  if (!v) return 0;
  std::vector<const json::Value*> candidates{&*v};
  if (v->isArray()) {
    for (const auto& it : v->items) candidates.push_back(&it);
  }
  for (const json::Value* c : candidates) {
    for (RuleKind kind : {RuleKind::Route, RuleKind::Dns, RuleKind::Headless}) {
      DiagList diags;
      RuleSpec rule;
      if (!parseRule(kind, *c, "rules[0]", "fuzz.json", diags, rule)) continue;
      std::string out = json::serialize(ruleToJson(kind, rule), false);
      auto back = json::parse(out, "out.json");
      if (!back) abort();
      DiagList d2;
      RuleSpec r2;
      if (!parseRule(kind, *back, "rules[0]", "out.json", d2, r2)) abort();
      if (json::serialize(ruleToJson(kind, r2), false) != out) abort();
    }
  }
  return 0;
}
