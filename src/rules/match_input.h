// MatchInput: what the rule engine sees of one connection or DNS query. Every field is a view or
// a value, so the router builds one on the stack for each decision without allocating; the views
// must stay valid for the duration of the matchFrom() call.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/address.h"

namespace veer::rules {

struct MatchInput {
  std::string_view inbound;  // inbound tag
  std::string_view network;  // "tcp" / "udp" / "icmp"

  IpAddress source;  // invalid when unknown
  uint16_t source_port = 0;

  /// Destination host name, lower-case, no trailing dot: the sniffed domain when there is one
  /// (sing-box metadata.Domain), else the FQDN of the destination. Empty for IP destinations.
  std::string_view domain;
  /// Destination IP when the destination is an address (invalid otherwise).
  IpAddress destination;
  /// Addresses filled by the `resolve` action (or by on-demand resolution, see below).
  std::span<const IpAddress> destination_addresses;
  uint16_t port = 0;

  std::string_view protocol;  // sniffed protocol ("tls", "http", "quic", "dns", ...)
  std::string_view client;    // sniffed client ("chromium", ...)
  std::string_view auth_user;
  /// 4 or 6; 0 = derive from `destination` (sing-box sets IPVersion from an IP destination).
  uint8_t ip_version = 0;
  /// DNS query type for DNS rules; 0 = none.
  uint16_t query_type = 0;

  /// When set, a rule with destination-IP items (ip_cidr, geoip, ip_is_private) that is reached
  /// for a domain destination without any address yields MatchResult::Status::NeedResolve, so
  /// the caller resolves once, fills destination_addresses and calls matchFrom() again at the
  /// same index. Leave it off (the default) for sing-box semantics, where IP items simply do not
  /// match a domain; clear it after a failed resolution so that matching can go on.
  bool on_demand_resolve = false;

  bool hasDestinationIp() const { return destination.valid() || !destination_addresses.empty(); }
  uint8_t effectiveIpVersion() const {
    if (ip_version != 0) return ip_version;
    if (destination.valid()) return destination.unmap().isV4() ? 4 : 6;
    return 0;
  }
};

}  // namespace veer::rules
