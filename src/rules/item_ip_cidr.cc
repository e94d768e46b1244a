// ip_cidr / source_ip_cidr and ip_is_private / source_ip_is_private items.
#include "rules/item_base.h"

namespace veer::rules {

namespace {
void explainIp(std::string_view field, const IpAddress& ip, std::string* why) {
  *why += field;
  *why += " (";
  *why += ip.toString();
  *why += ")";
}
}  // namespace

bool IpCidrItem::match(const MatchInput& in, const EvalEnv& env, std::string* why) const {
  bool source = source_ || env.ip_cidr_match_source;
  auto test = [&](const IpAddress& ip) {
    if (!set_.contains(ip)) return false;
    if (why != nullptr) {
      // Slow path for `route explain`: name the prefix as written.
      for (const auto& t : text_) {
        IpAddress first, last;
        IpAddress u = ip.unmap();
        if (CidrSet::parsePrefix(t, &first, &last) && first.family() == u.family() &&
            !(u < first) && !(last < u)) {
          *why += source ? "source_ip_cidr \"" : "ip_cidr \"";
          *why += t + "\" (" + ip.toString() + ")";
          return true;
        }
      }
      explainIp(source ? "source_ip_cidr" : "ip_cidr", ip, why);
    }
    return true;
  };
  if (source) return in.source.valid() && test(in.source);
  if (env.assume_destination_ip && !in.hasDestinationIp()) return true;
  return anyDestinationIp(in, test);
}

bool IpPrivateItem::match(const MatchInput& in, const EvalEnv& env, std::string* why) const {
  auto test = [&](const IpAddress& ip) {
    if (!ip.isNonPublic()) return false;
    if (why != nullptr) explainIp(source_ ? "source_ip_is_private" : "ip_is_private", ip, why);
    return true;
  };
  if (source_) return in.source.valid() && test(in.source);
  if (env.assume_destination_ip && !in.hasDestinationIp()) return true;
  return anyDestinationIp(in, test);
}

void IpCidrItem::describe(std::string& out) const {
  out += std::string(source_ ? "source_ip_cidr(" : "ip_cidr(") + std::to_string(text_.size()) +
         " prefixes, " + std::to_string(set_.rangeCount()) + " ranges)";
}

void IpPrivateItem::describe(std::string& out) const {
  out += source_ ? "source_ip_is_private" : "ip_is_private";
}

}  // namespace veer::rules
