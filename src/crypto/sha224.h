// SHA-224 (Trojan's password hash), behind the crypto module's mbedTLS boundary.
#pragma once

#include <string>
#include <string_view>

namespace veer::crypto {

/// Lower-case hex of SHA-224(data): 56 characters.
std::string sha224Hex(std::string_view data);

}  // namespace veer::crypto
