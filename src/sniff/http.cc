// HTTP/1.x request head sniffing: request line, then header lines up to the empty line; the
// server name comes from an absolute-form target or the Host header (sing-box: Go's
// http.ReadRequest, then the host with its port stripped).
#include <string_view>

#include "sniff/client_hello.h"
#include "sniff/sniff.h"

namespace veer::sniff {

namespace {

constexpr size_t kMaxMethod = 32;

bool isTchar(uint8_t c) {
  // RFC 9110 5.6.2 token characters.
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool isCtl(uint8_t c) { return c < 0x20 || c == 0x7f; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Validates a prefix of the request line that has no line end yet: NeedMore while it can still
// become "METHOD SP TARGET SP HTTP/x.y".
Status checkPartialRequestLine(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && isTchar(static_cast<uint8_t>(s[i]))) ++i;
  if (i == s.size()) return i > kMaxMethod ? Status::NoMatch : Status::NeedMore;
  if (s[i] != ' ' || i == 0 || i > kMaxMethod) return Status::NoMatch;
  ++i;
  while (i < s.size() && s[i] != ' ') {
    if (isCtl(static_cast<uint8_t>(s[i]))) return Status::NoMatch;
    ++i;
  }
  if (i == s.size()) return Status::NeedMore;
  std::string_view proto = s.substr(i + 1);
  if (!proto.empty() && proto.back() == '\r') proto.remove_suffix(1);  // CR of a CRLF in flight
  constexpr std::string_view kHttp = "HTTP/";
  std::string_view want = kHttp.substr(0, std::min(proto.size(), kHttp.size()));
  if (proto.substr(0, want.size()) != want) return Status::NoMatch;
  return proto.size() > 8 ? Status::NoMatch : Status::NeedMore;
}

// Host with the port removed; IPv6 literals lose their brackets.
std::string_view stripPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return {};
    return host.substr(1, close - 1);
  }
  size_t colon = host.rfind(':');
  // A bare IPv6 address has several colons and no port.
  if (colon != std::string_view::npos && host.find(':') == colon) host = host.substr(0, colon);
  return host;
}

}  // namespace

Status sniffHttp(ByteView in, Info& out) {
  std::string_view s = asChars(in.first(std::min(in.size(), kMaxStreamSniffBytes)));
  const bool capped = in.size() >= kMaxStreamSniffBytes;
  size_t eol = s.find('\n');
  if (eol == std::string_view::npos) {
    Status st = checkPartialRequestLine(s);
    return st == Status::NeedMore && capped ? Status::NoMatch : st;
  }
  std::string_view line = s.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // Request line: METHOD SP request-target SP HTTP/DIGIT.DIGIT
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == 0 || sp1 > kMaxMethod || sp2 == sp1) {
    return Status::NoMatch;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view proto = line.substr(sp2 + 1);
  for (char c : method) {
    if (!isTchar(static_cast<uint8_t>(c))) return Status::NoMatch;
  }
  if (target.empty()) return Status::NoMatch;
  for (char c : target) {
    if (isCtl(static_cast<uint8_t>(c)) || c == ' ') return Status::NoMatch;
  }
  if (proto.size() != 8 || proto.substr(0, 5) != "HTTP/" || proto[5] < '0' || proto[5] > '9' ||
      proto[6] != '.' || proto[7] < '0' || proto[7] > '9') {
    return Status::NoMatch;
  }

  std::string_view host;
  bool haveHost = false;
  // An absolute-form target names the host itself and wins over the Host header (RFC 9112 3.2.2).
  constexpr std::string_view kHttpScheme = "http://";
  constexpr std::string_view kHttpsScheme = "https://";
  if (iequals(target.substr(0, kHttpScheme.size()), kHttpScheme) ||
      iequals(target.substr(0, kHttpsScheme.size()), kHttpsScheme)) {
    std::string_view rest = target.substr(target.find("//") + 2);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    size_t at = rest.rfind('@');
    if (at != std::string_view::npos) rest = rest.substr(at + 1);
    host = rest;
    haveHost = true;
  }

  // Header lines; each iteration consumes one line, so the loop is bounded by the input.
  size_t pos = eol + 1;
  for (;;) {
    size_t next = s.find('\n', pos);
    if (next == std::string_view::npos) {
      // Validate the partial line so garbage after a request line is rejected early.
      std::string_view partial = s.substr(pos);
      for (char c : partial) {
        if (c == ':') break;
        if (c != '\r' && !isTchar(static_cast<uint8_t>(c)) && c != ' ' && c != '\t') {
          return Status::NoMatch;
        }
      }
      return capped ? Status::NoMatch : Status::NeedMore;
    }
    std::string_view h = s.substr(pos, next - pos);
    pos = next + 1;
    if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
    // The head ends at an empty line. A line of only blanks is taken as the end too: no header
    // or continuation can be made of it, and some clients send " \n" there.
    if (trimOws(h).empty()) break;
    if (h.front() == ' ' || h.front() == '\t') continue;  // obsolete line folding
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return Status::NoMatch;
    std::string_view name = h.substr(0, colon);
    for (char c : name) {
      if (!isTchar(static_cast<uint8_t>(c))) return Status::NoMatch;
    }
    if (!haveHost && iequals(name, "host")) {
      host = trimOws(h.substr(colon + 1));
      haveHost = true;
    }
  }
  out.protocol = "http";
  out.domain = lowerAscii(stripPort(host));
  out.client.clear();
  out.alpn.clear();
  return Status::Match;
}

}  // namespace veer::sniff
