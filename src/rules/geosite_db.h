// sing-box geosite.db (common/geosite): read (GeositeSource) and write.
//   u8 version (0) | uvarint n | n × (string code, uvarint offset, uvarint item_count) | items
//   item = u8 type (0 domain, 1 suffix, 2 keyword, 3 regex) | string value
// Strings are uvarint length + bytes; offsets are relative to the first byte after the index.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "rules/geo.h"

namespace veer::rules {

/// Codes (lower-case) → items, as written to a geosite.db.
using GeositeMap = std::map<std::string, std::vector<GeositeItem>>;

/// A loaded geosite.db. The file is memory-mapped read-only and its index is parsed and
/// validated once at open (every offset and count is checked against the file size); items
/// are decoded on demand by load(). Immutable after open, so concurrent load() calls are safe.
class GeositeDb final : public GeositeSource {
 public:
  /// Maps and indexes `path`. Errors name the file and, for bad data, the byte offset.
  static Result<std::unique_ptr<GeositeDb>> open(const std::string& path);
  /// Indexes an in-memory copy (tests, fuzzing). `name` is used in error messages.
  static Result<std::unique_ptr<GeositeDb>> fromBytes(std::vector<uint8_t> data,
                                                      const std::string& name);
  ~GeositeDb() override;
  GeositeDb(const GeositeDb&) = delete;
  GeositeDb& operator=(const GeositeDb&) = delete;

  // GeositeSource
  Result<std::vector<GeositeItem>> load(std::string_view code) const override;
  bool has(std::string_view code) const override;
  std::vector<std::string> codes() const override;

  /// Number of items of `code` (0 when unknown), without decoding them.
  size_t itemCount(std::string_view code) const;
  /// Decodes every code (for `geosite` export and tests).
  Result<GeositeMap> loadAll() const;

 private:
  struct Entry {
    std::string_view code;  // points into the mapped file
    size_t offset;          // absolute, in the file
    size_t count;
  };
  GeositeDb() = default;
  Status index();
  const Entry* find(std::string_view code) const;

  std::string name_;
  ByteView data_;
  std::vector<uint8_t> owned_;
  void* map_ = nullptr;
  size_t map_len_ = 0;
  std::vector<Entry> entries_;  // sorted by code
};

/// Serialises `codes` exactly as sing-box's writer: codes sorted bytewise, items in the given
/// order. Fails on an item type above 3.
Result<std::vector<uint8_t>> writeGeositeDb(const GeositeMap& codes);

}  // namespace veer::rules
