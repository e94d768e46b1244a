#include "base/json.h"
#include "geodata_testutil.h"
#include "rules/geoip_mmdb.h"
#include "testutil/testutil.h"

namespace veer::rules {
namespace {

TEST(GeoipMmdb, LookupsFromLookupsJson) {
  REQUIRE_TESTDATA(td);
  auto text = test::readFile(td + "/lookups/geoip-lookups.json");
  ASSERT_TRUE(text);
  auto doc = json::parse(*text, "geoip-lookups.json");
  ASSERT_TRUE(doc);
  const json::Value* cases = doc->find("cases");
  ASSERT_TRUE(cases && cases->isArray());
  size_t checked = 0;
  for (const auto& c : cases->items) {
    std::string path = c.find("lookup_path")->str;
    if (path == "autonomous_system_number") continue;  // ASN is not a GeoipSource lookup
    std::string dbpath = td + "/" + c.find("db")->str;
    SCOPED_TRACE(dbpath + " " + c.find("ip")->str);
    auto db = GeoipMmdb::open(dbpath);
    ASSERT_TRUE(db) << db.error().message();
    auto ip = IpAddress::parse(c.find("ip")->str);
    ASSERT_TRUE(ip);
    const json::Value* exp = c.find("expected");
    std::string want = exp->isNull() ? "" : exp->str;
    EXPECT_EQ((*db)->lookup(*ip), want);
    ++checked;
  }
  EXPECT_GE(checked, 13u);
}

TEST(GeoipMmdb, SingGeoipDetails) {
  REQUIRE_TESTDATA(td);
  auto db = GeoipMmdb::open(td + "/singbox-db/geoip.db");
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ((*db)->shape(), GeoipMmdb::Shape::SingGeoip);
  // IPv4-mapped IPv6 is unmapped first (the DB has IPv4 aliasing disabled).
  EXPECT_EQ((*db)->lookup(*IpAddress::parse("::ffff:8.8.8.8")), "us");
  EXPECT_EQ((*db)->lookup(*IpAddress::parse("127.0.0.1")), "");
  // registered_country keying: 1.1.1.1 -> au.
  EXPECT_EQ((*db)->lookup(*IpAddress::parse("1.1.1.1")), "au");
  auto codes = (*db)->codes();
  EXPECT_GT(codes.size(), 200u);
  EXPECT_NE(std::find(codes.begin(), codes.end(), "cn"), codes.end());
  EXPECT_TRUE((*db)->verify());
  auto lite = GeoipMmdb::open(td + "/mmdb/real/country-lite.mmdb");
  ASSERT_TRUE(lite);
  EXPECT_EQ((*lite)->shape(), GeoipMmdb::Shape::Country);
  EXPECT_EQ((*lite)->lookup(*IpAddress::parse("1.1.1.1")), "CLOUDFLARE");
  EXPECT_EQ((*lite)->lookup(*IpAddress::parse("::ffff:114.114.114.114")), "CN");
  EXPECT_TRUE((*lite)->codes().empty());
}

TEST(GeoipMmdb, CountryFallsBackToRegisteredCountry) {
  REQUIRE_TESTDATA(td);
  // In GeoIP2-Country-Test, 2a02:d280::/29 has only registered_country (CZ) — see the source
  // JSON; the test finds such a network instead of trusting a hard-coded one.
  auto src = test::readFile(td + "/mmdb/maxmind-source-data/GeoIP2-Country-Test.json");
  ASSERT_TRUE(src);
  auto doc = json::parse(*src, "src.json");
  ASSERT_TRUE(doc);
  auto db = GeoipMmdb::open(td + "/mmdb/maxmind-test-data/GeoIP2-Country-Test.mmdb");
  ASSERT_TRUE(db);
  size_t checked = 0;
  for (const auto& entry : doc->items) {
    for (const auto& m : entry.members) {
      const json::Value* country = m.value.find("country");
      const json::Value* reg = m.value.find("registered_country");
      std::string want;
      if (country && country->find("iso_code")) {
        want = country->find("iso_code")->str;
      } else if (reg && reg->find("iso_code")) {
        want = reg->find("iso_code")->str;
      } else {
        continue;
      }
      auto ip = IpAddress::parse(m.key.substr(0, m.key.find('/')));
      ASSERT_TRUE(ip) << m.key;
      EXPECT_EQ((*db)->lookup(*ip), want) << m.key;
      ++checked;
    }
  }
  EXPECT_GT(checked, 10u);
}

TEST(GeoipMmdb, BadDataGivesErrorsNotCrashes) {
  REQUIRE_TESTDATA(td);
  std::vector<std::string> files;
  for (const char* d : {"libmaxminddb", "maxminddb-golang", "maxminddb-python"}) {
    auto f = test::listFiles(td + "/mmdb/maxmind-bad-data/" + d, ".mmdb");
    files.insert(files.end(), f.begin(), f.end());
  }
  for (const char* n : {"MaxMind-DB-test-broken-pointers-24.mmdb",
                        "MaxMind-DB-test-broken-search-tree-24.mmdb",
                        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
                        "GeoIP2-City-Test-Invalid-Node-Count.mmdb"}) {
    files.push_back(td + "/mmdb/maxmind-test-data/" + n);
  }
  EXPECT_EQ(files.size(), 25u);
  size_t open_failed = 0;
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    auto db = GeoipMmdb::open(f);
    if (!db) {
      EXPECT_NE(db.error().message().find(f), std::string::npos);
      ++open_failed;
      continue;
    }
    for (const char* ip : {"1.1.1.1", "::1.1.1.1", "2001:db8::1", "81.2.69.160", "255.255.255.255"}) {
      (void)(*db)->lookup(*IpAddress::parse(ip));
    }
    (void)(*db)->verify();
    (void)(*db)->codes();
  }
  EXPECT_GT(open_failed, 5u);
  auto missing = GeoipMmdb::open("/nonexistent/geoip.db");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/nonexistent/geoip.db"), std::string::npos);
}

}  // namespace
}  // namespace veer::rules
