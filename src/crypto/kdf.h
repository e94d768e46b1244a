// Key derivation for Shadowsocks: HKDF-SHA1 (RFC 5869, the per-session "ss-subkey") and
// OpenSSL's EVP_BytesToKey with MD5 and one iteration (password -> master key).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/bytes.h"

namespace veer::crypto {

/// HKDF-SHA1(ikm, salt, info) -> out.size() bytes (at most 255 * 20). False on failure.
bool hkdfSha1(ByteView ikm, ByteView salt, ByteView info, MutableByteView out);

/// EVP_BytesToKey(MD5, no salt, 1 iteration): D_i = MD5(D_{i-1} || password), key = D_1 D_2 ...
std::vector<uint8_t> evpBytesToKey(std::string_view password, size_t key_len);

/// Fills `out` from the kernel's CSPRNG (getrandom(2), /dev/urandom where it is missing).
/// False only when neither source works.
bool randomBytes(MutableByteView out);

}  // namespace veer::crypto
