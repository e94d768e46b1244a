#include "dns/dns_rules.h"

#include <algorithm>
#include <cstring>

#include "rules/rule_json.h"

namespace veer::dns {
namespace {

// DNS rule fields sing-box has that veer's DNS rules cannot honour: the query's client address
// and port, the connection's network and protocol are not passed to DNS lookups, and the
// ip_cidr family (matched against the response in sing-box) needs the address-filter mode.
// Reported by name at their position rather than compiled into rules that silently never match.
constexpr const char* kNotForDns[] = {
    "ip_cidr", "ip_is_private", "geoip", "source_geoip", "source_ip_cidr", "source_ip_is_private",
    "source_port", "source_port_range", "port", "port_range", "network", "protocol", "client",
    "auth_user", "ip_version", "rule_set_ip_cidr_match_source"};

bool notForDns(std::string_view key) {
  for (const char* k : kNotForDns) {
    if (key == k) return true;
  }
  return false;
}

// Removes the members veer handles outside the rule parser (or refuses) from a copy of one
// rule object, reporting the refused ones. `top`: the `outbound` item is allowed (and taken out).
void strip(json::Value& v, const std::string& path, const std::string& file, bool top,
           DiagList& diags, std::vector<std::string>* outbound, bool* outbound_present) {
  if (!v.isObject()) return;
  auto& ms = v.members;
  for (auto it = ms.begin(); it != ms.end();) {
    const std::string member_path = path + "." + it->key;
    if (it->key == "outbound") {
      if (!top) {
        diags.error(file, it->value.pos.line, it->value.pos.column, member_path,
                    "\"outbound\" is supported on top-level DNS rules only (not inside logical "
                    "rules) by veer",
                    "unsupported");
      } else {
        *outbound_present = true;
        const json::Value& ov = it->value;
        auto add = [&](const json::Value& s, const std::string& p) {
          if (!s.isString() || s.str.empty()) {
            diags.error(file, s.pos.line, s.pos.column, p, "expected an outbound tag", "type");
            return;
          }
          outbound->push_back(s.str);
        };
        if (ov.isArray()) {
          for (size_t k = 0; k < ov.items.size(); ++k) {
            add(ov.items[k], member_path + "[" + std::to_string(k) + "]");
          }
        } else {
          add(ov, member_path);
        }
      }
      it = ms.erase(it);
      continue;
    }
    if (notForDns(it->key)) {
      diags.error(file, it->value.pos.line, it->value.pos.column, member_path,
                  "DNS rule field \"" + it->key + "\" is not implemented by veer", "unsupported");
      it = ms.erase(it);
      continue;
    }
    if (it->key == "rules" && it->value.isArray()) {
      for (size_t k = 0; k < it->value.items.size(); ++k) {
        strip(it->value.items[k], member_path + "[" + std::to_string(k) + "]", file, false, diags,
              nullptr, nullptr);
      }
    }
    ++it;
  }
}

}  // namespace

bool DnsRules::parse(const json::Value* rules, const std::string& file, DiagList& diags,
                     Parsed& out) {
  if (rules == nullptr || rules->isNull()) return true;
  size_t before = diags.errorCount();
  if (!rules->isArray()) {
    diags.error(file, rules->pos.line, rules->pos.column, "dns.rules",
                std::string("expected a list of rules, got ") + rules->typeName(), "type");
    return false;
  }
  for (size_t i = 0; i < rules->items.size(); ++i) {
    const std::string path = "dns.rules[" + std::to_string(i) + "]";
    json::Value copy = rules->items[i];
    std::vector<std::string> outbound;
    bool has_outbound = false;
    strip(copy, path, file, true, diags, &outbound, &has_outbound);
    bool outer_invert = false;
    if (has_outbound) {
      // `invert` negates the whole rule, the outbound item included: keep it out of the engine.
      for (auto it = copy.members.begin(); it != copy.members.end(); ++it) {
        if (it->key == "invert" && it->value.isBool()) {
          outer_invert = it->value.b;
          copy.members.erase(it);
          break;
        }
      }
    }
    rules::RuleSpec spec;
    if (!rules::parseDnsRule(copy, path, file, diags, spec)) continue;
    // Action options the rule parser accepts that DNS rules in veer do not carry out.
    if (spec.action) {
      auto err = [&](const char* key, const std::string& msg, const char* code) {
        const json::Value* m = copy.find(key);
        const json::Pos& p = m ? m->pos : copy.pos;
        diags.error(file, p.line, p.column, path + "." + key, msg, code);
      };
      if (spec.action->type == rules::RuleAction::Type::Reject &&
          spec.action->reject_method == "reply") {
        err("method", "reject method \"reply\" is for route rules (DNS: default or drop)",
            "invalid");
        continue;
      }
      if (!spec.action->resolve_strategy.empty()) {
        err("strategy",
            "DNS rule option \"strategy\" is not implemented by veer (use dns.strategy)",
            "unsupported");
        continue;
      }
    }
    out.specs.push_back(std::move(spec));
    out.outbound.push_back(std::move(outbound));
    out.outer_invert.push_back(outer_invert);
  }
  return diags.errorCount() == before;
}

std::shared_ptr<const DnsRules> DnsRules::compile(Parsed parsed,
                                                  const rules::RuleSetMap& rule_sets,
                                                  const rules::GeoSources& geo, DiagList& diags) {
  auto engine = rules::RuleEngine::compile(parsed.specs, rule_sets, geo, diags);
  if (!engine) return nullptr;
  std::shared_ptr<DnsRules> r(new DnsRules());
  r->specs_ = std::move(parsed.specs);
  r->outbound_ = std::move(parsed.outbound);
  r->outer_invert_ = std::move(parsed.outer_invert);
  r->engine_ = std::move(*engine);
  return r;
}

std::shared_ptr<const DnsRules> DnsRules::compile(const json::Value* rules,
                                                  const std::string& file,
                                                  const rules::RuleSetMap& rule_sets,
                                                  const rules::GeoSources& geo, DiagList& diags) {
  Parsed parsed;
  if (!parse(rules, file, diags, parsed)) return nullptr;
  return compile(std::move(parsed), rule_sets, geo, diags);
}

bool DnsRules::outboundMatches(size_t i, std::string_view outbound) const {
  for (const auto& o : outbound_[i]) {
    if (o == "any" ? !outbound.empty() : o == outbound) return true;
  }
  return false;
}

std::optional<DnsRules::Match> DnsRules::match(const QueryInfo& q, size_t start) const {
  rules::MatchInput in;
  in.domain = q.domain;
  in.query_type = q.type;
  in.inbound = q.inbound;
  // network, ports and addresses stay unset: a rule set's items of those kinds never match a
  // query (the same fields in DNS rules themselves are refused when parsing).
  const size_t n = specs_.size();
  size_t i = start;
  while (i < n) {
    rules::MatchResult r = engine_->matchFrom(in, i);
    size_t j = r.matched() ? r.index : n;
    // Rules skipped by the engine did not match on their own fields; an inverted rule with an
    // outbound item is then true (!(false && outbound)).
    for (size_t k = i; k < j; ++k) {
      if (outer_invert_[k]) return Match{k, engine_->action(k)};
    }
    if (j == n) return std::nullopt;
    if (!outbound_[j].empty()) {
      bool ok = outboundMatches(j, q.outbound);
      if (outer_invert_[j]) ok = !ok;
      if (!ok) {
        i = j + 1;
        continue;
      }
    }
    return Match{j, r.action};
  }
  return std::nullopt;
}

std::string DnsRules::describe(size_t i) const {
  // The engine writes route actions with their outbound; DNS actions name a server.
  std::string s = engine_->describe(i);
  if (size_t arrow = s.rfind(" => "); arrow != std::string::npos) s.resize(arrow);
  if (const auto& a = specs_[i].action) {
    std::string act;
    switch (a->type) {
      case rules::RuleAction::Type::Reject: act = "reject(" + a->reject_method + ")"; break;
      case rules::RuleAction::Type::RouteOptions: act = "route-options("; break;
      default: act = "route(" + a->resolve_server; break;
    }
    if (a->type != rules::RuleAction::Type::Reject) {
      std::string opts;
      if (a->disable_cache) opts += " disable_cache";
      if (a->rewrite_ttl) opts += " rewrite_ttl=" + std::to_string(*a->rewrite_ttl);
      if (!a->client_subnet.empty()) opts += " client_subnet=" + a->client_subnet;
      if (act.back() == '(' && !opts.empty()) opts.erase(0, 1);
      act += opts + ")";
    }
    s += " => " + act;
  }
  if (!outbound_[i].empty()) {
    std::string ob = "outbound=[";
    for (size_t k = 0; k < outbound_[i].size(); ++k) ob += (k ? " " : "") + outbound_[i][k];
    ob += "]";
    if (outer_invert_[i]) ob += " (whole rule inverted)";
    s = ob + " " + s;
  }
  return s;
}

}  // namespace veer::dns
