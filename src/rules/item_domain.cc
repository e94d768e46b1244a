// domain / domain_suffix items (and the domain entries of geosite codes), plus Origins.
#include "rules/item_base.h"

namespace veer::rules {

void Origins::explain(uint32_t origin, std::string_view field, std::string_view value,
                      std::string* why) const {
  if (origin > 0 && origin - 1 < geosite_codes.size()) {
    *why += "geosite:" + geosite_codes[origin - 1] + " (";
  }
  *why += field;
  *why += " \"";
  *why += value;
  *why += "\"";
  if (origin > 0) *why += ")";
}

bool DomainItem::match(const MatchInput& in, const EvalEnv&, std::string* why) const {
  if (in.domain.empty()) return false;
  if (why == nullptr) return set_.match(in.domain);
  DomainSet::Hit hit;
  if (!set_.match(in.domain, &hit)) return false;
  std::string value(hit.name);
  std::string_view field = "domain";
  if (hit.kind == DomainSet::Kind::Suffix) field = "domain_suffix";
  if (hit.kind == DomainSet::Kind::SubdomainOnly) {
    field = "domain_suffix";
    value = "." + value;
  }
  origins_.explain(hit.tag, field, value, why);
  return true;
}

void Origins::describe(std::string& out) const {
  if (geosite_codes.empty()) return;
  out += ", geosite=[";
  for (size_t i = 0; i < geosite_codes.size(); ++i) out += (i ? " " : "") + geosite_codes[i];
  out += "]";
}

void DomainItem::describe(std::string& out) const {
  size_t exact = 0, suffix = 0;
  set_.forEach([&](std::string_view, DomainSet::Kind k, uint32_t) {
    (k == DomainSet::Kind::Exact ? exact : suffix)++;
  });
  out += "domain_set(" + std::to_string(exact) + " exact, " + std::to_string(suffix) + " suffix";
  origins_.describe(out);
  out += ")";
}



}  // namespace veer::rules
