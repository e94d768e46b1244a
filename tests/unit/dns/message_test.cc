#include "dns/message.h"

#include <gtest/gtest.h>

#include "testutil/testutil.h"

namespace veer::dns {
namespace {

std::vector<uint8_t> mustSerialize(const Message& m, size_t max = kMaxMessageSize) {
  auto w = serializeMessage(m, max);
  EXPECT_TRUE(w.has_value()) << (w ? "" : w.error().message());
  return w ? *w : std::vector<uint8_t>{};
}

// A real response captured from `dig example.com A`, with compression (c00c) in the answer.
const char* kExampleResponse =
    "1234 8180 0001 0002 0000 0001"
    "07 6578616d706c65 03 636f6d 00 0001 0001"
    "c00c 0001 0001 0000012c 0004 5db8d822"
    "c00c 0001 0001 0000012c 0004 5db8d823"
    "00 0029 04d0 00000000 0000";

TEST(DnsMessage, ParsesCompressedResponse) {
  auto m = parseMessage(test::fromHex(kExampleResponse));
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(m->id, 0x1234);
  EXPECT_TRUE(m->qr);
  EXPECT_TRUE(m->rd);
  EXPECT_TRUE(m->ra);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, "example.com");
  EXPECT_EQ(m->questions[0].type, rrtype::kA);
  ASSERT_EQ(m->answers.size(), 2u);
  EXPECT_EQ(m->answers[0].name, "example.com");
  EXPECT_EQ(m->answers[0].ttl, 300u);
  EXPECT_EQ(m->answers[1].address()->toString(), "93.184.216.35");
  ASSERT_TRUE(m->edns.has_value());
  EXPECT_EQ(m->edns->udp_size, 1232);
  EXPECT_TRUE(m->additionals.empty());
}

TEST(DnsMessage, RoundTripWithCompression) {
  Message q = makeQuery(7, "WwW.Example.com", rrtype::kAaaa, Edns{});
  Message r = makeResponse(q, Rcode::NoError);
  Record cname;
  cname.name = "WwW.Example.com";
  cname.type = rrtype::kCname;
  cname.ttl = 60;
  cname.rdata = *encodeName("cdn.example.com");
  r.answers.push_back(cname);
  r.answers.push_back(Record::address("cdn.example.com", *IpAddress::parse("2001:db8::1"), 30));
  auto wire = mustSerialize(r);
  // Owner names are compressed: the second owner is "cdn" + pointer, and the first a pointer.
  EXPECT_LT(wire.size(), 12u + 21u + 4u + 12u + 17u + 10u + 6u + 16u + 10u + 11u + 20u);
  auto back = parseMessage(wire);
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(back->id, 7);
  EXPECT_EQ(back->questions[0].name, "WwW.Example.com");  // case preserved (0x20)
  ASSERT_EQ(back->answers.size(), 2u);
  EXPECT_EQ(back->answers[0].target(), "cdn.example.com");
  EXPECT_EQ(back->answers[1].address()->toString(), "2001:db8::1");
  EXPECT_EQ(back->answers[1].name, "cdn.example.com");
}

TEST(DnsMessage, CompressedCnameRdataIsExpanded) {
  // CNAME rdata "www" + pointer to example.com at offset 12; after parsing the rdata must not
  // contain the pointer (it would be wrong inside another message).
  auto wire = test::fromHex(
      "0001 8180 0001 0001 0000 0000"
      "07 6578616d706c65 03 636f6d 00 0005 0001"
      "c00c 0005 0001 0000003c 0006 03 777777 c00c");
  auto m = parseMessage(wire);
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(m->answers[0].target(), "www.example.com");
  EXPECT_EQ(m->answers[0].rdata.size(), 17u);
}

TEST(DnsMessage, EscapedLabelsRoundTrip) {
  Message q = makeQuery(1, "a\\.b\\000c.example", rrtype::kTxt, std::nullopt);
  auto wire = mustSerialize(q);
  // Label "a.b\0c" is 5 bytes long.
  EXPECT_EQ(wire[12], 5);
  auto back = parseMessage(wire);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->questions[0].name, "a\\.b\\000c.example");
}

TEST(DnsMessage, ClientSubnetRoundTrip) {
  Edns e;
  e.client_subnet = ClientSubnet{*IpAddress::parse("203.0.113.77"), 24, 0};
  Message q = makeQuery(2, "example.org", rrtype::kA, e);
  auto wire = mustSerialize(q);
  auto back = parseMessage(wire);
  ASSERT_TRUE(back.has_value()) << back.error().message();
  ASSERT_TRUE(back->edns && back->edns->client_subnet);
  // Host bits are cleared on the wire (RFC 7871 §6).
  EXPECT_EQ(back->edns->client_subnet->address.toString(), "203.0.113.0");
  EXPECT_EQ(back->edns->client_subnet->source_prefix, 24);
}

TEST(DnsMessage, ExtendedRcodeUsesOpt) {
  Message m = makeQuery(3, "x", rrtype::kA, Edns{});
  m.qr = true;
  m.rcode = 16;  // BADVERS
  auto back = parseMessage(mustSerialize(m));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->rcode, 16);
  m.edns.reset();
  EXPECT_FALSE(serializeMessage(m).has_value());
}

TEST(DnsMessage, ResponsesCopyIdQuestionAndEdns) {
  Message q = makeQuery(0xbeef, "a.test", rrtype::kA, Edns{4096, 0, 0x8000, std::nullopt, {}});
  q.cd = true;
  Message nx = makeResponse(q, Rcode::NxDomain);
  auto back = parseMessage(mustSerialize(nx));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->id, 0xbeef);
  EXPECT_TRUE(back->qr);
  EXPECT_TRUE(back->cd);
  EXPECT_EQ(back->rcodeValue(), Rcode::NxDomain);
  ASSERT_EQ(back->questions.size(), 1u);
  EXPECT_EQ(back->questions[0].name, "a.test");
  ASSERT_TRUE(back->edns);
  EXPECT_EQ(back->edns->flags, 0x8000);

  std::vector<IpAddress> ips = {*IpAddress::parse("1.2.3.4"), *IpAddress::parse("::1"),
                                *IpAddress::parse("5.6.7.8")};
  Message a = makeAddressResponse(q, ips, 99);
  ASSERT_EQ(a.answers.size(), 2u);  // the IPv6 address does not answer an A question
  EXPECT_EQ(a.answers[1].address()->toString(), "5.6.7.8");
  EXPECT_EQ(a.answers[1].ttl, 99u);
}

Message bigResponse(const Message& q, int n) {
  Message r = makeResponse(q, Rcode::NoError);
  for (int i = 0; i < n; ++i) {
    uint8_t b[4] = {10, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    r.answers.push_back(Record::address(q.questions[0].name, IpAddress::v4(b), 60));
  }
  return r;
}

TEST(DnsMessage, TruncatesTo512WithoutEdns) {
  Message q = makeQuery(9, "many.example", rrtype::kA, std::nullopt);
  Message r = bigResponse(q, 100);  // 30 + 100 * 16 bytes
  auto wire = mustSerialize(r, maxUdpResponseSize(q));
  EXPECT_LE(wire.size(), 512u);
  auto back = parseMessage(wire);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->tc);
  // Each compressed A record is 16 bytes; 12 + 18 (question) + 30*16 = 510.
  EXPECT_EQ(back->answers.size(), 30u);
  // Not truncated when it fits.
  auto small = parseMessage(mustSerialize(bigResponse(q, 3), 512));
  EXPECT_FALSE(small->tc);
}

TEST(DnsMessage, TruncatesToEdnsSizeKeepingOpt) {
  Message q = makeQuery(9, "many.example", rrtype::kA, Edns{1232, 0, 0, std::nullopt, {}});
  EXPECT_EQ(maxUdpResponseSize(q), 1232u);
  Message r = bigResponse(q, 200);
  auto wire = mustSerialize(r, maxUdpResponseSize(q));
  EXPECT_LE(wire.size(), 1232u);
  auto back = parseMessage(wire);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->tc);
  EXPECT_TRUE(back->edns.has_value());
  EXPECT_EQ(back->answers.size(), (1232u - 12 - 18 - 11) / 16);
  // A client advertising less than 512 still gets 512 (RFC 6891 §6.2.5).
  q.edns->udp_size = 100;
  EXPECT_EQ(maxUdpResponseSize(q), 512u);
}

TEST(DnsMessage, TcpFraming) {
  std::vector<uint8_t> a = {1, 2, 3}, b(300, 7);
  auto fa = frameTcp(a), fb = frameTcp(b);
  EXPECT_EQ(fa[0], 0);
  EXPECT_EQ(fa[1], 3);
  std::vector<uint8_t> stream(fa);
  stream.insert(stream.end(), fb.begin(), fb.end());
  TcpDeframer d;
  std::vector<std::vector<uint8_t>> got;
  // One byte at a time: every split point must work.
  for (uint8_t byte : stream) {
    d.feed(ByteView(&byte, 1));
    while (auto m = d.next()) got.push_back(*m);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], a);
  EXPECT_EQ(got[1], b);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(DnsMessage, NameHelpers) {
  EXPECT_EQ(canonicalName("WWW.Example.COM."), "www.example.com");
  EXPECT_FALSE(encodeName("a..b").has_value());
  EXPECT_FALSE(encodeName(std::string(64, 'a')).has_value());
  EXPECT_TRUE(encodeName(std::string(63, 'a')).has_value());
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'x') + ".";
  EXPECT_FALSE(encodeName(long_name).has_value());  // 5 * 61 + 1 > 255
  EXPECT_EQ(encodeName("")->size(), 1u);
  EXPECT_EQ(encodeName(".")->size(), 1u);
  EXPECT_EQ(parseTypeName("aaaa"), rrtype::kAaaa);
  EXPECT_EQ(parseTypeName("TYPE65"), 65);
  EXPECT_EQ(parseTypeName("65"), 65);
  EXPECT_FALSE(parseTypeName("BOGUS").has_value());
  EXPECT_EQ(typeName(99), "TYPE99");
}

// ---- malformed input ----

TEST(DnsMessageMalformed, EveryTruncationFails) {
  auto wire = test::fromHex(kExampleResponse);
  ASSERT_TRUE(parseMessage(wire).has_value());
  for (size_t n = 0; n < wire.size(); ++n) {
    auto m = parseMessage(ByteView(wire.data(), n));
    EXPECT_FALSE(m.has_value()) << "prefix of " << n << " bytes parsed";
  }
}

TEST(DnsMessageMalformed, CompressionLoopToItself) {
  auto wire = test::fromHex("0001 0100 0001 0000 0000 0000 c00c 0001 0001");
  auto m = parseMessage(wire);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.error().message().find("question name"), std::string::npos);
}

TEST(DnsMessageMalformed, ForwardPointerRefused) {
  // The answer name (offset 0x13) points forward to 0x1e: forward pointers are what make
  // loops possible, so they are refused.
  auto wire = test::fromHex(
      "0001 8100 0001 0001 0000 0000 01 61 00 0001 0001"
      "c01e c01c 0001 0001 00000001 0004 01020304");
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, PointerPastEnd) {
  auto wire = test::fromHex("0001 0100 0001 0000 0000 0000 c0ff 0001 0001");
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, ReservedLabelType) {
  auto wire = test::fromHex("0001 0100 0001 0000 0000 0000 4161 00 0001 0001");
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, NameLongerThan255ViaPointers) {
  // Five 60-byte labels built by chaining backwards pointers: each name adds one label and
  // points to the previous; the last one exceeds 255 bytes.
  std::vector<uint8_t> wire = test::fromHex("0001 0100 0005 0000 0000 0000");
  size_t prev = 0;
  for (int i = 0; i < 5; ++i) {
    size_t here = wire.size();
    wire.push_back(60);
    wire.insert(wire.end(), 60, 'a');
    if (i == 0) {
      wire.push_back(0);
    } else {
      wire.push_back(static_cast<uint8_t>(0xc0 | (prev >> 8)));
      wire.push_back(static_cast<uint8_t>(prev));
    }
    wire.insert(wire.end(), {0, 1, 0, 1});
    prev = here;
  }
  auto m = parseMessage(wire);
  EXPECT_FALSE(m.has_value());
  wire[5] = 4;  // only four questions: 4 * 61 + 1 = 245 bytes, fine
  EXPECT_TRUE(parseMessage(ByteView(wire.data(), wire.size())).has_value());
}

TEST(DnsMessageMalformed, CountsLargerThanContent) {
  auto wire = test::fromHex("0001 8100 ffff ffff ffff ffff");
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, RdataOverrunsMessage) {
  auto wire = test::fromHex(
      "0001 8100 0000 0001 0000 0000 00 0001 0001 00000001 0010 01020304");
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, CnameRdataLengthMismatch) {
  // rdlength 4 but the name inside is 3 bytes (01 61 00) followed by one stray byte.
  auto wire = test::fromHex(
      "0001 8100 0000 0001 0000 0000 00 0005 0001 00000001 0004 016100ff");
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, TwoOptRecords) {
  auto wire = test::fromHex(
      "0001 0100 0000 0000 0000 0002 00 0029 1000 00000000 0000 00 0029 1000 00000000 0000");
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, TruncatedEdnsOption) {
  auto wire = test::fromHex("0001 0100 0000 0000 0000 0001 00 0029 1000 00000000 0003 000800");
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, OversizedInput) {
  std::vector<uint8_t> wire(70000, 0);
  EXPECT_FALSE(parseMessage(wire).has_value());
}

TEST(DnsMessageMalformed, BadClientSubnetIsKeptRaw) {
  // Family 1 with source prefix 33 is invalid: the option survives as raw bytes.
  auto wire = test::fromHex(
      "0001 0100 0000 0000 0000 0001 00 0029 1000 00000000 000c 0008 0008 0001 2100 01020304");
  auto m = parseMessage(wire);
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_FALSE(m->edns->client_subnet.has_value());
  ASSERT_EQ(m->edns->options.size(), 1u);
  EXPECT_EQ(m->edns->options[0].code, 8);
}

TEST(DnsMessageMalformed, SingleByteMutationsNeverCrash) {
  // Not a fuzzer, but a cheap deterministic sweep that runs in every build.
  auto wire = test::fromHex(kExampleResponse);
  size_t parsed = 0;
  for (size_t i = 0; i < wire.size(); ++i) {
    for (int v : {0x00, 0x3f, 0x40, 0xc0, 0xff}) {
      auto copy = wire;
      copy[i] = static_cast<uint8_t>(v);
      if (auto m = parseMessage(copy)) {
        ++parsed;
        (void)serializeMessage(*m, 512);
      }
    }
  }
  EXPECT_GT(parsed, 0u);
}

}  // namespace
}  // namespace veer::dns
