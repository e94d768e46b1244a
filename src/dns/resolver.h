// The resolver interface the connection manager and the router use. Implemented by DnsRouter
// (rules, cache, upstream transports) and by test fakes.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/result.h"

namespace veer::dns {

/// sing-box domain_strategy values (prefer_ipv4, prefer_ipv6, ipv4_only, ipv6_only; AsIs is
/// the empty default: both families, IPv4 first).
enum class Strategy { AsIs, PreferIpv4, PreferIpv6, Ipv4Only, Ipv6Only };

struct LookupResult {
  std::vector<IpAddress> addresses;
  uint32_t ttl = 0;  // the smallest TTL of the records used
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  using Callback = std::function<void(Result<LookupResult>)>;
  using ExchangeCallback = std::function<void(Result<std::vector<uint8_t>>)>;

  /// Resolves A/AAAA per strategy (A and AAAA in parallel, sorted by strategy). The callback
  /// runs on the loop, never synchronously inside lookup(); returns a handle id that cancel()
  /// takes; after cancel the callback never runs. An empty answer is an error.
  virtual uint64_t lookup(const std::string& name, Strategy s, Callback cb) = 0;
  virtual void cancel(uint64_t id) = 0;
  /// Answers a raw DNS query message (for hijack-dns): the callback gets the response bytes,
  /// with the query's ID and question, sized for UDP (512 or the query's EDNS size, TC set
  /// when records were left out). Upstream failures become SERVFAIL responses; the callback
  /// gets an error only when no response must be sent (unparseable query shorter than a
  /// header, or a reject rule with method "drop"). Same asynchrony and cancel rules as
  /// lookup().
  virtual uint64_t exchange(std::vector<uint8_t> query, ExchangeCallback cb) = 0;
};

/// Parses "prefer_ipv4", "prefer_ipv6", "ipv4_only", "ipv6_only" ("" and "as_is" = AsIs).
std::optional<Strategy> parseStrategy(std::string_view text);
const char* strategyName(Strategy s);

}  // namespace veer::dns
