// Geodata load cost and lookup rate on the full sing-box databases from ../shared/testdata
// (or $VEER_TESTDATA): geosite.db open + decode of every code, geoip.db open, RSS deltas, and
// lookups per second. Run: bench_geodata [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "rules/geoip_mmdb.h"
#include "rules/geosite_db.h"
#include "rules/srs.h"

namespace {

std::string testdata() {
  if (const char* e = std::getenv("VEER_TESTDATA")) return e;
  return "../shared/testdata";
}

// Resident set size in KiB from /proc/self/statm.
long rssKiB() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return resident * 4;
}

void BM_GeositeOpen(benchmark::State& state) {
  const std::string path = testdata() + "/singbox-db/geosite.db";
  for (auto _ : state) {
    auto db = veer::rules::GeositeDb::open(path);
    if (!db) state.SkipWithError(db.error().message().c_str());
    benchmark::DoNotOptimize(db);
  }
}
BENCHMARK(BM_GeositeOpen)->Unit(benchmark::kMillisecond);

void BM_GeositeLoadAll(benchmark::State& state) {
  const std::string path = testdata() + "/singbox-db/geosite.db";
  long rss_delta = 0;
  for (auto _ : state) {
    long before = rssKiB();
    auto db = veer::rules::GeositeDb::open(path);
    if (!db) {
      state.SkipWithError(db.error().message().c_str());
      break;
    }
    auto all = (*db)->loadAll();
    rss_delta = rssKiB() - before;
    benchmark::DoNotOptimize(all);
  }
  state.counters["rss_delta_KiB"] = static_cast<double>(rss_delta);
}
BENCHMARK(BM_GeositeLoadAll)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_GeositeLoadOneCode(benchmark::State& state) {
  auto db = veer::rules::GeositeDb::open(testdata() + "/singbox-db/geosite.db");
  if (!db) {
    state.SkipWithError(db.error().message().c_str());
    return;
  }
  for (auto _ : state) {
    auto items = (*db)->load("google");
    benchmark::DoNotOptimize(items);
  }
}
BENCHMARK(BM_GeositeLoadOneCode)->Unit(benchmark::kMicrosecond);

void BM_GeoipOpen(benchmark::State& state) {
  const std::string path = testdata() + "/singbox-db/geoip.db";
  long rss_delta = 0;
  for (auto _ : state) {
    long before = rssKiB();
    auto db = veer::rules::GeoipMmdb::open(path);
    if (!db) {
      state.SkipWithError(db.error().message().c_str());
      break;
    }
    rss_delta = rssKiB() - before;
    benchmark::DoNotOptimize(db);
  }
  state.counters["rss_delta_KiB"] = static_cast<double>(rss_delta);
}
BENCHMARK(BM_GeoipOpen)->Unit(benchmark::kMicrosecond);

void BM_GeoipLookup(benchmark::State& state) {
  auto db = veer::rules::GeoipMmdb::open(testdata() + "/singbox-db/geoip.db");
  if (!db) {
    state.SkipWithError(db.error().message().c_str());
    return;
  }
  std::mt19937 rng(1);
  std::vector<veer::IpAddress> ips;
  for (int k = 0; k < 4096; ++k) {
    if (state.range(0) == 4) {
      ips.push_back(veer::IpAddress::v4(static_cast<uint32_t>(rng())));
    } else {
      uint8_t b[16];
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      b[0] = 0x20 | (b[0] & 0x0f);  // 2000::/4, where the allocations are
      ips.push_back(veer::IpAddress::v6(b));
    }
  }
  size_t i = 0, found = 0;
  for (auto _ : state) {
    found += !(*db)->lookup(ips[i++ & 4095]).empty();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hit_ratio"] = static_cast<double>(found) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_GeoipLookup)->Arg(4)->Arg(6);

void BM_SrsRead(benchmark::State& state) {
  const std::string path = testdata() + "/ruleset/sing-geosite-rule-set/geosite-geolocation-!cn.srs";
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
  for (auto _ : state) {
    auto set = veer::rules::readSrs(bytes, path);
    if (!set) state.SkipWithError(set.error().message().c_str());
    benchmark::DoNotOptimize(set);
  }
}
BENCHMARK(BM_SrsRead)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
