// RFC 9001 and RFC 9369 Appendix A: key derivation, header protection and packet protection,
// checked value by value against the appendix (testdata/sniff/quic/*-appendix-a.json).
#include <gtest/gtest.h>

#include "base/json.h"
#include "sniff/quic_crypto.h"
#include "sniff/sniff.h"
#include "sniff_test_util.h"

namespace veer::sniff::test {
namespace {

struct Appendix {
  json::Value doc;
  std::string field(std::initializer_list<const char*> path) const {
    const json::Value* v = &doc;
    for (const char* p : path) {
      v = v->find(p);
      if (!v) return {};
    }
    return v->str;
  }
};

std::optional<Appendix> loadAppendix(const std::string& dir, const char* name) {
  auto text = veer::test::readFile(dir + "/sniff/quic/" + name);
  if (!text) return std::nullopt;
  auto doc = json::parse(*text, name);
  if (!doc) return std::nullopt;
  return Appendix{std::move(*doc)};
}

Bytes toBytes(const uint8_t* p, size_t n) { return Bytes(p, p + n); }

void checkVersion(const Appendix& a, uint32_t version) {
  const Bytes dcid = hex(a.field({"dcid"}));
  // Initial secret: HKDF-Extract(salt, DCID).
  uint8_t initial[32];
  ASSERT_TRUE(hkdfExtractSha256(hex(a.field({"initial_salt"})), dcid, initial));
  EXPECT_EQ(toBytes(initial, 32), hex(a.field({"initial_secret"})));

  InitialSecrets s;
  ASSERT_TRUE(deriveClientInitialSecrets(version, dcid, s));
  EXPECT_EQ(toBytes(s.clientSecret, 32), hex(a.field({"client", "secret"})));
  EXPECT_EQ(toBytes(s.key, 16), hex(a.field({"client", "key"})));
  EXPECT_EQ(toBytes(s.iv, 12), hex(a.field({"client", "iv"})));
  EXPECT_EQ(toBytes(s.hp, 16), hex(a.field({"client", "hp"})));

  // The server side uses the same expand-label with "server in": checks the label encoding
  // independently of the client path.
  uint8_t server[32];
  ASSERT_TRUE(hkdfExpandLabelSha256(ByteView(initial, 32), "server in", server));
  EXPECT_EQ(toBytes(server, 32), hex(a.field({"server", "secret"})));

  // Header protection: the mask is AES-ECB(hp, sample); the appendix lists its first 5 bytes.
  InitialCipher cipher;
  ASSERT_TRUE(cipher.init(s));
  const Bytes sample = hex(a.field({"client_initial", "sample"}));
  ASSERT_EQ(sample.size(), 16u);
  uint8_t mask[16];
  ASSERT_TRUE(cipher.headerMask(sample.data(), mask));
  EXPECT_EQ(toBytes(mask, 5), hex(a.field({"client_initial", "mask"})));

  // Packet protection: open the protected packet with the unprotected header as AAD and find
  // the appendix's CRYPTO frame at the start of the plaintext.
  const Bytes packet = hex(a.field({"client_initial", "protected_packet"}));
  const Bytes header = hex(a.field({"client_initial", "unprotected_header"}));
  const Bytes frames = hex(a.field({"client_initial", "crypto_frame_payload"}));
  ASSERT_GT(packet.size(), header.size() + 16);
  const uint64_t pn = a.doc.find("client_initial")->find("packet_number")->u;
  Bytes plain(packet.size() - header.size() - 16);
  ASSERT_TRUE(cipher.open(pn, header, ByteView(packet).subspan(header.size()), plain.data()));
  ASSERT_GE(plain.size(), frames.size());
  EXPECT_TRUE(std::equal(frames.begin(), frames.end(), plain.begin()));
  // Any change to the AAD must make the tag check fail.
  Bytes badHeader = header;
  badHeader.back() ^= 1;
  EXPECT_FALSE(cipher.open(pn, badHeader, ByteView(packet).subspan(header.size()), plain.data()));
}

TEST(QuicCrypto, Rfc9001AppendixA) {
  REQUIRE_TESTDATA(dir);
  auto a = loadAppendix(dir, "rfc9001-appendix-a.json");
  ASSERT_TRUE(a);
  checkVersion(*a, kQuicVersion1);
}

TEST(QuicCrypto, Rfc9369AppendixA) {
  REQUIRE_TESTDATA(dir);
  auto a = loadAppendix(dir, "rfc9369-appendix-a.json");
  ASSERT_TRUE(a);
  checkVersion(*a, kQuicVersion2);
}

TEST(QuicCrypto, Rfc9001KeysWithoutTestdata) {
  // RFC 9001 A.1, typed in, so key derivation is covered even without the shared testdata.
  InitialSecrets s;
  ASSERT_TRUE(deriveClientInitialSecrets(kQuicVersion1, hex("8394c8f03e515708"), s));
  EXPECT_EQ(toBytes(s.key, 16), hex("1f369613dd76d5467730efcbe3b1a22d"));
  EXPECT_EQ(toBytes(s.iv, 12), hex("fa044b2f42a3fd3b46fb255c"));
  EXPECT_EQ(toBytes(s.hp, 16), hex("9f50449e04a0e810283a1e9933adedd2"));
}

TEST(QuicCrypto, UnknownVersionHasNoKeys) {
  InitialSecrets s;
  EXPECT_FALSE(deriveClientInitialSecrets(0x1a2a3a4a, hex("8394c8f03e515708"), s));
  EXPECT_TRUE(deriveClientInitialSecrets(kQuicDraft29, hex("8394c8f03e515708"), s));
}

}  // namespace
}  // namespace veer::sniff::test
