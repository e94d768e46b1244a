#include "base/bytes.h"

#include <gtest/gtest.h>

namespace veer {
namespace {

TEST(Bytes, BigEndianRoundTrip) {
  uint8_t b[8];
  storeBe32(b, 0x01020304);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[3], 4);
  EXPECT_EQ(loadBe32(b), 0x01020304u);
  storeBe64(b, 0x0102030405060708ull);
  EXPECT_EQ(loadBe64(b), 0x0102030405060708ull);
  storeBe16(b, 0xabcd);
  EXPECT_EQ(loadBe16(b), 0xabcd);
  EXPECT_EQ(loadLe16(b), 0xcdab);
}

TEST(ByteReader, StopsAtEnd) {
  const uint8_t in[] = {0x01, 0x02, 0x03};
  ByteReader r(ByteView(in, sizeof(in)));
  uint16_t v16 = 0;
  EXPECT_TRUE(r.be16(v16));
  EXPECT_EQ(v16, 0x0102);
  uint32_t v32 = 7;
  EXPECT_FALSE(r.be32(v32));
  EXPECT_EQ(v32, 7u);
  uint8_t v8 = 0;
  EXPECT_TRUE(r.u8(v8));
  EXPECT_FALSE(r.u8(v8));
}

TEST(ByteReader, Uvarint) {
  const uint8_t in[] = {0xac, 0x02, 0x7f};
  ByteReader r(ByteView(in, sizeof(in)));
  uint64_t v = 0;
  EXPECT_TRUE(r.uvarint(v));
  EXPECT_EQ(v, 300u);
  EXPECT_TRUE(r.uvarint(v));
  EXPECT_EQ(v, 127u);
  const uint8_t bad[] = {0x80, 0x80};
  ByteReader r2(ByteView(bad, sizeof(bad)));
  EXPECT_FALSE(r2.uvarint(v));
  const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  ByteReader r3(ByteView(over, sizeof(over)));
  EXPECT_FALSE(r3.uvarint(v));
}

}  // namespace
}  // namespace veer
