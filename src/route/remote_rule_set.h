// Remote rule sets (`route.rule_set[]` with "type": "remote"): downloads over HTTP(S) through
// an outbound, the on-disk cache (rules/ruleset_cache.h), periodic refresh, and handing a
// validated new copy to the runtime, which recompiles the rules and swaps the RouteState.
//
// Policy (README, "Remote rule sets"):
// - a set with a usable cached copy starts with it (the config loader read it); it is
//   refreshed when the copy is `update_interval` old (at once if it already is);
// - a set without one is downloaded at once (the runtime waits for these before it starts
//   its inbounds, up to the download timeout);
// - a download is parsed and compiled before anything is replaced; a failed, refused
//   (non-200/304) or invalid download keeps the copy in use and the cache file as they are,
//   logs a warning naming the set and the reason, and is retried after a backoff (30 s,
//   doubling, at most the update interval and one hour);
// - 304 Not Modified (If-None-Match with the cached ETag, or If-Modified-Since) only renews
//   the cached copy's fetch time.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "outbound/http_get.h"
#include "route/router.h"
#include "rules/ruleset_json.h"

namespace veer::route {

struct RemoteRuleSetOptions {
  std::string tag;
  std::string url;
  std::string format;           // "source" | "binary"
  std::string download_detour;  // the outbound to download through
  uint64_t update_interval_ms = 86400000;
  std::string cache_path;
  bool cached = false;          // the config loaded a valid cached copy (or a download stored one)
  uint32_t timeout_ms = 60000;  // one download, redirects included
};

class RemoteRuleSets {
 public:
  /// The outbound named `tag` in the current generation, and what keeps it alive for the
  /// length of a download (the RouteState). {nullptr, nullptr} when there is none.
  using OutboundFor = std::function<std::pair<std::shared_ptr<const void>, outbound::Outbound*>(
      const std::string& tag)>;
  /// Validates a downloaded rule set against the whole config (compiles the rules with it) and
  /// puts it in use. An error refuses the download: nothing is replaced, the cache is kept.
  using Apply = std::function<Status(const std::string& tag, std::vector<rules::RuleSpec> rules)>;

  RemoteRuleSets(uv_loop_t* loop, std::vector<RemoteRuleSetOptions> sets, OutboundFor outbound_for,
                 Apply apply, outbound::TlsStep tls);
  ~RemoteRuleSets();  // cancels downloads in flight and timers
  RemoteRuleSets(const RemoteRuleSets&) = delete;
  RemoteRuleSets& operator=(const RemoteRuleSets&) = delete;

  /// Schedules every set from its cache file's state (see the top of the file). Sets without a
  /// usable cached copy are downloaded after `missing_delay_ms`; when each of those has
  /// finished once (success or not), `on_missing_done` runs (on the next loop turn when there
  /// are none).
  void start(uint64_t missing_delay_ms = 0, std::function<void()> on_missing_done = {});

  /// Downloads the set now (tests, and a future API). False when the tag is unknown.
  bool refreshNow(const std::string& tag);

  /// Derives a RouteState that shares `root`'s outbounds, DNS and options (keeping `root`
  /// alive) with another rule engine: how a refreshed rule set is swapped in without
  /// rebuilding the outbounds.
  static std::shared_ptr<RouteState> deriveState(const std::shared_ptr<RouteState>& root,
                                                 std::shared_ptr<const rules::RuleEngine> engine);

 private:
  struct Entry;
  void schedule(Entry& e, uint64_t delay_ms);
  void fetch(Entry& e);
  void onResult(Entry& e, Result<outbound::HttpGetResponse> r);
  void failed(Entry& e, const std::string& why);
  void missingDone(Entry& e);

  uv_loop_t* loop_;
  std::vector<std::unique_ptr<Entry>> entries_;
  OutboundFor outbound_for_;
  Apply apply_;
  outbound::TlsStep tls_;
  std::function<void()> on_missing_done_;
  size_t missing_left_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace veer::route
