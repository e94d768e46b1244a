// The QUIC Initial packet protection (RFC 9001 section 5, RFC 9369 section 3.3): everything the
// sniffer needs from a crypto library sits behind this header, so moving from mbedTLS 2.28 to
// 3.x (PSA) only touches quic_crypto.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "base/bytes.h"

namespace veer::sniff {

inline constexpr uint32_t kQuicVersion1 = 0x00000001;
inline constexpr uint32_t kQuicVersion2 = 0x6b3343cf;
inline constexpr uint32_t kQuicDraft29 = 0xff00001d;

/// HKDF-Extract with SHA-256. `prk` receives 32 bytes.
bool hkdfExtractSha256(ByteView salt, ByteView ikm, uint8_t prk[32]);
/// TLS 1.3 HKDF-Expand-Label with SHA-256 and an empty context (RFC 8446 section 7.1).
bool hkdfExpandLabelSha256(ByteView secret, std::string_view label, MutableByteView out);

/// The client's Initial secrets for one version and destination connection ID.
struct InitialSecrets {
  uint8_t clientSecret[32];
  uint8_t key[16];
  uint8_t iv[12];
  uint8_t hp[16];
};
/// False for a version whose Initial salt is unknown.
bool deriveClientInitialSecrets(uint32_t version, ByteView dcid, InitialSecrets& out);

/// AES-128 header protection and AES-128-GCM payload protection with one set of Initial keys.
/// The cipher contexts are set up once and reused for every packet of the connection.
class InitialCipher {
 public:
  InitialCipher();
  ~InitialCipher();
  InitialCipher(const InitialCipher&) = delete;
  InitialCipher& operator=(const InitialCipher&) = delete;

  bool init(const InitialSecrets& secrets);
  /// mask = AES-ECB(hp, sample); `sample` and `mask` are 16 bytes.
  bool headerMask(const uint8_t sample[16], uint8_t mask[16]);
  /// Opens `sealed` (ciphertext followed by the 16-byte tag) into `out` (at least
  /// sealed.size() - 16 bytes). The nonce is the IV xor the packet number.
  bool open(uint64_t packetNumber, ByteView aad, ByteView sealed, uint8_t* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint8_t iv_[12] = {};
};

}  // namespace veer::sniff
