// mbedTLS 2.28 calls for QUIC Initial protection. With mbedTLS 3.x the same functions exist
// (hkdf.h, aes.h, gcm.h); only the context-internals and the config header name differ.
#include "sniff/quic_crypto.h"

#include <mbedtls/aes.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>

#include <cstring>

namespace veer::sniff {

namespace {

// Initial salts: RFC 9001 section 5.2, RFC 9369 section 3.3.1, draft-ietf-quic-tls-29.
constexpr uint8_t kSaltV1[20] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
constexpr uint8_t kSaltV2[20] = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                                 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};
constexpr uint8_t kSaltDraft29[20] = {0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97,
                                      0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99};

const mbedtls_md_info_t* sha256() { return mbedtls_md_info_from_type(MBEDTLS_MD_SHA256); }

}  // namespace

bool hkdfExtractSha256(ByteView salt, ByteView ikm, uint8_t prk[32]) {
  return mbedtls_hkdf_extract(sha256(), salt.data(), salt.size(), ikm.data(), ikm.size(), prk) ==
         0;
}

bool hkdfExpandLabelSha256(ByteView secret, std::string_view label, MutableByteView out) {
  // HkdfLabel = uint16 length, opaque label<7..255> = "tls13 " + label, opaque context<0..255>.
  constexpr std::string_view kPrefix = "tls13 ";
  uint8_t info[2 + 1 + 255 + 1];
  const size_t labelLen = kPrefix.size() + label.size();
  if (labelLen > 255 || out.size() > 0xffff) return false;
  size_t n = 0;
  storeBe16(info, static_cast<uint16_t>(out.size()));
  n += 2;
  info[n++] = static_cast<uint8_t>(labelLen);
  std::memcpy(info + n, kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(info + n, label.data(), label.size());
  n += label.size();
  info[n++] = 0;  // empty context
  return mbedtls_hkdf_expand(sha256(), secret.data(), secret.size(), info, n, out.data(),
                             out.size()) == 0;
}

bool deriveClientInitialSecrets(uint32_t version, ByteView dcid, InitialSecrets& out) {
  const uint8_t* salt = nullptr;
  bool v2 = false;
  switch (version) {
    case kQuicVersion1:
      salt = kSaltV1;
      break;
    case kQuicVersion2:
      salt = kSaltV2;
      v2 = true;
      break;
    case kQuicDraft29:
      salt = kSaltDraft29;
      break;
    default:
      return false;
  }
  uint8_t initial[32];
  if (!hkdfExtractSha256(ByteView(salt, 20), dcid, initial)) return false;
  return hkdfExpandLabelSha256(ByteView(initial, 32), "client in", out.clientSecret) &&
         hkdfExpandLabelSha256(ByteView(out.clientSecret, 32), v2 ? "quicv2 key" : "quic key",
                               out.key) &&
         hkdfExpandLabelSha256(ByteView(out.clientSecret, 32), v2 ? "quicv2 iv" : "quic iv",
                               out.iv) &&
         hkdfExpandLabelSha256(ByteView(out.clientSecret, 32), v2 ? "quicv2 hp" : "quic hp",
                               out.hp);
}

struct InitialCipher::Impl {
  Impl() {
    mbedtls_aes_init(&hp);
    mbedtls_gcm_init(&gcm);
  }
  ~Impl() {
    mbedtls_aes_free(&hp);
    mbedtls_gcm_free(&gcm);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  mbedtls_aes_context hp;
  mbedtls_gcm_context gcm;
};

InitialCipher::InitialCipher() : impl_(std::make_unique<Impl>()) {}
InitialCipher::~InitialCipher() = default;

bool InitialCipher::init(const InitialSecrets& secrets) {
  std::memcpy(iv_, secrets.iv, sizeof iv_);
  return mbedtls_aes_setkey_enc(&impl_->hp, secrets.hp, 128) == 0 &&
         mbedtls_gcm_setkey(&impl_->gcm, MBEDTLS_CIPHER_ID_AES, secrets.key, 128) == 0;
}

bool InitialCipher::headerMask(const uint8_t sample[16], uint8_t mask[16]) {
  return mbedtls_aes_crypt_ecb(&impl_->hp, MBEDTLS_AES_ENCRYPT, sample, mask) == 0;
}

bool InitialCipher::open(uint64_t packetNumber, ByteView aad, ByteView sealed, uint8_t* out) {
  constexpr size_t kTag = 16;
  if (sealed.size() < kTag) return false;
  uint8_t nonce[12];
  std::memcpy(nonce, iv_, sizeof nonce);
  // The 62-bit packet number is left-padded to the IV length and xor-ed in (RFC 9001 5.3).
  for (int i = 0; i < 8; ++i) {
    nonce[11 - i] ^= static_cast<uint8_t>(packetNumber >> (8 * i));
  }
  const size_t len = sealed.size() - kTag;
  return mbedtls_gcm_auth_decrypt(&impl_->gcm, len, nonce, sizeof nonce, aad.data(), aad.size(),
                                  sealed.data() + len, kTag, sealed.data(), out) == 0;
}

}  // namespace veer::sniff
