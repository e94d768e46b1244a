// port / port_range / source_port / source_port_range items.
#include "rules/item_base.h"

namespace veer::rules {

bool PortItem::match(const MatchInput& in, const EvalEnv&, std::string* why) const {
  uint16_t port = source_ ? in.source_port : in.port;
  if (!set_.contains(port)) return false;
  if (why != nullptr) *why += (source_ ? "source_port " : "port ") + std::to_string(port);
  return true;
}

void PortItem::describe(std::string& out) const {
  out += (source_ ? "source_port=[" : "port=[") + set_.toString() + "]";
}

}  // namespace veer::rules
