// Builds TLS ClientHellos and protected QUIC Initial packets at test time, so that tests, fuzz
// seeds and benchmarks do not depend on captured data. Header-only; uses mbedTLS for sealing.
#pragma once

#include <mbedtls/gcm.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "sniff/quic_crypto.h"

namespace veer::sniff::test {

using Bytes = std::vector<uint8_t>;

struct HelloSpec {
  std::string sni;
  std::vector<std::string> alpn;
  uint16_t legacyVersion = 0x0303;
  std::vector<uint16_t> ciphers{0x1301, 0x1302, 0x1303, 0xc02b};
  std::vector<uint16_t> groups{0x001d, 0x0017};
  std::vector<uint16_t> sigalgs{0x0403, 0x0804, 0x0401};
  std::vector<uint16_t> versions{0x0304, 0x0303};
  size_t paddingExt = 0;        // bytes of a padding extension (21), 0 for none
  bool duplicateSni = false;    // sends the server_name extension twice (illegal)
};

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

inline void putExt(Bytes& b, uint16_t type, const Bytes& body) {
  put16(b, type);
  put16(b, static_cast<uint16_t>(body.size()));
  b.insert(b.end(), body.begin(), body.end());
}

/// A ClientHello handshake message (type, 24-bit length, body).
inline Bytes buildClientHello(const HelloSpec& s) {
  Bytes body;
  put16(body, s.legacyVersion);
  for (int i = 0; i < 32; ++i) body.push_back(static_cast<uint8_t>(i * 7));  // random
  body.push_back(32);
  for (int i = 0; i < 32; ++i) body.push_back(static_cast<uint8_t>(0xa0 + i));  // session id
  put16(body, static_cast<uint16_t>(s.ciphers.size() * 2));
  for (uint16_t c : s.ciphers) put16(body, c);
  body.push_back(1);
  body.push_back(0);  // null compression
  Bytes exts;
  if (!s.sni.empty()) {
    Bytes e;
    put16(e, static_cast<uint16_t>(s.sni.size() + 3));
    e.push_back(0);
    put16(e, static_cast<uint16_t>(s.sni.size()));
    e.insert(e.end(), s.sni.begin(), s.sni.end());
    putExt(exts, 0, e);
    if (s.duplicateSni) putExt(exts, 0, e);
  }
  {
    Bytes e;
    put16(e, static_cast<uint16_t>(s.groups.size() * 2));
    for (uint16_t g : s.groups) put16(e, g);
    putExt(exts, 10, e);
  }
  {
    Bytes e;
    put16(e, static_cast<uint16_t>(s.sigalgs.size() * 2));
    for (uint16_t a : s.sigalgs) put16(e, a);
    putExt(exts, 13, e);
  }
  if (!s.alpn.empty()) {
    Bytes list;
    for (const auto& p : s.alpn) {
      list.push_back(static_cast<uint8_t>(p.size()));
      list.insert(list.end(), p.begin(), p.end());
    }
    Bytes e;
    put16(e, static_cast<uint16_t>(list.size()));
    e.insert(e.end(), list.begin(), list.end());
    putExt(exts, 16, e);
  }
  {
    Bytes e;
    e.push_back(static_cast<uint8_t>(s.versions.size() * 2));
    for (uint16_t v : s.versions) put16(e, v);
    putExt(exts, 43, e);
  }
  if (s.paddingExt) putExt(exts, 21, Bytes(s.paddingExt, 0));
  put16(body, static_cast<uint16_t>(exts.size()));
  body.insert(body.end(), exts.begin(), exts.end());
  Bytes msg{1, static_cast<uint8_t>(body.size() >> 16), static_cast<uint8_t>(body.size() >> 8),
            static_cast<uint8_t>(body.size())};
  msg.insert(msg.end(), body.begin(), body.end());
  return msg;
}

/// QUIC variable-length integer (RFC 9000 16), in its shortest form.
inline void putVarint(Bytes& b, uint64_t v) {
  if (v < 64) {
    b.push_back(static_cast<uint8_t>(v));
  } else if (v < 16384) {
    put16(b, static_cast<uint16_t>(0x4000 | v));
  } else {
    b.push_back(static_cast<uint8_t>(0x80 | (v >> 24)));
    b.push_back(static_cast<uint8_t>(v >> 16));
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  }
}

inline Bytes cryptoFrame(uint64_t offset, const uint8_t* data, size_t len) {
  Bytes f{0x06};
  putVarint(f, offset);
  putVarint(f, len);
  f.insert(f.end(), data, data + len);
  return f;
}

/// A protected client Initial carrying `frames`, padded with PADDING frames to `padTo` bytes.
/// Returns an empty vector when the keys cannot be derived (unknown version).
inline Bytes sealInitial(uint32_t version, const Bytes& dcid, uint32_t pn, Bytes frames,
                         size_t padTo = 1200) {
  constexpr size_t kPnLen = 2;
  const uint8_t type = version == kQuicVersion2 ? 1 : 0;
  Bytes h{static_cast<uint8_t>(0xc0 | (type << 4) | (kPnLen - 1))};
  h.push_back(static_cast<uint8_t>(version >> 24));
  h.push_back(static_cast<uint8_t>(version >> 16));
  h.push_back(static_cast<uint8_t>(version >> 8));
  h.push_back(static_cast<uint8_t>(version));
  h.push_back(static_cast<uint8_t>(dcid.size()));
  h.insert(h.end(), dcid.begin(), dcid.end());
  h.push_back(8);
  for (int i = 0; i < 8; ++i) h.push_back(static_cast<uint8_t>(0x50 + i));  // SCID
  h.push_back(0);                                                           // no token
  const size_t fixed = h.size() + 2 + kPnLen + 16;  // length field, pn, tag
  if (frames.size() < 4) frames.resize(4, 0);      // room for the header protection sample
  if (fixed + frames.size() < padTo) frames.resize(padTo - fixed, 0);
  const size_t length = kPnLen + frames.size() + 16;
  put16(h, static_cast<uint16_t>(0x4000 | length));
  const size_t pnOffset = h.size();
  put16(h, static_cast<uint16_t>(pn));

  InitialSecrets secrets;
  if (!deriveClientInitialSecrets(version, dcid, secrets)) return {};
  uint8_t nonce[12];
  std::memcpy(nonce, secrets.iv, 12);
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<uint8_t>(uint64_t{pn} >> (8 * i));
  Bytes out = h;
  out.resize(h.size() + frames.size() + 16);
  mbedtls_gcm_context gcm;
  mbedtls_gcm_init(&gcm);
  mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, secrets.key, 128);
  mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, frames.size(), nonce, 12, h.data(), h.size(),
                            frames.data(), out.data() + h.size(), 16,
                            out.data() + h.size() + frames.size());
  mbedtls_gcm_free(&gcm);

  InitialCipher hp;
  hp.init(secrets);
  uint8_t mask[16];
  hp.headerMask(out.data() + pnOffset + 4, mask);
  out[0] ^= mask[0] & 0x0f;
  for (size_t i = 0; i < kPnLen; ++i) out[pnOffset + i] ^= mask[1 + i];
  return out;
}

/// Splits a ClientHello into CRYPTO frames of at most `piece` bytes, one Initial per frame,
/// all with the same DCID.
inline std::vector<Bytes> splitInitials(uint32_t version, const Bytes& dcid, const Bytes& hello,
                                        size_t piece) {
  std::vector<Bytes> out;
  uint32_t pn = 0;
  for (size_t off = 0; off < hello.size(); off += piece) {
    const size_t n = std::min(piece, hello.size() - off);
    out.push_back(sealInitial(version, dcid, pn++, cryptoFrame(off, hello.data() + off, n)));
  }
  return out;
}

}  // namespace veer::sniff::test
