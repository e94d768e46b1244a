#include <gtest/gtest.h>

#include "rules/aho_corasick.h"
#include "rules/cidr_set.h"
#include "rules/domain_set.h"

namespace veer::rules {
namespace {

IpAddress ip(const char* s) { return *IpAddress::parse(s); }

TEST(DomainSet, ExactMatchesOnlyTheName) {
  DomainSet s;
  s.add("example.com", DomainSet::Kind::Exact, 7);
  s.finalize();
  DomainSet::Hit hit;
  EXPECT_TRUE(s.match("example.com", &hit));
  EXPECT_EQ(hit.tag, 7u);
  EXPECT_EQ(hit.name, "example.com");
  EXPECT_FALSE(s.match("www.example.com"));
  EXPECT_FALSE(s.match("xexample.com"));
  EXPECT_FALSE(s.match("example.co"));
  EXPECT_TRUE(s.match("example.com."));  // trailing dot of an FQDN is ignored
}

TEST(DomainSet, SuffixMatchesOnLabelBoundary) {
  DomainSet s;
  s.add("x.com", DomainSet::Kind::Suffix, 0);
  s.finalize();
  EXPECT_TRUE(s.match("x.com"));
  EXPECT_TRUE(s.match("a.x.com"));
  EXPECT_TRUE(s.match("b.a.x.com"));
  EXPECT_FALSE(s.match("ax.com"));
  EXPECT_FALSE(s.match("com"));
  EXPECT_FALSE(s.match("x.com.cn"));
}

TEST(DomainSet, LeadingDotMeansSubdomainsOnly) {
  DomainSet s;
  s.add(".x.com", DomainSet::Kind::Suffix, 0);
  s.finalize();
  DomainSet::Hit hit;
  EXPECT_FALSE(s.match("x.com"));
  EXPECT_TRUE(s.match("a.x.com", &hit));
  EXPECT_EQ(hit.kind, DomainSet::Kind::SubdomainOnly);
}

TEST(DomainSet, SuffixAndDottedSuffixMergeToSelfMatching) {
  DomainSet s;
  s.add(".x.com", DomainSet::Kind::Suffix, 1);
  s.add("x.com", DomainSet::Kind::Suffix, 2);
  s.finalize();
  EXPECT_EQ(s.size(), 1u);
  EXPECT_TRUE(s.match("x.com"));
  EXPECT_TRUE(s.match("a.x.com"));
}

TEST(DomainSet, ValuesAreLowerCasedAndDeduplicated) {
  DomainSet s;
  s.add("Example.COM", DomainSet::Kind::Exact, 0);
  s.add("example.com", DomainSet::Kind::Exact, 0);
  s.finalize();
  EXPECT_EQ(s.size(), 1u);
  EXPECT_TRUE(s.match("example.com"));
}

TEST(DomainSet, ManyEntries) {
  DomainSet s;
  for (int i = 0; i < 5000; ++i) s.add("d" + std::to_string(i) + ".test", DomainSet::Kind::Suffix, i);
  s.finalize();
  DomainSet::Hit hit;
  ASSERT_TRUE(s.match("www.d4321.test", &hit));
  EXPECT_EQ(hit.tag, 4321u);
  EXPECT_FALSE(s.match("d5000.test"));
  EXPECT_FALSE(s.match("test"));
}

TEST(DomainSet, EmptySetMatchesNothing) {
  DomainSet s;
  s.finalize();
  EXPECT_FALSE(s.match("a.com"));
  EXPECT_FALSE(s.match(""));
}

TEST(AhoCorasick, FindsAnyKeyword) {
  AhoCorasick ac;
  ac.add("google", 0);
  ac.add("gle", 1);
  ac.add("facebook", 2);
  ac.add("oo", 3);
  ac.finalize();
  uint32_t idx = 99;
  EXPECT_TRUE(ac.search("www.facebook.com", &idx));
  EXPECT_EQ(ac.keyword(idx), "oo");  // the keyword that ends first is reported
  EXPECT_TRUE(ac.search("xgooy", &idx));
  EXPECT_EQ(ac.keyword(idx), "oo");
  EXPECT_TRUE(ac.search("eagle", &idx));
  EXPECT_EQ(ac.keyword(idx), "gle");
  EXPECT_FALSE(ac.search("example.com"));
  EXPECT_FALSE(ac.search(""));
}

TEST(AhoCorasick, FailLinksFindOverlaps) {
  AhoCorasick ac;
  ac.add("abcd", 0);
  ac.add("bce", 1);
  ac.finalize();
  uint32_t idx = 0;
  EXPECT_TRUE(ac.search("xabce", &idx));  // "abc" fails on 'e', must fall back to "bc"
  EXPECT_EQ(ac.keyword(idx), "bce");
  EXPECT_FALSE(ac.search("abcabc"));
}

TEST(AhoCorasick, AgreesWithNaiveSearch) {
  std::vector<std::string> kws = {"ab", "bab", "aab", "bbb", "abba", "a.b"};
  AhoCorasick ac;
  for (size_t i = 0; i < kws.size(); ++i) ac.add(kws[i], i);
  ac.finalize();
  uint32_t seed = 1;
  for (int n = 0; n < 2000; ++n) {
    std::string text;
    for (int i = 0; i < 8; ++i) {
      seed = seed * 1103515245 + 12345;
      text += "ab."[(seed >> 16) % 3];
    }
    bool naive = false;
    for (const auto& k : kws) naive = naive || text.find(k) != std::string::npos;
    EXPECT_EQ(ac.search(text), naive) << text;
  }
}

TEST(CidrSet, V4AndV6Prefixes) {
  CidrSet s;
  ASSERT_TRUE(s.add("10.0.0.0/8"));
  ASSERT_TRUE(s.add("192.168.1.7"));
  ASSERT_TRUE(s.add("2001:db8::/32"));
  ASSERT_TRUE(s.add("1.2.3.4/24"));  // host bits are masked off
  s.finalize();
  EXPECT_TRUE(s.contains(ip("10.1.2.3")));
  EXPECT_TRUE(s.contains(ip("10.255.255.255")));
  EXPECT_FALSE(s.contains(ip("11.0.0.0")));
  EXPECT_TRUE(s.contains(ip("192.168.1.7")));
  EXPECT_FALSE(s.contains(ip("192.168.1.8")));
  EXPECT_TRUE(s.contains(ip("1.2.3.200")));
  EXPECT_TRUE(s.contains(ip("2001:db8:ffff::1")));
  EXPECT_FALSE(s.contains(ip("2001:db9::1")));
  EXPECT_FALSE(s.contains(IpAddress()));
}

TEST(CidrSet, MappedAddressesAreUnmapped) {
  CidrSet s;
  ASSERT_TRUE(s.add("10.0.0.0/8"));
  ASSERT_TRUE(s.add("::ffff:172.16.0.0/108"));  // = 172.16.0.0/12
  s.finalize();
  EXPECT_TRUE(s.contains(ip("::ffff:10.9.8.7")));
  EXPECT_TRUE(s.contains(ip("172.31.255.255")));
  EXPECT_FALSE(s.contains(ip("172.32.0.0")));
}

TEST(CidrSet, MergesOverlappingAndAdjacentRanges) {
  CidrSet s;
  ASSERT_TRUE(s.add("10.0.0.0/24"));
  ASSERT_TRUE(s.add("10.0.1.0/24"));
  ASSERT_TRUE(s.add("10.0.0.128/25"));
  ASSERT_TRUE(s.add("0.0.0.0/0"));
  ASSERT_TRUE(s.add("::/0"));
  ASSERT_TRUE(s.add("ffff::/16"));
  s.finalize();
  EXPECT_EQ(s.rangeCount(), 2u);
  EXPECT_TRUE(s.contains(ip("255.255.255.255")));
  EXPECT_TRUE(s.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
}

TEST(CidrSet, RejectsBadPrefixes) {
  CidrSet s;
  EXPECT_FALSE(s.add("10.0.0.0/33"));
  EXPECT_FALSE(s.add("10.0.0/8"));
  EXPECT_FALSE(s.add("example.com"));
  EXPECT_FALSE(s.add("::/129"));
  EXPECT_FALSE(s.add("1.2.3.4/"));
  EXPECT_FALSE(s.add("1.2.3.4/x"));
}

TEST(PortSet, RangesInAllForms) {
  uint16_t lo = 0, hi = 0;
  ASSERT_TRUE(PortSet::parseRange("1000:2000", &lo, &hi));
  EXPECT_EQ(lo, 1000);
  EXPECT_EQ(hi, 2000);
  ASSERT_TRUE(PortSet::parseRange(":2000", &lo, &hi));
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 2000);
  ASSERT_TRUE(PortSet::parseRange("1000:", &lo, &hi));
  EXPECT_EQ(lo, 1000);
  EXPECT_EQ(hi, 65535);
  ASSERT_TRUE(PortSet::parseRange("5-6", &lo, &hi));
  EXPECT_EQ(lo, 5);
  EXPECT_EQ(hi, 6);
  EXPECT_FALSE(PortSet::parseRange(":", &lo, &hi));
  EXPECT_FALSE(PortSet::parseRange("2000:1000", &lo, &hi));
  EXPECT_FALSE(PortSet::parseRange("1:70000", &lo, &hi));
  EXPECT_FALSE(PortSet::parseRange("80", &lo, &hi));
  PortSet s;
  s.add(80, 80);
  s.add(1000, 2000);
  s.add(2001, 2001);
  s.finalize();
  EXPECT_TRUE(s.contains(80));
  EXPECT_FALSE(s.contains(81));
  EXPECT_TRUE(s.contains(2001));
  EXPECT_FALSE(s.contains(2002));
  EXPECT_FALSE(s.contains(0));
}

}  // namespace
}  // namespace veer::rules
