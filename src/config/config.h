// The veer configuration: sing-box's JSON format (the subset veer implements, with sing-box's
// field names and defaults), parsed into typed, validated, immutable structs. Everything a
// config references (rule-set files, DSL files, geodata) is loaded here too, so that a Config
// that loaded without errors is ready to run and `veer check` sees every problem.
//
// An unknown field, or a sing-box field veer does not implement, is an error naming the JSON
// path; every error carries file:line:col.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/diag.h"
#include "base/json.h"
#include "base/log.h"
#include "dns/dns_rules.h"
#include "rules/geoip_mmdb.h"
#include "rules/geosite_db.h"
#include "rules/rule_engine.h"
#include "rules/rule_spec.h"
#include "tls/options.h"

namespace veer::tls {
class ClientConfig;
}

namespace veer::config {

struct LogOptions {
  bool disabled = false;
  log::Level level = log::Level::Info;
  std::string output;  // "" = stderr
  bool timestamp = true;
};

struct UserOption {
  std::string username, password;
};

struct InboundOptions {
  std::string type;  // mixed | socks | http | direct | redirect | tproxy
  std::string tag;
  rules::SourcePos pos;
  std::string listen = "127.0.0.1";
  uint16_t listen_port = 0;
  bool tcp_fast_open = false;
  bool reuse_addr = false;
  uint32_t udp_timeout_ms = 300000;  // sing-box default 5m
  std::vector<UserOption> users;     // mixed/socks/http
  // Legacy sniffing (sing-box <= 1.12 inbound fields), honoured with a deprecation warning.
  bool sniff = false;
  bool sniff_override_destination = false;
  uint32_t sniff_timeout_ms = 300;
  // direct, tproxy
  std::string network;  // "", "tcp", "udp"
  std::string override_address;
  uint16_t override_port = 0;
};

struct OutboundOptions {
  std::string type;  // direct | block | socks | http | shadowsocks | trojan | selector | urltest
  std::string tag;
  rules::SourcePos pos;
  // Dial fields (sing-box option/outbound.go DialerOptions).
  uint32_t connect_timeout_ms = 5000;
  uint32_t fallback_delay_ms = 300;
  uint32_t routing_mark = 0;
  std::string bind_interface;
  std::string inet4_bind_address;
  std::string inet6_bind_address;
  bool tcp_fast_open = false;
  std::string domain_strategy;  // "", prefer_ipv4, prefer_ipv6, ipv4_only, ipv6_only
  // socks, http
  std::string server;
  uint16_t server_port = 0;
  std::string version = "5";  // socks: "4", "4a", "5"
  std::string username, password;
  std::string network;  // socks, shadowsocks: "", "tcp", "udp"
  std::string method;   // shadowsocks
  std::vector<std::pair<std::string, std::string>> headers;  // http
  tls::TlsOptions tls;  // http, trojan: the `tls` object
  std::shared_ptr<const tls::ClientConfig> tls_config;  // built from `tls` when enabled
  std::string detour;
  rules::SourcePos detour_pos;
  // selector, urltest
  std::vector<std::string> members;  // `outbounds`
  rules::SourcePos members_pos;
  std::string default_member;        // selector `default`
  rules::SourcePos default_pos;
  bool interrupt_exist_connections = false;
  std::string url = "https://www.gstatic.com/generate_204";  // urltest (sing-box's default)
  uint32_t interval_ms = 180000;
  uint32_t tolerance_ms = 50;
};

struct RuleSetDef {
  std::string tag;
  std::string type;    // local | inline | remote
  std::string format;  // source | binary | dsl (remote: source | binary)
  std::string path;
  rules::SourcePos pos;
  // remote (src/route/remote_rule_set.h): downloaded through `download_detour` (default: the
  // final outbound), cached in `cache_path`; the rules loaded are the cached copy's, if any.
  std::string url;
  std::string download_detour;
  rules::SourcePos detour_pos;
  uint64_t update_interval_ms = 86400000;  // sing-box default 1d
  std::string cache_path;
  bool cached = false;  // a valid cached copy was loaded
};

struct RouteOptions {
  std::vector<rules::RuleSpec> rules;
  std::string final_outbound;
  rules::SourcePos final_pos;
  std::vector<RuleSetDef> rule_set_defs;
  rules::RuleSetMap rule_sets;  // loaded
  std::string rules_file;       // veer: a DSL file with more route rules (after `rules`)
  std::string geoip_path;
  std::string geosite_path;
  uint32_t default_mark = 0;
  bool resolve_on_demand = false;  // veer: resolve a domain when an IP rule is reached
  std::string default_interface;
};

/// experimental.clash_api: the control API (app/clash_api.h).
struct ClashApiOptions {
  bool enabled = false;  // external_controller is set
  std::string external_controller;
  std::string secret;
};

/// experimental.cache_file (sing-box's fields; veer's own file format, see dns/cache_file.h).
struct CacheFileOptions {
  bool enabled = false;
  std::string path;  // resolved against the config's directory; default "cache.db"
  std::string cache_id;
  bool store_fakeip = false;
};

struct Config {
  std::string file;
  std::string text;
  LogOptions log;
  std::vector<InboundOptions> inbounds;
  std::vector<OutboundOptions> outbounds;
  RouteOptions route;
  bool has_dns = false;
  json::Value dns;  // the raw "dns" section, for the DNS module
  ClashApiOptions clash_api;
  // dns.rules compiled with the route's rule sets and geosite (null without DNS rules).
  std::shared_ptr<const dns::DnsRules> dns_rules;
  CacheFileOptions cache_file;
  // Loaded geodata (null when the config uses none).
  std::shared_ptr<rules::GeoipMmdb> geoip;
  std::shared_ptr<rules::GeositeDb> geosite;
  // The compiled route rules (null if compilation failed).
  std::shared_ptr<rules::RuleEngine> engine;

  /// The outbound used when no rule matches: route.final, else the first outbound, else
  /// an implicit "direct" (sing-box).
  std::string finalOutbound() const;
  const OutboundOptions* findOutbound(const std::string& tag) const;
};

struct LoadOptions {
  /// Skip loading geodata and compiling rules (fast syntax-only checks).
  bool syntax_only = false;
};

/// Reads, parses, validates and compiles the config at `path`. Every problem goes to `diags`
/// (errors and warnings, with positions); the result is null when there was any error.
std::unique_ptr<Config> load(const std::string& path, DiagList& diags,
                             const LoadOptions& opts = {});
/// The same from text already in memory (tests, stdin).
std::unique_ptr<Config> loadText(std::string text, const std::string& file, DiagList& diags,
                                 const LoadOptions& opts = {});

/// Formats diagnostics for people: "file:line:col: message" then the line and a caret, for
/// files whose text is available.
std::string formatDiags(const DiagList& diags);
/// Formats diagnostics as a JSON array of objects (file, line, column, path, severity, code,
/// message), for tools.
std::string formatDiagsJson(const DiagList& diags);

}  // namespace veer::config
