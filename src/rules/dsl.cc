#include "rules/dsl.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "rules/cidr_set.h"
#include "rules/item_base.h"

namespace veer::rules {

namespace {

// ---- fields ---------------------------------------------------------------------------------

enum class Kind : uint8_t { Strings, Bool, Port, PortRange, IpVersion, QueryType, NetworkType };

// Merge keys: fields with the same key may share one default rule in a disjunction; fields with
// different keys may share one in a conjunction (sing-box groups, one key per AND field).
enum Key : uint32_t {
  kDstAddr = 1u << 0,
  kDstPort = 1u << 1,
  kSrcAddr = 1u << 2,
  kSrcPort = 1u << 3,
  kInbound = 1u << 4,
  kIpVersion = 1u << 5,
  kNetwork = 1u << 6,
  kAuthUser = 1u << 7,
  kProtocol = 1u << 8,
  kClient = 1u << 9,
  kQueryType = 1u << 10,
  kRuleSet = 1u << 11,
  kMatchSource = 1u << 12,
  kProcessName = 1u << 13,
  kProcessPath = 1u << 14,
  kProcessPathRegex = 1u << 15,
  kPackageName = 1u << 16,
  kWifiSsid = 1u << 17,
  kWifiBssid = 1u << 18,
  kNetworkType = 1u << 19,
  kExpensive = 1u << 20,
  kConstrained = 1u << 21,
};

struct Field {
  const char* name;
  Kind kind;
  uint32_t key;
  std::vector<std::string> RuleSpec::*strings = nullptr;
  bool RuleSpec::*flag = nullptr;
};

const Field kFields[] = {
    {"domain", Kind::Strings, kDstAddr, &RuleSpec::domain},
    {"domain_suffix", Kind::Strings, kDstAddr, &RuleSpec::domain_suffix},
    {"domain_keyword", Kind::Strings, kDstAddr, &RuleSpec::domain_keyword},
    {"domain_regex", Kind::Strings, kDstAddr, &RuleSpec::domain_regex},
    {"geosite", Kind::Strings, kDstAddr, &RuleSpec::geosite},
    {"geoip", Kind::Strings, kDstAddr, &RuleSpec::geoip},
    {"ip_cidr", Kind::Strings, kDstAddr, &RuleSpec::ip_cidr},
    {"ip_is_private", Kind::Bool, kDstAddr, nullptr, &RuleSpec::ip_is_private},
    {"adguard_domain", Kind::Strings, kDstAddr, &RuleSpec::adguard_domain},
    {"source_geoip", Kind::Strings, kSrcAddr, &RuleSpec::source_geoip},
    {"source_ip_cidr", Kind::Strings, kSrcAddr, &RuleSpec::source_ip_cidr},
    {"source_ip_is_private", Kind::Bool, kSrcAddr, nullptr, &RuleSpec::source_ip_is_private},
    {"port", Kind::Port, kDstPort},
    {"port_range", Kind::PortRange, kDstPort},
    {"source_port", Kind::Port, kSrcPort},
    {"source_port_range", Kind::PortRange, kSrcPort},
    {"inbound", Kind::Strings, kInbound, &RuleSpec::inbound},
    {"ip_version", Kind::IpVersion, kIpVersion},
    {"network", Kind::Strings, kNetwork, &RuleSpec::network},
    {"auth_user", Kind::Strings, kAuthUser, &RuleSpec::auth_user},
    {"protocol", Kind::Strings, kProtocol, &RuleSpec::protocol},
    {"client", Kind::Strings, kClient, &RuleSpec::client},
    {"query_type", Kind::QueryType, kQueryType},
    {"rule_set", Kind::Strings, kRuleSet, &RuleSpec::rule_set},
    {"rule_set_ip_cidr_match_source", Kind::Bool, kMatchSource, nullptr,
     &RuleSpec::rule_set_ip_cidr_match_source},
    {"process_name", Kind::Strings, kProcessName, &RuleSpec::process_name},
    {"process_path", Kind::Strings, kProcessPath, &RuleSpec::process_path},
    {"process_path_regex", Kind::Strings, kProcessPathRegex, &RuleSpec::process_path_regex},
    {"package_name", Kind::Strings, kPackageName, &RuleSpec::package_name},
    {"wifi_ssid", Kind::Strings, kWifiSsid, &RuleSpec::wifi_ssid},
    {"wifi_bssid", Kind::Strings, kWifiBssid, &RuleSpec::wifi_bssid},
    {"network_type", Kind::NetworkType, kNetworkType},
    {"network_is_expensive", Kind::Bool, kExpensive, nullptr, &RuleSpec::network_is_expensive},
    {"network_is_constrained", Kind::Bool, kConstrained, nullptr, &RuleSpec::network_is_constrained},
};

/// Fields of route rules that sing-box's headless (rule-set) rules do not have
/// (option/rule_set.go DefaultHeadlessRule; rule_json.cc rejects them in rule-set JSON too).
bool headlessField(std::string_view name) {
  static const char* const kRouteOnly[] = {
      "inbound",     "ip_version",   "auth_user",     "protocol",
      "client",      "geosite",      "geoip",         "source_geoip",
      "ip_is_private", "source_ip_is_private", "rule_set", "rule_set_ip_cidr_match_source"};
  for (const char* r : kRouteOnly) {
    if (name == r) return false;
  }
  return true;
}

const Field* findField(std::string_view name) {
  for (const auto& f : kFields) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

struct QueryTypeName {
  const char* name;
  uint16_t value;
};
const QueryTypeName kQueryTypes[] = {
    {"A", 1},     {"NS", 2},     {"CNAME", 5},  {"SOA", 6},   {"PTR", 12},  {"MX", 15},
    {"TXT", 16},  {"AAAA", 28},  {"SRV", 33},   {"NAPTR", 35}, {"DS", 43},  {"RRSIG", 46},
    {"NSEC", 47}, {"DNSKEY", 48}, {"SVCB", 64}, {"HTTPS", 65}, {"ANY", 255},
};
const char* const kNetworkTypes[] = {"wifi", "cellular", "ethernet", "other"};
const char* const kSniffers[] = {"http", "tls", "quic", "stun", "dns", "bittorrent", "dtls",
                                 "ssh", "rdp", "ntp"};

/// The merge keys a rule uses, or 0 for a logical / inverted rule (never merged) and for `any`.
uint32_t keysOf(const RuleSpec& r) {
  if (r.type != RuleSpec::Type::Default || r.invert) return 0;
  uint32_t k = 0;
  for (const auto& f : kFields) {
    if (f.strings != nullptr && !(r.*f.strings).empty()) k |= f.key;
    if (f.flag != nullptr && r.*f.flag) k |= f.key;
  }
  if (!r.port.empty() || !r.port_range.empty()) k |= kDstPort;
  if (!r.source_port.empty() || !r.source_port_range.empty()) k |= kSrcPort;
  if (!r.ip_version.empty()) k |= kIpVersion;
  if (!r.query_type.empty()) k |= kQueryType;
  if (!r.network_type.empty()) k |= kNetworkType;
  return k;
}

bool mergeable(const RuleSpec& r) { return r.type == RuleSpec::Type::Default && !r.invert; }

template <typename T>
void append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

void mergeInto(RuleSpec& to, const RuleSpec& from) {
  for (const auto& f : kFields) {
    if (f.strings != nullptr) append(to.*f.strings, from.*f.strings);
    if (f.flag != nullptr) to.*f.flag = to.*f.flag || from.*f.flag;
  }
  append(to.port, from.port);
  append(to.port_range, from.port_range);
  append(to.source_port, from.source_port);
  append(to.source_port_range, from.source_port_range);
  append(to.ip_version, from.ip_version);
  append(to.query_type, from.query_type);
  append(to.network_type, from.network_type);
}

bool isPowerOfTwo(uint32_t k) { return k != 0 && (k & (k - 1)) == 0; }

/// `a && b && ...`: terms of disjoint keys fold into one default rule.
RuleSpec lowerAnd(std::vector<RuleSpec> parts, const SourcePos& pos) {
  std::vector<RuleSpec> out;
  int acc = -1;
  uint32_t acc_keys = 0;
  for (auto& p : parts) {
    if (mergeable(p)) {
      uint32_t k = keysOf(p);
      if (acc < 0) {
        acc = static_cast<int>(out.size());
        acc_keys = k;
        out.push_back(std::move(p));
        continue;
      }
      if ((k & acc_keys) == 0) {
        mergeInto(out[acc], p);
        acc_keys |= k;
        continue;
      }
    }
    out.push_back(std::move(p));
  }
  if (out.size() == 1) return std::move(out[0]);
  RuleSpec r;
  r.type = RuleSpec::Type::Logical;
  r.mode = RuleSpec::Mode::And;
  r.pos = pos;
  r.rules = std::move(out);
  return r;
}

/// `a || b || ...`: single-key terms of the same key fold into one default rule.
RuleSpec lowerOr(std::vector<RuleSpec> parts, const SourcePos& pos) {
  std::vector<RuleSpec> out;
  std::vector<std::pair<uint32_t, size_t>> by_key;
  for (auto& p : parts) {
    uint32_t k = keysOf(p);
    if (mergeable(p) && isPowerOfTwo(k)) {
      auto it = std::find_if(by_key.begin(), by_key.end(), [&](const auto& e) { return e.first == k; });
      if (it != by_key.end()) {
        mergeInto(out[it->second], p);
        continue;
      }
      by_key.emplace_back(k, out.size());
    }
    out.push_back(std::move(p));
  }
  if (out.size() == 1) return std::move(out[0]);
  RuleSpec r;
  r.type = RuleSpec::Type::Logical;
  r.mode = RuleSpec::Mode::Or;
  r.pos = pos;
  r.rules = std::move(out);
  return r;
}

bool isWordChar(char c) {
  switch (c) {
    case ' ': case '\t': case '\r': case '\n': case ',': case '[': case ']': case '(': case ')':
    case '#': case '"': case '!': case '&': case '|': case '=': case '\0':
      return false;
    default:
      return true;
  }
}
bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string lowerCopy(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool parseUint(std::string_view s, uint32_t max, uint32_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

/// Go-style duration ("300ms", "2s", "1m30s") in milliseconds.
bool parseDurationMs(std::string_view s, uint32_t* ms) {
  if (s.empty()) return false;
  uint64_t total = 0;
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    if (n == 0) return false;
    uint32_t v = 0;
    if (!parseUint(s.substr(0, n), 1000000000u, &v)) return false;
    s.remove_prefix(n);
    size_t u = 0;
    while (u < s.size() && ((s[u] >= 'a' && s[u] <= 'z') || (s[u] >= 'A' && s[u] <= 'Z'))) ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    uint64_t mul;
    if (unit == "ms") {
      mul = 1;
    } else if (unit == "s") {
      mul = 1000;
    } else if (unit == "m") {
      mul = 60000;
    } else if (unit == "h") {
      mul = 3600000;
    } else {
      return false;
    }
    total += uint64_t{v} * mul;
    if (total > UINT32_MAX) return false;
  }
  *ms = static_cast<uint32_t>(total);
  return true;
}

// ---- parser ---------------------------------------------------------------------------------

struct Value {
  std::string text;
  uint32_t col = 0;  // 1-based column of the value's first character
};

class Parser {
 public:
  Parser(std::string_view file, DslMode mode, DiagList& diags)
      : file_(file), mode_(mode), diags_(diags) {}

  void parseLine(std::string_view line, uint32_t line_no, DslFile& out);

 private:
  // Cursor helpers.
  void skipWs() {
    while (pos_ < line_.size() && (line_[pos_] == ' ' || line_[pos_] == '\t')) ++pos_;
  }
  bool atEnd() {
    skipWs();
    return pos_ >= line_.size() || line_[pos_] == '#';
  }
  bool accept(std::string_view tok) {
    skipWs();
    if (line_.substr(pos_, tok.size()) == tok) {
      pos_ += tok.size();
      return true;
    }
    return false;
  }
  char peek() {
    skipWs();
    return pos_ < line_.size() ? line_[pos_] : '\0';
  }
  uint32_t col() const { return static_cast<uint32_t>(pos_ + 1); }
  SourcePos posAt(uint32_t c) const {
    SourcePos p;
    p.file = std::string(file_);
    p.line = line_no_;
    p.column = c;
    return p;
  }
  /// Records the first error of the line; later ones on the same line are consequences.
  bool fail(uint32_t c, std::string msg) {
    if (!failed_) diags_.error(std::string(file_), line_no_, c, "", std::move(msg), "dsl-syntax");
    failed_ = true;
    return false;
  }
  /// What is at the cursor, for error messages.
  std::string found() {
    if (atEnd()) return "end of line";
    if (line_.substr(pos_, 2) == "=>") return "'=>'";
    return std::string("'") + line_[pos_] + "'";
  }

  std::string_view name();
  bool value(Value* v);
  bool values(std::vector<Value>* out);

  bool orExpr(RuleSpec* out);
  bool andExpr(RuleSpec* out);
  bool unary(RuleSpec* out);
  bool term(RuleSpec* out);
  bool addValue(const Field& f, const Value& v, RuleSpec& r);

  bool action(RuleAction* out);
  struct Arg {
    std::string name;
    std::optional<Value> value;
    uint32_t col = 0;
  };
  bool args(std::vector<Arg>* out, bool required);
  bool routeOption(const Arg& a, RuleAction& act);
  bool boolArg(const Arg& a, bool* out);

  std::string_view file_;
  DslMode mode_;
  DiagList& diags_;
  std::string_view line_;
  uint32_t line_no_ = 0;
  size_t pos_ = 0;
  bool failed_ = false;
  int depth_ = 0;
  static constexpr int kMaxDepth = 32;
};

std::string_view Parser::name() {
  skipWs();
  size_t start = pos_;
  while (pos_ < line_.size() && isNameChar(line_[pos_])) ++pos_;
  return line_.substr(start, pos_ - start);
}

bool Parser::value(Value* v) {
  skipWs();
  v->col = col();
  v->text.clear();
  if (pos_ < line_.size() && line_[pos_] == '"') {
    ++pos_;
    while (pos_ < line_.size() && line_[pos_] != '"') {
      char c = line_[pos_];
      if (c == '\\' && pos_ + 1 < line_.size() && (line_[pos_ + 1] == '"' || line_[pos_ + 1] == '\\')) {
        v->text += line_[pos_ + 1];
        pos_ += 2;
        continue;
      }
      v->text += c;
      ++pos_;
    }
    if (pos_ >= line_.size()) return fail(v->col, "unterminated string");
    ++pos_;
    return true;
  }
  size_t start = pos_;
  while (pos_ < line_.size() && isWordChar(line_[pos_])) ++pos_;
  if (pos_ == start) return fail(col(), "expected a value, found " + found());
  v->text = std::string(line_.substr(start, pos_ - start));
  return true;
}

bool Parser::values(std::vector<Value>* out) {
  if (peek() != '[') {
    Value v;
    if (!value(&v)) return false;
    out->push_back(std::move(v));
    return true;
  }
  uint32_t open = col();
  ++pos_;
  while (true) {
    if (peek() == ']') {
      if (out->empty()) return fail(col(), "empty list");
      ++pos_;
      return true;
    }
    if (atEnd()) return fail(col(), "expected ']' to close the list opened at column " + std::to_string(open));
    Value v;
    if (!value(&v)) return false;
    out->push_back(std::move(v));
    if (peek() == ',') {
      ++pos_;
      continue;
    }
    if (peek() != ']') return fail(col(), "expected ',' or ']' in the list, found " + found());
  }
}

bool Parser::orExpr(RuleSpec* out) {
  uint32_t start = (skipWs(), col());
  std::vector<RuleSpec> parts(1);
  if (!andExpr(&parts[0])) return false;
  while (accept("||")) {
    parts.emplace_back();
    if (!andExpr(&parts.back())) return false;
  }
  *out = parts.size() == 1 ? std::move(parts[0]) : lowerOr(std::move(parts), posAt(start));
  return true;
}

bool Parser::andExpr(RuleSpec* out) {
  uint32_t start = (skipWs(), col());
  std::vector<RuleSpec> parts(1);
  if (!unary(&parts[0])) return false;
  while (accept("&&")) {
    parts.emplace_back();
    if (!unary(&parts.back())) return false;
  }
  *out = parts.size() == 1 ? std::move(parts[0]) : lowerAnd(std::move(parts), posAt(start));
  return true;
}

bool Parser::unary(RuleSpec* out) {
  // Nesting costs stack in the parser, the compiler and the matcher: bound it.
  struct Depth {
    int& d;
    explicit Depth(int& x) : d(++x) {}
    ~Depth() { --d; }
  } depth(depth_);
  if (depth_ > kMaxDepth) return fail(col(), "expression nested too deeply (more than " +
                                                 std::to_string(kMaxDepth) + " levels)");
  char c = peek();
  if (c == '!') {
    ++pos_;
    if (!unary(out)) return false;
    out->invert = !out->invert;
    return true;
  }
  if (c == '(') {
    uint32_t open = col();
    ++pos_;
    if (!orExpr(out)) return false;
    if (peek() != ')') {
      return fail(col(), "expected ')' to close '(' at column " + std::to_string(open) + ", found " + found());
    }
    ++pos_;
    return true;
  }
  return term(out);
}

bool Parser::term(RuleSpec* out) {
  skipWs();
  uint32_t start = col();
  if (atEnd() || line_.substr(pos_, 2) == "=>" || line_.substr(pos_, 2) == "&&" ||
      line_.substr(pos_, 2) == "||" || line_[pos_] == ')') {
    return fail(start, "expected a condition, found " + found());
  }
  std::string_view n = name();
  if (n.empty()) return fail(start, "expected a field name, found " + found());
  *out = RuleSpec{};
  out->pos = posAt(start);
  bool has_value = pos_ < line_.size() && line_[pos_] == ':';
  if (n == "any" && !has_value) return true;  // the rule without conditions
  const Field* f = findField(n);
  if (f == nullptr) {
    if (n == "final") return fail(start, "'final' must be alone on the left of '=>'");
    return fail(start, "unknown field '" + std::string(n) + "'");
  }
  if (mode_ == DslMode::RuleSet && !headlessField(n)) {
    // The same fields as a JSON rule-set (sing-box's headless rules), so that a DSL rule set
    // can be written as .srs and behaves like its JSON form.
    return fail(start, "field '" + std::string(n) + "' is not allowed in a rule-set file");
  }
  if (!has_value) {
    if (f->kind != Kind::Bool) {
      return fail(col(), "field '" + std::string(n) + "' needs a value (" + std::string(n) + ":value)");
    }
    out->*f->flag = true;
    return true;
  }
  ++pos_;  // ':'
  std::vector<Value> vals;
  if (!values(&vals)) return false;
  for (const auto& v : vals) {
    if (!addValue(*f, v, *out)) return false;
  }
  return true;
}

bool Parser::addValue(const Field& f, const Value& v, RuleSpec& r) {
  const std::string& t = v.text;
  switch (f.kind) {
    case Kind::Strings: {
      if (t.empty()) return fail(v.col, std::string("empty ") + f.name + " value");
      std::string_view name = f.name;
      if (name == "ip_cidr" || name == "source_ip_cidr") {
        IpAddress a, b;
        if (!CidrSet::parsePrefix(t, &a, &b)) return fail(v.col, "invalid IP prefix \"" + t + "\"");
      } else if (name == "domain_regex" || name == "process_path_regex") {
        std::string err = RegexItem::checkPattern(t);
        if (!err.empty()) return fail(v.col, "invalid regular expression \"" + t + "\": " + err);
      } else if (name == "network") {
        std::string l = lowerCopy(t);
        if (l != "tcp" && l != "udp" && l != "icmp") {
          return fail(v.col, "unknown network \"" + t + "\" (tcp, udp or icmp)");
        }
      }
      (r.*f.strings).push_back(t);
      return true;
    }
    case Kind::Bool:
      if (t == "true") {
        r.*f.flag = true;
        return true;
      }
      if (t == "false") {
        return fail(v.col, std::string("'") + f.name + ":false' matches nothing specific; write '!" +
                               f.name + "' to negate");
      }
      return fail(v.col, std::string(f.name) + " takes true or nothing, not \"" + t + "\"");
    case Kind::Port:
    case Kind::PortRange: {
      bool source = std::string_view(f.name).rfind("source_", 0) == 0;
      uint32_t p = 0;
      if (f.kind == Kind::Port && parseUint(t, 65535, &p)) {
        (source ? r.source_port : r.port).push_back(static_cast<uint16_t>(p));
        return true;
      }
      uint16_t lo = 0, hi = 0;
      if (!PortSet::parseRange(t, &lo, &hi)) {
        return fail(v.col, "invalid port or port range \"" + t + "\" (443, 1000-2000, :2000, 1000:)");
      }
      size_t sep = t.find_first_of(":-");
      std::string norm = t.substr(0, sep) + ":" + t.substr(sep + 1);
      (source ? r.source_port_range : r.port_range).push_back(norm);
      return true;
    }
    case Kind::IpVersion:
      if (t != "4" && t != "6") return fail(v.col, "ip_version must be 4 or 6, not \"" + t + "\"");
      r.ip_version.push_back(t[0] - '0');
      return true;
    case Kind::QueryType: {
      uint32_t q = 0;
      if (parseUint(t, 65535, &q)) {
        r.query_type.push_back(static_cast<uint16_t>(q));
        return true;
      }
      for (const auto& qt : kQueryTypes) {
        if (lowerCopy(t) == lowerCopy(qt.name)) {
          r.query_type.push_back(qt.value);
          return true;
        }
      }
      return fail(v.col, "unknown query type \"" + t + "\"");
    }
    case Kind::NetworkType:
      for (uint8_t i = 0; i < 4; ++i) {
        if (lowerCopy(t) == kNetworkTypes[i]) {
          r.network_type.push_back(i);
          return true;
        }
      }
      return fail(v.col, "unknown network_type \"" + t + "\" (wifi, cellular, ethernet, other)");
  }
  return false;
}

bool Parser::args(std::vector<Arg>* out, bool required) {
  if (peek() != '(') {
    if (required) return fail(col(), "expected '(' and options, found " + found());
    return true;
  }
  uint32_t open = col();
  ++pos_;
  if (peek() == ')') {
    if (required) return fail(col(), "expected at least one option");
    ++pos_;
    return true;
  }
  while (true) {
    Arg a;
    skipWs();
    a.col = col();
    if (peek() == '"') {
      Value v;
      if (!value(&v)) return false;
      a.name = v.text;
    } else {
      a.name = std::string(name());
      if (a.name.empty()) return fail(col(), "expected an option name, found " + found());
    }
    if (peek() == '=') {
      ++pos_;
      Value v;
      if (!value(&v)) return false;
      a.value = std::move(v);
    }
    out->push_back(std::move(a));
    if (peek() == ',') {
      ++pos_;
      continue;
    }
    if (peek() == ')') {
      ++pos_;
      return true;
    }
    return fail(col(), "expected ',' or ')' to close '(' at column " + std::to_string(open) +
                           ", found " + found());
  }
}

bool Parser::boolArg(const Arg& a, bool* out) {
  if (!a.value || a.value->text == "true") {
    *out = true;
    return true;
  }
  if (a.value->text == "false") {
    *out = false;
    return true;
  }
  return fail(a.value->col, a.name + " takes true or false");
}

bool Parser::routeOption(const Arg& a, RuleAction& act) {
  auto need = [&]() -> bool {
    if (!a.value) return fail(a.col, a.name + " needs a value (" + a.name + "=...)");
    return true;
  };
  auto duration = [&](uint32_t* ms) -> bool {
    if (!need()) return false;
    if (!parseDurationMs(a.value->text, ms)) {
      return fail(a.value->col, "invalid duration \"" + a.value->text + "\" (e.g. 300ms, 2s)");
    }
    return true;
  };
  uint32_t v = 0;
  if (a.name == "override_address") {
    if (!need()) return false;
    act.override_address = a.value->text;
  } else if (a.name == "override_port") {
    if (!need()) return false;
    if (!parseUint(a.value->text, 65535, &v)) return fail(a.value->col, "invalid port \"" + a.value->text + "\"");
    act.override_port = static_cast<uint16_t>(v);
  } else if (a.name == "network_strategy") {
    if (!need()) return false;
    act.network_strategy = a.value->text;
  } else if (a.name == "fallback_delay") {
    if (!duration(&v)) return false;
    act.fallback_delay_ms = v;
  } else if (a.name == "udp_disable_domain_unmapping") {
    return boolArg(a, &act.udp_disable_domain_unmapping);
  } else if (a.name == "udp_connect") {
    return boolArg(a, &act.udp_connect);
  } else if (a.name == "udp_timeout") {
    if (!duration(&v)) return false;
    if (v % 1000 != 0) return fail(a.value->col, "udp_timeout must be whole seconds");
    act.udp_timeout_s = v / 1000;
  } else if (a.name == "tls_fragment") {
    return boolArg(a, &act.tls_fragment);
  } else if (a.name == "tls_fragment_fallback_delay") {
    if (!duration(&v)) return false;
    act.tls_fragment_fallback_delay_ms = v;
  } else if (a.name == "tls_record_fragment") {
    return boolArg(a, &act.tls_record_fragment);
  } else {
    return fail(a.col, "unknown route option '" + a.name + "'");
  }
  return true;
}

bool Parser::action(RuleAction* out) {
  skipWs();
  if (atEnd()) return fail(col(), "expected an action after '=>'");
  *out = RuleAction{};
  if (peek() == '"') {
    Value v;
    if (!value(&v)) return false;
    out->outbound = v.text;
    return true;
  }
  uint32_t start = col();
  size_t p0 = pos_;
  while (pos_ < line_.size() && isWordChar(line_[pos_])) ++pos_;
  std::string word(line_.substr(p0, pos_ - p0));
  if (word.empty()) return fail(start, "expected an action, found " + found());
  std::vector<Arg> a;
  if (word == "reject") {
    out->type = RuleAction::Type::Reject;
    if (!args(&a, false)) return false;
    for (const auto& x : a) {
      if (x.value) return fail(x.col, "reject takes default, drop, reply and no_drop");
      if (x.name == "default" || x.name == "drop" || x.name == "reply") {
        out->reject_method = x.name;
      } else if (x.name == "no_drop") {
        out->no_drop = true;
      } else {
        return fail(x.col, "unknown reject method '" + x.name + "' (default, drop, reply, no_drop)");
      }
    }
  } else if (word == "hijack-dns") {
    out->type = RuleAction::Type::HijackDns;
  } else if (word == "sniff") {
    out->type = RuleAction::Type::Sniff;
    if (!args(&a, false)) return false;
    for (const auto& x : a) {
      if (x.name == "timeout") {
        uint32_t ms = 0;
        if (!x.value || !parseDurationMs(x.value->text, &ms)) {
          return fail(x.value ? x.value->col : x.col, "timeout needs a duration (timeout=300ms)");
        }
        out->sniff_timeout_ms = ms;
      } else if (!x.value && std::any_of(std::begin(kSniffers), std::end(kSniffers),
                                         [&](const char* s) { return x.name == s; })) {
        out->sniffers.push_back(x.name);
      } else {
        return fail(x.col, "unknown sniffer or option '" + x.name + "'");
      }
    }
  } else if (word == "resolve") {
    out->type = RuleAction::Type::Resolve;
    if (!args(&a, false)) return false;
    for (const auto& x : a) {
      uint32_t v = 0;
      if (x.name == "disable_cache") {
        if (!boolArg(x, &out->disable_cache)) return false;
        continue;
      }
      if (!x.value) return fail(x.col, x.name + " needs a value");
      if (x.name == "server") {
        out->resolve_server = x.value->text;
      } else if (x.name == "strategy") {
        const std::string& s = x.value->text;
        if (s != "prefer_ipv4" && s != "prefer_ipv6" && s != "ipv4_only" && s != "ipv6_only") {
          return fail(x.value->col, "unknown strategy \"" + s +
                                        "\" (prefer_ipv4, prefer_ipv6, ipv4_only, ipv6_only)");
        }
        out->resolve_strategy = s;
      } else if (x.name == "rewrite_ttl") {
        if (!parseUint(x.value->text, UINT32_MAX, &v)) return fail(x.value->col, "rewrite_ttl needs a number");
        out->rewrite_ttl = v;
      } else if (x.name == "client_subnet") {
        out->client_subnet = x.value->text;
      } else {
        return fail(x.col, "unknown resolve option '" + x.name + "'");
      }
    }
  } else if (word == "route-options") {
    out->type = RuleAction::Type::RouteOptions;
    if (!args(&a, true)) return false;
    for (const auto& x : a) {
      if (!routeOption(x, *out)) return false;
    }
  } else if (word == "route") {
    out->type = RuleAction::Type::Route;
    if (!args(&a, true)) return false;
    if (a[0].value) return fail(a[0].col, "route(...) starts with the outbound tag");
    out->outbound = a[0].name;
    for (size_t i = 1; i < a.size(); ++i) {
      if (!routeOption(a[i], *out)) return false;
    }
  } else {
    out->outbound = word;
  }
  if (out->type == RuleAction::Type::RouteOptions || out->type == RuleAction::Type::Route) {
    if (out->tls_fragment && out->tls_record_fragment) {
      return fail(start, "tls_fragment and tls_record_fragment cannot be combined");
    }
  }
  return true;
}

/// Checks that only make sense on the whole rule.
bool checkRule(const RuleSpec& r, std::string* why) {
  if (r.type == RuleSpec::Type::Logical) {
    for (const auto& c : r.rules) {
      if (!checkRule(c, why)) return false;
    }
    return true;
  }
  if (r.rule_set_ip_cidr_match_source && r.rule_set.empty()) {
    *why = "rule_set_ip_cidr_match_source needs a rule_set joined to it with '&&'";
    return false;
  }
  return true;
}

void Parser::parseLine(std::string_view line, uint32_t line_no, DslFile& out) {
  line_ = line;
  line_no_ = line_no;
  pos_ = 0;
  failed_ = false;
  depth_ = 0;
  if (atEnd()) return;
  uint32_t start = col();
  // `final => outbound`.
  size_t save = pos_;
  if (name() == "final" && accept("=>")) {
    if (mode_ == DslMode::RuleSet) {
      fail(start, "'final' is not allowed in a rule-set file");
      return;
    }
    skipWs();
    uint32_t tag_col = col();
    RuleAction a;
    if (!action(&a)) return;
    if (a.type != RuleAction::Type::Route || a.override_port || !a.override_address.empty()) {
      fail(tag_col, "final takes an outbound tag");
      return;
    }
    if (!atEnd()) {
      fail(col(), "unexpected " + found() + " after the final outbound");
      return;
    }
    if (out.final_outbound) {
      fail(start, "duplicate 'final' (first at line " + std::to_string(out.final_pos.line) + ")");
      return;
    }
    out.final_outbound = a.outbound;
    out.final_pos = posAt(start);
    return;
  }
  pos_ = save;
  RuleSpec rule;
  if (!orExpr(&rule)) return;
  if (mode_ == DslMode::Route) {
    if (!accept("=>")) {
      fail(col(), atEnd() ? "expected '=>' and an action at end of line"
                          : "expected '&&', '||' or '=>', found " + found());
      return;
    }
    RuleAction a;
    if (!action(&a)) return;
    if (!atEnd()) {
      fail(col(), "unexpected " + found() + " after the action");
      return;
    }
    rule.action = std::move(a);
  } else {
    if (line_.substr(pos_, 2) == "=>") {
      fail(col(), "actions ('=>') are not allowed in a rule-set file");
      return;
    }
    if (!atEnd()) {
      fail(col(), "expected '&&', '||' or end of line, found " + found());
      return;
    }
  }
  std::string why;
  if (!checkRule(rule, &why)) {
    fail(start, why);
    return;
  }
  // The rule's own position is its first character; sub-rules keep theirs.
  rule.pos = posAt(start);
  out.rules.push_back(std::move(rule));
}

// ---- writer ---------------------------------------------------------------------------------

bool needsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (!isWordChar(c)) return true;
  }
  return false;
}

std::string quote(std::string_view v) {
  if (!needsQuotes(v)) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string term(std::string_view field, const std::vector<std::string>& values) {
  std::string out(field);
  out += ':';
  if (values.size() == 1) return out + quote(values[0]);
  out += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i != 0) out += ", ";
    out += quote(values[i]);
  }
  return out + "]";
}

template <typename T>
std::vector<std::string> numbers(const std::vector<T>& v) {
  std::vector<std::string> out;
  for (auto x : v) out.push_back(std::to_string(x));
  return out;
}

std::string queryTypeName(uint16_t q) {
  for (const auto& qt : kQueryTypes) {
    if (qt.value == q) return qt.name;
  }
  return std::to_string(q);
}

/// Terms of one default rule, grouped by merge key (in kFields order).
std::vector<std::pair<uint32_t, std::string>> defaultTerms(const RuleSpec& r) {
  std::vector<std::pair<uint32_t, std::string>> out;
  auto add = [&](uint32_t key, std::string t) { out.emplace_back(key, std::move(t)); };
  for (const auto& f : kFields) {
    std::string_view n = f.name;
    if (f.strings != nullptr && !(r.*f.strings).empty()) add(f.key, term(n, r.*f.strings));
    if (f.flag != nullptr && r.*f.flag) add(f.key, std::string(n));
    if (n == "port" && !r.port.empty()) add(f.key, term(n, numbers(r.port)));
    if (n == "port_range" && !r.port_range.empty()) add(f.key, term(n, r.port_range));
    if (n == "source_port" && !r.source_port.empty()) add(f.key, term(n, numbers(r.source_port)));
    if (n == "source_port_range" && !r.source_port_range.empty()) add(f.key, term(n, r.source_port_range));
    if (n == "ip_version" && !r.ip_version.empty()) add(f.key, term(n, numbers(r.ip_version)));
    if (n == "query_type" && !r.query_type.empty()) {
      std::vector<std::string> names;
      for (auto q : r.query_type) names.push_back(queryTypeName(q));
      add(f.key, term(n, names));
    }
    if (n == "network_type" && !r.network_type.empty()) {
      std::vector<std::string> names;
      for (auto t : r.network_type) names.push_back(t < 4 ? kNetworkTypes[t] : std::to_string(t));
      add(f.key, term(n, names));
    }
  }
  // Keep the fields of one key together, in first-appearance order.
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    auto first = [&](uint32_t k) {
      return std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == k; }) - out.begin();
    };
    return first(a.first) < first(b.first);
  });
  return out;
}

/// Precedence of the written expression: 3 = atom (term or parenthesized), 2 = &&, 1 = ||.
std::string writeExpr(const RuleSpec& r, int* prec) {
  std::string body;
  int p = 3;
  if (r.type == RuleSpec::Type::Logical) {
    const char* op = r.mode == RuleSpec::Mode::And ? " && " : " || ";
    int mine = r.mode == RuleSpec::Mode::And ? 2 : 1;
    for (size_t i = 0; i < r.rules.size(); ++i) {
      int cp = 0;
      std::string c = writeExpr(r.rules[i], &cp);
      // A conjunction inside a disjunction needs no parentheses (`&&` binds tighter), which
      // keeps the nesting depth of the text no deeper than the text it came from. Every other
      // non-atom child keeps them: same-mode children must stay separate sub-rules (flattening
      // would let the parser merge them differently, which matters with rule_set).
      bool bare = r.mode == RuleSpec::Mode::Or && cp == 2;
      if (cp < 3 && !bare) c = "(" + c + ")";
      if (i != 0) body += op;
      body += c;
    }
    p = r.rules.size() > 1 ? mine : 3;
    if (r.rules.empty()) body = "any";
  } else {
    auto terms = defaultTerms(r);
    if (terms.empty()) {
      body = "any";
    } else {
      size_t groups = 0;
      for (size_t i = 0; i < terms.size();) {
        size_t j = i;
        std::string g;
        while (j < terms.size() && terms[j].first == terms[i].first) {
          if (j != i) g += " || ";
          g += terms[j].second;
          ++j;
        }
        bool multi = j - i > 1;
        if (groups != 0) body += " && ";
        body += g;
        if (multi) p = std::min(p, 1);
        ++groups;
        i = j;
      }
      if (groups > 1) {
        // Re-emit with the OR-groups parenthesized.
        body.clear();
        p = 2;
        groups = 0;
        for (size_t i = 0; i < terms.size();) {
          size_t j = i;
          std::string g;
          while (j < terms.size() && terms[j].first == terms[i].first) {
            if (j != i) g += " || ";
            g += terms[j].second;
            ++j;
          }
          if (groups != 0) body += " && ";
          body += j - i > 1 ? "(" + g + ")" : g;
          ++groups;
          i = j;
        }
      }
    }
  }
  if (r.invert) {
    body = p == 3 ? "!" + body : "!(" + body + ")";
    p = 3;
  }
  *prec = p;
  return body;
}

}  // namespace

DslFile parseDsl(std::string_view text, std::string_view file_name, DslMode mode, DiagList& diags) {
  DslFile out;
  Parser parser(file_name, mode, diags);
  uint32_t line_no = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_no;
    parser.parseLine(line, line_no, out);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string renderDiags(std::string_view text, const DiagList& diags) {
  std::string out;
  for (const auto& d : diags.all()) {
    out += d.toString() + "\n";
    out += renderSourceLine(text, d.line, d.column);
  }
  return out;
}

std::string writeDslCondition(const RuleSpec& rule) {
  int p = 0;
  return writeExpr(rule, &p);
}

std::string writeDslAction(const RuleAction& a) {
  std::vector<std::string> opts;
  auto ms = [](uint32_t v) { return v % 1000 == 0 && v != 0 ? std::to_string(v / 1000) + "s" : std::to_string(v) + "ms"; };
  if (a.type == RuleAction::Type::Route || a.type == RuleAction::Type::RouteOptions) {
    if (!a.override_address.empty()) opts.push_back("override_address=" + quote(a.override_address));
    if (a.override_port) opts.push_back("override_port=" + std::to_string(*a.override_port));
    if (!a.network_strategy.empty()) opts.push_back("network_strategy=" + quote(a.network_strategy));
    if (a.fallback_delay_ms) opts.push_back("fallback_delay=" + ms(*a.fallback_delay_ms));
    if (a.udp_disable_domain_unmapping) opts.push_back("udp_disable_domain_unmapping");
    if (a.udp_connect) opts.push_back("udp_connect");
    if (a.udp_timeout_s) opts.push_back("udp_timeout=" + std::to_string(*a.udp_timeout_s) + "s");
    if (a.tls_fragment) opts.push_back("tls_fragment");
    if (a.tls_fragment_fallback_delay_ms) {
      opts.push_back("tls_fragment_fallback_delay=" + ms(*a.tls_fragment_fallback_delay_ms));
    }
    if (a.tls_record_fragment) opts.push_back("tls_record_fragment");
  }
  auto join = [](std::string head, const std::vector<std::string>& v) {
    if (v.empty()) return head;
    head += '(';
    for (size_t i = 0; i < v.size(); ++i) head += (i ? ", " : "") + v[i];
    return head + ")";
  };
  static const char* const kKeywords[] = {"reject", "hijack-dns", "sniff", "resolve", "route-options",
                                          "route", "final", "any"};
  switch (a.type) {
    case RuleAction::Type::Route: {
      bool keyword = std::any_of(std::begin(kKeywords), std::end(kKeywords),
                                 [&](const char* k) { return a.outbound == k; });
      std::string tag = keyword ? "\"" + a.outbound + "\"" : quote(a.outbound);
      if (opts.empty()) return tag;
      opts.insert(opts.begin(), needsQuotes(a.outbound) ? tag : a.outbound);
      return join("route", opts);
    }
    case RuleAction::Type::Reject: {
      std::vector<std::string> v;
      if (a.reject_method != "default") v.push_back(a.reject_method);
      if (a.no_drop) v.push_back("no_drop");
      return join("reject", v);
    }
    case RuleAction::Type::HijackDns:
      return "hijack-dns";
    case RuleAction::Type::Sniff: {
      std::vector<std::string> v = a.sniffers;
      if (a.sniff_timeout_ms != 300) v.push_back("timeout=" + ms(a.sniff_timeout_ms));
      return join("sniff", v);
    }
    case RuleAction::Type::Resolve: {
      std::vector<std::string> v;
      if (!a.resolve_server.empty()) v.push_back("server=" + quote(a.resolve_server));
      if (!a.resolve_strategy.empty()) v.push_back("strategy=" + a.resolve_strategy);
      if (a.disable_cache) v.push_back("disable_cache");
      if (a.rewrite_ttl) v.push_back("rewrite_ttl=" + std::to_string(*a.rewrite_ttl));
      if (!a.client_subnet.empty()) v.push_back("client_subnet=" + quote(a.client_subnet));
      return join("resolve", v);
    }
    case RuleAction::Type::RouteOptions:
      return join("route-options", opts);
  }
  return {};
}

std::string writeDsl(const DslFile& file, DslMode mode) {
  std::string out;
  for (const auto& r : file.rules) {
    out += writeDslCondition(r);
    if (mode == DslMode::Route && r.action) out += " => " + writeDslAction(*r.action);
    out += '\n';
  }
  if (mode == DslMode::Route && file.final_outbound) {
    out += "final => " + quote(*file.final_outbound) + "\n";
  }
  return out;
}

}  // namespace veer::rules
