// HTTP/1.x proxy wire format: request and response heads, and body framing (Content-Length,
// chunked, until close) so that a keep-alive connection can carry several requests. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"

namespace veer::inbound::http {

enum class Parse { Done, NeedMore, Bad };

/// The most a request or response head may take; beyond it the connection is refused (431/502).
constexpr size_t kMaxHeadSize = 16 * 1024;

struct Header {
  std::string name, value;
};

struct RequestHead {
  std::string method, target, version;  // version "HTTP/1.1"
  std::vector<Header> headers;
  size_t head_len = 0;

  const std::string* header(std::string_view name) const;  // case-insensitive
};

struct ResponseHead {
  int status = 0;
  std::string version;
  std::vector<Header> headers;
  size_t head_len = 0;
  const std::string* header(std::string_view name) const;
};

Parse parseRequestHead(ByteView in, RequestHead& out, std::string& why);
Parse parseResponseHead(ByteView in, ResponseHead& out, std::string& why);

/// The destination of a proxy request: CONNECT's authority, or an absolute URI's host.
/// For absolute URIs, `origin_target` receives the path form ("/x?y") to send upstream.
std::optional<Destination> proxyDestination(const RequestHead& req, std::string& origin_target,
                                            std::string& why);

/// Rewrites a request head for the origin server: origin-form target, Proxy-* headers dropped,
/// Host kept (added from the URI if missing).
std::string rewriteForOrigin(const RequestHead& req, const std::string& origin_target,
                             const Destination& dst);

/// Whether the client wants the connection kept open after this exchange.
bool keepAlive(const std::string& version, const std::string* connection_header);

/// Incremental body framing. Feed it the bytes that follow the head; it says how many belong
/// to this message, and when the message is complete.
class BodyFramer {
 public:
  enum class Kind { None, Length, Chunked, UntilClose };
  BodyFramer() = default;
  static BodyFramer forRequest(const RequestHead& h, std::string& why, bool& ok);
  static BodyFramer forResponse(const ResponseHead& h, const std::string& request_method,
                                std::string& why, bool& ok);

  /// Consumes from `in`; returns how many bytes belong to the body (≤ in.size()), or -1 on
  /// malformed chunked encoding.
  long consume(ByteView in);
  bool done() const;
  Kind kind() const { return kind_; }

 private:
  enum class ChunkState { Size, SizeExt, SizeLf, Data, DataCr, DataLf, Trailer, TrailerLf, Done };
  Kind kind_ = Kind::None;
  uint64_t remaining_ = 0;
  ChunkState cs_ = ChunkState::Size;
  uint64_t chunk_ = 0;
  int size_digits_ = 0;
  bool trailer_line_empty_ = true;
};

/// A small complete response ("HTTP/1.1 502 Bad Gateway" with a text body and Connection: close).
std::string simpleResponse(int status, std::string_view reason, std::string_view body);

}  // namespace veer::inbound::http
