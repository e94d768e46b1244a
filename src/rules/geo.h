// Interfaces between the rule engine and the geodata readers. The readers (geosite.db, v2fly
// text lists, MaxMind DBs) implement them; the rule compiler only sees these.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/result.h"

namespace veer::rules {

/// One geosite entry, with sing-box geosite.db item types.
struct GeositeItem {
  enum class Type : uint8_t { Domain = 0, Suffix = 1, Keyword = 2, Regex = 3 };
  Type type = Type::Domain;
  std::string value;
};

/// A source of geosite categories (a loaded geosite.db).
class GeositeSource {
 public:
  virtual ~GeositeSource() = default;
  /// Items for `code` (lower-case; "google@cn" style attribute codes included), or an error
  /// naming the code when it does not exist.
  virtual Result<std::vector<GeositeItem>> load(std::string_view code) const = 0;
  virtual bool has(std::string_view code) const = 0;
  virtual std::vector<std::string> codes() const = 0;
};

/// A source of IP → country code lookups (a memory-mapped MaxMind DB). Lookups must not
/// allocate: the returned view points into the mapped database.
class GeoipSource {
 public:
  virtual ~GeoipSource() = default;
  /// Lower-case or upper-case ISO code as stored; empty when not found. Callers compare
  /// case-insensitively.
  virtual std::string_view lookup(const IpAddress& ip) const = 0;
  /// Every code the database knows (may be empty when the database does not list them).
  virtual std::vector<std::string> codes() const = 0;
};

}  // namespace veer::rules
