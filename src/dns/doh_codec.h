// DNS over HTTPS (RFC 8484) over HTTP/1.1, the wire side: the POST request, and a reader that
// assembles one response from the bytes of a keep-alive connection and checks it (status 200,
// Content-Type application/dns-message, a body that can be a DNS message). Pure: no sockets.
// The HTTP head parser and body framing are the proxy's (inbound/http_codec.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "inbound/http_codec.h"

namespace veer::dns {

/// The largest response body accepted (a DNS message is at most 65535 bytes).
constexpr size_t kMaxDohBody = 65535;

/// "POST <path> HTTP/1.1" with Host, Content-Type/Accept application/dns-message,
/// Content-Length, the configured extra headers, then `message` as the body.
std::string buildDohRequest(const std::string& host, const std::string& path,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            ByteView message);

class DohResponseReader {
 public:
  enum class State { NeedMore, Done, Bad };

  /// Feeds the next bytes read from the connection. Done: the response is complete (body()
  /// holds the DNS message); Bad: error() says why (the connection must be closed).
  State feed(ByteView in);
  /// The connection ended: completes a response delimited by the close, else Bad.
  State finish();
  /// Ready for the next response on the same connection.
  void reset() { *this = DohResponseReader(); }

  State state() const { return state_; }
  const std::string& error() const { return error_; }
  /// Whether nothing at all has arrived yet (a keep-alive connection closed by the server
  /// before it answered: the request may be retried on a new one).
  bool empty() const { return buf_.empty() && !head_done_; }
  int status() const { return status_; }
  /// The server keeps the connection open after this response.
  bool keepAlive() const { return keep_alive_; }
  /// Bytes after the end of the response (the server sent more than one response: the
  /// connection cannot be trusted any further).
  size_t excess() const { return excess_; }
  const std::vector<uint8_t>& body() const { return body_; }

 private:
  State fail(std::string why);
  State complete();

  State state_ = State::NeedMore;
  std::string error_;
  std::vector<uint8_t> buf_;  // the head until parsed, then the raw body (chunk framing too)
  bool head_done_ = false;
  int status_ = 0;
  bool keep_alive_ = true;
  std::string content_type_;
  inbound::http::BodyFramer framer_;
  size_t excess_ = 0;
  std::vector<uint8_t> body_;
};

}  // namespace veer::dns
