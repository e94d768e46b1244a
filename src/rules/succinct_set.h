// The domain set of sing-box rule-sets (.srs item 2 and 16): a LOUDS-encoded trie over
// reversed domain keys (sing's common/domain, adapted from openacid/succinct). veer decodes it
// once into plain key lists and re-encodes it bit for bit the way sing-box builds it; matching
// is done by the rule engine's own structures, so no rank/select index is kept here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace veer::rules {

/// The three arrays that are stored in a file.
struct SuccinctSet {
  std::vector<uint64_t> leaves;        // bit i set: node i ends a key
  std::vector<uint64_t> label_bitmap;  // per node in BFS order: one 0 per child, then a 1
  std::vector<uint8_t> labels;         // one byte per edge, in the order of the 0 bits
};

/// Builds the trie of `keys`, which must be sorted bytewise and free of duplicates and must
/// not be empty (sing-box's builder has the same precondition). Same bits as sing-box.
SuccinctSet buildSuccinctSet(const std::vector<std::string>& keys);

/// Every key stored in `set`, sorted bytewise. Fails on a malformed trie (label index out of
/// range, bitmap ending inside a node, keys longer than kMaxSuccinctKeyLen, more than
/// `max_total_bytes` of keys in all) instead of reading out of bounds or allocating without
/// bound.
inline constexpr size_t kMaxSuccinctKeyLen = 4096;
Result<std::vector<std::string>> succinctKeys(const SuccinctSet& set, size_t max_total_bytes);

/// Parses the serialised form (`u8 version`, uvarint n + n×u64 BE leaves, uvarint n + n×u64 BE
/// bitmap, uvarint n + n label bytes). Counts are checked against the bytes left.
bool readSuccinctSet(ByteReader& in, SuccinctSet& out);
/// Appends the serialised form (leading byte 0, as current sing-box writes it).
void writeSuccinctSet(const SuccinctSet& set, std::vector<uint8_t>& out);

/// Reverses a string by UTF-8 code points (bytes of invalid sequences stay single units).
std::string reverseDomainKey(std::string_view s);

/// The sorted, de-duplicated keys sing-box derives from domain/domain_suffix lists.
/// `legacy` (rule-set version 1): a suffix "x" becomes the keys "x" and "\r.x"; from version 2
/// it becomes "\nx". A suffix ".x" becomes "\r.x". Keys are reversed. Empty values are an error.
Result<std::vector<std::string>> domainSetKeys(const std::vector<std::string>& domains,
                                                const std::vector<std::string>& suffixes,
                                                bool legacy);

/// Splits decoded keys back into domain and domain_suffix lists (both sorted), as sing-box's
/// Dump: a "\r.x" key next to a plain "x" key becomes the suffix "x".
Status dumpDomainKeys(const std::vector<std::string>& keys, std::vector<std::string>& domains,
                      std::vector<std::string>& suffixes);

}  // namespace veer::rules
