// AEAD, HKDF-SHA1, EVP_BytesToKey and randomness against published vectors (RFC 8439 §2.8.2,
// McGrew & Viega GCM test cases 2, 4 and 14, RFC 5869 test cases 4 and 7, OpenSSL `enc -P`).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/aead.h"
#include "crypto/kdf.h"

using namespace veer;
using namespace veer::crypto;

namespace {

std::vector<uint8_t> hex(std::string_view s) {
  std::vector<uint8_t> out;
  auto v = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(v(s[i]) << 4 | v(s[i + 1])));
  }
  return out;
}
std::string toHex(const std::vector<uint8_t>& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s.push_back(d[c >> 4]);
    s.push_back(d[c & 15]);
  }
  return s;
}

void checkVector(AeadAlgorithm alg, std::string_view key, std::string_view nonce,
                 std::string_view aad, const std::vector<uint8_t>& pt, std::string_view ct_tag) {
  Aead a;
  ASSERT_TRUE(a.init(alg, hex(key)));
  auto n = hex(nonce);
  auto ad = hex(aad);
  std::vector<uint8_t> out(pt.size() + kAeadTagSize);
  ASSERT_TRUE(a.seal(n.data(), ad, pt, out.data()));
  EXPECT_EQ(toHex(out), ct_tag);
  // Open, in place.
  std::vector<uint8_t> back = out;
  ASSERT_TRUE(a.open(n.data(), ad, back, back.data()));
  back.resize(pt.size());
  EXPECT_EQ(back, pt);
  // Every single-bit flip of ciphertext or tag is refused.
  for (size_t i = 0; i < out.size(); i += 7) {
    std::vector<uint8_t> bad = out;
    bad[i] ^= 0x01;
    std::vector<uint8_t> tmp(bad.size());
    EXPECT_FALSE(a.open(n.data(), ad, bad, tmp.data())) << "byte " << i;
  }
  if (!ad.empty()) {
    std::vector<uint8_t> bad_ad = ad;
    bad_ad[0] ^= 0x80;
    std::vector<uint8_t> tmp(out.size());
    EXPECT_FALSE(a.open(n.data(), bad_ad, out, tmp.data()));
  }
}

TEST(Aead, ChaCha20Poly1305Rfc8439) {
  std::string pt =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
      "future, sunscreen would be it.";
  checkVector(AeadAlgorithm::ChaCha20Poly1305,
              "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
              "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
              std::vector<uint8_t>(pt.begin(), pt.end()),
              "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca967"
              "1282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee32809"
              "1b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
              "1ae10b594f09e26a7e902ecbd0600691");
}

TEST(Aead, Aes128GcmTestCase2) {
  checkVector(AeadAlgorithm::Aes128Gcm, "00000000000000000000000000000000",
              "000000000000000000000000", "", std::vector<uint8_t>(16, 0),
              "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf");
}

TEST(Aead, Aes128GcmTestCase4WithAad) {
  checkVector(AeadAlgorithm::Aes128Gcm, "feffe9928665731c6d6a8f9467308308",
              "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
              hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c9595680"
                  "9532fcf0e2449a6b525b16aedf5aa0de657ba637b39"),
              "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b254669"
              "31c7d8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc3221a5db94fae95ae7121a47");
}

TEST(Aead, Aes256GcmTestCase14) {
  checkVector(AeadAlgorithm::Aes256Gcm,
              "0000000000000000000000000000000000000000000000000000000000000000",
              "000000000000000000000000", "", std::vector<uint8_t>(16, 0),
              "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
}

TEST(Aead, EmptyPlaintextAndShortInput) {
  Aead a;
  ASSERT_TRUE(a.init(AeadAlgorithm::Aes128Gcm, std::vector<uint8_t>(16, 0)));
  uint8_t nonce[12] = {};
  uint8_t tag[16];
  ASSERT_TRUE(a.seal(nonce, {}, {}, tag));
  // McGrew & Viega test case 1: the tag of nothing under the zero key.
  EXPECT_EQ(toHex(std::vector<uint8_t>(tag, tag + 16)), "58e2fccefa7e3061367f1d57a4e7455a");
  uint8_t out[1];
  EXPECT_TRUE(a.open(nonce, {}, ByteView(tag, 16), out));
  EXPECT_FALSE(a.open(nonce, {}, ByteView(tag, 15), out));
}

TEST(Aead, NamesAndKeySizes) {
  EXPECT_EQ(aeadFromName("aes-128-gcm"), AeadAlgorithm::Aes128Gcm);
  EXPECT_EQ(aeadFromName("aes-256-gcm"), AeadAlgorithm::Aes256Gcm);
  EXPECT_EQ(aeadFromName("chacha20-ietf-poly1305"), AeadAlgorithm::ChaCha20Poly1305);
  EXPECT_FALSE(aeadFromName("aes-128-cfb"));
  EXPECT_EQ(aeadKeySize(AeadAlgorithm::Aes128Gcm), 16u);
  EXPECT_EQ(aeadKeySize(AeadAlgorithm::ChaCha20Poly1305), 32u);
  Aead a;
  EXPECT_FALSE(a.init(AeadAlgorithm::Aes256Gcm, std::vector<uint8_t>(16, 0)));
  EXPECT_FALSE(a.ready());
}

TEST(Aead, NonceCounterIsLittleEndian) {
  uint8_t n[12] = {0xff, 0xff, 0x00};
  incrementNonce(n);
  EXPECT_EQ(n[0], 0);
  EXPECT_EQ(n[1], 0);
  EXPECT_EQ(n[2], 1);
  uint8_t all[12];
  std::fill(all, all + 12, 0xff);
  incrementNonce(all);
  for (uint8_t b : all) EXPECT_EQ(b, 0);
}

TEST(Kdf, HkdfSha1Rfc5869) {
  // Test case 4.
  std::vector<uint8_t> okm(42);
  ASSERT_TRUE(hkdfSha1(hex("0b0b0b0b0b0b0b0b0b0b0b"), hex("000102030405060708090a0b0c"),
                       hex("f0f1f2f3f4f5f6f7f8f9"), okm));
  EXPECT_EQ(toHex(okm),
            "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896");
  // Test case 7: no salt (HashLen zero bytes), no info.
  ASSERT_TRUE(hkdfSha1(std::vector<uint8_t>(22, 0x0c), {}, {}, okm));
  EXPECT_EQ(toHex(okm),
            "2c91117204d745f3500d636a62f64f0ab3bae548aa53d423b0d1f27ebba6f5e5673a081d70cce7acfc48");
}

TEST(Kdf, EvpBytesToKeyMatchesOpenssl) {
  // openssl enc -aes-256-cbc -k foobar -nosalt -P -md md5
  EXPECT_EQ(toHex(evpBytesToKey("foobar", 32)),
            "3858f62230ac3c915f300c664312c63f568378529614d22ddb49237d2f60bfdf");
  EXPECT_EQ(toHex(evpBytesToKey("foobar", 16)), "3858f62230ac3c915f300c664312c63f");
  EXPECT_EQ(evpBytesToKey("x", 0).size(), 0u);
}

TEST(Random, FillsAndDiffers) {
  std::vector<uint8_t> a(64), b(64);
  ASSERT_TRUE(randomBytes(a));
  ASSERT_TRUE(randomBytes(b));
  EXPECT_NE(a, b);
  EXPECT_TRUE(randomBytes(MutableByteView()));
}

}  // namespace
