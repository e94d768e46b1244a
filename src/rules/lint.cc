#include "rules/lint.h"

#include <algorithm>

#include "rules/dsl.h"
#include "rules/item_base.h"
#include "rules/trace.h"

namespace veer::rules {

namespace {

template <typename T>
void canon(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

RuleSpec normalized(const RuleSpec& in) {
  RuleSpec r = in;
  r.pos = SourcePos{};
  r.action.reset();
  for (auto* v : {&r.domain, &r.domain_suffix, &r.domain_keyword, &r.domain_regex, &r.geosite,
                  &r.geoip, &r.ip_cidr, &r.adguard_domain, &r.source_geoip, &r.source_ip_cidr,
                  &r.port_range, &r.source_port_range, &r.inbound, &r.network, &r.auth_user,
                  &r.protocol, &r.client, &r.rule_set, &r.process_name, &r.process_path,
                  &r.process_path_regex, &r.package_name, &r.wifi_ssid, &r.wifi_bssid}) {
    canon(*v);
  }
  canon(r.port);
  canon(r.source_port);
  canon(r.ip_version);
  canon(r.query_type);
  canon(r.network_type);
  for (auto& c : r.rules) c = normalized(c);
  return r;
}

std::string conditionKey(const RuleSpec& r) {
  // The DSL writer is a complete, deterministic text form of the conditions.
  return writeDslCondition(normalized(r));
}

bool hasConditions(const RuleSpec& r) {
  RuleSpec n = normalized(r);
  n.invert = false;
  return writeDslCondition(n) != "any";
}

void checkRegexes(const RuleSpec& r, DiagList& diags, const std::string& where) {
  for (const auto& re : r.domain_regex) {
    std::string err = RegexItem::checkPattern(re);
    if (!err.empty()) {
      diags.error(r.pos.file, r.pos.line, r.pos.column, r.pos.path,
                  where + "domain_regex \"" + re + "\" does not compile: " + err, "bad-regex");
    }
  }
  for (const auto& c : r.rules) checkRegexes(c, diags, where);
}

std::string ruleName(size_t i, const RuleSpec& r) {
  std::string p = formatPos(r.pos);
  return "rule #" + std::to_string(i) + (p.empty() ? "" : " (" + p + ")");
}

}  // namespace

bool isCatchAll(const RuleSpec& r) {
  if (r.type == RuleSpec::Type::Default) {
    // sing-box: a rule with no items matches, inverted or not.
    return !hasConditions(r);
  }
  if (r.invert || r.rules.empty()) return false;
  if (r.mode == RuleSpec::Mode::Or) return std::any_of(r.rules.begin(), r.rules.end(), isCatchAll);
  return std::all_of(r.rules.begin(), r.rules.end(), isCatchAll);
}

void lintRules(const std::vector<RuleSpec>& rules, const RuleSetMap& rule_sets, DiagList& diags) {
  std::vector<std::string> keys;
  keys.reserve(rules.size());
  for (const auto& r : rules) keys.push_back(conditionKey(r));
  for (size_t i = 0; i < rules.size(); ++i) {
    const RuleSpec& r = rules[i];
    for (size_t j = 0; j < i; ++j) {
      const RuleSpec& e = rules[j];
      if (!e.action || !e.action->isFinal()) continue;
      if (isCatchAll(e)) {
        diags.warning(r.pos.file, r.pos.line, r.pos.column, r.pos.path,
                      ruleName(i, r) + " can never match: " + ruleName(j, e) +
                          " matches everything before it",
                      "shadowed-rule");
        break;
      }
      if (keys[i] == keys[j]) {
        diags.warning(r.pos.file, r.pos.line, r.pos.column, r.pos.path,
                      ruleName(i, r) + " can never match: it has the same conditions as " +
                          ruleName(j, e),
                      "duplicate-rule");
        break;
      }
    }
    checkRegexes(r, diags, "");
    if (r.type == RuleSpec::Type::Default && !r.rule_set.empty()) {
      bool merged = !r.domain.empty() || !r.domain_suffix.empty() || !r.domain_keyword.empty() ||
                    !r.domain_regex.empty() || !r.geosite.empty() || !r.geoip.empty() ||
                    !r.ip_cidr.empty() || r.ip_is_private || !r.port.empty() ||
                    !r.port_range.empty() || !r.source_ip_cidr.empty() ||
                    r.source_ip_is_private || !r.source_geoip.empty() || !r.source_port.empty() ||
                    !r.source_port_range.empty();
      if (merged) {
        diags.warning(r.pos.file, r.pos.line, r.pos.column, r.pos.path,
                      ruleName(i, r) + " combines rule_set with address/port fields; sing-box "
                                       "merges them, so a group satisfied by either side counts "
                                       "(e.g. domain OR the set's domains)",
                      "rule-set-merge");
      }
    }
  }
  for (const auto& [tag, set] : rule_sets) {
    if (set.empty()) {
      diags.warning("", 0, 0, "", "rule-set '" + tag + "' is empty: rules using it never match through it",
                    "empty-rule-set");
    }
    for (const auto& r : set) checkRegexes(r, diags, "rule-set '" + tag + "': ");
  }
}

}  // namespace veer::rules
