// Outbounds: where routed connections go. An outbound dials TCP connections and opens UDP
// packet connections for the router; the relay itself is the ConnectionManager's (src/conn).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/address.h"
#include "base/result.h"
#include "conn/context.h"
#include "conn/dialer.h"
#include "conn/host_resolver.h"
#include "conn/stream.h"

namespace veer::tls {
class ClientConfig;
}

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

  using DialCallback = std::function<void(Result<conn::StreamPtr>)>;
  /// Dials ctx.destination (or ctx.destination_addresses when set). The callback runs once,
  /// never inside dialTcp(), never after cancelDial(). On success it owns the stream: plain TCP
  /// (conn::makeTcpStream) or a transform over it (TLS, Shadowsocks).
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
/// sing-box's `dns` outbound: what is routed to it is answered by veer's DNS (the router
/// treats it as hijack-dns); the outbound itself refuses dials.
OutboundPtr makeDnsOutbound(std::string tag, uv_loop_t* loop);

}  // namespace veer::outbound

// ---- Proxy and group outbounds (socks.cc, http.cc, selector.cc, urltest.cc) ----

namespace veer::outbound {

using SharedOutbound = std::shared_ptr<Outbound>;

/// An OutboundPtr that forwards to a shared outbound, so that groups and detours can keep
/// their members alive for as long as they need them (the RouteState holds these wrappers).
OutboundPtr makeShared(SharedOutbound inner);

/// Private direct outbound used to reach a proxy server when no `detour` is set.
SharedOutbound makeServerDialer(uv_loop_t* loop, conn::HostResolver* resolver,
                                const DirectOptions& opts);

struct SocksOptions {
  std::string server;
  uint16_t server_port = 1080;
  int version = 5;  // 4, 5; `socks4a` sets v4a
  bool v4a = false;
  std::string username, password;
  bool tcp = true, udp = true;  // `network`
};
/// SOCKS4/4a/5 client: TCP via CONNECT, UDP via UDP ASSOCIATE (SOCKS5). `via` reaches the server.
OutboundPtr makeSocks(std::string tag, uv_loop_t* loop, SharedOutbound via,
                      const SocksOptions& opts);

struct HttpOptions {
  std::string server;
  uint16_t server_port = 80;
  std::string username, password;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<const tls::ClientConfig> tls;  // HTTPS proxy when set
};
/// HTTP CONNECT client (TCP only).
OutboundPtr makeHttp(std::string tag, uv_loop_t* loop, SharedOutbound via,
                     const HttpOptions& opts);

struct TrojanOptions {
  std::string server;
  uint16_t server_port = 443;
  std::string password;
  bool tcp = true, udp = true;  // `network`
  std::shared_ptr<const tls::ClientConfig> tls;  // null: plain trojan (tls.enabled false)
};
/// Trojan client: TCP (CONNECT) and UDP (UDP ASSOCIATE over the stream); the request header
/// goes out with the first payload in one write.
OutboundPtr makeTrojan(std::string tag, uv_loop_t* loop, SharedOutbound via,
                       const TrojanOptions& opts);

/// Delegates to one member, chosen by tag (initially `default_tag`, else the first member).
class Selector : public Outbound {
 public:
  using Outbound::Outbound;
  virtual Status select(const std::string& tag) = 0;
  virtual const std::string& selected() const = 0;
  virtual std::vector<std::string> members() const = 0;
};
std::unique_ptr<Selector> makeSelector(std::string tag, std::vector<SharedOutbound> members,
                                       const std::string& default_tag);

struct UrlTestOptions {
  std::string url = "https://www.gstatic.com/generate_204";
  uint32_t interval_ms = 180000;
  uint32_t tolerance_ms = 50;
  uint32_t timeout_ms = 5000;  // per probe
};
/// Delegates to the member with the lowest measured latency (periodic HTTP probes).
class UrlTest : public Outbound {
 public:
  using Outbound::Outbound;
  virtual const std::string& selected() const = 0;
  virtual std::vector<std::string> members() const = 0;
  /// The last measured delay of a member in ms, or -1 (never measured, or it failed).
  virtual int64_t delayOf(const std::string& member) const = 0;
};
std::unique_ptr<UrlTest> makeUrlTest(std::string tag, uv_loop_t* loop,
                                     std::vector<SharedOutbound> members,
                                     const UrlTestOptions& opts);

}  // namespace veer::outbound
