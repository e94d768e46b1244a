#include "conn/udp_nat.h"

#include <cstring>

#include "loop/uv_util.h"

namespace veer::conn {

size_t UdpNat::KeyHash::operator()(const Key& k) const {
  IpAddress ip = k.source.ip();
  size_t h = std::hash<const void*>()(k.sink) ^ (static_cast<size_t>(k.source.port()) << 16);
  for (size_t i = 0; i < ip.size(); ++i) h = h * 131 + ip.data()[i];
  return h;
}

UdpNat::UdpNat(uv_loop_t* loop, size_t max_sessions)
    : loop_(loop), max_(max_sessions), timer_(new uv_timer_t) {
  uv_timer_init(loop, timer_);
  timer_->data = this;
  // The timer keeps nothing alive by itself: it only expires sessions.
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
}

UdpNat::~UdpNat() {
  closeAll();
  // The handle's memory must stay valid until libuv has run its close callback.
  timer_->data = nullptr;
  loop::closeHandle(timer_, [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

UdpNat::Session* UdpNat::find(UdpReplySink* sink, const SocketAddress& source) {
  auto it = map_.find(Key{sink, source});
  return it == map_.end() ? nullptr : it->second;
}

UdpNat::Session* UdpNat::add(UdpReplySink* sink, const SocketAddress& source, InboundContext ctx,
                             UdpRemote remote, uint32_t timeout_ms) {
  while (map_.size() >= max_ && !lru_.empty()) evictOldest("evicted (NAT table full)");
  auto* s = new Session;
  s->sink = sink;
  s->source = source;
  s->ctx = std::move(ctx);
  s->remote = std::move(remote);
  s->timeout_ms = timeout_ms;
  s->last_activity = uv_now(loop_);
  lru_.push_front(s);
  s->lru = lru_.begin();
  map_[Key{sink, source}] = s;
  ++stats_.created;
  stats_.live = map_.size();
  arm();
  return s;
}

void UdpNat::touch(Session* s) {
  s->last_activity = uv_now(loop_);
  if (s->lru != lru_.begin()) lru_.splice(lru_.begin(), lru_, s->lru);
}

void UdpNat::remember(Session* s, const SocketAddress& routed, const Destination& client_dst) {
  for (auto& [addr, dst] : s->reverse) {
    if (addr == routed) {
      dst = client_dst;
      return;
    }
  }
  // Bounded: a client spraying destinations through one session does not grow it forever.
  if (s->reverse.size() >= 64) s->reverse.erase(s->reverse.begin());
  s->reverse.emplace_back(routed, client_dst);
}

void UdpNat::rememberDomain(Session* s, const Destination& client_dst) {
  for (auto& d : s->domain_dests) {
    if (d.port == client_dst.port) {
      d = client_dst;
      return;
    }
  }
  if (s->domain_dests.size() >= 16) s->domain_dests.erase(s->domain_dests.begin());
  s->domain_dests.push_back(client_dst);
}

Destination UdpNat::translate(const Session* s, const SocketAddress& from) const {
  for (const auto& [addr, dst] : s->reverse) {
    if (addr.ip().unmap() == from.ip().unmap() && addr.port() == from.port()) return dst;
  }
  for (const auto& d : s->domain_dests) {
    if (d.port == from.port()) return d;
  }
  Destination d;
  d.ip = from.ip().unmap();
  d.port = from.port();
  return d;
}

void UdpNat::remove(Session* s, const std::string& reason) {
  if (s->closed) return;
  s->closed = true;
  map_.erase(Key{s->sink, s->source});
  lru_.erase(s->lru);
  stats_.live = map_.size();
  if (on_close) on_close(*s, reason);
  if (s->remote.close) s->remote.close();
  delete s;
}

void UdpNat::evictOldest(const std::string& reason) {
  if (lru_.empty()) return;
  ++stats_.evicted;
  remove(lru_.back(), reason);
}

void UdpNat::removeSink(UdpReplySink* sink) {
  std::vector<Session*> victims;
  for (auto& [k, s] : map_) {
    if (k.sink == sink) victims.push_back(s);
  }
  for (Session* s : victims) remove(s, "inbound closed");
}

void UdpNat::closeAll() {
  while (!lru_.empty()) remove(lru_.back(), "shutdown");
}

void UdpNat::arm() {
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) return;
  // A coarse sweep is enough for idle timeouts of seconds to minutes.
  uv_timer_start(timer_, [](uv_timer_t* t) { static_cast<UdpNat*>(t->data)->onTimer(); }, 1000,
                 1000);
}

void UdpNat::onTimer() {
  uint64_t now = uv_now(loop_);
  std::vector<Session*> expired;
  for (Session* s : lru_) {
    if (now - s->last_activity >= s->timeout_ms) expired.push_back(s);
  }
  for (Session* s : expired) {
    ++stats_.expired;
    remove(s, "idle timeout");
  }
  if (map_.empty()) uv_timer_stop(timer_);
}

}  // namespace veer::conn
