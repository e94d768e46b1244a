// Per-client-address UDP reply sinks of an inbound, bounded: past `max` sources the least
// recently used sink is dropped (the router closes its NAT session first), not all of them.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>

#include "base/address.h"
#include "conn/context.h"

namespace veer::inbound {

template <typename Sink>
class SinkTable {
 public:
  SinkTable(conn::ConnectionHandler* handler, size_t max) : handler_(handler), max_(max) {}
  ~SinkTable() { clear(); }
  SinkTable(const SinkTable&) = delete;
  SinkTable& operator=(const SinkTable&) = delete;

  /// The sink for `from`, made with `make` on first use; marks it most recently used.
  template <typename Make>
  Sink* get(const SocketAddress& from, Make make) {
    auto it = map_.find(from);
    if (it != map_.end()) {
      order_.splice(order_.begin(), order_, it->second.pos);
      return it->second.sink.get();
    }
    while (map_.size() >= max_ && !order_.empty()) {
      auto victim = map_.find(order_.back());
      handler_->udpSinkClosed(victim->second.sink.get());
      map_.erase(victim);
      order_.pop_back();
    }
    order_.push_front(from);
    Entry& e = map_[from];
    e.sink = make();
    e.pos = order_.begin();
    return e.sink.get();
  }

  void clear() {
    for (auto& [addr, e] : map_) handler_->udpSinkClosed(e.sink.get());
    map_.clear();
    order_.clear();
  }
  size_t size() const { return map_.size(); }

 private:
  struct Hash {
    size_t operator()(const SocketAddress& a) const {
      IpAddress ip = a.ip();
      size_t h = a.port();
      for (size_t i = 0; i < ip.size(); ++i) h = h * 131 + ip.data()[i];
      return h;
    }
  };
  struct Entry {
    std::unique_ptr<Sink> sink;
    typename std::list<SocketAddress>::iterator pos;
  };
  conn::ConnectionHandler* handler_;
  size_t max_;
  std::unordered_map<SocketAddress, Entry, Hash> map_;
  std::list<SocketAddress> order_;
};

}  // namespace veer::inbound
