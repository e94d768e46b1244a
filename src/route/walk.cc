#include "route/walk.h"

#include "route/rules_decider.h"

namespace veer::route {

bool isServerFirstPort(uint16_t port) {
  switch (port) {
    case 25: case 465: case 587: case 143: case 993: case 110: case 995: return true;
    default: return false;
  }
}

void applySniff(conn::InboundContext& ctx, const std::string& protocol, const std::string& domain,
                const std::string& client, bool override_destination) {
  if (!protocol.empty()) ctx.protocol = protocol;
  if (!client.empty()) ctx.client = client;
  if (domain.empty()) return;
  ctx.sniffed_domain = domain;
  if (override_destination && !(ctx.destination.isDomain() && ctx.destination.domain == domain)) {
    if (!ctx.original_destination.valid()) ctx.original_destination = ctx.destination;
    Destination d;
    d.domain = domain;
    d.port = ctx.destination.port;
    ctx.destination = d;
    ctx.destination_addresses.clear();
  }
}

namespace {

void applyOptions(const rules::RuleAction& a, Decision& d) {
  if (!a.override_address.empty()) d.override_address = a.override_address;
  if (a.override_port) d.override_port = a.override_port;
  if (a.udp_timeout_s) d.udp_timeout_ms = *a.udp_timeout_s * 1000;
  if (a.tls_fragment) d.tls_fragment = true;
  if (a.tls_record_fragment) d.tls_record_fragment = true;
  if (a.tls_fragment_fallback_delay_ms) {
    d.tls_fragment_fallback_delay_ms = *a.tls_fragment_fallback_delay_ms;
  }
}

}  // namespace

Walk::Step Walk::step(const rules::RuleEngine* engine, conn::InboundContext& ctx,
                      const std::string& final_outbound) {
  // Legacy inbound sniffing runs before the first rule, as sing-box <= 1.12 did.
  if (ctx.sniff && !legacy_sniff_done) {
    legacy_sniff_done = true;
    if (ctx.protocol.empty() && !isServerFirstPort(ctx.destination.port)) {
      pending = nullptr;
      return Step::Sniff;
    }
  }
  while (engine != nullptr) {
    rules::MatchInput in = RulesDecider::matchInput(ctx);
    in.on_demand_resolve = on_demand && !resolve_failed;
    rules::MatchResult r = engine->matchFrom(in, index);
    if (r.status == rules::MatchResult::Status::NeedResolve) {
      index = r.index;  // the same rule is tried again with the addresses
      pending = nullptr;
      return Step::Resolve;
    }
    if (r.status != rules::MatchResult::Status::Matched) break;
    index = r.index + 1;
    const rules::RuleAction* a = r.action;
    std::string rule = "rule[" + std::to_string(r.index) + "] " + engine->describe(r.index);
    if (a == nullptr) {
      decision.rule = rule;
      decision.outbound = final_outbound;
      return Step::Final;
    }
    switch (a->type) {
      case rules::RuleAction::Type::Route:
        applyOptions(*a, decision);
        decision.kind = Decision::Kind::Route;
        decision.outbound = a->outbound.empty() ? final_outbound : a->outbound;
        decision.rule = rule;
        return Step::Final;
      case rules::RuleAction::Type::Reject:
        decision.kind = Decision::Kind::Reject;
        decision.reject_method = a->reject_method;
        decision.rule = rule;
        return Step::Final;
      case rules::RuleAction::Type::HijackDns:
        decision.kind = Decision::Kind::HijackDns;
        decision.rule = rule;
        return Step::Final;
      case rules::RuleAction::Type::RouteOptions:
        applyOptions(*a, decision);
        continue;
      case rules::RuleAction::Type::Sniff:
        // Skipped when the protocol is known already or the server speaks first (sing-box).
        if (!ctx.protocol.empty() || isServerFirstPort(ctx.destination.port)) continue;
        pending = a;
        return Step::Sniff;
      case rules::RuleAction::Type::Resolve:
        // Only a destination given as a name is resolved (not a sniffed domain), and once.
        if (!ctx.destination.isDomain() || !ctx.destination_addresses.empty()) continue;
        pending = a;
        return Step::Resolve;
    }
  }
  decision.kind = Decision::Kind::Route;
  decision.outbound = final_outbound;
  decision.rule = "final";
  return Step::Final;
}

}  // namespace veer::route
