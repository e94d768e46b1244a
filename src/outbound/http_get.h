// A small HTTP/1.1 GET client over an Outbound (remote rule-set downloads): dials the URL's
// host through the outbound, optionally runs a TLS step on the connection, sends one request
// (Connection: close) and reads the response with HttpResponseParser. Follows a few redirects
// (301, 302, 303, 307, 308), bounds the whole exchange by a timeout and the body by a size cap,
// and can send If-None-Match / If-Modified-Since (the caller handles 304). Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "conn/stream.h"
#include "outbound/http_response.h"
#include "outbound/outbound.h"

namespace veer::outbound {

struct HttpGetOptions {
  std::string url;
  std::string if_none_match;      // an ETag from an earlier download
  std::string if_modified_since;  // a Last-Modified from an earlier download
  uint32_t timeout_ms = 60000;    // the whole exchange, redirects included
  size_t max_body = size_t{64} << 20;
  int max_redirects = 3;
  std::string inbound_tag = "http-get";  // names the connection in logs ("rule-set/geoip-cn")
};

struct HttpGetResponse {
  int status = 0;
  std::string reason;
  std::string body;
  std::string etag;
  std::string last_modified;
  std::string url;  // after redirects
};

/// The TLS step for https:// URLs: wraps a connected stream for `url` (SNI and the name checked
/// are url.host). Runs `done` exactly once unless the returned cancel function is called first.
using TlsStep = std::function<std::function<void()>(
    uv_loop_t* loop, const HttpUrl& url, conn::StreamPtr inner, uint32_t timeout_ms,
    std::function<void(Result<conn::StreamPtr>)> done)>;

/// veer's TLS client (src/tls): the system CA store (or SSL_CERT_FILE / SSL_CERT_DIR, as Go
/// programs), SNI and the name checked from the URL's host, ALPN http/1.1.
TlsStep systemTlsStep();

class HttpGet {
 public:
  using Done = std::function<void(Result<HttpGetResponse>)>;
  virtual ~HttpGet() = default;  // cancels; `done` never runs afterwards

  /// Starts the download. `via` must outlive the returned object. `done` runs once, never
  /// inside start(); the object may be destroyed inside `done`. Any final status is a success
  /// here (the caller decides what 304 or 404 mean); failures are connection, TLS, protocol,
  /// size and timeout errors. Without a TLS step an https:// URL fails.
  static std::unique_ptr<HttpGet> start(uv_loop_t* loop, Outbound* via, HttpGetOptions opts,
                                        TlsStep tls, Done done);
};

}  // namespace veer::outbound
