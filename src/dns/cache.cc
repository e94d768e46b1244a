#include "dns/cache.h"

#include <algorithm>
#include <limits>

namespace veer::dns {

size_t CacheKeyHash::operator()(const CacheKey& k) const {
  size_t h = std::hash<std::string>()(k.name);
  h ^= std::hash<uint16_t>()(k.type) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  if (!k.server.empty()) h ^= std::hash<std::string>()(k.server) + (h << 6) + (h >> 2);
  return h;
}

Cache::Cache(Options options) : options_(options) {
  if (options_.capacity == 0) options_.capacity = 1;
}

std::optional<uint32_t> Cache::cacheTtl(const Message& response, uint32_t max_negative_ttl) {
  if (response.tc) return std::nullopt;
  Rcode rc = response.rcodeValue();
  if (rc != Rcode::NoError && rc != Rcode::NxDomain) return std::nullopt;
  if (rc == Rcode::NoError && !response.answers.empty()) {
    uint32_t ttl = std::numeric_limits<uint32_t>::max();
    for (const auto& r : response.answers) ttl = std::min(ttl, r.ttl);
    if (ttl == 0) return std::nullopt;
    return ttl;
  }
  // Negative answer (RFC 2308 §5): the TTL comes from the SOA in the authority section; without
  // one the answer must not be cached.
  for (const auto& r : response.authorities) {
    if (auto ttl = r.soaNegativeTtl()) {
      uint32_t t = std::min(*ttl, max_negative_ttl);
      if (t == 0) return std::nullopt;
      return t;
    }
  }
  return std::nullopt;
}

bool Cache::put(const CacheKey& key, const Message& response, uint64_t now_ms) {
  auto ttl = cacheTtl(response, options_.max_negative_ttl);
  if (!ttl) return false;
  auto it = map_.find(key);
  if (it != map_.end()) {
    lru_.erase(it->second);
    map_.erase(it);
  }
  while (map_.size() >= options_.capacity && !lru_.empty()) {
    map_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.push_front(Entry{key, response, now_ms, now_ms + uint64_t{*ttl} * 1000});
  map_.emplace(key, lru_.begin());
  return true;
}

std::optional<Message> Cache::get(const CacheKey& key, uint64_t now_ms) {
  auto it = map_.find(key);
  if (it == map_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  Entry& e = *it->second;
  if (!options_.disable_expire && now_ms >= e.expires_ms) {
    lru_.erase(it->second);
    map_.erase(it);
    ++stats_.expired;
    ++stats_.misses;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++stats_.hits;
  Message out = e.response;
  if (!options_.disable_expire) {
    uint32_t elapsed = static_cast<uint32_t>((now_ms - e.stored_ms) / 1000);
    // The remaining lifetime also caps every TTL, so no record outlives the entry.
    uint32_t remaining = static_cast<uint32_t>((e.expires_ms - now_ms + 999) / 1000);
    auto adjust = [&](std::vector<Record>& rs) {
      for (auto& r : rs) {
        r.ttl = r.ttl > elapsed ? r.ttl - elapsed : 0;
        r.ttl = std::min(r.ttl, remaining);
      }
    };
    adjust(out.answers);
    adjust(out.authorities);
    adjust(out.additionals);
  }
  return out;
}

void Cache::clear() {
  lru_.clear();
  map_.clear();
}

Coalescer::Joined Coalescer::join(const CacheKey& key, Waiter waiter) {
  uint64_t id = next_id_++;
  auto [it, inserted] = pending_.try_emplace(key);
  it->second.waiters.emplace_back(id, std::move(waiter));
  waiter_keys_.emplace(id, key);
  if (!inserted) ++coalesced_;
  return {id, inserted};
}

void Coalescer::cancel(uint64_t waiter_id) {
  auto k = waiter_keys_.find(waiter_id);
  if (k == waiter_keys_.end()) return;
  auto p = pending_.find(k->second);
  if (p != pending_.end()) {
    auto& ws = p->second.waiters;
    ws.erase(std::remove_if(ws.begin(), ws.end(),
                            [&](const auto& w) { return w.first == waiter_id; }),
             ws.end());
    // The key stays in flight even with no waiter left: the leader's query is still running
    // and will call complete(); a new joiner then shares it instead of starting another.
  }
  waiter_keys_.erase(k);
}

void Coalescer::complete(const CacheKey& key, const Result<Message>& result) {
  auto p = pending_.find(key);
  if (p == pending_.end()) return;
  std::vector<std::pair<uint64_t, Waiter>> waiters = std::move(p->second.waiters);
  pending_.erase(p);
  for (auto& w : waiters) {
    // A waiter cancelled by an earlier callback of this batch is no longer in waiter_keys_
    // and must not run.
    auto k = waiter_keys_.find(w.first);
    if (k == waiter_keys_.end()) continue;
    waiter_keys_.erase(k);
    w.second(result);
  }
}

void Coalescer::clear() {
  pending_.clear();
  waiter_keys_.clear();
}

}  // namespace veer::dns
