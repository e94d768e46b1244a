#include "crypto/sha224.h"

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

namespace veer::crypto {

std::string sha224Hex(std::string_view data) {
  unsigned char out[32];
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  mbedtls_sha256(in, data.size(), out, 1);
#else
  mbedtls_sha256_ret(in, data.size(), out, 1);
#endif
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(56);
  for (int i = 0; i < 28; ++i) {
    s += hex[out[i] >> 4];
    s += hex[out[i] & 15];
  }
  return s;
}

}  // namespace veer::crypto
