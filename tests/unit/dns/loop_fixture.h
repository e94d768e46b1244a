// A gtest fixture owning a libuv loop: every test ends with all handles closed and
// uv_loop_close() == 0 (STYLE.md §6), and helpers that run a lookup/exchange to completion.
#pragma once

#include <unistd.h>

#include <memory>

#include "dns/dns_router.h"
#include "dns_test_util.h"

namespace veer::dns::test {

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }

  void TearDown() override {
    router_.reset();
    for (auto& s : servers_) s->close();
    // Bounded: at most 500 turns of 10 ms. A timer of our own would keep the loop alive, so
    // this polls with NOWAIT instead of using runUntil().
    for (int i = 0; i < 500 && uv_loop_alive(&loop_); ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (uv_loop_alive(&loop_)) usleep(10'000);
    }
    EXPECT_FALSE(uv_loop_alive(&loop_)) << "handles still open at the end of the test";
    servers_.clear();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  DnsRouterOptions fastOptions() {
    DnsRouterOptions o;
    o.upstream_timeout_ms = 250;
    o.upstream_tries = 1;
    return o;
  }

  /// Builds router_ from JSON text; fails the test on configuration errors.
  DnsRouter* makeRouter(const std::string& json_text, DnsRouterOptions o) {
    json::Value v = parseJson(json_text);
    DiagList diags;
    auto r = DnsRouter::create(&loop_, v, "test.json", diags, std::move(o));
    EXPECT_TRUE(r.has_value()) << describe(diags);
    if (!r) return nullptr;
    router_ = std::move(*r);
    return router_.get();
  }
  DnsRouter* makeRouter(const std::string& json_text) { return makeRouter(json_text, fastOptions()); }

  Result<LookupResult> lookup(const std::string& name, Strategy s = Strategy::AsIs,
                              const DnsRouter::Context& ctx = {}) {
    std::optional<Result<LookupResult>> out;
    router_->lookup(name, s, ctx, [&](Result<LookupResult> r) { out = std::move(r); });
    EXPECT_TRUE(runUntil(&loop_, [&] { return out.has_value(); })) << "lookup never completed";
    if (!out) return unexpected("no result");
    return std::move(*out);
  }

  Result<Message> exchange(const Message& query, bool tcp = false) {
    std::optional<Result<std::vector<uint8_t>>> out;
    router_->exchange(*serializeMessage(query), {}, tcp,
                      [&](Result<std::vector<uint8_t>> r) { out = std::move(r); });
    EXPECT_TRUE(runUntil(&loop_, [&] { return out.has_value(); })) << "exchange never completed";
    if (!out) return unexpected("no result");
    if (!*out) return unexpected(out->error());
    if (out->value().size() > (tcp ? kMaxMessageSize : maxUdpResponseSize(query))) {
      ADD_FAILURE() << "response of " << out->value().size() << " bytes exceeds the limit";
    }
    return parseMessage(out->value());
  }

  CountingServer* addServer(CountingServer::Answer a) {
    servers_.push_back(std::make_unique<CountingServer>(&loop_, std::move(a)));
    return servers_.back().get();
  }

  static std::vector<std::string> strings(const std::vector<IpAddress>& v) {
    std::vector<std::string> out;
    for (const auto& ip : v) out.push_back(ip.toString());
    return out;
  }

  uv_loop_t loop_{};
  std::unique_ptr<DnsRouter> router_;
  std::vector<std::unique_ptr<CountingServer>> servers_;
};

/// Answers A with 192.0.2.<n> and AAAA with 2001:db8::<n>, TTL 60.
inline CountingServer::Answer fixedAnswer(int n, uint32_t ttl = 60) {
  return [n, ttl](const Message& q) -> std::optional<Message> {
    std::string s = std::to_string(n);
    return makeAddressResponse(
        q, {*IpAddress::parse("192.0.2." + s), *IpAddress::parse("2001:db8::" + s)}, ttl);
  };
}

}  // namespace veer::dns::test
