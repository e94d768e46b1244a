// sniffTls: byte-at-a-time growth (Envoy's MultipleReads), ClientHellos fragmented over many
// records, the size cap, and malformed hellos.
#include <gtest/gtest.h>

#include <filesystem>

#include "hello_builder.h"
#include "sniff/sniff.h"
#include "sniff_test_util.h"

namespace veer::sniff::test {
namespace {

// Feeds one more byte at a time: NeedMore up to `complete` bytes, Match from there on with the
// same domain.
void expectGrowth(const Bytes& stream, size_t complete, const std::string& domain) {
  ASSERT_LE(complete, stream.size());
  for (size_t n = 0; n <= stream.size(); ++n) {
    Info info;
    Status st = sniffTls(ByteView(stream).first(n), info);
    if (n < complete) {
      ASSERT_EQ(st, Status::NeedMore) << "after " << n << " of " << complete << " bytes";
    } else {
      ASSERT_EQ(st, Status::Match) << "after " << n << " bytes";
      ASSERT_EQ(info.domain, domain);
      ASSERT_EQ(info.protocol, "tls");
    }
  }
}

TEST(SniffTls, BuiltHelloByteAtATime) {
  HelloSpec s;
  s.sni = "Some.Example";
  s.alpn = {"h2", "http/1.1"};
  Bytes stream = tlsRecords(buildClientHello(s), 16384);
  expectGrowth(stream, stream.size(), "some.example");
  Info info;
  ASSERT_EQ(sniffTls(stream, info), Status::Match);
  EXPECT_EQ(info.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
}

TEST(SniffTls, FragmentedOverManyRecords) {
  HelloSpec s;
  s.sni = "fragments.example";
  s.paddingExt = 2100;  // a Chrome-sized hello
  const Bytes hello = buildClientHello(s);
  for (size_t recordSize : {4u, 5u, 100u, 1000u, 2000u}) {
    SCOPED_TRACE(recordSize);
    Bytes stream = tlsRecords(hello, recordSize);
    expectGrowth(stream, stream.size(), "fragments.example");
  }
  // Tiny records with a small hello (the growth check is quadratic in the stream length).
  s.paddingExt = 0;
  for (size_t recordSize : {1u, 3u}) {
    SCOPED_TRACE(recordSize);
    Bytes stream = tlsRecords(buildClientHello(s), recordSize);
    expectGrowth(stream, stream.size(), "fragments.example");
  }
}

TEST(SniffTls, CapturedHellosByteAtATime) {
  REQUIRE_TESTDATA(dir);
  size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/sniff/tls")) {
    const std::string name = entry.path().filename().string();
    // sniproxy good-data-2/4 carry a short handshake length on purpose (manifest "acceptable").
    if (name.find("sniproxy-good-data-2") == 0 || name.find("sniproxy-good-data-4") == 0) continue;
    SCOPED_TRACE(name);
    auto chunks = readChunks(entry.path().string());
    ASSERT_TRUE(chunks);
    Bytes stream = concat(*chunks);
    ASSERT_GE(stream.size(), 9u);
    Info whole;
    ASSERT_EQ(sniffTls(stream, whole), Status::Match);
    // Single-record hellos: complete once the record header and the message are in.
    const size_t complete = 5 + 4 + loadBe24(stream.data() + 6);
    expectGrowth(stream, complete, whole.domain);
    ++checked;
  }
  EXPECT_GT(checked, 30u);
}

TEST(SniffTls, CapturedChromeHelloSplitOverRecordsAndReads) {
  REQUIRE_TESTDATA(dir);
  auto hello = readChunks(dir + "/sniff/quic-decrypted/singbox-chrome-new-3pkt.clienthello.hex");
  ASSERT_TRUE(hello);
  Bytes msg = concat(*hello);
  ASSERT_EQ(msg.size(), 4u + 2286u);  // header + the manifest's clienthello_len
  for (size_t recordSize : {512u, 1400u, 16384u}) {
    SCOPED_TRACE(recordSize);
    expectGrowth(tlsRecords(msg, recordSize), tlsRecords(msg, recordSize).size(),
                 "www.google.com");
  }
}

TEST(SniffTls, Rejections) {
  HelloSpec s;
  s.sni = "reject.example";
  const Bytes hello = buildClientHello(s);
  Info info;
  // Not a handshake record, or not TLS at all.
  Bytes alert = tlsRecords(hello, 16384);
  alert[0] = 21;
  EXPECT_EQ(sniffTls(alert, info), Status::NoMatch);
  EXPECT_EQ(sniffTls(asBytes("GET / HTTP/1.1\r\n"), info), Status::NoMatch);
  EXPECT_EQ(sniffTls(asBytes("\x16\x04"), info), Status::NoMatch);
  // A ServerHello (type 2) is not what a client sends.
  Bytes server = hello;
  server[0] = 2;
  EXPECT_EQ(sniffTls(tlsRecords(server, 16384), info), Status::NoMatch);
  // A handshake announcing more than the 16 KiB sniff buffer can hold.
  Bytes huge{0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00};
  EXPECT_EQ(sniffTls(huge, info), Status::NoMatch);
  // A record longer than TLS allows.
  Bytes longRecord{0x16, 0x03, 0x01, 0x48, 0x01, 0x01};
  EXPECT_EQ(sniffTls(longRecord, info), Status::NoMatch);
  // Two server_name extensions.
  HelloSpec dup = s;
  dup.duplicateSni = true;
  EXPECT_EQ(sniffTls(tlsRecords(buildClientHello(dup), 16384), info), Status::NoMatch);
  // A trailing dot in the SNI is illegal (RFC 6066 3).
  HelloSpec dot = s;
  dot.sni = "dot.example.";
  EXPECT_EQ(sniffTls(tlsRecords(buildClientHello(dot), 16384), info), Status::NoMatch);
  // Extensions that run past the message.
  Bytes cut = hello;
  cut.resize(cut.size() - 3);
  cut[3] = static_cast<uint8_t>(cut[3] - 3);  // keep the handshake length consistent
  EXPECT_EQ(sniffTls(tlsRecords(cut, 16384), info), Status::NoMatch);
}

TEST(SniffTls, HelloWithoutSniMatchesWithoutDomain) {
  HelloSpec s;  // no SNI
  Info info;
  ASSERT_EQ(sniffTls(tlsRecords(buildClientHello(s), 16384), info), Status::Match);
  EXPECT_EQ(info.protocol, "tls");
  EXPECT_TRUE(info.domain.empty());
}

TEST(SniffTls, NeverNeedsMoreThanTheCap) {
  // A stream of many 1-byte records never completing: must stop at the 16 KiB cap.
  HelloSpec s;
  s.paddingExt = 12000;
  Bytes stream = tlsRecords(buildClientHello(s), 1);  // 6 bytes per message byte
  ASSERT_GT(stream.size(), kMaxStreamSniffBytes);
  Info info;
  EXPECT_EQ(sniffTls(ByteView(stream).first(kMaxStreamSniffBytes), info), Status::NoMatch);
  EXPECT_EQ(sniffTls(ByteView(stream).first(kMaxStreamSniffBytes - 1), info), Status::NeedMore);
}

}  // namespace
}  // namespace veer::sniff::test
