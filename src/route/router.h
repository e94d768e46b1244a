// The router: owns the outbounds and the compiled rules of one configuration generation, and
// runs rules → outbound → ConnectionManager for every connection and UDP session.
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "conn/context.h"
#include "conn/host_resolver.h"
#include "conn/tcp_relay.h"
#include "conn/tracker.h"
#include "conn/udp_nat.h"
#include "outbound/outbound.h"
#include "route/decision.h"
#include "dns/dns_router.h"
#include "rules/rule_engine.h"

namespace veer::route {

/// One configuration generation: outbounds, rules, defaults. Immutable once built; live
/// connections keep the generation they started with (shared_ptr), so a reload never pulls an
/// outbound from under a connection. (A field added here must also be copied by
/// RemoteRuleSets::deriveState, remote_rule_set.cc.)
struct RouteState {
  // Declared first so that they outlive the outbounds that use them.
  std::shared_ptr<dns::DnsRouter> dns;                 // the `dns` section (hijack-dns, FakeIP)
  std::unique_ptr<conn::HostResolver> owned_resolver;  // over `dns`, when there is one
  std::map<std::string, outbound::OutboundPtr> outbounds;
  // The groups, for the control API (pointers into `outbounds`, which owns them).
  std::map<std::string, outbound::Selector*> selectors;
  std::map<std::string, outbound::UrlTest*> urltests;
  std::map<std::string, bool> interrupt_on_switch;  // selector → interrupt_exist_connections
  std::shared_ptr<const rules::RuleEngine> engine;  // null: everything goes to final
  conn::HostResolver* resolver = nullptr;          // for the resolve action
  std::string final_outbound;  // route.final, else the first outbound
  conn::RelayOptions relay;
  uint32_t udp_timeout_ms = 300000;  // inbound default (sing-box: 5m)
  bool resolve_on_demand = false;    // route.resolve_on_demand (veer)
  outbound::Outbound* find(const std::string& tag) const;
};

struct RouterStats {
  uint64_t sniffed = 0;       // connections whose protocol was recognised
  uint64_t sniff_timeouts = 0;
  uint64_t tcp_total = 0;
  uint64_t tcp_failed = 0;
  uint64_t tcp_rejected = 0;
  uint64_t udp_sessions = 0;
  uint64_t udp_rejected = 0;
};

class Router : public conn::ConnectionHandler {
 public:
  explicit Router(uv_loop_t* loop);
  ~Router() override;

  void setState(std::shared_ptr<RouteState> state) { state_ = std::move(state); }
  const std::shared_ptr<RouteState>& state() const { return state_; }

  // conn::ConnectionHandler
  void handleTcp(conn::InboundContext ctx, uv_tcp_t* client, std::string early,
                 conn::ReplyBuilder reply) override;
  uint64_t dialTcp(conn::InboundContext& ctx, DialCallback cb) override;
  void cancelDial(uint64_t id) override;
  void handleUdp(const conn::InboundContext& ctx, const char* data, size_t len,
                 conn::UdpReplySink* sink) override;
  void udpSinkClosed(conn::UdpReplySink* sink) override;
  uint64_t nextConnectionId() override { return ++last_id_; }

  /// Closes every tracked connection and UDP session (shutdown).
  void closeAll(const std::string& reason);
  /// Logs every live connection and UDP session with its metadata and byte counts, and the
  /// router's counters (SIGUSR1).
  void logConnections() const;
  conn::Tracker& tracker() { return tracker_; }
  const RouterStats& stats() const { return stats_; }
  const conn::NatStats& natStats() const { return nat_.stats(); }

 private:
  class TcpSession;
  class UdpPending;
  class DnsTcpSession;
  friend class TcpSession;
  friend class UdpPending;
  friend class DnsTcpSession;

  /// Maps a FakeIP (or, with reverse_mapping, a recently resolved) destination back to its
  /// domain before the rules run. False when the connection must fail (unknown FakeIP).
  bool unmapDestination(conn::InboundContext& ctx, const RouteState& st);
  void hijackUdp(const conn::InboundContext& ctx, const std::shared_ptr<RouteState>& st,
                 conn::UdpReplySink* sink, std::vector<std::string> queries);

  void startUdpSession(conn::InboundContext ctx, const std::shared_ptr<RouteState>& st,
                       const Decision& d, conn::UdpReplySink* sink,
                       std::vector<std::string> queued);
  void sendUdp(conn::UdpNat::Session* s, const Destination& client_dst, const char* data,
               size_t len);

  uv_loop_t* loop_;
  std::shared_ptr<RouteState> state_;
  conn::Tracker tracker_;
  conn::UdpNat nat_;
  RouterStats stats_;
  uint64_t last_id_ = 0;
  struct PendingDial {
    std::shared_ptr<RouteState> state;
    outbound::Outbound* outbound = nullptr;
    uint64_t outbound_dial = 0;
  };
  std::unordered_map<uint64_t, PendingDial> dials_;
  uint64_t next_dial_ = 1;
  // UDP flows whose routing is still being decided (sniffing their first datagrams, resolving).
  std::map<std::pair<conn::UdpReplySink*, std::string>, UdpPending*> udp_pending_;
  // hijacked DNS queries in flight: op id → (dns router, the sink that gets the answer)
  struct HijackOp {
    std::shared_ptr<dns::DnsRouter> dns;
    conn::UdpReplySink* sink;
  };
  std::unordered_map<uint64_t, HijackOp> hijack_ops_;
  uint64_t dns_hijacked_ = 0;
};

}  // namespace veer::route
