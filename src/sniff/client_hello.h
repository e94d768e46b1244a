// TLS ClientHello parsing shared by the TLS (TCP) and QUIC sniffers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "sniff/sniff.h"

namespace veer::sniff {

/// The parts of a ClientHello the sniffers report, plus the JA3-style lists that QUIC client
/// detection compares (sing-box common/ja3: GREASE values are kept, in wire order).
struct ClientHello {
  std::string serverName;  ///< as sent (not lower-cased); empty without a host_name SNI
  std::vector<std::string> alpn;
  uint16_t legacyVersion = 0;
  std::vector<uint16_t> cipherSuites;
  std::vector<uint16_t> extensions;
  std::vector<uint16_t> groups;
  std::vector<uint8_t> pointFormats;
  std::vector<uint16_t> versions;
  std::vector<uint16_t> signatureAlgorithms;
};

/// Parses one complete handshake message (type, 24-bit length, body; `msg` is exactly that
/// long). Match for a well-formed ClientHello, NoMatch otherwise. The fingerprint lists are
/// only filled when `fingerprint` is true.
Status parseClientHello(ByteView msg, ClientHello& out, bool fingerprint);

/// Lower-cases ASCII letters (server names are case-insensitive; rules compare lower-case).
std::string lowerAscii(std::string_view s);

}  // namespace veer::sniff
