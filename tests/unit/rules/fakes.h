// In-test fakes of the geodata interfaces (the real readers live elsewhere).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rules/cidr_set.h"
#include "rules/geo.h"

namespace veer::rules::test {

class FakeGeosite : public GeositeSource {
 public:
  std::map<std::string, std::vector<GeositeItem>, std::less<>> codes_;
  mutable int loads = 0;

  void add(const std::string& code, GeositeItem::Type t, const std::string& v) {
    codes_[code].push_back(GeositeItem{t, v});
  }
  Result<std::vector<GeositeItem>> load(std::string_view code) const override {
    ++loads;
    auto it = codes_.find(code);
    if (it == codes_.end()) return unexpected("geosite code not found: " + std::string(code));
    return it->second;
  }
  bool has(std::string_view code) const override { return codes_.count(std::string(code)) != 0; }
  std::vector<std::string> codes() const override {
    std::vector<std::string> out;
    for (const auto& [k, v] : codes_) out.push_back(k);
    return out;
  }
};

/// Prefix → code, first match wins; codes are stored upper-case like MaxMind's.
class FakeGeoip : public GeoipSource {
 public:
  std::vector<std::pair<std::string, std::string>> entries;  // prefix, code

  std::string_view lookup(const IpAddress& ip) const override {
    for (const auto& [prefix, code] : entries) {
      IpAddress first, last;
      IpAddress u = ip.unmap();
      if (CidrSet::parsePrefix(prefix, &first, &last) && first.family() == u.family() &&
          !(u < first) && !(last < u)) {
        return code;
      }
    }
    return {};
  }
  std::vector<std::string> codes() const override { return {}; }
};

}  // namespace veer::rules::test
