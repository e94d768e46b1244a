// DNS, BitTorrent, SSH, RDP, STUN, DTLS, NTP, and the two dispatchers.
#include <gtest/gtest.h>

#include <random>

#include "hello_builder.h"
#include "sniff/sniff.h"
#include "sniff_test_util.h"

namespace veer::sniff::test {
namespace {

// example.com A query: header (id 0x1234, RD), one question.
const Bytes kQuery = hex("123401000001000000000000076578616d706c6503636f6d0000010001");

Bytes tcpFramed(const Bytes& msg) {
  Bytes out{static_cast<uint8_t>(msg.size() >> 8), static_cast<uint8_t>(msg.size())};
  out.insert(out.end(), msg.begin(), msg.end());
  return out;
}

TEST(SniffDns, UdpQueries) {
  Info info;
  ASSERT_EQ(sniffDnsUdp(kQuery, info), Status::Match);
  EXPECT_EQ(info.protocol, "dns");
  Bytes response = kQuery;
  response[2] |= 0x80;  // QR
  EXPECT_EQ(sniffDnsUdp(response, info), Status::NoMatch);
  Bytes noQuestion = kQuery;
  noQuestion[5] = 0;
  EXPECT_EQ(sniffDnsUdp(noQuestion, info), Status::NoMatch);
  Bytes truncated(kQuery.begin(), kQuery.end() - 2);
  EXPECT_EQ(sniffDnsUdp(truncated, info), Status::NoMatch);
  // A compression pointer to itself (a loop) and one pointing forward.
  Bytes loop = hex("123401000001000000000000c00c00010001");
  EXPECT_EQ(sniffDnsUdp(loop, info), Status::NoMatch);
  // A second question compressed onto the first name is fine.
  Bytes twoQuestions = hex("123401000002000000000000076578616d706c6503636f6d0000010001c00c001c0001");
  EXPECT_EQ(sniffDnsUdp(twoQuestions, info), Status::Match);
  // A label longer than 63 bytes uses the reserved 0x40/0x80 type bits.
  Bytes badLabel = kQuery;
  badLabel[12] = 0x47;
  EXPECT_EQ(sniffDnsUdp(badLabel, info), Status::NoMatch);
}

TEST(SniffDns, TcpGrowsAndRejectsEarly) {
  const Bytes framed = tcpFramed(kQuery);
  for (size_t n = 0; n < framed.size(); ++n) {
    Info info;
    ASSERT_EQ(sniffDnsTcp(ByteView(framed).first(n), info), Status::NeedMore) << n;
  }
  Info info;
  ASSERT_EQ(sniffDnsTcp(framed, info), Status::Match);
  // QR set is rejected as soon as the flags byte arrives.
  Bytes response = framed;
  response[4] |= 0x80;
  EXPECT_EQ(sniffDnsTcp(ByteView(response).first(5), info), Status::NoMatch);
  EXPECT_EQ(sniffDnsTcp(hex("000b"), info), Status::NoMatch);  // shorter than a header
}

TEST(SniffBittorrent, TcpHandshakePrefix) {
  const std::string hs = std::string("\x13") + "BitTorrent protocol" + std::string(48, '\0');
  for (size_t n = 0; n < 20; ++n) {
    Info info;
    ASSERT_EQ(sniffBittorrentTcp(asBytes(std::string_view(hs).substr(0, n)), info), Status::NeedMore);
  }
  Info info;
  ASSERT_EQ(sniffBittorrentTcp(asBytes(hs), info), Status::Match);
  EXPECT_EQ(info.protocol, "bittorrent");
  EXPECT_EQ(sniffBittorrentTcp(asBytes("\x13" "BitTorrent Protocol"), info), Status::NoMatch);
}

TEST(SniffBittorrent, UdpTrackerAndUtp) {
  Info info;
  EXPECT_EQ(sniffBittorrentUdp(hex("0000041727101980000000000badf00d"), info), Status::Match);
  EXPECT_EQ(sniffBittorrentUdp(hex("0000041727101980000000010badf00d"), info), Status::NoMatch);
  // uTP ST_SYN, version 1, no extension.
  Bytes syn = hex("4100" "1234" "00000000" "00000000" "00100000" "0001" "0000");
  EXPECT_EQ(sniffBittorrentUdp(syn, info), Status::Match);
  // Selective ACK extension (1) of 4 bytes, then none.
  Bytes ext = syn;
  ext[1] = 1;
  ext.insert(ext.end(), {0, 4, 1, 2, 3, 4});
  EXPECT_EQ(sniffBittorrentUdp(ext, info), Status::Match);
  Bytes overrun = ext;
  overrun[21] = 40;  // extension longer than the datagram
  EXPECT_EQ(sniffBittorrentUdp(overrun, info), Status::NoMatch);
  Bytes version2 = syn;
  version2[0] = 0x42;
  EXPECT_EQ(sniffBittorrentUdp(version2, info), Status::NoMatch);
}

TEST(SniffSsh, BannerAndPrefix) {
  Info info;
  EXPECT_EQ(sniffSsh(asBytes("SSH-2.0"), info), Status::NeedMore);
  EXPECT_EQ(sniffSsh(asBytes("SSH-2.0-OpenSSH_9.6"), info), Status::NeedMore);  // no line end yet
  ASSERT_EQ(sniffSsh(asBytes("SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n"), info), Status::Match);
  EXPECT_EQ(info.protocol, "ssh");
  EXPECT_EQ(info.client, "OpenSSH_9.6p1 Debian-3");
  EXPECT_EQ(sniffSsh(asBytes("SSH-1.5-old\r\n"), info), Status::NoMatch);
  EXPECT_EQ(sniffSsh(asBytes("GET "), info), Status::NoMatch);
  EXPECT_EQ(sniffSsh(asBytes("SSH-2.0-" + std::string(300, 'x')), info), Status::NoMatch);
}

TEST(SniffRdp, ConnectionRequest) {
  const Bytes cr = hex("0300001300e00000000000010008000b000000");  // length 19 variant
  Bytes req = hex("030000130ee000000000000100080003000000");
  Info info;
  for (size_t n = 0; n < 14; ++n) {
    ASSERT_EQ(sniffRdp(ByteView(req).first(n), info), Status::NeedMore) << n;
  }
  ASSERT_EQ(sniffRdp(req, info), Status::Match);
  EXPECT_EQ(info.protocol, "rdp");
  EXPECT_EQ(sniffRdp(cr, info), Status::NoMatch);  // X.224 length indicator is not 14
}

TEST(SniffPacket, StunDtlsNtp) {
  Info info;
  const Bytes stun = hex("000100002112a442000102030405060708090a0b");
  ASSERT_EQ(sniffStun(stun, info), Status::Match);
  EXPECT_EQ(info.protocol, "stun");
  Bytes badCookie = stun;
  badCookie[4] = 0;
  EXPECT_EQ(sniffStun(badCookie, info), Status::NoMatch);
  Bytes longAttrs = stun;
  longAttrs[3] = 8;  // announces attributes that are not there
  EXPECT_EQ(sniffStun(longAttrs, info), Status::NoMatch);

  Bytes dtls = hex("16fefd000000000000000000010001");
  ASSERT_EQ(sniffDtls(dtls, info), Status::Match);
  EXPECT_EQ(info.protocol, "dtls");
  dtls[2] = 0xfc;
  EXPECT_EQ(sniffDtls(dtls, info), Status::NoMatch);

  Bytes ntp(48, 0);
  ntp[0] = 0x23;  // VN 4, mode 3
  ASSERT_EQ(sniffNtp(ntp, info), Status::Match);
  EXPECT_EQ(info.protocol, "ntp");
  ntp[0] = 0x24;  // mode 4: a server reply
  EXPECT_EQ(sniffNtp(ntp, info), Status::NoMatch);
  ntp[0] = 0x1b;  // VN 3, mode 3
  ntp[4] = 0x00, ntp[5] = 0x11;  // root delay 17 s
  EXPECT_EQ(sniffNtp(ntp, info), Status::NoMatch);
}

TEST(SniffStream, OrderAndAllowList) {
  HelloSpec s;
  s.sni = "stream.example";
  Bytes tls = tlsRecords(buildClientHello(s), 16384);
  Info info;
  ASSERT_EQ(sniffStream(tls, {}, info), Status::Match);
  EXPECT_EQ(info.protocol, "tls");
  EXPECT_EQ(info.domain, "stream.example");
  EXPECT_EQ(sniffStream(tls, {"http", "ssh"}, info), Status::NoMatch);
  ASSERT_EQ(sniffStream(asBytes("SSH-2.0-x\r\n"), {}, info), Status::Match);
  EXPECT_EQ(info.protocol, "ssh");
  // "SSH-2.0" could still be an HTTP method or an SSH banner: wait.
  EXPECT_EQ(sniffStream(asBytes("SSH-2.0"), {}, info), Status::NeedMore);
  EXPECT_EQ(sniffStream(hex("00010203040506070809"), {}, info),
            Status::NoMatch);
  ASSERT_EQ(sniffStream(tcpFramed(kQuery), {}, info), Status::Match);
  EXPECT_EQ(info.protocol, "dns");
}

TEST(SniffPacketDispatcher, OrderAndAllowList) {
  Info info;
  PacketSniffer all;
  ASSERT_EQ(all.feed(kQuery, info), Status::Match);
  EXPECT_EQ(info.protocol, "dns");
  PacketSniffer noDns({"quic", "stun"});
  EXPECT_EQ(noDns.feed(kQuery, info), Status::NoMatch);
  ASSERT_EQ(all.feed(hex("000100002112a442000102030405060708090a0b"), info), Status::Match);
  EXPECT_EQ(info.protocol, "stun");
}

TEST(SniffGarbage, RandomInputNeverCrashesOrMisreports) {
  // Deterministic pseudo-random buffers through every sniffer: whatever they answer, a Match
  // must name the sniffer's own protocol.
  std::mt19937 rng(12345);
  using Fn = Status (*)(ByteView, Info&);
  const std::pair<Fn, const char*> fns[] = {
      {sniffTls, "tls"},       {sniffHttp, "http"},     {sniffDnsTcp, "dns"},
      {sniffDnsUdp, "dns"},    {sniffSsh, "ssh"},       {sniffRdp, "rdp"},
      {sniffStun, "stun"},     {sniffDtls, "dtls"},     {sniffNtp, "ntp"},
      {sniffBittorrentTcp, "bittorrent"}, {sniffBittorrentUdp, "bittorrent"}};
  for (int i = 0; i < 3000; ++i) {
    Bytes b(rng() % 300);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (!b.empty() && i % 3 == 0) b[0] = 0x16;  // bias towards the TLS path
    for (const auto& [fn, name] : fns) {
      Info info;
      if (fn(b, info) == Status::Match) {
        ASSERT_EQ(info.protocol, name);
      }
    }
    QuicSniffer q;
    Info info;
    if (!b.empty()) b[0] |= 0xc0;
    EXPECT_EQ(q.feed(b, info), Status::NoMatch);  // cannot pass the AEAD by chance
  }
}

}  // namespace
}  // namespace veer::sniff::test
