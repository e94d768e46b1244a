// Per-connection metadata (sing-box's InboundContext) and the interface between inbounds and
// the router. conn knows nothing of rules: the router implements ConnectionHandler.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/result.h"
#include "conn/stream.h"

namespace veer::conn {

struct InboundContext {
  uint64_t id = 0;
  std::string inbound_tag;
  std::string inbound_type;
  std::string network = "tcp";  // "tcp" | "udp"
  SocketAddress source;
  Destination destination;       // what the client asked for (or the original destination)
  Destination original_destination;  // before override_address/override_port
  std::string user;              // authenticated user, if any
  uint32_t udp_timeout_ms = 0;   // the inbound's udp_timeout (0 = the router's default)
  // Legacy inbound sniffing (sing-box <= 1.12 `sniff`, `sniff_override_destination`,
  // `sniff_timeout`): sniff before the rules run, as if the first rule were a sniff action.
  bool sniff = false;
  bool sniff_override_destination = false;
  uint32_t sniff_timeout_ms = 300;
  // Filled by sniffing.
  std::string protocol;
  std::string sniffed_domain;
  std::string client;
  // Filled by the resolve action.
  std::vector<IpAddress> destination_addresses;
  // Routing outcome, for logs and connection listings.
  std::string rule;
  std::string outbound;
  uint64_t start_ms = 0;
};

/// Why a dial failed, in the terms an inbound needs to answer its client.
enum class DialFailure : uint8_t { None, Blocked, Refused, Unreachable, Timeout, Other };

DialFailure classifyDialError(const Error& e);

/// Sends bytes to the client for the dial outcome (a SOCKS reply, "HTTP/1.1 200 ..."); empty
/// for inbounds that answer nothing (redirect, tproxy, direct).
using ReplyBuilder = std::function<std::string(DialFailure)>;

/// The receiving end of a UDP NAT session: where replies for one client go. Implemented by the
/// inbound (SOCKS5 UDP relay adds the SOCKS header; the direct inbound sends the bare payload).
class UdpReplySink {
 public:
  virtual ~UdpReplySink() = default;
  /// `from` is the address the client sees the reply come from (NAT-translated).
  virtual void sendReply(const Destination& from, const char* data, size_t len) = 0;
};

/// Implemented by the router.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  /// Takes ownership of the heap-allocated, connected `client`. Routes, dials, writes
  /// reply(outcome) to the client, then relays (or closes on failure).
  virtual void handleTcp(InboundContext ctx, uv_tcp_t* client, std::string early,
                         ReplyBuilder reply) = 0;
  /// Routes and dials for an inbound that relays by itself (plain HTTP proxying). `cb` gets the
  /// connected stream, or the failure. Returns an id for cancelDial().
  using DialCallback = std::function<void(Result<StreamPtr>, DialFailure)>;
  virtual uint64_t dialTcp(InboundContext& ctx, DialCallback cb) = 0;
  virtual void cancelDial(uint64_t id) = 0;
  /// One UDP datagram from a client. `sink` must outlive the NAT sessions it is given to:
  /// inbounds call udpSinkClosed() before destroying it.
  virtual void handleUdp(const InboundContext& ctx, const char* data, size_t len,
                         UdpReplySink* sink) = 0;
  virtual void udpSinkClosed(UdpReplySink* sink) = 0;
  /// Called by an inbound when a session of its own (plain HTTP) starts and ends, so that
  /// shutdown can close it and listings can show it.
  virtual uint64_t nextConnectionId() = 0;
};

}  // namespace veer::conn
