// HTTP/1.1 client side, the pure parts: `http://` and `https://` URLs, Location resolution, and
// an incremental response parser (status line, headers, Content-Length / chunked / until-close
// bodies, decoded, with a size cap). Used by the HTTP GET client (http_get.h) that downloads
// remote rule sets. No sockets, no loop: fuzzed as tests/fuzz/http_response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace veer::outbound {

struct HttpUrl {
  bool tls = false;      // https
  std::string host;      // domain (lower-case) or IP literal, without brackets
  uint16_t port = 0;     // 80 / 443 when the URL has none
  std::string target;    // origin-form request target: "/path?query" (never empty)

  /// "host", "host:port" or "[v6]:port": the Host header (port omitted when it is the default).
  std::string authority() const;
  /// The URL back as text (for logs).
  std::string toString() const;
};

/// Parses an absolute http:// or https:// URL (no user info; the fragment is dropped).
Result<HttpUrl> parseHttpUrl(std::string_view url);

/// Resolves a Location header value against the URL it came from: absolute URLs,
/// scheme-relative ("//host/x"), absolute paths ("/x") and relative paths ("x", "../x").
Result<HttpUrl> resolveLocation(const HttpUrl& base, std::string_view location);

class HttpResponseParser {
 public:
  static constexpr size_t kMaxHeadSize = 16 * 1024;
  static constexpr size_t kMaxHeaders = 100;

  /// `max_body`: the most body bytes accepted (decoded); beyond it the response is an error.
  /// `head_request`: the response to a HEAD has no body whatever its headers say.
  explicit HttpResponseParser(size_t max_body, bool head_request = false)
      : max_body_(max_body), head_request_(head_request) {}

  /// Feeds bytes from the connection. Returns false once the response is malformed (error()
  /// says why). Bytes after the end of the response are ignored (done() is true).
  bool feed(const char* data, size_t len);
  /// The connection ended. Completes a body that runs until close; returns false (with
  /// error()) when the response was cut short.
  bool finish();

  bool done() const { return state_ == State::Done; }
  bool failed() const { return state_ == State::Error; }
  const std::string& error() const { return error_; }

  int status() const { return status_; }
  const std::string& reason() const { return reason_; }
  /// The first header of that name (case-insensitive), or null.
  const std::string* header(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }
  /// The decoded body (chunked framing removed).
  const std::string& body() const { return body_; }
  std::string takeBody() { return std::move(body_); }
  /// Whether the body runs until the connection closes (no length, not chunked).
  bool untilClose() const { return framing_ == Framing::UntilClose; }

 private:
  enum class State { Head, Body, Done, Error };
  enum class Framing { None, Length, Chunked, UntilClose };
  enum class Chunk { Size, Ext, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf };

  bool fail(std::string why);
  bool parseHead(std::string_view head);
  bool startBody();
  bool feedBody(const char* data, size_t len);
  bool appendBody(const char* data, size_t len);

  size_t max_body_;
  bool head_request_;
  State state_ = State::Head;
  std::string error_;
  std::string head_buf_;
  int status_ = 0;
  std::string reason_;
  std::vector<std::pair<std::string, std::string>> headers_;
  Framing framing_ = Framing::None;
  uint64_t remaining_ = 0;  // Length: body bytes still to come; Chunked: of this chunk
  Chunk chunk_state_ = Chunk::Size;
  int size_digits_ = 0;
  size_t trailer_line_len_ = 0;
  size_t trailer_bytes_ = 0;
  std::string body_;
};

}  // namespace veer::outbound
