#include "rules/rule_engine.h"

#include <algorithm>
#include <cctype>

#include "rules/item_base.h"

namespace veer::rules {

namespace {

enum Group : uint8_t { kSrcAddr = 0, kSrcPort = 1, kDstAddr = 2, kDstPort = 3, kGroups = 4 };

/// sing-box's per-rule match cache (InboundContext.SourceAddressMatch & co, DidMatch).
struct Flags {
  bool group[kGroups] = {false, false, false, false};
  bool did_match = false;
};

struct CompiledSet;

struct Node {
  bool logical = false;
  bool invert = false;
  bool empty = false;
  // Default rules.
  std::vector<ItemPtr> groups[kGroups];
  std::vector<ItemPtr> and_items;
  std::vector<const CompiledSet*> sets;
  std::vector<std::string> set_tags;
  bool set_match_source = false;
  // Logical rules.
  RuleSpec::Mode mode = RuleSpec::Mode::And;
  std::vector<Node> children;
};

struct CompiledSet {
  std::string tag;
  std::vector<Node> rules;
};

struct TopRule {
  Node node;
  std::optional<RuleAction> action;
  SourcePos pos;
  std::string description;
  bool needs_ip = false;    // has destination-IP items somewhere (incl. its rule sets)
  bool monotone = true;     // no invert anywhere: matching more facts can only add matches
};

std::string lowerCopy(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool needsIp(const Node& n, bool match_source) {
  if (n.logical) {
    for (const auto& c : n.children) {
      if (needsIp(c, match_source)) return true;
    }
    return false;
  }
  for (const auto& it : n.groups[kDstAddr]) {
    if (!it->needsDestinationIp()) continue;
    // ip_cidr follows rule_set_ip_cidr_match_source; geoip and ip_is_private do not.
    if (match_source && dynamic_cast<const IpCidrItem*>(it.get()) != nullptr) continue;
    return true;
  }
  for (const CompiledSet* s : n.sets) {
    for (const auto& r : s->rules) {
      if (needsIp(r, match_source || n.set_match_source)) return true;
    }
  }
  return false;
}

bool hasInvert(const Node& n) {
  if (n.invert) return true;
  for (const auto& c : n.children) {
    if (hasInvert(c)) return true;
  }
  for (const CompiledSet* s : n.sets) {
    for (const auto& r : s->rules) {
      if (hasInvert(r)) return true;
    }
  }
  return false;
}

bool evalNode(const Node& n, const MatchInput& in, const EvalEnv& env, Flags& f, std::string* why);

/// One rule set: each headless rule starts from the flags at entry (see the DECISION in
/// rule_engine.h); the flags of the matching rule are kept.
bool evalSet(const CompiledSet& s, const MatchInput& in, const EvalEnv& env, Flags& f,
             std::string* why) {
  const Flags entry = f;
  size_t mark = why != nullptr ? why->size() : 0;
  for (const Node& r : s.rules) {
    f = entry;
    if (why != nullptr) *why += "rule_set " + s.tag + ": ";
    if (evalNode(r, in, env, f, why)) return true;
    if (why != nullptr) why->resize(mark);
  }
  f = entry;
  return false;
}

bool evalDefault(const Node& n, const MatchInput& in, const EvalEnv& env, Flags& f,
                 std::string* why) {
  if (n.empty) {
    if (why != nullptr && why->empty()) *why += "(no conditions)";
    return true;
  }
  size_t mark = why != nullptr ? why->size() : 0;
  auto fail = [&]() {
    if (why != nullptr) {
      why->resize(mark);
      if (n.invert) *why += "(inverted rule did not match)";
    }
    return n.invert;
  };
  // Runs one item; with a trace, joins the explanations with ", " and drops a failed item's.
  auto tryItem = [&](auto&& run) {
    if (why == nullptr) return run();
    size_t before = why->size();
    if (before > mark) *why += ", ";
    size_t start = why->size();
    bool ok = run();
    if (!ok || why->size() == start) why->resize(before);
    return ok;
  };
  for (int g = 0; g < kGroups; ++g) {
    if (n.groups[g].empty() || f.group[g]) continue;
    f.did_match = true;
    for (const auto& item : n.groups[g]) {
      if (tryItem([&] { return item->match(in, env, why); })) {
        f.group[g] = true;
        break;
      }
    }
  }
  for (const auto& item : n.and_items) {
    f.did_match = true;
    if (!tryItem([&] { return item->match(in, env, why); })) return fail();
  }
  if (!n.sets.empty()) {
    f.did_match = true;
    EvalEnv sub = env;
    sub.ip_cidr_match_source = n.set_match_source;
    bool any = tryItem([&] {
      for (const CompiledSet* s : n.sets) {
        if (evalSet(*s, in, sub, f, why)) return true;
      }
      return false;
    });
    if (!any) return fail();
  }
  for (int g = 0; g < kGroups; ++g) {
    if (!n.groups[g].empty() && !f.group[g]) return fail();
  }
  if (!f.did_match) return true;
  if (n.invert) {
    if (why != nullptr) why->resize(mark);
    return false;
  }
  return true;
}

bool evalNode(const Node& n, const MatchInput& in, const EvalEnv& env, Flags& f, std::string* why) {
  if (!n.logical) return evalDefault(n, in, env, f, why);
  size_t mark = why != nullptr ? why->size() : 0;
  bool result = n.mode == RuleSpec::Mode::And;
  for (size_t i = 0; i < n.children.size(); ++i) {
    Flags fresh;
    size_t before = why != nullptr ? why->size() : 0;
    if (why != nullptr && before > mark) *why += n.mode == RuleSpec::Mode::And ? " && " : "";
    size_t start = why != nullptr ? why->size() : 0;
    bool m = evalNode(n.children[i], in, env, fresh, why);
    if (why != nullptr && m && why->size() > start) {
      why->insert(start, "(");
      *why += ")";
    }
    if (n.mode == RuleSpec::Mode::And) {
      if (!m) {
        result = false;
        break;
      }
    } else {
      if (why != nullptr && !m) why->resize(before);
      if (m) {
        result = true;
        break;
      }
    }
  }
  bool out = result != n.invert;
  if (why != nullptr) {
    if (!out) {
      why->resize(mark);
    } else if (n.invert) {
      why->resize(mark);
      *why += "(inverted logical rule did not match)";
    }
  }
  return out;
}

// ---- describe -------------------------------------------------------------------------------

void appendList(std::string& out, std::string_view field, const std::vector<std::string>& v) {
  if (v.empty()) return;
  if (!out.empty()) out += ' ';
  out += field;
  out += '=';
  if (v.size() == 1) {
    out += v[0];
    return;
  }
  out += '[';
  size_t shown = std::min<size_t>(v.size(), 8);
  for (size_t i = 0; i < shown; ++i) {
    if (i != 0) out += ' ';
    out += v[i];
  }
  if (shown < v.size()) out += " ... +" + std::to_string(v.size() - shown);
  out += ']';
}

template <typename T>
std::vector<std::string> toStrings(const std::vector<T>& v) {
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const auto& x : v) out.push_back(std::to_string(x));
  return out;
}

std::string describeConditions(const RuleSpec& r) {
  std::string out;
  if (r.type == RuleSpec::Type::Logical) {
    const char* op = r.mode == RuleSpec::Mode::And ? " && " : " || ";
    for (size_t i = 0; i < r.rules.size(); ++i) {
      if (i != 0) out += op;
      out += "(" + describeConditions(r.rules[i]) + ")";
    }
  } else {
    appendList(out, "inbound", r.inbound);
    appendList(out, "ip_version", toStrings(r.ip_version));
    appendList(out, "network", r.network);
    appendList(out, "auth_user", r.auth_user);
    appendList(out, "protocol", r.protocol);
    appendList(out, "client", r.client);
    appendList(out, "query_type", toStrings(r.query_type));
    appendList(out, "domain", r.domain);
    appendList(out, "domain_suffix", r.domain_suffix);
    appendList(out, "domain_keyword", r.domain_keyword);
    appendList(out, "domain_regex", r.domain_regex);
    appendList(out, "geosite", r.geosite);
    appendList(out, "geoip", r.geoip);
    appendList(out, "ip_cidr", r.ip_cidr);
    if (r.ip_is_private) appendList(out, "ip_is_private", {"true"});
    appendList(out, "adguard_domain", r.adguard_domain);
    appendList(out, "source_geoip", r.source_geoip);
    appendList(out, "source_ip_cidr", r.source_ip_cidr);
    if (r.source_ip_is_private) appendList(out, "source_ip_is_private", {"true"});
    appendList(out, "source_port", toStrings(r.source_port));
    appendList(out, "source_port_range", r.source_port_range);
    appendList(out, "port", toStrings(r.port));
    appendList(out, "port_range", r.port_range);
    appendList(out, "process_name", r.process_name);
    appendList(out, "process_path", r.process_path);
    appendList(out, "process_path_regex", r.process_path_regex);
    appendList(out, "package_name", r.package_name);
    appendList(out, "wifi_ssid", r.wifi_ssid);
    appendList(out, "wifi_bssid", r.wifi_bssid);
    appendList(out, "network_type", toStrings(r.network_type));
    if (r.network_is_expensive) appendList(out, "network_is_expensive", {"true"});
    if (r.network_is_constrained) appendList(out, "network_is_constrained", {"true"});
    appendList(out, "rule_set", r.rule_set);
    if (r.rule_set_ip_cidr_match_source) appendList(out, "rule_set_ip_cidr_match_source", {"true"});
    if (out.empty()) out = "(any)";
  }
  if (r.invert) out = "!(" + out + ")";
  return out;
}

// ---- compiler -------------------------------------------------------------------------------

/// The one group a headless rule tests, or -1 when it is logical, inverted, empty, or uses AND
/// items or fields of several groups.
int singleGroup(const RuleSpec& r) {
  if (r.type != RuleSpec::Type::Default || r.invert) return -1;
  bool dst = !r.domain.empty() || !r.domain_suffix.empty() || !r.domain_keyword.empty() ||
             !r.domain_regex.empty() || !r.geosite.empty() || !r.geoip.empty() ||
             !r.ip_cidr.empty() || r.ip_is_private || !r.adguard_domain.empty();
  bool src = !r.source_ip_cidr.empty() || r.source_ip_is_private || !r.source_geoip.empty();
  bool dport = !r.port.empty() || !r.port_range.empty();
  bool sport = !r.source_port.empty() || !r.source_port_range.empty();
  bool other = !r.inbound.empty() || !r.ip_version.empty() || !r.network.empty() ||
               !r.auth_user.empty() || !r.protocol.empty() || !r.client.empty() ||
               !r.query_type.empty() || !r.rule_set.empty() || !r.process_name.empty() ||
               !r.process_path.empty() || !r.process_path_regex.empty() ||
               !r.package_name.empty() || !r.wifi_ssid.empty() || !r.wifi_bssid.empty() ||
               !r.network_type.empty() || r.network_is_expensive || r.network_is_constrained;
  if (other || dst + src + dport + sport != 1) return -1;
  return dst ? kDstAddr : src ? kSrcAddr : dport ? kDstPort : kSrcPort;
}

/// True when every value of `r` compiles, so that merging it cannot hide the position of an
/// error (a rule with a bad value stays separate and is reported at its own position).
bool valuesValid(const RuleSpec& r) {
  auto nonEmpty = [](const std::vector<std::string>& v) {
    return std::none_of(v.begin(), v.end(), [](const std::string& s) { return s.empty(); });
  };
  if (!nonEmpty(r.domain) || !nonEmpty(r.domain_suffix) || !nonEmpty(r.domain_keyword) ||
      !nonEmpty(r.geosite) || !nonEmpty(r.geoip) || !nonEmpty(r.source_geoip)) {
    return false;
  }
  IpAddress a, b;
  for (const auto* list : {&r.ip_cidr, &r.source_ip_cidr}) {
    for (const auto& c : *list) {
      if (!CidrSet::parsePrefix(c, &a, &b)) return false;
    }
  }
  uint16_t lo, hi;
  for (const auto* list : {&r.port_range, &r.source_port_range}) {
    for (const auto& p : *list) {
      if (!PortSet::parseRange(p, &lo, &hi)) return false;
    }
  }
  for (const auto& re : r.domain_regex) {
    if (!RegexItem::checkPattern(re).empty()) return false;
  }
  return true;
}

template <typename T>
void appendAll(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

/// Rule sets written one item per rule (a DSL rule-set file, or JSON with one domain per rule)
/// would otherwise compile to thousands of tiny rules scanned one after another. Adjacent
/// headless rules that test only the same single group are ORed into one rule: a set matches
/// when any of its rules does, such a rule only ever sets that group's flag, and keeping runs
/// adjacent keeps the first-match order between different groups, so the merged set decides
/// and flags exactly like the original one.
std::vector<RuleSpec> mergeHeadless(const std::vector<RuleSpec>& rules) {
  std::vector<RuleSpec> out;
  int last = -1;
  for (const auto& r : rules) {
    int g = singleGroup(r);
    if (g >= 0 && !valuesValid(r)) g = -1;
    if (g >= 0 && g == last) {
      RuleSpec& m = out.back();
      appendAll(m.domain, r.domain);
      appendAll(m.domain_suffix, r.domain_suffix);
      appendAll(m.domain_keyword, r.domain_keyword);
      appendAll(m.domain_regex, r.domain_regex);
      appendAll(m.geosite, r.geosite);
      appendAll(m.geoip, r.geoip);
      appendAll(m.ip_cidr, r.ip_cidr);
      m.ip_is_private = m.ip_is_private || r.ip_is_private;
      appendAll(m.adguard_domain, r.adguard_domain);
      appendAll(m.source_ip_cidr, r.source_ip_cidr);
      m.source_ip_is_private = m.source_ip_is_private || r.source_ip_is_private;
      appendAll(m.source_geoip, r.source_geoip);
      appendAll(m.port, r.port);
      appendAll(m.port_range, r.port_range);
      appendAll(m.source_port, r.source_port);
      appendAll(m.source_port_range, r.source_port_range);
      continue;
    }
    out.push_back(r);
    last = g;
  }
  return out;
}

class Compiler {
 public:
  Compiler(const RuleSetMap& sets, const GeoSources& sources, DiagList& diags)
      : sets_(sets), sources_(sources), diags_(diags) {}

  Node compileRule(const RuleSpec& spec, bool in_set, const std::string& set_tag);
  std::vector<std::unique_ptr<CompiledSet>> takeSets() { return std::move(compiled_); }

 private:
  void error(const SourcePos& pos, const std::string& msg, const char* code = "rule") {
    diags_.error(pos.file, pos.line, pos.column, pos.path, msg, code);
  }
  void warning(const SourcePos& pos, const std::string& msg, const char* code) {
    diags_.warning(pos.file, pos.line, pos.column, pos.path, msg, code);
  }
  void compileDefault(const RuleSpec& spec, Node& n, bool in_set);
  const CompiledSet* ruleSet(const std::string& tag, const SourcePos& pos);

  const RuleSetMap& sets_;
  GeoSources sources_;
  DiagList& diags_;
  std::vector<std::unique_ptr<CompiledSet>> compiled_;
  std::map<std::string, const CompiledSet*, std::less<>> by_tag_;
};

const CompiledSet* Compiler::ruleSet(const std::string& tag, const SourcePos& pos) {
  if (auto it = by_tag_.find(tag); it != by_tag_.end()) return it->second;
  auto src = sets_.find(tag);
  if (src == sets_.end()) {
    error(pos, "rule-set not found: " + tag, "unknown-rule-set");
    return nullptr;
  }
  auto set = std::make_unique<CompiledSet>();
  set->tag = tag;
  for (const auto& r : mergeHeadless(src->second)) set->rules.push_back(compileRule(r, true, tag));
  const CompiledSet* p = set.get();
  compiled_.push_back(std::move(set));
  by_tag_[tag] = p;
  return p;
}

Node Compiler::compileRule(const RuleSpec& spec, bool in_set, const std::string& set_tag) {
  Node n;
  n.invert = spec.invert;
  if (spec.type == RuleSpec::Type::Logical) {
    n.logical = true;
    n.mode = spec.mode;
    if (spec.rules.empty()) error(spec.pos, "logical rule without sub-rules", "empty-logical");
    for (const auto& c : spec.rules) n.children.push_back(compileRule(c, in_set, set_tag));
    return n;
  }
  compileDefault(spec, n, in_set);
  return n;
}

void Compiler::compileDefault(const RuleSpec& spec, Node& n, bool in_set) {
  const SourcePos& pos = spec.pos;
  // Destination address group: domain matchers (+ geosite), then IP items.
  Origins origins;
  DomainSet domains;
  AhoCorasick keywords;
  auto regex = std::make_unique<RegexItem>();
  for (const auto& d : spec.domain) {
    if (d.empty()) error(pos, "empty domain item", "empty-value");
    domains.add(d, DomainSet::Kind::Exact, 0);
  }
  for (const auto& d : spec.domain_suffix) {
    if (d.empty() || d == ".") error(pos, "empty domain_suffix item", "empty-value");
    domains.add(d, DomainSet::Kind::Suffix, 0);
  }
  for (const auto& k : spec.domain_keyword) {
    if (k.empty()) error(pos, "empty domain_keyword item", "empty-value");
    keywords.add(lowerCopy(k), 0);
  }
  for (const auto& r : spec.domain_regex) {
    auto st = regex->add(r, 0);
    if (!st) error(pos, "domain_regex \"" + r + "\": " + st.error().message(), "bad-regex");
  }
  if (!spec.geosite.empty()) {
    if (sources_.geosite == nullptr) {
      error(pos, "geosite is used but no geosite database is configured", "no-geosite");
    } else {
      for (const auto& code_raw : spec.geosite) {
        std::string code = lowerCopy(code_raw);
        auto items = sources_.geosite->load(code);
        if (!items) {
          error(pos, "geosite:" + code + ": " + items.error().message(), "unknown-geosite");
          continue;
        }
        origins.geosite_codes.push_back(code);
        uint32_t origin = static_cast<uint32_t>(origins.geosite_codes.size());
        for (const auto& it : *items) {
          switch (it.type) {
            case GeositeItem::Type::Domain:
              domains.add(it.value, DomainSet::Kind::Exact, origin);
              break;
            case GeositeItem::Type::Suffix:
              domains.add(it.value, DomainSet::Kind::Suffix, origin);
              break;
            case GeositeItem::Type::Keyword:
              keywords.add(lowerCopy(it.value), origin);
              break;
            case GeositeItem::Type::Regex: {
              auto st = regex->add(it.value, origin);
              if (!st) {
                error(pos, "geosite:" + code + " regex \"" + it.value + "\": " + st.error().message(),
                      "bad-regex");
              }
              break;
            }
          }
        }
      }
    }
  }
  auto& dst = n.groups[kDstAddr];
  if (!domains.empty()) {
    domains.finalize();
    dst.push_back(std::make_unique<DomainItem>(std::move(domains), origins));
  }
  if (!keywords.empty()) {
    keywords.finalize();
    dst.push_back(std::make_unique<KeywordItem>(std::move(keywords), origins));
  }
  auto addCidr = [&](const std::vector<std::string>& list, bool source, std::vector<ItemPtr>& group) {
    if (list.empty()) return;
    CidrSet set;
    for (const auto& c : list) {
      auto st = set.add(c);
      if (!st) error(pos, (source ? "source_ip_cidr: " : "ip_cidr: ") + st.error().message(), "bad-cidr");
    }
    set.finalize();
    group.push_back(std::make_unique<IpCidrItem>(std::move(set), list, source));
  };
  addCidr(spec.ip_cidr, false, dst);
  if (spec.ip_is_private) dst.push_back(std::make_unique<IpPrivateItem>(false));
  if (!regex->empty()) {
    auto st = regex->finalize();
    if (!st) error(pos, st.error().message(), "bad-regex");
    regex->setOrigins(origins);
    dst.push_back(std::move(regex));
  }
  auto addGeoip = [&](const std::vector<std::string>& codes, bool source, std::vector<ItemPtr>& group) {
    if (codes.empty()) return;
    bool only_private = std::all_of(codes.begin(), codes.end(),
                                    [](const std::string& c) { return lowerCopy(c) == "private"; });
    if (!only_private && sources_.geoip == nullptr) {
      error(pos, std::string(source ? "source_geoip" : "geoip") +
                     " is used but no geoip database is configured", "no-geoip");
    }
    for (const auto& c : codes) {
      if (c.empty()) error(pos, "empty geoip code", "empty-value");
    }
    group.push_back(std::make_unique<GeoipItem>(codes, sources_.geoip, source));
  };
  addGeoip(spec.geoip, false, dst);
  if (!spec.adguard_domain.empty()) {
    warning(pos, "adguard_domain is not supported by veer; this item never matches", "unsupported-field");
    dst.push_back(std::make_unique<NeverItem>("adguard_domain"));
  }

  // Source address group.
  addCidr(spec.source_ip_cidr, true, n.groups[kSrcAddr]);
  if (spec.source_ip_is_private) n.groups[kSrcAddr].push_back(std::make_unique<IpPrivateItem>(true));
  addGeoip(spec.source_geoip, true, n.groups[kSrcAddr]);

  // Port groups.
  auto addPorts = [&](const std::vector<uint16_t>& ports, const std::vector<std::string>& ranges,
                      bool source, std::vector<ItemPtr>& group) {
    if (ports.empty() && ranges.empty()) return;
    PortSet set;
    for (uint16_t p : ports) set.add(p, p);
    for (const auto& r : ranges) {
      uint16_t lo = 0, hi = 0;
      if (!PortSet::parseRange(r, &lo, &hi)) {
        error(pos, std::string(source ? "source_port_range" : "port_range") + ": bad range \"" + r + "\"",
              "bad-port-range");
        continue;
      }
      set.add(lo, hi);
    }
    set.finalize();
    group.push_back(std::make_unique<PortItem>(std::move(set), source));
  };
  addPorts(spec.port, spec.port_range, false, n.groups[kDstPort]);
  addPorts(spec.source_port, spec.source_port_range, true, n.groups[kSrcPort]);

  // AND items.
  auto addStrings = [&](std::string_view field, const std::vector<std::string>& values,
                        std::string_view MatchInput::*member, bool lower) {
    if (values.empty()) return;
    std::vector<std::string> v;
    for (const auto& s : values) v.push_back(lower ? lowerCopy(s) : s);
    n.and_items.push_back(std::make_unique<StringItem>(field, std::move(v), member));
  };
  addStrings("inbound", spec.inbound, &MatchInput::inbound, false);
  if (!spec.ip_version.empty()) {
    for (int v : spec.ip_version) {
      if (v != 4 && v != 6) error(pos, "ip_version must be 4 or 6, not " + std::to_string(v), "bad-value");
    }
    n.and_items.push_back(std::make_unique<IpVersionItem>(spec.ip_version));
  }
  for (const auto& net : spec.network) {
    std::string l = lowerCopy(net);
    if (l != "tcp" && l != "udp" && l != "icmp") error(pos, "unknown network \"" + net + "\"", "bad-value");
  }
  addStrings("network", spec.network, &MatchInput::network, true);
  addStrings("auth_user", spec.auth_user, &MatchInput::auth_user, false);
  addStrings("protocol", spec.protocol, &MatchInput::protocol, true);
  addStrings("client", spec.client, &MatchInput::client, true);
  if (!spec.query_type.empty()) n.and_items.push_back(std::make_unique<QueryTypeItem>(spec.query_type));
  auto never = [&](bool used, std::string_view field) {
    if (!used) return;
    warning(pos, std::string(field) + " cannot be matched on a router; this rule never matches",
            "unsupported-field");
    n.and_items.push_back(std::make_unique<NeverItem>(field));
  };
  never(!spec.process_name.empty(), "process_name");
  never(!spec.process_path.empty(), "process_path");
  never(!spec.process_path_regex.empty(), "process_path_regex");
  never(!spec.package_name.empty(), "package_name");
  never(!spec.wifi_ssid.empty(), "wifi_ssid");
  never(!spec.wifi_bssid.empty(), "wifi_bssid");
  never(!spec.network_type.empty(), "network_type");
  never(spec.network_is_expensive, "network_is_expensive");
  never(spec.network_is_constrained, "network_is_constrained");

  if (!spec.rule_set.empty()) {
    if (in_set) {
      error(pos, "rule_set cannot be used inside a rule set", "nested-rule-set");
    } else {
      for (const auto& tag : spec.rule_set) {
        if (const CompiledSet* s = ruleSet(tag, pos)) {
          n.sets.push_back(s);
          n.set_tags.push_back(tag);
        }
      }
      n.set_match_source = spec.rule_set_ip_cidr_match_source;
    }
  }
  bool any = !n.and_items.empty() || !n.sets.empty();
  for (const auto& g : n.groups) any = any || !g.empty();
  // A rule whose rule_set tags all failed to resolve must not turn into a catch-all.
  n.empty = !any && spec.rule_set.empty();
}

}  // namespace

// ---- RuleEngine -----------------------------------------------------------------------------

struct RuleEngine::Impl {
  std::vector<TopRule> rules;
  std::vector<std::unique_ptr<CompiledSet>> sets;
};

RuleEngine::RuleEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RuleEngine::~RuleEngine() = default;

Result<std::unique_ptr<RuleEngine>> RuleEngine::compile(const std::vector<RuleSpec>& rules,
                                                         const RuleSetMap& rule_sets,
                                                         const GeoSources& sources,
                                                         DiagList& diags) {
  size_t errors_before = diags.errorCount();
  auto impl = std::make_unique<Impl>();
  Compiler c(rule_sets, sources, diags);
  for (const auto& spec : rules) {
    TopRule r;
    r.node = c.compileRule(spec, false, "");
    r.action = spec.action;
    r.pos = spec.pos;
    r.description = describeRule(spec);
    impl->rules.push_back(std::move(r));
  }
  impl->sets = c.takeSets();
  for (auto& r : impl->rules) {
    r.needs_ip = needsIp(r.node, false);
    r.monotone = !hasInvert(r.node);
  }
  size_t errors = diags.errorCount() - errors_before;
  if (errors != 0) {
    return unexpected("rules: " + std::to_string(errors) + " error" + (errors == 1 ? "" : "s"));
  }
  return std::unique_ptr<RuleEngine>(new RuleEngine(std::move(impl)));
}

MatchResult RuleEngine::matchFrom(const MatchInput& in, size_t start_index, Trace* trace) const {
  const auto& rules = impl_->rules;
  std::string why;
  std::string* w = trace != nullptr ? &why : nullptr;
  auto step = [&](size_t i, TraceStep::Outcome o) {
    if (trace == nullptr) return;
    TraceStep s;
    s.index = i;
    s.pos = rules[i].pos;
    s.outcome = o;
    if (o == TraceStep::Outcome::Matched) s.detail = why;
    s.rule = rules[i].description;
    trace->steps.push_back(std::move(s));
  };
  auto matched = [&](size_t i) {
    step(i, TraceStep::Outcome::Matched);
    const RuleAction* a = rules[i].action ? &*rules[i].action : nullptr;
    return MatchResult{MatchResult::Status::Matched, i, a};
  };
  const EvalEnv plain;
  for (size_t i = start_index; i < rules.size(); ++i) {
    const TopRule& r = rules[i];
    why.clear();
    if (in.on_demand_resolve && r.needs_ip && !in.domain.empty() && !in.hasDestinationIp()) {
      // Resolve only when the rule is reached and only when the answer can change the outcome:
      // a monotone rule that matches without addresses needs none, and one that cannot match
      // even if every IP item matched is skipped.
      bool need = true;
      if (r.monotone) {
        Flags f;
        if (evalNode(r.node, in, plain, f, w)) return matched(i);
        EvalEnv optimistic;
        optimistic.assume_destination_ip = true;
        Flags f2;
        need = evalNode(r.node, in, optimistic, f2, nullptr);
      }
      if (need) {
        step(i, TraceStep::Outcome::NeedResolve);
        return MatchResult{MatchResult::Status::NeedResolve, i, nullptr};
      }
      step(i, TraceStep::Outcome::NoMatch);
      continue;
    }
    Flags f;
    if (evalNode(r.node, in, plain, f, w)) return matched(i);
    step(i, TraceStep::Outcome::NoMatch);
  }
  return MatchResult{};
}

size_t RuleEngine::size() const { return impl_->rules.size(); }

const RuleAction* RuleEngine::action(size_t index) const {
  const auto& a = impl_->rules[index].action;
  return a ? &*a : nullptr;
}

const SourcePos& RuleEngine::pos(size_t index) const { return impl_->rules[index].pos; }

const std::string& RuleEngine::describe(size_t index) const {
  return impl_->rules[index].description;
}

namespace {
void describeNode(const Node& n, std::string& out) {
  size_t start = out.size();
  if (n.logical) {
    const char* op = n.mode == RuleSpec::Mode::And ? " && " : " || ";
    for (size_t i = 0; i < n.children.size(); ++i) {
      if (i != 0) out += op;
      out += "(";
      describeNode(n.children[i], out);
      out += ")";
    }
  } else if (n.empty) {
    out += "any";
  } else {
    bool first = true;
    auto sep = [&](const char* s) {
      if (!first) out += s;
      first = false;
    };
    for (const auto& g : n.groups) {
      if (g.empty()) continue;
      sep(" && ");
      if (g.size() > 1) out += "(";
      for (size_t i = 0; i < g.size(); ++i) {
        if (i != 0) out += " || ";
        g[i]->describe(out);
      }
      if (g.size() > 1) out += ")";
    }
    for (const auto& it : n.and_items) {
      sep(" && ");
      it->describe(out);
    }
    if (!n.set_tags.empty()) {
      sep(" && ");
      out += "rule_set=[";
      for (size_t i = 0; i < n.set_tags.size(); ++i) out += (i ? " " : "") + n.set_tags[i];
      out += n.set_match_source ? "] (ip_cidr matches source)" : "]";
    }
  }
  if (n.invert) {
    out.insert(start, "!(");
    out += ")";
  }
}

size_t nodeMemory(const Node& n) {
  size_t total = sizeof(Node);
  for (const auto& g : n.groups) {
    for (const auto& it : g) total += it->memoryBytes();
  }
  for (const auto& it : n.and_items) total += it->memoryBytes();
  for (const auto& c : n.children) total += nodeMemory(c);
  return total;
}
}  // namespace

size_t RuleEngine::ruleSetRuleCount(std::string_view tag) const {
  for (const auto& s : impl_->sets) {
    if (s->tag == tag) return s->rules.size();
  }
  return 0;
}

std::string RuleEngine::describeCompiled(size_t index) const {
  std::string out;
  describeNode(impl_->rules[index].node, out);
  return out;
}

size_t RuleEngine::memoryBytes() const {
  size_t total = 0;
  for (const auto& r : impl_->rules) total += nodeMemory(r.node) + r.description.capacity();
  for (const auto& s : impl_->sets) {
    for (const auto& r : s->rules) total += nodeMemory(r);
  }
  return total;
}

std::string describeAction(const RuleAction& a) {
  auto opts = [&](std::string& out) {
    auto add = [&](const std::string& kv) {
      if (out.back() != '(') out += ' ';
      out += kv;
    };
    if (!a.override_address.empty()) add("override_address=" + a.override_address);
    if (a.override_port) add("override_port=" + std::to_string(*a.override_port));
    if (!a.network_strategy.empty()) add("network_strategy=" + a.network_strategy);
    if (a.fallback_delay_ms) add("fallback_delay=" + std::to_string(*a.fallback_delay_ms) + "ms");
    if (a.udp_disable_domain_unmapping) add("udp_disable_domain_unmapping");
    if (a.udp_connect) add("udp_connect");
    if (a.udp_timeout_s) add("udp_timeout=" + std::to_string(*a.udp_timeout_s) + "s");
    if (a.tls_fragment) add("tls_fragment");
    if (a.tls_fragment_fallback_delay_ms) {
      add("tls_fragment_fallback_delay=" + std::to_string(*a.tls_fragment_fallback_delay_ms) + "ms");
    }
    if (a.tls_record_fragment) add("tls_record_fragment");
  };
  std::string out;
  switch (a.type) {
    case RuleAction::Type::Route:
      out = "route(" + a.outbound;
      opts(out);
      return out + ")";
    case RuleAction::Type::Reject:
      if (a.reject_method == "default" && !a.no_drop) return "reject";
      return "reject(" + a.reject_method + (a.no_drop ? " no_drop" : "") + ")";
    case RuleAction::Type::HijackDns:
      return "hijack-dns";
    case RuleAction::Type::Sniff: {
      out = "sniff(";
      for (const auto& s : a.sniffers) out += (out.back() == '(' ? "" : " ") + s;
      if (a.sniff_timeout_ms != 300) {
        out += (out.back() == '(' ? "" : " ") + std::string("timeout=") +
               std::to_string(a.sniff_timeout_ms) + "ms";
      }
      return out.back() == '(' ? "sniff" : out + ")";
    }
    case RuleAction::Type::Resolve: {
      out = "resolve(";
      auto add = [&](const std::string& kv) { out += (out.back() == '(' ? "" : " ") + kv; };
      if (!a.resolve_server.empty()) add("server=" + a.resolve_server);
      if (!a.resolve_strategy.empty()) add("strategy=" + a.resolve_strategy);
      if (a.disable_cache) add("disable_cache");
      if (a.rewrite_ttl) add("rewrite_ttl=" + std::to_string(*a.rewrite_ttl));
      if (!a.client_subnet.empty()) add("client_subnet=" + a.client_subnet);
      return out.back() == '(' ? "resolve" : out + ")";
    }
    case RuleAction::Type::RouteOptions:
      out = "route-options(";
      opts(out);
      return out + ")";
  }
  return out;
}

std::string describeRule(const RuleSpec& rule) {
  std::string out = describeConditions(rule);
  if (rule.action) out += " => " + describeAction(*rule.action);
  return out;
}

}  // namespace veer::rules
