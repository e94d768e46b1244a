#include "dns/fakeip.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace veer::dns {
namespace {

FakeIpStore makeStore(const char* v4, const char* v6 = nullptr) {
  FakeIpStore::Options o;
  if (v4) o.inet4_range = IpPrefix::parse(v4);
  if (v6) o.inet6_range = IpPrefix::parse(v6);
  auto s = FakeIpStore::create(o);
  EXPECT_TRUE(s.has_value());
  return std::move(*s);
}


TEST(FakeIp, PrefixParse) {
  auto p = IpPrefix::parse("198.18.7.9/15");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->toString(), "198.18.0.0/15");
  EXPECT_TRUE(p->contains(*IpAddress::parse("198.19.255.255")));
  EXPECT_FALSE(p->contains(*IpAddress::parse("198.20.0.0")));
  EXPECT_FALSE(IpPrefix::parse("198.18.0.0/33"));
  EXPECT_FALSE(IpPrefix::parse("198.18.0.0"));
  EXPECT_EQ(IpPrefix::parse("fc00::1/18")->toString(), "fc00::/18");
}

TEST(FakeIp, SequentialAllocationAndReverse) {
  auto s = makeStore("198.18.0.0/15", "fc00::/18");
  EXPECT_EQ(s.allocate("a.test", false)->toString(), "198.18.0.2");
  EXPECT_EQ(s.allocate("b.test", false)->toString(), "198.18.0.3");
  EXPECT_EQ(s.allocate("A.Test", false)->toString(), "198.18.0.2");  // same domain, same IP
  EXPECT_EQ(s.allocate("a.test", true)->toString(), "fc00::2");
  EXPECT_EQ(s.lookupDomain(*IpAddress::parse("198.18.0.3")), "b.test");
  EXPECT_EQ(s.lookupDomain(*IpAddress::parse("::ffff:198.18.0.3")), "b.test");
  EXPECT_EQ(s.lookupDomain(*IpAddress::parse("fc00::2")), "a.test");
  EXPECT_FALSE(s.lookupDomain(*IpAddress::parse("198.18.0.4")));
  EXPECT_TRUE(s.inRange(*IpAddress::parse("198.18.0.4")));
  EXPECT_FALSE(s.inRange(*IpAddress::parse("10.0.0.1")));
}

TEST(FakeIp, WrapAroundDropsOldestMapping) {
  auto s = makeStore("10.0.0.0/30");  // .2 and .3 are usable
  EXPECT_EQ(s.allocate("one", false)->toString(), "10.0.0.2");
  EXPECT_EQ(s.allocate("two", false)->toString(), "10.0.0.3");
  EXPECT_EQ(s.allocate("three", false)->toString(), "10.0.0.2");
  EXPECT_FALSE(s.lookupAddress("one", false));
  EXPECT_EQ(s.lookupDomain(*IpAddress::parse("10.0.0.2")), "three");
  EXPECT_EQ(s.size(), 2u);
  EXPECT_FALSE(s.allocate("x", true).has_value());  // no IPv6 range
}

TEST(FakeIp, RejectsBadRanges) {
  FakeIpStore::Options o;
  o.inet4_range = IpPrefix::parse("fc00::/18");
  EXPECT_FALSE(FakeIpStore::create(o).has_value());
  o.inet4_range = IpPrefix::parse("10.0.0.0/31");
  EXPECT_FALSE(FakeIpStore::create(o).has_value());
}

TEST(FakeIp, SerializeAndRestore) {
  std::vector<uint8_t> body;
  {
    auto s = makeStore("198.18.0.0/15", "fc00::/18");
    s.allocate("a.test", false);
    s.allocate("b.test", false);
    s.allocate("c.test", true);
    EXPECT_TRUE(s.dirty());
    body = s.serialize();
  }
  auto s = makeStore("198.18.0.0/15", "fc00::/18");
  ASSERT_TRUE(s.restore(ByteView(body.data(), body.size())).has_value());
  EXPECT_FALSE(s.dirty());
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.lookupDomain(*IpAddress::parse("198.18.0.3")), "b.test");
  EXPECT_EQ(s.lookupDomain(*IpAddress::parse("fc00::2")), "c.test");
  // Allocation continues after the last address handed out before the restart.
  EXPECT_EQ(s.allocate("d.test", false)->toString(), "198.18.0.4");
  // A store with a different range drops what no longer fits.
  auto other = makeStore("100.64.0.0/10");
  ASSERT_TRUE(other.restore(ByteView(body.data(), body.size())).has_value());
  EXPECT_EQ(other.size(), 0u);
  EXPECT_EQ(other.allocate("a.test", false)->toString(), "100.64.0.2");
  EXPECT_TRUE(s.sameRanges(makeStore("198.18.0.0/15", "fc00::/18")));
  EXPECT_FALSE(s.sameRanges(makeStore("198.18.0.0/16", "fc00::/18")));
  EXPECT_FALSE(s.sameRanges(makeStore("198.18.0.0/15")));
}

TEST(FakeIp, MalformedBodiesFailWithOffsetAndKeepTheTable) {
  auto s = makeStore("198.18.0.0/15");
  s.allocate("a.test", false);
  std::vector<uint8_t> good = s.serialize();
  auto t = makeStore("198.18.0.0/15");
  t.allocate("keep.test", false);
  auto fails = [&](std::vector<uint8_t> b, const std::string& what) {
    auto r = t.restore(ByteView(b.data(), b.size()), 100);
    ASSERT_FALSE(r.has_value()) << what;
    EXPECT_NE(r.error().message().find("offset 1"), std::string::npos) << r.error().message();
    EXPECT_EQ(t.lookupDomain(*IpAddress::parse("198.18.0.2")), "keep.test") << what;
  };
  for (size_t cut = 0; cut < good.size(); ++cut) {
    fails(std::vector<uint8_t>(good.begin(), good.begin() + cut), "cut at " + std::to_string(cut));
  }
  auto b = good;
  b.push_back(0);
  fails(b, "trailing byte");
  b = good;
  b[0] = 0x80;
  fails(b, "unknown flags");
  b = good;
  b[5] = 40;  // IPv4 prefix bits
  fails(b, "prefix length");
  b = good;
  b[10 + 3] = 0xff;  // entry count
  fails(b, "huge count");
  b = good;
  b[14] = 5;  // entry family
  fails(b, "family");
  b = good;
  b[14 + 5 + 1] = 'A';  // upper-case name
  fails(b, "not canonical");
  b = good;
  b[14 + 5] = 0;  // name length 0
  fails(b, "empty name");
}

}  // namespace
}  // namespace veer::dns
