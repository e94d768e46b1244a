// The remote rule-set cache files: round trip, atomic replacement, damage detection, file
// names for awkward tags, and parsing downloaded bytes in either format (real rule sets from
// ../shared/testdata).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "rules/ruleset_cache.h"
#include "testutil/testutil.h"

namespace veer::rules {
namespace {

class CacheDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/veer-rscache-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(CacheDir, RoundTripAndReplace) {
  std::string path = ruleSetCachePath(dir_ + "/a/b", "geosite-cn");
  EXPECT_EQ(path, dir_ + "/a/b/geosite-cn.cache");
  auto none = loadCachedRuleSet(path);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ENOENT);

  CachedRuleSet c;
  c.url = "http://x.test/a.srs";
  c.format = "binary";
  c.etag = "\"q\\\"uote\"";
  c.last_modified = "Mon, 01 Jan 2024 00:00:00 GMT";
  c.fetched = 1700000000;
  c.content = std::string("SRS\x02\x00\n\nbinary\xff", 13);
  ASSERT_TRUE(storeCachedRuleSet(path, c));  // creates a/b
  auto back = loadCachedRuleSet(path);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->url, c.url);
  EXPECT_EQ(back->format, c.format);
  EXPECT_EQ(back->etag, c.etag);
  EXPECT_EQ(back->last_modified, c.last_modified);
  EXPECT_EQ(back->fetched, c.fetched);
  EXPECT_EQ(back->content, c.content);

  c.content = "second";
  ASSERT_TRUE(storeCachedRuleSet(path, c));
  back = loadCachedRuleSet(path);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->content, "second");
  // No temporary files are left behind.
  std::string ls = dir_ + "/a/b";
  int n = 0;
  if (FILE* p = popen(("ls -A " + ls + " | wc -l").c_str(), "r")) {
    if (std::fscanf(p, "%d", &n) != 1) n = -1;
    pclose(p);
  }
  EXPECT_EQ(n, 1);
}

TEST_F(CacheDir, DamageIsDetected) {
  std::string path = ruleSetCachePath(dir_, "t");
  CachedRuleSet c;
  c.url = "http://x.test/a.json";
  c.format = "source";
  c.content = "{\"version\":1,\"rules\":[]}";
  ASSERT_TRUE(storeCachedRuleSet(path, c));
  auto text = test::readFile(path);
  ASSERT_TRUE(text);
  auto write = [&](const std::string& s) {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(s.data(), 1, s.size(), f);
    std::fclose(f);
  };
  write(text->substr(0, text->size() - 3));  // truncated
  auto r = loadCachedRuleSet(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos);
  EXPECT_NE(r.error().code(), ENOENT);
  write("garbage without a newline");
  EXPECT_FALSE(loadCachedRuleSet(path));
  write("{not json}\nxx");
  EXPECT_FALSE(loadCachedRuleSet(path));
  write("{\"url\":\"u\",\"format\":\"source\"}\nxx");  // no size
  EXPECT_FALSE(loadCachedRuleSet(path));
  write("{\"url\":\"u\",\"format\":\"dsl\",\"size\":2}\nxx");  // not a remote format
  EXPECT_FALSE(loadCachedRuleSet(path));
  write("");
  EXPECT_FALSE(loadCachedRuleSet(path));
}

TEST_F(CacheDir, UnwritableDirectoryFails) {
  if (geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  ASSERT_EQ(chmod(dir_.c_str(), 0500), 0);
  CachedRuleSet c;
  c.url = "http://x/";
  c.format = "source";
  EXPECT_FALSE(storeCachedRuleSet(ruleSetCachePath(dir_, "x"), c));
  chmod(dir_.c_str(), 0700);
}

TEST(RuleSetCache, FileNames) {
  EXPECT_EQ(ruleSetCachePath("d", "category-ai-!cn"), "d/category-ai-%21cn.cache");
  EXPECT_EQ(ruleSetCachePath("d/", "a/b"), "d/a%2Fb.cache");
  EXPECT_EQ(ruleSetCachePath("d", ".."), "d/%2E..cache");
  EXPECT_EQ(ruleSetCachePath("d", "v1.2"), "d/v1.2.cache");
  EXPECT_EQ(ruleSetCachePath("", "x"), "./x.cache");
}

TEST(RuleSetCache, FormatFromUrl) {
  EXPECT_EQ(ruleSetFormatFromUrl("https://h/x/geoip-cn.srs"), "binary");
  EXPECT_EQ(ruleSetFormatFromUrl("https://h/x/geoip-cn.srs?raw=1#y"), "binary");
  EXPECT_EQ(ruleSetFormatFromUrl("http://h/a.json"), "source");
  EXPECT_EQ(ruleSetFormatFromUrl("http://h.json"), "");
  EXPECT_EQ(ruleSetFormatFromUrl("http://h/download?f=a.srs"), "");
}

TEST(RuleSetCache, ParseBytes) {
  REQUIRE_TESTDATA(td);
  std::string base = td + "/ruleset/meta-rules-dat-sing/geosite/github";
  auto srs = test::readFile(base + ".srs");
  auto json = test::readFile(base + ".json");
  ASSERT_TRUE(srs && json);
  auto a = parseRuleSetBytes(*srs, "binary", "github.srs");
  ASSERT_TRUE(a) << a.error().message();
  auto b = parseRuleSetBytes(*json, "source", "github.json");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(a->rules.size(), b->rules.size());
  EXPECT_FALSE(a->rules.empty());
  // The wrong format, truncation and garbage are refused.
  EXPECT_FALSE(parseRuleSetBytes(*srs, "source", "x"));
  EXPECT_FALSE(parseRuleSetBytes(*json, "binary", "x"));
  EXPECT_FALSE(parseRuleSetBytes(srs->substr(0, srs->size() / 2), "binary", "x"));
  EXPECT_FALSE(parseRuleSetBytes(json->substr(0, json->size() / 2), "source", "x"));
  EXPECT_FALSE(parseRuleSetBytes("<html>502 Bad Gateway</html>", "source", "x"));
  EXPECT_FALSE(parseRuleSetBytes(*json, "dsl", "x"));
}

}  // namespace
}  // namespace veer::rules
