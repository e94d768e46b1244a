#include "base/address.h"

#include <gtest/gtest.h>

namespace veer {
namespace {

TEST(IpAddress, ParsesAndFormats) {
  auto a = IpAddress::parse("192.168.1.10");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->isV4());
  EXPECT_EQ(a->toString(), "192.168.1.10");
  auto b = IpAddress::parse("2001:db8::1");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->isV6());
  EXPECT_EQ(b->toString(), "2001:db8::1");
  EXPECT_FALSE(IpAddress::parse("1.2.3"));
  EXPECT_FALSE(IpAddress::parse("example.com"));
  EXPECT_FALSE(IpAddress::parse(""));
  EXPECT_FALSE(IpAddress::parse("1.2.3.4.5"));
}

TEST(IpAddress, UnmapAndPrivate) {
  auto m = IpAddress::parse("::ffff:10.1.2.3");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->unmap().toString(), "10.1.2.3");
  EXPECT_TRUE(m->isNonPublic());
  EXPECT_TRUE(IpAddress::parse("127.0.0.1")->isNonPublic());
  EXPECT_TRUE(IpAddress::parse("172.20.0.1")->isNonPublic());
  EXPECT_FALSE(IpAddress::parse("172.32.0.1")->isNonPublic());
  EXPECT_TRUE(IpAddress::parse("fd00::1")->isNonPublic());
  EXPECT_TRUE(IpAddress::parse("fe80::1")->isNonPublic());
  EXPECT_FALSE(IpAddress::parse("8.8.8.8")->isNonPublic());
  EXPECT_FALSE(IpAddress::parse("2001:4860::8888")->isNonPublic());
}

TEST(IpAddress, Orders) {
  EXPECT_LT(*IpAddress::parse("1.2.3.4"), *IpAddress::parse("1.2.3.5"));
  EXPECT_LT(*IpAddress::parse("255.255.255.255"), *IpAddress::parse("::"));
}

TEST(SocketAddress, ParsesBothFamilies) {
  auto a = SocketAddress::parse("127.0.0.1:2080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port(), 2080);
  EXPECT_EQ(a->toString(), "127.0.0.1:2080");
  auto b = SocketAddress::parse("[::1]:53");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->toString(), "[::1]:53");
  EXPECT_FALSE(SocketAddress::parse("127.0.0.1"));
  EXPECT_FALSE(SocketAddress::parse("127.0.0.1:65536"));
  EXPECT_FALSE(SocketAddress::parse("[::1:53"));
}

TEST(Destination, FromHost) {
  auto d = Destination::fromHost("WWW.Example.COM.", 443);
  EXPECT_EQ(d.domain, "www.example.com");
  EXPECT_EQ(d.toString(), "www.example.com:443");
  auto i = Destination::fromHost("[2001:db8::2]", 80);
  EXPECT_FALSE(i.isDomain());
  EXPECT_EQ(i.toString(), "[2001:db8::2]:80");
}

}  // namespace
}  // namespace veer
