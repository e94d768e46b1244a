#include "tls/options_json.h"

#include <set>
#include <string_view>
#include <vector>

namespace veer::tls {

// sing-box option/tls.go OutboundTLSOptions: the client fields veer implements; the rest is an
// error when present.
std::shared_ptr<const ClientConfig> parseTlsObject(json::ObjectReader& parent,
                                                   const json::Value& v,
                                                   const std::string& server_address,
                                                   TlsOptions& t, bool force_enabled) {
  json::ObjectReader r(v, parent.memberPath("tls"), parent.file(), parent.diags());
  if (!r.ok()) return nullptr;
  std::shared_ptr<const ClientConfig> result;
  r.boolean("enabled", t.enabled);
  if (force_enabled) t.enabled = true;
  r.boolean("disable_sni", t.disable_sni);
  r.str("server_name", t.server_name);
  r.boolean("insecure", t.insecure);
  r.strList("alpn", t.alpn);
  static const std::set<std::string> versions = {"1.0", "1.1", "1.2", "1.3"};
  for (const char* f : {"min_version", "max_version"}) {
    std::string val;
    if (r.str(f, val)) {
      if (!versions.count(val)) {
        r.error(f, std::string("unknown TLS version \"") + val + "\" (1.0, 1.1, 1.2, 1.3)");
      }
      (std::string_view(f) == "min_version" ? t.min_version : t.max_version) = val;
    }
  }
  std::vector<std::string> cert_lines;
  if (r.strList("certificate", cert_lines)) {
    std::string pem;
    for (const auto& l : cert_lines) pem += l + "\n";
    t.certificate.push_back(std::move(pem));
  }
  r.str("certificate_path", t.certificate_path);
  if (t.enabled) {
    // Built here so that `veer check` reports an unreadable CA file or a bad version range.
    auto c = makeClientConfig(t, server_address);
    if (!c) {
      r.errorAt(v, parent.memberPath("tls"), c.error().message());
    } else {
      result = *c;
    }
  }
  for (const char* f : {"cipher_suites", "curve_preferences", "certificate_public_key_sha256",
                        "client_certificate", "client_certificate_path", "client_key",
                        "client_key_path", "fragment", "fragment_fallback_delay",
                        "record_fragment", "kernel_tx", "kernel_rx"}) {
    if (const auto* fv = r.get(f)) {
      r.errorAt(*fv, r.memberPath(f),
                std::string("tls field \"") + f + "\" is not implemented by veer");
    }
  }
  // Sub-objects that only matter when enabled: configs often carry them switched off.
  for (const char* f : {"ech", "utls", "reality"}) {
    const json::Value* fv = r.get(f);
    if (fv == nullptr) continue;
    const json::Value* en = fv->isObject() ? fv->find("enabled") : nullptr;
    if (en != nullptr && en->isBool() && !en->b) continue;
    r.errorAt(*fv, r.memberPath(f), std::string("tls \"") + f + "\" is not implemented by veer");
  }
  r.finish();
  return result;
}

}  // namespace veer::tls
