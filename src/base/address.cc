#include "base/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "base/bytes.h"

namespace veer {

IpAddress IpAddress::v4(const uint8_t b[4]) {
  IpAddress a;
  std::memcpy(a.bytes_.data(), b, 4);
  a.family_ = Family::V4;
  return a;
}

IpAddress IpAddress::v4(uint32_t host_order) {
  uint8_t b[4];
  storeBe32(b, host_order);
  return v4(b);
}

IpAddress IpAddress::v6(const uint8_t b[16]) {
  IpAddress a;
  std::memcpy(a.bytes_.data(), b, 16);
  a.family_ = Family::V6;
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  uint8_t out[16];
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, out) == 1) return v4(out);
    return std::nullopt;
  }
  if (inet_pton(AF_INET6, buf, out) == 1) return v6(out);
  return std::nullopt;
}

uint32_t IpAddress::v4HostOrder() const { return loadBe32(bytes_.data()); }

IpAddress IpAddress::unmap() const {
  if (!isV6()) return *this;
  static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes_.data(), kPrefix, 12) != 0) return *this;
  return v4(bytes_.data() + 12);
}

bool IpAddress::isLoopback() const {
  if (isV4()) return bytes_[0] == 127;
  if (isV6()) {
    static const uint8_t kLo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(bytes_.data(), kLo, 16) == 0;
  }
  return false;
}

bool IpAddress::isUnspecified() const {
  static const uint8_t kZero[16] = {};
  return valid() && std::memcmp(bytes_.data(), kZero, size()) == 0;
}

bool IpAddress::isMulticast() const {
  if (isV4()) return (bytes_[0] & 0xf0) == 0xe0;
  if (isV6()) return bytes_[0] == 0xff;
  return false;
}

bool IpAddress::isLinkLocalUnicast() const {
  if (isV4()) return bytes_[0] == 169 && bytes_[1] == 254;
  if (isV6()) return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
  return false;
}

bool IpAddress::isPrivateRange() const {
  if (isV4()) {
    return bytes_[0] == 10 || (bytes_[0] == 172 && (bytes_[1] & 0xf0) == 16) ||
           (bytes_[0] == 192 && bytes_[1] == 168);
  }
  if (isV6()) return (bytes_[0] & 0xfe) == 0xfc;
  return false;
}

bool IpAddress::isNonPublic() const {
  IpAddress a = unmap();
  if (!a.valid()) return false;
  if (a.isUnspecified() || a.isLoopback() || a.isMulticast() || a.isLinkLocalUnicast() ||
      a.isPrivateRange()) {
    return true;
  }
  // Link-local multicast and interface-local multicast are covered by isMulticast().
  return false;
}

std::string IpAddress::toString() const {
  char buf[INET6_ADDRSTRLEN];
  if (isV4()) {
    inet_ntop(AF_INET, bytes_.data(), buf, sizeof(buf));
    return buf;
  }
  if (isV6()) {
    inet_ntop(AF_INET6, bytes_.data(), buf, sizeof(buf));
    return buf;
  }
  return "invalid";
}

std::strong_ordering operator<=>(const IpAddress& a, const IpAddress& b) {
  if (a.family_ != b.family_) return a.family_ <=> b.family_;
  int c = std::memcmp(a.bytes_.data(), b.bytes_.data(), a.size());
  return c < 0 ? std::strong_ordering::less
               : (c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
}

SocketAddress::SocketAddress(const IpAddress& ip, uint16_t port) {
  if (ip.isV4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&storage_);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, ip.data(), 4);
  } else if (ip.isV6()) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&storage_);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, ip.data(), 16);
  }
}

std::optional<SocketAddress> SocketAddress::fromSockaddr(const sockaddr* sa) {
  if (sa == nullptr) return std::nullopt;
  SocketAddress out;
  if (sa->sa_family == AF_INET) {
    std::memcpy(&out.storage_.in4, sa, sizeof(sockaddr_in));
    return out;
  }
  if (sa->sa_family == AF_INET6) {
    std::memcpy(&out.storage_.in6, sa, sizeof(sockaddr_in6));
    return out;
  }
  return std::nullopt;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto ip = IpAddress::parse(host);
  if (!ip || port.empty() || port.size() > 5) return std::nullopt;
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p > 65535) return std::nullopt;
  return SocketAddress(*ip, static_cast<uint16_t>(p));
}

socklen_t SocketAddress::len() const {
  if (storage_.sa.sa_family == AF_INET) return sizeof(sockaddr_in);
  if (storage_.sa.sa_family == AF_INET6) return sizeof(sockaddr_in6);
  return 0;
}

IpAddress SocketAddress::ip() const {
  if (storage_.sa.sa_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&storage_);
    return IpAddress::v4(reinterpret_cast<const uint8_t*>(&s->sin_addr));
  }
  if (storage_.sa.sa_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&storage_);
    return IpAddress::v6(reinterpret_cast<const uint8_t*>(&s->sin6_addr));
  }
  return {};
}

uint16_t SocketAddress::port() const {
  if (storage_.sa.sa_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  }
  if (storage_.sa.sa_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::string SocketAddress::toString() const {
  IpAddress a = ip();
  if (a.isV6()) return "[" + a.toString() + "]:" + std::to_string(port());
  return a.toString() + ":" + std::to_string(port());
}

std::string Destination::host() const { return isDomain() ? domain : ip.toString(); }

std::string Destination::toString() const {
  if (!isDomain() && ip.isV6()) return "[" + ip.toString() + "]:" + std::to_string(port);
  return host() + ":" + std::to_string(port);
}

Destination Destination::fromHost(std::string_view host, uint16_t port) {
  Destination d;
  d.port = port;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (auto ip = IpAddress::parse(host)) {
    d.ip = *ip;
    return d;
  }
  d.domain.reserve(host.size());
  for (char c : host) d.domain.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
  if (!d.domain.empty() && d.domain.back() == '.') d.domain.pop_back();
  return d;
}

}  // namespace veer
