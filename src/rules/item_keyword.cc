// domain_keyword item: substring match through Aho-Corasick.
#include "rules/item_base.h"

namespace veer::rules {

bool KeywordItem::match(const MatchInput& in, const EvalEnv&, std::string* why) const {
  if (in.domain.empty()) return false;
  uint32_t index = 0;
  if (!ac_.search(in.domain, &index)) return false;
  if (why != nullptr) origins_.explain(ac_.tag(index), "domain_keyword", ac_.keyword(index), why);
  return true;
}

void KeywordItem::describe(std::string& out) const {
  out += "domain_keyword(" + std::to_string(ac_.size()) + " keywords";
  origins_.describe(out);
  out += ")";
}

}  // namespace veer::rules
