#include "rules/rule_json.h"

#include <charconv>
#include <utility>

#include "rules/srs.h"

namespace veer::rules {
namespace {

constexpr uint8_t kH = 1, kR = 2, kD = 4, kAll = kH | kR | kD, kRD = kR | kD;

uint8_t kindBit(RuleKind k) {
  switch (k) {
    case RuleKind::Headless: return kH;
    case RuleKind::Route: return kR;
    case RuleKind::Dns: return kD;
  }
  return kH;
}

struct StrField {
  const char* name;
  std::vector<std::string> RuleSpec::*member;
  uint8_t kinds;
};
// sing-box's field order (option/rule.go RawDefaultRule, option/rule_dns.go); the writer uses
// the same order so that decompiled output reads like sing-box's.
const StrField kStrFieldsHead[] = {
    {"inbound", &RuleSpec::inbound, kRD},
};
const StrField kStrFieldsMid[] = {
    {"network", &RuleSpec::network, kAll},
    {"auth_user", &RuleSpec::auth_user, kRD},
    {"protocol", &RuleSpec::protocol, kRD},
    {"client", &RuleSpec::client, kRD},
    {"domain", &RuleSpec::domain, kAll},
    {"domain_suffix", &RuleSpec::domain_suffix, kAll},
    {"domain_keyword", &RuleSpec::domain_keyword, kAll},
    {"domain_regex", &RuleSpec::domain_regex, kAll},
    {"geosite", &RuleSpec::geosite, kRD},
    {"source_geoip", &RuleSpec::source_geoip, kRD},
    {"geoip", &RuleSpec::geoip, kRD},
    {"source_ip_cidr", &RuleSpec::source_ip_cidr, kAll},
};

struct BoolField {
  const char* name;
  bool RuleSpec::*member;
  uint8_t kinds;
};

// Known sing-box fields veer does not implement: reported by name instead of "unknown".
struct Unsupported {
  const char* name;
  uint8_t kinds;
  const char* why;
};
const Unsupported kUnsupported[] = {
    {"user", kRD, "no process owner information on a router"},
    {"user_id", kRD, "no process owner information on a router"},
    {"clash_mode", kRD, "veer has no Clash API"},
    {"interface_address", kRD, "not implemented"},
    {"network_interface_address", kAll, "not implemented"},
    {"default_interface_address", kAll, "not implemented"},
    {"source_mac_address", kRD, "not implemented"},
    {"source_hostname", kRD, "not implemented"},
    {"preferred_by", kRD, "not implemented"},
    {"package_name_regex", kAll, "not implemented"},
    {"ip_accept_any", kD, "not implemented"},
    {"rule_set_ip_cidr_accept_empty", kD, "not implemented"},
    {"outbound", kD, "the legacy DNS `outbound` match was removed; match on inbound instead"},
    {"rule_set_ipcidr_match_source", kRD,
     "removed in sing-box 1.12; use rule_set_ip_cidr_match_source"},
};

const std::pair<const char*, uint16_t> kQueryTypes[] = {
    {"A", 1},       {"NS", 2},         {"MD", 3},        {"MF", 4},        {"CNAME", 5},
    {"SOA", 6},     {"MB", 7},         {"MG", 8},        {"MR", 9},        {"NULL", 10},
    {"PTR", 12},    {"HINFO", 13},     {"MINFO", 14},    {"MX", 15},       {"TXT", 16},
    {"RP", 17},     {"AFSDB", 18},     {"X25", 19},      {"ISDN", 20},     {"RT", 21},
    {"NSAPPTR", 23}, {"SIG", 24},      {"KEY", 25},      {"PX", 26},       {"GPOS", 27},
    {"AAAA", 28},   {"LOC", 29},       {"NXT", 30},      {"EID", 31},      {"NIMLOC", 32},
    {"SRV", 33},    {"ATMA", 34},      {"NAPTR", 35},    {"KX", 36},       {"CERT", 37},
    {"DNAME", 39},  {"OPT", 41},       {"APL", 42},      {"DS", 43},       {"SSHFP", 44},
    {"IPSECKEY", 45}, {"RRSIG", 46},   {"NSEC", 47},     {"DNSKEY", 48},   {"DHCID", 49},
    {"NSEC3", 50},  {"NSEC3PARAM", 51}, {"TLSA", 52},    {"SMIMEA", 53},   {"HIP", 55},
    {"NINFO", 56},  {"RKEY", 57},      {"TALINK", 58},   {"CDS", 59},      {"CDNSKEY", 60},
    {"OPENPGPKEY", 61}, {"CSYNC", 62}, {"ZONEMD", 63},   {"SVCB", 64},     {"HTTPS", 65},
    {"SPF", 99},    {"UINFO", 100},    {"UID", 101},     {"GID", 102},     {"UNSPEC", 103},
    {"NID", 104},   {"L32", 105},      {"L64", 106},     {"LP", 107},      {"EUI48", 108},
    {"EUI64", 109}, {"TKEY", 249},     {"TSIG", 250},    {"IXFR", 251},    {"AXFR", 252},
    {"MAILB", 253}, {"MAILA", 254},    {"ANY", 255},     {"URI", 256},     {"CAA", 257},
    {"AVC", 258},   {"AMTRELAY", 260}, {"TA", 32768},    {"DLV", 32769},
};

const char* const kNetworkTypes[] = {"wifi", "cellular", "ethernet", "other"};

bool parseU16(std::string_view s, uint16_t& out) {
  unsigned v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

std::string idx(const std::string& path, size_t k) { return path + "[" + std::to_string(k) + "]"; }

// Iterates a Listable member: calls fn(value, path) for a bare value or each list element.
template <typename Fn>
void eachListed(const json::Value& v, const std::string& path, Fn fn) {
  if (v.isArray()) {
    for (size_t k = 0; k < v.items.size(); ++k) fn(v.items[k], idx(path, k));
  } else {
    fn(v, path);
  }
}

class RuleParser {
 public:
  RuleParser(RuleKind kind, const std::string& file, DiagList& diags)
      : kind_(kind), bit_(kindBit(kind)), file_(file), diags_(diags) {}

  void parse(const json::Value& v, const std::string& path, bool top, RuleSpec& out, int depth) {
    out.pos.file = file_;
    out.pos.line = v.pos.line;
    out.pos.column = v.pos.column;
    out.pos.path = path;
    json::ObjectReader r(v, path, file_, diags_);
    if (!r.ok()) return;
    if (depth > 32) {
      r.error("rules", "logical rules nest too deeply");
      return;
    }
    std::string type;
    r.str("type", type);
    if (type == "logical") {
      out.type = RuleSpec::Type::Logical;
      parseLogical(r, out, depth);
    } else if (type.empty() || type == "default") {
      out.type = RuleSpec::Type::Default;
      parseDefault(r, out);
    } else {
      r.error("type", "unknown rule type \"" + type + "\" (expected default or logical)");
      return;
    }
    r.boolean("invert", out.invert);
    if (top && kind_ != RuleKind::Headless) {
      RuleAction a;
      if (parseAction(r, a)) out.action = std::move(a);
    }
    for (const auto& u : kUnsupported) {
      if ((u.kinds & bit_) && r.has(u.name)) {
        r.markUsed(u.name);
        diags_.error(file_, posOf(v, u.name).line, posOf(v, u.name).column, r.memberPath(u.name),
                     std::string("field \"") + u.name + "\" is not supported by veer: " + u.why,
                     "unsupported");
      }
    }
    r.finish();
  }

 private:
  static json::Pos posOf(const json::Value& obj, std::string_view key) {
    const json::Value* m = obj.find(key);
    return m ? m->pos : obj.pos;
  }

  void parseLogical(json::ObjectReader& r, RuleSpec& out, int depth) {
    std::string mode;
    if (!r.str("mode", mode)) {
      if (!r.has("mode")) r.error("mode", "logical rule needs \"mode\": \"and\" or \"or\"");
    } else if (mode == "and") {
      out.mode = RuleSpec::Mode::And;
    } else if (mode == "or") {
      out.mode = RuleSpec::Mode::Or;
    } else {
      r.error("mode", "unknown logical mode \"" + mode + "\" (expected and or or)");
    }
    const json::Value* rules = r.get("rules");
    if (!rules || rules->isNull()) {
      r.error("rules", "logical rule needs a non-empty \"rules\" list");
      return;
    }
    if (!rules->isArray()) {
      r.errorAt(*rules, r.memberPath("rules"),
                std::string("expected a list of rules, got ") + rules->typeName());
      return;
    }
    if (rules->items.empty()) r.error("rules", "logical rule needs a non-empty \"rules\" list");
    for (size_t k = 0; k < rules->items.size(); ++k) {
      RuleSpec sub;
      parse(rules->items[k], idx(r.memberPath("rules"), k), false, sub, depth + 1);
      out.rules.push_back(std::move(sub));
    }
  }

  void strField(json::ObjectReader& r, const StrField& f, RuleSpec& out) {
    if (!(f.kinds & bit_)) return;
    r.strList(f.name, out.*f.member);
  }

  void parseDefault(json::ObjectReader& r, RuleSpec& out) {
    for (const auto& f : kStrFieldsHead) strField(r, f, out);
    if (bit_ & kRD) {
      if (const json::Value* v = r.get("ip_version")) {
        eachListed(*v, r.memberPath("ip_version"), [&](const json::Value& it, const std::string& p) {
          if (it.type == json::Value::Type::Uint && (it.u == 4 || it.u == 6)) {
            out.ip_version.push_back(static_cast<int>(it.u));
          } else {
            r.errorAt(it, p, "ip_version must be 4 or 6");
          }
        });
      }
    }
    if (bit_ & (kD | kH)) parseQueryTypes(r, out);
    for (const auto& f : kStrFieldsMid) strField(r, f, out);
    if (bit_ & kRD) r.boolean("source_ip_is_private", out.source_ip_is_private);
    r.strList("ip_cidr", out.ip_cidr);
    if (bit_ & kRD) r.boolean("ip_is_private", out.ip_is_private);
    r.u16List("source_port", out.source_port);
    r.strList("source_port_range", out.source_port_range);
    r.u16List("port", out.port);
    r.strList("port_range", out.port_range);
    r.strList("process_name", out.process_name);
    r.strList("process_path", out.process_path);
    r.strList("process_path_regex", out.process_path_regex);
    r.strList("package_name", out.package_name);
    parseNetworkTypes(r, out);
    r.boolean("network_is_expensive", out.network_is_expensive);
    r.boolean("network_is_constrained", out.network_is_constrained);
    r.strList("wifi_ssid", out.wifi_ssid);
    r.strList("wifi_bssid", out.wifi_bssid);
    if (bit_ & kRD) {
      r.strList("rule_set", out.rule_set);
      r.boolean("rule_set_ip_cidr_match_source", out.rule_set_ip_cidr_match_source);
    }
    validateValues(r, out);
  }

  void parseQueryTypes(json::ObjectReader& r, RuleSpec& out) {
    const json::Value* v = r.get("query_type");
    if (!v || v->isNull()) return;
    eachListed(*v, r.memberPath("query_type"), [&](const json::Value& it, const std::string& p) {
      if (it.type == json::Value::Type::Uint && it.u <= 65535) {
        out.query_type.push_back(static_cast<uint16_t>(it.u));
      } else if (it.isString()) {
        auto t = dnsQueryTypeFromName(it.str);
        uint16_t n;
        if (t) {
          out.query_type.push_back(*t);
        } else if (it.str.rfind("TYPE", 0) == 0 && parseU16(it.str.substr(4), n)) {
          out.query_type.push_back(n);
        } else {
          r.errorAt(it, p, "unknown DNS query type \"" + it.str + "\"");
        }
      } else {
        r.errorAt(it, p, std::string("expected a query type name or number, got ") + it.typeName());
      }
    });
  }

  void parseNetworkTypes(json::ObjectReader& r, RuleSpec& out) {
    const json::Value* v = r.get("network_type");
    if (!v || v->isNull()) return;
    eachListed(*v, r.memberPath("network_type"), [&](const json::Value& it, const std::string& p) {
      if (it.isString()) {
        for (uint8_t k = 0; k < 4; ++k) {
          if (it.str == kNetworkTypes[k]) {
            out.network_type.push_back(k);
            return;
          }
        }
      }
      r.errorAt(it, p, "network_type must be one of wifi, cellular, ethernet, other");
    });
  }

  // Checks values where that is cheap; the compiler checks regexes and the rest.
  void validateValues(json::ObjectReader& r, const RuleSpec& out) {
    auto check = [&](const char* key, const std::vector<std::string>& vals, auto ok,
                     const std::string& what) {
      const json::Value* v = r.get(key);
      if (!v) return;
      for (size_t k = 0; k < vals.size(); ++k) {
        if (ok(vals[k])) continue;
        const json::Value& at = v->isArray() && k < v->items.size() ? v->items[k] : *v;
        r.errorAt(at, v->isArray() ? idx(r.memberPath(key), k) : r.memberPath(key),
                  "invalid " + std::string(key) + " \"" + vals[k] + "\": " + what);
      }
    };
    auto nonEmpty = [](const std::string& s) { return !s.empty(); };
    check("domain", out.domain, nonEmpty, "empty");
    check("domain_suffix", out.domain_suffix, nonEmpty, "empty");
    check("domain_keyword", out.domain_keyword, nonEmpty, "empty");
    check("domain_regex", out.domain_regex, nonEmpty, "empty");
    auto cidr = [](const std::string& s) {
      IpRange rr;
      return parseIpCidrRange(s, rr);
    };
    check("ip_cidr", out.ip_cidr, cidr, "not an IP prefix or address");
    check("source_ip_cidr", out.source_ip_cidr, cidr, "not an IP prefix or address");
    auto range = [](const std::string& s) { return validPortRange(s); };
    check("port_range", out.port_range, range, "expected \"a:b\", \":b\" or \"a:\"");
    check("source_port_range", out.source_port_range, range, "expected \"a:b\", \":b\" or \"a:\"");
    auto net = [](const std::string& s) { return s == "tcp" || s == "udp" || s == "icmp"; };
    check("network", out.network, net, "expected tcp, udp or icmp");
  }

  bool duration(json::ObjectReader& r, const char* key, std::optional<uint32_t>& out,
                uint64_t divisor) {
    uint64_t ms;
    if (!r.durationMs(key, ms)) return false;
    out = static_cast<uint32_t>(std::min<uint64_t>(ms / divisor, UINT32_MAX));
    return true;
  }

  void strategy(json::ObjectReader& r, RuleAction& a) {
    if (!r.str("strategy", a.resolve_strategy)) return;
    const std::string& s = a.resolve_strategy;
    if (!(s.empty() || s == "as_is" || s == "prefer_ipv4" || s == "prefer_ipv6" ||
          s == "ipv4_only" || s == "ipv6_only")) {
      r.error("strategy", "unknown domain strategy \"" + s +
                              "\" (expected prefer_ipv4, prefer_ipv6, ipv4_only or ipv6_only)");
    }
  }

  void resolveOptions(json::ObjectReader& r, RuleAction& a) {
    strategy(r, a);
    r.boolean("disable_cache", a.disable_cache);
    uint32_t ttl;
    if (r.u32("rewrite_ttl", ttl)) a.rewrite_ttl = ttl;
    if (r.str("client_subnet", a.client_subnet)) {
      IpRange rr;
      if (!parseIpCidrRange(a.client_subnet, rr)) {
        r.error("client_subnet", "invalid client_subnet \"" + a.client_subnet + "\"");
      }
    }
  }

  // Route options; returns true when any was set (route-options must not be empty).
  bool routeOptions(json::ObjectReader& r, RuleAction& a) {
    bool any = false;
    any |= r.str("override_address", a.override_address);
    uint16_t port;
    if (r.u16("override_port", port)) {
      a.override_port = port;
      any = true;
    }
    if (r.str("network_strategy", a.network_strategy)) {
      any = true;
      const auto& s = a.network_strategy;
      if (!(s == "default" || s == "hybrid" || s == "fallback")) {
        r.error("network_strategy", "unknown network_strategy \"" + s + "\"");
      }
    }
    any |= duration(r, "fallback_delay", a.fallback_delay_ms, 1);
    any |= r.boolean("udp_disable_domain_unmapping", a.udp_disable_domain_unmapping);
    any |= r.boolean("udp_connect", a.udp_connect);
    any |= duration(r, "udp_timeout", a.udp_timeout_s, 1000);
    any |= r.boolean("tls_fragment", a.tls_fragment);
    any |= duration(r, "tls_fragment_fallback_delay", a.tls_fragment_fallback_delay_ms, 1);
    any |= r.boolean("tls_record_fragment", a.tls_record_fragment);
    return any;
  }

  void reject(json::ObjectReader& r, RuleAction& a) {
    a.type = RuleAction::Type::Reject;
    std::string m;
    if (r.str("method", m)) {
      if (m.empty() || m == "default") {
        m = "default";
      } else if (m != "drop" && m != "reply") {
        r.error("method", "unknown reject method \"" + m + "\" (expected default, drop or reply)");
      }
      a.reject_method = m;
    }
    r.boolean("no_drop", a.no_drop);
    if (a.reject_method == "drop" && a.no_drop) {
      r.error("no_drop", "no_drop is not available with method drop");
    }
  }

  bool parseAction(json::ObjectReader& r, RuleAction& a) {
    std::string action;
    r.str("action", action);
    size_t before = diags_.errorCount();
    if (kind_ == RuleKind::Route) {
      if (action.empty() || action == "route") {
        a.type = RuleAction::Type::Route;
        if (!r.str("outbound", a.outbound) || a.outbound.empty()) {
          // A present but empty tag is as useless as a missing one (found by fuzzing: it
          // also did not survive a write/parse round trip).
          r.error("outbound", r.has("outbound") ? "empty \"outbound\" for action route"
                                                : "missing \"outbound\" for action route");
        }
        routeOptions(r, a);
      } else if (action == "route-options") {
        a.type = RuleAction::Type::RouteOptions;
        if (!routeOptions(r, a)) r.error("action", "empty route-options action");
      } else if (action == "reject") {
        reject(r, a);
      } else if (action == "hijack-dns") {
        a.type = RuleAction::Type::HijackDns;
      } else if (action == "sniff") {
        a.type = RuleAction::Type::Sniff;
        r.strList("sniffer", a.sniffers);
        std::optional<uint32_t> t;
        if (duration(r, "timeout", t, 1)) a.sniff_timeout_ms = *t;
      } else if (action == "resolve") {
        a.type = RuleAction::Type::Resolve;
        r.str("server", a.resolve_server);
        resolveOptions(r, a);
      } else if (action == "direct" || action == "bypass") {
        r.error("action", "action \"" + action + "\" is not supported by veer");
      } else {
        r.error("action", "unknown rule action \"" + action +
                              "\" (expected route, reject, hijack-dns, sniff, resolve or "
                              "route-options)");
      }
    } else {
      if (action.empty() || action == "route") {
        a.type = RuleAction::Type::Route;
        if (!r.str("server", a.resolve_server) || a.resolve_server.empty()) {
          r.error("server", r.has("server") ? "empty \"server\" for DNS action route"
                                            : "missing \"server\" for DNS action route");
        }
        resolveOptions(r, a);
      } else if (action == "route-options") {
        a.type = RuleAction::Type::RouteOptions;
        resolveOptions(r, a);
        if (a.resolve_strategy.empty() && !a.disable_cache && !a.rewrite_ttl &&
            a.client_subnet.empty()) {
          r.error("action", "empty DNS route-options action");
        }
      } else if (action == "reject") {
        reject(r, a);
      } else if (action == "predefined") {
        r.error("action", "DNS action \"predefined\" is not supported by veer");
      } else {
        r.error("action", "unknown DNS rule action \"" + action +
                              "\" (expected route, route-options or reject)");
      }
    }
    return diags_.errorCount() == before;
  }

  RuleKind kind_;
  uint8_t bit_;
  const std::string& file_;
  DiagList& diags_;
};

// ---- writer ----

json::Value jstr(std::string s) {
  json::Value v;
  v.type = json::Value::Type::String;
  v.str = std::move(s);
  return v;
}
json::Value juint(uint64_t u) {
  json::Value v;
  v.type = json::Value::Type::Uint;
  v.u = u;
  return v;
}
json::Value jbool(bool b) {
  json::Value v;
  v.type = json::Value::Type::Bool;
  v.b = b;
  return v;
}

class ObjectBuilder {
 public:
  ObjectBuilder() { obj_.type = json::Value::Type::Object; }
  void add(std::string key, json::Value v) {
    json::Value::Member m;
    m.key = std::move(key);
    m.value = std::move(v);
    obj_.members.push_back(std::move(m));
  }
  template <typename T, typename Conv>
  void list(const char* key, const std::vector<T>& vals, Conv conv) {
    if (vals.empty()) return;
    if (vals.size() == 1) {
      add(key, conv(vals[0]));
      return;
    }
    json::Value arr;
    arr.type = json::Value::Type::Array;
    for (const auto& x : vals) arr.items.push_back(conv(x));
    add(key, std::move(arr));
  }
  void strs(const char* key, const std::vector<std::string>& vals) {
    list(key, vals, [](const std::string& s) { return jstr(s); });
  }
  void flag(const char* key, bool b) {
    if (b) add(key, jbool(true));
  }
  void str(const char* key, const std::string& s) {
    if (!s.empty()) add(key, jstr(s));
  }
  json::Value take() { return std::move(obj_); }

 private:
  json::Value obj_;
};

// Go's time.Duration.String for whole milliseconds ("300ms", "5s", "1m30s", "1h0m0s").
std::string goDuration(uint64_t ms) {
  if (ms == 0) return "0s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  uint64_t h = ms / 3600000, m = (ms / 60000) % 60, s = (ms / 1000) % 60, frac = ms % 1000;
  std::string sec = std::to_string(s);
  if (frac) {
    std::string f = std::to_string(frac);
    f = std::string(3 - f.size(), '0') + f;
    while (!f.empty() && f.back() == '0') f.pop_back();
    sec += "." + f;
  }
  sec += "s";
  if (h) return std::to_string(h) + "h" + std::to_string(m) + "m" + sec;
  if (m) return std::to_string(m) + "m" + sec;
  return sec;
}

void writeAction(RuleKind kind, const RuleAction& a, ObjectBuilder& b) {
  auto resolveOpts = [&] {
    b.str("strategy", a.resolve_strategy);
    b.flag("disable_cache", a.disable_cache);
    if (a.rewrite_ttl) b.add("rewrite_ttl", juint(*a.rewrite_ttl));
    b.str("client_subnet", a.client_subnet);
  };
  auto routeOpts = [&] {
    b.str("override_address", a.override_address);
    if (a.override_port) b.add("override_port", juint(*a.override_port));
    b.str("network_strategy", a.network_strategy);
    if (a.fallback_delay_ms) b.add("fallback_delay", jstr(goDuration(*a.fallback_delay_ms)));
    b.flag("udp_disable_domain_unmapping", a.udp_disable_domain_unmapping);
    b.flag("udp_connect", a.udp_connect);
    if (a.udp_timeout_s) b.add("udp_timeout", jstr(goDuration(uint64_t{*a.udp_timeout_s} * 1000)));
    b.flag("tls_fragment", a.tls_fragment);
    if (a.tls_fragment_fallback_delay_ms) {
      b.add("tls_fragment_fallback_delay", jstr(goDuration(*a.tls_fragment_fallback_delay_ms)));
    }
    b.flag("tls_record_fragment", a.tls_record_fragment);
  };
  switch (a.type) {
    case RuleAction::Type::Route:
      // sing-box writes the route action without "action" (the legacy shape).
      if (kind == RuleKind::Dns) {
        b.str("server", a.resolve_server);
        resolveOpts();
      } else {
        b.str("outbound", a.outbound);
        routeOpts();
      }
      break;
    case RuleAction::Type::RouteOptions:
      b.add("action", jstr("route-options"));
      if (kind == RuleKind::Dns) {
        resolveOpts();
      } else {
        routeOpts();
      }
      break;
    case RuleAction::Type::Reject:
      b.add("action", jstr("reject"));
      if (a.reject_method != "default") b.str("method", a.reject_method);
      b.flag("no_drop", a.no_drop);
      break;
    case RuleAction::Type::HijackDns: b.add("action", jstr("hijack-dns")); break;
    case RuleAction::Type::Sniff:
      b.add("action", jstr("sniff"));
      b.strs("sniffer", a.sniffers);
      if (a.sniff_timeout_ms != 300) b.add("timeout", jstr(goDuration(a.sniff_timeout_ms)));
      break;
    case RuleAction::Type::Resolve:
      b.add("action", jstr("resolve"));
      b.str("server", a.resolve_server);
      resolveOpts();
      break;
  }
}

json::Value writeRule(RuleKind kind, const RuleSpec& r, bool top) {
  const uint8_t bit = kindBit(kind);
  ObjectBuilder b;
  if (r.type == RuleSpec::Type::Logical) {
    b.add("type", jstr("logical"));
    b.add("mode", jstr(r.mode == RuleSpec::Mode::And ? "and" : "or"));
    json::Value arr;
    arr.type = json::Value::Type::Array;
    for (const auto& sub : r.rules) arr.items.push_back(writeRule(kind, sub, false));
    b.add("rules", std::move(arr));
  } else {
    auto u16 = [](uint16_t x) { return juint(x); };
    for (const auto& f : kStrFieldsHead) {
      if (f.kinds & bit) b.strs(f.name, r.*f.member);
    }
    if (bit & kRD) b.list("ip_version", r.ip_version, [](int x) { return juint(x); });
    if (bit & (kD | kH)) {
      b.list("query_type", r.query_type, [](uint16_t t) {
        auto n = dnsQueryTypeName(t);
        return n.empty() ? juint(t) : jstr(std::string(n));
      });
    }
    for (const auto& f : kStrFieldsMid) {
      if (f.kinds & bit) b.strs(f.name, r.*f.member);
    }
    if (bit & kRD) b.flag("source_ip_is_private", r.source_ip_is_private);
    b.strs("ip_cidr", r.ip_cidr);
    if (bit & kRD) b.flag("ip_is_private", r.ip_is_private);
    b.list("source_port", r.source_port, u16);
    b.strs("source_port_range", r.source_port_range);
    b.list("port", r.port, u16);
    b.strs("port_range", r.port_range);
    b.strs("process_name", r.process_name);
    b.strs("process_path", r.process_path);
    b.strs("process_path_regex", r.process_path_regex);
    b.strs("package_name", r.package_name);
    b.list("network_type", r.network_type, [](uint8_t t) {
      return t < 4 ? jstr(kNetworkTypes[t]) : juint(t);
    });
    b.flag("network_is_expensive", r.network_is_expensive);
    b.flag("network_is_constrained", r.network_is_constrained);
    b.strs("wifi_ssid", r.wifi_ssid);
    b.strs("wifi_bssid", r.wifi_bssid);
    if (bit & kRD) {
      b.strs("rule_set", r.rule_set);
      b.flag("rule_set_ip_cidr_match_source", r.rule_set_ip_cidr_match_source);
    }
  }
  b.flag("invert", r.invert);
  if (top && kind != RuleKind::Headless && r.action) writeAction(kind, *r.action, b);
  return b.take();
}

}  // namespace

bool parseRule(RuleKind kind, const json::Value& v, const std::string& path,
               const std::string& file, DiagList& diags, RuleSpec& out) {
  size_t before = diags.errorCount();
  RuleParser p(kind, file, diags);
  p.parse(v, path, true, out, 0);
  return diags.errorCount() == before;
}

bool parseRouteRule(const json::Value& v, const std::string& path, const std::string& file,
                    DiagList& diags, RuleSpec& out) {
  return parseRule(RuleKind::Route, v, path, file, diags, out);
}
bool parseDnsRule(const json::Value& v, const std::string& path, const std::string& file,
                  DiagList& diags, RuleSpec& out) {
  return parseRule(RuleKind::Dns, v, path, file, diags, out);
}
bool parseHeadlessRule(const json::Value& v, const std::string& path, const std::string& file,
                       DiagList& diags, RuleSpec& out) {
  return parseRule(RuleKind::Headless, v, path, file, diags, out);
}

json::Value ruleToJson(RuleKind kind, const RuleSpec& rule) { return writeRule(kind, rule, true); }

std::optional<uint16_t> dnsQueryTypeFromName(std::string_view name) {
  for (const auto& [n, t] : kQueryTypes) {
    if (name == n) return t;
  }
  return std::nullopt;
}

std::string_view dnsQueryTypeName(uint16_t type) {
  for (const auto& [n, t] : kQueryTypes) {
    if (t == type) return n;
  }
  return {};
}

bool validPortRange(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || text.size() == 1) return false;
  std::string_view a = text.substr(0, colon), b = text.substr(colon + 1);
  uint16_t lo = 0, hi = 65535;
  if (!a.empty() && !parseU16(a, lo)) return false;
  if (!b.empty() && !parseU16(b, hi)) return false;
  return lo <= hi;
}

}  // namespace veer::rules
