// RuleSpec <-> sing-box JSON for the three rule shapes sing-box has:
//   - headless rules (rule-set sources, option/rule_set.go DefaultHeadlessRule/LogicalHeadlessRule),
//   - route rules (route.rules[], option/rule.go, with the action fields of
//     option/rule_action.go; a rule with no "action" is the legacy/"route" form),
//   - DNS rules (dns.rules[], option/rule_dns.go: the route fields plus query_type, with the
//     DNS actions route/route-options/reject).
// Parsing is strict: unknown fields, wrong types and cheap-to-check bad values (action names,
// reject methods, networks, ports, CIDRs, query types) are reported to a DiagList with
// file:line:col and the JSON path; parsing keeps going so that the user sees every error.
// Fields sing-box has but veer does not implement are reported by name ("not supported").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/diag.h"
#include "base/json.h"
#include "rules/rule_spec.h"

namespace veer::rules {

enum class RuleKind : uint8_t { Headless, Route, Dns };

/// Parses one rule object `v` of the given kind into `out` (which should be default-built).
/// `path` is the JSON path of `v` ("route.rules[3]"), `file` the file name used in
/// diagnostics; both are copied into `out.pos` (with v's line:column) and into the positions of
/// nested logical sub-rules ("route.rules[3].rules[0]"). Returns true when no error was added
/// to `diags`; on false, `out` is partially filled and must not be used.
///
/// Route rules: `action` absent or "route" (needs `outbound`), "reject" (`method`
/// default|drop|reply, `no_drop`), "hijack-dns", "sniff" (`sniffer`, `timeout`), "resolve"
/// (`server`, `strategy`, `disable_cache`, `rewrite_ttl`, `client_subnet`), "route-options"
/// (the route options without `outbound`; must not be empty). DNS rules: "route" (needs
/// `server`, stored in RuleAction::resolve_server; `strategy` in resolve_strategy,
/// `disable_cache`, `rewrite_ttl`, `client_subnet`), "route-options", "reject". Logical
/// sub-rules carry no action fields (the action belongs to the top-level rule).
bool parseRule(RuleKind kind, const json::Value& v, const std::string& path,
               const std::string& file, DiagList& diags, RuleSpec& out);

/// parseRule(RuleKind::Route, ...): one element of route.rules.
bool parseRouteRule(const json::Value& v, const std::string& path, const std::string& file,
                    DiagList& diags, RuleSpec& out);
/// parseRule(RuleKind::Dns, ...): one element of dns.rules.
bool parseDnsRule(const json::Value& v, const std::string& path, const std::string& file,
                  DiagList& diags, RuleSpec& out);
/// parseRule(RuleKind::Headless, ...): one element of a rule-set's "rules".
bool parseHeadlessRule(const json::Value& v, const std::string& path, const std::string& file,
                       DiagList& diags, RuleSpec& out);

/// RuleSpec -> JSON in sing-box's output shape: fields in sing-box's struct order, empty and
/// default fields omitted, a one-element list written as a bare value (sing-box's Listable),
/// query types by name when known, durations as Go duration strings. Fields that do not
/// belong to `kind` are not written (headless output never has an action). Positions are 0.
/// AdGuard sets (binary only) are not representable and are left out; callers that must not
/// lose them check RuleSpec::adguard_domain first (writeRuleSetJson does).
json::Value ruleToJson(RuleKind kind, const RuleSpec& rule);

/// DNS query type names as sing-box/miekg-dns spell them ("A", "AAAA", "HTTPS", ...).
std::optional<uint16_t> dnsQueryTypeFromName(std::string_view name);
/// The name of a query type, or "" when it has none (written as a number then).
std::string_view dnsQueryTypeName(uint16_t type);

/// Checks a port range "a:b", ":b" or "a:" (a <= b, both in 0..65535).
bool validPortRange(std::string_view text);

}  // namespace veer::rules
