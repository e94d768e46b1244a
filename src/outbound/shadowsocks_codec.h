// Shadowsocks AEAD framing (SIP004; shadowsocks-libev aead.c): pure functions and two small
// state machines, no sockets, so that they are unit-tested and fuzzed on their own.
//
// TCP, each direction: [salt][chunk]... where salt is key-size random bytes, the session key
// is HKDF-SHA1(master key, salt, "ss-subkey"), and a chunk is
//   seal(len as 2 bytes big-endian) seal(payload of len <= 0x3FFF bytes)
// with one 12-byte little-endian nonce counter per direction, starting at 0 and incremented
// after every seal/open. UDP, each datagram: [salt] seal(nonce 0, payload). The client's first
// plaintext bytes (TCP) and every UDP payload start with the target in SOCKS5 address form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/result.h"
#include "crypto/aead.h"

namespace veer::outbound::ss {

constexpr size_t kMaxPayload = 0x3FFF;
constexpr size_t kChunkOverhead = 2 + 2 * crypto::kAeadTagSize;

struct Cipher {
  crypto::AeadAlgorithm alg;
  std::vector<uint8_t> key;  // master key (EVP_BytesToKey of the password)
  size_t saltSize() const { return key.size(); }
};
/// The method name (validateShadowsocksMethod) and password -> cipher.
Result<Cipher> makeCipher(const std::string& method, const std::string& password);

/// Keys `aead` with the session subkey for `salt`.
bool sessionAead(const Cipher& c, ByteView salt, crypto::Aead& aead);

/// ATYP + address + port (SOCKS5 form, RFC 1928 §5). False for a domain over 255 bytes.
bool appendAddress(std::string& out, const Destination& d);
/// Parses an address in SOCKS5 form at the start of `in`; `used` is its length.
bool parseAddress(ByteView in, Destination& d, size_t& used);

/// Encrypts one direction of a TCP stream.
class Encoder {
 public:
  /// A random salt (false when the system has no randomness); `salt` non-empty: that salt
  /// (tests, known-answer vectors).
  bool init(const Cipher& c, ByteView salt = {});
  /// Appends to `out` the salt (on the first call) and `data` as sealed chunks.
  bool encode(ByteView data, std::string& out);

 private:
  crypto::Aead aead_;
  std::vector<uint8_t> salt_;
  uint8_t nonce_[crypto::kAeadNonceSize] = {};
  bool salt_sent_ = false;
};

/// Decrypts one direction of a TCP stream; a parser of untrusted input.
class Decoder {
 public:
  explicit Decoder(Cipher c) : cipher_(std::move(c)) {}
  /// Feeds ciphertext; appends the plaintext of every complete chunk to `out`. False (and
  /// failed() from then on) when a tag does not verify or a length is out of range.
  bool feed(ByteView in, std::string& out);
  bool failed() const { return failed_; }
  /// Whether the server's salt has arrived.
  bool gotSalt() const { return aead_.ready(); }
  /// True when no partial salt or chunk is buffered (a clean place for the stream to end).
  bool atBoundary() const { return pending_.empty(); }

 private:
  size_t consume(const uint8_t* p, size_t n, std::string& out);
  size_t need() const;
  Cipher cipher_;
  crypto::Aead aead_;
  uint8_t nonce_[crypto::kAeadNonceSize] = {};
  std::string pending_;  // bytes of an incomplete salt or chunk
  size_t payload_len_ = 0;  // when have_len_: the payload chunk waited for
  bool have_len_ = false;
  bool failed_ = false;
};

/// One UDP datagram: salt + seal(subkey, nonce 0, plain). False without randomness.
bool sealPacket(const Cipher& c, ByteView plain, std::string& out);
/// Opens a datagram into `plain`. False when it is too short or does not verify.
bool openPacket(const Cipher& c, ByteView packet, std::string& plain);

}  // namespace veer::outbound::ss
