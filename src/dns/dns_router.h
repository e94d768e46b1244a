// DnsRouter: the sing-box `dns` section at run time. Picks a server per question through the
// DNS rules, answers from the cache when it can, joins identical in-flight questions into one
// upstream query, and implements Resolver for the rest of veer.
//
// Rules are compiled by the rule engine (dns_rules.h): the config loader compiles them with the
// route's rule sets and passes them in DnsRouterOptions::rules; without that, the router
// compiles `dns.rules` itself (no rule sets available then).
#pragma once

#include <uv.h>

#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/diag.h"
#include "base/json.h"
#include "dns/cache.h"
#include "dns/cache_file.h"
#include "dns/dns_rules.h"
#include "dns/fakeip.h"
#include "dns/message.h"
#include "dns/resolver.h"
#include "dns/tls_transport.h"
#include "dns/transport.h"
#include "dns/uv_handles.h"

namespace veer::dns {

struct DnsRouterOptions {
  /// The compiled `dns.rules` (config::Config::dns_rules). Null: compile them from the JSON.
  std::shared_ptr<const DnsRules> rules;
  /// experimental.cache_file with store_fakeip: the cache file the FakeIP table is kept in
  /// ("" = memory only), and its cache_id (sing-box: a separate store per id).
  std::string fakeip_store_path;
  std::string cache_id;
  /// Delay between the first new mapping and the write (a burst costs one write).
  uint32_t fakeip_save_delay_ms = 10'000;
  /// Upstream timeout per try and server, and rounds over a server's addresses.
  uint32_t upstream_timeout_ms = 2000;
  uint32_t upstream_tries = 2;
  /// `local` servers: resolv.conf path and port override (tests; "" / 0 = the system's).
  std::string local_resolv_conf;
  uint16_t local_port = 0;
  /// tls/https servers: a connection without queries is closed after this long.
  uint32_t remote_idle_timeout_ms = 30'000;
};

class DnsRouter final : public Resolver {
 public:
  struct Context {
    std::string inbound;
    std::string outbound = {};  // the outbound of the connection the lookup is for (rule `outbound`)
  };
  struct Stats {
    uint64_t upstream_queries = 0;  // queries handed to a transport
    uint64_t cache_hits = 0;
    uint64_t coalesced = 0;         // questions that joined an in-flight query
    uint64_t rejected = 0;
  };

  /// Parses and validates the `dns` section (every error goes to `diags`, with its JSON path)
  /// and creates the transports on `loop`. Fails when `diags` has errors.
  static Result<std::unique_ptr<DnsRouter>> create(uv_loop_t* loop, const json::Value& dns,
                                                   const std::string& file, DiagList& diags,
                                                   DnsRouterOptions options = {});
  /// Closes every transport and handle; their memory is released in the next loop iteration's
  /// closing phase, so run the loop once more before uv_loop_close(). Pending callbacks never
  /// run. Saves the FakeIP table when it changed.
  ~DnsRouter() override;
  DnsRouter(const DnsRouter&) = delete;
  DnsRouter& operator=(const DnsRouter&) = delete;

  // Resolver
  uint64_t lookup(const std::string& name, Strategy s, Callback cb) override;
  void cancel(uint64_t id) override;
  /// Replaces the rules with the same rules compiled against refreshed rule sets
  /// (DnsRules::withRuleSets of the current ones: same specs, so the per-rule actions hold).
  void setRules(std::shared_ptr<const DnsRules> rules) {
    if (rules && rules_ && rules->size() == rules_->size()) rules_ = std::move(rules);
  }
  uint64_t exchange(std::vector<uint8_t> query, ExchangeCallback cb) override;

  /// lookup() with the inbound known to rules. Strategy::AsIs means the configured default.
  uint64_t lookup(const std::string& name, Strategy s, const Context& ctx, Callback cb);
  /// exchange() with context; `tcp` lifts the UDP size limit to 65535.
  uint64_t exchange(std::vector<uint8_t> query, const Context& ctx, bool tcp, ExchangeCallback cb);

  /// The domain behind an address: a FakeIP mapping, else (with reverse_mapping) the name a
  /// recent answer gave it.
  std::optional<std::string> lookupDomain(const IpAddress& ip) const;
  bool isFakeIp(const IpAddress& ip) const;
  /// Writes the FakeIP table now (no-op without a store path or FakeIP server, or when nothing
  /// changed since the last write).
  Status saveFakeIp();
  /// Reload: takes over the FakeIP mappings of the router being replaced, for each FakeIP server
  /// whose ranges are unchanged (matched by tag first, then by ranges). `old` stops writing the
  /// cache file from then on, so that it cannot overwrite newer mappings when it goes away.
  /// Returns how many tables were taken over.
  size_t adoptFakeIp(DnsRouter& old);

  Stats stats() const;
  const Cache& cache() const { return cache_; }
  Strategy defaultStrategy() const { return default_strategy_; }
  /// A server by tag (tests, diagnostics), or nullptr.
  Transport* server(const std::string& tag) const;
  const std::string& finalServer() const { return final_; }

 private:
  // What the router needs of one rule's action, resolved once at creation.
  struct RuleAction {
    Transport* server = nullptr;  // route
    std::optional<ClientSubnet> client_subnet;
  };
  struct Route {
    Transport* transport = nullptr;
    bool reject = false;
    bool reject_drop = false;
    bool disable_cache = false;
    std::optional<uint32_t> rewrite_ttl;
    std::optional<ClientSubnet> client_subnet;
    std::optional<size_t> rule;  // nullopt = final
  };
  struct Op;
  class ReverseMap;

  DnsRouter(uv_loop_t* loop, DnsRouterOptions options, Cache::Options cache_options);
  bool parse(const json::Value& dns, const std::string& file, DiagList& diags);
  bool parseServer(json::ObjectReader& r, size_t index, const json::Value* legacy_fakeip,
                   DiagList& diags);
  void bindRules(const json::Value* rules_json, const std::string& file, DiagList& diags);
  bool addTransport(TransportPtr t, json::ObjectReader& r, DiagList& diags);
  // tls and https servers (tls_transport.h); `resolver` is the domain_resolver /
  // address_resolver member (null when absent).
  bool makeRemote(json::ObjectReader& r, bool https, RemoteServerOptions ro, const char* key,
                  const json::Value* tls, const json::Value* resolver, DiagList& diags);
  void bindResolvers(DiagList& diags);

  Route selectRoute(std::string_view name, uint16_t type, const Context& ctx) const;
  uint64_t newOp();
  void resolveQuestion(uint64_t op_id, size_t slot, const std::string& name, uint16_t type,
                       const Context& ctx);
  void onUpstream(const CacheKey& flight, std::optional<CacheKey> cache_key,
                  Result<std::vector<uint8_t>> reply);
  void finishQuestion(uint64_t op_id, size_t slot, const Result<Message>& result);
  void completeLookup(uint64_t op_id);
  void completeExchange(uint64_t op_id);
  void deliver(uint64_t op_id, std::unique_ptr<Op> op, Result<LookupResult> result);
  void deliver(uint64_t op_id, std::unique_ptr<Op> op, Result<std::vector<uint8_t>> result);
  void recordReverse(const Message& response);
  void noteFakeIpChange();
  uint16_t randomId();

  uv_loop_t* loop_;
  DnsRouterOptions options_;
  DeferrerPtr deferrer_;
  UvTimerPtr fakeip_save_timer_;
  std::unique_ptr<CacheFile> cache_file_;  // loaded when a FakeIP server needs it
  std::vector<TransportPtr> transports_;
  std::unordered_map<std::string, Transport*> by_tag_;
  std::vector<FakeIpTransport*> fakeip_;
  std::shared_ptr<const DnsRules> rules_;
  std::vector<RuleAction> rule_actions_;  // by rule index
  std::string final_;
  Strategy default_strategy_ = Strategy::AsIs;
  bool disable_cache_ = false;
  bool independent_cache_ = false;
  std::optional<ClientSubnet> client_subnet_;
  std::unordered_map<std::string, ClientSubnet> server_subnet_;  // legacy per-server field
  struct ResolverBinding {
    RemoteTransport* transport;
    std::string tag;             // the resolver's
    const json::Value* value;    // where it is named, for errors
    std::string path, file;
  };
  std::vector<ResolverBinding> resolver_bindings_;
  std::unique_ptr<ReverseMap> reverse_;
  Cache cache_;
  Coalescer coalescer_;
  std::unordered_map<uint64_t, std::unique_ptr<Op>> ops_;
  uint64_t next_op_ = 1;
  uint32_t rng_state_;
  Stats stats_;
};

/// Parses "1.2.3.0/24" or a bare address (which becomes /32 or /128), as sing-box's
/// client_subnet accepts.
std::optional<ClientSubnet> parseClientSubnet(std::string_view text);

}  // namespace veer::dns
