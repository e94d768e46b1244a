// sing-box rule-set source files: {"version": N, "rules": [headless rule, ...]} (N = 1..4).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/diag.h"
#include "base/json.h"
#include "base/result.h"
#include "rules/rule_spec.h"

namespace veer::rules {

inline constexpr uint8_t kRuleSetVersion1 = 1;  // sing-box 1.8
inline constexpr uint8_t kRuleSetVersion2 = 2;  // 1.10: "\n" suffix keys, AdGuard
inline constexpr uint8_t kRuleSetVersion3 = 3;  // 1.11: network_type, network_is_*
inline constexpr uint8_t kRuleSetVersion4 = 4;  // 1.13: *interface_address
inline constexpr uint8_t kRuleSetVersionCurrent = kRuleSetVersion4;

/// A rule-set: its format version and its headless rules (RuleSpec without actions).
struct RuleSetSpec {
  uint8_t version = kRuleSetVersionCurrent;
  std::vector<RuleSpec> rules;
};

/// Parses a rule-set source document. Errors (missing/unknown version, unknown fields, bad
/// values) go to `diags` with file:line:col and paths like "rules[3].domain[0]"; returns true
/// when there were none. `path_prefix` is prepended to paths when the object is embedded
/// (an inline rule-set in a config: "route.rule_set[0]"); "" for a standalone file.
bool parseRuleSetJson(const json::Value& root, const std::string& file, DiagList& diags,
                      RuleSetSpec& out, const std::string& path_prefix = "");

/// Reads a whole source file's text: JSON syntax errors and parse errors become one Error whose
/// message lists every diagnostic ("file:line:col: ...").
Result<RuleSetSpec> readRuleSetJson(std::string_view text, const std::string& file);

/// Writes the source form (pretty JSON, sing-box's field order). Fails for rules that have no
/// source form (binary-only AdGuard sets), as sing-box's decompile does.
Result<std::string> writeRuleSetJson(const RuleSetSpec& set);

/// The version `rule-set compile` writes for `set`: versions 4 and 3 are lowered to the lowest
/// version whose items the rules use (4 -> 3 -> 2); versions 1 and 2 are kept.
uint8_t compileVersion(const RuleSetSpec& set);

}  // namespace veer::rules
