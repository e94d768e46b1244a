// CidrSet: a set of IP prefixes as sorted, merged, non-overlapping ranges (one array per
// family), looked up by binary search. IPv4-mapped IPv6 prefixes and addresses are unmapped, so
// ::ffff:1.2.3.4 and 1.2.3.4 are the same thing to the matcher.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/result.h"

namespace veer::rules {

class CidrSet {
 public:
  /// Adds "1.2.3.0/24", "2001:db8::/32" or a bare address. Host bits are masked off (like Go's
  /// netipx.IPSet). Returns an error message for text that is neither.
  Status add(std::string_view text);
  void addRange(const IpAddress& first, const IpAddress& last);
  /// Sorts and merges; must be called once after the last add().
  void finalize();

  bool contains(const IpAddress& ip) const;
  bool empty() const { return v4_.empty() && v6_.empty(); }
  size_t rangeCount() const { return v4_.size() + v6_.size(); }
  size_t memoryBytes() const { return v4_.capacity() * sizeof(V4) + v6_.capacity() * sizeof(V6); }

  /// Parses a prefix into its first and last address (shared with the lint and the trace).
  static bool parsePrefix(std::string_view text, IpAddress* first, IpAddress* last);

 private:
  struct U128 {
    uint64_t hi = 0, lo = 0;
    friend auto operator<=>(const U128&, const U128&) = default;
  };
  struct V4 {
    uint32_t lo, hi;
  };
  struct V6 {
    U128 lo, hi;
  };
  static U128 toU128(const IpAddress& ip);
  std::vector<V4> v4_;
  std::vector<V6> v6_;
};

/// PortSet: ports and inclusive port ranges, merged and sorted.
class PortSet {
 public:
  void add(uint16_t lo, uint16_t hi);
  /// "a:b", ":b", "a:" (sing-box port_range syntax); also accepts "a-b".
  static bool parseRange(std::string_view text, uint16_t* lo, uint16_t* hi);
  void finalize();
  bool contains(uint16_t port) const;
  bool empty() const { return ranges_.empty(); }
  /// "443 8000-8100" (merged ranges).
  std::string toString() const;

 private:
  struct Range {
    uint16_t lo, hi;
  };
  std::vector<Range> ranges_;
};

}  // namespace veer::rules
