// The sing-box outbound `tls` object read from JSON, shared by the config loader (http and
// trojan outbounds) and the DNS module (tls and https servers), so that both accept exactly
// the same fields with the same errors.
#pragma once

#include <memory>
#include <string>

#include "base/json.h"
#include "tls/client.h"
#include "tls/options.h"

namespace veer::tls {

/// Reads `v`, the member "tls" of `parent`, into `out`; every error goes to the parent's
/// diagnostics with its JSON path. `force_enabled` turns TLS on whatever `enabled` says (DNS
/// servers of type tls and https are always TLS, as in sing-box). When enabled, builds the
/// client configuration for `server_address` (so that `check` reports an unreadable CA file)
/// and returns it; null when disabled or on error.
std::shared_ptr<const ClientConfig> parseTlsObject(json::ObjectReader& parent,
                                                   const json::Value& v,
                                                   const std::string& server_address,
                                                   TlsOptions& out, bool force_enabled = false);

}  // namespace veer::tls
