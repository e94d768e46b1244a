// The runtime's side of remote rule sets (route/remote_rule_set.h): the first downloads before
// the inbounds start, the refresher of the running generation, and swapping a refreshed rule
// set in (recompile the rules, derive a RouteState that shares the outbounds).
#include <cstdlib>

#include "app/runtime.h"
#include "base/log.h"

namespace veer::app {

namespace {

// https:// rule-set URLs: veer's TLS client, verified against the system CA store.
outbound::TlsStep tlsStep() { return outbound::systemTlsStep(); }

bool hasRemote(const config::Config& cfg) {
  for (const auto& d : cfg.route.rule_set_defs) {
    if (d.type == "remote") return true;
  }
  return false;
}

}  // namespace

std::unique_ptr<route::RemoteRuleSets> Runtime::makeRemoteRuleSets(const config::Config& cfg) {
  std::vector<route::RemoteRuleSetOptions> sets;
  for (const auto& d : cfg.route.rule_set_defs) {
    if (d.type != "remote") continue;
    route::RemoteRuleSetOptions o;
    o.tag = d.tag;
    o.url = d.url;
    o.format = d.format;
    // sing-box: the default outbound (route.final, else the first outbound).
    o.download_detour = d.download_detour.empty() ? cfg.finalOutbound() : d.download_detour;
    o.update_interval_ms = d.update_interval_ms;
    o.cache_path = d.cache_path;
    o.cached = d.cached;
    if (boot_config_ != nullptr) o.timeout_ms = 30000;  // the inbounds wait for these
    sets.push_back(std::move(o));
  }
  if (sets.empty()) return nullptr;
  auto outbound_for = [this](const std::string& tag)
      -> std::pair<std::shared_ptr<const void>, outbound::Outbound*> {
    std::shared_ptr<route::RouteState> st = boot_state_ ? boot_state_ : router_->state();
    if (!st) return {nullptr, nullptr};
    return {st, st->find(tag)};
  };
  auto apply = [this](const std::string& tag, std::vector<rules::RuleSpec> r) {
    return swapRuleSet(tag, std::move(r));
  };
  return std::make_unique<route::RemoteRuleSets>(&loop_, std::move(sets), outbound_for, apply,
                                                 tlsStep());
}

// Sets without a usable cached copy are downloaded before the inbounds start (sing-box does
// the same, but refuses to start when a download fails; veer starts without the set, logs it,
// and keeps retrying). Each download is bounded by 30 s here.
void Runtime::bootRemoteRuleSets(config::Config& cfg) {
  size_t missing = 0;
  for (const auto& d : cfg.route.rule_set_defs) {
    if (d.type == "remote" && !d.cached) ++missing;
  }
  if (missing == 0) return;
  std::shared_ptr<dns::DnsRouter> dns;
  if (cfg.has_dns) {
    // The DNS section as apply() builds it, without the FakeIP cache file (this router only
    // resolves the download servers' names, and is gone before the real one starts).
    DiagList diags;
    dns::DnsRouterOptions o;
    o.rules = cfg.dns_rules;
    auto d = dns::DnsRouter::create(&loop_, cfg.dns, cfg.file, diags, std::move(o));
    if (d) dns = std::shared_ptr<dns::DnsRouter>(std::move(*d));
  }
  boot_config_ = &cfg;
  boot_state_ = buildState(cfg, &loop_, resolver_.get(), dns);
  auto rs = makeRemoteRuleSets(cfg);
  LOG_INFO("downloading %zu remote rule set(s) that have no cached copy before starting",
           missing);
  bool done = false;
  rs->start(0, [&done] { done = true; });
  while (!done) uv_run(&loop_, UV_RUN_ONCE);
  rs.reset();
  boot_state_.reset();
  boot_config_ = nullptr;
  boot_downloaded_ = true;
}

std::shared_ptr<route::RouteState> Runtime::rootForRuleSets(
    const config::Config& cfg, std::shared_ptr<route::RouteState> state) {
  if (!hasRemote(cfg)) {
    rule_set_root_.reset();
    return state;
  }
  // The root owns the outbounds; the states the router uses derive from it, each with its
  // own engine, so that a refreshed rule set swaps in without rebuilding outbounds.
  rule_set_root_ = std::move(state);
  auto engine = std::move(rule_set_root_->engine);
  rule_set_root_->engine = nullptr;
  return route::RemoteRuleSets::deriveState(rule_set_root_, std::move(engine));
}

void Runtime::startRemoteRuleSets() {
  remote_rule_sets_.reset();
  if (config_) remote_rule_sets_ = makeRemoteRuleSets(*config_);
  // A set whose first download just failed is retried after the usual first backoff.
  if (remote_rule_sets_) remote_rule_sets_->start(boot_downloaded_ ? 30000 : 0);
  boot_downloaded_ = false;
}

Status Runtime::swapRuleSet(const std::string& tag, std::vector<rules::RuleSpec> rules) {
  config::Config* cfg = boot_config_ != nullptr ? boot_config_ : config_.get();
  if (cfg == nullptr) return unexpected("no configuration");
  auto it = cfg->route.rule_sets.find(tag);
  if (it == cfg->route.rule_sets.end()) return unexpected("rule set \"" + tag + "\" is not in the config");
  std::vector<rules::RuleSpec> old = std::move(it->second);
  it->second = std::move(rules);
  DiagList diags;
  rules::GeoSources sources{cfg->geosite.get(), cfg->geoip.get()};
  auto engine = rules::RuleEngine::compile(cfg->route.rules, cfg->route.rule_sets, sources, diags);
  if (!engine || diags.hasErrors()) {
    it->second = std::move(old);
    std::string why;
    size_t shown = 0;
    for (const auto& d : diags.all()) {
      if (d.severity != Diag::Severity::Error || shown++ == 3) continue;
      why += (why.empty() ? "" : "; ") + d.toString();
    }
    if (why.empty() && !engine) why = engine.error().message();
    return unexpected(why.empty() ? "the rules do not compile" : why);
  }
  // DNS rules use the same rule sets: compile them again too, before anything is replaced.
  std::shared_ptr<const dns::DnsRules> dns_rules;
  if (cfg->dns_rules) {
    dns_rules = cfg->dns_rules->withRuleSets(cfg->route.rule_sets, sources, diags);
    if (!dns_rules) {
      it->second = std::move(old);
      return unexpected("the DNS rules do not compile with it");
    }
  }
  cfg->engine = std::shared_ptr<rules::RuleEngine>(std::move(*engine));
  if (dns_rules) {
    cfg->dns_rules = dns_rules;
    const auto& st = router_->state();
    if (boot_config_ == nullptr && st && st->dns) st->dns->setRules(dns_rules);
  }
  for (auto& d : cfg->route.rule_set_defs) {
    if (d.tag == tag) d.cached = true;  // the caller stores it in the cache next
  }
  if (boot_config_ == nullptr && rule_set_root_) {
    router_->setState(route::RemoteRuleSets::deriveState(rule_set_root_, cfg->engine));
  }
  return {};
}

}  // namespace veer::app
