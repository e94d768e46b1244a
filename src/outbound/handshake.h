// A client handshake on a freshly dialed connection (SOCKS, HTTP CONNECT, a health probe):
// writes requests and reads replies. Bytes read past the end of the handshake (the server spoke
// first right after its reply) belong to the relayed stream: succeed(consumed) hands them over
// in front of the stream (conn::makePrefixedStream).
#pragma once

#include <uv.h>

#include <functional>
#include <string>

#include "base/address.h"
#include "base/result.h"
#include "conn/stream.h"

namespace veer::outbound {

/// Appends a SOCKS5-style address (ATYP, address, big-endian port): SOCKS5, Trojan and
/// Shadowsocks all carry destinations this way. Domains must be at most 255 bytes.
void appendSocksAddr(std::string& out, const Destination& d);

class Handshake {
 public:
  using Done = std::function<void(Result<conn::StreamPtr>)>;
  using Step = std::function<void()>;

  /// Takes ownership of `stream`. `done` runs once (never inside start()), unless abort().
  static Handshake* start(uv_loop_t* loop, conn::StreamPtr stream, uint32_t timeout_ms,
                          Done done);

  /// Queues bytes to the server.
  void write(std::string data);
  /// Reads until buffer() holds at least `total` bytes in all, then runs `then`.
  void readUntil(size_t total, Step then);
  /// Bytes read so far (may run past what was asked for).
  std::string& buffer() { return buf_; }
  /// Success: the first `consumed` bytes of buffer() were the handshake's.
  void succeed(size_t consumed);
  void fail(const std::string& why);
  /// Abandons the handshake: closes the connection; `done` never runs.
  void abort();
  /// The connection (for its peer address).
  conn::Stream* stream() { return stream_.get(); }

 private:
  Handshake(uv_loop_t* loop, conn::StreamPtr stream, Done done);
  ~Handshake() = default;
  void finish(Result<conn::StreamPtr> r);
  void release();

  uv_loop_t* loop_;
  conn::StreamPtr stream_;
  Done done_;
  uv_timer_t timer_{};
  std::string buf_;
  size_t want_ = 0;
  Step then_;
  bool reading_ = false;
  bool finished_ = false;
};

}  // namespace veer::outbound

#include <unordered_map>

#include "outbound/outbound.h"

namespace veer::outbound {

/// An outbound that reaches a proxy server through `via` (a detour, or a private direct
/// dialer), wraps the connection in TLS when configured, and then runs a handshake on it (or
/// wraps it in the protocol's stream) before handing it to the router.
class ProxyOutbound : public Outbound {
 public:
  ProxyOutbound(std::string type, std::string tag, uv_loop_t* loop, SharedOutbound via,
                const std::string& server, uint16_t port,
                std::shared_ptr<const tls::ClientConfig> tls = nullptr);
  ~ProxyOutbound() override;

  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override;
  void cancelDial(uint64_t id) override;

  using StreamCallback = std::function<void(Result<conn::StreamPtr>)>;
  /// Reaches the server (through `via`, then TLS when configured). Returns an id for
  /// cancelServer(); `cb` runs once, never inside the call, never after cancelServer().
  uint64_t connectServer(const conn::InboundContext& ctx, StreamCallback cb);
  void cancelServer(uint64_t id);

 protected:
  /// Drives `hs` to succeed() or fail() for a connection to `dst`.
  virtual void runHandshake(Handshake* hs, const conn::InboundContext& ctx) { hs->succeed(0); }
  /// Protocols without a server reply (trojan) skip the handshake and wrap the stream instead.
  virtual bool wantsHandshake() const { return true; }
  virtual conn::StreamPtr wrapStream(conn::StreamPtr s, const conn::InboundContext& ctx) {
    (void)ctx;
    return s;
  }
  conn::InboundContext serverContext(const conn::InboundContext& ctx) const;
  /// Fails a dial on the next loop iteration (cancellable like any other).
  uint64_t refuse(DialCallback cb, Error e);

  uv_loop_t* loop_;
  SharedOutbound via_;
  Destination server_;
  uint32_t handshake_timeout_ms_ = 10000;

 private:
  struct Op {
    DialCallback cb;
    uint64_t server_id = 0;
    Handshake* hs = nullptr;
  };
  struct ServerOp {
    StreamCallback cb;
    uint64_t via_id = 0;
    std::function<void()> tls_cancel;
  };
  void complete(uint64_t id, Result<conn::StreamPtr> r);
  void serverDone(uint64_t id, Result<conn::StreamPtr> r);
  std::shared_ptr<const tls::ClientConfig> tls_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Op> ops_;
  std::unordered_map<uint64_t, ServerOp> server_ops_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// Forwards dials to members chosen per dial; remembers which member has which dial.
class GroupDialer {
 public:
  uint64_t dial(Outbound* m, const conn::InboundContext& ctx, Outbound::DialCallback cb) {
    uint64_t id = next_id_++;
    auto alive = alive_;
    uint64_t mid = m->dialTcp(ctx, [this, alive, id, cb = std::move(cb)](Result<conn::StreamPtr> r) {
      if (!*alive) return;
      live_.erase(id);
      cb(std::move(r));
    });
    live_[id] = {m, mid};
    return id;
  }
  void cancel(uint64_t id) {
    auto it = live_.find(id);
    if (it == live_.end()) return;
    it->second.first->cancelDial(it->second.second);
    live_.erase(it);
  }
  ~GroupDialer() {
    *alive_ = false;
    for (auto& [id, d] : live_) d.first->cancelDial(d.second);
  }

 private:
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::pair<Outbound*, uint64_t>> live_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace veer::outbound
