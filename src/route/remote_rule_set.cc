#include "route/remote_rule_set.h"

#include <algorithm>
#include <ctime>

#include "base/log.h"
#include "loop/defer.h"
#include "loop/uv_util.h"
#include "rules/ruleset_cache.h"

namespace veer::route {

namespace {

constexpr uint64_t kFirstRetryMs = 30000;
constexpr uint64_t kMaxRetryMs = 3600000;

struct TimerBox {
  uv_timer_t timer{};
  std::function<void()> fn;
};

std::string ageText(int64_t fetched) {
  if (fetched <= 0) return "";
  int64_t age = static_cast<int64_t>(std::time(nullptr)) - fetched;
  if (age < 0) age = 0;
  if (age < 120) return std::to_string(age) + " s old";
  if (age < 7200) return std::to_string(age / 60) + " min old";
  if (age < 172800) return std::to_string(age / 3600) + " h old";
  return std::to_string(age / 86400) + " days old";
}

}  // namespace

struct RemoteRuleSets::Entry {
  RemoteRuleSetOptions o;
  TimerBox* timer = nullptr;
  std::unique_ptr<outbound::HttpGet> get;
  std::shared_ptr<const void> hold;  // keeps the outbound's generation alive while downloading
  // From the cache file (or the last download).
  bool have_copy = false;
  std::string etag, last_modified;
  int64_t fetched = 0;
  uint64_t retry_ms = kFirstRetryMs;
  bool counting_missing = false;  // start()'s on_missing_done waits for this one
};

RemoteRuleSets::RemoteRuleSets(uv_loop_t* loop, std::vector<RemoteRuleSetOptions> sets,
                               OutboundFor outbound_for, Apply apply, outbound::TlsStep tls)
    : loop_(loop), outbound_for_(std::move(outbound_for)), apply_(std::move(apply)),
      tls_(std::move(tls)) {
  for (auto& o : sets) {
    auto e = std::make_unique<Entry>();
    e->o = std::move(o);
    e->timer = new TimerBox;
    uv_timer_init(loop_, &e->timer->timer);
    e->timer->timer.data = e->timer;
    entries_.push_back(std::move(e));
  }
}

RemoteRuleSets::~RemoteRuleSets() {
  *alive_ = false;
  for (auto& e : entries_) {
    e->get.reset();
    e->timer->fn = nullptr;
    loop::closeHandle(&e->timer->timer,
                      [](uv_handle_t* h) { delete static_cast<TimerBox*>(h->data); });
  }
}

void RemoteRuleSets::start(uint64_t missing_delay_ms, std::function<void()> on_missing_done) {
  on_missing_done_ = std::move(on_missing_done);
  missing_left_ = 0;
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (auto& ep : entries_) {
    Entry& e = *ep;
    // The config loader parsed the cached copy (o.cached); only its metadata is needed here.
    auto c = e.o.cached ? rules::loadCachedRuleSet(e.o.cache_path)
                        : Result<rules::CachedRuleSet>(unexpected("not cached"));
    if (c && c->url == e.o.url && c->format == e.o.format) {
      e.have_copy = true;
      e.etag = c->etag;
      e.last_modified = c->last_modified;
      e.fetched = c->fetched;
      int64_t due_s = c->fetched + static_cast<int64_t>(e.o.update_interval_ms / 1000);
      uint64_t delay = due_s <= now ? 0 : static_cast<uint64_t>(due_s - now) * 1000;
      // A clock that was wrong at either time (routers without an RTC boot in 1970 until NTP
      // runs) must not postpone the refresh beyond one interval.
      delay = std::min(delay, e.o.update_interval_ms);
      LOG_INFO("rule-set %s: using the cached copy (%s, %s); next update in %llu s",
               e.o.tag.c_str(), e.o.cache_path.c_str(), ageText(c->fetched).c_str(),
               static_cast<unsigned long long>(delay / 1000));
      schedule(e, delay);
    } else {
      e.counting_missing = true;
      ++missing_left_;
      schedule(e, missing_delay_ms);
    }
  }
  if (missing_left_ == 0 && on_missing_done_) {
    std::weak_ptr<bool> alive = alive_;
    loop::defer(loop_, [this, alive] {
      if (alive.expired() || !*alive.lock()) return;
      if (missing_left_ == 0 && on_missing_done_) {
        auto f = std::move(on_missing_done_);
        on_missing_done_ = nullptr;
        f();
      }
    });
  }
}

bool RemoteRuleSets::refreshNow(const std::string& tag) {
  for (auto& e : entries_) {
    if (e->o.tag == tag) {
      if (!e->get) fetch(*e);
      return true;
    }
  }
  return false;
}

void RemoteRuleSets::schedule(Entry& e, uint64_t delay_ms) {
  Entry* ep = &e;
  e.timer->fn = [this, ep] { fetch(*ep); };
  uv_timer_start(&e.timer->timer, [](uv_timer_t* t) {
    auto* tb = static_cast<TimerBox*>(t->data);
    if (tb->fn) {
      auto f = tb->fn;  // fetch() may reschedule, replacing tb->fn
      f();
    }
  }, delay_ms, 0);
}

void RemoteRuleSets::fetch(Entry& e) {
  uv_timer_stop(&e.timer->timer);
  if (e.get) return;  // one download at a time
  auto [hold, ob] = outbound_for_(e.o.download_detour);
  if (ob == nullptr) {
    failed(e, "download_detour outbound \"" + e.o.download_detour + "\" is not available");
    return;
  }
  outbound::HttpGetOptions go;
  go.url = e.o.url;
  go.timeout_ms = e.o.timeout_ms;
  go.inbound_tag = "rule-set/" + e.o.tag;
  if (e.have_copy) {
    go.if_none_match = e.etag;
    if (e.etag.empty()) go.if_modified_since = e.last_modified;
  }
  LOG_DEBUG("rule-set %s: downloading %s via %s", e.o.tag.c_str(), e.o.url.c_str(),
            ob->tag().c_str());
  e.hold = std::move(hold);
  Entry* ep = &e;
  std::weak_ptr<bool> alive = alive_;
  e.get = outbound::HttpGet::start(loop_, ob, std::move(go), tls_,
                                   [this, ep, alive](Result<outbound::HttpGetResponse> r) {
    if (alive.expired() || !*alive.lock()) return;
    // The HttpGet finished: free it after this callback returns.
    auto done = std::shared_ptr<outbound::HttpGet>(std::move(ep->get));
    loop::defer(loop_, [done] {});
    ep->hold.reset();
    onResult(*ep, std::move(r));
  });
}

void RemoteRuleSets::failed(Entry& e, const std::string& why) {
  uint64_t retry = std::min({e.retry_ms, e.o.update_interval_ms, kMaxRetryMs});
  LOG_WARN("rule-set %s: update from %s failed: %s; %s; retrying in %llu s", e.o.tag.c_str(),
           e.o.url.c_str(), why.c_str(),
           e.have_copy ? ("keeping the copy in use (" + ageText(e.fetched) + ")").c_str()
                       : "no copy yet: rules that use it match nothing from it",
           static_cast<unsigned long long>(retry / 1000));
  e.retry_ms = std::min(e.retry_ms * 2, kMaxRetryMs);
  schedule(e, retry);
  missingDone(e);
}

void RemoteRuleSets::missingDone(Entry& e) {
  if (!e.counting_missing) return;
  e.counting_missing = false;
  if (missing_left_ > 0 && --missing_left_ == 0 && on_missing_done_) {
    auto f = std::move(on_missing_done_);
    on_missing_done_ = nullptr;
    f();
  }
}

void RemoteRuleSets::onResult(Entry& e, Result<outbound::HttpGetResponse> r) {
  if (!r) return failed(e, r.error().message());
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (r->status == 304 && e.have_copy) {
    // Not modified: renew the copy's fetch time in the cache file.
    e.fetched = now;
    auto c = rules::loadCachedRuleSet(e.o.cache_path);
    if (c) {
      c->fetched = now;
      if (!r->etag.empty()) c->etag = r->etag;
      Status st = rules::storeCachedRuleSet(e.o.cache_path, *c);
      if (!st) {
        LOG_WARN("rule-set %s: cannot update the cache: %s", e.o.tag.c_str(),
                 st.error().message().c_str());
      }
    }
    LOG_INFO("rule-set %s: not modified", e.o.tag.c_str());
    e.retry_ms = kFirstRetryMs;
    schedule(e, e.o.update_interval_ms);
    missingDone(e);
    return;
  }
  if (r->status != 200) {
    return failed(e, "HTTP " + std::to_string(r->status) +
                         (r->reason.empty() ? "" : " " + r->reason) + " from " + r->url);
  }
  auto spec = rules::parseRuleSetBytes(r->body, e.o.format, e.o.url);
  if (!spec) return failed(e, "invalid " + e.o.format + " rule set: " + spec.error().message());
  size_t n = spec->rules.size();
  Status applied = apply_(e.o.tag, std::move(spec->rules));
  if (!applied) return failed(e, "rules refused: " + applied.error().message());
  rules::CachedRuleSet c;
  c.url = e.o.url;
  c.format = e.o.format;
  c.etag = r->etag;
  c.last_modified = r->last_modified;
  c.fetched = now;
  c.content = std::move(r->body);
  size_t bytes = c.content.size();
  Status st = rules::storeCachedRuleSet(e.o.cache_path, c);
  if (!st) {
    LOG_WARN("rule-set %s: updated, but the cache could not be written: %s", e.o.tag.c_str(),
             st.error().message().c_str());
  }
  e.have_copy = true;
  e.etag = c.etag;
  e.last_modified = c.last_modified;
  e.fetched = now;
  e.retry_ms = kFirstRetryMs;
  LOG_INFO("rule-set %s: updated from %s (%zu rules, %zu bytes)", e.o.tag.c_str(),
           r->url.c_str(), n, bytes);
  schedule(e, e.o.update_interval_ms);
  missingDone(e);
}

std::shared_ptr<RouteState> RemoteRuleSets::deriveState(
    const std::shared_ptr<RouteState>& root, std::shared_ptr<const rules::RuleEngine> engine) {
  auto st = std::make_shared<RouteState>();
  st->dns = root->dns;
  for (const auto& [tag, ob] : root->outbounds) {
    // An alias of the root's outbound that keeps the whole root state alive.
    st->outbounds[tag] = outbound::makeShared(outbound::SharedOutbound(root, ob.get()));
  }
  st->engine = std::move(engine);
  st->resolver = root->resolver;
  st->final_outbound = root->final_outbound;
  st->relay = root->relay;
  st->udp_timeout_ms = root->udp_timeout_ms;
  st->resolve_on_demand = root->resolve_on_demand;
  return st;
}

}  // namespace veer::route
