// The outcome of routing one connection (the rule walk fills it in).
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
  bool tls_fragment = false;         // ClientHello in several TCP segments
  bool tls_record_fragment = false;  // ClientHello in several TLS records
  uint32_t tls_fragment_fallback_delay_ms = 500;
};

}  // namespace veer::route
