// Outbounds: where routed connections go. An outbound dials TCP connections and opens UDP
// packet connections for the router; the relay itself is the ConnectionManager's (src/conn).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/address.h"
#include "base/result.h"
#include "conn/context.h"
#include "conn/dialer.h"
#include "conn/host_resolver.h"

namespace veer::outbound {

/// A UDP socket of one NAT session. Replies arrive through the ReceiveFn given at creation.
class PacketConn {
 public:
  using ReceiveFn = std::function<void(const SocketAddress& from, const char* data, size_t len)>;
  virtual ~PacketConn() = default;
  /// Sends one datagram (resolving a domain destination first, if needed).
  virtual void send(const Destination& dst, const char* data, size_t len) = 0;
  /// Closes and frees the connection (asynchronously); no callback runs afterwards.
  virtual void close() = 0;
};

class Outbound {
 public:
  Outbound(std::string type, std::string tag) : type_(std::move(type)), tag_(std::move(tag)) {}
  virtual ~Outbound() = default;
  const std::string& type() const { return type_; }
  const std::string& tag() const { return tag_; }

  using DialCallback = std::function<void(Result<uv_tcp_t*>)>;
  /// Dials ctx.destination (or ctx.destination_addresses when set). The callback runs once,
  /// never inside dialTcp(), never after cancelDial(). On success it owns the uv_tcp_t.
  virtual uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) = 0;
  virtual void cancelDial(uint64_t id) = 0;
  virtual Result<PacketConn*> listenUdp(const conn::InboundContext& ctx,
                                        PacketConn::ReceiveFn on_receive) = 0;

 private:
  std::string type_, tag_;
};

using OutboundPtr = std::unique_ptr<Outbound>;

struct DirectOptions {
  conn::DialOptions dial;
  conn::DomainStrategy domain_strategy = conn::DomainStrategy::AsIs;
};

/// Connects to the destination itself.
OutboundPtr makeDirect(std::string tag, uv_loop_t* loop, conn::HostResolver* resolver,
                       const DirectOptions& opts);
/// Refuses every connection.
OutboundPtr makeBlock(std::string tag, uv_loop_t* loop);

}  // namespace veer::outbound
