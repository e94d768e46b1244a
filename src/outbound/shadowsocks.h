// Shadowsocks AEAD client outbound (SIP004; sing-box protocol/shadowsocks/outbound.go with
// sing-shadowsocks' shadowaead): aes-128-gcm, aes-256-gcm, chacha20-ietf-poly1305. TCP: the
// server is dialed through `via` and the connection is wrapped in an encrypting Stream; UDP: one
// sealed datagram per packet through `via`'s PacketConn to the server.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "base/address.h"
#include "base/result.h"
#include "conn/stream.h"
#include "outbound/outbound.h"
#include "outbound/shadowsocks_codec.h"
#include "outbound/shadowsocks_method.h"

namespace veer::outbound {

struct ShadowsocksOptions {
  std::string server;
  uint16_t server_port = 0;
  std::string method, password;
  bool tcp = true, udp = true;  // `network`
  /// A connection whose server has not answered this long after the request went out fails
  /// (ss-server answers a wrong password with silence, never with an error). 0: never.
  uint32_t reply_timeout_ms = 15000;
};

/// Fails (with the reason) when the method is not implemented or the password is empty.
OutboundPtr makeShadowsocks(std::string tag, uv_loop_t* loop, SharedOutbound via,
                            const ShadowsocksOptions& opts);

struct ShadowsocksStreamOptions {
  std::string label;                // "server 1.2.3.4:8388", for log lines
  uint32_t header_delay_ms = 50;    // the target header goes alone after this without a write
  uint32_t reply_timeout_ms = 15000;
};
/// The client side of a Shadowsocks AEAD connection over `inner` (a connected stream to the
/// server) to `target`. The target header is sent with the first write(), or alone after
/// header_delay_ms, or before shutdown(). Errors: a chunk that does not verify, a stream that
/// ends inside a chunk, a server that closes or stays silent before answering.
Result<conn::StreamPtr> makeShadowsocksStream(uv_loop_t* loop, conn::StreamPtr inner,
                                              const ss::Cipher& cipher, const Destination& target,
                                              const ShadowsocksStreamOptions& opts);

}  // namespace veer::outbound
