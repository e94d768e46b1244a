// DnsRules: the `dns.rules` list compiled by the rule engine (src/rules), so DNS rules have the
// same model as route rules: domain, domain_suffix, domain_keyword, domain_regex, geosite,
// query_type, inbound, rule_set (the route's rule sets, shared with the route rules), logical
// rules and invert, with the DNS actions route (server, disable_cache, rewrite_ttl,
// client_subnet), route-options and reject, and the legacy {"server": ...} form.
//
// `outbound` (sing-box: for a query made on behalf of a connection, the outbound that
// connection uses; "any" matches every outbound) is not a rule-engine item: it is taken out of
// the top-level rule before the engine sees it and tested here, as one more ANDed item under
// the rule's `invert`. Inside logical sub-rules it is an error.
//
// Pure: no loop, no sockets. The config loader compiles these once (with the loaded rule sets
// and geosite database) and hands them to DnsRouter; DnsRouter compiles them itself (without
// rule sets) when it is created from a bare `dns` object, as the unit tests do.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/diag.h"
#include "base/json.h"
#include "rules/rule_engine.h"
#include "rules/rule_spec.h"

namespace veer::dns {

/// What a DNS rule sees of a question.
struct QueryInfo {
  std::string_view domain;  // canonical (lower case, no trailing dot)
  uint16_t type = 0;
  std::string_view inbound;   // "" when not known (lookups made by veer itself)
  std::string_view outbound;  // the outbound of the connection the lookup is for; "" = none
};

class DnsRules {
 public:
  struct Match {
    size_t index = 0;
    const rules::RuleAction* action = nullptr;  // never null for a compiled DNS rule
  };

  /// Parses `rules` (the value of dns.rules; null = no rules) with sing-box's DNS rule fields
  /// and compiles them against `rule_sets` and `geo`. Errors go to `diags` with file:line:col
  /// and the JSON path ("dns.rules[2].domain_regex[0]"). Returns null when there was an error.
  static std::shared_ptr<const DnsRules> compile(const json::Value* rules, const std::string& file,
                                                 const rules::RuleSetMap& rule_sets,
                                                 const rules::GeoSources& geo, DiagList& diags);

  /// The parse step alone (specs with positions; `outbound` taken out), for the config loader,
  /// which needs to know which databases the rules use before compiling. Returns false on error.
  struct Parsed {
    std::vector<rules::RuleSpec> specs;
    std::vector<std::vector<std::string>> outbound;  // per top-level rule; empty = no item
    std::vector<bool> outer_invert;                  // invert taken out with `outbound`
  };
  static bool parse(const json::Value* rules, const std::string& file, DiagList& diags,
                    Parsed& out);
  static std::shared_ptr<const DnsRules> compile(Parsed parsed, const rules::RuleSetMap& rule_sets,
                                                 const rules::GeoSources& geo, DiagList& diags);

  /// The same rules compiled again against other rule-set contents (a remote rule set was
  /// refreshed). Null when that fails (errors in `diags`).
  std::shared_ptr<const DnsRules> withRuleSets(const rules::RuleSetMap& rule_sets,
                                               const rules::GeoSources& geo,
                                               DiagList& diags) const {
    return compile(Parsed{specs_, outbound_, outer_invert_}, rule_sets, geo, diags);
  }

  /// The first rule at or after `start` that matches `q`, or nullopt.
  std::optional<Match> match(const QueryInfo& q, size_t start = 0) const;

  size_t size() const { return specs_.size(); }
  const rules::RuleSpec& spec(size_t i) const { return specs_[i]; }
  /// `domain_suffix=[example.com] => route(dns-a)` for logs.
  std::string describe(size_t i) const;

 private:
  DnsRules() = default;
  bool outboundMatches(size_t i, std::string_view outbound) const;

  std::vector<rules::RuleSpec> specs_;
  std::vector<std::vector<std::string>> outbound_;
  std::vector<bool> outer_invert_;
  std::unique_ptr<rules::RuleEngine> engine_;
};

}  // namespace veer::dns
