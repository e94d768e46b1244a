#include "dns/cache.h"

#include <gtest/gtest.h>

namespace veer::dns {
namespace {

Message answer(const std::string& name, uint16_t type, uint32_t ttl, const char* ip = "192.0.2.1") {
  Message q = makeQuery(1, name, type, std::nullopt);
  return makeAddressResponse(q, {*IpAddress::parse(ip)}, ttl);
}

Message negative(const std::string& name, Rcode rc, std::optional<uint32_t> soa_min,
                 uint32_t soa_ttl = 3600) {
  Message r = makeResponse(makeQuery(1, name, rrtype::kA, std::nullopt), rc);
  if (soa_min) {
    Record soa;
    soa.name = "test";
    soa.type = rrtype::kSoa;
    soa.ttl = soa_ttl;
    auto m = *encodeName("ns.test");
    auto rn = *encodeName("host.test");
    soa.rdata = m;
    soa.rdata.insert(soa.rdata.end(), rn.begin(), rn.end());
    uint8_t tail[20] = {};
    storeBe32(tail + 16, *soa_min);
    soa.rdata.insert(soa.rdata.end(), tail, tail + 20);
    r.authorities.push_back(soa);
  }
  return r;
}

TEST(DnsCache, HitDecrementsTtlAndExpires) {
  Cache c(Cache::Options{});
  CacheKey k{"a.test", rrtype::kA, ""};
  ASSERT_TRUE(c.put(k, answer("a.test", rrtype::kA, 10), 1000));
  auto hit = c.get(k, 4500);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->answers[0].ttl, 7u);  // 3.5 s elapsed, rounded down
  EXPECT_FALSE(c.get(k, 11000).has_value());
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.stats().expired, 1u);
  EXPECT_EQ(c.stats().hits, 1u);
}

TEST(DnsCache, KeysSeparateTypeAndServer) {
  Cache c(Cache::Options{});
  c.put({"a.test", rrtype::kA, ""}, answer("a.test", rrtype::kA, 10), 0);
  EXPECT_FALSE(c.get({"a.test", rrtype::kAaaa, ""}, 0).has_value());
  EXPECT_FALSE(c.get({"a.test", rrtype::kA, "other"}, 0).has_value());
  EXPECT_TRUE(c.get({"a.test", rrtype::kA, ""}, 0).has_value());
}

TEST(DnsCache, DisableExpireKeepsEntriesAndTtls) {
  Cache::Options o;
  o.disable_expire = true;
  Cache c(o);
  CacheKey k{"a.test", rrtype::kA, ""};
  c.put(k, answer("a.test", rrtype::kA, 5), 0);
  auto hit = c.get(k, 3'600'000);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->answers[0].ttl, 5u);
}

TEST(DnsCache, NegativeTtlFromSoaIsCapped) {
  EXPECT_EQ(Cache::cacheTtl(negative("x.test", Rcode::NxDomain, 60), 300), 60u);
  EXPECT_EQ(Cache::cacheTtl(negative("x.test", Rcode::NxDomain, 60, 30), 300), 30u);
  EXPECT_EQ(Cache::cacheTtl(negative("x.test", Rcode::NxDomain, 86400), 300), 300u);
  // NODATA (NOERROR, empty answer) is negative too.
  EXPECT_EQ(Cache::cacheTtl(negative("x.test", Rcode::NoError, 45), 300), 45u);
  // Without an SOA, a negative answer is not cached (RFC 2308 §5).
  EXPECT_FALSE(Cache::cacheTtl(negative("x.test", Rcode::NxDomain, std::nullopt), 300));
  EXPECT_FALSE(Cache::cacheTtl(negative("x.test", Rcode::ServFail, 60), 300));
  Message tc = answer("a.test", rrtype::kA, 10);
  tc.tc = true;
  EXPECT_FALSE(Cache::cacheTtl(tc, 300));
  EXPECT_FALSE(Cache::cacheTtl(answer("a.test", rrtype::kA, 0), 300));

  Cache c(Cache::Options{});
  CacheKey k{"x.test", rrtype::kA, ""};
  ASSERT_TRUE(c.put(k, negative("x.test", Rcode::NxDomain, 60), 0));
  auto hit = c.get(k, 59'000);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->rcodeValue(), Rcode::NxDomain);
  EXPECT_FALSE(c.get(k, 60'000).has_value());
}

TEST(DnsCache, LruEviction) {
  Cache::Options o;
  o.capacity = 3;
  Cache c(o);
  for (const char* n : {"1.test", "2.test", "3.test"}) {
    c.put({n, rrtype::kA, ""}, answer(n, rrtype::kA, 100), 0);
  }
  ASSERT_TRUE(c.get({"1.test", rrtype::kA, ""}, 0));  // 1 becomes most recent; 2 is oldest
  c.put({"4.test", rrtype::kA, ""}, answer("4.test", rrtype::kA, 100), 0);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.stats().evictions, 1u);
  EXPECT_FALSE(c.get({"2.test", rrtype::kA, ""}, 0));
  EXPECT_TRUE(c.get({"1.test", rrtype::kA, ""}, 0));
  EXPECT_TRUE(c.get({"3.test", rrtype::kA, ""}, 0));
  EXPECT_TRUE(c.get({"4.test", rrtype::kA, ""}, 0));
}

TEST(DnsCoalescer, OneLeaderManyWaiters) {
  Coalescer co;
  CacheKey k{"a.test", rrtype::kA, ""};
  int calls = 0;
  auto first = co.join(k, [&](const Result<Message>& r) { calls += r.has_value() ? 1 : 100; });
  EXPECT_TRUE(first.leader);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 9; ++i) {
    auto j = co.join(k, [&](const Result<Message>& r) { calls += r.has_value() ? 1 : 100; });
    EXPECT_FALSE(j.leader);
    ids.push_back(j.waiter_id);
  }
  co.cancel(ids[0]);
  EXPECT_EQ(co.coalesced(), 9u);
  co.complete(k, answer("a.test", rrtype::kA, 5));
  EXPECT_EQ(calls, 9);
  EXPECT_FALSE(co.inFlight(k));
  // The next join after completion leads a new query.
  EXPECT_TRUE(co.join(k, [](const Result<Message>&) {}).leader);
}

TEST(DnsCoalescer, CancelFromInsideCallback) {
  Coalescer co;
  CacheKey k{"a.test", rrtype::kA, ""};
  int calls = 0;
  uint64_t second = 0;
  co.join(k, [&](const Result<Message>&) {
    ++calls;
    co.cancel(second);
  });
  second = co.join(k, [&](const Result<Message>&) { calls += 100; }).waiter_id;
  co.complete(k, unexpected("timeout"));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace veer::dns
