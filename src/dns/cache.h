// The DNS cache (an LRU keyed by question, sing-box dns/client.go) and request coalescing
// (concurrent identical questions share one upstream query). Pure: time is passed in, so the
// expiry logic is tested without sleeping.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "dns/message.h"

namespace veer::dns {

struct CacheKey {
  std::string name;    // canonicalName() of the question
  uint16_t type = 0;
  std::string server;  // the server tag with independent_cache, else empty

  friend bool operator==(const CacheKey&, const CacheKey&) = default;
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const;
};

class Cache {
 public:
  struct Options {
    size_t capacity = 1024;
    /// sing-box disable_expire: entries never expire and are served with their stored TTLs.
    bool disable_expire = false;
    /// Negative answers (NXDOMAIN / NODATA) are kept for the SOA's TTL, at most this long.
    uint32_t max_negative_ttl = 300;
  };
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t expired = 0;
  };

  explicit Cache(Options options);

  /// How long a response may be cached (seconds), or nullopt when it must not be: anything
  /// but NOERROR/NXDOMAIN, truncated replies, negative answers without an SOA, TTL 0.
  static std::optional<uint32_t> cacheTtl(const Message& response, uint32_t max_negative_ttl);

  /// Stores `response` (which must answer `key`); returns false when it is not cacheable.
  /// Evicts the least recently used entry when full.
  bool put(const CacheKey& key, const Message& response, uint64_t now_ms);
  /// A copy of the cached response with every TTL reduced by the time it spent in the cache,
  /// or nullopt when absent or expired (an expired entry is dropped).
  std::optional<Message> get(const CacheKey& key, uint64_t now_ms);
  void clear();
  size_t size() const { return map_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  struct Entry {
    CacheKey key;
    Message response;
    uint64_t stored_ms = 0;
    uint64_t expires_ms = 0;
  };
  using List = std::list<Entry>;

  Options options_;
  List lru_;  // front = most recently used
  std::unordered_map<CacheKey, List::iterator, CacheKeyHash> map_;
  Stats stats_;
};

/// Joins concurrent requests for the same key onto one upstream query. The first joiner is the
/// leader and starts the query; complete() hands its result to every waiter still joined.
class Coalescer {
 public:
  using Waiter = std::function<void(const Result<Message>&)>;
  struct Joined {
    uint64_t waiter_id;
    bool leader;  // true: the caller must start the upstream query and call complete()
  };

  Joined join(const CacheKey& key, Waiter waiter);
  /// Detaches one waiter; its callback will not run. The upstream query keeps running.
  void cancel(uint64_t waiter_id);
  /// Runs the waiters of `key` (those joined before this call) and forgets the key. Waiters
  /// may join or cancel from inside their callbacks.
  void complete(const CacheKey& key, const Result<Message>& result);
  /// Forgets everything without running any callback (shutdown).
  void clear();

  bool inFlight(const CacheKey& key) const { return pending_.count(key) != 0; }
  size_t inFlightCount() const { return pending_.size(); }
  /// Number of joins that did not start a query of their own.
  uint64_t coalesced() const { return coalesced_; }

 private:
  struct Pending {
    std::vector<std::pair<uint64_t, Waiter>> waiters;
  };
  std::unordered_map<CacheKey, Pending, CacheKeyHash> pending_;
  std::unordered_map<uint64_t, CacheKey> waiter_keys_;
  uint64_t next_id_ = 1;
  uint64_t coalesced_ = 0;
};

}  // namespace veer::dns
