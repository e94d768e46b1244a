#include "outbound/shadowsocks_codec.h"

#include <cstring>

#include "crypto/kdf.h"
#include "outbound/shadowsocks_method.h"

namespace veer::outbound::ss {

namespace {
constexpr uint8_t kInfo[] = {'s', 's', '-', 's', 'u', 'b', 'k', 'e', 'y'};
}  // namespace

Result<Cipher> makeCipher(const std::string& method, const std::string& password) {
  Status ok = validateShadowsocksMethod(method);
  if (!ok) return unexpected(ok.error());
  auto alg = crypto::aeadFromName(method);
  if (!alg) return unexpected(Error("unknown shadowsocks method \"" + method + "\""));
  if (password.empty()) return unexpected(Error("missing shadowsocks \"password\""));
  Cipher c{*alg, crypto::evpBytesToKey(password, crypto::aeadKeySize(*alg))};
  if (c.key.size() != crypto::aeadKeySize(*alg)) {
    return unexpected(Error("shadowsocks: deriving the key failed"));
  }
  // Fails here, with the reason, when this build's mbedTLS lacks the cipher.
  crypto::Aead probe;
  if (Status st = probe.init(c.alg, c.key); !st) return unexpected(st.error());
  return c;
}

bool sessionAead(const Cipher& c, ByteView salt, crypto::Aead& aead) {
  uint8_t sub[crypto::kAeadMaxKeySize];
  size_t n = c.key.size();
  if (!crypto::hkdfSha1(c.key, salt, ByteView(kInfo, sizeof kInfo), MutableByteView(sub, n))) {
    return false;
  }
  return static_cast<bool>(aead.init(c.alg, ByteView(sub, n)));
}

bool appendAddress(std::string& out, const Destination& d) {
  if (d.isDomain()) {
    if (d.domain.size() > 255) return false;
    out.push_back(3);
    out.push_back(static_cast<char>(d.domain.size()));
    out += d.domain;
  } else if (d.ip.isV4()) {
    out.push_back(1);
    out.append(reinterpret_cast<const char*>(d.ip.data()), 4);
  } else if (d.ip.isV6()) {
    out.push_back(4);
    out.append(reinterpret_cast<const char*>(d.ip.data()), 16);
  } else {
    return false;
  }
  out.push_back(static_cast<char>(d.port >> 8));
  out.push_back(static_cast<char>(d.port & 0xff));
  return true;
}

bool parseAddress(ByteView in, Destination& d, size_t& used) {
  if (in.empty()) return false;
  size_t off = 1;
  d = Destination{};
  switch (in[0]) {
    case 1:
      if (in.size() < 1 + 4 + 2) return false;
      d.ip = IpAddress::v4(in.data() + 1);
      off += 4;
      break;
    case 4:
      if (in.size() < 1 + 16 + 2) return false;
      d.ip = IpAddress::v6(in.data() + 1);
      off += 16;
      break;
    case 3: {
      if (in.size() < 2) return false;
      size_t n = in[1];
      if (n == 0 || in.size() < 2 + n + 2) return false;
      d.domain.assign(reinterpret_cast<const char*>(in.data() + 2), n);
      off += 1 + n;
      break;
    }
    default:
      return false;
  }
  d.port = loadBe16(in.data() + off);
  used = off + 2;
  return true;
}

bool Encoder::init(const Cipher& c, ByteView salt) {
  salt_.assign(salt.begin(), salt.end());
  if (salt_.empty()) {
    salt_.resize(c.saltSize());
    if (!crypto::randomBytes(salt_)) return false;
  }
  std::memset(nonce_, 0, sizeof nonce_);
  salt_sent_ = false;
  return sessionAead(c, salt_, aead_);
}

bool Encoder::encode(ByteView data, std::string& out) {
  if (!aead_.ready()) return false;
  size_t chunks = (data.size() + kMaxPayload - 1) / kMaxPayload;
  out.reserve(out.size() + (salt_sent_ ? 0 : salt_.size()) + data.size() +
              chunks * kChunkOverhead);
  if (!salt_sent_) {
    out.append(reinterpret_cast<const char*>(salt_.data()), salt_.size());
    salt_sent_ = true;
  }
  size_t off = 0;
  while (off < data.size()) {
    size_t n = data.size() - off < kMaxPayload ? data.size() - off : kMaxPayload;
    size_t pos = out.size();
    out.resize(pos + 2 + crypto::kAeadTagSize + n + crypto::kAeadTagSize);
    auto* p = reinterpret_cast<uint8_t*>(out.data()) + pos;
    storeBe16(p, static_cast<uint16_t>(n));
    if (!aead_.seal(nonce_, {}, ByteView(p, 2), p)) return false;
    crypto::incrementNonce(nonce_);
    p += 2 + crypto::kAeadTagSize;
    std::memcpy(p, data.data() + off, n);
    if (!aead_.seal(nonce_, {}, ByteView(p, n), p)) return false;
    crypto::incrementNonce(nonce_);
    off += n;
  }
  return true;
}

size_t Decoder::need() const {
  if (!aead_.ready()) return cipher_.saltSize();
  if (!have_len_) return 2 + crypto::kAeadTagSize;
  return payload_len_ + crypto::kAeadTagSize;
}

size_t Decoder::consume(const uint8_t* p, size_t n, std::string& out) {
  size_t off = 0;
  while (!failed_) {
    size_t unit = need();
    if (n - off < unit) break;
    const uint8_t* u = p + off;
    if (!aead_.ready()) {
      if (!sessionAead(cipher_, ByteView(u, unit), aead_)) {
        failed_ = true;
        break;
      }
    } else if (!have_len_) {
      uint8_t len[2];
      if (!aead_.open(nonce_, {}, ByteView(u, unit), len)) {
        failed_ = true;
        break;
      }
      crypto::incrementNonce(nonce_);
      payload_len_ = loadBe16(len);
      // The two top bits are reserved (a length is at most 0x3FFF).
      if (payload_len_ > kMaxPayload) {
        failed_ = true;
        break;
      }
      have_len_ = true;
    } else {
      size_t pos = out.size();
      out.resize(pos + payload_len_);
      if (!aead_.open(nonce_, {}, ByteView(u, unit),
                      reinterpret_cast<uint8_t*>(out.data()) + pos)) {
        out.resize(pos);
        failed_ = true;
        break;
      }
      crypto::incrementNonce(nonce_);
      have_len_ = false;
    }
    off += unit;
  }
  return off;
}

bool Decoder::feed(ByteView in, std::string& out) {
  if (failed_) return false;
  const uint8_t* p = in.data();
  size_t n = in.size();
  // Complete a unit left over from an earlier read, copying only what it lacks.
  while (!pending_.empty() && n > 0 && !failed_) {
    size_t unit = need();
    size_t take = unit - pending_.size() < n ? unit - pending_.size() : n;
    pending_.append(reinterpret_cast<const char*>(p), take);
    p += take;
    n -= take;
    if (pending_.size() < unit) return true;
    size_t used = consume(reinterpret_cast<const uint8_t*>(pending_.data()), pending_.size(), out);
    if (failed_) return false;
    pending_.erase(0, used);
  }
  size_t used = consume(p, n, out);
  if (failed_) return false;
  pending_.append(reinterpret_cast<const char*>(p + used), n - used);
  return true;
}

bool sealPacket(const Cipher& c, ByteView plain, std::string& out) {
  size_t salt = c.saltSize();
  out.resize(salt + plain.size() + crypto::kAeadTagSize);
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  if (!crypto::randomBytes(MutableByteView(p, salt))) return false;
  crypto::Aead aead;
  if (!sessionAead(c, ByteView(p, salt), aead)) return false;
  uint8_t nonce[crypto::kAeadNonceSize] = {};
  if (!plain.empty()) std::memcpy(p + salt, plain.data(), plain.size());
  return aead.seal(nonce, {}, ByteView(p + salt, plain.size()), p + salt);
}

bool openPacket(const Cipher& c, ByteView packet, std::string& plain) {
  size_t salt = c.saltSize();
  if (packet.size() < salt + crypto::kAeadTagSize) return false;
  crypto::Aead aead;
  if (!sessionAead(c, packet.subspan(0, salt), aead)) return false;
  uint8_t nonce[crypto::kAeadNonceSize] = {};
  plain.resize(packet.size() - salt - crypto::kAeadTagSize);
  return aead.open(nonce, {}, packet.subspan(salt), reinterpret_cast<uint8_t*>(plain.data()));
}

}  // namespace veer::outbound::ss
