// The bridge from a connection's metadata to the rule engine's input. The router's rule walk
// (walk.h) and `veer route explain` build their MatchInput here, so both decide alike.
#pragma once

#include "conn/context.h"
#include "rules/match_input.h"

namespace veer::route {

class RulesDecider {
 public:
  /// Fills a MatchInput that views ctx's strings (valid while ctx lives and is not modified).
  static rules::MatchInput matchInput(const conn::InboundContext& ctx);
};

}  // namespace veer::route
