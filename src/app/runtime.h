// The running daemon: one libuv loop, the router, the inbounds of the current config, signal
// handling (SIGINT/SIGTERM: stop; SIGHUP: reload, keeping the old config when the new one
// fails to load).
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "app/clash_api.h"
#include "config/config.h"
#include "conn/host_resolver.h"
#include "inbound/inbound.h"
#include "route/remote_rule_set.h"
#include "route/router.h"

namespace veer::app {

class Runtime {
 public:
  explicit Runtime(std::string config_path);
  ~Runtime();
  /// Loads the config and runs until a stop signal. Returns the process exit status.
  int run();

 private:
  bool apply(std::unique_ptr<config::Config> cfg);
  void reload();
  void startControlApi(const config::Config& cfg);
  void stop();
  static std::shared_ptr<route::RouteState> buildState(const config::Config& cfg, uv_loop_t* loop,
                                                       conn::HostResolver* resolver,
                                                       std::shared_ptr<dns::DnsRouter> dns);

  // Remote rule sets (runtime_remote.cc).
  void bootRemoteRuleSets(config::Config& cfg);
  std::shared_ptr<route::RouteState> rootForRuleSets(const config::Config& cfg,
                                                     std::shared_ptr<route::RouteState> state);
  void startRemoteRuleSets();
  Status swapRuleSet(const std::string& tag, std::vector<rules::RuleSpec> rules);
  std::unique_ptr<route::RemoteRuleSets> makeRemoteRuleSets(const config::Config& cfg);

  std::string config_path_;
  uv_loop_t loop_{};
  std::unique_ptr<conn::SystemResolver> resolver_;
  std::unique_ptr<route::Router> router_;
  std::vector<inbound::InboundPtr> inbounds_;
  std::vector<inbound::InboundPtr> retired_;
  std::unique_ptr<config::Config> config_;
  uv_signal_t sigint_{}, sigterm_{}, sighup_{}, sigusr1_{};
  bool stopping_ = false;
  std::string log_output_;
  std::unique_ptr<ClashApi> api_;
  std::string api_key_;  // controller + secret of the running API
  std::unique_ptr<route::RemoteRuleSets> remote_rule_sets_;
  std::shared_ptr<route::RouteState> rule_set_root_;  // owns the outbounds derived states share
  config::Config* boot_config_ = nullptr;             // the config before apply() (first downloads)
  std::shared_ptr<route::RouteState> boot_state_;     // its outbounds, for the first downloads
  bool boot_downloaded_ = false;  // the first downloads ran (retry the failed ones later)
};

}  // namespace veer::app
