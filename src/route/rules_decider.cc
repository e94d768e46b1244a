#include "route/rules_decider.h"

#include "base/log.h"

namespace veer::route {

rules::MatchInput RulesDecider::matchInput(const conn::InboundContext& ctx) {
  rules::MatchInput in;
  in.inbound = ctx.inbound_tag;
  in.network = ctx.network;
  in.source = ctx.source.ip().unmap();
  in.source_port = ctx.source.port();
  in.domain = !ctx.sniffed_domain.empty() ? std::string_view(ctx.sniffed_domain)
                                          : std::string_view(ctx.destination.domain);
  if (!ctx.destination.isDomain()) in.destination = ctx.destination.ip.unmap();
  in.destination_addresses = ctx.destination_addresses;
  in.port = ctx.destination.port;
  in.protocol = ctx.protocol;
  in.client = ctx.client;
  in.auth_user = ctx.user;
  return in;
}

namespace {

void applyOptions(const rules::RuleAction& a, Decision& d) {
  if (!a.override_address.empty()) d.override_address = a.override_address;
  if (a.override_port) d.override_port = a.override_port;
  if (a.udp_timeout_s) d.udp_timeout_ms = *a.udp_timeout_s * 1000;
}

}  // namespace

Decision RulesDecider::decide(conn::InboundContext& ctx) const {
  Decision d;
  rules::MatchInput in = matchInput(ctx);
  size_t index = 0;
  while (true) {
    rules::MatchResult r = engine_->matchFrom(in, index);
    if (r.status != rules::MatchResult::Status::Matched) {
      d.kind = Decision::Kind::Route;
      d.rule = "final";
      return d;
    }
    const rules::RuleAction* a = r.action;
    std::string rule = "rule[" + std::to_string(r.index) + "] " + engine_->describe(r.index);
    if (a == nullptr) {
      d.rule = rule;
      return d;
    }
    switch (a->type) {
      case rules::RuleAction::Type::Route:
        applyOptions(*a, d);
        d.kind = Decision::Kind::Route;
        d.outbound = a->outbound;
        d.rule = rule;
        return d;
      case rules::RuleAction::Type::Reject:
        d.kind = Decision::Kind::Reject;
        d.reject_method = a->reject_method;
        d.rule = rule;
        return d;
      case rules::RuleAction::Type::HijackDns:
        d.kind = Decision::Kind::HijackDns;
        d.rule = rule;
        return d;
      case rules::RuleAction::Type::RouteOptions:
        applyOptions(*a, d);
        break;
      case rules::RuleAction::Type::Sniff:
      case rules::RuleAction::Type::Resolve:
        // Not wired into the data path in this version: `veer check` warns about such rules.
        LOG_DEBUG("[C%llu] %s: action not available in this build, continuing",
                  static_cast<unsigned long long>(ctx.id), rule.c_str());
        break;
    }
    index = r.index + 1;
  }
}

}  // namespace veer::route
