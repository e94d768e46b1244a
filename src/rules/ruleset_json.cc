#include "rules/ruleset_json.h"

#include "rules/rule_json.h"

namespace veer::rules {
namespace {

bool usesInterfaceAddress(const RuleSpec&) {
  // RuleSpec has no *interface_address fields (veer rejects them when parsing), so a parsed
  // rule-set never needs version 4.
  return false;
}
bool usesV3Items(const RuleSpec& r) {
  if (!r.network_type.empty() || r.network_is_expensive || r.network_is_constrained) return true;
  for (const auto& sub : r.rules) {
    if (usesV3Items(sub)) return true;
  }
  return false;
}

}  // namespace

bool parseRuleSetJson(const json::Value& root, const std::string& file, DiagList& diags,
                      RuleSetSpec& out, const std::string& path_prefix) {
  size_t before = diags.errorCount();
  json::ObjectReader r(root, path_prefix, file, diags);
  if (!r.ok()) return false;
  uint64_t version = 0;
  if (!r.has("version")) {
    r.error("version", "missing rule-set version");
  } else if (r.u64("version", version)) {
    if (version == 0) {
      r.error("version", "missing rule-set version");
    } else if (version > kRuleSetVersionCurrent) {
      r.error("version", "unknown rule-set version " + std::to_string(version) + " (veer knows 1 to " +
                             std::to_string(kRuleSetVersionCurrent) + ")");
    } else {
      out.version = static_cast<uint8_t>(version);
    }
  }
  const json::Value* rules = r.get("rules");
  if (rules && !rules->isNull()) {
    if (!rules->isArray()) {
      r.errorAt(*rules, r.memberPath("rules"),
                std::string("expected a list of rules, got ") + rules->typeName());
    } else {
      out.rules.resize(rules->items.size());
      for (size_t k = 0; k < rules->items.size(); ++k) {
        parseHeadlessRule(rules->items[k], r.memberPath("rules") + "[" + std::to_string(k) + "]",
                          file, diags, out.rules[k]);
      }
    }
  }
  r.finish();
  return diags.errorCount() == before;
}

Result<RuleSetSpec> readRuleSetJson(std::string_view text, const std::string& file) {
  auto root = json::parse(text, file);
  if (!root) return unexpected(root.error());
  DiagList diags;
  RuleSetSpec out;
  if (!parseRuleSetJson(*root, file, diags, out)) {
    std::string msg;
    for (const auto& d : diags.all()) {
      if (d.severity != Diag::Severity::Error) continue;
      if (!msg.empty()) msg += "\n";
      msg += d.toString();
    }
    return unexpected(msg);
  }
  return out;
}

Result<std::string> writeRuleSetJson(const RuleSetSpec& set) {
  json::Value root;
  root.type = json::Value::Type::Object;
  json::Value ver;
  ver.type = json::Value::Type::Uint;
  ver.u = set.version;
  root.members.push_back({"version", {}, ver});
  json::Value rules;
  rules.type = json::Value::Type::Array;
  for (size_t k = 0; k < set.rules.size(); ++k) {
    const RuleSpec& r = set.rules[k];
    // AdGuard sets only exist in binary form; sing-box's decompile refuses them too.
    bool adguard = false;
    auto scan = [&](const RuleSpec& x, auto&& self) -> void {
      adguard |= !x.adguard_domain.empty();
      for (const auto& s : x.rules) self(s, self);
    };
    scan(r, scan);
    if (adguard) {
      return unexpected("rules[" + std::to_string(k) +
                        "]: AdGuard domain sets have no source form (binary rule-sets only)");
    }
    rules.items.push_back(ruleToJson(RuleKind::Headless, r));
  }
  root.members.push_back({"rules", {}, std::move(rules)});
  return json::serialize(root, true) + "\n";
}

uint8_t compileVersion(const RuleSetSpec& set) {
  uint8_t v = set.version;
  if (v == kRuleSetVersion4) {
    bool need4 = false;
    for (const auto& r : set.rules) need4 |= usesInterfaceAddress(r);
    if (!need4) v = kRuleSetVersion3;
  }
  if (v == kRuleSetVersion3) {
    bool need3 = false;
    for (const auto& r : set.rules) need3 |= usesV3Items(r);
    if (!need3) v = kRuleSetVersion2;
  }
  return v;
}

}  // namespace veer::rules
