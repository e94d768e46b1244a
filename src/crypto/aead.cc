#include "crypto/aead.h"

#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>

#include <cstdio>

// mbedTLS 2.28 and 3.x share every call used here (gcm_crypt_and_tag, gcm_auth_decrypt,
// chachapoly_*); a 3.x port only changes what this file and kdf.cc include. A trimmed mbedTLS
// without MBEDTLS_CHACHAPOLY_C (some firmware builds) still builds: that method then fails at
// init() with a message saying so.

namespace veer::crypto {

std::optional<AeadAlgorithm> aeadFromName(std::string_view name) {
  if (name == "aes-128-gcm") return AeadAlgorithm::Aes128Gcm;
  if (name == "aes-256-gcm") return AeadAlgorithm::Aes256Gcm;
  if (name == "chacha20-ietf-poly1305" || name == "chacha20-poly1305") {
    return AeadAlgorithm::ChaCha20Poly1305;
  }
  return std::nullopt;
}

const char* aeadName(AeadAlgorithm a) {
  switch (a) {
    case AeadAlgorithm::Aes128Gcm: return "aes-128-gcm";
    case AeadAlgorithm::Aes256Gcm: return "aes-256-gcm";
    case AeadAlgorithm::ChaCha20Poly1305: return "chacha20-ietf-poly1305";
  }
  return "?";
}

size_t aeadKeySize(AeadAlgorithm a) { return a == AeadAlgorithm::Aes128Gcm ? 16 : 32; }

struct Aead::Impl {
  AeadAlgorithm alg;
  mbedtls_gcm_context gcm;
#ifdef MBEDTLS_CHACHAPOLY_C
  mbedtls_chachapoly_context chacha;
#endif
  explicit Impl(AeadAlgorithm a) : alg(a) {
    mbedtls_gcm_init(&gcm);
#ifdef MBEDTLS_CHACHAPOLY_C
    mbedtls_chachapoly_init(&chacha);
#endif
  }
  ~Impl() {
    mbedtls_gcm_free(&gcm);
#ifdef MBEDTLS_CHACHAPOLY_C
    mbedtls_chachapoly_free(&chacha);
#endif
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

Aead::Aead() = default;
Aead::~Aead() = default;
Aead::Aead(Aead&&) noexcept = default;
Aead& Aead::operator=(Aead&&) noexcept = default;

Status Aead::init(AeadAlgorithm a, ByteView key) {
  impl_.reset();
  if (key.size() != aeadKeySize(a)) {
    return unexpected(Error(std::string(aeadName(a)) + ": key must be " +
                            std::to_string(aeadKeySize(a)) + " bytes"));
  }
  auto impl = std::make_unique<Impl>(a);
  int rc;
  if (a == AeadAlgorithm::ChaCha20Poly1305) {
#ifdef MBEDTLS_CHACHAPOLY_C
    rc = mbedtls_chachapoly_setkey(&impl->chacha, key.data());
#else
    return unexpected(Error("chacha20-ietf-poly1305: this build's mbedTLS lacks "
                            "ChaCha20-Poly1305 (MBEDTLS_CHACHAPOLY_C)"));
#endif
  } else {
    rc = mbedtls_gcm_setkey(&impl->gcm, MBEDTLS_CIPHER_ID_AES, key.data(),
                            static_cast<unsigned>(key.size() * 8));
  }
  if (rc != 0) {
    return unexpected(Error(std::string(aeadName(a)) + ": setting the key failed (mbedTLS -0x" +
                            [rc] {
                              char b[16];
                              snprintf(b, sizeof b, "%04x", static_cast<unsigned>(-rc));
                              return std::string(b);
                            }() + ")"));
  }
  impl_ = std::move(impl);
  return {};
}

bool Aead::seal(const uint8_t nonce[kAeadNonceSize], ByteView aad, ByteView in, uint8_t* out) {
  if (!impl_) return false;
  uint8_t* tag = out + in.size();
  if (impl_->alg == AeadAlgorithm::ChaCha20Poly1305) {
#ifdef MBEDTLS_CHACHAPOLY_C
    return mbedtls_chachapoly_encrypt_and_tag(&impl_->chacha, in.size(), nonce, aad.data(),
                                              aad.size(), in.data(), out, tag) == 0;
#else
    return false;
#endif
  }
  return mbedtls_gcm_crypt_and_tag(&impl_->gcm, MBEDTLS_GCM_ENCRYPT, in.size(), nonce,
                                   kAeadNonceSize, aad.data(), aad.size(), in.data(), out,
                                   kAeadTagSize, tag) == 0;
}

bool Aead::open(const uint8_t nonce[kAeadNonceSize], ByteView aad, ByteView in, uint8_t* out) {
  if (!impl_ || in.size() < kAeadTagSize) return false;
  size_t n = in.size() - kAeadTagSize;
  const uint8_t* tag = in.data() + n;
  if (impl_->alg == AeadAlgorithm::ChaCha20Poly1305) {
#ifdef MBEDTLS_CHACHAPOLY_C
    return mbedtls_chachapoly_auth_decrypt(&impl_->chacha, n, nonce, aad.data(), aad.size(), tag,
                                           in.data(), out) == 0;
#else
    return false;
#endif
  }
  return mbedtls_gcm_auth_decrypt(&impl_->gcm, n, nonce, kAeadNonceSize, aad.data(), aad.size(),
                                  tag, kAeadTagSize, in.data(), out) == 0;
}

}  // namespace veer::crypto
