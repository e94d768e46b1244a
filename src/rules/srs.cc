#include "rules/srs.h"

#include <algorithm>
#include <cstring>

#include "rules/succinct_set.h"
#include "rules/zlib_util.h"

namespace veer::rules {
namespace {

constexpr uint8_t kMagic[3] = {0x53, 0x52, 0x53};  // "SRS"

enum Item : uint8_t {
  kQueryType = 0,
  kNetwork = 1,
  kDomain = 2,
  kDomainKeyword = 3,
  kDomainRegex = 4,
  kSourceIpCidr = 5,
  kIpCidr = 6,
  kSourcePort = 7,
  kSourcePortRange = 8,
  kPort = 9,
  kPortRange = 10,
  kProcessName = 11,
  kProcessPath = 12,
  kPackageName = 13,
  kWifiSsid = 14,
  kWifiBssid = 15,
  kAdGuardDomain = 16,
  kProcessPathRegex = 17,
  kNetworkType = 18,
  kNetworkIsExpensive = 19,
  kNetworkIsConstrained = 20,
  kNetworkInterfaceAddress = 21,
  kDefaultInterfaceAddress = 22,
  kFinal = 0xFF,
};

// ---- IP ranges on big-endian byte arrays (no 128-bit integers: 32-bit MIPS has none) ----

using Bytes16 = std::array<uint8_t, 16>;

Bytes16 raw(const IpAddress& a) {
  Bytes16 b{};
  std::memcpy(b.data(), a.data(), a.size());
  return b;
}
IpAddress make(const Bytes16& b, bool v4) { return v4 ? IpAddress::v4(b.data()) : IpAddress::v6(b.data()); }

// b += 1; returns false on overflow (b was all ones).
bool increment(Bytes16& b, size_t n) {
  for (size_t i = n; i-- > 0;) {
    if (++b[i] != 0) return true;
  }
  return false;
}
bool allOnes(const Bytes16& b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != 0xff) return false;
  }
  return true;
}
// Sets (one=true) or clears the lowest `h` bits.
void lowBits(Bytes16& b, size_t n, unsigned h, bool one) {
  for (size_t i = n; i-- > 0 && h > 0;) {
    unsigned k = std::min(h, 8u);
    uint8_t m = static_cast<uint8_t>((1u << k) - 1);
    b[i] = one ? (b[i] | m) : (b[i] & ~m);
    h -= k;
  }
}
unsigned trailingZeros(const Bytes16& b, size_t n) {
  unsigned z = 0;
  for (size_t i = n; i-- > 0;) {
    if (b[i] == 0) {
      z += 8;
      continue;
    }
    uint8_t x = b[i];
    while ((x & 1) == 0) {
      ++z;
      x >>= 1;
    }
    break;
  }
  return z;
}
int cmp(const Bytes16& a, const Bytes16& b, size_t n) { return std::memcmp(a.data(), b.data(), n); }

bool parseBits(std::string_view s, unsigned max, unsigned& out) {
  if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

// ---- payload writer ----

class Out {
 public:
  std::vector<uint8_t> buf;
  void u8(uint8_t v) { buf.push_back(v); }
  void uvarint(uint64_t v) {
    while (v >= 0x80) {
      buf.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    buf.push_back(static_cast<uint8_t>(v));
  }
  void be16(uint16_t v) {
    uint8_t b[2];
    storeBe16(b, v);
    buf.insert(buf.end(), b, b + 2);
  }
  void be64(uint64_t v) {
    uint8_t b[8];
    storeBe64(b, v);
    buf.insert(buf.end(), b, b + 8);
  }
  void bytes(const void* p, size_t n) {
    auto* c = static_cast<const uint8_t*>(p);
    buf.insert(buf.end(), c, c + n);
  }
  void strs(uint8_t item, const std::vector<std::string>& v) {
    if (v.empty()) return;
    u8(item);
    uvarint(v.size());
    for (const auto& s : v) {
      uvarint(s.size());
      bytes(s.data(), s.size());
    }
  }
  void u16s(uint8_t item, const std::vector<uint16_t>& v) {
    if (v.empty()) return;
    u8(item);
    uvarint(v.size());
    for (uint16_t x : v) be16(x);
  }
};

Status writeIpSet(Out& o, uint8_t item, const std::vector<std::string>& cidrs) {
  if (cidrs.empty()) return {};
  auto ranges = buildIpRanges(cidrs);
  if (!ranges) return unexpected(ranges.error());
  o.u8(item);
  o.u8(1);
  o.be64(ranges->size());
  for (const auto& r : *ranges) {
    o.uvarint(r.from.size());
    o.bytes(r.from.data(), r.from.size());
    o.uvarint(r.to.size());
    o.bytes(r.to.data(), r.to.size());
  }
  return {};
}

Status checkHeadless(const RuleSpec& r) {
  auto bad = [](const char* f) {
    return unexpected(std::string("field \"") + f + "\" cannot be stored in a rule-set");
  };
  if (!r.inbound.empty()) return bad("inbound");
  if (!r.geosite.empty()) return bad("geosite");
  if (!r.geoip.empty()) return bad("geoip");
  if (!r.source_geoip.empty()) return bad("source_geoip");
  if (r.ip_is_private) return bad("ip_is_private");
  if (r.source_ip_is_private) return bad("source_ip_is_private");
  if (!r.ip_version.empty()) return bad("ip_version");
  if (!r.auth_user.empty()) return bad("auth_user");
  if (!r.protocol.empty()) return bad("protocol");
  if (!r.client.empty()) return bad("client");
  if (!r.rule_set.empty()) return bad("rule_set");
  if (r.action) return bad("action");
  return {};
}

Status writeRule(Out& o, const RuleSpec& r, uint8_t version, int depth) {
  if (depth > kMaxSrsDepth) return unexpected("logical rules nest too deeply");
  if (r.type == RuleSpec::Type::Logical) {
    o.u8(1);
    o.u8(r.mode == RuleSpec::Mode::And ? 0 : 1);
    o.uvarint(r.rules.size());
    for (size_t k = 0; k < r.rules.size(); ++k) {
      auto st = writeRule(o, r.rules[k], version, depth + 1);
      if (!st) return unexpected(st.error().wrap("rules[" + std::to_string(k) + "]"));
    }
    o.u8(r.invert ? 1 : 0);
    return {};
  }
  if (auto st = checkHeadless(r); !st) return st;
  o.u8(0);
  o.u16s(kQueryType, r.query_type);
  o.strs(kNetwork, r.network);
  if (!r.domain.empty() || !r.domain_suffix.empty()) {
    auto keys = domainSetKeys(r.domain, r.domain_suffix, version == kRuleSetVersion1);
    if (!keys) return unexpected(keys.error());
    o.u8(kDomain);
    writeSuccinctSet(buildSuccinctSet(*keys), o.buf);
  }
  o.strs(kDomainKeyword, r.domain_keyword);
  o.strs(kDomainRegex, r.domain_regex);
  if (auto st = writeIpSet(o, kSourceIpCidr, r.source_ip_cidr); !st) {
    return unexpected(st.error().wrap("source_ip_cidr"));
  }
  if (auto st = writeIpSet(o, kIpCidr, r.ip_cidr); !st) {
    return unexpected(st.error().wrap("ip_cidr"));
  }
  o.u16s(kSourcePort, r.source_port);
  o.strs(kSourcePortRange, r.source_port_range);
  o.u16s(kPort, r.port);
  o.strs(kPortRange, r.port_range);
  o.strs(kProcessName, r.process_name);
  o.strs(kProcessPath, r.process_path);
  o.strs(kProcessPathRegex, r.process_path_regex);
  o.strs(kPackageName, r.package_name);
  if (!r.network_type.empty()) {
    if (version < kRuleSetVersion3) {
      return unexpected("network_type rule item is only supported in version 3 or later");
    }
    o.u8(kNetworkType);
    o.uvarint(r.network_type.size());
    for (uint8_t t : r.network_type) o.u8(t);
  }
  if (r.network_is_expensive) o.u8(kNetworkIsExpensive);
  if (r.network_is_constrained) o.u8(kNetworkIsConstrained);
  o.strs(kWifiSsid, r.wifi_ssid);
  o.strs(kWifiBssid, r.wifi_bssid);
  if (!r.adguard_domain.empty()) {
    if (version < kRuleSetVersion2) {
      return unexpected("AdGuard rule items are only supported in version 2 or later");
    }
    // veer keeps AdGuard sets as the raw serialised trie (see readRule).
    o.u8(kAdGuardDomain);
    for (const auto& raw : r.adguard_domain) o.bytes(raw.data(), raw.size());
  }
  o.u8(kFinal);
  o.u8(r.invert ? 1 : 0);
  return {};
}

// ---- payload reader ----

class Decoder {
 public:
  Decoder(ByteView payload, uint8_t version, const std::string& file)
      : in_(payload), payload_(payload), version_(version), file_(file), budget_(payload.size() * 16 + 4096) {}

  Result<RuleSetSpec> run() {
    RuleSetSpec set;
    set.version = version_;
    uint64_t n;
    if (!in_.uvarint(n)) return fail("truncated rule count");
    // A rule is at least 3 bytes (type, 0xFF, invert).
    if (n > in_.remaining() / 3) return fail("rule count " + std::to_string(n) + " exceeds data");
    set.rules.resize(static_cast<size_t>(n));
    for (size_t i = 0; i < n; ++i) {
      if (!readRule(set.rules[i], 0)) return unexpected(Error(err_ + " in rules[" + std::to_string(i) + "]"));
    }
    if (!in_.empty()) {
      return fail(std::to_string(in_.remaining()) + " bytes after the last rule");
    }
    return set;
  }

 private:
  Unexpected fail(const std::string& msg) {
    return unexpected(file_ + ": offset " + std::to_string(in_.offset()) + " in payload: " + msg);
  }
  bool bad(const std::string& msg) {
    err_ = file_ + ": offset " + std::to_string(in_.offset()) + " in payload: " + msg;
    return false;
  }

  bool readStrs(std::vector<std::string>& out) {
    uint64_t n;
    if (!in_.uvarint(n)) return bad("truncated list");
    if (n > in_.remaining()) return bad("list count " + std::to_string(n) + " exceeds data");
    out.reserve(static_cast<size_t>(n));
    for (uint64_t k = 0; k < n; ++k) {
      uint64_t len;
      ByteView b;
      if (!in_.uvarint(len) || len > in_.remaining() || !in_.bytes(static_cast<size_t>(len), b)) {
        return bad("truncated string");
      }
      out.emplace_back(asChars(b));
    }
    return true;
  }
  bool readU16s(std::vector<uint16_t>& out) {
    uint64_t n;
    if (!in_.uvarint(n)) return bad("truncated list");
    if (n > in_.remaining() / 2) return bad("list count " + std::to_string(n) + " exceeds data");
    out.resize(static_cast<size_t>(n));
    for (auto& x : out) in_.be16(x);
    return true;
  }
  bool readIpSet(std::vector<std::string>& out) {
    uint8_t ver;
    uint64_t n;
    if (!in_.u8(ver)) return bad("truncated IP set");
    if (ver != 1) return bad("unknown IP set version " + std::to_string(ver));
    if (!in_.be64(n)) return bad("truncated IP set");
    // A range is at least 1+4+1+4 bytes.
    if (n > in_.remaining() / 10) return bad("IP range count " + std::to_string(n) + " exceeds data");
    std::vector<IpRange> ranges;
    ranges.reserve(static_cast<size_t>(n));
    for (uint64_t k = 0; k < n; ++k) {
      IpAddress ends[2];
      for (auto& e : ends) {
        uint64_t len;
        ByteView b;
        if (!in_.uvarint(len) || (len != 4 && len != 16) || !in_.bytes(static_cast<size_t>(len), b)) {
          return bad("bad IP range address");
        }
        e = len == 4 ? IpAddress::v4(b.data()) : IpAddress::v6(b.data());
      }
      if (ends[0].family() != ends[1].family() || ends[1] < ends[0]) return bad("bad IP range");
      ranges.push_back({ends[0], ends[1]});
    }
    out = ipRangesToPrefixes(ranges);
    return true;
  }
  bool readDomainSet(RuleSpec& r) {
    SuccinctSet set;
    if (!readSuccinctSet(in_, set)) return bad("truncated domain set");
    auto keys = succinctKeys(set, budget_);
    if (!keys) return bad(keys.error().message());
    auto st = dumpDomainKeys(*keys, r.domain, r.domain_suffix);
    if (!st) return bad(st.error().message());
    return true;
  }

  bool readRule(RuleSpec& r, int depth) {
    if (depth > kMaxSrsDepth) return bad("logical rules nest too deeply");
    uint8_t type;
    if (!in_.u8(type)) return bad("truncated rule");
    if (type == 1) {
      r.type = RuleSpec::Type::Logical;
      uint8_t mode;
      uint64_t n;
      if (!in_.u8(mode)) return bad("truncated logical rule");
      if (mode > 1) return bad("unknown logical mode " + std::to_string(mode));
      r.mode = mode == 0 ? RuleSpec::Mode::And : RuleSpec::Mode::Or;
      if (!in_.uvarint(n)) return bad("truncated logical rule");
      if (n > in_.remaining() / 3) return bad("sub-rule count " + std::to_string(n) + " exceeds data");
      r.rules.resize(static_cast<size_t>(n));
      for (size_t k = 0; k < n; ++k) {
        if (!readRule(r.rules[k], depth + 1)) {
          err_ += " in rules[" + std::to_string(k) + "]";
          return false;
        }
      }
      return readInvert(r);
    }
    if (type != 0) return bad("unknown rule type " + std::to_string(type));
    int last = -1;
    while (true) {
      uint8_t item;
      if (!in_.u8(item)) return bad("truncated rule (no end marker)");
      bool ok = true;
      switch (item) {
        case kQueryType: ok = readU16s(r.query_type); break;
        case kNetwork: ok = readStrs(r.network); break;
        case kDomain: ok = readDomainSet(r); break;
        case kDomainKeyword: ok = readStrs(r.domain_keyword); break;
        case kDomainRegex: ok = readStrs(r.domain_regex); break;
        case kSourceIpCidr: ok = readIpSet(r.source_ip_cidr); break;
        case kIpCidr: ok = readIpSet(r.ip_cidr); break;
        case kSourcePort: ok = readU16s(r.source_port); break;
        case kSourcePortRange: ok = readStrs(r.source_port_range); break;
        case kPort: ok = readU16s(r.port); break;
        case kPortRange: ok = readStrs(r.port_range); break;
        case kProcessName: ok = readStrs(r.process_name); break;
        case kProcessPath: ok = readStrs(r.process_path); break;
        case kPackageName: ok = readStrs(r.package_name); break;
        case kWifiSsid: ok = readStrs(r.wifi_ssid); break;
        case kWifiBssid: ok = readStrs(r.wifi_bssid); break;
        case kProcessPathRegex: ok = readStrs(r.process_path_regex); break;
        case kAdGuardDomain: {
          // Kept as the raw serialised trie so that decompile can refuse it and compile can
          // write it back unchanged; the structure is still validated here.
          size_t start = in_.offset();
          SuccinctSet set;
          if (!readSuccinctSet(in_, set)) return bad("truncated AdGuard domain set");
          auto keys = succinctKeys(set, budget_);
          if (!keys) return bad(keys.error().message());
          r.adguard_domain.assign(
              1, std::string(asChars(payload_.subspan(start, in_.offset() - start))));
          break;
        }
        case kNetworkType: {
          uint64_t n;
          ByteView b;
          if (!in_.uvarint(n) || n > in_.remaining() || !in_.bytes(static_cast<size_t>(n), b)) {
            return bad("truncated network_type list");
          }
          r.network_type.assign(b.begin(), b.end());
          break;
        }
        case kNetworkIsExpensive: r.network_is_expensive = true; break;
        case kNetworkIsConstrained: r.network_is_constrained = true; break;
        case kNetworkInterfaceAddress:
        case kDefaultInterfaceAddress:
          return bad(std::string(item == kNetworkInterfaceAddress ? "network_interface_address"
                                                                  : "default_interface_address") +
                     " (rule-set version 4) is not supported by veer");
        case kFinal: return readInvert(r);
        default:
          return bad("unknown rule item type " + std::to_string(item) + ", last type " +
                     (last < 0 ? std::string("none") : std::to_string(last)));
      }
      if (!ok) return false;
      last = item;
    }
  }

  bool readInvert(RuleSpec& r) {
    uint8_t inv;
    if (!in_.u8(inv)) return bad("truncated rule (no invert byte)");
    if (inv > 1) return bad("invert byte " + std::to_string(inv) + " is not 0 or 1");
    r.invert = inv == 1;
    return true;
  }

  ByteReader in_;
  ByteView payload_;
  uint8_t version_;
  const std::string& file_;
  size_t budget_;
  std::string err_;
};

}  // namespace

bool parseIpCidrRange(std::string_view text, IpRange& out) {
  size_t slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return false;
  const size_t n = addr->size();
  unsigned bits = static_cast<unsigned>(n * 8);
  if (slash != std::string_view::npos && !parseBits(text.substr(slash + 1), bits, bits)) {
    return false;
  }
  Bytes16 b = raw(*addr);
  unsigned host = static_cast<unsigned>(n * 8) - bits;
  lowBits(b, n, host, false);
  out.from = make(b, addr->isV4());
  lowBits(b, n, host, true);
  out.to = make(b, addr->isV4());
  return true;
}

Result<std::vector<IpRange>> buildIpRanges(const std::vector<std::string>& cidrs) {
  std::vector<IpRange> rs;
  rs.reserve(cidrs.size());
  for (size_t k = 0; k < cidrs.size(); ++k) {
    IpRange r;
    if (!parseIpCidrRange(cidrs[k], r)) {
      return unexpected("parse [" + std::to_string(k) + "]: invalid prefix \"" + cidrs[k] + "\"");
    }
    rs.push_back(r);
  }
  std::sort(rs.begin(), rs.end(), [](const IpRange& a, const IpRange& b) { return a.from < b.from; });
  std::vector<IpRange> out;
  for (const auto& r : rs) {
    if (!out.empty() && out.back().to.family() == r.from.family()) {
      IpRange& last = out.back();
      const size_t n = r.from.size();
      Bytes16 next = raw(last.to);
      bool has_next = increment(next, n);
      // Merge overlapping and adjacent ranges, as netipx does.
      if (!has_next || cmp(raw(r.from), next, n) <= 0) {
        if (last.to < r.to) last.to = r.to;
        continue;
      }
    }
    out.push_back(r);
  }
  return out;
}

std::vector<std::string> ipRangesToPrefixes(const std::vector<IpRange>& ranges) {
  std::vector<std::string> out;
  for (const auto& r : ranges) {
    const bool v4 = r.from.isV4();
    const size_t n = r.from.size();
    const unsigned width = static_cast<unsigned>(n * 8);
    Bytes16 a = raw(r.from);
    const Bytes16 b = raw(r.to);
    while (true) {
      unsigned h = std::min(trailingZeros(a, n), width);
      Bytes16 end;
      while (true) {
        end = a;
        lowBits(end, n, h, true);
        if (cmp(end, b, n) <= 0) break;
        --h;
      }
      out.push_back(formatIpLikeGo(make(a, v4)) + "/" + std::to_string(width - h));
      if (cmp(end, b, n) == 0 || allOnes(end, n)) break;
      a = end;
      increment(a, n);
    }
  }
  return out;
}

std::string formatIpLikeGo(const IpAddress& ip) {
  if (!ip.isV6()) return ip.toString();
  const uint8_t* p = ip.data();
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(p, kMapped, 12) == 0) return "::ffff:" + IpAddress::v4(p + 12).toString();
  uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = loadBe16(p + 2 * i);
  // The longest run of two or more zero groups (the first on a tie) becomes "::".
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len && j - i >= 2) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      s += "::";
      i += best_len - 1;
      continue;
    }
    if (!s.empty() && s.back() != ':') s += ':';
    bool started = false;
    for (int sh = 12; sh >= 0; sh -= 4) {
      int d = (g[i] >> sh) & 0xf;
      if (d || started || sh == 0) {
        s += kHex[d];
        started = true;
      }
    }
  }
  return s;
}

Result<std::vector<uint8_t>> inflateSrs(ByteView data, const std::string& file, uint8_t& version,
                                        const SrsReadOptions& opts) {
  if (data.size() < 4 || std::memcmp(data.data(), kMagic, 3) != 0) {
    return unexpected(file + ": offset 0: not a sing-box rule-set (bad magic)");
  }
  version = data[3];
  if (version == 0 || version > kRuleSetVersionCurrent) {
    return unexpected(file + ": offset 3: unsupported rule-set version " + std::to_string(version));
  }
  auto payload = zlibInflate(data.subspan(4), opts.max_inflated_bytes);
  if (!payload) return unexpected(payload.error().wrap(file + ": compressed data (file offset 4+)"));
  return payload;
}

Result<RuleSetSpec> decodeSrsPayload(ByteView payload, uint8_t version, const std::string& file) {
  Decoder d(payload, version, file);
  return d.run();
}

Result<RuleSetSpec> readSrs(ByteView data, const std::string& file, const SrsReadOptions& opts) {
  uint8_t version = 0;
  auto payload = inflateSrs(data, file, version, opts);
  if (!payload) return unexpected(payload.error());
  return decodeSrsPayload(*payload, version, file);
}

Result<std::vector<uint8_t>> encodeSrsPayload(const RuleSetSpec& set) {
  if (set.version == 0 || set.version > kRuleSetVersionCurrent) {
    return unexpected("unsupported rule-set version " + std::to_string(set.version));
  }
  Out o;
  o.uvarint(set.rules.size());
  for (size_t k = 0; k < set.rules.size(); ++k) {
    auto st = writeRule(o, set.rules[k], set.version, 0);
    if (!st) return unexpected(st.error().wrap("rules[" + std::to_string(k) + "]"));
  }
  return std::move(o.buf);
}

Result<std::vector<uint8_t>> writeSrs(const RuleSetSpec& set) {
  auto payload = encodeSrsPayload(set);
  if (!payload) return unexpected(payload.error());
  auto z = zlibDeflate(*payload, 9);
  if (!z) return unexpected(z.error());
  std::vector<uint8_t> out(kMagic, kMagic + 3);
  out.push_back(set.version);
  out.insert(out.end(), z->begin(), z->end());
  return out;
}

}  // namespace veer::rules
