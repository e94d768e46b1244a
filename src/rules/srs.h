// Binary sing-box rule-sets (.srs), byte-compatible with sing-box's common/srs:
//   "SRS" | u8 version (1..4) | zlib stream { uvarint rule_count, rules }.
// Rule items, IP sets (netipx ranges) and the domain succinct trie are described in
// ../shared/reference/singbox.md §3.2. The reader treats every input as hostile: the
// decompressed size is capped, every count is checked against the bytes that remain, logical
// rules nest at most kMaxSrsDepth deep, and errors name the file and the payload offset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/result.h"
#include "rules/ruleset_json.h"

namespace veer::rules {

inline constexpr int kMaxSrsDepth = 32;

struct SrsReadOptions {
  size_t max_inflated_bytes = size_t{64} << 20;
};

/// Decodes a whole .srs file. `file` is used in error messages only.
Result<RuleSetSpec> readSrs(ByteView data, const std::string& file,
                            const SrsReadOptions& opts = {});
/// Decodes a decompressed payload (what follows the zlib header) of the given version.
Result<RuleSetSpec> decodeSrsPayload(ByteView payload, uint8_t version, const std::string& file);
/// Checks the header and inflates: returns the payload; `version` receives the version byte.
Result<std::vector<uint8_t>> inflateSrs(ByteView data, const std::string& file,
                                        uint8_t& version, const SrsReadOptions& opts = {});

/// Encodes the payload (uncompressed) for `set.version`, as sing-box's writer does: items in
/// sing-box's order, CIDRs merged into a minimal range set, domains into the trie. Fails on
/// values that sing-box also refuses (bad CIDR, empty domain, network_type below version 3,
/// AdGuard below version 2).
Result<std::vector<uint8_t>> encodeSrsPayload(const RuleSetSpec& set);
/// The whole file: magic, version, zlib (level 9; sing-box uses Go's BestCompression, whose
/// bytes differ from zlib's, so only the payload is byte-identical).
Result<std::vector<uint8_t>> writeSrs(const RuleSetSpec& set);

/// An inclusive address range within one family.
struct IpRange {
  IpAddress from;
  IpAddress to;
};
/// Parses "a.b.c.d/n", "x::/n" or a bare address (sing-box ip_cidr) into its range.
bool parseIpCidrRange(std::string_view text, IpRange& out);
/// The sorted, merged (overlapping and adjacent) ranges of `cidrs`, IPv4 first (netipx.IPSet).
/// Fails naming the first entry that does not parse.
Result<std::vector<IpRange>> buildIpRanges(const std::vector<std::string>& cidrs);
/// The minimal CIDR cover of `ranges`, formatted as Go's netip.Prefix.String does.
std::vector<std::string> ipRangesToPrefixes(const std::vector<IpRange>& ranges);
/// Go's netip.Addr.String (RFC 5952; "::ffff:1.2.3.4" for IPv4-mapped).
std::string formatIpLikeGo(const IpAddress& ip);

}  // namespace veer::rules
