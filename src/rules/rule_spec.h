// RuleSpec: the plain, uncompiled form of a sing-box rule (route rule, DNS rule or headless
// rule-set rule). It is what every front end produces (JSON config, JSON rule-set source, .srs
// binary, veer DSL) and what the rule compiler (rule_engine.h) and the writers (.srs, JSON,
// DSL) consume. Field names are sing-box's. Values are kept as written; the compiler validates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace veer::rules {

/// Where a rule or a value came from, for error messages: "config.json:12:5" or
/// "rules.veer:3:1", plus a JSON-style path ("route.rules[3]").
struct SourcePos {
  std::string file;
  uint32_t line = 0;  // 1-based; 0 = unknown
  uint32_t column = 0;
  std::string path;  // "route.rules[3]" or "" for DSL
  std::string toString() const;  // "file:line:col" (omits what is unknown)
};

/// Rule actions (sing-box option/rule_action.go). Headless rules have none.
struct RuleAction {
  enum class Type : uint8_t { Route, Reject, HijackDns, Sniff, Resolve, RouteOptions };
  Type type = Type::Route;

  // route / legacy rules: the outbound tag.
  std::string outbound;

  // reject
  std::string reject_method = "default";  // default | drop | reply
  bool no_drop = false;

  // sniff
  std::vector<std::string> sniffers;  // empty = all
  uint32_t sniff_timeout_ms = 300;

  // resolve
  std::string resolve_server;
  std::string resolve_strategy;  // "" = the server's / default
  bool disable_cache = false;
  std::optional<uint32_t> rewrite_ttl;
  std::string client_subnet;

  // route-options (also allowed on route)
  std::string override_address;
  std::optional<uint16_t> override_port;
  std::string network_strategy;
  std::optional<uint32_t> fallback_delay_ms;
  bool udp_disable_domain_unmapping = false;
  bool udp_connect = false;
  std::optional<uint32_t> udp_timeout_s;
  bool tls_fragment = false;
  std::optional<uint32_t> tls_fragment_fallback_delay_ms;
  bool tls_record_fragment = false;

  /// Final actions stop rule evaluation; sniff, resolve and route-options do not.
  bool isFinal() const {
    return type == Type::Route || type == Type::Reject || type == Type::HijackDns;
  }
};

/// One rule. `type == Default` uses the field lists; `type == Logical` uses mode + rules.
struct RuleSpec {
  enum class Type : uint8_t { Default, Logical };
  Type type = Type::Default;
  SourcePos pos;

  // Destination address group (ORed together).
  std::vector<std::string> domain;
  std::vector<std::string> domain_suffix;
  std::vector<std::string> domain_keyword;
  std::vector<std::string> domain_regex;
  std::vector<std::string> geosite;  // veer keeps these (sing-box removed them in 1.12)
  std::vector<std::string> geoip;
  std::vector<std::string> ip_cidr;  // prefixes or bare IPs
  bool ip_is_private = false;
  // Binary-only AdGuard domain set from .srs item 16 (kept raw for round trips).
  std::vector<std::string> adguard_domain;

  // Source address group.
  std::vector<std::string> source_geoip;
  std::vector<std::string> source_ip_cidr;
  bool source_ip_is_private = false;

  // Port groups.
  std::vector<uint16_t> port;
  std::vector<std::string> port_range;  // "a:b", ":b", "a:"
  std::vector<uint16_t> source_port;
  std::vector<std::string> source_port_range;

  // AND items.
  std::vector<std::string> inbound;
  std::vector<int> ip_version;  // 4 / 6
  std::vector<std::string> network;  // tcp / udp / icmp
  std::vector<std::string> auth_user;
  std::vector<std::string> protocol;
  std::vector<std::string> client;
  std::vector<uint16_t> query_type;  // DNS rules and headless rules
  std::vector<std::string> rule_set;
  bool rule_set_ip_cidr_match_source = false;
  // Accepted and stored for rule-set round trips; never match on a router (no such metadata).
  std::vector<std::string> process_name;
  std::vector<std::string> process_path;
  std::vector<std::string> process_path_regex;
  std::vector<std::string> package_name;
  std::vector<std::string> wifi_ssid;
  std::vector<std::string> wifi_bssid;
  std::vector<uint8_t> network_type;  // wifi=0 cellular=1 ethernet=2 other=3
  bool network_is_expensive = false;
  bool network_is_constrained = false;

  bool invert = false;

  // Logical rules.
  enum class Mode : uint8_t { And, Or };
  Mode mode = Mode::And;
  std::vector<RuleSpec> rules;

  // Route and DNS rules carry an action; headless rules do not.
  std::optional<RuleAction> action;
};

}  // namespace veer::rules
