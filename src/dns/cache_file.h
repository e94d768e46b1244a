// veer's cache file (sing-box's `experimental.cache_file`, in veer's own format, not bbolt).
// Today it holds FakeIP tables; other kinds of section can be added without a format change.
//
// Layout, all integers big-endian:
//
//   header (20 bytes)
//     0  magic    "VEERCACH"
//     8  u16      version (1)
//    10  u16      flags (0; a reader refuses other values)
//    12  u32      number of sections (a file cut between two sections is noticed)
//    16  u32      CRC-32 (IEEE, as zlib) of bytes 0..15
//   sections, until the end of the file, each:
//     0  u8       kind (1 = FakeIP table)
//     1  u8       reserved (0)
//     2  u16      cache_id length (N, at most 255)
//     4  u32      body length (M, at most 64 MiB)
//     8  N bytes  cache_id (sing-box's cache_id: one store per id, "" = the default one)
//   8+N  M bytes  body
// 8+N+M  u32      CRC-32 of the section's bytes 0 .. 8+N+M-1
//
// A section whose checksum fails is dropped (the others are kept); a framing error (a length
// running past the end) stops reading there. Sections of other cache_ids and of kinds this
// build does not know are kept and written back unchanged, so that nothing valid is lost.
//
// FakeIP body:
//     0  u8       flags: bit 0 = has an IPv4 range, bit 1 = has an IPv6 range (others 0)
//        [IPv4]   4-byte range address, u8 prefix bits, 4-byte last address handed out
//        [IPv6]   16-byte range address, u8 prefix bits, 16-byte last address handed out
//        u32      entry count
//        entries: u8 family (4 or 6), 4 or 16 address bytes, u8 name length (1..253), name
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace veer::dns {

uint32_t crc32Ieee(ByteView data, uint32_t crc = 0);

class CacheFile {
 public:
  enum Kind : uint8_t { kFakeIp = 1 };
  struct Section {
    uint8_t kind = 0;
    std::string cache_id;
    std::vector<uint8_t> body;
    size_t body_offset = 0;  // where the body was in the file read (messages); 0 if new
  };
  /// What reading found: the good sections, and one problem per bad part ("offset 16: ...").
  struct ParseResult {
    std::vector<Section> sections;
    std::vector<std::string> problems;
    bool foreign = false;  // the header is not veer's: nothing in the file was read
  };

  static constexpr uint16_t kVersion = 1;
  static constexpr size_t kHeaderSize = 20;
  static constexpr uint32_t kMaxBody = 64u << 20;

  /// Parses a whole file's bytes. Never fails: damage is reported in `problems`.
  static ParseResult parse(ByteView data);
  static std::vector<uint8_t> serialize(const std::vector<Section>& sections);

  /// Reads `path`: a missing file is an empty cache. A file that is not veer's, or whose
  /// header is damaged, is renamed to `path.bad` (so it is not overwritten later) and reported.
  /// `warnings` gets one line per problem, naming the file and the offset.
  static CacheFile load(const std::string& path, std::vector<std::string>& warnings);

  /// Writes the sections to `path` atomically: a temporary file beside it, fsync, rename.
  Status save(const std::string& path) const;

  /// The section (kind, cache_id), or null.
  const Section* find(uint8_t kind, const std::string& cache_id) const;
  /// Drops the section (kind, cache_id): its owner holds the content now and puts it back
  /// before saving.
  void erase(uint8_t kind, const std::string& cache_id);
  /// Replaces (or adds) the section (kind, cache_id).
  void put(uint8_t kind, const std::string& cache_id, std::vector<uint8_t> body);

  const std::vector<Section>& sections() const { return sections_; }

 private:
  std::vector<Section> sections_;
};

}  // namespace veer::dns
