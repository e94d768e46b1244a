#include "conn/host_resolver.h"

#include <netdb.h>

#include <algorithm>

#include "loop/uv_util.h"

namespace veer::conn {

struct SystemResolver::Req {
  uv_getaddrinfo_t req{};
  SystemResolver* owner = nullptr;
  uint64_t id = 0;
  DomainStrategy strategy = DomainStrategy::AsIs;
  Callback cb;
  std::string host;
};

std::vector<IpAddress> applyStrategy(std::vector<IpAddress> in, DomainStrategy s) {
  switch (s) {
    case DomainStrategy::AsIs: break;
    case DomainStrategy::Ipv4Only: std::erase_if(in, [](const IpAddress& a) { return !a.isV4(); }); break;
    case DomainStrategy::Ipv6Only: std::erase_if(in, [](const IpAddress& a) { return !a.isV6(); }); break;
    case DomainStrategy::PreferIpv4:
      std::stable_partition(in.begin(), in.end(), [](const IpAddress& a) { return a.isV4(); });
      break;
    case DomainStrategy::PreferIpv6:
      std::stable_partition(in.begin(), in.end(), [](const IpAddress& a) { return a.isV6(); });
      break;
  }
  return in;
}

SystemResolver::~SystemResolver() {
  // Outstanding requests finish on the thread pool; they must not call back into us.
  for (Req* r : live_) {
    r->owner = nullptr;
    r->cb = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
  }
}

uint64_t SystemResolver::resolve(const std::string& host, DomainStrategy strategy, Callback cb) {
  auto* r = new Req;
  r->owner = this;
  r->id = next_id_++;
  r->strategy = strategy;
  r->cb = std::move(cb);
  r->host = host;
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = strategy == DomainStrategy::Ipv4Only   ? AF_INET
                    : strategy == DomainStrategy::Ipv6Only ? AF_INET6
                                                           : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  live_.push_back(r);
  int rc = uv_getaddrinfo(
      loop_, &r->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* rr = static_cast<Req*>(req->data);
        if (rr->owner) std::erase(rr->owner->live_, rr);
        Callback cb = std::move(rr->cb);
        std::string host = rr->host;
        DomainStrategy strat = rr->strategy;
        delete rr;
        if (!cb) {
          if (res) uv_freeaddrinfo(res);
          return;
        }
        if (status != 0) {
          if (res) uv_freeaddrinfo(res);
          cb(unexpected(loop::uvError(status, "resolve " + host)));
          return;
        }
        std::vector<IpAddress> out;
        for (addrinfo* ai = res; ai; ai = ai->ai_next) {
          auto sa = SocketAddress::fromSockaddr(ai->ai_addr);
          if (!sa) continue;
          IpAddress ip = sa->ip();
          if (std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
        }
        uv_freeaddrinfo(res);
        out = applyStrategy(std::move(out), strat);
        if (out.empty()) {
          cb(unexpected(Error("resolve " + host + ": no addresses", UV_EAI_NODATA)));
          return;
        }
        cb(std::move(out));
      },
      host.c_str(), nullptr, &hints);
  if (rc != 0) {
    std::erase(live_, r);
    Callback cb2 = std::move(r->cb);
    uint64_t id = r->id;
    delete r;
    // Keep the "never inside resolve()" contract: report through a zero timer.
    struct Later {
      uv_timer_t t;
      Callback cb;
      Error e;
    };
    auto* l = new Later{{}, std::move(cb2), loop::uvError(rc, "resolve " + host)};
    uv_timer_init(loop_, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, [](uv_timer_t* t) {
      auto* ll = static_cast<Later*>(t->data);
      ll->cb(unexpected(ll->e));
      uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) {
        delete static_cast<Later*>(h->data);
      });
    }, 0, 0);
    return id;
  }
  return r->id;
}

void SystemResolver::cancel(uint64_t id) {
  for (Req* r : live_) {
    if (r->id == id) {
      r->cb = nullptr;
      uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));
      return;
    }
  }
}

}  // namespace veer::conn
