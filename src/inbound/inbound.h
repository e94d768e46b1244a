// Inbounds: listeners that accept client connections and datagrams, build their metadata and
// hand them to the router (conn::ConnectionHandler).
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/result.h"
#include "conn/context.h"

namespace veer::inbound {

struct User {
  std::string username, password;
};

struct ListenOptions {
  std::string listen = "127.0.0.1";
  uint16_t listen_port = 0;
  bool tcp_fast_open = false;
  bool reuse_addr = false;
  uint32_t handshake_timeout_ms = 10000;
  uint32_t udp_timeout_ms = 300000;
  bool sniff = false;  // legacy inbound sniffing (see conn::InboundContext)
  bool sniff_override_destination = false;
  uint32_t sniff_timeout_ms = 300;
  /// Copies the sniffing and UDP settings into a connection's context.
  void applyTo(conn::InboundContext& ctx) const {
    ctx.udp_timeout_ms = udp_timeout_ms;
    ctx.sniff = sniff;
    ctx.sniff_override_destination = sniff_override_destination;
    ctx.sniff_timeout_ms = sniff_timeout_ms;
  }
};

struct MixedOptions {
  ListenOptions listen;
  std::vector<User> users;
};

struct DirectInboundOptions {
  ListenOptions listen;
  bool tcp = true, udp = true;  // "network": "tcp" | "udp" | both when empty
  std::string override_address;
  uint16_t override_port = 0;
};

/// `redirect` (TCP only): connections that the firewall redirected (nft `redirect`, iptables
/// REDIRECT) to the listener; the original destination is read from conntrack with
/// SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6). Linux only.
struct RedirectOptions {
  ListenOptions listen;
};

/// `tproxy`: TCP and UDP that the firewall sent to the listener with TPROXY. Listening sockets
/// are IP(V6)_TRANSPARENT; the TCP original destination is the accepted socket's local
/// address, the UDP one comes from the IP(V6)_ORIGDSTADDR control message. UDP replies leave
/// from transparent sockets bound to the original destination, shared by every client and
/// bounded (least recently used closed first). Linux only.
struct TproxyOptions {
  ListenOptions listen;
  bool tcp = true, udp = true;  // "network": "tcp" | "udp" | both when empty
  size_t max_reply_sockets = 256;
  size_t max_udp_clients = 16384;  // above the router's NAT table size, so that it evicts first
};

class Inbound {
 public:
  Inbound(std::string type, std::string tag) : type_(std::move(type)), tag_(std::move(tag)) {}
  virtual ~Inbound() = default;
  const std::string& type() const { return type_; }
  const std::string& tag() const { return tag_; }
  /// Binds and starts accepting.
  virtual Status start() = 0;
  /// Stops accepting and closes the listening sockets (connections already handed to the
  /// router are not touched). The object must stay alive until the loop has run once more.
  virtual void stop() = 0;
  /// The bound TCP address (for listen_port 0 in tests).
  virtual std::optional<SocketAddress> boundAddress() const = 0;

 private:
  std::string type_, tag_;
};

using InboundPtr = std::unique_ptr<Inbound>;

InboundPtr makeMixed(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                     const MixedOptions& opts);
InboundPtr makeDirectInbound(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                             const DirectInboundOptions& opts);

InboundPtr makeRedirect(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                        const RedirectOptions& opts);
InboundPtr makeTproxy(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                      const TproxyOptions& opts);

/// True when `dst` is `port` on one of this host's own addresses: a connection or datagram that
/// reached a transparent listener without being redirected (routing it would loop back into
/// veer). Linux; the address list is cached for a few seconds.
bool isOwnListener(uv_loop_t* loop, const SocketAddress& dst, uint16_t port);

/// Binds a TCP listener (uv_tcp_t must be initialised). "::" listens dual-stack.
Status listenTcp(uv_tcp_t* tcp, const ListenOptions& opts, uv_connection_cb cb);

}  // namespace veer::inbound
