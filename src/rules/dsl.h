// The veer rule DSL (.veer files): one rule per line, compiled to the same RuleSpecs as the
// sing-box JSON rules, so it runs on the same engine.
//
// Grammar (EBNF). Whitespace (space, tab) may appear between tokens; '#' outside a quoted string
// starts a comment that runs to the end of the line.
//
//   file       = { line } ;
//   line       = [ rule ] [ comment ] ( newline | end of file ) ;
//   rule       = expr "=>" action            (* route files *)
//              | "final" "=>" target         (* route files: the final outbound, at most once *)
//              | expr ;                      (* rule-set files: headless rules, no action *)
//   expr       = and_expr { "||" and_expr } ;
//   and_expr   = unary { "&&" unary } ;
//   unary      = "!" unary | "(" expr ")" | "any" | term ;
//   term       = field [ ":" values ] ;      (* bare field = a boolean field set to true *)
//   values     = value | "[" value { "," value } [ "," ] "]" ;
//   value      = word | string ;
//   action     = "reject" [ "(" [ "default" | "drop" | "reply" ] [ "," "no_drop" ] ")" ]
//              | "hijack-dns"
//              | "sniff" [ "(" [ arg { "," arg } ] ")" ]        (* sniffer names, timeout=300ms *)
//              | "resolve" [ "(" [ arg { "," arg } ] ")" ]      (* server=, strategy=, ... *)
//              | "route-options" "(" arg { "," arg } ")"
//              | "route" "(" target { "," arg } ")"            (* route with route options *)
//              | target ;                                       (* route to that outbound *)
//   target     = word | string ;             (* an outbound tag; quote tags named like actions *)
//   arg        = name [ "=" value ] ;        (* bare name = flag (true) or, for sniff, a sniffer *)
//   field      = name ;                      (* sing-box field names, see below *)
//   name       = letter { letter | digit | "_" | "-" } ;
//   word       = wordchar { wordchar } ;     (* any byte but space, tab, , [ ] ( ) # " ! & | = *)
//   string     = '"' { char | '\"' | '\\' } '"' ;   (* other backslashes are kept as written *)
//
// Fields: domain, domain_suffix, domain_keyword, domain_regex, geosite, geoip, ip_cidr,
// ip_is_private, source_geoip, source_ip_cidr, source_ip_is_private, port, port_range,
// source_port, source_port_range, network, protocol, client, inbound, ip_version, auth_user,
// query_type, rule_set, rule_set_ip_cidr_match_source, and (stored, never matching on a router)
// process_name, process_path, process_path_regex, package_name, wifi_ssid, wifi_bssid,
// network_type, network_is_expensive, network_is_constrained. Ports take "443", "1000-2000",
// "1000:2000", ":2000" or "1000:". query_type takes numbers or names (A, AAAA, HTTPS, ...).
// Durations are Go-style ("500ms", "2s", "1m"). `!` and parentheses nest at most 32 deep.
// Rule-set files accept only the fields of sing-box's headless rules (as the rule-set JSON
// reader does): not inbound, ip_version, auth_user, protocol, client, geosite, geoip,
// source_geoip, ip_is_private, source_ip_is_private, rule_set, rule_set_ip_cidr_match_source.
//
// Meaning. `!` binds tighter than `&&`, which binds tighter than `||`. A conjunction of terms of
// different sing-box groups (and different AND fields) becomes ONE default rule, exactly like a
// JSON rule with those fields; a disjunction of terms of the same group (domain || domain_suffix
// || ip_cidr ..., or the same AND field) becomes one rule with the values merged; everything
// else becomes a logical and/or rule, and `!x` sets `invert`. Parentheses only group.
// `any` is the rule without conditions (e.g. `any => sniff`). As in sing-box JSON, `rule_set` in
// a conjunction merges with the other fields: `domain:a.com && rule_set:x` is the JSON rule
// {domain: a.com, rule_set: x}, which sing-box reads as "a.com OR anything in x" when x holds
// domain rules (`veer check` warns about it). A strict AND with a rule set is the logical rule
// `!(!rule_set:x || !domain:a.com)`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/diag.h"
#include "rules/rule_spec.h"

namespace veer::rules {

enum class DslMode : uint8_t {
  Route,    // rules with "=> action", plus "final => outbound"
  RuleSet,  // headless rules: one match expression per line, no actions
};

struct DslFile {
  std::vector<RuleSpec> rules;
  std::optional<std::string> final_outbound;
  SourcePos final_pos;
};

/// Parses a whole file. Every error goes to `diags` with file:line:col; parsing resumes at the
/// next line, so all errors are reported. Rules with errors are left out of the result.
DslFile parseDsl(std::string_view text, std::string_view file_name, DslMode mode, DiagList& diags);

/// Every diagnostic of `diags` as "file:line:col: message" followed by the line and a caret.
std::string renderDiags(std::string_view text, const DiagList& diags);

/// Writes rules back as DSL text (for `rule-set decompile/format`). The output parses back to
/// rules with the same meaning; default rules round-trip to identical RuleSpecs.
std::string writeDsl(const DslFile& file, DslMode mode);
/// One rule's condition (no action), e.g. `domain_suffix:[a.com, b.com] && port:443`.
std::string writeDslCondition(const RuleSpec& rule);
/// One action as DSL, e.g. `proxy`, `reject(drop)`, `sniff(tls, timeout=500ms)`.
std::string writeDslAction(const RuleAction& action);

}  // namespace veer::rules
