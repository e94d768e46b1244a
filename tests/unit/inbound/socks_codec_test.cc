#include "inbound/socks_codec.h"

#include <gtest/gtest.h>

namespace veer::inbound::socks {
namespace {

ByteView bv(const std::string& s) { return asBytes(s); }

TEST(Socks5, GreetingByteByByte) {
  std::string msg = {5, 2, 0, 2};
  for (size_t n = 0; n < msg.size(); ++n) {
    Greeting g;
    size_t used = 0;
    std::string why;
    EXPECT_EQ(parseGreeting(bv(msg.substr(0, n)), g, used, why), Parse::NeedMore) << n;
  }
  Greeting g;
  size_t used = 0;
  std::string why;
  ASSERT_EQ(parseGreeting(bv(msg), g, used, why), Parse::Done);
  EXPECT_EQ(used, 4u);
  EXPECT_EQ(g.methods, (std::vector<uint8_t>{0, 2}));
}

TEST(Socks5, GreetingMalformed) {
  Greeting g;
  size_t used = 0;
  std::string why;
  EXPECT_EQ(parseGreeting(bv(std::string({4, 1, 0})), g, used, why), Parse::Bad);
  EXPECT_EQ(parseGreeting(bv(std::string({5, 0})), g, used, why), Parse::Bad);
  EXPECT_FALSE(why.empty());
}

TEST(Socks5, RequestDomainIpv4Ipv6) {
  Request r;
  size_t used = 0;
  std::string why;
  std::string dom = std::string({5, 1, 0, 3, 11}) + "Example.COM" + std::string({0x01, (char)0xbb});
  ASSERT_EQ(parseRequest(bv(dom), r, used, why), Parse::Done);
  EXPECT_EQ(r.command, kConnect);
  EXPECT_EQ(r.dst.domain, "example.com");
  EXPECT_EQ(r.dst.port, 443);
  EXPECT_EQ(used, dom.size());
  std::string v4 = {5, 1, 0, 1, 127, 0, 0, 1, 0, 80};
  ASSERT_EQ(parseRequest(bv(v4), r, used, why), Parse::Done);
  EXPECT_EQ(r.dst.toString(), "127.0.0.1:80");
  std::string v6 = {5, 3, 0, 4};
  v6 += std::string(15, '\0') + std::string(1, 1) + std::string({0, 53});
  ASSERT_EQ(parseRequest(bv(v6), r, used, why), Parse::Done);
  EXPECT_EQ(r.command, kUdpAssociate);
  EXPECT_EQ(r.dst.toString(), "[::1]:53");
  // Every prefix of a valid request needs more.
  for (size_t n = 0; n < dom.size(); ++n) {
    EXPECT_EQ(parseRequest(bv(dom.substr(0, n)), r, used, why), Parse::NeedMore) << n;
  }
}

TEST(Socks5, RequestMalformed) {
  Request r;
  size_t used = 0;
  std::string why;
  EXPECT_EQ(parseRequest(bv(std::string({5, 1, 0, 9, 1, 2})), r, used, why), Parse::Bad);
  EXPECT_EQ(parseRequest(bv(std::string({5, 1, 0, 3, 0, 0, 80})), r, used, why), Parse::Bad);
  EXPECT_EQ(parseRequest(bv(std::string({4, 1, 0, 1})), r, used, why), Parse::Bad);
}

TEST(Socks4, PlainAnd4a) {
  Request4 r;
  size_t used = 0;
  std::string why;
  std::string plain = {4, 1, 0, 80, 10, 0, 0, 1, 'u', 0};
  ASSERT_EQ(parseRequest4(bv(plain), r, used, why), Parse::Done);
  EXPECT_EQ(r.dst.toString(), "10.0.0.1:80");
  EXPECT_EQ(r.user, "u");
  std::string a = std::string({4, 1, 0, 80, 0, 0, 0, 9, 0}) + "host.test" + std::string(1, '\0');
  ASSERT_EQ(parseRequest4(bv(a), r, used, why), Parse::Done);
  EXPECT_EQ(r.dst.toString(), "host.test:80");
  EXPECT_EQ(used, a.size());
  EXPECT_EQ(parseRequest4(bv(a.substr(0, a.size() - 1)), r, used, why), Parse::NeedMore);
}

TEST(Socks4, OverlongFieldsAreRefused) {
  Request4 r;
  size_t used = 0;
  std::string why;
  std::string bad = std::string({4, 1, 0, 80, 1, 2, 3, 4}) + std::string(300, 'x');
  EXPECT_EQ(parseRequest4(bv(bad), r, used, why), Parse::Bad);
}

TEST(Socks5, UdpHeaderRoundTrip) {
  Destination d = Destination::fromHost("dns.test", 53);
  std::string pkt = udpHeader(d) + "payload";
  UdpHeader h;
  std::string why;
  ASSERT_EQ(parseUdpHeader(bv(pkt), h, why), Parse::Done);
  EXPECT_EQ(h.dst.toString(), "dns.test:53");
  EXPECT_EQ(pkt.substr(h.header_len), "payload");
  EXPECT_EQ(parseUdpHeader(bv(pkt.substr(0, 5)), h, why), Parse::Bad);
}

TEST(Socks5, Replies) {
  Destination b;
  b.ip = IpAddress::v4(0x7f000001u);
  b.port = 1080;
  EXPECT_EQ(reply5(kSucceeded, b), std::string({5, 0, 0, 1, 127, 0, 0, 1, 4, 56}));
  EXPECT_EQ(reply4(true)[1], 0x5a);
  EXPECT_EQ(static_cast<uint8_t>(reply4(false)[1]), 0x5b);
}

}  // namespace
}  // namespace veer::inbound::socks
