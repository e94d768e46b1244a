// TLS ClientHello fragmentation: the pieces put back together are the original bytes, every
// cut falls inside a label of the server name (never in the public suffix), and records are
// well-formed TLS records.
#include "conn/tls_fragment.h"

#include <gtest/gtest.h>

#include "../sniff/hello_builder.h"

namespace veer::conn {
namespace {

std::string record(const std::string& sni, const std::string& tail = {}) {
  sniff::test::HelloSpec spec;
  spec.sni = sni;
  auto msg = sniff::test::buildClientHello(spec);
  std::string r = {0x16, 0x03, 0x01, static_cast<char>(msg.size() >> 8),
                   static_cast<char>(msg.size() & 0xff)};
  r.append(reinterpret_cast<const char*>(msg.data()), msg.size());
  return r + tail;
}

TEST(TlsFragment, RecordsReassembleAndCutInsideLabels) {
  std::mt19937 rng(1);
  for (int round = 0; round < 200; ++round) {
    std::string in = record("www.example.com", "APPDATA");
    auto out = fragmentClientHello(in, "www.example.com", true, rng);
    ASSERT_EQ(out.size(), 1u);
    const std::string& w = out[0];
    // Parse the records back.
    std::string payload;
    std::vector<size_t> sizes;
    size_t off = 0;
    while (off + 5 <= w.size() && static_cast<uint8_t>(w[off]) == 0x16) {
      EXPECT_EQ(w[off + 1], 0x03);
      EXPECT_EQ(w[off + 2], 0x01);
      size_t n = static_cast<size_t>(static_cast<uint8_t>(w[off + 3])) << 8 |
                 static_cast<uint8_t>(w[off + 4]);
      ASSERT_LE(off + 5 + n, w.size());
      payload.append(w, off + 5, n);
      sizes.push_back(n);
      off += 5 + n;
    }
    // "www" and "example" are cut once each; "com" never: three records.
    ASSERT_EQ(sizes.size(), 3u);
    EXPECT_EQ(payload, in.substr(5, in.size() - 5 - 7));
    EXPECT_EQ(w.substr(off), "APPDATA");
    // The first cut is inside "www", the second inside "example".
    size_t at = payload.find("www.example.com");
    ASSERT_NE(at, std::string::npos);
    EXPECT_GT(sizes[0], at);
    EXPECT_LT(sizes[0], at + 3);
    size_t second = sizes[0] + sizes[1];
    EXPECT_GT(second, at + 4);
    EXPECT_LT(second, at + 4 + 7);
  }
}

TEST(TlsFragment, SegmentsReassembleToTheOriginal) {
  std::mt19937 rng(7);
  std::string in = record("a.bb.ccc.example.org");
  auto out = fragmentClientHello(in, "a.bb.ccc.example.org", false, rng);
  // "a" is too short to cut; bb, ccc and example are cut: four segments.
  ASSERT_EQ(out.size(), 4u);
  std::string joined;
  for (const auto& p : out) {
    EXPECT_FALSE(p.empty());
    joined += p;
  }
  EXPECT_EQ(joined, in);
  size_t at = in.find("a.bb.ccc.example.org");
  EXPECT_EQ(out[0].size(), at + 3);  // "bb" can only be cut after its first byte
}

TEST(TlsFragment, NameAsSentMayDifferInCase) {
  std::mt19937 rng(3);
  std::string in = record("WWW.Example.COM");
  auto out = fragmentClientHello(in, "www.example.com", false, rng);
  EXPECT_EQ(out.size(), 3u);
}

TEST(TlsFragment, LeavesOtherDataAlone) {
  std::mt19937 rng(5);
  std::string hello = record("www.example.com");
  EXPECT_TRUE(fragmentClientHello("GET / HTTP/1.1\r\n\r\n", "www.example.com", true, rng).empty());
  EXPECT_TRUE(fragmentClientHello(hello.substr(0, hello.size() - 1), "www.example.com", true, rng)
                  .empty());  // truncated record
  EXPECT_TRUE(fragmentClientHello(record("localhost"), "localhost", false, rng).empty());
  EXPECT_TRUE(fragmentClientHello(hello, "other.example.net", false, rng).empty());
  EXPECT_TRUE(fragmentClientHello(hello, "", false, rng).empty());
  std::string not_hello = hello;
  not_hello[5] = 2;  // ServerHello
  EXPECT_TRUE(fragmentClientHello(not_hello, "www.example.com", false, rng).empty());
}

}  // namespace
}  // namespace veer::conn
