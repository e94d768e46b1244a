// QuicSniffer: Initials built at test time (split, reordered, duplicated, several DCIDs, every
// version), client detection, and the captured multi-datagram Chrome handshakes.
#include <gtest/gtest.h>

#include <algorithm>

#include "hello_builder.h"
#include "sniff/sniff.h"
#include "sniff_test_util.h"

namespace veer::sniff::test {
namespace {

const Bytes kDcid = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};

Bytes bigHello(const std::string& sni) {
  HelloSpec s;
  s.sni = sni;
  s.alpn = {"h3"};
  s.paddingExt = 2000;  // as large as Chrome's with an ML-KEM key share
  return buildClientHello(s);
}

TEST(QuicSniffer, SingleInitialEveryVersion) {
  for (uint32_t version : {kQuicVersion1, kQuicVersion2, kQuicDraft29}) {
    SCOPED_TRACE(version);
    HelloSpec s;
    s.sni = "Example.COM";
    s.alpn = {"h3", "h3-29"};
    Bytes hello = buildClientHello(s);
    Bytes pkt = sealInitial(version, kDcid, 0, cryptoFrame(0, hello.data(), hello.size()));
    QuicSniffer q;
    Info info;
    ASSERT_EQ(q.feed(pkt, info), Status::Match);
    EXPECT_EQ(info.protocol, "quic");
    EXPECT_EQ(info.domain, "example.com");
    EXPECT_EQ(info.alpn, (std::vector<std::string>{"h3", "h3-29"}));
  }
}

TEST(QuicSniffer, SplitInitialsInAnyOrder) {
  const Bytes hello = bigHello("split.example");
  auto pkts = splitInitials(kQuicVersion1, kDcid, hello, 800);
  ASSERT_EQ(pkts.size(), 3u);
  std::vector<size_t> order{0, 1, 2};
  // Every permutation: NeedMore until the last piece arrives, then the name.
  do {
    QuicSniffer q;
    for (size_t i = 0; i < order.size(); ++i) {
      Info info;
      Status st = q.feed(pkts[order[i]], info);
      if (i + 1 < order.size()) {
        EXPECT_EQ(st, Status::NeedMore);
        EXPECT_EQ(info.protocol, "quic");
        EXPECT_TRUE(info.domain.empty());
      } else {
        ASSERT_EQ(st, Status::Match);
        EXPECT_EQ(info.domain, "split.example");
        EXPECT_EQ(info.client, "chromium");  // only Chromium splits (sing-box)
      }
    }
  } while (std::next_permutation(order.begin(), order.end()));
}

TEST(QuicSniffer, OutOfOrderFramesInOnePacketAndDuplicates) {
  const Bytes hello = bigHello("frames.example");
  // Three CRYPTO frames in reverse order plus a retransmitted, overlapping middle piece.
  Bytes frames;
  const size_t a = 600, b = 1300;
  auto f3 = cryptoFrame(b, hello.data() + b, hello.size() - b);
  auto f2 = cryptoFrame(a, hello.data() + a, b - a);
  auto f1 = cryptoFrame(0, hello.data(), a);
  auto dup = cryptoFrame(a - 100, hello.data() + a - 100, 300);
  for (const auto* f : {&f3, &dup, &f2, &f1}) frames.insert(frames.end(), f->begin(), f->end());
  frames.push_back(0x01);  // PING
  Bytes pkt = sealInitial(kQuicVersion1, kDcid, 1, frames);
  QuicSniffer q;
  Info info;
  ASSERT_EQ(q.feed(pkt, info), Status::Match);
  EXPECT_EQ(info.domain, "frames.example");
}

TEST(QuicSniffer, StateIsKeptPerDcid) {
  const Bytes dcidB = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto a = splitInitials(kQuicVersion1, kDcid, bigHello("a.example"), 1000);
  auto b = splitInitials(kQuicVersion1, dcidB, bigHello("b.example"), 1000);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  QuicSniffer q;
  Info info;
  // Interleaved: a0 b0 a1 b1 a2 b2 -- pieces of one connection never complete the other's.
  EXPECT_EQ(q.feed(a[0], info), Status::NeedMore);
  EXPECT_EQ(q.feed(b[0], info), Status::NeedMore);
  EXPECT_EQ(q.feed(a[1], info), Status::NeedMore);
  EXPECT_EQ(q.feed(b[1], info), Status::NeedMore);
  ASSERT_EQ(q.feed(a[2], info), Status::Match);
  EXPECT_EQ(info.domain, "a.example");
  ASSERT_EQ(q.feed(b[2], info), Status::Match);
  EXPECT_EQ(info.domain, "b.example");
}

TEST(QuicSniffer, ClientGuesses) {
  HelloSpec s;
  s.sni = "client.example";
  Bytes hello = buildClientHello(s);
  Bytes crypto = cryptoFrame(0, hello.data(), hello.size());
  Info info;
  {
    // One CRYPTO frame and nothing else in the packet: Firefox.
    QuicSniffer q;
    ASSERT_EQ(q.feed(sealInitial(kQuicVersion1, kDcid, 0, crypto, 0), info), Status::Match);
    EXPECT_EQ(info.client, "firefox");
  }
  {
    // Padding first, CRYPTO last: quic-go.
    Bytes frames(200, 0);
    frames.insert(frames.end(), crypto.begin(), crypto.end());
    QuicSniffer q;
    ASSERT_EQ(q.feed(sealInitial(kQuicVersion1, kDcid, 0, frames, 0), info), Status::Match);
    EXPECT_EQ(info.client, "quic-go");
  }
  {
    // CRYPTO then padding, with Safari's lone cipher, group and signature algorithm.
    HelloSpec safari = s;
    safari.ciphers = {0x1302};
    safari.groups = {0x001d};
    safari.sigalgs = {0x0403};
    Bytes h = buildClientHello(safari);
    QuicSniffer q;
    ASSERT_EQ(q.feed(sealInitial(kQuicVersion1, kDcid, 0, cryptoFrame(0, h.data(), h.size())), info),
              Status::Match);
    EXPECT_EQ(info.client, "safari");
  }
  {
    // CRYPTO then padding with an ordinary hello: no rule applies.
    QuicSniffer q;
    ASSERT_EQ(q.feed(sealInitial(kQuicVersion1, kDcid, 0, crypto), info), Status::Match);
    EXPECT_EQ(info.client, "unknown");
  }
  {
    // Several CRYPTO frames in one packet without the Chrome 115 fingerprint: uQUIC (quic-go).
    Bytes frames = cryptoFrame(10, hello.data() + 10, hello.size() - 10);
    Bytes first = cryptoFrame(0, hello.data(), 10);
    frames.insert(frames.end(), first.begin(), first.end());
    QuicSniffer q;
    ASSERT_EQ(q.feed(sealInitial(kQuicVersion1, kDcid, 0, frames), info), Status::Match);
    EXPECT_EQ(info.client, "quic-go");
  }
}

TEST(QuicSniffer, RejectsWhatIsNotADecryptableInitial) {
  HelloSpec s;
  s.sni = "reject.example";
  Bytes hello = buildClientHello(s);
  Bytes pkt = sealInitial(kQuicVersion1, kDcid, 0, cryptoFrame(0, hello.data(), hello.size()));
  Info info;
  // Every truncation of the packet fails the Length check or the tag: never a crash.
  for (size_t n = 0; n < pkt.size(); ++n) {
    QuicSniffer q;
    ASSERT_EQ(q.feed(ByteView(pkt).first(n), info), Status::NoMatch) << n;
  }
  // Every single-byte corruption after the version is rejected by the AEAD, header protection
  // or header checks; the DCID changes the keys.
  for (size_t i = 5; i < pkt.size(); i += 7) {
    Bytes bad = pkt;
    bad[i] ^= 0x40;
    QuicSniffer q;
    EXPECT_NE(q.feed(bad, info), Status::Match) << i;
  }
  // An unknown version (0x1a2a3a4a, as used to force version negotiation).
  Bytes vn = pkt;
  vn[1] = 0x1a, vn[2] = 0x2a, vn[3] = 0x3a, vn[4] = 0x4a;
  QuicSniffer q;
  EXPECT_EQ(q.feed(vn, info), Status::NoMatch);
  // A v1 packet carrying the v2 Initial type bits is not an Initial.
  Bytes typed = pkt;
  typed[0] = static_cast<uint8_t>((typed[0] & 0xcf) | 0x10);
  EXPECT_EQ(q.feed(typed, info), Status::NoMatch);
  // Frames that a client Initial may not carry (STREAM 0x08) reject the packet.
  Bytes frames = cryptoFrame(0, hello.data(), hello.size());
  frames.insert(frames.end(), {0x08, 0x00, 0x01, 0x61});
  EXPECT_EQ(q.feed(sealInitial(kQuicVersion1, kDcid, 0, frames), info), Status::NoMatch);
  // A CRYPTO offset past the reassembly cap.
  EXPECT_EQ(q.feed(sealInitial(kQuicVersion1, kDcid, 0, cryptoFrame(1 << 20, hello.data(), 4)), info),
            Status::NoMatch);
  // A complete but malformed ClientHello (wrong handshake type) is NoMatch, not NeedMore.
  Bytes notHello = hello;
  notHello[0] = 2;
  EXPECT_EQ(q.feed(sealInitial(kQuicVersion1, kDcid, 0,
                               cryptoFrame(0, notHello.data(), notHello.size())),
                   info),
            Status::NoMatch);
}

TEST(QuicSniffer, TooManyHolesGivesUp) {
  const Bytes hello = bigHello("holes.example");
  QuicSniffer q;
  Info info;
  Status st = Status::NeedMore;
  // Pieces 1, 3, 5, ... never touch each other, so the range list only grows.
  for (size_t i = 1; i < 200 && st == Status::NeedMore; i += 2) {
    st = q.feed(sealInitial(kQuicVersion1, kDcid, static_cast<uint32_t>(i),
                            cryptoFrame(i * 10, hello.data() + i * 10, 5)),
                info);
  }
  EXPECT_EQ(st, Status::NoMatch);
}

TEST(QuicSniffer, CapturedChromeSplitInitialsReversed) {
  REQUIRE_TESTDATA(dir);
  for (const char* name : {"singbox-chrome-new-3pkt", "xray-chromebook-3-3pkt"}) {
    SCOPED_TRACE(name);
    auto chunks = readChunks(dir + "/sniff/quic/" + name + ".hex");
    ASSERT_TRUE(chunks);
    ASSERT_EQ(chunks->size(), 3u);
    QuicSniffer q;
    Info info;
    EXPECT_EQ(q.feed((*chunks)[2], info), Status::NeedMore);
    EXPECT_EQ(q.feed((*chunks)[0], info), Status::NeedMore);
    ASSERT_EQ(q.feed((*chunks)[1], info), Status::Match);
    EXPECT_FALSE(info.domain.empty());
    EXPECT_EQ(info.client, "chromium");
  }
}

TEST(QuicSniffer, CapturedSessionsInterleaved) {
  REQUIRE_TESTDATA(dir);
  auto a = readChunks(dir + "/sniff/quic/singbox-chrome-new-3pkt.hex");
  auto b = readChunks(dir + "/sniff/quic/singbox-chromium-2pkt.hex");
  ASSERT_TRUE(a && b);
  QuicSniffer q;
  Info info;
  EXPECT_EQ(q.feed((*a)[0], info), Status::NeedMore);
  EXPECT_EQ(q.feed((*b)[0], info), Status::NeedMore);
  EXPECT_EQ(q.feed((*a)[1], info), Status::NeedMore);
  ASSERT_EQ(q.feed((*b)[1], info), Status::Match);
  EXPECT_EQ(info.domain, "google.com");
  ASSERT_EQ(q.feed((*a)[2], info), Status::Match);
  EXPECT_EQ(info.domain, "www.google.com");
}

TEST(PacketSnifferQuic, KeepsQuicStateAndHonoursAllowList) {
  auto pkts = splitInitials(kQuicVersion1, kDcid, bigHello("pkt.example"), 1200);
  ASSERT_EQ(pkts.size(), 2u);
  {
    PacketSniffer p;
    Info info;
    EXPECT_EQ(p.feed(pkts[0], info), Status::NeedMore);
    ASSERT_EQ(p.feed(pkts[1], info), Status::Match);
    EXPECT_EQ(info.domain, "pkt.example");
  }
  {
    PacketSniffer p({"dns", "stun"});
    Info info;
    EXPECT_EQ(p.feed(pkts[0], info), Status::NoMatch);
  }
}

}  // namespace
}  // namespace veer::sniff::test
