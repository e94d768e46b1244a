// End-to-end checks against the real, externally computed lookups in ../shared/testdata: the
// engine, fed by the geodata readers (geosite.db, .mmdb, rule-set .json/.srs), must give the
// recorded answers. Skipped when the testdata folder is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "base/json.h"
#include "rules/geoip_mmdb.h"
#include "rules/geosite_db.h"
#include "rules/rule_engine.h"
#include "rules/ruleset_json.h"
#include "rules/srs.h"
#include "testutil/testutil.h"

namespace veer::rules {
namespace {

json::Value readJson(const std::string& path) {
  auto text = veer::test::readFile(path);
  EXPECT_TRUE(text.has_value()) << path;
  auto v = json::parse(text.value_or("{}"), path);
  EXPECT_TRUE(v.has_value()) << path;
  return v ? std::move(*v) : json::Value{};
}

RuleSpec routeTo(const std::string& tag) {
  RuleSpec r;
  r.action = RuleAction{};
  r.action->outbound = tag;
  return r;
}

TEST(Testdata, GeositeLookupsThroughTheEngine) {
  REQUIRE_TESTDATA(dir);
  json::Value doc = readJson(dir + "/lookups/geosite-lookups.json");
  auto db = GeositeDb::open(dir + "/singbox-db/geosite.db");
  ASSERT_TRUE(db.has_value()) << db.error().message();
  std::vector<std::string> checked;
  for (const auto& c : doc.find("categories_checked")->items) checked.push_back(c.str);
  ASSERT_FALSE(checked.empty());
  std::vector<RuleSpec> rules;
  for (const auto& code : checked) {
    RuleSpec r = routeTo(code);
    r.geosite = {code};
    rules.push_back(r);
  }
  DiagList diags;
  auto engine = RuleEngine::compile(rules, {}, GeoSources{db->get(), nullptr}, diags);
  ASSERT_TRUE(engine.has_value()) << engine.error().message();
  size_t cases = 0;
  for (const auto& c : doc.find("cases")->items) {
    std::string domain = c.find("domain")->str;
    std::set<std::string> expected;
    for (const auto& m : c.find("matching_categories")->items) {
      if (std::find(checked.begin(), checked.end(), m.str) != checked.end()) expected.insert(m.str);
    }
    std::set<std::string> got;
    MatchInput in;
    in.domain = domain;
    in.port = 443;
    for (size_t i = 0;;) {
      MatchResult m = (*engine)->matchFrom(in, i);
      if (!m.matched()) break;
      got.insert(m.action->outbound);
      i = m.index + 1;
    }
    EXPECT_EQ(got, expected) << domain;
    // The trace names the category and the item that matched.
    for (const auto& code : expected) {
      Trace t;
      size_t idx = std::find(checked.begin(), checked.end(), code) - checked.begin();
      MatchResult m = (*engine)->matchFrom(in, idx, &t);
      ASSERT_TRUE(m.matched());
      EXPECT_EQ(m.index, idx);
      EXPECT_EQ(t.steps.back().detail.rfind("geosite:" + code + " (", 0), 0u) << t.steps.back().detail;
    }
    ++cases;
  }
  EXPECT_GE(cases, 10u);
}

TEST(Testdata, GeoipLookupsThroughTheEngine) {
  REQUIRE_TESTDATA(dir);
  json::Value doc = readJson(dir + "/lookups/geoip-lookups.json");
  size_t checked = 0;
  for (const auto& c : doc.find("cases")->items) {
    const json::Value* expected = c.find("expected");
    if (c.find("lookup_path")->str == "autonomous_system_number") continue;
    auto db = GeoipMmdb::open(dir + "/" + c.find("db")->str);
    ASSERT_TRUE(db.has_value()) << db.error().message();
    std::string want = expected->isString() ? expected->str : "zz";
    // Rule 0: the expected code (upper- and lower-case spellings must both work); rule 1: a code
    // that cannot be the answer.
    RuleSpec hit = routeTo("hit");
    hit.geoip = {want};
    for (auto& ch : hit.geoip[0]) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    RuleSpec miss = routeTo("miss");
    miss.geoip = {want == "aq" ? "ax" : "aq"};
    DiagList diags;
    auto engine = RuleEngine::compile({hit, miss}, {}, GeoSources{nullptr, db->get()}, diags);
    ASSERT_TRUE(engine.has_value());
    MatchInput in;
    in.destination = *IpAddress::parse(c.find("ip")->str);
    MatchResult m = (*engine)->matchFrom(in);
    std::string what = c.find("db")->str + " " + c.find("ip")->str;
    if (expected->isString()) {
      ASSERT_TRUE(m.matched()) << what;
      EXPECT_EQ(m.action->outbound, "hit") << what;
    } else {
      EXPECT_FALSE(m.matched()) << what;
    }
    ++checked;
  }
  EXPECT_GE(checked, 15u);
}

TEST(Testdata, RuleSetLookupsFromJsonAndSrs) {
  REQUIRE_TESTDATA(dir);
  json::Value doc = readJson(dir + "/lookups/ruleset-lookups.json");
  size_t checked = 0;
  for (const auto& c : doc.find("cases")->items) {
    std::string json_path = dir + "/" + c.find("ruleset_json")->str;
    auto text = veer::test::readFile(json_path);
    ASSERT_TRUE(text.has_value());
    auto from_json = readRuleSetJson(*text, json_path);
    ASSERT_TRUE(from_json.has_value()) << from_json.error().message();
    std::string srs_path = json_path.substr(0, json_path.size() - 5) + ".srs";
    auto bytes = veer::test::readFile(srs_path);
    ASSERT_TRUE(bytes.has_value()) << srs_path;
    auto from_srs = readSrs(asBytes(*bytes), srs_path);
    ASSERT_TRUE(from_srs.has_value()) << from_srs.error().message();
    RuleSetMap sets;
    sets["json"] = from_json->rules;
    sets["srs"] = from_srs->rules;
    RuleSpec a = routeTo("json");
    a.rule_set = {"json"};
    RuleSpec b = routeTo("srs");
    b.rule_set = {"srs"};
    DiagList diags;
    auto ej = RuleEngine::compile({a}, sets, {}, diags);
    auto es = RuleEngine::compile({b}, sets, {}, diags);
    ASSERT_TRUE(ej.has_value() && es.has_value());
    MatchInput in;
    std::string what = c.find("ruleset_json")->str + " ";
    if (const json::Value* d = c.find("domain")) {
      in.domain = d->str;
      what += d->str;
    } else {
      in.destination = *IpAddress::parse(c.find("ip")->str);
      what += c.find("ip")->str;
    }
    bool expected = c.find("expected_match")->b;
    EXPECT_EQ((*ej)->matchFrom(in).matched(), expected) << what;
    EXPECT_EQ((*es)->matchFrom(in).matched(), expected) << what;
    ++checked;
  }
  EXPECT_GE(checked, 9u);
}

}  // namespace
}  // namespace veer::rules
