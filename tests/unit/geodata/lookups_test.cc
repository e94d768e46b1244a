// End-to-end expectations from ../shared/testdata/lookups, evaluated with the reference matcher
// in geodata_testutil (not the rule engine) over what veer's readers decode.
#include "base/json.h"
#include "geodata_testutil.h"
#include "rules/geosite_db.h"
#include "rules/ruleset_json.h"
#include "rules/srs.h"
#include "testutil/testutil.h"

namespace veer::rules {
namespace {

TEST(Lookups, RuleSetsJsonAndSrsAgree) {
  REQUIRE_TESTDATA(td);
  auto text = test::readFile(td + "/lookups/ruleset-lookups.json");
  ASSERT_TRUE(text);
  auto doc = json::parse(*text, "ruleset-lookups.json");
  ASSERT_TRUE(doc);
  size_t n = 0;
  for (const auto& c : doc->find("cases")->items) {
    std::string jpath = td + "/" + c.find("ruleset_json")->str;
    std::string spath = td + "/" + c.find("ruleset_srs")->str;
    auto jtext = test::readFile(jpath);
    ASSERT_TRUE(jtext);
    auto from_json = readRuleSetJson(*jtext, jpath);
    ASSERT_TRUE(from_json) << from_json.error().message();
    auto from_srs = readSrs(test::readBytes(spath), spath);
    ASSERT_TRUE(from_srs) << from_srs.error().message();
    std::string host;
    std::optional<IpAddress> ip;
    if (const json::Value* d = c.find("domain")) host = d->str;
    if (const json::Value* i = c.find("ip")) ip = IpAddress::parse(i->str);
    bool want = c.find("expected_match")->b;
    SCOPED_TRACE(spath + " " + host + (ip ? ip->toString() : ""));
    EXPECT_EQ(test::refMatchAny(from_json->rules, host, ip), want);
    EXPECT_EQ(test::refMatchAny(from_srs->rules, host, ip), want);
    ++n;
  }
  EXPECT_EQ(n, 9u);
}

TEST(Lookups, GeositeCategories) {
  REQUIRE_TESTDATA(td);
  auto text = test::readFile(td + "/lookups/geosite-lookups.json");
  ASSERT_TRUE(text);
  auto doc = json::parse(*text, "geosite-lookups.json");
  ASSERT_TRUE(doc);
  auto db = GeositeDb::open(td + "/singbox-db/geosite.db");
  ASSERT_TRUE(db);
  std::map<std::string, std::vector<GeositeItem>> cache;
  auto items = [&](const std::string& code) -> const std::vector<GeositeItem>& {
    auto it = cache.find(code);
    if (it == cache.end()) it = cache.emplace(code, *(*db)->load(code)).first;
    return it->second;
  };
  size_t n = 0;
  for (const auto& c : doc->find("cases")->items) {
    std::string host = c.find("domain")->str;
    for (const auto& m : c.find("matching_categories")->items) {
      EXPECT_TRUE(test::refMatchGeosite(items(m.str), host)) << host << " in " << m.str;
      ++n;
    }
    for (const auto& m : c.find("non_matching_checked")->items) {
      EXPECT_FALSE(test::refMatchGeosite(items(m.str), host)) << host << " not in " << m.str;
      ++n;
    }
  }
  EXPECT_GT(n, 100u);
}

}  // namespace
}  // namespace veer::rules
