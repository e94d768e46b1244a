// DnsRouter configuration and the in-process servers (hosts, rcode, fakeip): no network.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "loop_fixture.h"

namespace veer::dns::test {
namespace {

class DnsConfigTest : public LoopTest {
 protected:
  // Returns the diagnostics of a config expected to be rejected.
  DiagList reject(const std::string& text) {
    json::Value v = parseJson(text);
    DiagList diags;
    auto r = DnsRouter::create(&loop_, v, "test.json", diags, fastOptions());
    EXPECT_FALSE(r.has_value()) << "accepted: " << text;
    EXPECT_TRUE(diags.hasErrors());
    return diags;
  }
  static bool mentions(const DiagList& d, const std::string& needle) {
    return describe(d).find(needle) != std::string::npos;
  }
};

TEST_F(DnsConfigTest, NewAndLegacyServerFormats) {
  auto* r = makeRouter(R"({
    "servers": [
      {"type": "udp", "tag": "u", "server": "127.0.0.1", "server_port": 5353},
      {"type": "tcp", "tag": "t", "server": "::1"},
      {"type": "local", "tag": "sys"},
      {"type": "hosts", "tag": "h", "predefined": {"router.lan": ["192.168.1.1", "fd00::1"]}},
      {"type": "fakeip", "tag": "f", "inet4_range": "198.18.0.0/15"},
      {"tag": "lu", "address": "udp://127.0.0.1:53"},
      {"tag": "lt", "address": "tcp://[::1]:53"},
      {"tag": "lp", "address": "9.9.9.9"},
      {"tag": "ll", "address": "local"},
      {"tag": "lr", "address": "rcode://refused"}
    ],
    "final": "u",
    "strategy": "prefer_ipv6",
    "cache_capacity": 4096,
    "independent_cache": true,
    "reverse_mapping": true,
    "client_subnet": "203.0.113.0/24"
  })");
  ASSERT_NE(r, nullptr);
  for (const char* tag : {"u", "t", "sys", "h", "f", "lu", "lt", "lp", "ll", "lr"}) {
    EXPECT_NE(r->server(tag), nullptr) << tag;
  }
  EXPECT_EQ(r->finalServer(), "u");
  EXPECT_EQ(r->defaultStrategy(), Strategy::PreferIpv6);
  EXPECT_TRUE(r->isFakeIp(*IpAddress::parse("198.19.0.1")));
}

TEST_F(DnsConfigTest, FinalDefaultsToFirstServer) {
  auto* r = makeRouter(R"({"servers": [{"tag": "a", "address": "rcode://success"},
                                       {"tag": "b", "address": "rcode://refused"}]})");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->finalServer(), "a");
}

TEST_F(DnsConfigTest, ErrorsCarryPathsAndAreAllReported) {
  auto d = reject(R"({
    "servers": [
      {"type": "udp", "tag": "u", "server": "127.0.0.1", "bogus": 1},
      {"type": "quic", "tag": "doq", "server": "1.1.1.1"},
      {"tag": "x", "address": "udp://dns.example"},
      {"type": "udp", "tag": "u", "server": "127.0.0.2"}
    ],
    "rules": [
      {"domain": "a.test", "server": "missing"},
      {"query_type": ["A", "NOPE"], "server": "u"}
    ],
    "final": "nope",
    "strategy": "fastest"
  })");
  EXPECT_TRUE(mentions(d, "unknown field \"bogus\" at dns.servers[0]")) << describe(d);
  EXPECT_TRUE(mentions(d, "\"quic\" is not implemented")) << describe(d);
  EXPECT_TRUE(mentions(d, "dns.servers[2].address")) << describe(d);
  EXPECT_TRUE(mentions(d, "duplicate DNS server tag")) << describe(d);
  EXPECT_TRUE(mentions(d, "unknown DNS server \"missing\"")) << describe(d);
  EXPECT_TRUE(mentions(d, "unknown DNS query type \"NOPE\"")) << describe(d);
  EXPECT_TRUE(mentions(d, "unknown DNS server \"nope\"")) << describe(d);
  EXPECT_TRUE(mentions(d, "unknown strategy")) << describe(d);
  EXPECT_GE(d.errorCount(), 9u);
}

TEST_F(DnsConfigTest, TlsAndHttpsServers) {
  auto* r = makeRouter(R"({
    "servers": [
      {"type": "tls", "tag": "dot", "server": "1.1.1.1"},
      {"type": "tls", "tag": "dot6", "server": "2606:4700:4700::1111", "server_port": 8853,
       "tls": {"server_name": "one.one.one.one", "min_version": "1.2"}},
      {"type": "https", "tag": "doh", "server": "1.1.1.1", "path": "/q",
       "headers": {"Host": "cloudflare-dns.com", "X-A": "b"}, "tls": {"insecure": true}},
      {"type": "tls", "tag": "named", "server": "dns.example", "domain_resolver": "h"},
      {"type": "https", "tag": "named2", "server": "dns.example",
       "domain_resolver": {"server": "dot", "strategy": "ipv4_only"}},
      {"type": "hosts", "tag": "h", "predefined": {"dns.example": "192.0.2.1"}},
      {"tag": "ldot", "address": "tls://9.9.9.9"},
      {"tag": "ldot2", "address": "tls://[::1]:8853"},
      {"tag": "ldoh", "address": "https://9.9.9.9/dns-query"},
      {"tag": "ldoh2", "address": "https://dns.example:8443/custom", "address_resolver": "h"}
    ]
  })");
  ASSERT_NE(r, nullptr);
  for (const char* tag : {"dot", "dot6", "doh", "named", "named2", "ldot", "ldot2", "ldoh",
                          "ldoh2"}) {
    auto* t = dynamic_cast<RemoteTransport*>(r->server(tag));
    ASSERT_NE(t, nullptr) << tag;
  }
  auto opts = [&](const char* tag) {
    return dynamic_cast<RemoteTransport*>(r->server(tag))->options();
  };
  EXPECT_EQ(opts("dot").port, 853);
  EXPECT_EQ(opts("dot6").port, 8853);
  EXPECT_EQ(opts("doh").port, 443);
  EXPECT_EQ(opts("doh").path, "/q");
  EXPECT_EQ(opts("doh").host_header, "cloudflare-dns.com");
  ASSERT_EQ(opts("doh").headers.size(), 1u);  // Host went into host_header
  EXPECT_EQ(tls::sniOf(*opts("dot6").tls), "one.one.one.one");
  EXPECT_EQ(tls::expectedNameOf(*opts("dot").tls), "1.1.1.1");
  EXPECT_EQ(opts("named").resolver, r->server("h"));
  EXPECT_EQ(opts("named2").resolver, r->server("dot"));
  EXPECT_TRUE(opts("named").addresses.empty());
  EXPECT_EQ(opts("ldot2").port, 8853);
  EXPECT_EQ(opts("ldot2").server, "::1");
  EXPECT_EQ(opts("ldoh").path, "/dns-query");
  EXPECT_EQ(opts("ldoh2").path, "/custom");
  EXPECT_EQ(opts("ldoh2").host_header, "dns.example:8443");
  EXPECT_EQ(opts("ldoh2").resolver, r->server("h"));
}

TEST_F(DnsConfigTest, TlsAndHttpsServerErrors) {
  auto d = reject(R"({
    "servers": [
      {"type": "tls", "tag": "a", "server": "dns.example"},
      {"tag": "b", "address": "https://dns.example/dns-query"},
      {"type": "tls", "tag": "c", "server": "x.example", "domain_resolver": "nope"},
      {"type": "tls", "tag": "d", "server": "d.example", "domain_resolver": "e"},
      {"type": "https", "tag": "e", "server": "e.example", "domain_resolver": "d"},
      {"type": "https", "tag": "f", "server": "1.1.1.1", "tls": {"alpn": ["h2"]}},
      {"type": "https", "tag": "g", "server": "1.1.1.1", "path": "dns-query"},
      {"type": "tls", "tag": "h", "server": "1.1.1.1", "detour": "proxy"},
      {"type": "tls", "tag": "i", "server": "1.1.1.1", "tls": {"utls": {"enabled": true}}},
      {"type": "tls", "tag": "j", "server": "1.1.1.1",
       "tls": {"certificate_path": "/nonexistent/ca.pem"}},
      {"tag": "k", "address": "tls://1.1.1.1:99999"}
    ]
  })");
  EXPECT_TRUE(mentions(d, "\"dns.example\" is a domain name: name the DNS server that resolves it "
                          "in \"domain_resolver\" at dns.servers[0].server"))
      << describe(d);
  EXPECT_TRUE(mentions(d, "in \"address_resolver\" at dns.servers[1].address")) << describe(d);
  EXPECT_TRUE(mentions(d, "unknown DNS server \"nope\" at dns.servers[2].domain_resolver"))
      << describe(d);
  EXPECT_TRUE(mentions(d, "(a loop)")) << describe(d);
  EXPECT_TRUE(mentions(d, "HTTP/2")) << describe(d);
  EXPECT_TRUE(mentions(d, "path must start with")) << describe(d);
  EXPECT_TRUE(mentions(d, "\"detour\" is not implemented by veer at dns.servers[7].detour"))
      << describe(d);
  EXPECT_TRUE(mentions(d, "tls \"utls\" is not implemented by veer at dns.servers[8].tls.utls"))
      << describe(d);
  EXPECT_TRUE(mentions(d, "dns.servers[9].tls")) << describe(d);
  EXPECT_TRUE(mentions(d, "bad server address \"tls://1.1.1.1:99999\"")) << describe(d);
}

TEST_F(DnsConfigTest, LegacyFakeipNeedsSection) {
  auto d = reject(R"({"servers": [{"tag": "f", "address": "fakeip"}]})");
  EXPECT_TRUE(mentions(d, "dns.fakeip")) << describe(d);
}

TEST_F(DnsConfigTest, HostsServerAnswers) {
  makeRouter(R"({"servers": [{"type": "hosts", "tag": "h",
      "predefined": {"Router.LAN": ["192.168.1.1", "fd00::1"], "v4.lan": "10.0.0.1"}}]})");
  ASSERT_NE(router_, nullptr);
  auto r = lookup("router.lan", Strategy::PreferIpv6);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(strings(r->addresses), (std::vector<std::string>{"fd00::1", "192.168.1.1"}));
  auto v4 = lookup("v4.lan", Strategy::AsIs);
  ASSERT_TRUE(v4.has_value()) << v4.error().message();
  EXPECT_EQ(strings(v4->addresses), (std::vector<std::string>{"10.0.0.1"}));
  auto nx = lookup("absent.lan");
  ASSERT_FALSE(nx.has_value());
  EXPECT_NE(nx.error().message().find("NXDOMAIN"), std::string::npos);
}

TEST_F(DnsConfigTest, HostsFiles) {
  std::string path = ::testing::TempDir() + "veer_hosts_" + std::to_string(::getpid());
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("# comment\n127.0.0.1 localhost\n10.0.0.5  nas.lan  NAS  # trailing\n"
               "fe80::1%eth0 zoned\nfd00::5 nas.lan\n",
               f);
    std::fclose(f);
  }
  makeRouter(R"({"servers": [{"type": "hosts", "tag": "h", "path": ")" + path + R"("}]})");
  ASSERT_NE(router_, nullptr);
  auto r = lookup("nas.lan", Strategy::PreferIpv4);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(strings(r->addresses), (std::vector<std::string>{"10.0.0.5", "fd00::5"}));
  auto alias = lookup("NAS", Strategy::PreferIpv4);  // aliases count, case-insensitively
  ASSERT_TRUE(alias.has_value());
  EXPECT_EQ(strings(alias->addresses), (std::vector<std::string>{"10.0.0.5"}));
  EXPECT_FALSE(lookup("zoned").has_value());  // zone ids are skipped, not misread
  std::remove(path.c_str());
  auto d = reject(R"({"servers": [{"type": "hosts", "tag": "h", "path": "/nonexistent/hosts"}]})");
  EXPECT_TRUE(mentions(d, "cannot read hosts file")) << describe(d);
}

TEST_F(DnsConfigTest, RejectRuleAndRcodeServer) {
  makeRouter(R"({"servers": [{"type": "hosts", "tag": "h", "predefined": {"a.test": "1.1.1.1"}},
                             {"tag": "r", "address": "rcode://name_error"}],
                 "rules": [{"domain_keyword": "ads", "action": "reject"},
                           {"domain": "silent.test", "action": "reject", "method": "drop"},
                           {"domain_suffix": ".blocked", "server": "r"}]})");
  ASSERT_NE(router_, nullptr);
  auto q = makeQuery(0x4242, "tracker.ads.example", rrtype::kA, std::nullopt);
  auto resp = exchange(q);
  ASSERT_TRUE(resp.has_value()) << resp.error().message();
  EXPECT_EQ(resp->id, 0x4242);
  EXPECT_EQ(resp->rcodeValue(), Rcode::Refused);
  auto nx = exchange(makeQuery(7, "x.blocked", rrtype::kA, std::nullopt));
  ASSERT_TRUE(nx.has_value());
  EXPECT_EQ(nx->rcodeValue(), Rcode::NxDomain);
  // ".blocked" matches subdomains only: "blocked" itself goes to the final server.
  auto final_nx = exchange(makeQuery(8, "blocked", rrtype::kA, std::nullopt));
  ASSERT_TRUE(final_nx.has_value());
  EXPECT_EQ(final_nx->rcodeValue(), Rcode::NxDomain);  // hosts: absent name
  // Drop: no response at all for a hijacked query, an error for a lookup.
  std::optional<Result<std::vector<uint8_t>>> dropped;
  router_->exchange(*serializeMessage(makeQuery(9, "silent.test", rrtype::kA, std::nullopt)),
                    [&](Result<std::vector<uint8_t>> r) { dropped = std::move(r); });
  ASSERT_TRUE(runUntil(&loop_, [&] { return dropped.has_value(); }));
  EXPECT_FALSE(dropped->has_value());
  EXPECT_FALSE(lookup("silent.test", Strategy::Ipv4Only).has_value());
  EXPECT_EQ(router_->stats().rejected, 3u);
}

TEST_F(DnsConfigTest, InboundRule) {
  makeRouter(R"({"servers": [{"type": "hosts", "tag": "one", "predefined": {"x.test": "10.0.0.1"}},
                             {"type": "hosts", "tag": "two", "predefined": {"x.test": "10.0.0.2"}}],
                 "rules": [{"inbound": "dns-in", "server": "two"}], "final": "one"})");
  ASSERT_NE(router_, nullptr);
  auto a = lookup("x.test", Strategy::Ipv4Only);
  auto b = lookup("x.test", Strategy::Ipv4Only, DnsRouter::Context{"dns-in"});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->addresses[0].toString(), "10.0.0.1");
  EXPECT_EQ(b->addresses[0].toString(), "10.0.0.2");
}

TEST_F(DnsConfigTest, IpLiteralResolvesToItselfAsynchronously) {
  makeRouter(R"({"servers": [{"tag": "r", "address": "rcode://refused"}]})");
  ASSERT_NE(router_, nullptr);
  bool called = false;
  router_->lookup("192.0.2.7", Strategy::AsIs, [&](Result<LookupResult> r) {
    called = true;
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->addresses[0].toString(), "192.0.2.7");
  });
  EXPECT_FALSE(called);  // never synchronously
  EXPECT_TRUE(runUntil(&loop_, [&] { return called; }));
  auto empty = lookup("");
  ASSERT_FALSE(empty.has_value());
  EXPECT_NE(empty.error().message().find("empty"), std::string::npos);
  auto bad = lookup("a..b");
  EXPECT_FALSE(bad.has_value());
}

TEST_F(DnsConfigTest, CancelledLookupNeverCallsBack) {
  makeRouter(R"({"servers": [{"type": "hosts", "tag": "h", "predefined": {"a.test": "1.1.1.1"}}]})");
  ASSERT_NE(router_, nullptr);
  int calls = 0;
  uint64_t id = router_->lookup("a.test", Strategy::AsIs, [&](Result<LookupResult>) { ++calls; });
  router_->cancel(id);
  bool other = false;
  router_->lookup("a.test", Strategy::AsIs, [&](Result<LookupResult>) { other = true; });
  EXPECT_TRUE(runUntil(&loop_, [&] { return other; }));
  runFor(&loop_, 20);
  EXPECT_EQ(calls, 0);
}

TEST_F(DnsConfigTest, DestroyingRouterWithPendingWorkIsClean) {
  makeRouter(R"({"servers": [{"type": "hosts", "tag": "h", "predefined": {"a.test": "1.1.1.1"}}]})");
  ASSERT_NE(router_, nullptr);
  int calls = 0;
  for (int i = 0; i < 10; ++i) {
    router_->lookup("a.test", Strategy::AsIs, [&](Result<LookupResult>) { ++calls; });
  }
  router_.reset();  // TearDown checks that the loop closes
  runFor(&loop_, 20);
  EXPECT_EQ(calls, 0);
}

TEST_F(DnsConfigTest, FakeIpAllocationReverseAndPersistence) {
  std::string path = ::testing::TempDir() + "veer_fakeip_router_" + std::to_string(::getpid());
  std::remove(path.c_str());
  const char* cfg = R"({
    "servers": [{"type": "hosts", "tag": "h", "predefined": {"real.test": "10.1.1.1"}},
                {"type": "fakeip", "tag": "fake", "inet4_range": "198.18.0.0/15",
                 "inet6_range": "fc00::/18"}],
    "rules": [{"domain_suffix": "proxy.test", "server": "fake"}],
    "final": "h"})";
  auto opts = fastOptions();
  opts.fakeip_store_path = path;
  makeRouter(cfg, opts);
  ASSERT_NE(router_, nullptr);
  auto a = lookup("www.proxy.test", Strategy::PreferIpv4);
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_EQ(strings(a->addresses), (std::vector<std::string>{"198.18.0.2", "fc00::2"}));
  EXPECT_EQ(a->ttl, 1u);
  auto b = lookup("api.proxy.test", Strategy::Ipv4Only);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->addresses[0].toString(), "198.18.0.3");
  auto real = lookup("real.test", Strategy::Ipv4Only);
  ASSERT_TRUE(real.has_value());
  EXPECT_EQ(real->addresses[0].toString(), "10.1.1.1");
  EXPECT_EQ(router_->lookupDomain(*IpAddress::parse("198.18.0.3")), "api.proxy.test");
  EXPECT_EQ(router_->lookupDomain(*IpAddress::parse("fc00::2")), "www.proxy.test");
  EXPECT_FALSE(router_->lookupDomain(*IpAddress::parse("10.1.1.1")));  // no reverse_mapping
  // Hijacked query: the same mapping, the client's ID.
  auto resp = exchange(makeQuery(0x1111, "www.proxy.test", rrtype::kA, std::nullopt));
  ASSERT_TRUE(resp.has_value());
  EXPECT_EQ(resp->id, 0x1111);
  EXPECT_EQ(resp->answers.at(0).address()->toString(), "198.18.0.2");

  // Destroying the router saves the table; a new router loads it.
  router_.reset();
  runFor(&loop_, 10);
  makeRouter(cfg, opts);
  ASSERT_NE(router_, nullptr);
  EXPECT_EQ(router_->lookupDomain(*IpAddress::parse("198.18.0.3")), "api.proxy.test");
  auto c = lookup("new.proxy.test", Strategy::Ipv4Only);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->addresses[0].toString(), "198.18.0.4");  // continues after the saved ones
  std::remove(path.c_str());
}

}  // namespace
}  // namespace veer::dns::test
