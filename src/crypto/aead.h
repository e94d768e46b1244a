// AEAD ciphers for the proxy protocols (Shadowsocks SIP004): AES-128-GCM, AES-256-GCM and
// ChaCha20-Poly1305 (IETF, RFC 8439), 12-byte nonces, 16-byte tags. The only mbedTLS cipher
// calls outside src/tls and sniff/quic_crypto.cc; no mbedTLS type leaks out of this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace veer::crypto {

enum class AeadAlgorithm { Aes128Gcm, Aes256Gcm, ChaCha20Poly1305 };

constexpr size_t kAeadTagSize = 16;
constexpr size_t kAeadNonceSize = 12;
constexpr size_t kAeadMaxKeySize = 32;

/// "aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305" (also "chacha20-poly1305").
std::optional<AeadAlgorithm> aeadFromName(std::string_view name);
const char* aeadName(AeadAlgorithm a);
/// Key size in bytes: 16 for AES-128-GCM, 32 for the others.
size_t aeadKeySize(AeadAlgorithm a);

/// Increments a 12-byte nonce as a little-endian unsigned integer (the SIP004 counter),
/// byte by byte, so it behaves the same on every byte order and alignment.
inline void incrementNonce(uint8_t nonce[kAeadNonceSize]) {
  for (size_t i = 0; i < kAeadNonceSize; ++i) {
    if (++nonce[i] != 0) break;
  }
}

/// One keyed AEAD. Move-only; not thread-safe (one per direction of a connection).
class Aead {
 public:
  Aead();
  ~Aead();
  Aead(Aead&&) noexcept;
  Aead& operator=(Aead&&) noexcept;
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  /// Sets the algorithm and key (key.size() must be aeadKeySize(a)).
  Status init(AeadAlgorithm a, ByteView key);
  bool ready() const { return impl_ != nullptr; }

  /// Encrypts `in` and appends the tag: writes in.size() + kAeadTagSize bytes to `out`.
  /// `out` may equal `in.data()` (in place); other overlaps are not allowed.
  bool seal(const uint8_t nonce[kAeadNonceSize], ByteView aad, ByteView in, uint8_t* out);
  /// Verifies and decrypts `in` (ciphertext followed by the tag): writes
  /// in.size() - kAeadTagSize bytes to `out` (may equal `in.data()`). False when the tag does
  /// not match or `in` is shorter than a tag; `out` is then unspecified.
  bool open(const uint8_t nonce[kAeadNonceSize], ByteView aad, ByteView in, uint8_t* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace veer::crypto
