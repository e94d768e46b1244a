// Lints for `veer check`: rules that can never match and rule data that cannot work.
#pragma once

#include <vector>

#include "base/diag.h"
#include "rules/rule_engine.h"
#include "rules/rule_spec.h"

namespace veer::rules {

/// Appends to `diags`:
///  * warning "duplicate-rule": a rule with the same conditions as an earlier rule whose action
///    is final (route, reject, hijack-dns) can never match. Conditions are compared after
///    sorting and de-duplicating every value list; the actions may differ.
///  * warning "shadowed-rule": an earlier final rule matches everything (no conditions, or a
///    logical `or` containing such a rule, or a logical `and` of only such rules).
///  * warning "empty-rule-set": a rule set without rules (rules using it never match through it).
///  * warning "rule-set-merge": a rule that combines rule_set with address or port fields; in
///    sing-box these are merged ("a.com OR anything in the set"), which is rarely what was meant.
///  * error "bad-regex": a domain_regex (in the rules or in a rule set) that RE2 rejects.
/// Non-final rules (sniff, resolve, route-options) never shadow later rules.
void lintRules(const std::vector<RuleSpec>& rules, const RuleSetMap& rule_sets, DiagList& diags);

/// True when `rule` matches every input (used by the lint and by `final`-like checks).
bool isCatchAll(const RuleSpec& rule);

}  // namespace veer::rules
