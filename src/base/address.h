// IP addresses, socket addresses and destinations (an IP or a domain name, with a port).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace veer {

/// An IPv4 or IPv6 address. IPv4 is stored in the first four bytes. Value type, no allocation.
class IpAddress {
 public:
  enum class Family : uint8_t { None = 0, V4 = 4, V6 = 6 };

  IpAddress() = default;
  static IpAddress v4(const uint8_t b[4]);
  static IpAddress v4(uint32_t host_order);
  static IpAddress v6(const uint8_t b[16]);
  /// Parses dotted IPv4 or RFC 4291 IPv6 text (no zone, no brackets).
  static std::optional<IpAddress> parse(std::string_view text);

  Family family() const { return family_; }
  bool valid() const { return family_ != Family::None; }
  bool isV4() const { return family_ == Family::V4; }
  bool isV6() const { return family_ == Family::V6; }
  /// 4 or 16 (0 when invalid).
  size_t size() const { return isV4() ? 4 : isV6() ? 16 : 0; }
  const uint8_t* data() const { return bytes_.data(); }
  uint32_t v4HostOrder() const;

  /// ::ffff:a.b.c.d becomes a.b.c.d; anything else is returned unchanged.
  IpAddress unmap() const;
  bool isLoopback() const;
  bool isUnspecified() const;
  bool isMulticast() const;
  bool isLinkLocalUnicast() const;
  /// RFC 1918 / RFC 4193 private ranges (Go netip.Addr.IsPrivate).
  bool isPrivateRange() const;
  /// sing-box's `ip_is_private`: true for any address that is not public (Go's
  /// N.IsPublicAddr negated: unspecified, loopback, link-local, multicast, private ranges).
  bool isNonPublic() const;

  std::string toString() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  /// Orders V4 before V6, then bytewise (big-endian numeric order).
  friend std::strong_ordering operator<=>(const IpAddress& a, const IpAddress& b);

 private:
  std::array<uint8_t, 16> bytes_{};
  Family family_ = Family::None;
};

/// A socket address (IP + port) that can be handed to the socket API.
class SocketAddress {
 public:
  SocketAddress() = default;
  SocketAddress(const IpAddress& ip, uint16_t port);
  static std::optional<SocketAddress> fromSockaddr(const sockaddr* sa);
  /// Parses "1.2.3.4:80" or "[::1]:80".
  static std::optional<SocketAddress> parse(std::string_view text);

  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t len() const;
  IpAddress ip() const;
  uint16_t port() const;
  bool valid() const { return storage_.sa.sa_family == AF_INET || storage_.sa.sa_family == AF_INET6; }
  /// "1.2.3.4:80", "[::1]:80".
  std::string toString() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) {
    return a.ip() == b.ip() && a.port() == b.port();
  }

 private:
  // Room for the two families veer handles, not a sockaddr_storage (128 bytes): every
  // connection carries a few of these.
  union Storage {
    Storage() { std::memset(this, 0, sizeof(*this)); }
    sockaddr sa;
    sockaddr_in in4;
    sockaddr_in6 in6;
  };
  Storage storage_;
};

/// Where a connection goes: a domain name or an IP address, and a port (sing-box's Socksaddr).
struct Destination {
  std::string domain;  // lower-case FQDN without trailing dot; empty when `ip` is set
  IpAddress ip;
  uint16_t port = 0;

  bool isDomain() const { return !domain.empty(); }
  bool valid() const { return isDomain() || ip.valid(); }
  /// "example.com:443", "1.2.3.4:443", "[::1]:443".
  std::string toString() const;
  /// Host part only: the domain, or the IP text.
  std::string host() const;
  /// Builds a destination from a host string that is either an IP literal or a domain.
  static Destination fromHost(std::string_view host, uint16_t port);
};

}  // namespace veer
