// RuleEngine: compiles RuleSpecs (from JSON, .srs or the DSL) into matchers and evaluates them
// with sing-box's semantics (reference/singbox.md section 1):
//
//  * A default rule's fields fall into groups: source address (source_ip_cidr,
//    source_ip_is_private, source_geoip), source port (source_port, source_port_range),
//    destination address (domain, domain_suffix, domain_keyword, domain_regex, geosite, geoip,
//    ip_cidr, ip_is_private) and destination port (port, port_range). Items of one group are
//    ORed, groups are ANDed, and every other field (inbound, ip_version, network, auth_user,
//    protocol, client, query_type, rule_set) must match on its own. `invert` negates. A rule
//    with no fields matches everything (also when inverted, as in sing-box).
//  * Logical rules combine sub-rules with and/or; each sub-rule starts with fresh group flags.
//  * rule_set is merged, not nested: the headless rules of the sets run against the outer rule's
//    group flags, so a group the outer rule already satisfied is skipped inside the set, and a
//    group the set satisfies satisfies the outer rule's group of the same kind. Thus
//    {domain: a.com, rule_set: X} means "a.com OR anything in X". Several tags are ORed.
//    rule_set_ip_cidr_match_source makes ip_cidr inside the sets test the source address.
//  * DECISION on sing-box's flag leak: sing-box does not reset the group flags between the
//    headless rules of one set, so with R1 {domain: a.com, port: 80} and R2 {domain: b.com,
//    port: 443} a connection to a.com:443 matches (R1 sets the address flag, R2 then only tests
//    the port). veer does NOT copy that: every headless rule starts from the flags as they were
//    when the set was entered (so the outer rule's satisfied groups still carry over), and only
//    the flags of the headless rule that matched flow back to the outer rule. a.com:443 does not
//    match that set. Tested in rules_test (RuleSetMerge.*).
//  * geosite and geoip stay supported (sing-box removed them in 1.12); geosite codes expand
//    through the GeositeSource into the rule's domain matchers, geoip looks codes up through the
//    GeoipSource; the code "private" means "not a public address".
//  * domain_keyword values are lower-cased (sing-box compares them as written against the
//    lower-cased host, so an upper-case keyword could never match there).
//
// Matching does no heap allocation unless a Trace is passed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/diag.h"
#include "base/result.h"
#include "rules/geo.h"
#include "rules/match_input.h"
#include "rules/rule_spec.h"
#include "rules/trace.h"

namespace veer::rules {

/// Rule-set tag → its headless rules.
using RuleSetMap = std::map<std::string, std::vector<RuleSpec>, std::less<>>;

/// Geodata the compiler may consult; both optional (a rule that needs a missing one is a
/// compile error). They must outlive the engine (GeoipSource is used while matching).
struct GeoSources {
  const GeositeSource* geosite = nullptr;
  const GeoipSource* geoip = nullptr;
};

struct MatchResult {
  enum class Status : uint8_t {
    Matched,      // rule `index` matched; `action` is its action (null for headless rules)
    NoMatch,      // no rule at or after the start index matched: use the final outbound
    NeedResolve,  // rule `index` needs the destination's addresses (MatchInput::on_demand_resolve)
  };
  static constexpr size_t kNone = SIZE_MAX;
  Status status = Status::NoMatch;
  size_t index = kNone;
  const RuleAction* action = nullptr;

  bool matched() const { return status == Status::Matched; }
};

class RuleEngine {
 public:
  ~RuleEngine();
  RuleEngine(const RuleEngine&) = delete;
  RuleEngine& operator=(const RuleEngine&) = delete;

  /// Compiles `rules` (top-level rules with actions; a rule without an action matches with
  /// action == nullptr). Every problem goes to `diags` with the rule's SourcePos; the result is
  /// an error when any of them is an error. Warnings (fields a router cannot match, such as
  /// process_name) do not fail the compile.
  static Result<std::unique_ptr<RuleEngine>> compile(const std::vector<RuleSpec>& rules,
                                                     const RuleSetMap& rule_sets,
                                                     const GeoSources& sources, DiagList& diags);

  /// The first rule at or after `start_index` that matches `in`. For a non-final action (sniff,
  /// resolve, route-options) the caller updates the input and calls again from index + 1; after
  /// NeedResolve it resolves, fills in.destination_addresses and calls again from `index`.
  /// With `trace`, one TraceStep per rule tried is appended (this path allocates).
  MatchResult matchFrom(const MatchInput& in, size_t start_index = 0,
                        Trace* trace = nullptr) const;

  size_t size() const;
  /// The rule's action (null for a headless rule).
  const RuleAction* action(size_t index) const;
  const SourcePos& pos(size_t index) const;
  /// sing-box-like text for logs: `domain_suffix=[google.com youtube.com] port=443 => route(proxy)`.
  const std::string& describe(size_t index) const;
  /// The compiled matchers of the rule, for `veer check -v` and debug logs:
  /// `domain_set(1200 exact, 30000 suffix, geosite=[cn]) && port=[443]`.
  std::string describeCompiled(size_t index) const;
  /// Headless rules the rule set `tag` compiled to (adjacent rules testing the same single group
  /// are merged, see mergeHeadless in rule_engine.cc); 0 when the engine does not use the set.
  size_t ruleSetRuleCount(std::string_view tag) const;
  /// Approximate heap bytes held by the compiled matchers.
  size_t memoryBytes() const;

 private:
  struct Impl;
  explicit RuleEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Text of a rule for logs (conditions, then " => action" when it has one). Lists longer than
/// eight values are cut ("[a b c ... +120]").
std::string describeRule(const RuleSpec& rule);
/// `route(proxy)`, `reject(drop)`, `hijack-dns`, `sniff(tls http timeout=500ms)`, ...
std::string describeAction(const RuleAction& action);

}  // namespace veer::rules
