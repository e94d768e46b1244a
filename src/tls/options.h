// The sing-box outbound `tls` object, the fields veer implements (plain data; parsed by the
// config loader, turned into an mbedTLS client configuration by tls/client.h).
#pragma once

#include <string>
#include <vector>

namespace veer::tls {

struct TlsOptions {
  bool enabled = false;
  bool disable_sni = false;
  std::string server_name;             // default: the server address when it is a domain
  bool insecure = false;               // skip certificate verification (only when asked)
  std::vector<std::string> alpn;
  std::string min_version, max_version;  // "1.0" .. "1.3"; empty = library default
  std::vector<std::string> certificate;  // PEM text (lines joined), trusted instead of system CAs
  std::string certificate_path;          // PEM file, trusted instead of system CAs
};

}  // namespace veer::tls
