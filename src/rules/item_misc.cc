// The AND items: inbound, network, auth_user, protocol, client (string lists), ip_version and
// query_type.
#include "rules/item_base.h"

namespace veer::rules {

bool StringItem::match(const MatchInput& in, const EvalEnv&, std::string* why) const {
  std::string_view value = in.*member_;
  for (const auto& v : values_) {
    if (v == value) {
      if (why != nullptr) *why += std::string(field_) + " \"" + v + "\"";
      return true;
    }
  }
  return false;
}

bool IpVersionItem::match(const MatchInput& in, const EvalEnv&, std::string* why) const {
  int v = in.effectiveIpVersion();
  for (int x : versions_) {
    if (x == v) {
      if (why != nullptr) *why += "ip_version " + std::to_string(v);
      return true;
    }
  }
  return false;
}

bool QueryTypeItem::match(const MatchInput& in, const EvalEnv&, std::string* why) const {
  if (in.query_type == 0) return false;
  for (uint16_t t : types_) {
    if (t == in.query_type) {
      if (why != nullptr) *why += "query_type " + std::to_string(t);
      return true;
    }
  }
  return false;
}

void StringItem::describe(std::string& out) const {
  out += std::string(field_) + "=[";
  for (size_t i = 0; i < values_.size(); ++i) out += (i ? " " : "") + values_[i];
  out += "]";
}

void IpVersionItem::describe(std::string& out) const {
  out += "ip_version=[";
  for (size_t i = 0; i < versions_.size(); ++i) {
    if (i != 0) out += ' ';
    out += std::to_string(versions_[i]);
  }
  out += "]";
}

void QueryTypeItem::describe(std::string& out) const {
  out += "query_type=[";
  for (size_t i = 0; i < types_.size(); ++i) {
    if (i != 0) out += ' ';
    out += std::to_string(types_[i]);
  }
  out += "]";
}

}  // namespace veer::rules
