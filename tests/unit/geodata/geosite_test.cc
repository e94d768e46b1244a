#include <set>

#include "geodata_testutil.h"
#include "rules/geosite_db.h"
#include "rules/geosite_text.h"
#include "testutil/testutil.h"

namespace veer::rules {
namespace {

using ItemSet = std::set<std::pair<int, std::string>>;
ItemSet asSet(const std::vector<GeositeItem>& items) {
  ItemSet s;
  for (const auto& it : items) s.insert({static_cast<int>(it.type), it.value});
  return s;
}

TEST(GeositeDb, LoadsFullDatabase) {
  REQUIRE_TESTDATA(td);
  auto db = GeositeDb::open(td + "/singbox-db/geosite.db");
  ASSERT_TRUE(db) << db.error().message();
  auto codes = (*db)->codes();
  EXPECT_EQ(codes.size(), 1525u);
  EXPECT_TRUE((*db)->has("google@cn"));
  EXPECT_FALSE((*db)->has("no-such-code"));
  size_t counts[4] = {};
  for (const auto& c : codes) {
    auto items = (*db)->load(c);
    ASSERT_TRUE(items) << items.error().message();
    EXPECT_EQ(items->size(), (*db)->itemCount(c));
    for (const auto& it : *items) ++counts[static_cast<int>(it.type)];
  }
  // Totals from SOURCES.md (computed independently from the file).
  EXPECT_EQ(counts[0], 104245u);
  EXPECT_EQ(counts[1], 100250u);
  EXPECT_EQ(counts[2], 0u);
  EXPECT_EQ(counts[3], 614u);
  auto cn = (*db)->load("cn");
  ASSERT_TRUE(cn);
  EXPECT_TRUE(asSet(*cn).count({1, "cn"}));
  auto missing = (*db)->load("nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);
}

TEST(GeositeDb, WriterReproducesFilesByteForByte) {
  REQUIRE_TESTDATA(td);
  for (const char* name : {"geosite.db", "geosite-cn.db", "geosite-lite.db"}) {
    SCOPED_TRACE(name);
    std::string path = td + "/singbox-db/" + name;
    auto db = GeositeDb::open(path);
    ASSERT_TRUE(db) << db.error().message();
    auto all = (*db)->loadAll();
    ASSERT_TRUE(all);
    auto bytes = writeGeositeDb(*all);
    ASSERT_TRUE(bytes);
    EXPECT_TRUE(*bytes == test::readBytes(path));
  }
}

TEST(GeositeDb, HostileInput) {
  REQUIRE_TESTDATA(td);
  auto orig = test::readBytes(td + "/singbox-db/geosite-lite.db");
  // Every truncation either fails at open or at load; none crashes.
  for (size_t n = 0; n < orig.size(); n += 1 + n / 32) {
    std::vector<uint8_t> cut(orig.begin(), orig.begin() + n);
    auto db = GeositeDb::fromBytes(cut, "cut.db");
    if (!db) {
      EXPECT_NE(db.error().message().find("cut.db"), std::string::npos);
      continue;
    }
    for (const auto& c : (*db)->codes()) (void)(*db)->load(c);
  }
  auto bad = GeositeDb::fromBytes({1, 0}, "v.db");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("version"), std::string::npos);
  auto huge = GeositeDb::fromBytes({0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "h.db");
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().message().find("exceeds"), std::string::npos);
  // Offset beyond the content.
  auto off = GeositeDb::fromBytes({0, 1, 1, 'a', 0x7f, 1}, "o.db");
  ASSERT_FALSE(off);
  EXPECT_NE(off.error().message().find("outside"), std::string::npos);
  // Unknown item type: found at load.
  auto type = GeositeDb::fromBytes({0, 1, 1, 'a', 0, 1, 9, 0}, "t.db");
  ASSERT_TRUE(type);
  EXPECT_FALSE((*type)->load("a"));
  auto missing = GeositeDb::open("/nonexistent/geosite.db");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/nonexistent/geosite.db"), std::string::npos);
}

TEST(GeositeText, CompilerSemantics) {
  std::map<std::string, std::string> lists = {
      {"Foo", "# comment\nfoo.com\nfull:www.bar.com @cn\nkeyword:Baz # trailing\n"
              "regexp:^A[0-9]\\.x$ @ads\ninclude:sub\nlocalhost\n"},
      {"sub", "domain:sub.org @cn @ads\nfull:only.sub.org @!cn\n"},
      {"pick", "include:sub @cn\ninclude:sub @-ads\n"},
      {"geolocation-cn", "gcn.cn\n"},
      {"category-x-cn", "catcn.com\n"},
      {"category-y", "y.com @cn\n"},
      {"cn", "ignored.example\n"},
      {"region-cn", "r.cn\nout.com @!cn\n"},
  };
  auto m = compileGeositeLists(lists);
  ASSERT_TRUE(m) << m.error().message();
  using T = GeositeItem::Type;
  auto items = [&](const std::string& c) { return asSet(m->at(c)); };
  EXPECT_EQ(items("foo"), (ItemSet{{0, "foo.com"},
                                   {1, ".foo.com"},
                                   {0, "www.bar.com"},
                                   {2, "baz"},
                                   {3, "^a[0-9]\\.x$"},
                                   {0, "sub.org"},
                                   {1, ".sub.org"},
                                   {0, "only.sub.org"},
                                   {1, ".localhost"}}));
  EXPECT_EQ(items("foo@cn"), (ItemSet{{0, "www.bar.com"}, {0, "sub.org"}, {1, ".sub.org"}}));
  EXPECT_EQ(items("foo@ads"), (ItemSet{{3, "^a[0-9]\\.x$"}, {0, "sub.org"}, {1, ".sub.org"}}));
  EXPECT_EQ(items("pick"), (ItemSet{{0, "sub.org"}, {1, ".sub.org"}, {0, "only.sub.org"}}));
  // region-cn@!cn: removed from region-cn and dropped; region-cn@cn would be dropped too.
  EXPECT_EQ(items("region-cn"), (ItemSet{{0, "r.cn"}, {1, ".r.cn"}}));
  EXPECT_FALSE(m->count("region-cn@!cn"));
  // geolocation-cn absorbs category-*-cn and category-*@cn; cn adds the bare suffix "cn".
  EXPECT_EQ(items("geolocation-cn"), (ItemSet{{0, "gcn.cn"}, {1, ".gcn.cn"}, {0, "catcn.com"},
                                             {1, ".catcn.com"}, {0, "y.com"}, {1, ".y.com"}}));
  auto cn = items("cn");
  EXPECT_TRUE(cn.count({1, "cn"}));
  EXPECT_FALSE(cn.count({0, "ignored.example"}));
  EXPECT_EQ(cn.size(), 7u);
  (void)T::Domain;

  EXPECT_FALSE(compileGeositeLists({{"a", "include:missing\n"}}));
  auto cyc = compileGeositeLists({{"a", "include:b\n"}, {"b", "include:a\n"}});
  ASSERT_FALSE(cyc);
  EXPECT_NE(cyc.error().message().find("cycle"), std::string::npos);
  auto bad = compileGeositeLists({{"a", "x.com\nbogus:y\n"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("a:2:"), std::string::npos) << bad.error().message();
}

// The headline check: dlc-20241007 compiled by veer == sing-geosite's geosite.db.
TEST(GeositeText, CompilesDlcToSingBoxGeositeDb) {
  REQUIRE_TESTDATA(td);
  auto compiled = compileGeositeDir(td + "/geosite-text/dlc-20241007/data");
  ASSERT_TRUE(compiled) << compiled.error().message();
  auto db = GeositeDb::open(td + "/singbox-db/geosite.db");
  ASSERT_TRUE(db);
  auto expected = (*db)->loadAll();
  ASSERT_TRUE(expected);
  std::vector<std::string> mine, theirs;
  for (const auto& [c, _] : *compiled) mine.push_back(c);
  for (const auto& [c, _] : *expected) theirs.push_back(c);
  EXPECT_EQ(mine, theirs);
  size_t same = 0, same_order = 0;
  for (const auto& [code, items] : *expected) {
    auto it = compiled->find(code);
    if (it == compiled->end()) continue;
    if (asSet(it->second) == asSet(items)) {
      ++same;
    } else {
      ADD_FAILURE() << "code " << code << " differs: " << it->second.size() << " vs "
                    << items.size();
    }
    bool eq = it->second.size() == items.size();
    for (size_t k = 0; eq && k < items.size(); ++k) {
      eq = it->second[k].type == items[k].type && it->second[k].value == items[k].value;
    }
    same_order += eq;
  }
  EXPECT_EQ(same, expected->size());
  std::printf("[ info ] geosite codes with identical item sets: %zu/%zu, identical order: %zu\n",
              same, expected->size(), same_order);
  auto bytes = writeGeositeDb(*compiled);
  ASSERT_TRUE(bytes);
  std::printf("[ info ] compiled geosite.db byte-identical: %s\n",
              *bytes == test::readBytes(td + "/singbox-db/geosite.db") ? "yes" : "no");
}

TEST(GeositeText, CompilesLatestDlc) {
  REQUIRE_TESTDATA(td);
  auto compiled = compileGeositeDir(td + "/geosite-text/dlc-latest/data");
  ASSERT_TRUE(compiled) << compiled.error().message();
  EXPECT_GT(compiled->size(), 1500u);
  // Names with '!' and negative include filters (include:x @-!cn).
  ASSERT_TRUE(compiled->count("category-ai-!cn"));
  EXPECT_FALSE(compiled->at("category-ai-!cn").empty());
}

}  // namespace
}  // namespace veer::rules
