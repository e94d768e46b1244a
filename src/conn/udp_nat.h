// UDP NAT table: one session per (inbound sink, client source address), each with its own
// remote socket (opened by the router through an outbound), per-session idle timeouts, a size
// limit with least-recently-used eviction (counted), and reply-address translation: the client
// sees replies come from the address it sent to, also when the destination was a domain or was
// rewritten (override_address/override_port).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "conn/context.h"

namespace veer::conn {

struct UdpRemote {
  /// Sends one datagram toward `dst` (the routed destination).
  std::function<void(const Destination& dst, const char* data, size_t len)> send;
  /// Closes the remote socket; no reply is delivered after it returns.
  std::function<void()> close;
};

struct NatStats {
  uint64_t created = 0;
  uint64_t evicted = 0;   // dropped because the table was full
  uint64_t expired = 0;   // idle timeout
  uint64_t live = 0;
};

class UdpNat {
 public:
  struct Session {
    UdpReplySink* sink = nullptr;
    SocketAddress source;
    InboundContext ctx;
    UdpRemote remote;
    uint64_t last_activity = 0;
    uint32_t timeout_ms = 300000;
    uint64_t up = 0, down = 0;
    // Routed destination (ip:port as the remote sees it) → what the client sent to.
    std::vector<std::pair<SocketAddress, Destination>> reverse;
    // Domain destinations the client sent to, by port: a reply from the resolved address of
    // one of them is shown as coming from the domain (sing-box's NAT packet conn).
    std::vector<Destination> domain_dests;
    std::list<Session*>::iterator lru;
    bool closed = false;
  };

  UdpNat(uv_loop_t* loop, size_t max_sessions);
  ~UdpNat();
  UdpNat(const UdpNat&) = delete;
  UdpNat& operator=(const UdpNat&) = delete;

  Session* find(UdpReplySink* sink, const SocketAddress& source);
  /// Adds a session (evicting the least recently used one when full) and returns it.
  Session* add(UdpReplySink* sink, const SocketAddress& source, InboundContext ctx,
               UdpRemote remote, uint32_t timeout_ms);
  /// Marks activity (moves the session to the front of the LRU list).
  void touch(Session* s);
  /// Remembers that datagrams for `client_dst` went to `routed` (for reply translation).
  void remember(Session* s, const SocketAddress& routed, const Destination& client_dst);
  void rememberDomain(Session* s, const Destination& client_dst);
  /// The address the client should see for a reply that came from `from`.
  Destination translate(const Session* s, const SocketAddress& from) const;
  void remove(Session* s, const std::string& reason);
  /// Removes the least recently used session (counted as an eviction).
  void evictOldest(const std::string& reason);
  /// Closes every session of one sink (the inbound socket is going away).
  void removeSink(UdpReplySink* sink);
  void closeAll();
  const NatStats& stats() const { return stats_; }
  /// Every live session, most recently used first.
  const std::list<Session*>& sessions() const { return lru_; }
  size_t size() const { return map_.size(); }
  /// Called when a session ends: ctx, bytes, reason (for the connection log line).
  std::function<void(const Session&, const std::string&)> on_close;

 private:
  struct Key {
    UdpReplySink* sink;
    SocketAddress source;
    bool operator==(const Key& o) const { return sink == o.sink && source == o.source; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  void onTimer();
  void arm();

  uv_loop_t* loop_;
  size_t max_;
  std::unordered_map<Key, Session*, KeyHash> map_;
  std::list<Session*> lru_;  // front = most recent
  uv_timer_t* timer_;  // heap: it may outlive this table until its close callback
  NatStats stats_;
};

}  // namespace veer::conn
