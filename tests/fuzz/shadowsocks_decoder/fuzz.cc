// Fuzzes the Shadowsocks AEAD decoders (TCP chunks and UDP packets) on untrusted server bytes.
// The first input byte picks the method and how the rest is split into reads; the rest is the
// server's stream. Inputs seeded with valid streams (corpus/) reach the chunk parser past the
// tag check, because the key is fixed (password "fuzz").
#include <cstddef>
#include <cstdint>
#include <string>

#include "outbound/shadowsocks_codec.h"

using namespace veer;
using namespace veer::outbound;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const kMethods[] = {"aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"};
  static const ss::Cipher kCiphers[] = {*ss::makeCipher(kMethods[0], "fuzz"),
                                        *ss::makeCipher(kMethods[1], "fuzz"),
                                        *ss::makeCipher(kMethods[2], "fuzz")};
  const ss::Cipher& c = kCiphers[data[0] % 3];
  size_t step = 1 + (data[0] >> 2) * 97;  // read sizes from 1 to ~6 KiB
  ByteView in(data + 1, size - 1);
  ss::Decoder d(c);
  std::string out;
  for (size_t off = 0; off < in.size(); off += step) {
    size_t n = in.size() - off < step ? in.size() - off : step;
    if (!d.feed(in.subspan(off, n), out)) break;
  }
  (void)d.atBoundary();
  std::string plain;
  if (ss::openPacket(c, in, plain)) {
    Destination from;
    size_t used = 0;
    (void)ss::parseAddress(asBytes(plain), from, used);
  }
  Destination a;
  size_t used = 0;
  (void)ss::parseAddress(in, a, used);
  return 0;
}
