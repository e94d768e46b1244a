// TLS client over conn::Stream with mbedTLS (2.28; 3.x differences guarded by
// MBEDTLS_VERSION_NUMBER). mbedTLS reads and writes in-memory buffers through BIO callbacks:
// ciphertext from the inner stream is appended to in_, records mbedTLS produces are collected
// in out_ and handed to the inner stream after each mbedTLS call. No user callback ever runs
// while an mbedTLS call is on the stack.
#include "tls/client.h"

#include <dirent.h>

#include <cstdlib>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#if defined(MBEDTLS_ERROR_C)
#include <mbedtls/error.h>
#endif
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && \
    (defined(MBEDTLS_USE_PSA_CRYPTO) || defined(MBEDTLS_SSL_PROTO_TLS1_3))
#include <psa/crypto.h>
#define VEER_TLS_PSA_INIT 1
#endif

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/file.h"
#include "base/log.h"
#include "loop/buffer_pool.h"
#include "loop/defer.h"
#include "loop/uv_util.h"

namespace veer::tls {
namespace {

// ---- errors ------------------------------------------------------------------------------

std::string mbedError(int code) {
  char hex[16];
  std::snprintf(hex, sizeof(hex), "-0x%04X", static_cast<unsigned>(-code));
#if defined(MBEDTLS_ERROR_C)
  char buf[200];
  mbedtls_strerror(code, buf, sizeof(buf));
  return std::string(buf) + " (" + hex + ")";
#else
  return std::string("mbedTLS error ") + hex;
#endif
}

// mbedtls_x509_crt_verify_info() prints one line per flag; join them with "; ".
std::string verifyInfo(uint32_t flags) {
  char buf[1024];
  int n = mbedtls_x509_crt_verify_info(buf, sizeof(buf), "", flags);
  if (n <= 0) {
    char hex[32];
    std::snprintf(hex, sizeof(hex), "flags 0x%08x", static_cast<unsigned>(flags));
    return hex;
  }
  std::string out;
  for (std::string_view line : splitLines(std::string_view(buf, static_cast<size_t>(n)))) {
    if (line.empty()) continue;
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out;
}

// ---- randomness: one CTR-DRBG per thread, seeded on first use ------------------------------

struct Drbg {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context ctr;
  int seed_rc = 0;
  Drbg() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&ctr);
    static const unsigned char kPers[] = "veer-tls-client";
    seed_rc = mbedtls_ctr_drbg_seed(&ctr, mbedtls_entropy_func, &entropy, kPers, sizeof(kPers) - 1);
  }
  ~Drbg() {
    mbedtls_ctr_drbg_free(&ctr);
    mbedtls_entropy_free(&entropy);
  }
  Drbg(const Drbg&) = delete;
  Drbg& operator=(const Drbg&) = delete;
};

Drbg& threadDrbg() {
  thread_local Drbg d;
  return d;
}

int threadRandom(void*, unsigned char* out, size_t len) {
  Drbg& d = threadDrbg();
  if (d.seed_rc != 0) return d.seed_rc;
  return mbedtls_ctr_drbg_random(&d.ctr, out, len);
}

// ---- trusted CAs --------------------------------------------------------------------------

struct CaChain {
  mbedtls_x509_crt crt;
  size_t count = 0;
  CaChain() { mbedtls_x509_crt_init(&crt); }
  ~CaChain() { mbedtls_x509_crt_free(&crt); }
  CaChain(const CaChain&) = delete;
  CaChain& operator=(const CaChain&) = delete;
};

constexpr std::string_view kPemBegin = "-----BEGIN CERTIFICATE-----";

// Adds the PEM certificates in `text` to `chain`. Returns the number added, or an error
// ("no PEM certificate found", the mbedTLS parse error). Certificates mbedTLS cannot parse
// are skipped when at least one parsed (`skipped` counts them).
Result<size_t> addPem(CaChain& chain, const std::string& text, size_t& skipped) {
  if (text.find(kPemBegin) == std::string::npos) {
    return unexpected("no PEM certificate (\"" + std::string(kPemBegin) + "\") found");
  }
  // PEM input must be NUL-terminated, the NUL counted in the length.
  int rc = mbedtls_x509_crt_parse(&chain.crt, reinterpret_cast<const unsigned char*>(text.c_str()),
                                  text.size() + 1);
  if (rc < 0) return unexpected("invalid PEM certificate: " + mbedError(rc));
  skipped += static_cast<size_t>(rc);
  size_t n = 0;
  for (const mbedtls_x509_crt* c = &chain.crt; c != nullptr; c = c->next) {
    if (c->raw.len != 0) ++n;
  }
  size_t added = n - chain.count;
  chain.count = n;
  return added;
}

const char* const kSystemBundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",  // Debian, Ubuntu, Alpine, OpenWrt (ca-bundle)
    "/etc/ssl/cert.pem",                   // Alpine, macOS, OpenWrt (ca-bundle)
    "/etc/pki/tls/certs/ca-bundle.crt",    // Fedora, RHEL
};
constexpr const char* kSystemDir = "/etc/ssl/certs";

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Result<std::shared_ptr<const CaChain>> loadSystemStore() {
  // Shared by every config while any holds it (parsing ~150 roots costs a few ms and ~250 KiB).
  static std::mutex mu;
  static std::weak_ptr<const CaChain> cached;
  std::lock_guard<std::mutex> lock(mu);
  if (auto c = cached.lock()) return c;

  auto chain = std::make_shared<CaChain>();
  size_t skipped = 0;
  // As Go (and so sing-box) does on Linux: SSL_CERT_FILE replaces the bundle list and
  // SSL_CERT_DIR the directory.
  std::vector<std::string> bundles;
  const char* env_file = std::getenv("SSL_CERT_FILE");
  const char* env_dir = std::getenv("SSL_CERT_DIR");
  if (env_file != nullptr && *env_file != '\0') {
    bundles.push_back(env_file);
  } else {
    for (const char* b : kSystemBundles) bundles.push_back(b);
  }
  std::string dir = env_dir != nullptr && *env_dir != '\0'
                        ? std::string(env_dir).substr(0, std::string(env_dir).find(':'))
                        : std::string(kSystemDir);
  for (const std::string& path : bundles) {
    auto text = readFile(path);
    if (!text) continue;
    auto added = addPem(*chain, *text, skipped);
    if (added && *added > 0) {
      LOG_DEBUG("tls: %zu system CA certificates from %s (%zu skipped)", chain->count, path.c_str(),
                skipped);
      std::shared_ptr<const CaChain> out = chain;
      cached = out;
      return out;
    }
  }
  // A directory of PEM files (OpenWrt's ca-certificates): *.crt and *.pem, else every file.
  if (DIR* d = opendir(dir.c_str())) {
    std::vector<std::string> named, other;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      (endsWith(name, ".crt") || endsWith(name, ".pem") ? named : other)
          .push_back(dir + "/" + name);
    }
    closedir(d);
    for (const auto& path : named.empty() ? other : named) {
      auto text = readFile(path);
      if (!text) continue;
      (void)addPem(*chain, *text, skipped);
    }
  }
  if (chain->count == 0) {
    std::string tried;
    for (const auto& p : bundles) tried += p + ", ";
    return unexpected(
        "tls: no system CA certificates found (tried " + tried + dir +
        "/); set certificate or certificate_path (or insecure)");
  }
  LOG_DEBUG("tls: %zu system CA certificates from %s/ (%zu skipped)", chain->count, dir.c_str(),
            skipped);
  std::shared_ptr<const CaChain> out = chain;
  cached = out;
  return out;
}

// ---- certificate names (IP literals, and the name check when no SNI is sent) ---------------

// A minimal DER reader: the next TLV in [p, end).
bool derNext(const uint8_t*& p, const uint8_t* end, uint8_t& tag, const uint8_t*& val,
             size_t& len) {
  if (end - p < 2) return false;
  tag = *p++;
  if ((tag & 0x1f) == 0x1f) return false;  // high tag numbers do not occur here
  size_t l = *p++;
  if (l & 0x80) {
    size_t nb = l & 0x7f;
    if (nb == 0 || nb > 4 || static_cast<size_t>(end - p) < nb) return false;
    l = 0;
    for (size_t i = 0; i < nb; ++i) l = (l << 8) | *p++;
  }
  if (static_cast<size_t>(end - p) < l) return false;
  val = p;
  len = l;
  p += l;
  return true;
}

struct SanNames {
  bool present = false;
  std::vector<std::string> dns;
  std::vector<std::string> ips;  // raw 4 or 16 bytes
};

// Reads subjectAltName from the TBSCertificate (mbedTLS 2.28 keeps only dNSName entries).
SanNames readSan(const mbedtls_x509_crt& crt) {
  SanNames out;
  const uint8_t* p = crt.tbs.p;
  const uint8_t* end = p + crt.tbs.len;
  uint8_t tag;
  const uint8_t* v;
  size_t n;
  if (!derNext(p, end, tag, v, n) || tag != 0x30) return out;
  p = v;
  end = v + n;
  while (p < end) {
    if (!derNext(p, end, tag, v, n)) return out;
    if (tag != 0xa3) continue;  // [3] extensions
    const uint8_t* q = v;
    const uint8_t* qend = v + n;
    if (!derNext(q, qend, tag, v, n) || tag != 0x30) return out;
    q = v;
    qend = v + n;
    while (q < qend) {
      if (!derNext(q, qend, tag, v, n) || tag != 0x30) return out;
      const uint8_t* e = v;
      const uint8_t* eend = v + n;
      const uint8_t* oid;
      size_t oid_len;
      if (!derNext(e, eend, tag, oid, oid_len) || tag != 0x06) return out;
      static const uint8_t kSanOid[] = {0x55, 0x1d, 0x11};
      if (oid_len != sizeof(kSanOid) || std::memcmp(oid, kSanOid, sizeof(kSanOid)) != 0) continue;
      if (!derNext(e, eend, tag, v, n)) return out;
      if (tag == 0x01 && !derNext(e, eend, tag, v, n)) return out;  // critical
      if (tag != 0x04) return out;
      const uint8_t* g = v;
      const uint8_t* gend = v + n;
      if (!derNext(g, gend, tag, v, n) || tag != 0x30) return out;
      out.present = true;
      g = v;
      gend = v + n;
      while (g < gend) {
        if (!derNext(g, gend, tag, v, n)) return out;
        if (tag == 0x82) out.dns.emplace_back(reinterpret_cast<const char*>(v), n);
        if (tag == 0x87 && (n == 4 || n == 16)) {
          out.ips.emplace_back(reinterpret_cast<const char*>(v), n);
        }
      }
      return out;
    }
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// RFC 6125 §6.4: case-insensitive; a wildcard only as the whole leftmost label, covering
// exactly one label.
bool dnsNameMatches(std::string_view pattern, const std::string& host) {
  std::string p = lower(pattern);
  if (!p.empty() && p.back() == '.') p.pop_back();
  if (p == host) return true;
  if (p.size() > 2 && p[0] == '*' && p[1] == '.') {
    size_t dot = host.find('.');
    return dot != std::string::npos && dot > 0 && host.compare(dot, std::string::npos, p, 1) == 0;
  }
  return false;
}

std::string alertName(uint8_t code) {
  const char* name = nullptr;
  switch (code) {
    case 0: name = "close_notify"; break;
    case 10: name = "unexpected_message"; break;
    case 20: name = "bad_record_mac"; break;
    case 22: name = "record_overflow"; break;
    case 40: name = "handshake_failure"; break;
    case 42: name = "bad_certificate"; break;
    case 43: name = "unsupported_certificate"; break;
    case 44: name = "certificate_revoked"; break;
    case 45: name = "certificate_expired"; break;
    case 46: name = "certificate_unknown"; break;
    case 47: name = "illegal_parameter"; break;
    case 48: name = "unknown_ca"; break;
    case 49: name = "access_denied"; break;
    case 50: name = "decode_error"; break;
    case 51: name = "decrypt_error"; break;
    case 70: name = "protocol_version"; break;
    case 71: name = "insufficient_security"; break;
    case 80: name = "internal_error"; break;
    case 86: name = "inappropriate_fallback"; break;
    case 90: name = "user_canceled"; break;
    case 109: name = "missing_extension"; break;
    case 110: name = "unsupported_extension"; break;
    case 112: name = "unrecognized_name"; break;
    case 116: name = "certificate_required"; break;
    case 120: name = "no_application_protocol"; break;
    default: break;
  }
  std::string out = name != nullptr ? name : "unknown";
  return out + " (" + std::to_string(code) + ")";
}

}  // namespace

// ---- the configuration -------------------------------------------------------------------

struct ClientConfig {
  mbedtls_ssl_config conf;
  std::shared_ptr<const CaChain> ca;
  std::vector<std::string> alpn;
  std::vector<const char*> alpn_ptrs;  // NULL-terminated, into alpn
  std::string sni;                     // "" = no SNI
  std::string expected;                // lower-case name to verify, "" with insecure
  std::optional<IpAddress> expected_ip;
  bool own_name_check = false;  // verify `expected` ourselves (no SNI, so mbedTLS cannot)
  bool insecure = false;

  ClientConfig() { mbedtls_ssl_config_init(&conf); }
  ~ClientConfig() { mbedtls_ssl_config_free(&conf); }
  ClientConfig(const ClientConfig&) = delete;
  ClientConfig& operator=(const ClientConfig&) = delete;

  bool nameMatches(const mbedtls_x509_crt& crt) const {
    SanNames san = readSan(crt);
    if (expected_ip) {
      std::string want(reinterpret_cast<const char*>(expected_ip->data()), expected_ip->size());
      return std::find(san.ips.begin(), san.ips.end(), want) != san.ips.end();
    }
    for (const auto& d : san.dns) {
      if (dnsNameMatches(d, expected)) return true;
    }
    if (!san.dns.empty()) return false;
    // No dNSName: the subject CN, as mbedTLS does.
    for (const mbedtls_x509_name* n = &crt.subject; n != nullptr; n = n->next) {
      if (n->oid.p != nullptr && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 &&
          dnsNameMatches(std::string_view(reinterpret_cast<const char*>(n->val.p), n->val.len),
                         expected)) {
        return true;
      }
    }
    return false;
  }

  static int onVerify(void* p, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
    const auto* self = static_cast<const ClientConfig*>(p);
    if (depth == 0 && self->own_name_check && !self->nameMatches(*crt)) {
      *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    return 0;
  }
};

namespace {

// "1.0".."1.3" → 10..13.
std::optional<int> parseVersion(const std::string& v) {
  if (v == "1.0") return 10;
  if (v == "1.1") return 11;
  if (v == "1.2") return 12;
  if (v == "1.3") return 13;
  return std::nullopt;
}

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
constexpr int kLibMax = 13;
#else
constexpr int kLibMax = 12;
#endif
constexpr int kLibMin = 12;  // mbedTLS 3 has no TLS 1.0/1.1
#else
constexpr int kLibMax = 12;  // mbedTLS 2.28 has no TLS 1.3 client
#if defined(MBEDTLS_SSL_PROTO_TLS1)
constexpr int kLibMin = 10;
#elif defined(MBEDTLS_SSL_PROTO_TLS1_1)
constexpr int kLibMin = 11;
#else
constexpr int kLibMin = 12;
#endif
#endif

const char* libName() {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
  return "this mbedTLS build";
#else
  return "mbedTLS 2.28";
#endif
}

Status applyVersions(mbedtls_ssl_config& conf, const TlsOptions& o) {
  int lo = 12;  // sing-box (Go) client default
  int hi = kLibMax;
  if (!o.min_version.empty()) {
    auto v = parseVersion(o.min_version);
    if (!v) return unexpected("tls: invalid min_version \"" + o.min_version + "\" (want 1.0 .. 1.3)");
    if (*v > kLibMax) {
      return unexpected("tls: min_version " + o.min_version + " is not supported: " + libName() +
                        " lacks TLS 1.3 (use 1.2)");
    }
    lo = std::max(*v, kLibMin);
  }
  if (!o.max_version.empty()) {
    auto v = parseVersion(o.max_version);
    if (!v) return unexpected("tls: invalid max_version \"" + o.max_version + "\" (want 1.0 .. 1.3)");
    if (*v < kLibMin) {
      return unexpected("tls: max_version " + o.max_version + " is not supported: " + libName() +
                        " lacks TLS 1.0/1.1");
    }
    hi = std::min(*v, kLibMax);  // "1.3" silently means the highest the library has
  }
  if (lo > hi) {
    return unexpected("tls: min_version " + o.min_version + " is above max_version " +
                      o.max_version);
  }
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
  auto ver = [](int v) {
    return v >= 13 ? MBEDTLS_SSL_VERSION_TLS1_3 : MBEDTLS_SSL_VERSION_TLS1_2;
  };
  mbedtls_ssl_conf_min_tls_version(&conf, ver(lo));
  mbedtls_ssl_conf_max_tls_version(&conf, ver(hi));
#else
  mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, lo - 9);
  mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, hi - 9);
#endif
  return {};
}

std::string stripBrackets(const std::string& s) {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') return s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

Result<std::shared_ptr<const ClientConfig>> makeClientConfig(const TlsOptions& o,
                                                             const std::string& server_address) {
#if defined(VEER_TLS_PSA_INIT)
  if (psa_status_t st = psa_crypto_init(); st != PSA_SUCCESS) {
    return unexpected("tls: psa_crypto_init failed (" + std::to_string(st) + ")");
  }
#endif
  auto cfg = std::make_shared<ClientConfig>();
  cfg->insecure = o.insecure;

  // Names: SNI is the server name (or the server address when it is a domain); an IP is never
  // sent as SNI (RFC 6066) and is checked against the certificate's IP addresses.
  std::string name = o.server_name.empty() ? stripBrackets(server_address) : o.server_name;
  if (name.empty()) return unexpected("tls: no server_name and no server address to verify");
  if (auto ip = IpAddress::parse(name)) {
    cfg->expected_ip = ip->unmap();
    cfg->expected = name;
  } else {
    cfg->expected = lower(name);
    if (!cfg->expected.empty() && cfg->expected.back() == '.') cfg->expected.pop_back();
    if (!o.disable_sni) cfg->sni = cfg->expected;
  }
  cfg->own_name_check = !o.insecure && cfg->sni.empty();
  if (o.insecure) cfg->expected.clear();

  mbedtls_ssl_config& conf = cfg->conf;
  int rc = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                       MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) return unexpected("tls: mbedtls_ssl_config_defaults: " + mbedError(rc));
  mbedtls_ssl_conf_rng(&conf, &threadRandom, nullptr);
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
  // No session resumption (yet): do not keep the tickets servers send.
  mbedtls_ssl_conf_session_tickets(&conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
#endif
  if (auto st = applyVersions(conf, o); !st) return unexpected(st.error());

  // Trusted CAs.
  if (!o.insecure) {
    if (!o.certificate.empty() || !o.certificate_path.empty()) {
      auto chain = std::make_shared<CaChain>();
      size_t skipped = 0;
      // As sing-box: `certificate` (lines joined) wins over `certificate_path`.
      if (!o.certificate.empty()) {
        std::string text;
        for (const auto& line : o.certificate) text += line + "\n";
        auto added = addPem(*chain, text, skipped);
        if (!added) return unexpected("tls: certificate: " + added.error().message());
      } else {
        auto text = readFile(o.certificate_path);
        if (!text) {
          return unexpected("tls: certificate_path " + o.certificate_path + ": cannot read: " +
                            std::strerror(errno));
        }
        auto added = addPem(*chain, *text, skipped);
        if (!added) {
          return unexpected("tls: certificate_path " + o.certificate_path + ": " +
                            added.error().message());
        }
      }
      if (skipped > 0) LOG_WARN("tls: %zu CA certificates could not be parsed, skipped", skipped);
      cfg->ca = std::move(chain);
    } else {
      auto sys = loadSystemStore();
      if (!sys) return unexpected(sys.error());
      cfg->ca = *sys;
    }
    mbedtls_ssl_conf_ca_chain(&conf, const_cast<mbedtls_x509_crt*>(&cfg->ca->crt), nullptr);
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_verify(&conf, &ClientConfig::onVerify, cfg.get());
  } else {
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
  }

  // ALPN.
  if (!o.alpn.empty()) {
#if defined(MBEDTLS_SSL_ALPN)
    for (const auto& p : o.alpn) {
      if (p.empty() || p.size() > 255) {
        return unexpected("tls: invalid alpn \"" + p + "\" (1 to 255 bytes)");
      }
    }
    cfg->alpn = o.alpn;
    for (const auto& p : cfg->alpn) cfg->alpn_ptrs.push_back(p.c_str());
    cfg->alpn_ptrs.push_back(nullptr);
    rc = mbedtls_ssl_conf_alpn_protocols(&conf, cfg->alpn_ptrs.data());
    if (rc != 0) return unexpected("tls: alpn: " + mbedError(rc));
#else
    return unexpected("tls: alpn is not supported by this mbedTLS build");
#endif
  }
  return std::shared_ptr<const ClientConfig>(std::move(cfg));
}

std::string expectedNameOf(const ClientConfig& cfg) { return cfg.expected; }
std::string sniOf(const ClientConfig& cfg) { return cfg.sni; }

// ---- the stream --------------------------------------------------------------------------

namespace {

class TlsStream final : public conn::Stream {
 public:
  TlsStream(uv_loop_t* loop, conn::StreamPtr inner, std::shared_ptr<const ClientConfig> cfg)
      : loop_(loop), inner_(std::move(inner)), cfg_(std::move(cfg)) {
    mbedtls_ssl_init(&ssl_);
  }

  // Starts the handshake; failures found here are reported from the loop.
  std::function<void()> start(uint32_t timeout_ms, Done done) {
    done_ = std::move(done);
    auto alive = alive_;
    auto hs = hs_active_;
    std::function<void()> cancel = [this, alive, hs] {
      if (*alive && *hs) close(false);
    };
    if (timeout_ms > 0) {
      timer_ = new uv_timer_t;
      uv_timer_init(loop_, timer_);
      timer_->data = this;
      uv_timer_start(
          timer_,
          [](uv_timer_t* t) {
            static_cast<TlsStream*>(t->data)->failHandshake(Error("tls: handshake timeout",
                                                                  UV_ETIMEDOUT));
          },
          timeout_ms, 0);
    }
    std::optional<Error> err;
    if (!inner_) {
      err = Error("tls: no transport stream to run the handshake over");
    } else if (threadDrbg().seed_rc != 0) {
      err = Error("tls: seeding the random generator failed: " + mbedError(threadDrbg().seed_rc));
    } else if (int rc = mbedtls_ssl_setup(&ssl_, &cfg_->conf); rc != 0) {
      err = Error("tls: mbedtls_ssl_setup: " + mbedError(rc));
    } else if (int rc2 = mbedtls_ssl_set_hostname(
                   &ssl_, cfg_->sni.empty() ? nullptr : cfg_->sni.c_str());
               rc2 != 0) {
      err = Error("tls: server name \"" + cfg_->sni + "\": " + mbedError(rc2));
    }
    if (!err) {
      mbedtls_ssl_set_bio(&ssl_, this, &TlsStream::bioSend, &TlsStream::bioRecv, nullptr);
      startInnerRead();
      int rc = mbedtls_ssl_handshake(&ssl_);  // writes the ClientHello
      flush();
      if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
        err = handshakeError(rc);
      }
    }
    if (err) {
      loop::defer(loop_, [this, alive, e = std::move(*err)] {
        if (*alive) failHandshake(e);
      });
    }
    return cancel;
  }

  // conn::Stream
  void readStart(ReadFn on_read) override {
    on_read_ = std::move(on_read);
    if (closed_ || read_done_ || handshaking_) return;
    reading_ = true;
    if (!inner_eof_ && inner_err_ == 0) startInnerRead();
    // Plaintext or ciphertext already buffered, or an end already seen: deliver from the loop.
    if (in_off_ < in_.size() || mbedtls_ssl_check_pending(&ssl_) != 0 || inner_eof_ ||
        inner_err_ != 0) {
      schedulePump();
    }
  }

  void readStop() override {
    reading_ = false;
    if (inner_reading_) {
      inner_->readStop();
      inner_reading_ = false;
    }
  }

  void write(const char* data, size_t len, DoneFn done) override {
    if (closed_) return;
    if (write_err_ != 0 || shutdown_sent_ || handshaking_) {
      int st = write_err_ != 0 ? write_err_ : UV_EPIPE;
      if (done) deferDone(std::move(done), st);
      return;
    }
    size_t off = 0;
    while (off < len) {
      int max = mbedtls_ssl_get_max_out_record_payload(&ssl_);
      size_t chunk = std::min(len - off, max > 0 ? static_cast<size_t>(max) : size_t{16384});
      int rc = mbedtls_ssl_write(&ssl_, reinterpret_cast<const unsigned char*>(data + off), chunk);
      if (rc > 0) {
        off += static_cast<size_t>(rc);
        continue;
      }
      // The BIO never blocks, so WANT_* cannot happen; anything but progress is fatal.
      write_err_ = UV_EPROTO;
      if (error_.empty()) error_ = "tls: write: " + mbedError(rc);
      LOG_DEBUG("%s", error_.c_str());
      flush();
      if (done) deferDone(std::move(done), UV_EPROTO);
      return;
    }
    flush(std::move(done));
  }

  size_t writeQueueSize() const override {
    // Plaintext is encrypted and handed to the inner stream within write().
    return inner_ ? inner_->writeQueueSize() : 0;
  }

  void shutdown(DoneFn done) override {
    if (closed_) return;
    if (!shutdown_sent_ && !handshaking_) {
      shutdown_sent_ = true;
      int rc = mbedtls_ssl_close_notify(&ssl_);
      if (rc != 0) LOG_DEBUG("tls: close_notify: %s", mbedError(rc).c_str());
      flush();
    }
    inner_->shutdown(std::move(done));
  }

  void close(bool reset) override {
    if (closed_) return;
    closed_ = true;
    *alive_ = false;
    *hs_active_ = false;
    closeTimer();
    if (inner_) {
      conn::Stream* s = inner_.release();
      s->close(reset);
    }
    // Freed from the loop: close() may run inside on_read_ or another callback of ours.
    loop::defer(loop_, [self = this] { delete self; });
  }

  uv_tcp_t* socket() override { return inner_ ? inner_->socket() : nullptr; }

  const char* kind() const override { return "tls"; }

  std::string alpn() const {
    const char* p = mbedtls_ssl_get_alpn_protocol(&ssl_);
    return p != nullptr ? p : "";
  }
  std::string version() const { return mbedtls_ssl_get_version(&ssl_); }
  std::string cipher() const {
    const char* c = mbedtls_ssl_get_ciphersuite(&ssl_);
    return c != nullptr ? c : "";
  }
  const std::string& error() const { return error_; }

 private:
  ~TlsStream() override { mbedtls_ssl_free(&ssl_); }

  // ---- BIO ----
  static int bioSend(void* ctx, const unsigned char* buf, size_t len) {
    auto* self = static_cast<TlsStream*>(ctx);
    size_t n = std::min(len, static_cast<size_t>(INT_MAX));
    self->out_.append(reinterpret_cast<const char*>(buf), n);
    return static_cast<int>(n);
  }

  static int bioRecv(void* ctx, unsigned char* buf, size_t len) {
    auto* self = static_cast<TlsStream*>(ctx);
    size_t avail = self->in_.size() - self->in_off_;
    if (avail == 0) return self->inner_eof_ ? 0 : MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = std::min({avail, len, static_cast<size_t>(INT_MAX)});
    std::memcpy(buf, self->in_.data() + self->in_off_, n);
    self->in_off_ += n;
    if (self->in_off_ == self->in_.size()) {
      self->in_off_ = 0;
      if (self->in_.capacity() > 65536) {
        std::string().swap(self->in_);
      } else {
        self->in_.clear();
      }
    }
    return static_cast<int>(n);
  }

  // Hands what mbedTLS produced to the inner stream (with `done` attached to the last bytes).
  void flush(DoneFn done = {}) {
    if (!inner_ || (out_.empty() && !done)) return;
    inner_->write(out_.data(), out_.size(), std::move(done));
    if (out_.capacity() > 32768) {
      std::string().swap(out_);
    } else {
      out_.clear();
    }
  }

  // ---- inner stream ----
  void startInnerRead() {
    if (inner_reading_ || !inner_) return;
    inner_reading_ = true;
    inner_->readStart([this](int status, const char* data, size_t len) {
      onInnerRead(status, data, len);
    });
  }

  void onInnerRead(int status, const char* data, size_t len) {
    if (status == 0) {
      trackRecords(reinterpret_cast<const uint8_t*>(data), len);
      if (in_off_ > 0 && in_off_ >= in_.size() / 2) {
        in_.erase(0, in_off_);
        in_off_ = 0;
      }
      in_.append(data, len);
    } else {
      inner_reading_ = false;
      if (status == UV_EOF) {
        inner_eof_ = true;
      } else {
        inner_err_ = status;
      }
    }
    if (handshaking_) {
      if (inner_err_ != 0) {
        failHandshake(loop::uvError(inner_err_, "tls: handshake"));
        return;
      }
      handshakeStep();
    } else {
      pump();
    }
  }

  // Follows the record framing of the received bytes, to tell a clean transport EOF from one
  // that cuts a record short.
  // Also notes the last plaintext alert (before encryption starts), for handshake errors.
  void trackRecords(const uint8_t* p, size_t n) {
    while (n > 0) {
      if (rec_body_left_ > 0) {
        size_t k = std::min(n, rec_body_left_);
        if (rec_is_alert_) {
          for (size_t i = 0; i < k; ++i) alert_[2 - rec_body_left_ + i] = p[i];
          if (k == rec_body_left_) alert_seen_ = true;
        }
        rec_body_left_ -= k;
        p += k;
        n -= k;
        continue;
      }
      rec_hdr_[rec_hdr_have_++] = *p++;
      --n;
      if (rec_hdr_have_ == 5) {
        rec_body_left_ = (static_cast<size_t>(rec_hdr_[3]) << 8) | rec_hdr_[4];
        rec_is_alert_ = rec_hdr_[0] == 21 && rec_body_left_ == 2;
        rec_hdr_have_ = 0;
      }
    }
  }
  bool midRecord() const { return rec_hdr_have_ > 0 || rec_body_left_ > 0; }

  // ---- handshake ----
  Error handshakeError(int rc) {
    if (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
      uint32_t flags = mbedtls_ssl_get_verify_result(&ssl_);
      std::string msg = "tls: certificate verify failed: " + verifyInfo(flags);
      if ((flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) != 0) {
        msg += " (expected " + cfg_->expected + ")";
      }
      return Error(msg, UV_EPROTO);
    }
    if (rc == MBEDTLS_ERR_SSL_CONN_EOF || rc == 0) {
      return Error("tls: connection closed during handshake", UV_EOF);
    }
    if (rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && alert_seen_) {
      return Error("tls: handshake failed: server sent alert " + alertName(alert_[1]), UV_EPROTO);
    }
    return Error("tls: handshake failed: " + mbedError(rc), UV_EPROTO);
  }

  void handshakeStep() {
    int rc = mbedtls_ssl_handshake(&ssl_);
    flush();
    if (rc == 0) {
      succeedHandshake();
      return;
    }
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
      if (inner_eof_) failHandshake(Error("tls: connection closed during handshake", UV_EOF));
      return;
    }
    failHandshake(handshakeError(rc));
  }

  void closeTimer() {
    if (timer_ == nullptr) return;
    uv_timer_stop(timer_);
    timer_->data = nullptr;
    loop::closeHandle(timer_, [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }

  void failHandshake(Error e) {
    if (!handshaking_ || closed_) return;
    handshaking_ = false;
    *hs_active_ = false;
    LOG_DEBUG("%s", e.message().c_str());
    Done d = std::move(done_);
    close(false);
    if (d) d(unexpected(std::move(e)));
  }

  void succeedHandshake() {
    handshaking_ = false;
    *hs_active_ = false;
    closeTimer();
    // Nothing is read until the caller asks; what already arrived stays in in_.
    if (inner_reading_) {
      inner_->readStop();
      inner_reading_ = false;
    }
    LOG_DEBUG("tls: handshake done (%s, %s, alpn \"%s\", sni \"%s\")", version().c_str(),
              cipher().c_str(), alpn().c_str(), cfg_->sni.c_str());
    Done d = std::move(done_);
    if (d) {
      d(conn::StreamPtr(this));
    } else {
      close(false);
    }
  }

  // ---- reading ----
  void schedulePump() {
    if (pump_scheduled_) return;
    pump_scheduled_ = true;
    loop::defer(loop_, [this, alive = alive_] {
      if (!*alive) return;
      pump_scheduled_ = false;
      pump();
    });
  }

  void pump() {
    if (!reading_ || read_done_ || closed_ || handshaking_) return;
    auto alive = alive_;
    loop::BufferPool& pool = loop::BufferPool::local();
    size_t cap = loop::BufferPool::classify(16384);
    char* buf = pool.acquire(cap);
    int end = 1;  // 1: keep going; otherwise the final status
    while (reading_) {
      int rc = mbedtls_ssl_read(&ssl_, reinterpret_cast<unsigned char*>(buf), cap);
      if (rc > 0) {
        on_read_(0, buf, static_cast<size_t>(rc));
        if (!*alive) break;
        continue;
      }
      if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) {
        if (inner_err_ != 0) {
          error_ = std::string("tls: read: ") + uv_strerror(inner_err_);
          end = inner_err_;
        }
        break;
      }
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
      if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) continue;
#endif
      if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        end = UV_EOF;
      } else if (rc == 0 || rc == MBEDTLS_ERR_SSL_CONN_EOF) {
        if (midRecord()) {
          error_ = "tls: connection closed in the middle of a record (truncated)";
          end = UV_EPROTO;
        } else {
          LOG_DEBUG("tls: peer closed the connection without close_notify");
          end = UV_EOF;
        }
      } else {
        error_ = "tls: read: " + mbedError(rc);
        end = UV_EPROTO;
      }
      break;
    }
    pool.release(buf, cap);
    if (!*alive) return;
    flush();  // alerts mbedTLS may have produced
    if (end != 1) {
      if (end != UV_EOF) LOG_DEBUG("%s", error_.c_str());
      read_done_ = true;
      readStop();
      on_read_(end, nullptr, 0);
    }
  }

  void deferDone(DoneFn done, int status) {
    loop::defer(loop_, [done = std::move(done), status, alive = alive_] {
      if (*alive) done(status);
    });
  }

  uv_loop_t* loop_;
  conn::StreamPtr inner_;
  std::shared_ptr<const ClientConfig> cfg_;
  mbedtls_ssl_context ssl_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<bool> hs_active_ = std::make_shared<bool>(true);
  Done done_;
  uv_timer_t* timer_ = nullptr;

  std::string in_;  // ciphertext received, from in_off_
  size_t in_off_ = 0;
  std::string out_;  // ciphertext produced, not yet handed to inner_
  uint8_t rec_hdr_[5] = {};
  size_t rec_hdr_have_ = 0;
  size_t rec_body_left_ = 0;
  bool rec_is_alert_ = false;
  bool alert_seen_ = false;
  uint8_t alert_[2] = {};

  ReadFn on_read_;
  std::string error_;
  int inner_err_ = 0;
  int write_err_ = 0;
  bool inner_eof_ = false;
  bool inner_reading_ = false;
  bool handshaking_ = true;
  bool reading_ = false;
  bool read_done_ = false;
  bool pump_scheduled_ = false;
  bool shutdown_sent_ = false;
  bool closed_ = false;
};

const TlsStream* asTls(const conn::Stream& s) { return dynamic_cast<const TlsStream*>(&s); }

}  // namespace

std::function<void()> connect(uv_loop_t* loop, conn::StreamPtr inner,
                              std::shared_ptr<const ClientConfig> cfg, uint32_t timeout_ms,
                              Done done) {
  auto* s = new TlsStream(loop, std::move(inner), std::move(cfg));
  return s->start(timeout_ms, std::move(done));
}

std::string alpnOf(const conn::Stream& s) {
  const TlsStream* t = asTls(s);
  return t != nullptr ? t->alpn() : "";
}
std::string versionOf(const conn::Stream& s) {
  const TlsStream* t = asTls(s);
  return t != nullptr ? t->version() : "";
}
std::string cipherOf(const conn::Stream& s) {
  const TlsStream* t = asTls(s);
  return t != nullptr ? t->cipher() : "";
}
std::string errorOf(const conn::Stream& s) {
  const TlsStream* t = asTls(s);
  return t != nullptr ? t->error() : "";
}

}  // namespace veer::tls
