// DomainSet: exact names and suffixes (sing-box `domain` + `domain_suffix`) in two open-addressing
// hash tables over one string arena. A lookup probes the exact table once and the suffix table
// once per label of the host, so its cost depends on the host, not on the size of the set, and
// it never allocates (keys are compared as views into the arena).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace veer::rules {

class DomainSet {
 public:
  enum class Kind : uint8_t {
    Exact = 0,          // `domain: x.com`: x.com only
    Suffix = 1,         // `domain_suffix: x.com`: x.com and *.x.com on a label boundary
    SubdomainOnly = 2,  // `domain_suffix: .x.com`: *.x.com only
  };
  struct Hit {
    std::string_view name;  // the entry as stored (without a leading dot)
    Kind kind = Kind::Exact;
    uint32_t tag = 0;       // caller-defined provenance (field / geosite code)
  };

  /// Adds one value. For Suffix a leading dot means SubdomainOnly (sing-box semantics).
  /// Values are lower-cased; empty values are ignored (the compiler reports them).
  void add(std::string_view value, Kind kind, uint32_t tag);
  /// Builds the hash tables; must be called once after the last add() and before lookups.
  void finalize();

  /// Matches `host` (lower-case); a trailing dot is ignored. Returns false when nothing
  /// matches; fills `hit` (when non-null) with the entry that matched.
  bool match(std::string_view host, Hit* hit = nullptr) const;

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  /// Entries in insertion order (deduplicated), for describe() and writers.
  template <typename F>
  void forEach(F&& f) const {
    for (const auto& e : entries_) f(view(e), static_cast<Kind>(e.kind), e.tag);
  }
  size_t memoryBytes() const;

 private:
  struct Entry {
    uint32_t offset;
    uint32_t hash;  // hashOf(name): compared before the bytes
    uint32_t tag;
    uint16_t length;
    uint8_t kind;
    bool self = false;  // suffix table: the name itself matches too
  };
  std::string_view view(const Entry& e) const {
    return std::string_view(arena_).substr(e.offset, e.length);
  }
  /// FNV-1a over the bytes from last to first, so that the hash of every suffix of a host
  /// falls out of one right-to-left pass (no rehashing per label).
  static uint32_t hashOf(std::string_view s);
  static constexpr uint32_t kHashSeed = 2166136261u;
  static uint32_t hashStep(uint32_t h, unsigned char c) { return (h ^ c) * 16777619u; }
  int64_t find(const std::vector<uint32_t>& table, std::string_view key, uint32_t h) const;
  void insert(std::vector<uint32_t>& table, uint32_t index);

  std::string arena_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> exact_;   // slot = entry index + 1, 0 = empty
  std::vector<uint32_t> suffix_;  // same
};

}  // namespace veer::rules
