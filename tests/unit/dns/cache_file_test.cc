// The cache file (experimental.cache_file): format, damage handling, and the FakeIP table
// kept through it across a restart and across a reload.
#include "dns/cache_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "loop_fixture.h"

namespace veer::dns::test {
namespace {

std::string tempPath(const std::string& name) {
  return ::testing::TempDir() + "veer_cachefile_" + name + "_" + std::to_string(::getpid());
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void writeAll(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

TEST(CacheFile, Crc32MatchesZlib) {
  // The check value of CRC-32/ISO-HDLC (zlib's crc32).
  const std::string s = "123456789";
  EXPECT_EQ(crc32Ieee(ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size())),
            0xcbf43926u);
}

TEST(CacheFile, RoundTripKeepsEverySection) {
  std::vector<CacheFile::Section> in = {{CacheFile::kFakeIp, "", bytesOf("abc"), 0},
                                        {CacheFile::kFakeIp, "other", bytesOf("defg"), 0},
                                        {77, "future", {}, 0}};
  auto wire = CacheFile::serialize(in);
  ASSERT_EQ(std::string(wire.begin(), wire.begin() + 8), "VEERCACH");
  EXPECT_EQ(wire[8], 0);  // version 1, big-endian
  EXPECT_EQ(wire[9], 1);
  auto p = CacheFile::parse(ByteView(wire.data(), wire.size()));
  EXPECT_TRUE(p.problems.empty()) << joined(p.problems);
  ASSERT_EQ(p.sections.size(), 3u);
  EXPECT_EQ(p.sections[1].cache_id, "other");
  EXPECT_EQ(p.sections[1].body, bytesOf("defg"));
  EXPECT_EQ(p.sections[0].body_offset, 20u + 8u);
  EXPECT_EQ(p.sections[2].kind, 77);
}

TEST(CacheFile, DamageIsReportedWithOffsetsAndValidSectionsSurvive) {
  std::vector<CacheFile::Section> in = {{CacheFile::kFakeIp, "a", bytesOf("first"), 0},
                                        {CacheFile::kFakeIp, "b", bytesOf("second"), 0}};
  auto good = CacheFile::serialize(in);
  // A flipped bit in the first body: that section goes, the second stays.
  auto b = good;
  b[20 + 8 + 1 + 2] ^= 0x01;
  auto p = CacheFile::parse(ByteView(b.data(), b.size()));
  ASSERT_EQ(p.sections.size(), 1u);
  EXPECT_EQ(p.sections[0].cache_id, "b");
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_EQ(p.problems[0], "offset 20: section checksum mismatch; section dropped");
  EXPECT_FALSE(p.foreign);
  // Every truncation: the complete sections before the cut are kept, never a partial one.
  for (size_t cut = 0; cut < good.size(); ++cut) {
    auto t = CacheFile::parse(ByteView(good.data(), cut));
    EXPECT_FALSE(t.problems.empty()) << cut;
    EXPECT_EQ(t.foreign, cut < 20) << cut;
    for (const auto& s : t.sections) EXPECT_TRUE(s.body == bytesOf("first")) << cut;
  }
  // Header damage: nothing is read.
  b = good;
  b[11] = 1;  // flags
  p = CacheFile::parse(ByteView(b.data(), b.size()));
  EXPECT_TRUE(p.foreign);
  EXPECT_EQ(p.problems.at(0), "offset 16: header checksum mismatch");
  // A huge length is refused before anything is allocated.
  b = good;
  b[20 + 4] = 0xff;
  p = CacheFile::parse(ByteView(b.data(), b.size()));
  EXPECT_EQ(p.problems.at(0), "offset 20: section lengths out of range");
  EXPECT_TRUE(p.sections.empty());
}

TEST(CacheFile, ForeignFileIsMovedAsideNotOverwritten) {
  std::string path = tempPath("foreign");
  std::remove((path + ".bad").c_str());
  writeAll(path, std::string("\x00\x00\x00\x00\xed\xda\x0c\x0b", 8) + std::string(4088, 'x'));
  std::vector<std::string> warnings;
  CacheFile cf = CacheFile::load(path, warnings);
  EXPECT_TRUE(cf.sections().empty());
  std::string w = joined(warnings);
  EXPECT_NE(w.find(path + ": offset 0: not a veer cache file"), std::string::npos) << w;
  EXPECT_NE(w.find("moved to " + path + ".bad"), std::string::npos) << w;
  EXPECT_EQ(readAll(path + ".bad").size(), 4096u);
  EXPECT_EQ(access(path.c_str(), F_OK), -1);
  // A missing file is simply empty.
  warnings.clear();
  CacheFile none = CacheFile::load(path, warnings);
  EXPECT_TRUE(warnings.empty());
  std::remove((path + ".bad").c_str());
}

class FakeIpCacheFileTest : public LoopTest {
 protected:
  static constexpr const char* kCfg = R"({
    "servers": [{"type": "hosts", "tag": "h", "predefined": {}},
                {"type": "fakeip", "tag": "fake", "inet4_range": "198.18.0.0/15"}],
    "rules": [{"domain_suffix": "proxy.test", "server": "fake"}],
    "final": "h"})";
  DnsRouterOptions opts(const std::string& path, const std::string& cache_id = "") {
    auto o = fastOptions();
    o.fakeip_store_path = path;
    o.cache_id = cache_id;
    o.fakeip_save_delay_ms = 20;
    return o;
  }
  std::string fake(const std::string& name) {
    auto r = lookup(name, Strategy::Ipv4Only);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
    return r && !r->addresses.empty() ? r->addresses[0].toString() : "";
  }
};

TEST_F(FakeIpCacheFileTest, SavedOnATimerAndKeptPerCacheId) {
  std::string path = tempPath("timer");
  std::remove(path.c_str());
  ASSERT_NE(makeRouter(kCfg, opts(path, "one")), nullptr);
  EXPECT_EQ(fake("a.proxy.test"), "198.18.0.2");
  EXPECT_TRUE(runUntil(&loop_, [&] { return access(path.c_str(), F_OK) == 0; }, 2000))
      << "the debounce timer never wrote the file";
  router_.reset();
  runFor(&loop_, 5);
  // Another cache_id has its own table, and writing it keeps the first one.
  ASSERT_NE(makeRouter(kCfg, opts(path, "two")), nullptr);
  EXPECT_EQ(fake("b.proxy.test"), "198.18.0.2");
  router_.reset();
  runFor(&loop_, 5);
  ASSERT_NE(makeRouter(kCfg, opts(path, "one")), nullptr);
  EXPECT_EQ(router_->lookupDomain(*IpAddress::parse("198.18.0.2")), "a.proxy.test");
  EXPECT_EQ(fake("c.proxy.test"), "198.18.0.3");
  router_.reset();
  runFor(&loop_, 5);
  std::vector<std::string> w;
  CacheFile cf = CacheFile::load(path, w);
  EXPECT_TRUE(w.empty()) << joined(w);
  EXPECT_EQ(cf.sections().size(), 2u);
  std::remove(path.c_str());
}

TEST_F(FakeIpCacheFileTest, CorruptTableStartsEmptyAndIsReplaced) {
  std::string path = tempPath("corrupt");
  ASSERT_NE(makeRouter(kCfg, opts(path)), nullptr);
  fake("a.proxy.test");
  router_.reset();
  runFor(&loop_, 5);
  std::string data = readAll(path);
  ASSERT_GT(data.size(), 30u);
  data[data.size() - 6] ^= 0x20;  // inside the last entry's name: the section checksum fails
  writeAll(path, data);
  ASSERT_NE(makeRouter(kCfg, opts(path)), nullptr);
  EXPECT_FALSE(router_->lookupDomain(*IpAddress::parse("198.18.0.2")));
  EXPECT_EQ(fake("b.proxy.test"), "198.18.0.2");
  router_.reset();
  runFor(&loop_, 5);
  std::vector<std::string> w;
  CacheFile cf = CacheFile::load(path, w);
  EXPECT_TRUE(w.empty()) << joined(w);
  std::remove(path.c_str());
}

TEST_F(FakeIpCacheFileTest, ReloadAdoptsTheTableWhenRangesAreUnchanged) {
  // Without a cache file: the new router takes the old one's mappings.
  ASSERT_NE(makeRouter(kCfg), nullptr);
  EXPECT_EQ(fake("a.proxy.test"), "198.18.0.2");
  std::unique_ptr<DnsRouter> old = std::move(router_);
  ASSERT_NE(makeRouter(kCfg), nullptr);
  EXPECT_EQ(router_->adoptFakeIp(*old), 1u);
  EXPECT_EQ(router_->lookupDomain(*IpAddress::parse("198.18.0.2")), "a.proxy.test");
  EXPECT_EQ(fake("b.proxy.test"), "198.18.0.3");
  // Other ranges: nothing is taken over.
  std::string changed = kCfg;
  changed.replace(changed.find("198.18.0.0/15"), 13, "198.18.0.0/16");
  std::unique_ptr<DnsRouter> old2 = std::move(router_);
  ASSERT_NE(makeRouter(changed), nullptr);
  EXPECT_EQ(router_->adoptFakeIp(*old2), 0u);
  EXPECT_FALSE(router_->lookupDomain(*IpAddress::parse("198.18.0.2")));
  old.reset();
  old2.reset();
}

TEST_F(FakeIpCacheFileTest, ReplacedRouterNoLongerWritesTheFile) {
  std::string path = tempPath("handover");
  std::remove(path.c_str());
  ASSERT_NE(makeRouter(kCfg, opts(path)), nullptr);
  fake("a.proxy.test");
  std::unique_ptr<DnsRouter> old = std::move(router_);
  ASSERT_NE(makeRouter(kCfg, opts(path)), nullptr);
  router_->adoptFakeIp(*old);
  fake("b.proxy.test");
  router_.reset();  // writes a and b
  runFor(&loop_, 5);
  old.reset();  // must not write its older table (a only) over it
  runFor(&loop_, 5);
  ASSERT_NE(makeRouter(kCfg, opts(path)), nullptr);
  EXPECT_EQ(router_->lookupDomain(*IpAddress::parse("198.18.0.3")), "b.proxy.test");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace veer::dns::test
