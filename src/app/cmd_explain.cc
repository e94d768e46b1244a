// veer route explain: walks a config's route rules for one hypothetical connection and says
// which rules were tried, which matched and why, and where the connection would go.
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "app/cmd_util.h"
#include "app/commands.h"
#include "base/json.h"
#include "config/config.h"
#include "conn/context.h"
#include "route/rules_decider.h"
#include "rules/rule_engine.h"
#include "rules/trace.h"

namespace veer::app {

namespace {

const char* kRouteHelp =
    "Usage: veer route explain -c FILE [options]\n"
    "\n"
    "Commands:\n"
    "  explain   show how the route rules of a config decide one connection\n"
    "\n"
    "Run 'veer route explain --help' for details.\n";

const char* kExplainHelp =
    "Usage: veer route explain -c FILE [--domain D] [--ip IP] [--port P] [--network tcp|udp]\n"
    "                          [--source IP[:PORT]] [--inbound TAG] [--protocol P] [--client C]\n"
    "                          [--user U] [-D DIR] [--json]\n"
    "\n"
    "Loads the config FILE exactly as 'veer run' does and walks its route rules for one\n"
    "connection, printing every rule tried (index, file:line:col, its text), whether it matched\n"
    "and by which field and value, and the decision: the outbound, reject or hijack-dns, or the\n"
    "final outbound when no rule matched. Non-final actions (sniff, resolve, route-options)\n"
    "are shown but not carried out: matching goes on with the next rule, as in the router.\n"
    "  -c, --config FILE      the config (required)\n"
    "  -D, --directory DIR    working directory (geoip.db/geosite.db are looked up there)\n"
    "  --domain D             destination domain; with --ip, the sniffed domain of a\n"
    "                         connection to that IP\n"
    "  --ip IP                destination IP address\n"
    "  --port P               destination port (default 0: no port rule matches)\n"
    "  --network N            tcp (default) or udp\n"
    "  --source IP[:PORT]     client address ([v6]:port for IPv6 with a port)\n"
    "  --inbound TAG          inbound tag\n"
    "  --protocol P           sniffed protocol (tls, http, quic, dns, ...)\n"
    "  --client C             sniffed client (chromium, ...)\n"
    "  --user U               authenticated user (auth_user)\n"
    "  --json                 print one JSON object: {input, steps, rule, action, outbound,\n"
    "                         final, ...}; outbound is null for reject and hijack-dns\n"
    "At least one of --domain and --ip is needed.\n"
    "Exit status: 0 explained, 1 the config has errors, 2 usage.\n";

struct Options {
  std::string config, dir, domain, ip, port, network = "tcp", source, inbound, protocol, client,
      user;
  bool json = false;
};

/// One rule tried, with what explain made of its action.
struct Step {
  rules::TraceStep trace;
  std::string action;  // describeAction(), "" when the rule did not match
  std::string note;    // for non-final actions
};

struct Outcome {
  std::string action = "route";  // route | reject | hijack-dns
  std::optional<std::string> outbound;
  std::optional<size_t> rule;
  bool final = false;
  std::string final_source;  // where the final outbound comes from
  std::string reject_method;
  // route-options collected on the way (as the router applies them)
  std::string override_address;
  std::optional<uint16_t> override_port;
  std::optional<uint32_t> udp_timeout_s;
};

json::Value jstr(const std::string& s) {
  json::Value v;
  v.type = json::Value::Type::String;
  v.str = s;
  return v;
}

json::Value juint(uint64_t n) {
  json::Value v;
  v.type = json::Value::Type::Uint;
  v.u = n;
  return v;
}

json::Value jbool(bool b) {
  json::Value v;
  v.type = json::Value::Type::Bool;
  v.b = b;
  return v;
}

json::Value jobject() {
  json::Value v;
  v.type = json::Value::Type::Object;
  return v;
}

void add(json::Value& obj, const char* key, json::Value v) {
  obj.members.push_back({key, {}, std::move(v)});
}

void applyOptions(const rules::RuleAction& a, Outcome& o) {
  if (!a.override_address.empty()) o.override_address = a.override_address;
  if (a.override_port) o.override_port = a.override_port;
  if (a.udp_timeout_s) o.udp_timeout_s = a.udp_timeout_s;
}

std::string inputText(const conn::InboundContext& ctx, const rules::MatchInput& in) {
  std::string out = ctx.network + " to ";
  out += ctx.destination.toString();
  if (!ctx.sniffed_domain.empty()) out += " (domain " + ctx.sniffed_domain + ")";
  if (ctx.source.valid()) out += " from " + ctx.source.toString();
  if (!in.inbound.empty()) out += ", inbound " + ctx.inbound_tag;
  if (!ctx.protocol.empty()) out += ", protocol " + ctx.protocol;
  if (!ctx.client.empty()) out += ", client " + ctx.client;
  if (!ctx.user.empty()) out += ", user " + ctx.user;
  return out;
}

std::string optionsText(const Outcome& o) {
  std::string out;
  auto add_opt = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  if (!o.override_address.empty()) add_opt("override_address=" + o.override_address);
  if (o.override_port) add_opt("override_port=" + std::to_string(*o.override_port));
  if (o.udp_timeout_s) add_opt("udp_timeout=" + std::to_string(*o.udp_timeout_s) + "s");
  return out;
}

void printHuman(const conn::InboundContext& ctx, const rules::MatchInput& in,
                const std::vector<Step>& steps, const Outcome& o, size_t rule_count) {
  std::printf("connection: %s\n", inputText(ctx, in).c_str());
  std::printf("rules: %zu\n", rule_count);
  for (const auto& s : steps) {
    std::string where = rules::formatPos(s.trace.pos);
    std::printf("#%zu %s: %s\n", s.trace.index, where.c_str(), s.trace.rule.c_str());
    if (s.trace.outcome == rules::TraceStep::Outcome::Matched) {
      std::printf("    matched%s%s\n", s.trace.detail.empty() ? "" : ": ",
                  s.trace.detail.c_str());
    } else if (s.trace.outcome == rules::TraceStep::Outcome::NeedResolve) {
      std::printf("    needs the destination resolved\n");
    } else {
      std::printf("    no match\n");
    }
    if (!s.note.empty()) std::printf("    %s\n", s.note.c_str());
  }
  std::string rule = o.rule ? "rule #" + std::to_string(*o.rule) : "";
  if (o.final) {
    std::printf("decision: no rule matched: route to the final outbound \"%s\" (%s)\n",
                o.outbound->c_str(), o.final_source.c_str());
  } else if (o.action == "route") {
    std::printf("decision: route to outbound \"%s\" (%s)\n", o.outbound->c_str(), rule.c_str());
  } else if (o.action == "reject") {
    std::printf("decision: reject, method %s (%s)\n", o.reject_method.c_str(), rule.c_str());
  } else {
    std::printf("decision: hijack-dns (%s)\n", rule.c_str());
  }
  std::string opts = optionsText(o);
  if (!opts.empty() && o.action == "route") std::printf("route options: %s\n", opts.c_str());
}

void printJson(const conn::InboundContext& ctx, const rules::MatchInput& in,
               const std::vector<Step>& steps, const Outcome& o) {
  json::Value root = jobject();
  json::Value input = jobject();
  add(input, "network", jstr(ctx.network));
  add(input, "destination", jstr(ctx.destination.toString()));
  add(input, "domain", in.domain.empty() ? json::Value{} : jstr(std::string(in.domain)));
  add(input, "ip", in.destination.valid() ? jstr(in.destination.toString()) : json::Value{});
  add(input, "port", juint(in.port));
  add(input, "source", ctx.source.valid() ? jstr(ctx.source.toString()) : json::Value{});
  add(input, "inbound", jstr(ctx.inbound_tag));
  add(input, "protocol", jstr(ctx.protocol));
  add(input, "client", jstr(ctx.client));
  add(input, "user", jstr(ctx.user));
  add(root, "input", std::move(input));

  json::Value arr;
  arr.type = json::Value::Type::Array;
  for (const auto& s : steps) {
    json::Value st = jobject();
    add(st, "index", juint(s.trace.index));
    add(st, "file", jstr(s.trace.pos.file));
    add(st, "line", juint(s.trace.pos.line));
    add(st, "column", juint(s.trace.pos.column));
    add(st, "path", jstr(s.trace.pos.path));
    add(st, "rule", jstr(s.trace.rule));
    bool matched = s.trace.outcome == rules::TraceStep::Outcome::Matched;
    add(st, "matched", jbool(matched));
    add(st, "detail", matched ? jstr(s.trace.detail) : json::Value{});
    add(st, "action", s.action.empty() ? json::Value{} : jstr(s.action));
    add(st, "note", s.note.empty() ? json::Value{} : jstr(s.note));
    arr.items.push_back(std::move(st));
  }
  add(root, "steps", std::move(arr));
  add(root, "rule", o.rule ? juint(*o.rule) : json::Value{});
  add(root, "action", jstr(o.action));
  add(root, "outbound", o.outbound ? jstr(*o.outbound) : json::Value{});
  add(root, "final", jbool(o.final));
  if (o.final) add(root, "final_source", jstr(o.final_source));
  if (o.action == "reject") add(root, "reject_method", jstr(o.reject_method));
  json::Value opts = jobject();
  if (!o.override_address.empty()) add(opts, "override_address", jstr(o.override_address));
  if (o.override_port) add(opts, "override_port", juint(*o.override_port));
  if (o.udp_timeout_s) add(opts, "udp_timeout", jstr(std::to_string(*o.udp_timeout_s) + "s"));
  add(root, "route_options", std::move(opts));
  std::printf("%s\n", json::serialize(root, true).c_str());
}

int explain(const std::vector<std::string>& args) {
  const char* cmd = "route explain";
  Options opt;
  ArgParser p;
  p.option({"-c", "--config"}, &opt.config);
  p.option({"-D", "--directory"}, &opt.dir);
  p.option({"--domain"}, &opt.domain);
  p.option({"--ip"}, &opt.ip);
  p.option({"--port"}, &opt.port);
  p.option({"--network"}, &opt.network);
  p.option({"--source"}, &opt.source);
  p.option({"--inbound"}, &opt.inbound);
  p.option({"--protocol"}, &opt.protocol);
  p.option({"--client"}, &opt.client);
  p.option({"--user"}, &opt.user);
  p.flag({"--json"}, &opt.json);
  if (!p.parse(args)) return usageError(cmd, p.error(), kExplainHelp);
  if (p.help()) return printHelp(kExplainHelp);
  if (!p.positional().empty()) {
    return usageError(cmd, "unexpected argument \"" + p.positional()[0] + "\"", kExplainHelp);
  }
  if (opt.config.empty()) return usageError(cmd, "missing -c FILE", kExplainHelp);
  if (opt.domain.empty() && opt.ip.empty()) {
    return usageError(cmd, "give the destination with --domain and/or --ip", kExplainHelp);
  }
  if (opt.network != "tcp" && opt.network != "udp") {
    return usageError(cmd, "--network must be tcp or udp", kExplainHelp);
  }

  conn::InboundContext ctx;
  ctx.network = opt.network;
  ctx.inbound_tag = opt.inbound;
  ctx.protocol = opt.protocol;
  ctx.client = opt.client;
  ctx.user = opt.user;
  uint16_t port = 0;
  if (!opt.port.empty()) {
    auto [end, ec] = std::from_chars(opt.port.data(), opt.port.data() + opt.port.size(), port);
    if (ec != std::errc() || end != opt.port.data() + opt.port.size()) {
      return usageError(cmd, "bad --port \"" + opt.port + "\" (0-65535)", kExplainHelp);
    }
  }
  if (!opt.ip.empty()) {
    auto ip = IpAddress::parse(opt.ip);
    if (!ip) return usageError(cmd, "bad --ip \"" + opt.ip + "\"", kExplainHelp);
    ctx.destination.ip = *ip;
    ctx.destination.port = port;
    // A connection to an IP whose domain was sniffed (TLS SNI, HTTP Host).
    if (!opt.domain.empty()) ctx.sniffed_domain = normalizeDomain(opt.domain);
  } else {
    if (IpAddress::parse(opt.domain)) {
      return usageError(cmd, "--domain \"" + opt.domain + "\" is an IP address; use --ip",
                        kExplainHelp);
    }
    ctx.destination = Destination::fromHost(opt.domain, port);
  }
  if (!opt.source.empty()) {
    if (auto sa = SocketAddress::parse(opt.source)) {
      ctx.source = *sa;
    } else if (auto ip = IpAddress::parse(opt.source)) {
      ctx.source = SocketAddress(*ip, 0);
    } else {
      return usageError(cmd, "bad --source \"" + opt.source + "\" (IP, IP:PORT or [IPv6]:PORT)",
                        kExplainHelp);
    }
  }
  if (!opt.dir.empty() && chdir(opt.dir.c_str()) != 0) {
    return failure(cmd, "cannot change to directory " + opt.dir);
  }

  DiagList diags;
  auto cfg = config::load(opt.config, diags);
  if (!cfg || !cfg->engine) {
    std::fputs(config::formatDiags(diags).c_str(), stderr);
    std::fprintf(stderr, "veer %s: %s has errors (see 'veer check -c %s')\n", cmd,
                 opt.config.c_str(), opt.config.c_str());
    return kExitFailure;
  }
  if (!opt.inbound.empty()) {
    bool known = false;
    for (const auto& in : cfg->inbounds) known |= in.tag == opt.inbound;
    if (!known) {
      std::fprintf(stderr, "veer %s: note: the config has no inbound tagged \"%s\"\n", cmd,
                   opt.inbound.c_str());
    }
  }

  // The same input the router builds for a connection (RulesDecider).
  rules::MatchInput in = route::RulesDecider::matchInput(ctx);
  const rules::RuleEngine& engine = *cfg->engine;
  rules::Trace trace;
  std::vector<Step> steps;
  Outcome o;
  size_t index = 0;
  while (true) {
    rules::MatchResult r = engine.matchFrom(in, index, &trace);
    for (size_t k = steps.size(); k < trace.steps.size(); ++k) {
      Step s;
      s.trace = trace.steps[k];
      steps.push_back(std::move(s));
    }
    if (!r.matched()) {
      o.final = true;
      o.outbound = cfg->finalOutbound();
      if (!cfg->route.final_outbound.empty()) {
        const rules::SourcePos& fp = cfg->route.final_pos;
        std::string where = rules::formatPos(fp);
        // route.final in the config, or `final => X` in the rules file.
        bool in_rules_file = !fp.file.empty() && fp.file != cfg->file;
        o.final_source = std::string(in_rules_file ? "final" : "route.final") +
                         (where.empty() ? "" : " at " + where);
      } else if (!cfg->outbounds.empty()) {
        o.final_source = "no route.final: the first outbound";
      } else {
        o.final_source = "no outbounds: the implicit direct outbound";
      }
      break;
    }
    Step& s = steps.back();
    const rules::RuleAction* a = r.action;
    if (a == nullptr) {
      // A rule without an action: the router stops here and uses the final outbound.
      s.note = "rule without an action: the final outbound is used";
      o.rule = r.index;
      o.outbound = cfg->finalOutbound();
      break;
    }
    s.action = rules::describeAction(*a);
    bool done = true;
    switch (a->type) {
      case rules::RuleAction::Type::Route:
        applyOptions(*a, o);
        o.action = "route";
        o.outbound = a->outbound;
        break;
      case rules::RuleAction::Type::Reject:
        o.action = "reject";
        o.reject_method = a->reject_method;
        break;
      case rules::RuleAction::Type::HijackDns:
        o.action = "hijack-dns";
        break;
      case rules::RuleAction::Type::RouteOptions:
        applyOptions(*a, o);
        s.note = "action " + s.action + ": options collected; explain does not carry them out, "
                 "matching goes on with the next rule";
        done = false;
        break;
      case rules::RuleAction::Type::Sniff:
      case rules::RuleAction::Type::Resolve:
        s.note = "action " + s.action +
                 ": not carried out by explain (give --protocol/--domain or --ip for its "
                 "result); matching goes on with the next rule";
        done = false;
        break;
    }
    if (done) {
      o.rule = r.index;
      break;
    }
    index = r.index + 1;
  }
  if (opt.json) {
    printJson(ctx, in, steps, o);
  } else {
    printHuman(ctx, in, steps, o, engine.size());
  }
  return kExitOk;
}

}  // namespace

int cmdRoute(const std::vector<std::string>& args) {
  if (args.empty()) return usageError("route", "missing command", kRouteHelp);
  const std::string& sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "-h" || sub == "--help" || sub == "help") return printHelp(kRouteHelp);
  if (sub == "explain") return explain(rest);
  return usageError("route", "unknown command \"" + sub + "\"", kRouteHelp);
}

}  // namespace veer::app
