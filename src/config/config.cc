#include "config/config.h"
#include "tls/client.h"
#include "tls/options_json.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <map>
#include <mutex>
#include <functional>
#include <set>

#include "base/file.h"
#include "outbound/shadowsocks_method.h"
#include "rules/dsl.h"
#include "rules/rule_json.h"
#include "rules/ruleset_cache.h"
#include "rules/ruleset_json.h"
#include "rules/srs.h"

namespace veer::config {

namespace {

// Texts of the files read by load(), so that diagnostics can show the offending line.
std::map<std::string, std::string>& sourceTexts() {
  static std::map<std::string, std::string> texts;
  return texts;
}
std::mutex g_texts_mu;

void rememberText(const std::string& file, const std::string& text) {
  std::lock_guard<std::mutex> lock(g_texts_mu);
  sourceTexts()[file] = text;
}

std::optional<std::string> readWholeFile(const std::string& path) { return readFile(path); }

std::string dirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

// Relative paths in a config are relative to the config file's directory (so an example works
// from any working directory); sing-box resolves them against the working directory, which is
// the same thing when veer runs from the config's directory, as OpenWrt's init script does.
std::string resolvePath(const std::string& config_file, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return dirOf(config_file) + p;
}

rules::SourcePos posOf(const json::Value& v, const std::string& file, const std::string& path) {
  rules::SourcePos p;
  p.file = file;
  p.line = v.pos.line;
  p.column = v.pos.column;
  p.path = path;
  return p;
}

void errorAtPos(DiagList& d, const rules::SourcePos& p, const std::string& msg,
                const std::string& code = "invalid") {
  d.error(p.file, p.line, p.column, p.path, msg, code);
}

// Fields sing-box has that veer does not implement: named in the error so that a user knows it
// is not a typo.
const std::set<std::string>& knownUnimplementedTop() {
  static const std::set<std::string> s = {"ntp", "endpoints", "certificate", "services"};
  return s;
}

// The raw member `key` of the object an ObjectReader reads (for positions).
const json::Value* v_of(json::ObjectReader& r, std::string_view key) { return r.get(key); }

class Loader {
 public:
  Loader(Config& cfg, DiagList& diags, const LoadOptions& opts)
      : cfg_(cfg), d_(diags), opts_(opts), file_(cfg.file) {}

  void run(const json::Value& root) {
    json::ObjectReader r(root, "", file_, d_);
    if (!r.ok()) return;
    if (const auto* v = r.get("log")) parseLog(*v);
    if (const auto* v = r.get("dns")) {
      cfg_.has_dns = true;
      cfg_.dns = *v;
      if (!v->isObject()) {
        r.errorAt(*v, "dns", std::string("expected an object, got ") + v->typeName());
      }
    }
    if (const auto* v = r.get("inbounds")) parseList(*v, "inbounds", [&](const json::Value& e, const std::string& p) { parseInbound(e, p); });
    if (const auto* v = r.get("outbounds")) parseList(*v, "outbounds", [&](const json::Value& e, const std::string& p) { parseOutbound(e, p); });
    if (const auto* v = r.get("route")) parseRoute(*v);
    if (const auto* v = r.get("experimental")) parseExperimental(*v);
    for (const auto& name : knownUnimplementedTop()) {
      if (const auto* v = r.get(name)) {
        r.errorAt(*v, name, "\"" + name + "\" is not implemented by veer");
      }
    }
    r.finish();
    crossCheck();
  }

 private:
  template <typename F>
  void parseList(const json::Value& v, const std::string& path, F each) {
    if (!v.isArray()) {
      d_.error(file_, v.pos.line, v.pos.column, path,
               "expected a list for \"" + path + "\", got " + v.typeName(), "type");
      return;
    }
    for (size_t i = 0; i < v.items.size(); ++i) each(v.items[i], path + "[" + std::to_string(i) + "]");
  }

  // experimental: cache_file (FakeIP persistence) and clash_api (the control API);
  // v2ray_api and debug are errors.
  void parseExperimental(const json::Value& v) {
    json::ObjectReader r(v, "experimental", file_, d_);
    if (!r.ok()) return;
    if (const auto* cv = r.get("cache_file")) {
      json::ObjectReader c(*cv, "experimental.cache_file", file_, d_);
      if (c.ok()) {
        CacheFileOptions& o = cfg_.cache_file;
        c.boolean("enabled", o.enabled);
        std::string path = "cache.db";  // sing-box's default
        c.str("path", path);
        if (path.empty()) path = "cache.db";
        o.path = resolvePath(file_, path);
        c.str("cache_id", o.cache_id);
        if (o.cache_id.size() > 255) c.error("cache_id", "cache_id is longer than 255 bytes");
        c.boolean("store_fakeip", o.store_fakeip);
        for (const char* f : {"store_rdrc", "rdrc_timeout", "store_dns"}) {
          if (const auto* fv = c.get(f)) {
            c.errorAt(*fv, c.memberPath(f),
                      std::string("cache_file field \"") + f + "\" is not implemented by veer");
          }
        }
        c.finish();
      }
    }
    if (const auto* av = r.get("clash_api")) {
      json::ObjectReader a(*av, "experimental.clash_api", file_, d_);
      if (a.ok()) {
        ClashApiOptions& o = cfg_.clash_api;
        if (a.str("external_controller", o.external_controller) &&
            !o.external_controller.empty()) {
          std::string text = o.external_controller;
          if (text[0] == ':') text = "0.0.0.0" + text;
          if (!SocketAddress::parse(text)) {
            a.error("external_controller", "expected an address and port, e.g. 127.0.0.1:9090");
          }
        }
        o.enabled = !o.external_controller.empty();  // as sing-box: no controller, no API
        a.str("secret", o.secret);
        std::string mode;
        if (a.str("default_mode", mode) && !mode.empty() && mode != "rule" && mode != "Rule") {
          a.error("default_mode", "veer only has the \"rule\" mode");
        }
        for (const char* f : {"external_ui", "external_ui_download_url",
                              "external_ui_download_detour", "access_control_allow_origin",
                              "access_control_allow_private_network", "store_mode",
                              "store_selected", "store_fakeip", "cache_file", "cache_id"}) {
          if (const auto* fv = a.get(f)) {
            a.errorAt(*fv, a.memberPath(f),
                      std::string("clash_api field \"") + f + "\" is not implemented by veer");
          }
        }
        a.finish();
      }
    }
    for (const char* f : {"v2ray_api", "debug"}) {
      if (const auto* fv = r.get(f)) {
        r.errorAt(*fv, r.memberPath(f),
                  std::string("\"experimental.") + f + "\" is not implemented by veer");
      }
    }
    r.finish();
  }

  void parseLog(const json::Value& v) {
    json::ObjectReader r(v, "log", file_, d_);
    if (!r.ok()) return;
    r.boolean("disabled", cfg_.log.disabled);
    std::string level;
    if (r.str("level", level)) {
      auto l = log::parseLevel(level);
      if (!l) {
        r.error("level", "unknown log level \"" + level +
                             "\" (trace, debug, info, warn, error, fatal, panic)");
      } else {
        cfg_.log.level = *l;
      }
    }
    r.str("output", cfg_.log.output);
    r.boolean("timestamp", cfg_.log.timestamp);
    r.finish();
  }

  void parseListenFields(json::ObjectReader& r, InboundOptions& in) {
    r.str("listen", in.listen);
    if (!in.listen.empty() && !IpAddress::parse(in.listen)) {
      r.error("listen", "listen address \"" + in.listen + "\" is not an IP address");
    }
    r.u16("listen_port", in.listen_port);
    r.boolean("tcp_fast_open", in.tcp_fast_open);
    r.boolean("reuse_addr", in.reuse_addr);
    uint64_t ms;
    if (r.durationMs("udp_timeout", ms)) in.udp_timeout_ms = static_cast<uint32_t>(ms);
    for (const char* f : {"bind_interface", "routing_mark", "netns", "tcp_multi_path",
                          "udp_fragment", "tcp_keep_alive", "tcp_keep_alive_interval", "detour",
                          "disable_tcp_keep_alive"}) {
      if (const auto* v = r.get(f)) {
        r.errorAt(*v, r.memberPath(f),
                  std::string("inbound field \"") + f + "\" is not implemented by veer");
      }
    }
    // Legacy sniffing (sing-box <= 1.12): still honoured, as older configs rely on it, with a
    // warning that names the replacement.
    if (r.boolean("sniff", in.sniff) && in.sniff) {
      const json::Value* sv = v_of(r, "sniff");
      d_.warning(file_, sv ? sv->pos.line : 0, sv ? sv->pos.column : 0, r.memberPath("sniff"),
                 "inbound \"sniff\" is deprecated (removed in sing-box 1.13); veer still honours "
                 "it; the replacement is a rule {\"inbound\": \"" + in.tag +
                     "\", \"action\": \"sniff\"}",
                 "deprecated");
    }
    r.boolean("sniff_override_destination", in.sniff_override_destination);
    uint64_t sniff_ms;
    if (r.durationMs("sniff_timeout", sniff_ms)) in.sniff_timeout_ms = static_cast<uint32_t>(sniff_ms);
    // Removed in sing-box 1.13 (replaced by route actions): name the replacement.
    for (const char* f : {"domain_strategy", "udp_disable_domain_unmapping"}) {
      if (const auto* v = r.get(f)) {
        r.errorAt(*v, r.memberPath(f),
                  std::string("legacy inbound field \"") + f +
                      "\" was removed in sing-box 1.13; use a route rule action (sniff, resolve, "
                      "route-options)");
      }
    }
  }

  void parseInbound(const json::Value& v, const std::string& path) {
    json::ObjectReader r(v, path, file_, d_);
    if (!r.ok()) return;
    InboundOptions in;
    in.pos = posOf(v, file_, path);
    if (!r.str("type", in.type)) {
      r.error("type", "missing inbound \"type\"");
      return;
    }
    r.str("tag", in.tag);
    if (in.type == "mixed" || in.type == "socks" || in.type == "http") {
      parseListenFields(r, in);
      if (const auto* u = r.get("users")) {
        parseList(*u, r.memberPath("users"), [&](const json::Value& e, const std::string& p) {
          json::ObjectReader ur(e, p, file_, d_);
          if (!ur.ok()) return;
          UserOption user;
          ur.str("username", user.username);
          ur.str("password", user.password);
          ur.finish();
          in.users.push_back(user);
        });
      }
      if (const auto* s = r.get("set_system_proxy")) {
        r.errorAt(*s, r.memberPath("set_system_proxy"),
                  "\"set_system_proxy\" is not implemented by veer");
      }
    } else if (in.type == "direct") {
      parseListenFields(r, in);
      r.str("network", in.network);
      if (!in.network.empty() && in.network != "tcp" && in.network != "udp") {
        r.error("network", "network must be \"tcp\" or \"udp\" (or absent for both)");
      }
      r.str("override_address", in.override_address);
      r.u16("override_port", in.override_port);
    } else if (in.type == "redirect") {
      parseListenFields(r, in);
    } else if (in.type == "tproxy") {
      parseListenFields(r, in);
      r.str("network", in.network);
      if (!in.network.empty() && in.network != "tcp" && in.network != "udp") {
        r.error("network", "network must be \"tcp\" or \"udp\" (or absent for both)");
      }
    } else {
      const json::Value* t = v.find("type");
      d_.error(file_, t->pos.line, t->pos.column, path + ".type",
               "inbound type \"" + in.type + "\" is not implemented by veer (mixed, socks, "
               "http, direct, redirect, tproxy)",
               "unsupported");
      // Its other fields belong to a type veer does not know: not reported one by one.
      return;
    }
    r.finish();
    cfg_.inbounds.push_back(std::move(in));
  }

  void parseOutbound(const json::Value& v, const std::string& path) {
    json::ObjectReader r(v, path, file_, d_);
    if (!r.ok()) return;
    OutboundOptions out;
    out.pos = posOf(v, file_, path);
    if (!r.str("type", out.type)) out.type = "";
    r.str("tag", out.tag);
    auto dialFields = [&](bool allow_detour) {
      uint64_t ms;
      if (r.durationMs("connect_timeout", ms)) out.connect_timeout_ms = static_cast<uint32_t>(ms);
      if (r.durationMs("fallback_delay", ms)) out.fallback_delay_ms = static_cast<uint32_t>(ms);
      r.u32("routing_mark", out.routing_mark);
      r.str("bind_interface", out.bind_interface);
      if (r.str("inet4_bind_address", out.inet4_bind_address)) {
        auto ip = IpAddress::parse(out.inet4_bind_address);
        if (!ip || !ip->isV4()) r.error("inet4_bind_address", "not an IPv4 address");
      }
      if (r.str("inet6_bind_address", out.inet6_bind_address)) {
        auto ip = IpAddress::parse(out.inet6_bind_address);
        if (!ip || !ip->isV6()) r.error("inet6_bind_address", "not an IPv6 address");
      }
      r.boolean("tcp_fast_open", out.tcp_fast_open);
      if (r.str("domain_strategy", out.domain_strategy)) {
        static const std::set<std::string> ok = {"", "prefer_ipv4", "prefer_ipv6", "ipv4_only",
                                                 "ipv6_only"};
        if (!ok.count(out.domain_strategy)) {
          r.error("domain_strategy", "unknown domain_strategy \"" + out.domain_strategy +
                                         "\" (prefer_ipv4, prefer_ipv6, ipv4_only, ipv6_only)");
        }
      }
      if (allow_detour && r.str("detour", out.detour)) {
        const json::Value* dv = v_of(r, "detour");
        out.detour_pos = posOf(dv ? *dv : v, file_, r.memberPath("detour"));
      }
      for (const char* f : {"detour", "netns", "tcp_multi_path", "udp_fragment",
                            "tcp_keep_alive", "tcp_keep_alive_interval", "domain_resolver",
                            "network_strategy", "network_type", "fallback_network_type",
                            "override_address", "override_port", "proxy_protocol",
                            "reuse_addr", "disable_tcp_keep_alive"}) {
        if (allow_detour && std::string_view(f) == "detour") continue;
        if (const auto* fv = r.get(f)) {
          r.errorAt(*fv, r.memberPath(f),
                    std::string("outbound field \"") + f + "\" is not implemented by veer");
        }
      }
    };
    if (out.type == "direct") {
      dialFields(false);
    } else if (out.type == "socks" || out.type == "http" || out.type == "trojan") {
      dialFields(true);
      parseProxyOutbound(r, v, path, out);
    } else if (out.type == "shadowsocks") {
      dialFields(true);
      parseShadowsocksOutbound(r, v, path, out);
    } else if (out.type == "selector" || out.type == "urltest") {
      parseGroupOutbound(r, v, path, out);
    } else if (out.type == "block" || out.type == "dns") {
      // no options
    } else {
      const json::Value* t = v.find("type");
      json::Pos p = t ? t->pos : v.pos;
      d_.error(file_, p.line, p.column, path + ".type",
               out.type.empty() ? "missing outbound \"type\""
                                : "outbound type \"" + out.type +
                                      "\" is not implemented by veer (direct, block, dns, socks, "
                                      "http, shadowsocks, trojan, selector, urltest)",
               "unsupported");
      // Its other fields belong to a type veer does not know: not reported one by one.
      return;
    }
    r.finish();
    cfg_.outbounds.push_back(std::move(out));
  }

  void parseProxyOutbound(json::ObjectReader& r, const json::Value& v, const std::string& path,
                          OutboundOptions& out) {
    if (!r.str("server", out.server) || out.server.empty()) r.error("server", "missing \"server\"");
    if (!r.u16("server_port", out.server_port)) {
      if (!r.has("server_port")) {
        d_.error(file_, v.pos.line, v.pos.column, path, "missing \"server_port\"", "invalid");
      }
    }
    if (out.type == "trojan") {
      if (!r.str("password", out.password) || out.password.empty()) {
        r.error("password", "a trojan outbound needs a \"password\"");
      }
      if (r.str("network", out.network) && !out.network.empty() && out.network != "tcp" &&
          out.network != "udp") {
        r.error("network", "network must be \"tcp\" or \"udp\" (or absent for both)");
      }
      if (const auto* t = r.get("tls")) parseTls(r, *t, out);
      for (const char* f : {"transport", "multiplex"}) {
        if (const auto* fv = r.get(f)) {
          r.errorAt(*fv, r.memberPath(f),
                    std::string("outbound field \"") + f + "\" is not implemented by veer");
        }
      }
      return;
    }
    r.str("username", out.username);
    r.str("password", out.password);
    if (out.type == "socks") {
      if (r.str("version", out.version) && out.version != "4" && out.version != "4a" &&
          out.version != "5") {
        r.error("version", "socks version must be \"4\", \"4a\" or \"5\"");
      }
      if (r.str("network", out.network) && !out.network.empty() && out.network != "tcp" &&
          out.network != "udp") {
        r.error("network", "network must be \"tcp\" or \"udp\" (or absent for both)");
      }
      for (const char* f : {"udp_over_tcp"}) {
        if (const auto* fv = r.get(f)) {
          r.errorAt(*fv, r.memberPath(f),
                    std::string("outbound field \"") + f + "\" is not implemented by veer");
        }
      }
    } else {
      if (const auto* h = r.get("headers")) {
        if (!h->isObject()) {
          r.errorAt(*h, r.memberPath("headers"), "expected an object of header names to values");
        } else {
          for (const auto& m : h->members) {
            if (!m.value.isString()) {
              r.errorAt(m.value, r.memberPath("headers") + "." + m.key, "expected a string");
            } else {
              out.headers.emplace_back(m.key, m.value.str);
            }
          }
        }
      }
      r.markUsed("path");
      if (const auto* t = r.get("tls")) parseTls(r, *t, out);
    }
  }

  // The outbound `tls` object (tls/options_json.h, shared with the DNS tls/https servers).
  void parseTls(json::ObjectReader& parent, const json::Value& v, OutboundOptions& out) {
    if (auto c = tls::parseTlsObject(parent, v, out.server, out.tls)) out.tls_config = c;
  }

  // sing-box option/shadowsocks.go: server, server_port, method, password, network; the AEAD
  // methods only (outbound/shadowsocks_method.h).
  void parseShadowsocksOutbound(json::ObjectReader& r, const json::Value& v,
                                const std::string& path, OutboundOptions& out) {
    if (!r.str("server", out.server) || out.server.empty()) r.error("server", "missing \"server\"");
    if (!r.u16("server_port", out.server_port) && !r.has("server_port")) {
      d_.error(file_, v.pos.line, v.pos.column, path, "missing \"server_port\"", "invalid");
    }
    if (r.str("method", out.method)) {
      if (Status st = outbound::validateShadowsocksMethod(out.method); !st) {
        r.error("method", st.error().message());
      }
    } else if (!r.has("method")) {
      d_.error(file_, v.pos.line, v.pos.column, path, "missing shadowsocks \"method\"",
               "invalid");
    }
    if (r.str("password", out.password)) {
      if (out.password.empty()) r.error("password", "empty shadowsocks \"password\"");
    } else if (!r.has("password")) {
      d_.error(file_, v.pos.line, v.pos.column, path, "missing shadowsocks \"password\"",
               "invalid");
    }
    if (r.str("network", out.network) && !out.network.empty() && out.network != "tcp" &&
        out.network != "udp") {
      r.error("network", "network must be \"tcp\" or \"udp\" (or absent for both)");
    }
    for (const char* f : {"plugin", "plugin_opts", "udp_over_tcp", "multiplex"}) {
      if (const auto* fv = r.get(f)) {
        r.errorAt(*fv, r.memberPath(f),
                  std::string("outbound field \"") + f + "\" is not implemented by veer");
      }
    }
  }

  void parseGroupOutbound(json::ObjectReader& r, const json::Value& v, const std::string& path,
                          OutboundOptions& out) {
    if (!r.strList("outbounds", out.members) || out.members.empty()) {
      d_.error(file_, v.pos.line, v.pos.column, path + ".outbounds",
               "a " + out.type + " outbound needs a non-empty \"outbounds\" list", "invalid");
    }
    const json::Value* mv = v_of(r, "outbounds");
    out.members_pos = posOf(mv ? *mv : v, file_, r.memberPath("outbounds"));
    r.boolean("interrupt_exist_connections", out.interrupt_exist_connections);
    if (out.type == "selector") {
      if (r.str("default", out.default_member)) {
        const json::Value* dv = v_of(r, "default");
        out.default_pos = posOf(dv ? *dv : v, file_, r.memberPath("default"));
      }
    } else {
      if (r.str("url", out.url) && out.url.rfind("http://", 0) != 0 &&
          out.url.rfind("https://", 0) != 0) {
        r.error("url", "url must be an http:// or https:// URL");
      }
      if (!r.has("url")) out.url = "https://www.gstatic.com/generate_204";
      uint64_t ms;
      if (r.durationMs("interval", ms)) {
        if (ms == 0) r.error("interval", "interval must be positive");
        out.interval_ms = static_cast<uint32_t>(ms);
      }
      if (const auto* tv = r.get("tolerance")) {
        if (!tv->isInteger() || tv->type == json::Value::Type::Int) {
          r.errorAt(*tv, r.memberPath("tolerance"), "tolerance must be a number of milliseconds");
        } else {
          out.tolerance_ms = static_cast<uint32_t>(tv->u);
        }
      }
      if (const auto* iv = r.get("idle_timeout")) {
        r.errorAt(*iv, r.memberPath("idle_timeout"),
                  "outbound field \"idle_timeout\" is not implemented by veer");
      }
    }
  }

  void parseRoute(const json::Value& v) {
    json::ObjectReader r(v, "route", file_, d_);
    if (!r.ok()) return;
    RouteOptions& ro = cfg_.route;
    if (const auto* rules = r.get("rules")) {
      parseList(*rules, "route.rules", [&](const json::Value& e, const std::string& p) {
        rules::RuleSpec spec;
        if (rules::parseRouteRule(e, p, file_, d_, spec)) ro.rules.push_back(std::move(spec));
      });
    }
    if (r.str("final", ro.final_outbound)) {
      ro.final_pos = posOf(*v.find("final"), file_, "route.final");
    }
    if (r.str("rules_file", ro.rules_file)) loadRulesFile(*v.find("rules_file"));
    if (const auto* rs = r.get("rule_set")) {
      parseList(*rs, "route.rule_set", [&](const json::Value& e, const std::string& p) {
        parseRuleSetDef(e, p);
      });
    }
    for (const char* g : {"geoip", "geosite"}) {
      if (const auto* gv = r.get(g)) {
        std::string gp = std::string("route.") + g;
        json::ObjectReader gr(*gv, gp, file_, d_);
        if (!gr.ok()) continue;
        std::string path;
        gr.str("path", path);
        for (const char* f : {"download_url", "download_detour"}) {
          if (const auto* fv = gr.get(f)) {
            gr.errorAt(*fv, gr.memberPath(f),
                       std::string("\"") + f + "\" is not implemented by veer; download the file "
                                               "yourself (see geodata/README.md)");
          }
        }
        gr.finish();
        (std::string(g) == "geoip" ? ro.geoip_path : ro.geosite_path) = resolvePath(file_, path);
      }
    }
    r.u32("default_mark", ro.default_mark);
    r.boolean("resolve_on_demand", ro.resolve_on_demand);
    r.str("default_interface", ro.default_interface);
    bool auto_detect = false;
    if (r.boolean("auto_detect_interface", auto_detect) && auto_detect) {
      r.error("auto_detect_interface",
              "\"auto_detect_interface\" is not implemented by veer; set default_interface or "
              "bind_interface");
    }
    for (const char* f : {"default_domain_resolver", "default_network_strategy",
                          "override_android_vpn", "find_process", "default_network_type",
                          "default_fallback_network_type", "default_fallback_delay"}) {
      if (const auto* fv = r.get(f)) {
        r.errorAt(*fv, r.memberPath(f),
                  std::string("route field \"") + f + "\" is not implemented by veer");
      }
    }
    r.finish();
  }

  void loadRulesFile(const json::Value& at) {
    std::string path = resolvePath(file_, cfg_.route.rules_file);
    auto text = readWholeFile(path);
    if (!text) {
      d_.error(file_, at.pos.line, at.pos.column, "route.rules_file",
               "cannot read rules file \"" + path + "\"", "io");
      return;
    }
    rememberText(path, *text);
    rules::DslFile f = rules::parseDsl(*text, path, rules::DslMode::Route, d_);
    for (auto& rule : f.rules) cfg_.route.rules.push_back(std::move(rule));
    if (f.final_outbound) {
      if (!cfg_.route.final_outbound.empty()) {
        d_.warning(path, f.final_pos.line, f.final_pos.column, "",
                   "\"final\" in the rules file is overridden by route.final (\"" +
                       cfg_.route.final_outbound + "\")",
                   "final-overridden");
      } else {
        cfg_.route.final_outbound = *f.final_outbound;
        cfg_.route.final_pos = f.final_pos;
      }
    }
  }

  void parseRuleSetDef(const json::Value& e, const std::string& path) {
    json::ObjectReader r(e, path, file_, d_);
    if (!r.ok()) return;
    RuleSetDef def;
    def.pos = posOf(e, file_, path);
    r.str("type", def.type);
    if (!r.str("tag", def.tag)) r.error("tag", "missing rule-set \"tag\"");
    if (def.type == "inline") {
      // Inline rule sets: {"type":"inline","tag":..,"rules":[...]} (no version field).
      rules::RuleSetSpec spec;
      if (const auto* rules = r.get("rules")) {
        parseList(*rules, r.memberPath("rules"), [&](const json::Value& re, const std::string& p) {
          rules::RuleSpec s;
          if (rules::parseHeadlessRule(re, p, file_, d_, s)) spec.rules.push_back(std::move(s));
        });
      }
      addRuleSet(def, std::move(spec.rules));
      r.finish();
      return;
    }
    if (def.type.empty()) def.type = "local";
    if (def.type == "remote") {
      parseRemoteRuleSet(r, e, def);
      return;
    }
    if (def.type != "local") {
      r.error("type", "unknown rule-set type \"" + def.type + "\" (local, remote, inline)");
      r.finish();
      return;
    }
    r.str("format", def.format);
    if (!r.str("path", def.path)) {
      r.error("path", "missing rule-set \"path\"");
      r.finish();
      return;
    }
    r.finish();
    std::string p = resolvePath(file_, def.path);
    if (def.format.empty()) {
      // sing-box infers the format from the extension.
      if (p.size() > 4 && p.substr(p.size() - 4) == ".srs") def.format = "binary";
      else if (p.size() > 5 && p.substr(p.size() - 5) == ".json") def.format = "source";
      else if (p.size() > 5 && p.substr(p.size() - 5) == ".veer") def.format = "dsl";
    }
    auto text = readWholeFile(p);
    if (!text) {
      errorAtPos(d_, def.pos, "rule-set \"" + def.tag + "\": cannot read \"" + p + "\"", "io");
      failed_rule_sets_.insert(def.tag);  // its users are not "unknown rule-set" errors too
      return;
    }
    if (def.format == "binary") {
      auto spec = rules::readSrs(asBytes(*text), p);
      if (!spec) {
        errorAtPos(d_, def.pos, "rule-set \"" + def.tag + "\": " + spec.error().message(), "io");
        failed_rule_sets_.insert(def.tag);
        return;
      }
      addRuleSet(def, std::move(spec->rules));
    } else if (def.format == "source") {
      rememberText(p, *text);
      auto root = json::parse(*text, p);
      if (!root) {
        errorAtPos(d_, def.pos, root.error().message(), "syntax");
        failed_rule_sets_.insert(def.tag);
        return;
      }
      rules::RuleSetSpec spec;
      if (rules::parseRuleSetJson(*root, p, d_, spec)) {
        addRuleSet(def, std::move(spec.rules));
      } else {
        failed_rule_sets_.insert(def.tag);
      }
    } else if (def.format == "dsl") {
      rememberText(p, *text);
      rules::DslFile f = rules::parseDsl(*text, p, rules::DslMode::RuleSet, d_);
      addRuleSet(def, std::move(f.rules));
    } else {
      errorAtPos(d_, def.pos, "rule-set \"" + def.tag + "\": unknown format \"" + def.format +
                                  "\" (source, binary, dsl)");
    }
  }

  // A remote rule set: its fields, then its cached copy (if any) as its rules. No network here:
  // `veer run` downloads (src/route/remote_rule_set.h); `veer check` validates what is cached.
  void parseRemoteRuleSet(json::ObjectReader& r, const json::Value& e, RuleSetDef& def) {
    size_t errors_before = d_.errorCount();
    r.str("format", def.format);
    if (!r.str("url", def.url)) r.error("url", "missing rule-set \"url\"");
    if (r.str("download_detour", def.download_detour)) {
      def.detour_pos = posOf(*e.find("download_detour"), file_, r.memberPath("download_detour"));
    }
    uint64_t ms = 0;
    if (r.durationMs("update_interval", ms) && ms > 0) def.update_interval_ms = ms;
    for (const char* f : {"http_client", "initial_path"}) {
      if (const auto* fv = r.get(f)) {
        r.errorAt(*fv, r.memberPath(f),
                  std::string("rule-set field \"") + f + "\" is not implemented by veer");
      }
    }
    r.finish();
    if (def.url.empty() || d_.errorCount() > errors_before) {
      failed_rule_sets_.insert(def.tag);
      return;
    }
    std::string lower_url = def.url;
    for (auto& ch : lower_url) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if ((lower_url.rfind("http://", 0) != 0 && lower_url.rfind("https://", 0) != 0) ||
        lower_url.find("://") + 3 >= lower_url.size() || lower_url[lower_url.find("://") + 3] == '/') {
      errorAtPos(d_, def.pos, "rule-set \"" + def.tag + "\": url \"" + def.url +
                                  "\" is not an http:// or https:// URL with a host");
      failed_rule_sets_.insert(def.tag);
      return;
    }
    if (def.format.empty()) def.format = rules::ruleSetFormatFromUrl(def.url);
    if (def.format.empty()) {
      errorAtPos(d_, def.pos, "rule-set \"" + def.tag + "\": missing \"format\" (the URL does "
                                  "not end in .json or .srs): \"source\" or \"binary\"");
      failed_rule_sets_.insert(def.tag);
      return;
    }
    if (def.format != "source" && def.format != "binary") {
      errorAtPos(d_, def.pos, "rule-set \"" + def.tag + "\": unknown format \"" + def.format +
                                  "\" for a remote rule set (source, binary)");
      failed_rule_sets_.insert(def.tag);
      return;
    }
    // Beside the config, as every relative path in it (and experimental.cache_file's default).
    def.cache_path =
        rules::ruleSetCachePath(resolvePath(file_, rules::defaultRuleSetCacheDir()), def.tag);
    std::string why;
    auto c = rules::loadCachedRuleSet(def.cache_path);
    if (!c) {
      why = c.error().code() == ENOENT ? "" : c.error().message();
    } else if (c->url != def.url || c->format != def.format) {
      why = "the cached copy was downloaded from another url or in another format";
    } else {
      auto spec = rules::parseRuleSetBytes(c->content, def.format, def.cache_path);
      if (spec) {
        def.cached = true;
        addRuleSet(def, std::move(spec->rules));
        return;
      }
      why = "the cached copy is invalid: " + spec.error().message();
    }
    d_.warning(def.pos.file, def.pos.line, def.pos.column, def.pos.path,
               "remote rule-set \"" + def.tag + "\": " +
                   (why.empty() ? "no cached copy yet (" + def.cache_path + ")" : why) +
                   "; `veer run` downloads it from " + def.url +
                   " before it starts routing, and rules that use it match nothing from it "
                   "until a download succeeds",
               "remote-rule-set-not-cached");
    addRuleSet(def, {}, false);
  }

  void addRuleSet(const RuleSetDef& def, std::vector<rules::RuleSpec> rules,
                  bool warn_empty = true) {
    if (cfg_.route.rule_sets.count(def.tag)) {
      errorAtPos(d_, def.pos, "duplicate rule-set tag \"" + def.tag + "\"", "duplicate-tag");
      return;
    }
    if (rules.empty() && warn_empty) {
      d_.warning(def.pos.file, def.pos.line, def.pos.column, def.pos.path,
                 "rule-set \"" + def.tag + "\" is empty: rules that use it match nothing from it",
                 "empty-rule-set");
    }
    cfg_.route.rule_set_defs.push_back(def);
    cfg_.route.rule_sets[def.tag] = std::move(rules);
  }

  // Group members, selector defaults and detours name existing outbounds, without cycles.
  void checkOutboundRefs(const std::set<std::string>& out_tags) {
    std::map<std::string, std::vector<std::string>> edges;
    for (const auto& o : cfg_.outbounds) {
      for (const auto& m : o.members) {
        if (!out_tags.count(m)) {
          errorAtPos(d_, o.members_pos, o.type + " " + o.tag + ": unknown outbound \"" + m + "\"",
                     "unknown-outbound");
        }
        edges[o.tag].push_back(m);
      }
      if (!o.default_member.empty() &&
          std::find(o.members.begin(), o.members.end(), o.default_member) == o.members.end()) {
        errorAtPos(d_, o.default_pos,
                   "selector " + o.tag + ": default \"" + o.default_member +
                       "\" is not one of its outbounds",
                   "unknown-outbound");
      }
      if (!o.detour.empty()) {
        if (!out_tags.count(o.detour)) {
          errorAtPos(d_, o.detour_pos, o.tag + ": unknown detour outbound \"" + o.detour + "\"",
                     "unknown-outbound");
        }
        edges[o.tag].push_back(o.detour);
      }
    }
    // Depth-first search for cycles (0 = unvisited, 1 = on the stack, 2 = done).
    std::map<std::string, int> state;
    std::vector<std::string> stack;
    std::function<bool(const std::string&)> dfs = [&](const std::string& t) -> bool {
      state[t] = 1;
      stack.push_back(t);
      for (const auto& n : edges[t]) {
        if (state[n] == 1) {
          std::string chain;
          auto it = std::find(stack.begin(), stack.end(), n);
          for (; it != stack.end(); ++it) chain += *it + " -> ";
          chain += n;
          const OutboundOptions* o = cfg_.findOutbound(t);
          errorAtPos(d_, o->detour == n ? o->detour_pos : o->members_pos,
                     "outbound cycle: " + chain, "cycle");
          return true;
        }
        if (state[n] == 0 && out_tags.count(n) && dfs(n)) return true;
      }
      stack.pop_back();
      state[t] = 2;
      return false;
    };
    for (const auto& o : cfg_.outbounds) {
      if (state[o.tag] == 0 && dfs(o.tag)) break;
    }
  }

  // Everything that needs the whole config: tags, references, geodata, rule compilation.
  void crossCheck() {
    std::set<std::string> in_tags, out_tags;
    for (auto& in : cfg_.inbounds) {
      if (!in.tag.empty() && !in_tags.insert(in.tag).second) {
        errorAtPos(d_, in.pos, "duplicate inbound tag \"" + in.tag + "\"", "duplicate-tag");
      }
    }
    for (size_t i = 0; i < cfg_.outbounds.size(); ++i) {
      auto& out = cfg_.outbounds[i];
      if (out.tag.empty()) out.tag = i == 0 ? out.type : out.type + "-" + std::to_string(i);
      if (!out_tags.insert(out.tag).second) {
        errorAtPos(d_, out.pos, "duplicate outbound tag \"" + out.tag + "\"", "duplicate-tag");
      }
      if (cfg_.route.default_mark != 0 && out.routing_mark == 0) {
        out.routing_mark = cfg_.route.default_mark;
      }
      if (!cfg_.route.default_interface.empty() && out.bind_interface.empty()) {
        out.bind_interface = cfg_.route.default_interface;
      }
    }
    checkOutboundRefs(out_tags);
    for (const auto& def : cfg_.route.rule_set_defs) {
      if (!def.download_detour.empty() && !out_tags.count(def.download_detour)) {
        errorAtPos(d_, def.detour_pos,
                   "rule-set \"" + def.tag + "\": unknown download_detour outbound \"" +
                       def.download_detour + "\"",
                   "unknown-outbound");
      }
    }
    if (!cfg_.route.final_outbound.empty() && !out_tags.count(cfg_.route.final_outbound)) {
      errorAtPos(d_, cfg_.route.final_pos,
                 "route.final: unknown outbound \"" + cfg_.route.final_outbound + "\"",
                 "unknown-outbound");
    }
    // DNS rules: the same rule model, compiled against the same (shared) rule-set specs.
    bool dns_rules = cfg_.has_dns && cfg_.dns.isObject() && cfg_.dns.find("rules") != nullptr;
    if (dns_rules) dns::DnsRules::parse(cfg_.dns.find("rules"), file_, d_, dns_parsed_);
    // Unknown outbound tags and rule-set tags in rules (sing-box's check misses these,
    // SagerNet/sing-box#3926).
    std::function<void(const rules::RuleSpec&)> visit = [&](const rules::RuleSpec& rule) {
      if (rule.action) reportUnimplementedOptions(rule);
      if (rule.action && rule.action->type == rules::RuleAction::Type::Route &&
          !out_tags.count(rule.action->outbound) && !rule.action->outbound.empty()) {
        errorAtPos(d_, rule.pos, "unknown outbound \"" + rule.action->outbound + "\"",
                   "unknown-outbound");
      }
      for (const auto& tag : rule.rule_set) {
        if (!cfg_.route.rule_sets.count(tag) && !failed_rule_sets_.count(tag)) {
          errorAtPos(d_, rule.pos, "unknown rule-set \"" + tag + "\"", "unknown-rule-set");
        }
      }
      for (const auto& sub : rule.rules) visit(sub);
    };
    for (const auto& rule : cfg_.route.rules) visit(rule);
    for (const auto& rule : dns_parsed_.specs) visit(rule);
    for (const auto& in : cfg_.inbounds) {
      (void)in;
    }
    if (opts_.syntax_only || d_.hasErrors()) return;
    loadGeodata();
    if (d_.hasErrors()) return;
    rules::GeoSources sources{cfg_.geosite.get(), cfg_.geoip.get()};
    auto engine = rules::RuleEngine::compile(cfg_.route.rules, cfg_.route.rule_sets, sources, d_);
    checkGeoipCodes();  // after compiling, so that its errors and the compiler's show together
    if (engine && !d_.hasErrors()) {
      cfg_.engine = std::shared_ptr<rules::RuleEngine>(std::move(*engine));
    }
    if (dns_rules && !d_.hasErrors()) {
      cfg_.dns_rules =
          dns::DnsRules::compile(std::move(dns_parsed_), cfg_.route.rule_sets, sources, d_);
    }
  }

  // Action options that parse (sing-box has them) but that this build does not carry out: an
  // error naming each, never a silent no-op.
  void reportUnimplementedOptions(const rules::RuleSpec& rule) {
    const rules::RuleAction& a = *rule.action;
    std::vector<std::string> names;
    if (!a.network_strategy.empty()) names.push_back("network_strategy");
    if (a.fallback_delay_ms) names.push_back("fallback_delay");
    if (a.udp_disable_domain_unmapping) names.push_back("udp_disable_domain_unmapping");
    if (a.udp_connect) names.push_back("udp_connect");
    if (a.tls_fragment && a.tls_record_fragment) {
      errorAtPos(d_, rule.pos,
                 "\"tls_fragment\" and \"tls_record_fragment\" cannot be combined (as in sing-box)",
                 "invalid");
    }
    if (a.type == rules::RuleAction::Type::Resolve) {
      if (!a.resolve_server.empty()) names.push_back("server");
      if (a.disable_cache) names.push_back("disable_cache");
      if (a.rewrite_ttl) names.push_back("rewrite_ttl");
      if (!a.client_subnet.empty()) names.push_back("client_subnet");
    }
    for (const auto& n : names) {
      errorAtPos(d_, rule.pos, "rule option \"" + n + "\" is not implemented by veer yet",
                 "unsupported");
    }
  }

  // geoip/source_geoip codes the database does not have can never match: an error, when the
  // database lists its codes (sing-geoip does; GeoLite2-style databases do not).
  void checkGeoipCodes() {
    if (!cfg_.geoip) return;
    std::set<std::string> known;
    for (auto c : cfg_.geoip->codes()) {
      for (auto& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      known.insert(c);
    }
    if (known.empty()) return;
    std::function<void(const rules::RuleSpec&)> visit = [&](const rules::RuleSpec& r) {
      for (const auto* list : {&r.geoip, &r.source_geoip}) {
        for (std::string code : *list) {
          for (auto& ch : code) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          if (code != "private" && !known.count(code)) {
            errorAtPos(d_, r.pos, "unknown geoip code \"" + code + "\" (not in " +
                                      cfg_.route.geoip_path + ")",
                       "unknown-geoip");
          }
        }
      }
      for (const auto& sub : r.rules) visit(sub);
    };
    for (const auto& r : cfg_.route.rules) visit(r);
    for (const auto& [tag, set] : cfg_.route.rule_sets) {
      for (const auto& r : set) visit(r);
    }
  }

  bool uses(const char* field) const {
    std::function<bool(const rules::RuleSpec&)> any = [&](const rules::RuleSpec& r) {
      if (std::string(field) == "geoip" && (!r.geoip.empty() || !r.source_geoip.empty())) {
        return true;
      }
      if (std::string(field) == "geosite" && !r.geosite.empty()) return true;
      for (const auto& s : r.rules) {
        if (any(s)) return true;
      }
      return false;
    };
    for (const auto& r : cfg_.route.rules) {
      if (any(r)) return true;
    }
    for (const auto& r : dns_parsed_.specs) {
      if (any(r)) return true;
    }
    for (const auto& [tag, set] : cfg_.route.rule_sets) {
      for (const auto& r : set) {
        if (any(r)) return true;
      }
    }
    return false;
  }

  void loadGeodata() {
    // sing-box 1.8-1.11 defaults: geoip.db and geosite.db in the working directory.
    if (uses("geoip")) {
      std::string p = cfg_.route.geoip_path.empty() ? "geoip.db" : cfg_.route.geoip_path;
      auto db = rules::GeoipMmdb::open(p);
      if (!db) {
        d_.error(file_, 0, 0, "route.geoip", "geoip database: " + db.error().message(), "io");
      } else {
        cfg_.geoip = std::shared_ptr<rules::GeoipMmdb>(std::move(*db));
      }
    }
    if (uses("geosite")) {
      std::string p = cfg_.route.geosite_path.empty() ? "geosite.db" : cfg_.route.geosite_path;
      auto db = rules::GeositeDb::open(p);
      if (!db) {
        d_.error(file_, 0, 0, "route.geosite", "geosite database: " + db.error().message(), "io");
      } else {
        cfg_.geosite = std::shared_ptr<rules::GeositeDb>(std::move(*db));
      }
    }
  }

  Config& cfg_;
  DiagList& d_;
  LoadOptions opts_;
  std::set<std::string> failed_rule_sets_;  // defined, but their file could not be loaded
  dns::DnsRules::Parsed dns_parsed_;         // dns.rules, parsed in crossCheck()
  std::string file_;
};

}  // namespace

std::string Config::finalOutbound() const {
  if (!route.final_outbound.empty()) return route.final_outbound;
  if (!outbounds.empty()) return outbounds.front().tag;
  return "direct";
}

const OutboundOptions* Config::findOutbound(const std::string& tag) const {
  for (const auto& o : outbounds) {
    if (o.tag == tag) return &o;
  }
  return nullptr;
}

std::unique_ptr<Config> loadText(std::string text, const std::string& file, DiagList& diags,
                                 const LoadOptions& opts) {
  auto cfg = std::make_unique<Config>();
  cfg->file = file;
  cfg->text = std::move(text);
  rememberText(file, cfg->text);
  auto root = json::parse(cfg->text, file);
  if (!root) {
    // The message is "file:line:col: ..."; split it back into a positioned diagnostic.
    const std::string& m = root.error().message();
    Diag d;
    d.file = file;
    d.message = m;
    size_t a = m.find(':', file.size());
    if (m.rfind(file + ":", 0) == 0 && a != std::string::npos) {
      size_t b = m.find(':', a + 1);
      size_t c = b == std::string::npos ? b : m.find(':', b + 1);
      if (c != std::string::npos) {
        d.line = static_cast<uint32_t>(std::stoul(m.substr(a + 1, b - a - 1)));
        d.column = static_cast<uint32_t>(std::stoul(m.substr(b + 1, c - b - 1)));
        d.message = m.substr(c + 2);
      }
    }
    d.code = "syntax";
    diags.add(d);
    return nullptr;
  }
  Loader(*cfg, diags, opts).run(*root);
  if (diags.hasErrors()) return nullptr;
  return cfg;
}

std::unique_ptr<Config> load(const std::string& path, DiagList& diags, const LoadOptions& opts) {
  auto text = readWholeFile(path);
  if (!text) {
    diags.error(path, 0, 0, "", "cannot read config file", "io");
    return nullptr;
  }
  return loadText(std::move(*text), path, diags, opts);
}

std::string formatDiags(const DiagList& diags) {
  std::string out;
  for (const auto& d : diags.all()) {
    out += d.toString() + "\n";
    std::lock_guard<std::mutex> lock(g_texts_mu);
    auto it = sourceTexts().find(d.file);
    if (it != sourceTexts().end() && d.line != 0) {
      out += renderSourceLine(it->second, d.line, d.column);
    }
  }
  return out;
}

std::string formatDiagsJson(const DiagList& diags) {
  std::string out = "[";
  bool first = true;
  for (const auto& d : diags.all()) {
    if (!first) out += ",";
    first = false;
    out += "\n  {\"severity\": " +
           json::quote(d.severity == Diag::Severity::Error ? "error" : "warning") +
           ", \"file\": " + json::quote(d.file) + ", \"line\": " + std::to_string(d.line) +
           ", \"column\": " + std::to_string(d.column) + ", \"path\": " + json::quote(d.path) +
           ", \"code\": " + json::quote(d.code) + ", \"message\": " + json::quote(d.message) + "}";
  }
  out += first ? "]" : "\n]";
  return out;
}

}  // namespace veer::config
