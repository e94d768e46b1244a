#include "outbound/http_response.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "base/address.h"

namespace veer::outbound {

namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool istartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 tchar.
bool isTokenChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// Bytes a request target may carry as they are (no spaces, no controls, ASCII only).
bool targetCharOk(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

// Removes "." and ".." segments from an absolute path (RFC 3986 5.2.4, simplified: the query
// is split off first by the caller).
std::string removeDotSegments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  bool trailing_slash = false;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    trailing_slash = false;
    if (seg == ".") {
      trailing_slash = true;
    } else if (seg == "..") {
      if (!out.empty()) out.pop_back();
      trailing_slash = true;
    } else if (!seg.empty() || j == path.size()) {
      out.push_back(seg);
    }
    i = j + 1;
  }
  std::string r;
  for (auto s : out) {
    r += '/';
    r += s;
  }
  if (r.empty()) r = "/";
  if (trailing_slash && r.back() != '/') r += '/';
  return r;
}

}  // namespace

std::string HttpUrl::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

std::string HttpUrl::toString() const {
  return std::string(tls ? "https://" : "http://") + authority() + target;
}

Result<HttpUrl> parseHttpUrl(std::string_view url) {
  HttpUrl u;
  std::string_view rest;
  if (istartsWith(url, "http://")) {
    rest = url.substr(7);
  } else if (istartsWith(url, "https://")) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    return unexpected("URL \"" + std::string(url) + "\" is not http:// or https://");
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return unexpected("URL \"" + std::string(url) + "\": user information is not supported");
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return unexpected("URL \"" + std::string(url) + "\": unterminated [IPv6] host");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return unexpected("URL \"" + std::string(url) + "\": bad host");
      port = after.substr(1);
    }
    if (!IpAddress::parse(std::string(host))) {
      return unexpected("URL \"" + std::string(url) + "\": bad IPv6 address");
    }
  } else {
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
        return unexpected("URL \"" + std::string(url) + "\": bad character in host");
      }
    }
  }
  if (host.empty()) return unexpected("URL \"" + std::string(url) + "\" has no host");
  u.host.reserve(host.size());
  for (char c : host) u.host += lower(c);
  u.port = u.tls ? 443 : 80;
  if (!authority.empty() && authority.back() == ':') {
    return unexpected("URL \"" + std::string(url) + "\": empty port");
  }
  if (!port.empty()) {
    if (port.size() > 5) return unexpected("URL \"" + std::string(url) + "\": bad port");
    uint32_t p = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return unexpected("URL \"" + std::string(url) + "\": bad port");
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p == 0 || p > 65535) return unexpected("URL \"" + std::string(url) + "\": bad port");
    u.port = static_cast<uint16_t>(p);
  }
  size_t hash = tail.find('#');
  if (hash != std::string_view::npos) tail = tail.substr(0, hash);
  for (char c : tail) {
    if (!targetCharOk(c)) {
      return unexpected("URL \"" + std::string(url) + "\": spaces or control characters in "
                        "the path (percent-encode them)");
    }
  }
  if (tail.empty() || tail.front() == '?') {
    u.target = "/" + std::string(tail);
  } else {
    u.target = std::string(tail);
  }
  return u;
}

Result<HttpUrl> resolveLocation(const HttpUrl& base, std::string_view location) {
  location = trim(location);
  if (location.empty()) return unexpected("empty Location");
  if (istartsWith(location, "http://") || istartsWith(location, "https://")) {
    return parseHttpUrl(location);
  }
  if (location.size() >= 2 && location[0] == '/' && location[1] == '/') {
    return parseHttpUrl(std::string(base.tls ? "https:" : "http:") + std::string(location));
  }
  // Anything else with a scheme ("ftp:", "javascript:") is refused.
  size_t colon = location.find(':');
  size_t slash = location.find_first_of("/?#");
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash)) {
    return unexpected("redirect to an unsupported URL \"" + std::string(location) + "\"");
  }
  std::string_view loc = location;
  size_t hash = loc.find('#');
  if (hash != std::string_view::npos) loc = loc.substr(0, hash);
  for (char c : loc) {
    if (!targetCharOk(c)) return unexpected("bad character in Location");
  }
  std::string_view query;
  size_t q = loc.find('?');
  std::string_view path = loc.substr(0, q);
  if (q != std::string_view::npos) query = loc.substr(q);
  std::string abs;
  if (!path.empty() && path.front() == '/') {
    abs = std::string(path);
  } else {
    std::string_view bpath = std::string_view(base.target).substr(0, base.target.find('?'));
    size_t last = bpath.rfind('/');
    abs = std::string(bpath.substr(0, last == std::string_view::npos ? 0 : last + 1));
    if (abs.empty()) abs = "/";
    if (path.empty()) {
      abs = std::string(bpath);
    } else {
      abs += std::string(path);
    }
  }
  HttpUrl u = base;
  u.target = removeDotSegments(abs) + std::string(query);
  return u;
}

// ---- HttpResponseParser ----

bool HttpResponseParser::fail(std::string why) {
  state_ = State::Error;
  error_ = std::move(why);
  return false;
}

const std::string* HttpResponseParser::header(std::string_view name) const {
  for (const auto& [n, v] : headers_) {
    if (iequals(n, name)) return &v;
  }
  return nullptr;
}

bool HttpResponseParser::feed(const char* data, size_t len) {
  if (state_ == State::Error) return false;
  while (len > 0 && state_ == State::Head) {
    // Look for the blank line that ends the head in what we have plus the new bytes.
    size_t old = head_buf_.size();
    size_t take = std::min(len, kMaxHeadSize + 4 - std::min(old, kMaxHeadSize + 4));
    head_buf_.append(data, take);
    size_t from = old >= 3 ? old - 3 : 0;
    size_t end = std::string::npos, body_at = 0;
    for (size_t i = from; i < head_buf_.size(); ++i) {
      if (head_buf_[i] != '\n') continue;
      // "\n\n" or "\n\r\n" ends the head.
      if (i + 1 < head_buf_.size() && head_buf_[i + 1] == '\n') {
        end = i + 1;
        body_at = i + 2;
        break;
      }
      if (i + 2 < head_buf_.size() && head_buf_[i + 1] == '\r' && head_buf_[i + 2] == '\n') {
        end = i + 1;
        body_at = i + 3;
        break;
      }
    }
    if (end == std::string::npos) {
      if (head_buf_.size() > kMaxHeadSize) {
        return fail("response head larger than " + std::to_string(kMaxHeadSize) + " bytes");
      }
      if (take < len) return fail("response head too large");
      return true;
    }
    if (end > kMaxHeadSize) {
      return fail("response head larger than " + std::to_string(kMaxHeadSize) + " bytes");
    }
    // Bytes of this feed that follow the head.
    size_t used_of_new = body_at - old;
    data += used_of_new;
    len -= used_of_new;
    std::string head = head_buf_.substr(0, end);
    head_buf_.clear();
    if (!parseHead(head)) return false;
    if (status_ >= 100 && status_ < 200) {
      // An interim response (100 Continue, 103 Early Hints): the real one follows.
      headers_.clear();
      reason_.clear();
      status_ = 0;
      continue;
    }
    if (!startBody()) return false;
  }
  if (state_ == State::Body && len > 0) return feedBody(data, len);
  return state_ != State::Error;
}

bool HttpResponseParser::parseHead(std::string_view head) {
  std::vector<std::string_view> lines;
  size_t i = 0;
  while (i < head.size()) {
    size_t j = head.find('\n', i);
    if (j == std::string_view::npos) j = head.size();
    std::string_view line = head.substr(i, j - i);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    i = j + 1;
  }
  if (lines.empty()) return fail("empty response head");
  // Status line: HTTP/1.x SP 3DIGIT [SP reason]
  std::string_view sl = lines[0];
  if (sl.size() < 12 || sl.substr(0, 7) != "HTTP/1." || !std::isdigit(static_cast<unsigned char>(sl[7])) ||
      sl[8] != ' ') {
    return fail("not an HTTP/1.x status line: \"" + std::string(sl.substr(0, 64)) + "\"");
  }
  for (int k = 9; k < 12; ++k) {
    if (!std::isdigit(static_cast<unsigned char>(sl[k]))) return fail("bad status code");
  }
  if (sl.size() > 12 && sl[12] != ' ') return fail("bad status line");
  status_ = (sl[9] - '0') * 100 + (sl[10] - '0') * 10 + (sl[11] - '0');
  if (status_ < 100) return fail("bad status code " + std::to_string(status_));
  reason_ = sl.size() > 13 ? std::string(sl.substr(13)) : "";
  for (char c : reason_) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return fail("control character in the reason");
  }
  headers_.clear();
  for (size_t k = 1; k < lines.size(); ++k) {
    std::string_view line = lines[k];
    if (line.empty()) continue;  // only the last line can be empty
    if (line.front() == ' ' || line.front() == '\t') {
      return fail("obsolete header line folding");
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("header line without a name");
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!isTokenChar(c)) return fail("bad character in a header name");
    }
    std::string_view value = trim(line.substr(colon + 1));
    for (char c : value) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) return fail("control character in a header value");
    }
    if (headers_.size() >= kMaxHeaders) return fail("too many headers");
    headers_.emplace_back(std::string(name), std::string(value));
  }
  return true;
}

bool HttpResponseParser::startBody() {
  // RFC 9112 6.3: HEAD, 1xx, 204 and 304 have no body; then Transfer-Encoding, then
  // Content-Length, else until close.
  if (head_request_ || status_ == 204 || status_ == 304) {
    framing_ = Framing::None;
    state_ = State::Done;
    return true;
  }
  const std::string* te = nullptr;
  std::vector<const std::string*> cls;
  for (const auto& [n, v] : headers_) {
    if (iequals(n, "Transfer-Encoding")) {
      if (te != nullptr) return fail("several Transfer-Encoding headers");
      te = &v;
    } else if (iequals(n, "Content-Length")) {
      cls.push_back(&v);
    }
  }
  if (te != nullptr) {
    // The last coding must be chunked; other codings (gzip) were not asked for.
    std::string_view codings = *te;
    size_t comma = codings.rfind(',');
    std::string_view last = trim(comma == std::string_view::npos ? codings : codings.substr(comma + 1));
    if (!iequals(last, "chunked")) {
      return fail("unsupported Transfer-Encoding \"" + std::string(codings) + "\"");
    }
    if (comma != std::string_view::npos) {
      return fail("unsupported Transfer-Encoding \"" + std::string(codings) + "\"");
    }
    framing_ = Framing::Chunked;
    chunk_state_ = Chunk::Size;
    size_digits_ = 0;
    remaining_ = 0;
    state_ = State::Body;
    return true;
  }
  if (!cls.empty()) {
    // Several values (repeated headers or "n, n") must all be the same number.
    bool have = false;
    uint64_t n = 0;
    for (const std::string* v : cls) {
      std::string_view s = *v;
      size_t i = 0;
      while (i <= s.size()) {
        size_t j = s.find(',', i);
        if (j == std::string_view::npos) j = s.size();
        std::string_view item = trim(s.substr(i, j - i));
        if (item.empty() || item.size() > 19) return fail("bad Content-Length \"" + *v + "\"");
        uint64_t x = 0;
        for (char c : item) {
          if (c < '0' || c > '9') return fail("bad Content-Length \"" + *v + "\"");
          x = x * 10 + static_cast<uint64_t>(c - '0');
        }
        if (have && x != n) return fail("conflicting Content-Length values");
        n = x;
        have = true;
        i = j + 1;
      }
    }
    if (n > max_body_) {
      return fail("body of " + std::to_string(n) + " bytes is larger than the limit of " +
                  std::to_string(max_body_));
    }
    framing_ = Framing::Length;
    remaining_ = n;
    // What the server announces is reserved only up to 1 MiB: a length alone must not make a
    // router allocate the whole cap.
    body_.reserve(static_cast<size_t>(std::min<uint64_t>(n, uint64_t{1} << 20)));
    state_ = n == 0 ? State::Done : State::Body;
    return true;
  }
  framing_ = Framing::UntilClose;
  state_ = State::Body;
  return true;
}

bool HttpResponseParser::appendBody(const char* data, size_t len) {
  if (len > max_body_ - body_.size()) {
    return fail("body larger than the limit of " + std::to_string(max_body_) + " bytes");
  }
  body_.append(data, len);
  return true;
}

bool HttpResponseParser::feedBody(const char* data, size_t len) {
  switch (framing_) {
    case Framing::None:
      return true;
    case Framing::UntilClose:
      return appendBody(data, len);
    case Framing::Length: {
      size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, len));
      if (!appendBody(data, n)) return false;
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::Done;
      return true;
    }
    case Framing::Chunked:
      break;
  }
  size_t i = 0;
  while (i < len && state_ == State::Body) {
    char c = data[i];
    switch (chunk_state_) {
      case Chunk::Size: {
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d >= 0) {
          if (++size_digits_ > 15) return fail("chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(d);
          ++i;
          break;
        }
        if (size_digits_ == 0) return fail("bad chunk size");
        if (c == ';' || c == ' ' || c == '\t') {
          chunk_state_ = Chunk::Ext;
        } else if (c == '\r') {
          chunk_state_ = Chunk::SizeLf;
        } else if (c == '\n') {
          chunk_state_ = remaining_ == 0 ? Chunk::Trailer : Chunk::Data;
          trailer_line_len_ = 0;
        } else {
          return fail("bad chunk size");
        }
        ++i;
        break;
      }
      case Chunk::Ext:
        if (c == '\n') {
          chunk_state_ = remaining_ == 0 ? Chunk::Trailer : Chunk::Data;
          trailer_line_len_ = 0;
        } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') {
          return fail("control character in a chunk extension");
        }
        if (++trailer_bytes_ > kMaxHeadSize) return fail("chunk extensions too long");
        ++i;
        break;
      case Chunk::SizeLf:
        if (c != '\n') return fail("chunk size line without LF");
        chunk_state_ = remaining_ == 0 ? Chunk::Trailer : Chunk::Data;
        trailer_line_len_ = 0;
        ++i;
        break;
      case Chunk::Data: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, len - i));
        if (!appendBody(data + i, n)) return false;
        remaining_ -= n;
        i += n;
        if (remaining_ == 0) chunk_state_ = Chunk::DataCr;
        break;
      }
      case Chunk::DataCr:
        if (c == '\r') {
          chunk_state_ = Chunk::DataLf;
        } else if (c == '\n') {
          chunk_state_ = Chunk::Size;
          size_digits_ = 0;
        } else {
          return fail("chunk data not followed by CRLF");
        }
        ++i;
        break;
      case Chunk::DataLf:
        if (c != '\n') return fail("chunk data not followed by CRLF");
        chunk_state_ = Chunk::Size;
        size_digits_ = 0;
        remaining_ = 0;
        ++i;
        break;
      case Chunk::Trailer:
        // Trailer fields until an empty line; they are skipped.
        if (++trailer_bytes_ > kMaxHeadSize) return fail("chunked trailer too long");
        if (c == '\r') {
          chunk_state_ = Chunk::TrailerLf;
        } else if (c == '\n') {
          if (trailer_line_len_ == 0) {
            state_ = State::Done;
          }
          trailer_line_len_ = 0;
        } else {
          ++trailer_line_len_;
        }
        ++i;
        break;
      case Chunk::TrailerLf:
        if (c != '\n') return fail("trailer line without LF");
        if (trailer_line_len_ == 0) state_ = State::Done;
        trailer_line_len_ = 0;
        chunk_state_ = Chunk::Trailer;
        ++i;
        break;
    }
  }
  return state_ != State::Error;
}

bool HttpResponseParser::finish() {
  switch (state_) {
    case State::Done:
      return true;
    case State::Error:
      return false;
    case State::Head:
      return fail(head_buf_.empty() ? "connection closed before a response"
                                    : "connection closed inside the response head");
    case State::Body:
      if (framing_ == Framing::UntilClose) {
        state_ = State::Done;
        return true;
      }
      if (framing_ == Framing::Length) {
        return fail("connection closed after " + std::to_string(body_.size()) + " of " +
                    std::to_string(body_.size() + remaining_) + " body bytes");
      }
      return fail("connection closed inside the chunked body");
  }
  return false;
}

}  // namespace veer::outbound
