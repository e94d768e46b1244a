// SOCKS4/4a and SOCKS5 wire formats (RFC 1928, RFC 1929, SOCKS4/4a). Pure functions over the
// bytes read so far: each parser returns NeedMore until the message is complete, and Bad with a
// reason on malformed input. No sockets here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"

namespace veer::inbound::socks {

enum class Parse { Done, NeedMore, Bad };

// SOCKS5 reply codes.
enum Reply : uint8_t {
  kSucceeded = 0x00,
  kGeneralFailure = 0x01,
  kNotAllowed = 0x02,
  kNetworkUnreachable = 0x03,
  kHostUnreachable = 0x04,
  kConnectionRefused = 0x05,
  kTtlExpired = 0x06,
  kCommandNotSupported = 0x07,
  kAddressTypeNotSupported = 0x08,
};

enum Command : uint8_t { kConnect = 1, kBind = 2, kUdpAssociate = 3 };

/// Method-selection message: VER NMETHODS METHODS...
struct Greeting {
  std::vector<uint8_t> methods;
};
Parse parseGreeting(ByteView in, Greeting& out, size_t& consumed, std::string& why);

/// RFC 1929 username/password sub-negotiation.
struct UserPass {
  std::string user, pass;
};
Parse parseUserPass(ByteView in, UserPass& out, size_t& consumed, std::string& why);

/// SOCKS5 request: VER CMD RSV ATYP DST.ADDR DST.PORT.
struct Request {
  uint8_t command = 0;
  Destination dst;
};
Parse parseRequest(ByteView in, Request& out, size_t& consumed, std::string& why);

/// SOCKS4/4a request: VN=4 CD DSTPORT DSTIP USERID 0 [HOST 0].
struct Request4 {
  uint8_t command = 0;
  Destination dst;
  std::string user;
};
Parse parseRequest4(ByteView in, Request4& out, size_t& consumed, std::string& why);

/// Reads an ATYP-address-port triple (used by requests and UDP headers).
Parse parseAddress(ByteReader& r, Destination& out, std::string& why);
/// Appends ATYP + address + port.
void appendAddress(std::string& out, const Destination& d);

std::string reply5(uint8_t code, const Destination& bound);
std::string reply4(bool granted);

/// SOCKS5 UDP request header: RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA.
struct UdpHeader {
  uint8_t frag = 0;
  Destination dst;
  size_t header_len = 0;
};
Parse parseUdpHeader(ByteView in, UdpHeader& out, std::string& why);
std::string udpHeader(const Destination& from);

}  // namespace veer::inbound::socks
