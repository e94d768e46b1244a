// Rule-engine benchmark: decisions per second and latency per decision with the whole v2fly
// domain-list-community loaded (100k+ domains, read at run time from ../shared/testdata, never
// copied into the repo) plus a large generated CIDR list; also the memory the compiled rules
// hold (RSS delta). Prints p50/p99 from a clock_gettime-timed loop, then runs Google Benchmark.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "rules/rule_engine.h"

using namespace veer;
using namespace veer::rules;

namespace {

long rssKb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

std::string dataDir() {
  const char* env = std::getenv("VEER_TESTDATA");
  std::string base = env != nullptr ? env : "/work/shared/testdata";
  return base + "/geosite-text/dlc-latest/data";
}

struct Lists {
  std::vector<std::string> full, suffix, keyword;
};

/// Rough v2fly text parsing: `domain:x`, `full:x`, `keyword:x`, bare `x`; attributes, comments,
/// `include:` and `regexp:` lines are dropped.
void readList(const std::string& path, Lists& out) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    if (auto sp = line.find_first_of(" \t@"); sp != std::string::npos) line.resize(sp);
    if (line.empty()) continue;
    auto colon = line.find(':');
    std::string kind = colon == std::string::npos ? "domain" : line.substr(0, colon);
    std::string value = colon == std::string::npos ? line : line.substr(colon + 1);
    if (value.empty()) continue;
    if (kind == "domain") {
      out.suffix.push_back(value);
    } else if (kind == "full") {
      out.full.push_back(value);
    } else if (kind == "keyword") {
      out.keyword.push_back(value);
    }
  }
}

struct Fixture {
  std::unique_ptr<RuleEngine> engine;
  std::vector<std::string> hosts;
  std::vector<MatchInput> inputs;
  size_t domains = 0, cidrs = 0, real_domains = 0;
  long rss_delta_kb = 0;
  size_t engine_bytes = 0;
};

Fixture& fixture() {
  static Fixture fx = [] {
    Fixture fx;
    std::vector<std::string> files;
    if (DIR* d = opendir(dataDir().c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') files.push_back(e->d_name);
      }
      closedir(d);
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      std::fprintf(stderr, "no domain lists under %s (set VEER_TESTDATA)\n", dataDir().c_str());
      std::exit(1);
    }
    // Three big rules, like category-ads => reject, cn => direct, the rest => proxy.
    Lists buckets[3];
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string& n = files[i];
      int b = n.find("ads") != std::string::npos ? 0 : (n.find("cn") != std::string::npos ? 1 : 2);
      readList(dataDir() + "/" + n, buckets[b]);
    }
    std::mt19937 rng(42);
    // The community list holds ~40k names; pad the "proxy" rule with generated ones (half under
    // real suffixes, half under random second-level names) to reach 120k entries.
    {
      size_t real = 0;
      for (auto& b : buckets) real += b.full.size() + b.suffix.size();
      fx.real_domains = real;
      std::vector<std::string> base = buckets[2].suffix;
      const char* tlds[] = {"com", "net", "org", "io", "de", "ru", "jp", "cn"};
      for (size_t i = real; i < 120000; ++i) {
        if (i % 2 == 0) {
          buckets[2].full.push_back("h" + std::to_string(rng() % 1000000) + "." + base[rng() % base.size()]);
        } else {
          buckets[2].suffix.push_back("gen" + std::to_string(rng()) + "." + tlds[rng() % 8]);
        }
      }
    }
    std::vector<std::string> cidr_text;
    for (int i = 0; i < 60000; ++i) {
      uint32_t a = rng();
      int len = 12 + static_cast<int>(rng() % 13);  // /12../24
      cidr_text.push_back(std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
                          std::to_string((a >> 8) & 255) + ".0/" + std::to_string(len));
    }
    for (int i = 0; i < 20000; ++i) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "2%03x:%x:%x::/48", rng() % 0xfff, rng() & 0xffff, rng() & 0xffff);
      cidr_text.push_back(buf);
    }
    fx.cidrs = cidr_text.size();

    malloc_trim(0);
    long before = rssKb();
    std::vector<RuleSpec> rules;
    auto act = [](RuleAction::Type t, const char* tag) {
      RuleAction a;
      a.type = t;
      a.outbound = tag;
      return a;
    };
    {
      RuleSpec sniff;  // the usual first rule
      sniff.action = act(RuleAction::Type::Sniff, "");
      rules.push_back(sniff);
      RuleSpec dns;
      dns.protocol = {"dns"};
      dns.action = act(RuleAction::Type::HijackDns, "");
      rules.push_back(dns);
      RuleSpec lan;
      lan.ip_is_private = true;
      lan.action = act(RuleAction::Type::Route, "direct");
      rules.push_back(lan);
    }
    const char* tags[3] = {"block", "direct", "proxy"};
    for (int b = 0; b < 3; ++b) {
      RuleSpec r;
      r.domain = buckets[b].full;
      r.domain_suffix = buckets[b].suffix;
      r.domain_keyword = buckets[b].keyword;
      fx.domains += r.domain.size() + r.domain_suffix.size();
      r.action = act(b == 0 ? RuleAction::Type::Reject : RuleAction::Type::Route, tags[b]);
      rules.push_back(std::move(r));
    }
    RuleSpec quic;
    quic.network = {"udp"};
    quic.port = {443};
    quic.action = act(RuleAction::Type::Reject, "");
    rules.push_back(quic);
    RuleSpec cidr;
    cidr.ip_cidr = cidr_text;
    cidr.action = act(RuleAction::Type::Route, "direct");
    rules.push_back(std::move(cidr));
    RuleSpec ports;
    ports.port_range = {"6881:6889"};
    ports.source_port = {51413};
    ports.action = act(RuleAction::Type::Route, "direct");
    rules.push_back(std::move(ports));

    DiagList diags;
    auto e = RuleEngine::compile(rules, {}, {}, diags);
    if (!e) {
      std::fprintf(stderr, "compile failed: %s\n", e.error().message().c_str());
      for (const auto& d : diags.all()) std::fprintf(stderr, "%s\n", d.toString().c_str());
      std::exit(1);
    }
    rules.clear();
    rules.shrink_to_fit();
    fx.engine = std::move(*e);
    // Hand the freed RuleSpec strings back to the kernel so that the delta is what the
    // compiled rules hold, not allocator slack from building them.
    malloc_trim(0);
    fx.rss_delta_kb = rssKb() - before;
    fx.engine_bytes = fx.engine->memoryBytes();

    // Inputs: list domains with a random sub-label, unknown domains, and IPs.
    std::vector<std::string> all;
    for (auto& b : buckets) {
      all.insert(all.end(), b.suffix.begin(), b.suffix.end());
      all.insert(all.end(), b.full.begin(), b.full.end());
    }
    const int n = 20000;
    fx.hosts.reserve(n);
    for (int i = 0; i < n; ++i) {
      switch (i % 4) {
        case 0: fx.hosts.push_back("www." + all[rng() % all.size()]); break;
        case 1: fx.hosts.push_back(all[rng() % all.size()]); break;
        case 2: fx.hosts.push_back("x" + std::to_string(rng()) + ".unknown-" + std::to_string(i) + ".example"); break;
        default: fx.hosts.push_back(""); break;
      }
    }
    for (int i = 0; i < n; ++i) {
      MatchInput in;
      in.network = (i % 7 == 0) ? "udp" : "tcp";
      in.port = (i % 5 == 0) ? 80 : 443;
      in.source = IpAddress::v4(0xc0a80164u);
      in.source_port = static_cast<uint16_t>(40000 + i % 20000);
      in.domain = fx.hosts[i];
      if (fx.hosts[i].empty()) in.destination = IpAddress::v4(static_cast<uint32_t>(rng()));
      fx.inputs.push_back(in);
    }
    return fx;
  }();
  return fx;
}

/// The router's loop: match, and continue after non-final actions.
size_t decide(const RuleEngine& e, const MatchInput& in) {
  size_t i = 0;
  while (true) {
    MatchResult m = e.matchFrom(in, i);
    if (!m.matched() || m.action == nullptr || m.action->isFinal()) return m.index;
    i = m.index + 1;
  }
}

uint64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

void timedLoop() {
  Fixture& fx = fixture();
  const size_t rounds = 50;
  std::vector<uint32_t> ns;
  ns.reserve(fx.inputs.size() * rounds);
  size_t sink = 0;
  uint64_t t0 = nowNs();
  for (size_t r = 0; r < rounds; ++r) {
    for (const auto& in : fx.inputs) {
      uint64_t a = nowNs();
      sink += decide(*fx.engine, in);
      ns.push_back(static_cast<uint32_t>(nowNs() - a));
    }
  }
  uint64_t total = nowNs() - t0;
  std::sort(ns.begin(), ns.end());
  auto pct = [&](double p) { return ns[static_cast<size_t>(p * (ns.size() - 1))]; };
  uint64_t overhead = nowNs();
  overhead = nowNs() - overhead;
  std::printf("rules: %zu rules, %zu domains (exact+suffix; %zu from dlc, rest generated), %zu CIDRs\n",
              fx.engine->size(), fx.domains, fx.real_domains, fx.cidrs);
  std::printf("memory: RSS delta %.1f MiB, engine->memoryBytes() %.1f MiB\n",
              fx.rss_delta_kb / 1024.0, fx.engine_bytes / 1048576.0);
  std::printf("decisions: %zu in %.3f s (incl. timer) = %.2f M/s; per decision p50 %u ns, p90 %u ns, "
              "p99 %u ns, p99.9 %u ns, max %u ns (clock_gettime pair ~%llu ns included) [sink %zu]\n",
              ns.size(), total / 1e9, ns.size() / (total / 1e9) / 1e6, pct(0.5), pct(0.9), pct(0.99),
              pct(0.999), ns.back(), static_cast<unsigned long long>(overhead), sink);
}

void BM_Decision(benchmark::State& state) {
  Fixture& fx = fixture();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decide(*fx.engine, fx.inputs[i]));
    if (++i == fx.inputs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decision);

void BM_DomainOnlyMiss(benchmark::State& state) {
  Fixture& fx = fixture();
  MatchInput in;
  in.domain = "a.b.c.not-in-any-list.example";
  in.port = 443;
  in.network = "tcp";
  for (auto _ : state) benchmark::DoNotOptimize(decide(*fx.engine, in));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DomainOnlyMiss);

}  // namespace

int main(int argc, char** argv) {
  timedLoop();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
