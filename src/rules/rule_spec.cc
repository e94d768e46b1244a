#include "rules/rule_spec.h"

namespace veer::rules {

std::string SourcePos::toString() const {
  std::string out = file;
  if (line != 0) {
    out += (out.empty() ? "" : ":") + std::to_string(line);
    if (column != 0) out += ":" + std::to_string(column);
  }
  return out;
}

}  // namespace veer::rules
