// Helpers for the geodata tests: file access and a deliberately naive reference matcher
// (linear scans, no tries) used to check lookups without the rule engine.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/address.h"
#include "rules/geo.h"
#include "rules/rule_spec.h"

namespace veer::test {

std::vector<uint8_t> readBytes(const std::string& path);
/// Regular files in `dir` whose names end in `ext`, sorted.
std::vector<std::string> listFiles(const std::string& dir, const std::string& ext);

/// sing-box domain semantics: domain exact; suffix ".x" strict subdomain; suffix "x" = x or a
/// subdomain; keyword substring; regex RE2 search.
bool refMatchDomain(const rules::RuleSpec& r, const std::string& host);
/// ip_cidr by parsing each prefix text with inet_pton and comparing the masked bits.
bool refMatchIp(const rules::RuleSpec& r, const IpAddress& ip);
/// Whether any rule of the list matches (rules here are flat default rules).
bool refMatchAny(const std::vector<rules::RuleSpec>& rs, const std::string& host,
                 const std::optional<IpAddress>& ip);
/// The same over geosite items.
bool refMatchGeosite(const std::vector<rules::GeositeItem>& items, const std::string& host);

}  // namespace veer::test
