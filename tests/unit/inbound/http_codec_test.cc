#include "inbound/http_codec.h"

#include <gtest/gtest.h>

namespace veer::inbound::http {
namespace {

TEST(HttpRequest, ParsesAbsoluteUri) {
  std::string req =
      "GET http://Example.com:8080/a/b?q=1#frag HTTP/1.1\r\nHost: example.com:8080\r\n"
      "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nAccept: */*\r\n\r\nBODY";
  RequestHead h;
  std::string why;
  ASSERT_EQ(parseRequestHead(asBytes(req), h, why), Parse::Done) << why;
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.head_len, req.size() - 4);
  std::string origin;
  auto d = proxyDestination(h, origin, why);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->toString(), "example.com:8080");
  EXPECT_EQ(origin, "/a/b?q=1");
  std::string out = rewriteForOrigin(h, origin, *d);
  EXPECT_EQ(out,
            "GET /a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n\r\n");
}

TEST(HttpRequest, Connect) {
  std::string req = "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n";
  RequestHead h;
  std::string why, origin;
  ASSERT_EQ(parseRequestHead(asBytes(req), h, why), Parse::Done);
  auto d = proxyDestination(h, origin, why);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->toString(), "[2001:db8::1]:443");
  RequestHead h2;
  std::string bad = "CONNECT example.com HTTP/1.1\r\n\r\n";
  ASSERT_EQ(parseRequestHead(asBytes(bad), h2, why), Parse::Done);
  EXPECT_FALSE(proxyDestination(h2, origin, why));
}

TEST(HttpRequest, IncompleteAndMalformed) {
  std::string req = "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n";
  for (size_t n = 0; n < req.size(); ++n) {
    RequestHead h;
    std::string why;
    EXPECT_EQ(parseRequestHead(asBytes(req.substr(0, n)), h, why), Parse::NeedMore) << n;
  }
  const char* bad[] = {"GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "G@T / HTTP/1.1\r\n\r\n",
                       "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\n Folded: x\r\n\r\n",
                       "\x16\x03\x01\x00\x05hello"};
  for (const char* b : bad) {
    RequestHead h;
    std::string why;
    EXPECT_EQ(parseRequestHead(asBytes(b), h, why), Parse::Bad) << b;
  }
  std::string huge = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHeadSize, 'a');
  RequestHead h;
  std::string why;
  EXPECT_EQ(parseRequestHead(asBytes(huge), h, why), Parse::Bad);
}

TEST(HttpBody, ContentLengthAndChunked) {
  RequestHead h;
  h.headers.push_back({"Content-Length", "5"});
  std::string why;
  bool ok;
  BodyFramer f = BodyFramer::forRequest(h, why, ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(f.consume(asBytes("abc")), 3);
  EXPECT_FALSE(f.done());
  EXPECT_EQ(f.consume(asBytes("deNEXT")), 2);
  EXPECT_TRUE(f.done());

  RequestHead c;
  c.headers.push_back({"Transfer-Encoding", "chunked"});
  BodyFramer cf = BodyFramer::forRequest(c, why, ok);
  std::string body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  // One byte at a time: the framer must end exactly before "NEXT".
  size_t used = 0;
  for (size_t i = 0; i < body.size() && !cf.done(); ++i) {
    long n = cf.consume(asBytes(body.substr(i, 1)));
    ASSERT_GE(n, 0) << i;
    used += static_cast<size_t>(n);
  }
  EXPECT_TRUE(cf.done());
  EXPECT_EQ(body.substr(used), "NEXT");

  BodyFramer bad = BodyFramer::forRequest(c, why, ok);
  EXPECT_LT(bad.consume(asBytes("zz\r\n")), 0);
  RequestHead both;
  both.headers.push_back({"Transfer-Encoding", "chunked"});
  both.headers.push_back({"Content-Length", "3"});
  BodyFramer::forRequest(both, why, ok);
  EXPECT_FALSE(ok);  // request smuggling vector
}

TEST(HttpResponse, FramingRules) {
  std::string resp = "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n";
  ResponseHead h;
  std::string why;
  bool ok;
  ASSERT_EQ(parseResponseHead(asBytes(resp), h, why), Parse::Done);
  EXPECT_TRUE(BodyFramer::forResponse(h, "GET", why, ok).done());
  ResponseHead h2;
  std::string r2 = "HTTP/1.0 200 OK\r\n\r\n";
  ASSERT_EQ(parseResponseHead(asBytes(r2), h2, why), Parse::Done);
  EXPECT_EQ(BodyFramer::forResponse(h2, "GET", why, ok).kind(), BodyFramer::Kind::UntilClose);
  EXPECT_TRUE(BodyFramer::forResponse(h2, "HEAD", why, ok).done());
  ResponseHead h3;
  EXPECT_EQ(parseResponseHead(asBytes("SSH-2.0-x\r\n\r\n"), h3, why), Parse::Bad);
}

TEST(HttpKeepAlive, Versions) {
  std::string close = "close", ka = "keep-alive";
  EXPECT_TRUE(keepAlive("HTTP/1.1", nullptr));
  EXPECT_FALSE(keepAlive("HTTP/1.1", &close));
  EXPECT_FALSE(keepAlive("HTTP/1.0", nullptr));
  EXPECT_TRUE(keepAlive("HTTP/1.0", &ka));
}

}  // namespace
}  // namespace veer::inbound::http
