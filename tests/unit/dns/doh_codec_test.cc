#include "dns/doh_codec.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace veer::dns {
namespace {

using State = DohResponseReader::State;

const std::string kMsg = std::string("\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                         std::string("\x03web\x04test\x00\x00\x01\x00\x01", 15);
const std::string kLen = std::to_string(kMsg.size());
const std::string kRestHex = [] {
  char b[8];
  snprintf(b, sizeof b, "%zx", kMsg.size() - 5);
  return std::string(b);
}();
const std::string kHead = "HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n";

State feedAll(DohResponseReader& r, const std::string& s) {
  return r.feed(ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

// Feeds one byte at a time; returns the first state that is not NeedMore (or NeedMore).
State feedBytewise(DohResponseReader& r, const std::string& s) {
  State st = State::NeedMore;
  for (char c : s) {
    st = r.feed(ByteView(reinterpret_cast<const uint8_t*>(&c), 1));
    if (st != State::NeedMore) break;
  }
  return st;
}

std::string body(const DohResponseReader& r) {
  return std::string(r.body().begin(), r.body().end());
}

TEST(DohCodec, BuildsPostRequest) {
  std::string m = "abcdefghijkl";
  auto req = buildDohRequest("dns.test:8443", "/dns-query", {{"X-A", "b"}},
                             ByteView(reinterpret_cast<const uint8_t*>(m.data()), m.size()));
  EXPECT_EQ(req,
            "POST /dns-query HTTP/1.1\r\nHost: dns.test:8443\r\n"
            "Content-Type: application/dns-message\r\nAccept: application/dns-message\r\n"
            "Content-Length: 12\r\nX-A: b\r\n\r\nabcdefghijkl");
}

TEST(DohCodec, ContentLengthBody) {
  std::string resp = kHead + "Content-Length: " + std::to_string(kMsg.size()) + "\r\n\r\n" + kMsg;
  DohResponseReader a, b;
  EXPECT_EQ(feedAll(a, resp), State::Done);
  EXPECT_EQ(body(a), kMsg);
  EXPECT_TRUE(a.keepAlive());
  EXPECT_EQ(a.excess(), 0u);
  EXPECT_EQ(feedBytewise(b, resp), State::Done);
  EXPECT_EQ(body(b), kMsg);
}

TEST(DohCodec, ChunkedBody) {
  std::string resp = kHead + "Transfer-Encoding: chunked\r\n\r\n" + "5;x=y\r\n" + kMsg.substr(0, 5) +
                     "\r\n" + kRestHex + "\r\n" + kMsg.substr(5) + "\r\n0\r\nX-Trailer: 1\r\n\r\n";
  DohResponseReader a, b;
  EXPECT_EQ(feedAll(a, resp), State::Done);
  EXPECT_EQ(body(a), kMsg);
  EXPECT_EQ(feedBytewise(b, resp), State::Done);
  EXPECT_EQ(body(b), kMsg);
}

TEST(DohCodec, BodyUntilCloseEndsAtFinish) {
  std::string resp = "HTTP/1.0 200 OK\r\nContent-Type: Application/DNS-Message; x=1\r\n\r\n" + kMsg;
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, resp), State::NeedMore);
  EXPECT_EQ(r.finish(), State::Done);
  EXPECT_EQ(body(r), kMsg);
  EXPECT_FALSE(r.keepAlive());
}

TEST(DohCodec, InterimResponseSkipped) {
  std::string resp =
      "HTTP/1.1 100 Continue\r\n\r\n" + kHead + "Content-Length: " + kLen + "\r\n\r\n" + kMsg;
  DohResponseReader r;
  EXPECT_EQ(feedBytewise(r, resp), State::Done);
  EXPECT_EQ(body(r), kMsg);
}

TEST(DohCodec, ConnectionCloseHeader) {
  std::string resp = kHead + "Connection: close\r\nContent-Length: " + kLen + "\r\n\r\n" + kMsg;
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, resp), State::Done);
  EXPECT_FALSE(r.keepAlive());
}

TEST(DohCodec, BadStatus) {
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\nno"), State::Bad);
  EXPECT_EQ(r.error(), "HTTP status 502");
  EXPECT_EQ(r.status(), 502);
}

TEST(DohCodec, WrongContentType) {
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + kLen +
                           "\r\n\r\n" + kMsg),
            State::Bad);
  EXPECT_NE(r.error().find("text/html"), std::string::npos) << r.error();
  DohResponseReader none;
  EXPECT_EQ(feedAll(none, "HTTP/1.1 200 OK\r\nContent-Length: " + kLen + "\r\n\r\n" + kMsg),
            State::Bad);
}

TEST(DohCodec, TruncatedBody) {
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, kHead + "Content-Length: 100\r\n\r\n" + kMsg), State::NeedMore);
  EXPECT_EQ(r.finish(), State::Bad);
  EXPECT_NE(r.error().find("truncated"), std::string::npos) << r.error();
}

TEST(DohCodec, TruncatedHeadAndNothing) {
  DohResponseReader r;
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.finish(), State::Bad);
  EXPECT_EQ(r.error(), "connection closed before the response");
  DohResponseReader h;
  EXPECT_EQ(feedAll(h, "HTTP/1.1 200 OK\r\nContent-"), State::NeedMore);
  EXPECT_FALSE(h.empty());
  EXPECT_EQ(h.finish(), State::Bad);
}

TEST(DohCodec, BodyTooShortForDns) {
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, kHead + "Content-Length: 4\r\n\r\nabcd"), State::Bad);
  EXPECT_NE(r.error().find("not a DNS message"), std::string::npos) << r.error();
}

TEST(DohCodec, BadChunkedEncoding) {
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, kHead + "Transfer-Encoding: chunked\r\n\r\nzz\r\n"), State::Bad);
  EXPECT_EQ(r.error(), "bad chunked encoding");
}

TEST(DohCodec, NotHttp) {
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, std::string("\x00\x1b\x12\x34garbage", 11)), State::Bad);
}

TEST(DohCodec, BodyTooLarge) {
  DohResponseReader r;
  std::string big(70000, 'a');
  EXPECT_EQ(feedAll(r, kHead + "Content-Length: 70000\r\n\r\n" + big), State::Bad);
  DohResponseReader c;
  std::string chunk = "ffff\r\n" + std::string(0xffff, 'a') + "\r\n";
  EXPECT_EQ(feedAll(c, kHead + "Transfer-Encoding: chunked\r\n\r\n" + chunk + chunk + chunk),
            State::Bad);
}

TEST(DohCodec, ExcessBytesAfterResponse) {
  DohResponseReader r;
  EXPECT_EQ(feedAll(r, kHead + "Content-Length: " + kLen + "\r\n\r\n" + kMsg + "HTTP/1.1"),
            State::Done);
  EXPECT_EQ(r.excess(), 8u);
  r.reset();
  EXPECT_EQ(r.state(), State::NeedMore);
  EXPECT_EQ(r.excess(), 0u);
}

}  // namespace
}  // namespace veer::dns
