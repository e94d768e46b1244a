// Connection tracking: every live TCP connection and UDP session, with its metadata and byte
// counters, so that shutdown can close them all and `veer` can list them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "conn/context.h"

namespace veer::conn {

/// Something the tracker can close (a relay, an HTTP proxy session, a UDP session).
class Closable {
 public:
  virtual ~Closable() = default;
  virtual void closeNow(const std::string& reason) = 0;
  virtual uint64_t bytesUp() const = 0;
  virtual uint64_t bytesDown() const = 0;
};

struct TrackedInfo {
  InboundContext ctx;
  uint64_t up = 0, down = 0;
};

class Tracker {
 public:
  /// Tracks `c` under `id`. The tracker keeps a pointer to `ctx`, not a copy (a copy cost ~600
  /// bytes per connection): `ctx` must stay alive, in place, until remove(id). Listings read it
  /// as it is then, so outcomes filled in later (rule, outbound) show without another add().
  void add(uint64_t id, const InboundContext* ctx, Closable* c);
  void remove(uint64_t id);
  /// Closes every tracked connection (they remove themselves as they finish).
  void closeAll(const std::string& reason);
  /// Closes one connection; false when the id is not tracked.
  bool close(uint64_t id, const std::string& reason);
  /// Closes every connection whose metadata satisfies `pred`; returns how many.
  size_t closeIf(const std::function<bool(const InboundContext&)>& pred, const std::string& reason);
  size_t size() const { return items_.size(); }
  std::vector<TrackedInfo> list() const;

 private:
  struct Item {
    const InboundContext* ctx;
    Closable* c;
  };
  std::unordered_map<uint64_t, Item> items_;
};

}  // namespace veer::conn
