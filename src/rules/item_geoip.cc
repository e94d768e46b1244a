// geoip / source_geoip items. The code "private" means "not a public address", as in
// sing-box's geoip handling, and never consults the database.
#include <cctype>

#include "rules/item_base.h"

namespace veer::rules {

namespace {
bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}
}  // namespace

GeoipItem::GeoipItem(std::vector<std::string> codes, const GeoipSource* db, bool source)
    : db_(db), source_(source) {
  for (auto& c : codes) {
    for (auto& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (c == "private") {
      private_ = true;
    } else {
      codes_.push_back(std::move(c));
    }
  }
}

bool GeoipItem::test(const IpAddress& ip, std::string* why) const {
  std::string_view field = source_ ? "source_geoip" : "geoip";
  if (private_ && ip.isNonPublic()) {
    if (why != nullptr) *why += std::string(field) + " \"private\" (" + ip.toString() + ")";
    return true;
  }
  if (codes_.empty() || db_ == nullptr) return false;
  std::string_view code = db_->lookup(ip);
  if (code.empty()) return false;
  for (const auto& c : codes_) {
    if (equalsIgnoreCase(c, code)) {
      if (why != nullptr) *why += std::string(field) + " \"" + c + "\" (" + ip.toString() + ")";
      return true;
    }
  }
  return false;
}

bool GeoipItem::match(const MatchInput& in, const EvalEnv& env, std::string* why) const {
  if (source_) return in.source.valid() && test(in.source, why);
  if (env.assume_destination_ip && !in.hasDestinationIp()) return true;
  return anyDestinationIp(in, [&](const IpAddress& ip) { return test(ip, why); });
}

void GeoipItem::describe(std::string& out) const {
  out += source_ ? "source_geoip=[" : "geoip=[";
  for (size_t i = 0; i < codes_.size(); ++i) out += (i ? " " : "") + codes_[i];
  if (private_) out += codes_.empty() ? "private" : " private";
  out += "]";
}

}  // namespace veer::rules
