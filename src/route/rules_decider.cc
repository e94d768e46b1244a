#include "route/rules_decider.h"

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

}  // namespace veer::route
