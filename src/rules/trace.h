// Trace: what `veer route explain` prints. matchFrom() appends one step per rule it tried.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "rules/rule_spec.h"

namespace veer::rules {

struct TraceStep {
  enum class Outcome : uint8_t { NoMatch, Matched, NeedResolve };
  size_t index = 0;     // rule index in the compiled list
  SourcePos pos;        // where the rule was written
  Outcome outcome = Outcome::NoMatch;
  /// For a match: which field and value matched, e.g. `domain_suffix "google.com", port 443`
  /// (`rule_set geosite-cn: domain_suffix "cn"` through a rule set). Empty otherwise.
  std::string detail;
  std::string rule;  // describe() of the rule
};

class Trace {
 public:
  std::vector<TraceStep> steps;

  void clear() { steps.clear(); }
  /// One line per step: "#3 rules.veer:4:1 matched: domain_suffix \"google.com\" | <rule>".
  std::string toString() const;
};

/// "file:line:col" with the unknown parts left out (plus " path" when there is a JSON path).
std::string formatPos(const SourcePos& pos);

}  // namespace veer::rules
