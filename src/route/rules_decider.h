// A Decider over the compiled rule engine: builds the MatchInput from the connection's
// metadata and walks the rules, applying non-final actions (route-options) and stopping at the
// first final one (route, reject, hijack-dns).
#pragma once

#include <memory>

#include "route/decision.h"
#include "rules/rule_engine.h"

namespace veer::route {

class RulesDecider : public Decider {
 public:
  explicit RulesDecider(std::shared_ptr<const rules::RuleEngine> engine)
      : engine_(std::move(engine)) {}
  Decision decide(conn::InboundContext& ctx) const override;

  /// Fills a MatchInput that views ctx's strings (valid while ctx lives and is not modified).
  static rules::MatchInput matchInput(const conn::InboundContext& ctx);

 private:
  std::shared_ptr<const rules::RuleEngine> engine_;
};

}  // namespace veer::route
