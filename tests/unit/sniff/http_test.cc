// sniffHttp: request heads, Host forms, growth one byte at a time, rejections.
#include <gtest/gtest.h>

#include "sniff/sniff.h"
#include "sniff_test_util.h"

namespace veer::sniff::test {
namespace {

Status sniff(std::string_view s, Info& info) { return sniffHttp(asBytes(s), info); }

TEST(SniffHttp, HostForms) {
  struct Case {
    const char* head;
    const char* domain;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nHost: WWW.Example.com\r\n\r\n", "www.example.com"},
      {"GET / HTTP/1.1\r\nhost:example.com:8080\r\n\r\n", "example.com"},
      {"GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n", "2001:db8::1"},
      {"GET / HTTP/1.1\r\nHost: 192.0.2.1:80\r\n\r\n", "192.0.2.1"},
      {"GET http://proxy.example:3128/x HTTP/1.1\r\nHost: other.example\r\n\r\n", "proxy.example"},
      {"POST /a HTTP/1.0\nUser-Agent: x\nHost:  lf.example \n\n", "lf.example"},
      {"OPTIONS * HTTP/1.1\r\nX-Folded: a\r\n  b\r\nHost: fold.example\r\n\r\n", "fold.example"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.head);
    Info info;
    ASSERT_EQ(sniff(c.head, info), Status::Match);
    EXPECT_EQ(info.protocol, "http");
    EXPECT_EQ(info.domain, c.domain);
  }
}

TEST(SniffHttp, GrowsOneByteAtATime) {
  const std::string head = "GET /index.html HTTP/1.1\r\nHost: grow.example\r\nAccept: */*\r\n\r\n";
  for (size_t n = 0; n < head.size(); ++n) {
    Info info;
    ASSERT_EQ(sniff(std::string_view(head).substr(0, n), info), Status::NeedMore) << n;
  }
  Info info;
  ASSERT_EQ(sniff(head, info), Status::Match);
  EXPECT_EQ(info.domain, "grow.example");
}

TEST(SniffHttp, WithoutHostMatchesWithoutDomain) {
  Info info;
  ASSERT_EQ(sniff("GET / HTTP/1.0\r\n\r\n", info), Status::Match);
  EXPECT_EQ(info.protocol, "http");
  EXPECT_TRUE(info.domain.empty());
}

TEST(SniffHttp, Rejections) {
  const char* bad[] = {
      "\x16\x03\x01\x02\x00\x01",                 // TLS
      "GET /\r\n\r\n",                            // HTTP/0.9 style, no version
      "GET / HTTP/1.1 extra\r\n\r\n",             // junk after the version
      "GET / FTP/1.0\r\n\r\n",                    // not HTTP
      "GE(T / HTTP/1.1\r\n\r\n",                  // not a token
      " GET / HTTP/1.1\r\n\r\n",                  // leading space
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",  // malformed header
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",    // space in a field name
      "GET / HTTQ",                               // a prefix that can no longer be HTTP
      "SSH-2.0-OpenSSH_9.0\r\n",
  };
  for (const char* b : bad) {
    SCOPED_TRACE(b);
    Info info;
    EXPECT_EQ(sniff(b, info), Status::NoMatch);
  }
}

TEST(SniffHttp, HeadLargerThanTheCapIsNoMatch) {
  std::string head = "GET / HTTP/1.1\r\nX-Big: " + std::string(kMaxStreamSniffBytes, 'a');
  Info info;
  EXPECT_EQ(sniff(head, info), Status::NoMatch);
  EXPECT_EQ(sniff(std::string_view(head).substr(0, 1000), info), Status::NeedMore);
}

}  // namespace
}  // namespace veer::sniff::test
