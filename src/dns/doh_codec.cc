#include "dns/doh_codec.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace veer::dns {

namespace {

namespace http = inbound::http;

// Raw body bytes kept at most: the largest DNS message plus generous chunk framing.
constexpr size_t kMaxRawBody = 2 * kMaxDohBody;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The media type of a Content-Type value, without parameters and spaces.
std::string_view mediaType(std::string_view v) {
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Decodes a chunked body that BodyFramer already accepted as complete and well formed.
std::vector<uint8_t> dechunk(ByteView raw) {
  std::vector<uint8_t> out;
  size_t i = 0;
  while (i < raw.size()) {
    uint64_t size = 0;
    while (i < raw.size() && std::isxdigit(raw[i])) {
      int c = std::tolower(raw[i++]);
      size = size * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    while (i < raw.size() && raw[i] != '\n') ++i;  // extensions, CR
    ++i;
    if (size == 0 || i >= raw.size()) break;  // the trailer follows
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, raw.size() - i));
    out.insert(out.end(), raw.begin() + static_cast<long>(i),
               raw.begin() + static_cast<long>(i + n));
    i += n + 2;  // CRLF after the data
  }
  return out;
}

}  // namespace

std::string buildDohRequest(const std::string& host, const std::string& path,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            ByteView message) {
  std::string r = "POST " + path + " HTTP/1.1\r\nHost: " + host +
                  "\r\nContent-Type: application/dns-message\r\nAccept: application/dns-message"
                  "\r\nContent-Length: " +
                  std::to_string(message.size()) + "\r\n";
  for (const auto& [name, value] : headers) r += name + ": " + value + "\r\n";
  r += "\r\n";
  r.append(reinterpret_cast<const char*>(message.data()), message.size());
  return r;
}

DohResponseReader::State DohResponseReader::fail(std::string why) {
  error_ = std::move(why);
  state_ = State::Bad;
  return state_;
}

DohResponseReader::State DohResponseReader::feed(ByteView in) {
  if (state_ != State::NeedMore) {
    // Bytes after a complete response: the server answered something we did not ask.
    if (state_ == State::Done) excess_ += in.size();
    return state_;
  }
  while (!head_done_) {
    buf_.insert(buf_.end(), in.begin(), in.end());
    in = {};
    http::ResponseHead head;
    std::string why;
    switch (http::parseResponseHead(ByteView(buf_.data(), buf_.size()), head, why)) {
      case http::Parse::NeedMore: return state_;
      case http::Parse::Bad: return fail("bad HTTP response: " + why);
      case http::Parse::Done: break;
    }
    std::vector<uint8_t> rest(buf_.begin() + static_cast<long>(head.head_len), buf_.end());
    buf_.clear();
    if (head.status / 100 == 1) {
      // An interim response (100 Continue): the real one follows.
      buf_ = std::move(rest);
      if (buf_.empty()) return state_;
      continue;
    }
    head_done_ = true;
    status_ = head.status;
    const std::string* conn = head.header("Connection");
    keep_alive_ = http::keepAlive(head.version, conn);
    if (status_ != 200) {
      // The body (an error page) is of no use; the connection is closed after it.
      return fail("HTTP status " + std::to_string(status_));
    }
    const std::string* ct = head.header("Content-Type");
    content_type_ = ct ? std::string(mediaType(*ct)) : std::string();
    if (!iequals(content_type_, "application/dns-message")) {
      return fail("unexpected Content-Type \"" + (ct ? *ct : std::string()) +
                  "\" (want application/dns-message)");
    }
    bool ok = true;
    framer_ = http::BodyFramer::forResponse(head, "POST", why, ok);
    if (!ok) return fail("bad HTTP response: " + why);
    if (framer_.kind() == http::BodyFramer::Kind::UntilClose) keep_alive_ = false;
    in = ByteView(rest.data(), rest.size());
    buf_.reserve(rest.size());
    // `rest` lives until the end of this call: consume it below.
    long n = framer_.consume(in);
    if (n < 0) return fail("bad chunked encoding");
    buf_.insert(buf_.end(), in.begin(), in.begin() + n);
    if (buf_.size() > kMaxRawBody) return fail("response body too large");
    if (framer_.done()) {
      excess_ = in.size() - static_cast<size_t>(n);
      return complete();
    }
    return state_;
  }
  long n = framer_.consume(in);
  if (n < 0) return fail("bad chunked encoding");
  buf_.insert(buf_.end(), in.begin(), in.begin() + n);
  if (buf_.size() > kMaxRawBody) return fail("response body too large");
  if (framer_.done()) {
    excess_ = in.size() - static_cast<size_t>(n);
    return complete();
  }
  return state_;
}

DohResponseReader::State DohResponseReader::finish() {
  if (state_ != State::NeedMore) return state_;
  if (!head_done_) {
    return fail(buf_.empty() ? "connection closed before the response"
                             : "connection closed inside the response head");
  }
  if (framer_.kind() == http::BodyFramer::Kind::UntilClose) return complete();
  return fail("connection closed inside the response body (truncated)");
}

DohResponseReader::State DohResponseReader::complete() {
  if (framer_.kind() == http::BodyFramer::Kind::Chunked) {
    body_ = dechunk(ByteView(buf_.data(), buf_.size()));
  } else {
    body_ = std::move(buf_);
  }
  buf_.clear();
  if (body_.size() < 12) {
    return fail("response body of " + std::to_string(body_.size()) +
                " bytes is not a DNS message");
  }
  if (body_.size() > kMaxDohBody) return fail("response body too large");
  state_ = State::Done;
  return state_;
}

}  // namespace veer::dns
