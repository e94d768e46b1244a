#include "inbound/http_codec.h"

#include <cstring>

namespace veer::inbound::http {

namespace {

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool isToken(char c) {
  return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c);
}

// Finds the end of the head ("\r\n\r\n", also tolerating bare "\n\n"); 0 if not yet complete.
size_t headEnd(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\n') continue;
    if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return 0;
}

Parse parseHeaders(std::string_view block, std::vector<Header>& out, std::string& why) {
  while (!block.empty()) {
    size_t nl = block.find('\n');
    std::string_view line = block.substr(0, nl);
    block = nl == std::string_view::npos ? std::string_view() : block.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      why = "obsolete header folding";
      return Parse::Bad;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      why = "malformed header line";
      return Parse::Bad;
    }
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!isToken(c)) {
        why = "bad character in header name";
        return Parse::Bad;
      }
    }
    if (out.size() >= 200) {
      why = "too many headers";
      return Parse::Bad;
    }
    out.push_back(Header{std::string(name), std::string(trim(line.substr(colon + 1)))});
  }
  return Parse::Done;
}

const std::string* findHeader(const std::vector<Header>& hs, std::string_view name) {
  const std::string* found = nullptr;
  for (const auto& h : hs) {
    if (ieq(h.name, name)) found = &h.value;
  }
  return found;
}

bool parsePort(std::string_view s, uint16_t& port) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t p = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p == 0 || p > 65535) return false;
  port = static_cast<uint16_t>(p);
  return true;
}

// Splits "host:port" / "[v6]:port" / "host" into a destination.
bool parseAuthority(std::string_view auth, uint16_t default_port, Destination& out) {
  if (auth.empty()) return false;
  std::string_view host = auth;
  uint16_t port = default_port;
  if (auth.front() == '[') {
    size_t close = auth.find(']');
    if (close == std::string_view::npos) return false;
    host = auth.substr(1, close - 1);
    std::string_view rest = auth.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !parsePort(rest.substr(1), port)) return false;
    }
    if (!IpAddress::parse(host)) return false;
  } else {
    size_t colon = auth.rfind(':');
    if (colon != std::string_view::npos) {
      if (!parsePort(auth.substr(colon + 1), port)) return false;
      host = auth.substr(0, colon);
    }
  }
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    if (c <= 32 || c == '/' || c == '@' || c == '\\' || static_cast<unsigned char>(c) >= 127) {
      return false;
    }
  }
  if (port == 0) return false;
  out = Destination::fromHost(host, port);
  return out.valid();
}

}  // namespace

const std::string* RequestHead::header(std::string_view name) const {
  return findHeader(headers, name);
}
const std::string* ResponseHead::header(std::string_view name) const {
  return findHeader(headers, name);
}

Parse parseRequestHead(ByteView in, RequestHead& out, std::string& why) {
  std::string_view s = asChars(in);
  size_t end = headEnd(s.substr(0, std::min(s.size(), kMaxHeadSize)));
  if (end == 0) {
    if (s.size() >= kMaxHeadSize) {
      why = "request head too large";
      return Parse::Bad;
    }
    // Reject obvious garbage early instead of waiting for 16 KiB of it.
    for (size_t i = 0; i < s.size() && i < 16 && s[i] != ' '; ++i) {
      if (!isToken(s[i])) {
        why = "not an HTTP request";
        return Parse::Bad;
      }
    }
    return Parse::NeedMore;
  }
  std::string_view head = s.substr(0, end);
  size_t nl = head.find('\n');
  std::string_view line = head.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0 ||
      sp2 == sp1 + 1) {
    why = "malformed request line";
    return Parse::Bad;
  }
  out.method = std::string(line.substr(0, sp1));
  out.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  out.version = std::string(line.substr(sp2 + 1));
  for (char c : out.method) {
    if (!isToken(c)) {
      why = "bad method";
      return Parse::Bad;
    }
  }
  if (out.version != "HTTP/1.1" && out.version != "HTTP/1.0") {
    why = "unsupported HTTP version";
    return Parse::Bad;
  }
  out.headers.clear();
  Parse p = parseHeaders(head.substr(nl + 1), out.headers, why);
  if (p != Parse::Done) return p;
  out.head_len = end;
  return Parse::Done;
}

Parse parseResponseHead(ByteView in, ResponseHead& out, std::string& why) {
  std::string_view s = asChars(in);
  size_t end = headEnd(s.substr(0, std::min(s.size(), kMaxHeadSize)));
  if (end == 0) {
    if (s.size() >= kMaxHeadSize) {
      why = "response head too large";
      return Parse::Bad;
    }
    if (s.size() >= 5 && s.substr(0, 5) != "HTTP/") {
      why = "not an HTTP response";
      return Parse::Bad;
    }
    return Parse::NeedMore;
  }
  std::string_view head = s.substr(0, end);
  size_t nl = head.find('\n');
  std::string_view line = head.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[8] != ' ') {
    why = "malformed status line";
    return Parse::Bad;
  }
  out.version = std::string(line.substr(0, 8));
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      why = "malformed status code";
      return Parse::Bad;
    }
    status = status * 10 + (line[i] - '0');
  }
  out.status = status;
  out.headers.clear();
  Parse p = parseHeaders(head.substr(nl + 1), out.headers, why);
  if (p != Parse::Done) return p;
  out.head_len = end;
  return Parse::Done;
}

std::optional<Destination> proxyDestination(const RequestHead& req, std::string& origin_target,
                                            std::string& why) {
  Destination d;
  if (req.method == "CONNECT") {
    if (!parseAuthority(req.target, 0, d)) {
      why = "bad CONNECT authority \"" + req.target.substr(0, 100) + "\"";
      return std::nullopt;
    }
    return d;
  }
  std::string_view t = req.target;
  uint16_t default_port;
  if (t.size() > 7 && ieq(t.substr(0, 7), "http://")) {
    t.remove_prefix(7);
    default_port = 80;
  } else if (t.size() > 8 && ieq(t.substr(0, 8), "https://")) {
    // Not a thing browsers send to a proxy, but honour it as plain forwarding to port 443.
    t.remove_prefix(8);
    default_port = 443;
  } else {
    why = "proxy request without an absolute URI";
    return std::nullopt;
  }
  size_t slash = t.find_first_of("/?#");
  std::string_view auth = t.substr(0, slash);
  // Userinfo in the URI is dropped.
  if (size_t at = auth.rfind('@'); at != std::string_view::npos) auth.remove_prefix(at + 1);
  if (!parseAuthority(auth, default_port, d)) {
    why = "bad host in request URI";
    return std::nullopt;
  }
  if (slash == std::string_view::npos) {
    origin_target = "/";
  } else if (t[slash] != '/') {
    origin_target = "/" + std::string(t.substr(slash));
  } else {
    origin_target = std::string(t.substr(slash));
  }
  if (size_t hash = origin_target.find('#'); hash != std::string::npos) origin_target.resize(hash);
  return d;
}

std::string rewriteForOrigin(const RequestHead& req, const std::string& origin_target,
                             const Destination& dst) {
  std::string out = req.method + " " + origin_target + " " + req.version + "\r\n";
  bool has_host = false;
  for (const auto& h : req.headers) {
    if (ieq(h.name, "Proxy-Connection") || ieq(h.name, "Proxy-Authorization") ||
        ieq(h.name, "Proxy-Authenticate")) {
      continue;
    }
    if (ieq(h.name, "Host")) has_host = true;
    out += h.name + ": " + h.value + "\r\n";
  }
  if (!has_host) {
    std::string host = dst.isDomain() ? dst.domain
                                      : (dst.ip.isV6() ? "[" + dst.ip.toString() + "]"
                                                       : dst.ip.toString());
    if (dst.port != 80) host += ":" + std::to_string(dst.port);
    out += "Host: " + host + "\r\n";
  }
  out += "\r\n";
  return out;
}

bool keepAlive(const std::string& version, const std::string* connection) {
  auto has = [&](std::string_view token) {
    if (!connection) return false;
    std::string_view v = *connection;
    while (!v.empty()) {
      size_t comma = v.find(',');
      if (ieq(trim(v.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
    return false;
  };
  if (version == "HTTP/1.0") return has("keep-alive");
  return !has("close");
}

BodyFramer BodyFramer::forRequest(const RequestHead& h, std::string& why, bool& ok) {
  BodyFramer f;
  ok = true;
  const std::string* te = h.header("Transfer-Encoding");
  const std::string* cl = h.header("Content-Length");
  if (te) {
    if (!ieq(trim(*te), "chunked")) {
      why = "unsupported Transfer-Encoding";
      ok = false;
      return f;
    }
    // Both headers at once is the classic request-smuggling vector: refuse it.
    if (cl) {
      why = "both Transfer-Encoding and Content-Length";
      ok = false;
      return f;
    }
    f.kind_ = Kind::Chunked;
    return f;
  }
  if (cl) {
    uint64_t n = 0;
    if (cl->empty() || cl->size() > 18) {
      why = "bad Content-Length";
      ok = false;
      return f;
    }
    for (char c : *cl) {
      if (c < '0' || c > '9') {
        why = "bad Content-Length";
        ok = false;
        return f;
      }
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    f.kind_ = n ? Kind::Length : Kind::None;
    f.remaining_ = n;
  }
  return f;
}

BodyFramer BodyFramer::forResponse(const ResponseHead& h, const std::string& request_method,
                                   std::string& why, bool& ok) {
  BodyFramer f;
  ok = true;
  if (request_method == "HEAD" || h.status / 100 == 1 || h.status == 204 || h.status == 304) {
    return f;
  }
  const std::string* te = h.header("Transfer-Encoding");
  if (te && ieq(trim(*te), "chunked")) {
    f.kind_ = Kind::Chunked;
    return f;
  }
  const std::string* cl = h.header("Content-Length");
  if (cl && !te) {
    RequestHead fake;
    fake.headers.push_back(Header{"Content-Length", *cl});
    return forRequest(fake, why, ok);
  }
  f.kind_ = Kind::UntilClose;
  return f;
}

bool BodyFramer::done() const {
  switch (kind_) {
    case Kind::None: return true;
    case Kind::Length: return remaining_ == 0;
    case Kind::Chunked: return cs_ == ChunkState::Done;
    case Kind::UntilClose: return false;
  }
  return true;
}

long BodyFramer::consume(ByteView in) {
  switch (kind_) {
    case Kind::None: return 0;
    case Kind::UntilClose: return static_cast<long>(in.size());
    case Kind::Length: {
      uint64_t n = std::min<uint64_t>(remaining_, in.size());
      remaining_ -= n;
      return static_cast<long>(n);
    }
    case Kind::Chunked: break;
  }
  size_t i = 0;
  while (i < in.size() && cs_ != ChunkState::Done) {
    char c = static_cast<char>(in[i]);
    switch (cs_) {
      case ChunkState::Size: {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        if (v >= 0) {
          if (++size_digits_ > 15) return -1;
          chunk_ = chunk_ * 16 + static_cast<uint64_t>(v);
        } else if (size_digits_ == 0) {
          return -1;
        } else if (c == ';' || c == ' ' || c == '\t') {
          cs_ = ChunkState::SizeExt;
        } else if (c == '\r') {
          cs_ = ChunkState::SizeLf;
        } else {
          return -1;
        }
        ++i;
        break;
      }
      case ChunkState::SizeExt:
        if (c == '\r') cs_ = ChunkState::SizeLf;
        ++i;
        break;
      case ChunkState::SizeLf:
        if (c != '\n') return -1;
        ++i;
        size_digits_ = 0;
        if (chunk_ == 0) {
          cs_ = ChunkState::Trailer;
          trailer_line_empty_ = true;
        } else {
          cs_ = ChunkState::Data;
        }
        break;
      case ChunkState::Data: {
        uint64_t n = std::min<uint64_t>(chunk_, in.size() - i);
        chunk_ -= n;
        i += n;
        if (chunk_ == 0) cs_ = ChunkState::DataCr;
        break;
      }
      case ChunkState::DataCr:
        if (c != '\r') return -1;
        cs_ = ChunkState::DataLf;
        ++i;
        break;
      case ChunkState::DataLf:
        if (c != '\n') return -1;
        cs_ = ChunkState::Size;
        ++i;
        break;
      case ChunkState::Trailer:
        if (c == '\r') {
          cs_ = ChunkState::TrailerLf;
        } else {
          trailer_line_empty_ = false;
        }
        ++i;
        break;
      case ChunkState::TrailerLf:
        if (c != '\n') return -1;
        ++i;
        if (trailer_line_empty_) {
          cs_ = ChunkState::Done;
        } else {
          cs_ = ChunkState::Trailer;
          trailer_line_empty_ = true;
        }
        break;
      case ChunkState::Done: break;
    }
  }
  return static_cast<long>(i);
}

std::string simpleResponse(int status, std::string_view reason, std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return out;
}

}  // namespace veer::inbound::http
