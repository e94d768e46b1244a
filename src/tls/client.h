// TLS client: a conn::Stream carrying TLS over another conn::Stream (usually a TcpStream), with
// mbedTLS. mbedTLS types stay inside this module (client.cc); callers see only ClientConfig as
// an opaque, immutable, shareable object and the resulting Stream (kind() "tls").
//
// Lifetime of a connection:
//   auto cfg = makeClientConfig(opts, "example.com");          // once per outbound
//   auto cancel = connect(loop, std::move(tcp), *cfg, 5000, [](Result<conn::StreamPtr> r) {...});
// `done` runs exactly once, from the loop (never inside connect()), with the TLS stream or an
// error saying why ("tls: certificate verify failed: ...", "tls: handshake timeout", ...);
// unless cancel() is called first, which closes everything and suppresses `done`. cancel() is
// safe to call at any time, also after `done` ran (it then does nothing).
//
// The TLS stream follows the conn::Stream contract. A peer close_notify ends reading with
// UV_EOF; so does a transport EOF without close_notify (logged at debug), unless it cuts a
// record short (UV_EPROTO). Protocol errors end reading with UV_EPROTO; errorOf() has the text.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "conn/stream.h"
#include "tls/options.h"

namespace veer::tls {

/// Trusted CAs, verification mode, SNI/expected name, ALPN and versions, built once per
/// outbound (opaque; immutable; may be shared by connections on any thread).
struct ClientConfig;

/// Builds the client configuration. `server_address` is the outbound's server (a domain or an
/// IP literal): the default SNI and expected certificate name when `o.server_name` is empty.
/// Errors name the offending field or file.
Result<std::shared_ptr<const ClientConfig>> makeClientConfig(const TlsOptions& o,
                                                             const std::string& server_address);

/// The name the certificate is checked against ("" with insecure) and the SNI sent ("" when
/// none), for logs and tests.
std::string expectedNameOf(const ClientConfig& cfg);
std::string sniOf(const ClientConfig& cfg);

using Done = std::function<void(Result<conn::StreamPtr>)>;

/// Runs the TLS handshake over `inner` (connected; this takes it over). `timeout_ms` bounds
/// the whole handshake (0: no bound). Returns the cancel function (see the top of the file).
std::function<void()> connect(uv_loop_t* loop, conn::StreamPtr inner,
                              std::shared_ptr<const ClientConfig> cfg, uint32_t timeout_ms,
                              Done done);

/// The negotiated ALPN protocol of a TLS stream ("" when none was negotiated or `s` is not a
/// TLS stream from connect()).
std::string alpnOf(const conn::Stream& s);
/// The negotiated version ("TLSv1.2") and cipher suite of a TLS stream ("" when not TLS).
std::string versionOf(const conn::Stream& s);
std::string cipherOf(const conn::Stream& s);
/// The text of the error that ended a TLS stream's reading or writing ("" when none).
std::string errorOf(const conn::Stream& s);

}  // namespace veer::tls
