#include <zlib.h>

#include <algorithm>
#include <random>
#include <set>

#include "geodata_testutil.h"
#include "rules/geoip_mmdb.h"
#include "rules/geosite_db.h"
#include "rules/ruleset_json.h"
#include "rules/srs.h"
#include "rules/succinct_set.h"
#include "rules/zlib_util.h"
#include "testutil/testutil.h"

namespace veer::rules {
namespace {

using test::listFiles;
using test::readBytes;

std::vector<std::string> allSrs(const std::string& td) {
  std::vector<std::string> out;
  for (const char* d : {"/ruleset/meta-rules-dat-sing/geosite", "/ruleset/meta-rules-dat-sing/geoip",
                        "/ruleset/sing-geosite-rule-set", "/ruleset/sing-geoip-rule-set"}) {
    auto f = listFiles(td + d, ".srs");
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

TEST(Srs, AllFilesRoundTripThroughJsonToIdenticalPayload) {
  REQUIRE_TESTDATA(td);
  auto files = allSrs(td);
  ASSERT_EQ(files.size(), 34u);
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    auto bytes = readBytes(f);
    uint8_t version = 0;
    auto payload = inflateSrs(bytes, f, version);
    ASSERT_TRUE(payload) << payload.error().message();
    auto set = decodeSrsPayload(*payload, version, f);
    ASSERT_TRUE(set) << set.error().message();
    ASSERT_FALSE(set->rules.empty());
    auto text = writeRuleSetJson(*set);
    ASSERT_TRUE(text) << text.error().message();
    auto again = readRuleSetJson(*text, f + ".json");
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->version, version);
    auto encoded = encodeSrsPayload(*again);
    ASSERT_TRUE(encoded) << encoded.error().message();
    EXPECT_TRUE(*encoded == *payload) << "payload differs after .srs -> JSON -> .srs";
    // The whole file written by veer reads back to the same payload.
    auto file = writeSrs(*again);
    ASSERT_TRUE(file);
    uint8_t v2 = 0;
    auto p2 = inflateSrs(*file, "rewritten", v2);
    ASSERT_TRUE(p2);
    EXPECT_EQ(v2, version);
    EXPECT_TRUE(*p2 == *payload);
  }
}

TEST(Srs, SourceJsonCompilesToSingBoxPayload) {
  REQUIRE_TESTDATA(td);
  auto jsons = listFiles(td + "/ruleset/meta-rules-dat-sing/geosite", ".json");
  auto ip = listFiles(td + "/ruleset/meta-rules-dat-sing/geoip", ".json");
  jsons.insert(jsons.end(), ip.begin(), ip.end());
  ASSERT_EQ(jsons.size(), 21u);
  size_t compressed_equal = 0;
  for (const auto& j : jsons) {
    SCOPED_TRACE(j);
    auto text = test::readFile(j);
    ASSERT_TRUE(text);
    auto set = readRuleSetJson(*text, j);
    ASSERT_TRUE(set) << set.error().message();
    set->version = compileVersion(*set);
    std::string srs_path = j.substr(0, j.size() - 5) + ".srs";
    auto srs = readBytes(srs_path);
    uint8_t version = 0;
    auto expected = inflateSrs(srs, srs_path, version);
    ASSERT_TRUE(expected);
    EXPECT_EQ(set->version, version);
    auto mine = encodeSrsPayload(*set);
    ASSERT_TRUE(mine) << mine.error().message();
    EXPECT_TRUE(*mine == *expected) << "compiled payload differs from sing-box's";
    auto file = writeSrs(*set);
    ASSERT_TRUE(file);
    if (*file == srs) ++compressed_equal;
  }
  // Informational: Go's zlib (BestCompression) and zlib level 9 produce different streams.
  std::printf("[ info ] compressed .srs byte-identical to sing-box: %zu of %zu\n",
              compressed_equal, jsons.size());
}

// geosite-<code>.srs (v1) were generated in the same run as geosite.db: same items.
TEST(Srs, SingGeositeRuleSetsMatchGeositeDb) {
  REQUIRE_TESTDATA(td);
  auto db = GeositeDb::open(td + "/singbox-db/geosite.db");
  ASSERT_TRUE(db) << db.error().message();
  auto files = listFiles(td + "/ruleset/sing-geosite-rule-set", ".srs");
  ASSERT_EQ(files.size(), 10u);
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    std::string code = f.substr(f.rfind("/geosite-") + 9);
    code.resize(code.size() - 4);
    auto set = readSrs(readBytes(f), f);
    ASSERT_TRUE(set) << set.error().message();
    ASSERT_EQ(set->version, 1);
    // Normalise both sides to (type, value) with suffix "x" expanded to domain x + ".x".
    std::set<std::pair<int, std::string>> from_srs, from_db;
    for (const auto& r : set->rules) {
      for (const auto& d : r.domain) from_srs.insert({0, d});
      for (const auto& s : r.domain_suffix) {
        if (s[0] == '.') {
          from_srs.insert({1, s});
        } else {
          from_srs.insert({0, s});
          from_srs.insert({1, "." + s});
        }
      }
      for (const auto& k : r.domain_keyword) from_srs.insert({2, k});
      for (const auto& x : r.domain_regex) from_srs.insert({3, x});
    }
    auto items = (*db)->load(code);
    ASSERT_TRUE(items) << items.error().message();
    for (const auto& it : *items) {
      int t = static_cast<int>(it.type);
      if (t == 1 && it.value[0] != '.') {
        from_db.insert({0, it.value});
        from_db.insert({1, "." + it.value});
      } else {
        from_db.insert({t, it.value});
      }
    }
    EXPECT_EQ(from_srs, from_db);
  }
}

// geoip-<cc>.srs (v1) hold every network geoip.db maps to <cc>: check the range ends.
TEST(Srs, SingGeoipRuleSetsAgreeWithGeoipDb) {
  REQUIRE_TESTDATA(td);
  auto db = GeoipMmdb::open(td + "/singbox-db/geoip.db");
  ASSERT_TRUE(db) << db.error().message();
  for (const char* cc : {"cn", "mo", "ad"}) {
    SCOPED_TRACE(cc);
    std::string f = td + "/ruleset/sing-geoip-rule-set/geoip-" + cc + ".srs";
    auto set = readSrs(readBytes(f), f);
    ASSERT_TRUE(set) << set.error().message();
    ASSERT_EQ(set->rules.size(), 1u);
    auto ranges = buildIpRanges(set->rules[0].ip_cidr);
    ASSERT_TRUE(ranges);
    ASSERT_GT(ranges->size(), 0u);
    size_t checked = 0;
    for (size_t k = 0; k < ranges->size(); k += std::max<size_t>(1, ranges->size() / 200)) {
      EXPECT_EQ((*db)->lookup((*ranges)[k].from), cc) << (*ranges)[k].from.toString();
      EXPECT_EQ((*db)->lookup((*ranges)[k].to), cc) << (*ranges)[k].to.toString();
      ++checked;
    }
    EXPECT_GT(checked, 0u);
  }
}

TEST(Succinct, BuildAndWalkRandomKeys) {
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::set<std::string> keys;
    int n = 1 + static_cast<int>(rng() % 300);
    for (int k = 0; k < n; ++k) {
      std::string s;
      int len = static_cast<int>(rng() % 12);
      for (int i = 0; i < len; ++i) s.push_back("ab.\r\nz"[rng() % 6]);
      keys.insert(s);
    }
    std::vector<std::string> sorted(keys.begin(), keys.end());
    auto set = buildSuccinctSet(sorted);
    std::vector<uint8_t> bytes;
    writeSuccinctSet(set, bytes);
    ByteReader in(bytes);
    SuccinctSet back;
    ASSERT_TRUE(readSuccinctSet(in, back));
    EXPECT_TRUE(in.empty());
    auto walked = succinctKeys(back, 1 << 20);
    ASSERT_TRUE(walked) << walked.error().message();
    EXPECT_EQ(*walked, sorted);
  }
}

TEST(Succinct, DomainKeysPerVersion) {
  auto v1 = domainSetKeys({"a.com"}, {"x.org", ".y.net"}, true);
  ASSERT_TRUE(v1);
  std::set<std::string> k1(v1->begin(), v1->end());
  EXPECT_EQ(k1, (std::set<std::string>{"gro.x", "gro.x.\r", "ten.y.\r", "moc.a"}));
  auto v2 = domainSetKeys({"x.org", "a.com"}, {"x.org"}, false);
  ASSERT_TRUE(v2);
  // The domain equal to a suffix is dropped: the suffix covers it.
  EXPECT_EQ(*v2, (std::vector<std::string>{"gro.x\n", "moc.a"}));
  std::vector<std::string> d, s;
  ASSERT_TRUE(dumpDomainKeys(*v1, d, s));
  EXPECT_EQ(d, (std::vector<std::string>{"a.com"}));
  EXPECT_EQ(s, (std::vector<std::string>{".y.net", "x.org"}));
  EXPECT_FALSE(domainSetKeys({""}, {}, false));
  EXPECT_EQ(reverseDomainKey("ab\xc3\xa9."), ".\xc3\xa9" "ba");
}

TEST(IpSet, MergesAndFormatsLikeNetipx) {
  auto r = buildIpRanges({"10.0.0.0/9", "10.128.0.0/9", "1.2.3.4", "::1", "::/127", "fe80::/10",
                          "::ffff:1.2.3.0/120"});
  ASSERT_TRUE(r);
  auto p = ipRangesToPrefixes(*r);
  EXPECT_EQ(p, (std::vector<std::string>{"1.2.3.4/32", "10.0.0.0/8", "::/127",
                                         "::ffff:1.2.3.0/120", "fe80::/10"}));
  auto odd = buildIpRanges({"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/32"});
  ASSERT_TRUE(odd);
  EXPECT_EQ(ipRangesToPrefixes(*odd),
            (std::vector<std::string>{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/32"}));
  auto all = buildIpRanges({"0.0.0.0/0", "::/0"});
  ASSERT_TRUE(all);
  EXPECT_EQ(ipRangesToPrefixes(*all), (std::vector<std::string>{"0.0.0.0/0", "::/0"}));
  EXPECT_FALSE(buildIpRanges({"10.0.0.0/33"}));
  EXPECT_FALSE(buildIpRanges({"10.0.0.0/08"}));
  EXPECT_FALSE(buildIpRanges({"nope"}));
  EXPECT_EQ(formatIpLikeGo(*IpAddress::parse("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");
  EXPECT_EQ(formatIpLikeGo(*IpAddress::parse("::1.2.3.4")), "::102:304");
  EXPECT_EQ(formatIpLikeGo(*IpAddress::parse("1:0:2::")), "1:0:2::");
}

// ---- hostile input ----

std::vector<uint8_t> srsFile(uint8_t version, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out{'S', 'R', 'S', version};
  auto z = zlibDeflate(payload, 6);
  out.insert(out.end(), z->begin(), z->end());
  return out;
}

void expectError(const Result<RuleSetSpec>& r, const std::string& needle) {
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("bad.srs"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
}

TEST(SrsHostile, HeaderErrors) {
  std::vector<uint8_t> ok_payload{1, 0, 0xff, 0};
  auto good = srsFile(1, ok_payload);
  ASSERT_TRUE(readSrs(good, "good.srs"));
  auto bad = good;
  bad[0] = 'X';
  expectError(readSrs(bad, "bad.srs"), "offset 0");
  expectError(readSrs(srsFile(0, ok_payload), "bad.srs"), "version 0");
  expectError(readSrs(srsFile(5, ok_payload), "bad.srs"), "version 5");
  expectError(readSrs(std::vector<uint8_t>{'S', 'R'}, "bad.srs"), "magic");
  auto trailing = good;
  trailing.push_back(0);
  expectError(readSrs(trailing, "bad.srs"), "trailing");
}

TEST(SrsHostile, EveryTruncationFailsCleanly) {
  REQUIRE_TESTDATA(td);
  std::string f = td + "/ruleset/meta-rules-dat-sing/geosite/tracker.srs";
  auto bytes = readBytes(f);
  uint8_t v;
  auto payload = inflateSrs(bytes, f, v);
  ASSERT_TRUE(payload);
  for (size_t n = 0; n < bytes.size(); n += 1 + n / 64) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    EXPECT_FALSE(readSrs(cut, "bad.srs")) << n;
  }
  for (size_t n = 0; n < payload->size(); n += 1 + n / 64) {
    ByteView cut(payload->data(), n);
    EXPECT_FALSE(decodeSrsPayload(cut, v, "bad.srs")) << n;
  }
}

TEST(SrsHostile, ZipBombStopsAtCap) {
  std::vector<uint8_t> zeros(4 << 20, 0);
  zeros[0] = 1;  // one rule ...
  SrsReadOptions opts;
  opts.max_inflated_bytes = 1 << 20;
  expectError(readSrs(srsFile(1, zeros), "bad.srs", opts), "exceeds");
}

TEST(SrsHostile, HugeCountsAreRejectedBeforeAllocating) {
  // 2^62 rules.
  expectError(readSrs(srsFile(1, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40}),
                      "bad.srs"),
              "exceeds");
  // A string list claiming 2^40 entries.
  expectError(readSrs(srsFile(1, {1, 0, 3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}), "bad.srs"),
              "exceeds");
  // An IP set with 2^63 ranges.
  expectError(readSrs(srsFile(1, {1, 0, 6, 1, 0x80, 0, 0, 0, 0, 0, 0, 0}), "bad.srs"), "exceeds");
  // A domain set whose leaves claim 2^35 words.
  expectError(readSrs(srsFile(1, {1, 0, 2, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), "bad.srs"),
              "domain set");
  // Unknown item, unknown rule type, bad invert byte.
  expectError(readSrs(srsFile(1, {1, 0, 0x42, 0, 0, 0}), "bad.srs"), "unknown rule item type 66");
  expectError(readSrs(srsFile(1, {1, 7, 0, 0, 0}), "bad.srs"), "unknown rule type 7");
  expectError(readSrs(srsFile(1, {1, 0, 0xff, 9}), "bad.srs"), "invert");
}

TEST(SrsHostile, DeepLogicalNestingIsBounded) {
  std::vector<uint8_t> p{1};
  for (int k = 0; k < 10000; ++k) {
    p.push_back(1);  // logical
    p.push_back(0);  // and
    p.push_back(1);  // one sub-rule
  }
  expectError(readSrs(srsFile(1, p), "bad.srs"), "");
}

TEST(SrsHostile, MalformedTrie) {
  // labelBitmap word with zeros but no labels: label index out of range.
  std::vector<uint8_t> p{1, 0, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  expectError(readSrs(srsFile(1, p), "bad.srs"), "label index");
}

TEST(SrsWriter, RefusesWhatSingBoxRefuses) {
  RuleSetSpec s;
  s.version = 2;
  RuleSpec r;
  r.network_type = {1};
  s.rules.push_back(r);
  EXPECT_FALSE(encodeSrsPayload(s));
  s.version = 3;
  EXPECT_TRUE(encodeSrsPayload(s));
  EXPECT_EQ(compileVersion(s), 3);
  s.rules[0].network_type.clear();
  s.rules[0].domain = {"a.com"};
  EXPECT_EQ(compileVersion(s), 2);
  s.rules[0].ip_cidr = {"300.0.0.0/8"};
  EXPECT_FALSE(encodeSrsPayload(s));
  s.rules[0].ip_cidr.clear();
  s.rules[0].inbound = {"tproxy"};
  EXPECT_FALSE(encodeSrsPayload(s));
}

}  // namespace
}  // namespace veer::rules
