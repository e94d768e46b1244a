// Which Shadowsocks methods veer implements. Header-only and free of sockets so that the config
// loader (which may depend only on base and rules) can check `method` with file:line:column.
#pragma once

#include <string>

#include "base/result.h"

namespace veer::outbound {

/// Ok for the AEAD methods veer implements (SIP004): aes-128-gcm, aes-256-gcm,
/// chacha20-ietf-poly1305. Every other method is an error saying so.
inline Status validateShadowsocksMethod(const std::string& m) {
  static const char* const kUse = " (veer implements aes-128-gcm, aes-256-gcm and "
                                  "chacha20-ietf-poly1305)";
  if (m == "aes-128-gcm" || m == "aes-256-gcm" || m == "chacha20-ietf-poly1305") return {};
  if (m.empty()) return unexpected(Error(std::string("missing shadowsocks \"method\"") + kUse));
  if (m.rfind("2022-blake3-", 0) == 0) {
    return unexpected(Error("shadowsocks method \"" + m +
                            "\" (Shadowsocks 2022) is not implemented by veer" + kUse));
  }
  if (m == "none" || m == "plain" || m == "dummy") {
    return unexpected(Error("shadowsocks method \"" + m +
                            "\" (no encryption) is not implemented by veer" + kUse));
  }
  if (m == "aes-192-gcm" || m == "xchacha20-ietf-poly1305") {
    return unexpected(Error("shadowsocks method \"" + m + "\" is not implemented by veer" + kUse));
  }
  static const char* const kStream[] = {
      "aes-128-ctr", "aes-192-ctr", "aes-256-ctr", "aes-128-cfb", "aes-192-cfb",
      "aes-256-cfb", "rc4-md5", "rc4", "chacha20-ietf", "chacha20", "xchacha20", "salsa20",
      "bf-cfb", "camellia-128-cfb", "camellia-192-cfb", "camellia-256-cfb", "des-cfb",
      "idea-cfb", "rc2-cfb", "seed-cfb", "cast5-cfb", "table"};
  for (const char* s : kStream) {
    if (m == s) {
      return unexpected(Error("shadowsocks method \"" + m +
                              "\" is a stream cipher (insecure, deprecated): not implemented by "
                              "veer" + kUse));
    }
  }
  return unexpected(Error("unknown shadowsocks method \"" + m + "\"" + kUse));
}

}  // namespace veer::outbound
