// The outcome of routing one connection, and the seam between the router and the rule engine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "conn/context.h"

namespace veer::route {

struct Decision {
  enum class Kind : uint8_t { Route, Reject, HijackDns };
  Kind kind = Kind::Route;
  std::string outbound;               // Route
  std::string reject_method = "default";  // Reject
  std::string rule;                   // description of the matched rule ("final" when none)
  // route-options collected along the way
  std::string override_address;
  std::optional<uint16_t> override_port;
  std::optional<uint32_t> udp_timeout_ms;
};

/// Decides where a connection goes. Implemented over the rule engine (rules_decider.cc).
class Decider {
 public:
  virtual ~Decider() = default;
  /// May fill ctx (sniff results are already in it; the resolve action fills
  /// destination_addresses in a later version).
  virtual Decision decide(conn::InboundContext& ctx) const = 0;
};

}  // namespace veer::route
