#include "app/runtime.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>

#include "base/log.h"
#include "loop/defer.h"
#include "loop/uv_util.h"
#include "outbound/outbound.h"
#include "outbound/shadowsocks.h"
#include "route/dns_glue.h"

namespace veer::app {

Runtime::Runtime(std::string config_path) : config_path_(std::move(config_path)) {
  uv_loop_init(&loop_);
}

Runtime::~Runtime() {
  // Run the loop until every handle has closed, then require a clean close.
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) != 0) LOG_WARN("loop closed with handles still open");
}

static conn::DomainStrategy strategyOf(const std::string& s) {
  if (s == "prefer_ipv4") return conn::DomainStrategy::PreferIpv4;
  if (s == "prefer_ipv6") return conn::DomainStrategy::PreferIpv6;
  if (s == "ipv4_only") return conn::DomainStrategy::Ipv4Only;
  if (s == "ipv6_only") return conn::DomainStrategy::Ipv6Only;
  return conn::DomainStrategy::AsIs;
}

namespace {

// With a `dns` section: the resolver each outbound dials with, so that DNS rules with
// `outbound` see the outbound a lookup is made for (sing-box: `"outbound": "any"` sends the
// proxy servers' own names to another server). The set itself is the resolver of lookups made
// for no outbound (the resolve action).
class OutboundDnsResolvers final : public conn::HostResolver {
 public:
  explicit OutboundDnsResolvers(std::shared_ptr<dns::DnsRouter> dns, std::string outbound = "")
      : dns_(std::move(dns)), outbound_(std::move(outbound)) {}
  conn::HostResolver* forOutbound(const std::string& tag) {
    auto& r = per_outbound_[tag];
    if (!r) r = std::make_unique<OutboundDnsResolvers>(dns_, tag);
    return r.get();
  }
  uint64_t resolve(const std::string& host, conn::DomainStrategy strategy, Callback cb) override {
    dns::Strategy s = dns::Strategy::AsIs;
    switch (strategy) {
      case conn::DomainStrategy::AsIs: s = dns::Strategy::AsIs; break;
      case conn::DomainStrategy::PreferIpv4: s = dns::Strategy::PreferIpv4; break;
      case conn::DomainStrategy::PreferIpv6: s = dns::Strategy::PreferIpv6; break;
      case conn::DomainStrategy::Ipv4Only: s = dns::Strategy::Ipv4Only; break;
      case conn::DomainStrategy::Ipv6Only: s = dns::Strategy::Ipv6Only; break;
    }
    dns::DnsRouter::Context ctx;
    ctx.outbound = outbound_;
    return dns_->lookup(host, s, ctx, [cb = std::move(cb)](Result<dns::LookupResult> r) {
      if (!r) {
        cb(unexpected(r.error()));
        return;
      }
      cb(std::move(r->addresses));
    });
  }
  void cancel(uint64_t id) override { dns_->cancel(id); }

 private:
  std::shared_ptr<dns::DnsRouter> dns_;
  std::string outbound_;
  std::map<std::string, std::unique_ptr<OutboundDnsResolvers>> per_outbound_;
};

}  // namespace

std::shared_ptr<route::RouteState> Runtime::buildState(const config::Config& cfg, uv_loop_t* loop,
                                                       conn::HostResolver* resolver,
                                                       std::shared_ptr<dns::DnsRouter> dns) {
  auto st = std::make_shared<route::RouteState>();
  OutboundDnsResolvers* dns_resolvers = nullptr;
  if (dns) {
    // With a `dns` section, every name veer resolves goes through it.
    st->dns = dns;
    auto set = std::make_unique<OutboundDnsResolvers>(dns);
    dns_resolvers = set.get();
    st->owned_resolver = std::move(set);
    resolver = st->owned_resolver.get();
  }
  // The resolver an outbound dials with (its tag is the `outbound` of its DNS lookups).
  auto resolverFor = [&](const std::string& tag) -> conn::HostResolver* {
    return dns_resolvers ? dns_resolvers->forOutbound(tag) : resolver;
  };
  // Outbounds may name others (group members, detours): build each after what it names
  // (config::load has rejected unknown tags and cycles), sharing ownership with the state.
  std::map<std::string, outbound::SharedOutbound> built;
  std::function<outbound::SharedOutbound(const std::string&)> get;
  auto dialOf = [](const config::OutboundOptions& o) {
    outbound::DirectOptions d;
    d.dial.connect_timeout_ms = o.connect_timeout_ms;
    d.dial.fallback_delay_ms = o.fallback_delay_ms;
    d.dial.routing_mark = o.routing_mark;
    d.dial.bind_interface = o.bind_interface;
    if (auto ip = IpAddress::parse(o.inet4_bind_address)) d.dial.inet4_bind_address = *ip;
    if (auto ip = IpAddress::parse(o.inet6_bind_address)) d.dial.inet6_bind_address = *ip;
    d.dial.tcp_fast_open = o.tcp_fast_open;
    d.domain_strategy = strategyOf(o.domain_strategy);
    return d;
  };
  get = [&](const std::string& tag) -> outbound::SharedOutbound {
    auto it = built.find(tag);
    if (it != built.end()) return it->second;
    const config::OutboundOptions* op = cfg.findOutbound(tag);
    if (op == nullptr) return nullptr;
    const auto& o = *op;
    built[tag] = nullptr;  // guards against cycles (rejected by the config check)
    outbound::SharedOutbound ob;
    auto via = [&]() -> outbound::SharedOutbound {
      if (!o.detour.empty()) {
        if (auto d = get(o.detour)) return d;
      }
      return outbound::makeServerDialer(loop, resolverFor(o.tag), dialOf(o));
    };
    auto membersOf = [&] {
      std::vector<outbound::SharedOutbound> ms;
      for (const auto& m : o.members) {
        if (auto x = get(m)) ms.push_back(std::move(x));
      }
      return ms;
    };
    if (o.type == "direct") {
      ob = outbound::makeDirect(o.tag, loop, resolverFor(o.tag), dialOf(o));
    } else if (o.type == "block") {
      ob = outbound::makeBlock(o.tag, loop);
    } else if (o.type == "dns") {
      ob = outbound::makeDnsOutbound(o.tag, loop);
    } else if (o.type == "socks") {
      outbound::SocksOptions so;
      so.server = o.server;
      so.server_port = o.server_port;
      so.version = o.version == "5" ? 5 : 4;
      so.v4a = o.version == "4a";
      so.username = o.username;
      so.password = o.password;
      so.tcp = o.network.empty() || o.network == "tcp";
      so.udp = o.network.empty() || o.network == "udp";
      ob = outbound::makeSocks(o.tag, loop, via(), so);
    } else if (o.type == "shadowsocks") {
      outbound::ShadowsocksOptions so;
      so.server = o.server;
      so.server_port = o.server_port;
      so.method = o.method;
      so.password = o.password;
      so.tcp = o.network.empty() || o.network == "tcp";
      so.udp = o.network.empty() || o.network == "udp";
      ob = outbound::makeShadowsocks(o.tag, loop, via(), so);
    } else if (o.type == "http") {
      outbound::HttpOptions ho;
      ho.server = o.server;
      ho.server_port = o.server_port;
      ho.username = o.username;
      ho.password = o.password;
      ho.headers = o.headers;
      ho.tls = o.tls_config;
      ob = outbound::makeHttp(o.tag, loop, via(), ho);
    } else if (o.type == "trojan") {
      outbound::TrojanOptions to;
      to.server = o.server;
      to.server_port = o.server_port;
      to.password = o.password;
      to.tcp = o.network.empty() || o.network == "tcp";
      to.udp = o.network.empty() || o.network == "udp";
      to.tls = o.tls_config;
      ob = outbound::makeTrojan(o.tag, loop, via(), to);
    } else if (o.type == "selector") {
      auto ms = membersOf();
      if (!ms.empty()) {
        auto sel = outbound::makeSelector(o.tag, std::move(ms), o.default_member);
        st->selectors[o.tag] = sel.get();
        st->interrupt_on_switch[o.tag] = o.interrupt_exist_connections;
        ob = std::move(sel);
      }
    } else if (o.type == "urltest") {
      auto ms = membersOf();
      outbound::UrlTestOptions uo;
      uo.url = o.url;
      uo.interval_ms = o.interval_ms;
      uo.tolerance_ms = o.tolerance_ms;
      if (!ms.empty()) {
        auto ut = outbound::makeUrlTest(o.tag, loop, std::move(ms), uo);
        st->urltests[o.tag] = ut.get();
        ob = std::move(ut);
      }
    }
    built[tag] = ob;
    return ob;
  };
  for (const auto& o : cfg.outbounds) {
    if (auto ob = get(o.tag)) st->outbounds[o.tag] = outbound::makeShared(std::move(ob));
  }
  st->final_outbound = cfg.finalOutbound();
  if (!st->find(st->final_outbound)) {
    // No outbounds at all: sing-box's implicit direct.
    st->outbounds[st->final_outbound] =
        outbound::makeDirect(st->final_outbound, loop, resolver, outbound::DirectOptions{});
  }
  // VEER_SPLICE=0 turns splice(2) off (for comparisons, or kernels where it misbehaves).
  const char* sp = std::getenv("VEER_SPLICE");
  st->relay.splice = !(sp != nullptr && std::string(sp) == "0");
  st->engine = cfg.engine;
  st->resolve_on_demand = cfg.route.resolve_on_demand;
  st->resolver = resolver;
  return st;
}

bool Runtime::apply(std::unique_ptr<config::Config> cfg) {
  log::setLevel(cfg->log.level);
  log::setDisabled(cfg->log.disabled);
  log::setTimestamp(cfg->log.timestamp);
  if (!cfg->log.output.empty() && cfg->log.output != log_output_) {
    // Logs are written to stderr; point stderr at the file (appending, as sing-box does).
    FILE* f = std::freopen(cfg->log.output.c_str(), "a", stderr);
    if (f == nullptr) {
      std::fprintf(stdout, "veer: cannot open log output %s\n", cfg->log.output.c_str());
      return false;
    }
    log_output_ = cfg->log.output;
  }
  std::shared_ptr<dns::DnsRouter> dns;
  if (cfg->has_dns) {
    DiagList diags;
    dns::DnsRouterOptions o;
    o.rules = cfg->dns_rules;
    if (cfg->cache_file.enabled && cfg->cache_file.store_fakeip) {
      o.fakeip_store_path = cfg->cache_file.path;
      o.cache_id = cfg->cache_file.cache_id;
    }
    auto d = dns::DnsRouter::create(&loop_, cfg->dns, cfg->file, diags, std::move(o));
    if (!d) {
      LOG_ERROR("dns: %s", config::formatDiags(diags).c_str());
      return false;
    }
    dns = std::shared_ptr<dns::DnsRouter>(std::move(*d));
    // Reload: FakeIP mappings stay when the ranges did not change.
    const auto& old_state = router_->state();
    if (old_state && old_state->dns) {
      if (size_t n = dns->adoptFakeIp(*old_state->dns)) {
        LOG_INFO("dns: kept %zu FakeIP table(s) across the reload", n);
      }
    }
  }
  auto state = rootForRuleSets(*cfg, buildState(*cfg, &loop_, resolver_.get(), dns));
  // Inbounds are rebuilt: the old listeners close first (libuv closes the fd at once), so the
  // new ones can bind the same ports. Connections already handed to the router keep running
  // on the old generation.
  for (auto& in : inbounds_) {
    in->stop();
    retired_.push_back(std::move(in));
  }
  inbounds_.clear();
  if (const auto& old = router_->state()) {
    // A reload keeps what was chosen at run time where the selector and member still exist.
    for (auto& [tag, sel] : state->selectors) {
      auto it = old->selectors.find(tag);
      if (it != old->selectors.end()) (void)sel->select(it->second->selected());
    }
  }
  router_->setState(state);
  std::vector<inbound::InboundPtr> fresh;
  for (const auto& ic : cfg->inbounds) {
    std::string tag = ic.tag.empty() ? ic.type : ic.tag;
    inbound::ListenOptions lo;
    lo.listen = ic.listen.empty() ? "127.0.0.1" : ic.listen;
    lo.listen_port = ic.listen_port;
    lo.tcp_fast_open = ic.tcp_fast_open;
    lo.reuse_addr = ic.reuse_addr;
    lo.udp_timeout_ms = ic.udp_timeout_ms;
    lo.sniff = ic.sniff;
    lo.sniff_override_destination = ic.sniff_override_destination;
    lo.sniff_timeout_ms = ic.sniff_timeout_ms;
    inbound::InboundPtr in;
    if (ic.type == "mixed" || ic.type == "socks" || ic.type == "http") {
      inbound::MixedOptions mo;
      mo.listen = lo;
      for (const auto& u : ic.users) mo.users.push_back({u.username, u.password});
      in = inbound::makeMixed(tag, &loop_, router_.get(), mo);
    } else if (ic.type == "direct") {
      inbound::DirectInboundOptions dopt;
      dopt.listen = lo;
      dopt.tcp = ic.network.empty() || ic.network == "tcp";
      dopt.udp = ic.network.empty() || ic.network == "udp";
      dopt.override_address = ic.override_address;
      dopt.override_port = ic.override_port;
      in = inbound::makeDirectInbound(tag, &loop_, router_.get(), dopt);
    } else if (ic.type == "redirect") {
      inbound::RedirectOptions ropt;
      ropt.listen = lo;
      in = inbound::makeRedirect(tag, &loop_, router_.get(), ropt);
    } else if (ic.type == "tproxy") {
      inbound::TproxyOptions topt;
      topt.listen = lo;
      topt.tcp = ic.network.empty() || ic.network == "tcp";
      topt.udp = ic.network.empty() || ic.network == "udp";
      in = inbound::makeTproxy(tag, &loop_, router_.get(), topt);
    }
    if (!in) continue;
    Status st = in->start();
    if (!st) {
      LOG_ERROR("%s", st.error().message().c_str());
      in->stop();
      retired_.push_back(std::move(in));
      for (auto& f : fresh) {
        f->stop();
        retired_.push_back(std::move(f));
      }
      return false;
    }
    fresh.push_back(std::move(in));
  }
  inbounds_ = std::move(fresh);
  startControlApi(*cfg);
  config_ = std::move(cfg);
  startRemoteRuleSets();
  // Retired inbounds are freed once libuv has run their close callbacks.
  loop::defer(&loop_, [this] { retired_.clear(); });
  return true;
}

void Runtime::startControlApi(const config::Config& cfg) {
  if (!cfg.clash_api.enabled) {
    api_.reset();
    api_key_.clear();
    return;
  }
  std::string key = cfg.clash_api.external_controller + "\n" + cfg.clash_api.secret;
  if (api_ && key == api_key_) return;
  api_.reset();
  auto api = ClashApi::start(&loop_, cfg.clash_api.external_controller, cfg.clash_api.secret,
                             router_.get(), [this] { return config_.get(); });
  if (!api) {
    // The proxy itself works without it: say so loudly and go on.
    LOG_ERROR("%s", api.error().message().c_str());
    return;
  }
  api_ = std::move(*api);
  api_key_ = key;
  LOG_INFO("control API on %s%s", api_->address().c_str(),
           cfg.clash_api.secret.empty() ? " (no secret)" : "");
}

void Runtime::reload() {
  LOG_INFO("SIGHUP: reloading %s", config_path_.c_str());
  DiagList diags;
  auto cfg = config::load(config_path_, diags);
  if (!cfg) {
    std::string text = config::formatDiags(diags);
    LOG_ERROR("reload failed, keeping the running configuration:\n%s", text.c_str());
    return;
  }
  if (!diags.empty()) LOG_WARN("%s", config::formatDiags(diags).c_str());
  std::unique_ptr<config::Config> old = std::move(config_);
  if (!apply(std::move(cfg))) {
    LOG_ERROR("reload failed to start the new inbounds; restoring the running configuration");
    if (old && !apply(std::move(old))) {
      LOG_ERROR("could not restore the previous inbounds either; stopping");
      stop();
    }
    return;
  }
  LOG_INFO("reloaded %s", config_path_.c_str());
}

void Runtime::stop() {
  if (stopping_) return;
  stopping_ = true;
  LOG_INFO("stopping: closing listeners and %zu connection(s)", router_->tracker().size());
  for (auto& in : inbounds_) in->stop();
  api_.reset();
  router_->closeAll("shutdown");
  remote_rule_sets_.reset();
  loop::closeHandle(&sigint_, nullptr);
  loop::closeHandle(&sigterm_, nullptr);
  loop::closeHandle(&sighup_, nullptr);
  loop::closeHandle(&sigusr1_, nullptr);
}

// A router proxy holds two sockets per TCP connection and one per UDP session: the usual soft
// limit of 1024 descriptors runs out under ordinary load. Raise it to the hard limit.
static void raiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rlim_t old = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
    LOG_DEBUG("open file limit raised from %llu to %llu", static_cast<unsigned long long>(old),
              static_cast<unsigned long long>(rl.rlim_cur));
  }
}

int Runtime::run() {
  raiseFdLimit();
  DiagList diags;
  auto cfg = config::load(config_path_, diags);
  if (!cfg) {
    std::fputs(config::formatDiags(diags).c_str(), stderr);
    return 1;
  }
  if (!diags.empty()) std::fputs(config::formatDiags(diags).c_str(), stderr);
  resolver_ = std::make_unique<conn::SystemResolver>(&loop_);
  router_ = std::make_unique<route::Router>(&loop_);
  bootRemoteRuleSets(*cfg);
  if (!apply(std::move(cfg))) {
    for (auto& in : inbounds_) in->stop();
    return 1;
  }
  uv_signal_init(&loop_, &sigint_);
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sighup_);
  sigint_.data = sigterm_.data = sighup_.data = this;
  auto on_stop = [](uv_signal_t* s, int signum) {
    LOG_INFO("received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    static_cast<Runtime*>(s->data)->stop();
  };
  uv_signal_start(&sigint_, on_stop, SIGINT);
  uv_signal_start(&sigterm_, on_stop, SIGTERM);
  uv_signal_start(&sighup_, [](uv_signal_t* s, int) { static_cast<Runtime*>(s->data)->reload(); },
                  SIGHUP);
  uv_signal_init(&loop_, &sigusr1_);
  sigusr1_.data = this;
  uv_signal_start(&sigusr1_, [](uv_signal_t* s, int) {
    static_cast<Runtime*>(s->data)->router_->logConnections();
  }, SIGUSR1);
  LOG_INFO("veer started (%zu inbound(s), %zu outbound(s))", inbounds_.size(),
           router_->state()->outbounds.size());
  uv_run(&loop_, UV_RUN_DEFAULT);
  // Connections are closed; drop the router and outbounds, then let their handles close.
  inbounds_.clear();
  retired_.clear();
  remote_rule_sets_.reset();
  rule_set_root_.reset();
  router_.reset();
  resolver_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  LOG_INFO("veer stopped");
  return 0;
}

}  // namespace veer::app
