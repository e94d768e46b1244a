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

/// Binds a TCP listener (uv_tcp_t must be initialised). "::" listens dual-stack.
Status listenTcp(uv_tcp_t* tcp, const ListenOptions& opts, uv_connection_cb cb);

}  // namespace veer::inbound
