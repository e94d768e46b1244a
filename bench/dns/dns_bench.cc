// DNS hot paths: message parse/serialize, cache hits, and whole cached lookups/exchanges through
// DnsRouter on a libuv loop (what a router answering LAN clients from cache does).
#include <benchmark/benchmark.h>
#include <uv.h>

#include <netinet/in.h>

#include <optional>
#include <string>

#include "base/json.h"
#include "dns/cache.h"
#include "dns/dns_router.h"
#include "dns/message.h"

using namespace veer;
using namespace veer::dns;

namespace {

std::vector<uint8_t> sampleResponse() {
  Message q = makeQuery(0x1234, "www.example.com", rrtype::kA, Edns{});
  Message r = makeResponse(q, Rcode::NoError);
  Record cname;
  cname.name = "www.example.com";
  cname.type = rrtype::kCname;
  cname.ttl = 300;
  cname.rdata = *encodeName("www.example.com.cdn.example.net");
  r.answers.push_back(cname);
  for (int i = 0; i < 4; ++i) {
    uint8_t b[4] = {93, 184, 216, static_cast<uint8_t>(34 + i)};
    r.answers.push_back(Record::address("www.example.com.cdn.example.net", IpAddress::v4(b), 60));
  }
  return *serializeMessage(r);
}

void BM_ParseQuery(benchmark::State& st) {
  auto wire = *serializeMessage(makeQuery(1, "www.example.com", rrtype::kA, Edns{}));
  for (auto _ : st) {
    auto m = parseMessage(wire);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_ParseQuery);

void BM_ParseResponse(benchmark::State& st) {
  auto wire = sampleResponse();
  for (auto _ : st) {
    auto m = parseMessage(wire);
    benchmark::DoNotOptimize(m);
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(wire.size()));
}
BENCHMARK(BM_ParseResponse);

void BM_SerializeResponse(benchmark::State& st) {
  auto m = *parseMessage(sampleResponse());
  for (auto _ : st) {
    auto w = serializeMessage(m, 512);
    benchmark::DoNotOptimize(w);
  }
}
BENCHMARK(BM_SerializeResponse);

void BM_CacheHit(benchmark::State& st) {
  Cache c(Cache::Options{});
  auto m = *parseMessage(sampleResponse());
  for (int i = 0; i < 1000; ++i) {
    c.put({"host" + std::to_string(i) + ".example.com", rrtype::kA, ""}, m, 0);
  }
  CacheKey k{"host500.example.com", rrtype::kA, ""};
  for (auto _ : st) {
    auto hit = c.get(k, 1000);
    benchmark::DoNotOptimize(hit);
  }
}
BENCHMARK(BM_CacheHit);

// A tiny UDP DNS server on the benchmark's loop: answers A/AAAA with one address, TTL 1 hour.
// It is only asked once per name; after that the router answers from its cache.
struct Responder {
  uv_udp_t udp{};
  uint16_t port = 0;
  char buf[2048];
  explicit Responder(uv_loop_t* loop) {
    uv_udp_init(loop, &udp);
    udp.data = this;
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_udp_bind(&udp, reinterpret_cast<sockaddr*>(&a), 0);
    sockaddr_storage ss{};
    int len = sizeof ss;
    uv_udp_getsockname(&udp, reinterpret_cast<sockaddr*>(&ss), &len);
    port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    uv_udp_recv_start(
        &udp,
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* self = static_cast<Responder*>(h->data);
          *b = uv_buf_init(self->buf, sizeof self->buf);
        },
        [](uv_udp_t* h, ssize_t n, const uv_buf_t* b, const sockaddr* from, unsigned) {
          if (n <= 0 || !from) return;
          auto q = parseMessage(ByteView(reinterpret_cast<const uint8_t*>(b->base), size_t(n)));
          if (!q) return;
          auto w = serializeMessage(makeAddressResponse(
              *q, {*IpAddress::parse("192.0.2.1"), *IpAddress::parse("2001:db8::1")}, 3600));
          uv_buf_t out = uv_buf_init(reinterpret_cast<char*>(w->data()), w->size());
          uv_udp_try_send(h, &out, 1, from);
        });
  }
  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&udp), nullptr); }
};

struct RouterFixture {
  uv_loop_t loop{};
  std::unique_ptr<Responder> responder;
  std::unique_ptr<DnsRouter> router;

  RouterFixture() {
    uv_loop_init(&loop);
    responder = std::make_unique<Responder>(&loop);
    std::string cfg = R"({"servers": [{"type": "udp", "tag": "u", "server": "127.0.0.1",
                          "server_port": )" + std::to_string(responder->port) + "}]}";
    DiagList diags;
    auto v = json::parse(cfg, "bench.json");
    auto r = DnsRouter::create(&loop, *v, "bench.json", diags);
    router = std::move(*r);
    // Warm the cache: one upstream round trip for A and AAAA.
    bool warm = false;
    router->lookup("a.example", Strategy::AsIs, [&](Result<LookupResult>) { warm = true; });
    while (!warm) uv_run(&loop, UV_RUN_ONCE);
  }
  ~RouterFixture() {
    router.reset();
    responder->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};

// Cached lookups per second through the whole Resolver path: rule selection, cache, deferral
// to the loop, answer extraction and sorting.
void BM_RouterCachedLookup(benchmark::State& st) {
  RouterFixture f;
  constexpr int kBatch = 256;
  for (auto _ : st) {
    int done = 0;
    for (int i = 0; i < kBatch; ++i) {
      f.router->lookup("a.example", Strategy::PreferIpv4, [&](Result<LookupResult> r) {
        done += r.has_value();
      });
    }
    while (done < kBatch) uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * kBatch);
  st.counters["upstream"] = double(f.router->stats().upstream_queries);
}
BENCHMARK(BM_RouterCachedLookup);

// Cached hijacked queries per second: parse the client's bytes, cache hit, build and
// serialize the response with the client's ID.
void BM_RouterCachedExchange(benchmark::State& st) {
  RouterFixture f;
  auto query = *serializeMessage(makeQuery(0x4242, "a.example", rrtype::kA, std::nullopt));
  constexpr int kBatch = 256;
  for (auto _ : st) {
    int done = 0;
    for (int i = 0; i < kBatch; ++i) {
      f.router->exchange(query, [&](Result<std::vector<uint8_t>> r) { done += r.has_value(); });
    }
    while (done < kBatch) uv_run(&f.loop, UV_RUN_NOWAIT);
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * kBatch);
  st.counters["upstream"] = double(f.router->stats().upstream_queries);
}
BENCHMARK(BM_RouterCachedExchange);

}  // namespace

BENCHMARK_MAIN();
