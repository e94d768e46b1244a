// FakeIP (sing-box dns/transport/fakeip): hands out addresses from reserved ranges, one per
// domain, so that a connection to the fake address can be routed by its domain. Sequential
// allocation with wrap-around; the oldest mapping of a reused address is dropped. The table can
// be saved to a small file (explicit byte order, written atomically) and reloaded on start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/result.h"

namespace veer::dns {

/// An address range "198.18.0.0/15" / "fc00::/18"; the address is masked to the prefix.
struct IpPrefix {
  IpAddress address;
  uint8_t bits = 0;

  static std::optional<IpPrefix> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
  std::string toString() const;
};

struct IpAddressHash {
  size_t operator()(const IpAddress& ip) const;
};

class FakeIpStore {
 public:
  struct Options {
    std::optional<IpPrefix> inet4_range;  // sing-box's example: 198.18.0.0/15
    std::optional<IpPrefix> inet6_range;  // fc00::/18
  };

  /// Fails when a range has the wrong family or is too small to allocate from (it needs at least
  /// four addresses: the network address and the first host are never handed out).
  static Result<FakeIpStore> create(const Options& options);

  /// The fake address of `domain` in the requested family: the existing one, or the next free
  /// one. nullopt when that family has no range. `domain` is canonicalised (lower case).
  std::optional<IpAddress> allocate(std::string_view domain, bool v6);
  /// The domain a fake address stands for (the router's reverse lookup before routing).
  std::optional<std::string> lookupDomain(const IpAddress& ip) const;
  std::optional<IpAddress> lookupAddress(std::string_view domain, bool v6) const;
  /// True when `ip` is inside one of the ranges (whether or not it is allocated).
  bool inRange(const IpAddress& ip) const;

  /// The table as a cache-file section body (layout in cache_file.h).
  std::vector<uint8_t> serialize() const;
  /// Replaces the table with a section body. Entries outside the current ranges (the
  /// configuration changed) are dropped. On malformed input the table is left as it was and
  /// the error says "offset N: ..." (N counted from `base_offset`, the body's place in the file).
  Status restore(ByteView body, size_t base_offset = 0);
  /// True when both stores have the same ranges (a reload can then keep the mappings).
  bool sameRanges(const FakeIpStore& other) const;

  size_t size() const { return by_address_.size(); }
  bool dirty() const { return dirty_; }
  void clearDirty() { dirty_ = false; }
  void markDirty() { dirty_ = true; }
  const Options& options() const { return options_; }

 private:
  explicit FakeIpStore(const Options& options);
  struct Pool {
    std::optional<IpPrefix> range;
    IpAddress current;  // the last address handed out
    std::unordered_map<std::string, IpAddress> by_domain;
  };
  Pool& pool(bool v6) { return v6 ? v6_ : v4_; }
  const Pool& pool(bool v6) const { return v6 ? v6_ : v4_; }
  void resetCurrent(Pool& p);

  Options options_;
  Pool v4_;
  Pool v6_;
  std::unordered_map<IpAddress, std::string, IpAddressHash> by_address_;
  bool dirty_ = false;
};

}  // namespace veer::dns
