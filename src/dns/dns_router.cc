#include "dns/dns_router.h"

#include <algorithm>
#include <limits>
#include <random>

#include <strings.h>

#include "base/log.h"
#include "dns/cares_transport.h"
#include "tls/options_json.h"

namespace veer::dns {

// ---- strategies and small parsers ---------------------------------------------------------

std::optional<Strategy> parseStrategy(std::string_view text) {
  if (text.empty() || text == "as_is") return Strategy::AsIs;
  if (text == "prefer_ipv4") return Strategy::PreferIpv4;
  if (text == "prefer_ipv6") return Strategy::PreferIpv6;
  if (text == "ipv4_only") return Strategy::Ipv4Only;
  if (text == "ipv6_only") return Strategy::Ipv6Only;
  return std::nullopt;
}

const char* strategyName(Strategy s) {
  switch (s) {
    case Strategy::AsIs: return "as_is";
    case Strategy::PreferIpv4: return "prefer_ipv4";
    case Strategy::PreferIpv6: return "prefer_ipv6";
    case Strategy::Ipv4Only: return "ipv4_only";
    case Strategy::Ipv6Only: return "ipv6_only";
  }
  return "?";
}

std::optional<ClientSubnet> parseClientSubnet(std::string_view text) {
  if (text.find('/') == std::string_view::npos) {
    auto ip = IpAddress::parse(text);
    if (!ip) return std::nullopt;
    return ClientSubnet{*ip, static_cast<uint8_t>(ip->size() * 8), 0};
  }
  auto p = IpPrefix::parse(text);
  if (!p) return std::nullopt;
  return ClientSubnet{p->address, p->bits, 0};
}

namespace {

std::optional<Rcode> parseRcodeName(std::string_view s) {
  if (s == "success") return Rcode::NoError;
  if (s == "format_error") return Rcode::FormErr;
  if (s == "server_failure") return Rcode::ServFail;
  if (s == "name_error") return Rcode::NxDomain;
  if (s == "not_implemented") return Rcode::NotImp;
  if (s == "refused") return Rcode::Refused;
  return std::nullopt;
}

// "1.1.1.1", "1.1.1.1:53", "::1", "[::1]:5353"; the host must be an IP literal.
std::optional<SocketAddress> parseHostPort(std::string_view text, uint16_t default_port) {
  if (auto ip = IpAddress::parse(text)) return SocketAddress(*ip, default_port);
  return SocketAddress::parse(text);
}

// "host", "host:853", "1.2.3.4:853", "[::1]:853", "::1" (a bare IPv6 address takes no port).
bool parseAuthority(std::string_view text, uint16_t default_port, std::string& host,
                    uint16_t& port) {
  port = default_port;
  if (text.empty()) return false;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(text.substr(1, close - 1));
    text.remove_prefix(close + 1);
    if (text.empty()) return IpAddress::parse(host).has_value();
    if (text.front() != ':') return false;
    text.remove_prefix(1);
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    host = std::string(text);
    return IpAddress::parse(host).has_value();
  } else {
    auto colon = text.find(':');
    host = std::string(text.substr(0, colon));
    if (colon == std::string_view::npos) return !host.empty();
    text.remove_prefix(colon + 1);
  }
  if (host.empty() || text.empty() || text.size() > 5) return false;
  uint32_t p = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p == 0 || p > 65535) return false;
  port = static_cast<uint16_t>(p);
  return true;
}

}  // namespace

// ---- reverse mapping ----------------------------------------------------------------------

class DnsRouter::ReverseMap {
 public:
  explicit ReverseMap(size_t capacity) : capacity_(capacity) {}
  void put(const IpAddress& ip, const std::string& domain) {
    auto it = map_.find(ip);
    if (it != map_.end()) {
      it->second->second = domain;
      lru_.splice(lru_.begin(), lru_, it->second);
      return;
    }
    if (map_.size() >= capacity_) {
      map_.erase(lru_.back().first);
      lru_.pop_back();
    }
    lru_.emplace_front(ip, domain);
    map_.emplace(ip, lru_.begin());
  }
  std::optional<std::string> get(const IpAddress& ip) const {
    auto it = map_.find(ip);
    if (it == map_.end()) return std::nullopt;
    return it->second->second;
  }

 private:
  using List = std::list<std::pair<IpAddress, std::string>>;
  size_t capacity_;
  List lru_;
  std::unordered_map<IpAddress, List::iterator, IpAddressHash> map_;
};

// ---- operations ---------------------------------------------------------------------------

struct DnsRouter::Op {
  bool is_lookup = true;
  Callback lookup_cb;
  ExchangeCallback exchange_cb;
  Strategy strategy = Strategy::AsIs;
  std::string name;
  uint16_t types[2] = {0, 0};
  int outstanding = 0;
  std::vector<uint64_t> waiters;
  std::optional<uint32_t> rewrite_ttl[2];
  std::optional<Result<Message>> results[2];
  bool dropped = false;  // a reject rule with method "drop" matched: send nothing back
  // exchange only
  Message query;
  size_t max_size = kMinUdpSize;
};

// ---- construction -------------------------------------------------------------------------

DnsRouter::DnsRouter(uv_loop_t* loop, DnsRouterOptions options, Cache::Options cache_options)
    : loop_(loop),
      options_(std::move(options)),
      deferrer_(Deferrer::create(loop)),
      cache_(cache_options),
      rng_state_(std::random_device{}() | 1u) {}

DnsRouter::~DnsRouter() {
  if (fakeip_save_timer_) fakeip_save_timer_->stop();
  if (auto s = saveFakeIp(); !s) LOG_WARN("dns: %s", s.error().message().c_str());
  ops_.clear();
  coalescer_.clear();
  transports_.clear();  // TransportPtr closes each one
}

Result<std::unique_ptr<DnsRouter>> DnsRouter::create(uv_loop_t* loop, const json::Value& dns,
                                                     const std::string& file, DiagList& diags,
                                                     DnsRouterOptions options) {
  Cache::Options co;
  if (dns.isObject()) {
    // Read the cache settings first: the cache is built with the router.
    if (const json::Value* v = dns.find("cache_capacity"); v && v->type == json::Value::Type::Uint) {
      // sing-box ignores capacities below 1024.
      if (v->u >= 1024) co.capacity = static_cast<size_t>(std::min<uint64_t>(v->u, 1u << 24));
    }
    if (const json::Value* v = dns.find("disable_expire"); v && v->isBool()) co.disable_expire = v->b;
  }
  std::unique_ptr<DnsRouter> r(new DnsRouter(loop, std::move(options), co));
  size_t before = diags.errorCount();
  r->parse(dns, file, diags);
  if (diags.errorCount() != before) {
    return unexpected(Error("dns: invalid configuration (" +
                            std::to_string(diags.errorCount() - before) + " errors)"));
  }
  return r;
}

bool DnsRouter::parse(const json::Value& dns, const std::string& file, DiagList& diags) {
  json::ObjectReader r(dns, "dns", file, diags);
  if (!r.ok()) return false;
  const json::Value* legacy_fakeip = r.get("fakeip");
  if (legacy_fakeip && !legacy_fakeip->isObject()) {
    r.error("fakeip", "expected an object for \"fakeip\"");
    legacy_fakeip = nullptr;
  }
  if (const json::Value* servers = r.get("servers")) {
    if (!servers->isArray()) {
      r.error("servers", "expected a list of servers");
    } else {
      for (size_t i = 0; i < servers->items.size(); ++i) {
        json::ObjectReader sr(servers->items[i], "dns.servers[" + std::to_string(i) + "]", file,
                              diags);
        if (!sr.ok()) {
          r.errorAt(servers->items[i], sr.path(), "expected an object for a DNS server");
          continue;
        }
        parseServer(sr, i, legacy_fakeip, diags);
        sr.finish();
      }
    }
  }
  bindResolvers(diags);
  const json::Value* rules_json = r.get("rules");
  if (r.str("final", final_)) {
    if (!by_tag_.count(final_)) r.error("final", "unknown DNS server \"" + final_ + "\"");
  } else if (!transports_.empty()) {
    final_ = transports_.front()->tag();  // sing-box: the first server is the default
  }
  std::string strategy;
  if (r.str("strategy", strategy)) {
    if (auto s = parseStrategy(strategy)) {
      default_strategy_ = *s;
    } else {
      r.error("strategy", "unknown strategy \"" + strategy + "\"");
    }
  }
  r.boolean("disable_cache", disable_cache_);
  bool ignored = false;
  r.boolean("disable_expire", ignored);  // read in create()
  r.boolean("independent_cache", independent_cache_);
  uint32_t capacity = 0;
  r.u32("cache_capacity", capacity);  // read in create(); this reports type errors
  bool reverse = false;
  r.boolean("reverse_mapping", reverse);
  if (reverse) reverse_ = std::make_unique<ReverseMap>(std::max<size_t>(capacity, 1024));
  std::string subnet;
  if (r.str("client_subnet", subnet)) {
    client_subnet_ = parseClientSubnet(subnet);
    if (!client_subnet_) r.error("client_subnet", "bad client_subnet \"" + subnet + "\"");
  }
  bindRules(rules_json, file, diags);
  if (transports_.empty() && (r.has("rules") || r.has("final"))) {
    r.error("servers", "DNS rules need at least one server");
  }
  r.finish();
  return true;
}

bool DnsRouter::addTransport(TransportPtr t, json::ObjectReader& r, DiagList& diags) {
  if (by_tag_.count(t->tag())) {
    r.error("tag", "duplicate DNS server tag \"" + t->tag() + "\"");
    return false;
  }
  by_tag_.emplace(t->tag(), t.get());
  if (auto* f = dynamic_cast<FakeIpTransport*>(t.get())) fakeip_.push_back(f);
  transports_.push_back(std::move(t));
  return true;
}

bool DnsRouter::parseServer(json::ObjectReader& r, size_t index, const json::Value* legacy_fakeip,
                            DiagList& diags) {
  std::string tag;
  r.str("tag", tag);
  if (tag.empty()) tag = "dns-" + std::to_string(index);
  CaresOptions co;
  co.tag = tag;
  co.timeout_ms = options_.upstream_timeout_ms;
  co.tries = options_.upstream_tries;

  auto makeCares = [&](const char* key) -> bool {
    auto t = CaresTransport::create(loop_, co);
    if (!t) {
      r.error(key, t.error().message());
      return false;
    }
    return addTransport(std::move(*t), r, diags);
  };
  auto makeFakeIp = [&](const json::Value* settings, json::ObjectReader& reader) -> bool {
    FakeIpStore::Options fo;
    std::string v4, v6;
    if (settings == nullptr) {
      reader.str("inet4_range", v4);
      reader.str("inet6_range", v6);
    } else {
      json::ObjectReader fr(*settings, "dns.fakeip", reader.file(), diags);
      bool enabled = false;
      fr.boolean("enabled", enabled);
      fr.str("inet4_range", v4);
      fr.str("inet6_range", v6);
      fr.finish();
      if (!enabled) {
        reader.error("address", "server \"fakeip\" needs dns.fakeip.enabled");
        return false;
      }
    }
    if (!v4.empty() && !(fo.inet4_range = IpPrefix::parse(v4))) {
      reader.error("inet4_range", "bad prefix \"" + v4 + "\"");
      return false;
    }
    if (!v6.empty() && !(fo.inet6_range = IpPrefix::parse(v6))) {
      reader.error("inet6_range", "bad prefix \"" + v6 + "\"");
      return false;
    }
    if (!fo.inet4_range && !fo.inet6_range) {
      reader.error("inet4_range", "a fakeip server needs inet4_range or inet6_range");
      return false;
    }
    auto store = FakeIpStore::create(fo);
    if (!store) {
      reader.error("inet4_range", store.error().message());
      return false;
    }
    if (!options_.fakeip_store_path.empty() && fakeip_.empty()) {
      // One table per cache file (and cache_id): the first FakeIP server's.
      const std::string& path = options_.fakeip_store_path;
      if (!cache_file_) {
        std::vector<std::string> warnings;
        cache_file_ = std::make_unique<CacheFile>(CacheFile::load(path, warnings));
        for (const auto& w : warnings) LOG_WARN("dns: cache file %s", w.c_str());
      }
      if (const auto* sec = cache_file_->find(CacheFile::kFakeIp, options_.cache_id)) {
        if (auto s = store->restore(ByteView(sec->body.data(), sec->body.size()),
                                    sec->body_offset);
            !s) {
          // A damaged table only costs the old mappings; starting is more important.
          LOG_WARN("dns: cache file %s: %s; starting with an empty FakeIP table", path.c_str(),
                   s.error().message().c_str());
        } else {
          LOG_INFO("dns: %zu FakeIP mapping(s) loaded from %s", store->size(), path.c_str());
        }
        // The table is in the store now (and goes back into the file from there when it
        // changes): do not keep the raw copy (3.5 MB for 100,000 mappings).
        cache_file_->erase(CacheFile::kFakeIp, options_.cache_id);
      }
    }
    return addTransport(TransportPtr(new FakeIpTransport(tag, std::move(*store))), reader, diags);
  };

  std::string type;
  if (r.str("type", type)) {
    // The typed format (sing-box 1.12).
    if (type == "udp" || type == "tcp") {
      std::string server;
      uint16_t port = 53;
      r.str("server", server);
      r.u16("server_port", port);
      if (server.empty()) {
        r.error("server", "missing \"server\"");
        return false;
      }
      auto ip = IpAddress::parse(server);
      if (!ip) {
        r.error("server", "server must be an IP address (domain_resolver is not implemented)");
        return false;
      }
      co.mode = type == "udp" ? CaresOptions::Mode::Udp : CaresOptions::Mode::Tcp;
      co.servers.push_back(SocketAddress(*ip, port));
      return makeCares("server");
    }
    if (type == "local") {
      co.mode = CaresOptions::Mode::System;
      co.resolv_conf = options_.local_resolv_conf;
      co.system_port = options_.local_port;
      return makeCares("type");
    }
    if (type == "hosts") {
      std::map<std::string, std::vector<IpAddress>> entries;
      std::vector<std::string> paths;
      bool has_path = r.strList("path", paths);
      if (const json::Value* pre = r.get("predefined")) {
        if (!pre->isObject()) {
          r.error("predefined", "expected an object of name: address(es)");
        } else {
          for (const auto& m : pre->members) {
            std::vector<const json::Value*> vals;
            if (m.value.isArray()) {
              for (const auto& it : m.value.items) vals.push_back(&it);
            } else {
              vals.push_back(&m.value);
            }
            for (const json::Value* v : vals) {
              auto ip = v->isString() ? IpAddress::parse(v->str) : std::nullopt;
              if (!ip) {
                r.errorAt(*v, r.memberPath("predefined") + "." + m.key, "expected an IP address");
                continue;
              }
              entries[canonicalName(m.key)].push_back(*ip);
            }
          }
        }
      } else if (!has_path) {
        paths.push_back("/etc/hosts");  // sing-box's default
      }
      for (const auto& p : paths) {
        if (auto s = HostsTransport::loadHostsFile(p, entries); !s) {
          r.error("path", s.error().message());
          return false;
        }
      }
      return addTransport(TransportPtr(new HostsTransport(tag, std::move(entries))), r, diags);
    }
    if (type == "fakeip") return makeFakeIp(nullptr, r);
    if (type == "tls" || type == "https") {
      bool https = type == "https";
      RemoteServerOptions ro;
      ro.tag = tag;
      ro.port = https ? 443 : 853;
      r.str("server", ro.server);
      r.u16("server_port", ro.port);
      if (ro.server.empty()) {
        r.error("server", "missing \"server\"");
        return false;
      }
      if (https) {
        if (r.str("path", ro.path) && (ro.path.empty() || ro.path[0] != '/')) {
          r.error("path", "path must start with \"/\"");
          return false;
        }
        if (ro.path.empty()) ro.path = "/dns-query";
        if (const json::Value* hv = r.get("headers")) {
          if (!hv->isObject()) {
            r.error("headers", "expected an object of header names to values");
            return false;
          }
          for (const auto& m : hv->members) {
            if (!m.value.isString()) {
              r.errorAt(m.value, r.memberPath("headers") + "." + m.key, "expected a string");
              return false;
            }
            ro.headers.emplace_back(m.key, m.value.str);
          }
        }
      }
      for (const char* f : {"detour", "bind_interface", "inet4_bind_address",
                            "inet6_bind_address", "routing_mark", "connect_timeout",
                            "tcp_fast_open", "tcp_multi_path", "fallback_delay", "netns",
                            "domain_strategy", "network_strategy"}) {
        if (const json::Value* fv = r.get(f)) {
          r.errorAt(*fv, r.memberPath(f),
                    std::string("DNS server field \"") + f + "\" is not implemented by veer");
        }
      }
      return makeRemote(r, https, std::move(ro), "server", r.get("tls"), r.get("domain_resolver"),
                        diags);
    }
    if (type == "quic" || type == "h3" || type == "dhcp" ||
        type == "tailscale" || type == "resolved") {
      r.error("type", "DNS server type \"" + type + "\" is not implemented in veer yet");
      return false;
    }
    r.error("type", "unknown DNS server type \"" + type + "\"");
    return false;
  }

  // The legacy format: everything is in the "address" string.
  std::string address;
  if (!r.str("address", address)) {
    r.error("type", "a DNS server needs \"type\" (or the legacy \"address\")");
    return false;
  }
  // Legacy per-server client_subnet: overrides dns.client_subnet, a rule's overrides it.
  std::string subnet;
  std::optional<ClientSubnet> server_subnet;
  if (r.str("client_subnet", subnet)) {
    server_subnet = parseClientSubnet(subnet);
    if (!server_subnet) {
      r.error("client_subnet", "bad client_subnet \"" + subnet + "\"");
      return false;
    }
    server_subnet_[tag] = *server_subnet;
  }
  std::string s;
  if (r.str("strategy", s)) {
    r.error("strategy", "per-server strategy is not implemented; use dns.strategy");
  }
  // address_resolver is used by tls:// and https:// servers given by name (and harmless on
  // servers given by address, as in sing-box).
  const json::Value* address_resolver = r.get("address_resolver");
  for (const char* f : {"detour", "address_strategy", "address_fallback_delay"}) {
    if (const json::Value* fv = r.get(f)) {
      r.errorAt(*fv, r.memberPath(f),
                std::string("DNS server field \"") + f + "\" is not implemented by veer");
    }
  }
  if (address == "local") {
    co.mode = CaresOptions::Mode::System;
    co.resolv_conf = options_.local_resolv_conf;
    co.system_port = options_.local_port;
    return makeCares("address");
  }
  if (address == "fakeip") {
    if (!legacy_fakeip) {
      r.error("address", "server \"fakeip\" needs the dns.fakeip section");
      return false;
    }
    return makeFakeIp(legacy_fakeip, r);
  }
  std::string_view rest = address;
  auto scheme_end = rest.find("://");
  std::string scheme = "udp";
  if (scheme_end != std::string_view::npos) {
    scheme = std::string(rest.substr(0, scheme_end));
    rest.remove_prefix(scheme_end + 3);
  }
  if (scheme == "rcode") {
    auto rc = parseRcodeName(rest);
    if (!rc) {
      r.error("address", "unknown rcode \"" + std::string(rest) + "\"");
      return false;
    }
    return addTransport(TransportPtr(new RcodeTransport(tag, *rc)), r, diags);
  }
  if (scheme == "tls" || scheme == "https") {
    bool https = scheme == "https";
    RemoteServerOptions ro;
    ro.tag = tag;
    std::string_view authority = rest;
    if (https) {
      auto slash = rest.find('/');
      authority = rest.substr(0, slash);
      ro.path = slash == std::string_view::npos ? "/dns-query" : std::string(rest.substr(slash));
    } else if (!authority.empty() && authority.back() == '/') {
      authority.remove_suffix(1);
    }
    if (!parseAuthority(authority, https ? 443 : 853, ro.server, ro.port)) {
      r.error("address", "bad server address \"" + address + "\"");
      return false;
    }
    return makeRemote(r, https, std::move(ro), "address", nullptr, address_resolver, diags);
  }
  if (scheme != "udp" && scheme != "tcp") {
    r.error("address", "DNS server scheme \"" + scheme + "\" is not implemented in veer yet");
    return false;
  }
  auto sa = parseHostPort(rest, 53);
  if (!sa) {
    r.error("address", "bad server address \"" + address +
                           "\" (an IP address; domain names need address_resolver, not implemented)");
    return false;
  }
  co.mode = scheme == "udp" ? CaresOptions::Mode::Udp : CaresOptions::Mode::Tcp;
  co.servers.push_back(*sa);
  return makeCares("address");
}

bool DnsRouter::makeRemote(json::ObjectReader& r, bool https, RemoteServerOptions ro,
                           const char* key, const json::Value* tls_json,
                           const json::Value* resolver, DiagList& diags) {
  tls::TlsOptions topt;
  topt.enabled = true;
  if (tls_json != nullptr) {
    size_t before = diags.errorCount();
    ro.tls = tls::parseTlsObject(r, *tls_json, ro.server, topt, /*force_enabled=*/true);
    if (diags.errorCount() != before || !ro.tls) return false;
  }
  if (https) {
    // veer speaks HTTP/1.1 only: offer exactly that unless the config says otherwise.
    if (std::find(topt.alpn.begin(), topt.alpn.end(), "h2") != topt.alpn.end()) {
      r.error("tls",
              "DNS over HTTPS uses HTTP/1.1 in veer: HTTP/2 (alpn \"h2\") is not implemented");
      return false;
    }
    if (topt.alpn.empty()) topt.alpn.push_back("http/1.1");
    ro.tls = nullptr;
  }
  if (!ro.tls) {
    auto c = tls::makeClientConfig(topt, ro.server);
    if (!c) {
      r.error(tls_json ? "tls" : key, c.error().message());
      return false;
    }
    ro.tls = *c;
  }
  std::string resolver_tag;
  if (resolver != nullptr) {
    // sing-box: a tag, or an object with `server` (and `strategy`, which veer ignores: both
    // families are asked and tried in turn).
    const json::Value* tv = resolver->isObject() ? resolver->find("server") : resolver;
    if (tv == nullptr || !tv->isString() || tv->str.empty()) {
      r.errorAt(*resolver,
                r.memberPath(std::string_view(key) == "address" ? "address_resolver"
                                                                : "domain_resolver"),
                "expected the tag of a DNS server");
      return false;
    }
    resolver_tag = tv->str;
  }
  if (auto ip = IpAddress::parse(ro.server)) {
    ro.addresses.emplace_back(*ip, ro.port);
  } else if (resolver_tag.empty()) {
    r.error(key, "server \"" + ro.server + "\" is a domain name: name the DNS server that resolves "
                 "it in " + (std::string_view(key) == "address" ? "\"address_resolver\""
                                                                 : "\"domain_resolver\""));
    return false;
  }
  if (https) {
    std::string host;
    for (auto it = ro.headers.begin(); it != ro.headers.end(); ++it) {
      if (strcasecmp(it->first.c_str(), "host") == 0) {
        host = it->second;
        ro.headers.erase(it);
        break;
      }
    }
    if (host.empty()) {
      host = tls::sniOf(*ro.tls);
      if (host.empty()) host = ro.server;
      if (host.find(':') != std::string::npos) host = "[" + host + "]";
      if (ro.port != 443) host += ":" + std::to_string(ro.port);
    }
    ro.host_header = host;
  }
  ro.query_timeout_ms = options_.upstream_timeout_ms * options_.upstream_tries + 1000;
  ro.idle_timeout_ms = options_.remote_idle_timeout_ms;
  TransportPtr t = https ? DohTransport::create(loop_, std::move(ro))
                         : DotTransport::create(loop_, std::move(ro));
  auto* remote = static_cast<RemoteTransport*>(t.get());
  if (!addTransport(std::move(t), r, diags)) return false;
  if (!resolver_tag.empty()) {
    resolver_bindings_.push_back(
        {remote, resolver_tag, resolver,
         r.memberPath(std::string_view(key) == "address" ? "address_resolver" : "domain_resolver"),
         r.file()});
  }
  return true;
}

void DnsRouter::bindResolvers(DiagList& diags) {
  std::unordered_map<Transport*, std::string> resolver_of;
  for (const auto& b : resolver_bindings_) resolver_of[b.transport] = b.tag;
  for (const auto& b : resolver_bindings_) {
    auto err = [&](const std::string& msg) {
      diags.error(b.file, b.value->pos.line, b.value->pos.column, b.path, msg, "unknown-server");
    };
    Transport* t = server(b.tag);
    if (t == nullptr) {
      err("unknown DNS server \"" + b.tag + "\"");
      continue;
    }
    // The chain of resolvers must end in a server that needs none.
    Transport* cur = t;
    bool loop = false;
    for (size_t steps = 0; steps <= resolver_bindings_.size(); ++steps) {
      if (cur == b.transport) {
        loop = true;
        break;
      }
      auto it = resolver_of.find(cur);
      if (it == resolver_of.end()) break;
      cur = server(it->second);
      if (cur == nullptr) break;
    }
    if (loop) {
      err("DNS server \"" + b.transport->tag() + "\" would resolve its own name through \"" +
          b.tag + "\" (a loop)");
      continue;
    }
    b.transport->setResolver(t);
  }
}

void DnsRouter::bindRules(const json::Value* rules_json, const std::string& file,
                          DiagList& diags) {
  DnsRules::Parsed parsed;
  std::vector<const rules::RuleSpec*> specs;
  if (options_.rules) {
    for (size_t i = 0; i < options_.rules->size(); ++i) specs.push_back(&options_.rules->spec(i));
  } else if (rules_json != nullptr) {
    // Standalone (no config loader): the rules cannot use rule sets or geosite here.
    DnsRules::parse(rules_json, file, diags, parsed);
    for (const auto& sp : parsed.specs) specs.push_back(&sp);
  }
  // Where a rule's member is in the file, for errors (the rule object's position otherwise).
  auto memberPos = [&](const rules::RuleSpec& spec, const char* key) {
    std::pair<uint32_t, uint32_t> pos{spec.pos.line, spec.pos.column};
    if (rules_json == nullptr || !rules_json->isArray()) return pos;
    for (const auto& item : rules_json->items) {
      if (item.pos.line != spec.pos.line || item.pos.column != spec.pos.column) continue;
      if (const json::Value* m = item.find(key)) pos = {m->pos.line, m->pos.column};
    }
    return pos;
  };
  size_t errors = diags.errorCount();
  rule_actions_.assign(specs.size(), RuleAction{});
  for (size_t i = 0; i < specs.size(); ++i) {
    const rules::RuleSpec& spec = *specs[i];
    if (!spec.action) continue;
    const rules::RuleAction& a = *spec.action;
    auto err = [&](const char* key, const std::string& msg, const char* code = "invalid") {
      auto [line, col] = memberPos(spec, key);
      diags.error(spec.pos.file.empty() ? file : spec.pos.file, line, col,
                  spec.pos.path + "." + key, msg, code);
    };
    if (a.type == rules::RuleAction::Type::Route) {
      Transport* t = server(a.resolve_server);
      if (t == nullptr) {
        err("server", "unknown DNS server \"" + a.resolve_server + "\"", "unknown-server");
      }
      rule_actions_[i].server = t;
    }
    if (!a.client_subnet.empty()) {
      rule_actions_[i].client_subnet = parseClientSubnet(a.client_subnet);
      if (!rule_actions_[i].client_subnet) {
        err("client_subnet", "bad client_subnet \"" + a.client_subnet + "\"");
      }
    }
  }
  if (diags.errorCount() != errors) return;
  rules_ = options_.rules;
  if (!rules_ && rules_json != nullptr) rules_ = DnsRules::compile(std::move(parsed), {}, {}, diags);
}

// ---- routing ------------------------------------------------------------------------------

DnsRouter::Route DnsRouter::selectRoute(std::string_view name, uint16_t type,
                                        const Context& ctx) const {
  Route route;
  if (rules_) {
    QueryInfo q{name, type, ctx.inbound, ctx.outbound};
    size_t start = 0;
    while (auto m = rules_->match(q, start)) {
      const rules::RuleAction& a = *m->action;
      const RuleAction& ra = rule_actions_[m->index];
      // route and route-options both set options; route-options goes on to the next rule.
      if (a.type == rules::RuleAction::Type::Route ||
          a.type == rules::RuleAction::Type::RouteOptions) {
        route.disable_cache = route.disable_cache || a.disable_cache;
        if (a.rewrite_ttl) route.rewrite_ttl = a.rewrite_ttl;
        if (ra.client_subnet) route.client_subnet = ra.client_subnet;
      }
      if (a.type == rules::RuleAction::Type::RouteOptions) {
        start = m->index + 1;
        continue;
      }
      route.rule = m->index;
      if (a.type == rules::RuleAction::Type::Reject) {
        route.reject = true;
        route.reject_drop = a.reject_method == "drop";
      } else {
        route.transport = ra.server;
      }
      LOG_DEBUG("dns: %s %s matched rule %zu: %s", name.data(), typeName(type).c_str(),
                m->index, rules_->describe(m->index).c_str());
      return route;
    }
  }
  route.transport = server(final_);
  return route;
}

Transport* DnsRouter::server(const std::string& tag) const {
  auto it = by_tag_.find(tag);
  return it == by_tag_.end() ? nullptr : it->second;
}

uint16_t DnsRouter::randomId() {
  // xorshift32: IDs need to be unpredictable enough to not collide, not to be secret; c-ares
  // puts its own random ID on the wire anyway.
  rng_state_ ^= rng_state_ << 13;
  rng_state_ ^= rng_state_ >> 17;
  rng_state_ ^= rng_state_ << 5;
  return static_cast<uint16_t>(rng_state_);
}

uint64_t DnsRouter::newOp() {
  uint64_t id = next_op_++;
  ops_.emplace(id, std::make_unique<Op>());
  return id;
}

uint64_t DnsRouter::lookup(const std::string& name, Strategy s, Callback cb) {
  return lookup(name, s, Context{}, std::move(cb));
}

uint64_t DnsRouter::lookup(const std::string& name, Strategy s, const Context& ctx, Callback cb) {
  uint64_t id = newOp();
  Op& op = *ops_[id];
  op.lookup_cb = std::move(cb);
  op.strategy = s == Strategy::AsIs ? default_strategy_ : s;
  op.name = canonicalName(name);
  if (auto ip = IpAddress::parse(op.name)) {
    // An address literal resolves to itself, as Go's resolver does.
    LookupResult lr{{*ip}, 0};
    deferrer_->post([this, id, lr] {
      auto it = ops_.find(id);
      if (it == ops_.end()) return;
      Callback done = std::move(it->second->lookup_cb);
      ops_.erase(it);
      done(lr);
    });
    return id;
  }
  if (op.name.empty()) {
    deferrer_->post([this, id] {
      auto it = ops_.find(id);
      if (it == ops_.end()) return;
      Callback done = std::move(it->second->lookup_cb);
      ops_.erase(it);
      done(unexpected(Error("dns: empty domain name")));
    });
    return id;
  }
  bool want4 = op.strategy != Strategy::Ipv6Only;
  bool want6 = op.strategy != Strategy::Ipv4Only;
  op.types[0] = want4 ? rrtype::kA : 0;
  op.types[1] = want6 ? rrtype::kAaaa : 0;
  op.outstanding = (want4 ? 1 : 0) + (want6 ? 1 : 0);
  std::string qname = op.name;
  if (want4) resolveQuestion(id, 0, qname, rrtype::kA, ctx);
  if (want6 && ops_.count(id)) resolveQuestion(id, 1, qname, rrtype::kAaaa, ctx);
  return id;
}

uint64_t DnsRouter::exchange(std::vector<uint8_t> query, ExchangeCallback cb) {
  return exchange(std::move(query), Context{}, false, std::move(cb));
}

uint64_t DnsRouter::exchange(std::vector<uint8_t> query, const Context& ctx, bool tcp,
                             ExchangeCallback cb) {
  uint64_t id = newOp();
  Op& op = *ops_[id];
  op.is_lookup = false;
  op.exchange_cb = std::move(cb);
  auto reply_now = [&](Result<std::vector<uint8_t>> r) {
    deferrer_->post([this, id, r = std::move(r)]() mutable {
      auto it = ops_.find(id);
      if (it == ops_.end()) return;
      ExchangeCallback done = std::move(it->second->exchange_cb);
      ops_.erase(it);
      done(std::move(r));
    });
  };
  auto parsed = parseMessage(query);
  if (!parsed) {
    if (query.size() < 12) {
      reply_now(unexpected(parsed.error().wrap("dns exchange")));
      return id;
    }
    // The header is readable: answer FORMERR so the client stops waiting.
    Message stub;
    stub.id = peekId(query);
    stub.rd = query[2] & 0x01;
    reply_now(serializeMessage(makeResponse(stub, Rcode::FormErr)));
    return id;
  }
  op.query = std::move(*parsed);
  op.max_size = tcp ? kMaxMessageSize : maxUdpResponseSize(op.query);
  if (op.query.qr || op.query.opcode != 0) {
    reply_now(serializeMessage(makeResponse(op.query, Rcode::NotImp), op.max_size));
    return id;
  }
  if (op.query.questions.size() != 1) {
    reply_now(serializeMessage(makeResponse(op.query, Rcode::FormErr), op.max_size));
    return id;
  }
  const Question& q = op.query.questions[0];
  op.name = q.name;
  op.types[0] = q.type;
  op.outstanding = 1;
  std::string qname = q.name;
  resolveQuestion(id, 0, qname, q.type, ctx);
  return id;
}

void DnsRouter::resolveQuestion(uint64_t op_id, size_t slot, const std::string& name,
                                uint16_t type, const Context& ctx) {
  std::string canon = canonicalName(name);
  Route route = selectRoute(canon, type, ctx);
  auto op_it = ops_.find(op_id);
  if (op_it == ops_.end()) return;
  Op& op = *op_it->second;
  if (route.rewrite_ttl) op.rewrite_ttl[slot] = route.rewrite_ttl;
  if (route.reject) {
    ++stats_.rejected;
    if (route.reject_drop) op.dropped = true;
    Result<Message> res = route.reject_drop
                              ? Result<Message>(unexpected("dns: query dropped by rule"))
                              : Result<Message>(makeResponse(makeQuery(0, name, type, std::nullopt),
                                                             Rcode::Refused));
    deferrer_->post([this, op_id, slot, res] { finishQuestion(op_id, slot, res); });
    return;
  }
  if (route.transport == nullptr) {
    deferrer_->post([this, op_id, slot] {
      finishQuestion(op_id, slot, unexpected("dns: no DNS server configured"));
    });
    return;
  }
  Transport* t = route.transport;
  bool use_cache = !disable_cache_ && t->cacheable() && !route.disable_cache;
  CacheKey key{canon, type, independent_cache_ ? t->tag() : std::string()};
  if (use_cache) {
    if (auto hit = cache_.get(key, uv_now(loop_))) {
      ++stats_.cache_hits;
      deferrer_->post([this, op_id, slot, m = std::move(*hit)] { finishQuestion(op_id, slot, m); });
      return;
    }
  }
  // In-flight questions are always told apart by server, whatever the cache keying.
  CacheKey flight{canon, type, t->tag() + (use_cache ? "" : "\x01nocache")};
  auto joined = coalescer_.join(flight, [this, op_id, slot](const Result<Message>& r) {
    finishQuestion(op_id, slot, r);
  });
  op.waiters.push_back(joined.waiter_id);
  if (!joined.leader) {
    ++stats_.coalesced;
    return;
  }
  std::optional<Edns> edns = Edns{};
  std::optional<ClientSubnet> subnet = client_subnet_;
  if (auto it = server_subnet_.find(t->tag()); it != server_subnet_.end()) subnet = it->second;
  if (route.client_subnet) subnet = route.client_subnet;
  if (subnet) edns->client_subnet = subnet;
  auto wire = serializeMessage(makeQuery(randomId(), name, type, edns));
  if (!wire) {
    Error e = wire.error();
    deferrer_->post([this, flight, e] { coalescer_.complete(flight, unexpected(e)); });
    return;
  }
  ++stats_.upstream_queries;
  std::optional<CacheKey> cache_key;
  if (use_cache) cache_key = key;
  t->exchange(std::move(*wire), [this, flight, cache_key](Result<std::vector<uint8_t>> r) {
    // Always continue from the deferrer: in-process transports answer synchronously, inside
    // lookup(), where user callbacks must not run.
    deferrer_->post([this, flight, cache_key, r = std::move(r)]() mutable {
      onUpstream(flight, cache_key, std::move(r));
    });
  });
}

void DnsRouter::onUpstream(const CacheKey& flight, std::optional<CacheKey> cache_key,
                           Result<std::vector<uint8_t>> reply) {
  if (!reply) {
    coalescer_.complete(flight, unexpected(reply.error()));
    return;
  }
  auto msg = parseMessage(*reply);
  if (!msg) {
    std::string tag = flight.server.substr(0, flight.server.find('\x01'));
    coalescer_.complete(flight, unexpected(msg.error().wrap("dns/" + tag)));
    return;
  }
  if (cache_key) cache_.put(*cache_key, *msg, uv_now(loop_));
  if (reverse_) recordReverse(*msg);
  if (!fakeip_.empty()) noteFakeIpChange();
  coalescer_.complete(flight, *msg);
}

void DnsRouter::recordReverse(const Message& m) {
  if (m.questions.empty()) return;
  std::string name = canonicalName(m.questions[0].name);
  for (const auto& r : m.answers) {
    if (auto ip = r.address()) reverse_->put(*ip, name);
  }
}

void DnsRouter::finishQuestion(uint64_t op_id, size_t slot, const Result<Message>& result) {
  auto it = ops_.find(op_id);
  if (it == ops_.end()) return;
  Op& op = *it->second;
  if (op.outstanding <= 0 || op.results[slot]) return;
  op.results[slot] = result;
  if (result && op.rewrite_ttl[slot]) {
    for (auto* sec : {&op.results[slot]->value().answers, &op.results[slot]->value().authorities,
                      &op.results[slot]->value().additionals}) {
      for (auto& rr : *sec) rr.ttl = *op.rewrite_ttl[slot];
    }
  }
  if (--op.outstanding > 0) return;
  if (op.is_lookup) {
    completeLookup(op_id);
  } else {
    completeExchange(op_id);
  }
}

void DnsRouter::completeLookup(uint64_t op_id) {
  auto it = ops_.find(op_id);
  std::unique_ptr<Op> op = std::move(it->second);
  ops_.erase(it);
  std::vector<IpAddress> v4, v6;
  uint32_t ttl = std::numeric_limits<uint32_t>::max();
  std::optional<Error> first_error;
  bool nxdomain = false;
  for (size_t slot = 0; slot < 2; ++slot) {
    if (!op->types[slot] || !op->results[slot]) continue;
    const Result<Message>& r = *op->results[slot];
    if (!r) {
      if (!first_error) first_error = r.error();
      continue;
    }
    if (r->rcodeValue() != Rcode::NoError) {
      if (r->rcodeValue() == Rcode::NxDomain) nxdomain = true;
      if (!first_error) {
        first_error = Error(std::string("dns: ") + op->name + ": " + rcodeName(r->rcode));
      }
      continue;
    }
    for (const auto& rr : r->answers) {
      if (rr.type != op->types[slot]) continue;
      auto ip = rr.address();
      if (!ip) continue;
      (ip->isV4() ? v4 : v6).push_back(*ip);
      ttl = std::min(ttl, rr.ttl);
    }
  }
  LookupResult lr;
  if (op->strategy == Strategy::PreferIpv6) {
    lr.addresses = std::move(v6);
    lr.addresses.insert(lr.addresses.end(), v4.begin(), v4.end());
  } else {
    lr.addresses = std::move(v4);
    lr.addresses.insert(lr.addresses.end(), v6.begin(), v6.end());
  }
  Result<LookupResult> result = std::move(lr);
  if (result->addresses.empty()) {
    if (nxdomain) {
      result = unexpected(Error("dns: " + op->name + ": NXDOMAIN"));
    } else if (first_error) {
      result = unexpected(*first_error);
    } else {
      result = unexpected(Error("dns: " + op->name + ": no addresses"));
    }
  } else {
    result->ttl = ttl;
  }
  deliver(op_id, std::move(op), std::move(result));
}

void DnsRouter::deliver(uint64_t op_id, std::unique_ptr<Op> op, Result<LookupResult> result) {
  // The user callback runs from the deferrer, never from inside Coalescer::complete() or a
  // transport: the callback may destroy the router, and nothing of ours may be on the stack
  // then. The op goes back into ops_ so that cancel() still works until delivery.
  Op* raw = op.get();
  ops_[op_id] = std::move(op);
  raw->outstanding = -1;  // delivered-pending: finishQuestion ignores it
  deferrer_->post([this, op_id, result = std::move(result)]() mutable {
    auto it = ops_.find(op_id);
    if (it == ops_.end()) return;
    Callback done = std::move(it->second->lookup_cb);
    ops_.erase(it);
    done(std::move(result));  // may destroy *this: touch nothing afterwards
  });
}

void DnsRouter::deliver(uint64_t op_id, std::unique_ptr<Op> op,
                        Result<std::vector<uint8_t>> result) {
  Op* raw = op.get();
  ops_[op_id] = std::move(op);
  raw->outstanding = -1;
  deferrer_->post([this, op_id, result = std::move(result)]() mutable {
    auto it = ops_.find(op_id);
    if (it == ops_.end()) return;
    ExchangeCallback done = std::move(it->second->exchange_cb);
    ops_.erase(it);
    done(std::move(result));  // may destroy *this: touch nothing afterwards
  });
}

void DnsRouter::completeExchange(uint64_t op_id) {
  auto it = ops_.find(op_id);
  std::unique_ptr<Op> op = std::move(it->second);
  ops_.erase(it);
  const Result<Message>& r = *op->results[0];
  if (op->dropped) {
    // The caller (the hijack path) must drop the query rather than answer it.
    Error e = r ? Error("dns: query dropped by rule") : r.error();
    deliver(op_id, std::move(op), Result<std::vector<uint8_t>>(unexpected(e)));
    return;
  }
  Message resp;
  if (!r) {
    LOG_DEBUG("dns: exchange %s: %s", op->name.c_str(), r.error().message().c_str());
    resp = makeResponse(op->query, Rcode::ServFail);
  } else {
    resp = makeResponse(op->query, static_cast<Rcode>(r->rcode & 0xf));
    if (r->rcode > 0xf && resp.edns) resp.rcode = r->rcode;
    resp.aa = r->aa;
    resp.ad = r->ad;
    resp.answers = r->answers;
    resp.authorities = r->authorities;
    resp.additionals = r->additionals;
  }
  auto wire = serializeMessage(resp, op->max_size);
  deliver(op_id, std::move(op), std::move(wire));
}

void DnsRouter::cancel(uint64_t id) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  for (uint64_t w : it->second->waiters) coalescer_.cancel(w);
  ops_.erase(it);
}

// ---- FakeIP / reverse ---------------------------------------------------------------------

std::optional<std::string> DnsRouter::lookupDomain(const IpAddress& ip) const {
  for (auto* f : fakeip_) {
    if (auto d = f->store().lookupDomain(ip)) return d;
  }
  if (reverse_) return reverse_->get(ip.unmap());
  return std::nullopt;
}

bool DnsRouter::isFakeIp(const IpAddress& ip) const {
  for (auto* f : fakeip_) {
    if (f->store().inRange(ip)) return true;
  }
  return false;
}

void DnsRouter::noteFakeIpChange() {
  if (options_.fakeip_store_path.empty()) return;
  bool dirty = false;
  for (auto* f : fakeip_) dirty = dirty || f->store().dirty();
  if (!dirty) return;
  // Batch writes: a burst of new domains costs one write (flash wears), at most 10 s late.
  if (!fakeip_save_timer_) {
    fakeip_save_timer_.reset(UvTimer::create(loop_, [this] {
      if (auto s = saveFakeIp(); !s) LOG_WARN("dns: %s", s.error().message().c_str());
    }));
    // Shutdown must not wait for it: the destructor writes what is left.
    fakeip_save_timer_->unref();
  }
  if (!fakeip_save_timer_->active()) fakeip_save_timer_->start(options_.fakeip_save_delay_ms);
}

Status DnsRouter::saveFakeIp() {
  if (options_.fakeip_store_path.empty() || fakeip_.empty()) return {};
  // One table per file (and cache_id): with several fakeip servers, the first one is kept.
  FakeIpStore& store = fakeip_.front()->store();
  if (!store.dirty()) return {};
  if (!cache_file_) cache_file_ = std::make_unique<CacheFile>();
  cache_file_->put(CacheFile::kFakeIp, options_.cache_id, store.serialize());
  if (auto s = cache_file_->save(options_.fakeip_store_path); !s) return s;
  store.clearDirty();
  return {};
}

size_t DnsRouter::adoptFakeIp(DnsRouter& old) {
  size_t adopted = 0;
  std::vector<bool> taken(old.fakeip_.size(), false);
  auto take = [&](FakeIpTransport* f, size_t k) {
    bool was_dirty = old.fakeip_[k]->store().dirty();
    f->store() = old.fakeip_[k]->store();
    taken[k] = true;
    ++adopted;
    // Changes the old router had not written yet are ours to write now; a table adopted on
    // reload is also written when the file holds an older one (it may not exist at all yet).
    if (was_dirty || !options_.fakeip_store_path.empty()) f->store().markDirty();
  };
  for (auto* f : fakeip_) {
    bool done = false;
    for (size_t k = 0; k < old.fakeip_.size() && !done; ++k) {
      if (!taken[k] && old.fakeip_[k]->tag() == f->tag() &&
          old.fakeip_[k]->store().sameRanges(f->store())) {
        take(f, k);
        done = true;
      }
    }
    for (size_t k = 0; k < old.fakeip_.size() && !done; ++k) {
      if (!taken[k] && old.fakeip_[k]->store().sameRanges(f->store())) {
        take(f, k);
        done = true;
      }
    }
  }
  // The old router must not write the file again (it would put back older mappings).
  if (old.fakeip_save_timer_) old.fakeip_save_timer_->stop();
  old.options_.fakeip_store_path.clear();
  if (adopted > 0) noteFakeIpChange();
  return adopted;
}

DnsRouter::Stats DnsRouter::stats() const {
  Stats s = stats_;
  return s;
}

}  // namespace veer::dns
