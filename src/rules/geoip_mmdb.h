// GeoipSource over libmaxminddb (memory-mapped). Two record shapes are understood:
//   - sing-geoip databases (database_type "sing-geoip", e.g. sing-box's geoip.db): every record
//     is a bare UTF-8 string (the lower-case code); metadata.languages lists all codes;
//   - GeoLite2/GeoIP2-Country style databases (and Clash's Country.mmdb / country-lite.mmdb):
//     a map; the code is country.iso_code, else registered_country.iso_code.
// IPv4-mapped IPv6 addresses are unmapped before lookup: sing-geoip is written with IPv4
// aliasing disabled, so ::ffff:a.b.c.d would find nothing.
#pragma once

#include <maxminddb.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "rules/geo.h"

namespace veer::rules {

class GeoipMmdb final : public GeoipSource {
 public:
  enum class Shape : uint8_t { SingGeoip, Country };

  /// Opens `path` with MMDB_MODE_MMAP and checks the metadata. Errors name the file. A
  /// database whose records are neither strings nor country maps is accepted, but lookups in
  /// it return "" (which is also what a corrupt record yields; lookups never fail hard).
  static Result<std::unique_ptr<GeoipMmdb>> open(const std::string& path);
  ~GeoipMmdb() override;
  GeoipMmdb(const GeoipMmdb&) = delete;
  GeoipMmdb& operator=(const GeoipMmdb&) = delete;

  // GeoipSource
  /// The code stored for `ip`, pointing into the mapped file (valid while this object lives);
  /// "" when not found or when the record is malformed. No allocation.
  std::string_view lookup(const IpAddress& ip) const override;
  /// sing-geoip: metadata.languages. Country databases: empty (they do not list codes).
  std::vector<std::string> codes() const override;

  Shape shape() const { return shape_; }
  std::string_view databaseType() const;
  /// Decodes the full records found for a spread of IPv4 and IPv6 addresses. A cheap sanity
  /// check for `veer check` (a corrupt tree or data section usually shows up); not exhaustive.
  Status verify() const;

 private:
  GeoipMmdb() = default;
  std::string path_;
  MMDB_s db_{};
  bool open_ = false;
  Shape shape_ = Shape::Country;
};

}  // namespace veer::rules
