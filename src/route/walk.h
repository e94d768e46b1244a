// The rule walk for one connection: evaluates the rules from where it stopped, applies the
// non-final actions that need no I/O (route-options), and stops at the first final action
// (route, reject, hijack-dns) or at an action that needs I/O (sniff, resolve), which the caller
// carries out before calling step() again.
#pragma once

#include <cstddef>
#include <memory>

#include "conn/context.h"
#include "route/decision.h"
#include "rules/rule_engine.h"

namespace veer::route {

struct Walk {
  enum class Step { Final, Sniff, Resolve };
  size_t index = 0;     // the next rule to try
  Decision decision;    // route options gathered so far; the final outcome when Step::Final
  const rules::RuleAction* pending = nullptr;  // the sniff or resolve action to carry out
  bool legacy_sniff_done = false;
  /// route.resolve_on_demand: a rule with IP items reached for a domain destination asks for
  /// resolution (Step::Resolve with pending == nullptr), once; the addresses are then reused
  /// for the dial. After a failed lookup, set resolve_failed: IP items then just don't match.
  bool on_demand = false;
  bool resolve_failed = false;

  /// Advances the walk. `final_outbound` is used when no rule matches.
  Step step(const rules::RuleEngine* engine, conn::InboundContext& ctx,
            const std::string& final_outbound);
};

/// sing-box skips sniffing on ports whose protocols have the server speak first.
bool isServerFirstPort(uint16_t port);

/// Applies a sniff result: protocol/client always; the domain goes to sniffed_domain, and to the
/// destination itself when `override_destination` (legacy sniff_override_destination).
struct SniffOutcome;
void applySniff(conn::InboundContext& ctx, const std::string& protocol, const std::string& domain,
                const std::string& client, bool override_destination);

}  // namespace veer::route
