#include "app/lint.h"

#include <functional>

#include "rules/lint.h"

namespace veer::app {

void lintConfig(const config::Config* cfg, DiagList& diags) {
  if (cfg == nullptr) return;
  DiagList rule_diags;
  rules::lintRules(cfg->route.rules, cfg->route.rule_sets, rule_diags);
  for (const auto& d : rule_diags.all()) {
    // The loader already reported empty rule sets, at their definition; lintRules only knows
    // the tag, so its copy would be a second, positionless warning for the same thing.
    if (d.code == "empty-rule-set") continue;
    diags.add(d);
  }
  // Actions this build parses but does not carry out yet: say so instead of ignoring them.
  std::function<void(const rules::RuleSpec&)> visit = [&](const rules::RuleSpec& r) {
    if (r.action && r.action->type == rules::RuleAction::Type::HijackDns && !cfg->has_dns) {
      diags.warning(r.pos.file, r.pos.line, r.pos.column, r.pos.path,
                    "\"hijack-dns\" needs veer's DNS, which this build does not have yet: such "
                    "connections are closed and such datagrams dropped",
                    "unimplemented-action");
    }
  };
  for (const auto& r : cfg->route.rules) visit(r);
}

}  // namespace veer::app
