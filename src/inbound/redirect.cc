// The redirect inbound (sing-box protocol/redirect/redirect.go): TCP connections that the
// firewall redirected to the listener (nft `redirect to :port`, iptables `-j REDIRECT`). The
// destination the client asked for is read back from conntrack with SO_ORIGINAL_DST (IPv4,
// also for IPv4 clients of a dual-stack "::" listener) or IP6T_SO_ORIGINAL_DST (IPv6).
//
// A connection whose original destination cannot be read (no conntrack entry: it was not
// redirected), or whose original destination is this listener itself (a client connected to
// the port directly; dialing it would loop back into veer), is closed on its own: other
// connections are not affected.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "inbound/inbound.h"
#include "loop/uv_util.h"

#ifdef __linux__
#include <linux/netfilter_ipv4.h>  // SO_ORIGINAL_DST
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80  // linux/netfilter_ipv6/ip6_tables.h, which does not build in C++
#endif
#endif

namespace veer::inbound {

namespace {

#ifdef __linux__
// The conntrack original destination of an accepted, redirected connection.
Result<SocketAddress> originalDestination(int fd, const SocketAddress& peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int rc;
  if (peer.ip().unmap().isV4()) {
    // An IPv4 client of a dual-stack socket is an IPv4 connection to conntrack: SOL_IP works on
    // the AF_INET6 socket too (the kernel passes SOL_IP options of v6 sockets to the v4 code).
    len = sizeof(sockaddr_in);
    rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  } else {
    len = sizeof(sockaddr_in6);
    rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
  }
  if (rc != 0) {
    int e = errno;
    return unexpected(Error(std::string("original destination unavailable (") + std::strerror(e) +
                                (e == ENOENT ? "; the connection was not redirected by the firewall"
                                             : "") +
                                ")",
                            -e));
  }
  auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
  if (!sa) return unexpected(Error("original destination: unexpected address family"));
  return SocketAddress(sa->ip().unmap(), sa->port());
}
#endif

class RedirectInbound : public Inbound {
 public:
  RedirectInbound(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                  const RedirectOptions& opts)
      : Inbound("redirect", std::move(tag)), loop_(loop), handler_(handler), opts_(opts) {}
  ~RedirectInbound() override { stop(); }

  Status start() override {
#ifndef __linux__
    return unexpected(Error("inbound/redirect[" + tag() +
                            "]: the redirect inbound needs Linux (SO_ORIGINAL_DST)"));
#else
    uv_tcp_init(loop_, &tcp_);
    tcp_.data = this;
    tcp_open_ = true;
    Status st = listenTcp(&tcp_, opts_.listen, [](uv_stream_t* server, int status) {
      if (status == 0) static_cast<RedirectInbound*>(server->data)->accept();
    });
    if (!st) return unexpected(st.error().wrap("inbound/redirect[" + tag() + "]"));
    auto b = boundAddress();
    bound_port_ = b ? b->port() : opts_.listen.listen_port;
    LOG_INFO("inbound/redirect[%s]: listening on %s", tag().c_str(),
             b ? b->toString().c_str() : opts_.listen.listen.c_str());
    return {};
#endif
  }

  void stop() override {
    if (tcp_open_) {
      tcp_open_ = false;
      loop::closeHandle(&tcp_, nullptr);
    }
  }

  std::optional<SocketAddress> boundAddress() const override {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (tcp_open_ && uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
    }
    return std::nullopt;
  }

 private:
  static void closeClient(uv_tcp_t* client) {
    loop::closeHandle(client, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }

  void accept() {
#ifdef __linux__
    auto* client = new uv_tcp_t;
    uv_tcp_init(loop_, client);
    if (uv_accept(reinterpret_cast<uv_stream_t*>(&tcp_), reinterpret_cast<uv_stream_t*>(client)) !=
        0) {
      closeClient(client);
      return;
    }
    uv_tcp_nodelay(client, 1);
    conn::InboundContext ctx;
    ctx.inbound_tag = tag();
    ctx.inbound_type = "redirect";
    ctx.network = "tcp";
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(client, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) {
        ctx.source = SocketAddress(sa->ip().unmap(), sa->port());
      }
    }
    uv_os_fd_t fd;
    Result<SocketAddress> dst = unexpected(Error("no socket"));
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(client), &fd) == 0) {
      dst = originalDestination(fd, ctx.source);
    }
    if (dst && isOwnListener(loop_, SocketAddress(dst->ip(), dst->port()), bound_port_)) {
      dst = unexpected(Error("original destination " + dst->toString() +
                             " is this listener (the connection was not redirected)"));
    }
    if (!dst) {
      ++bad_;
      LOG_WARN("inbound/redirect[%s]: tcp %s: %s; closed (%llu so far)", tag().c_str(),
               ctx.source.toString().c_str(), dst.error().message().c_str(),
               static_cast<unsigned long long>(bad_));
      closeClient(client);
      return;
    }
    ctx.destination.ip = dst->ip();
    ctx.destination.port = dst->port();
    opts_.listen.applyTo(ctx);
    handler_->handleTcp(std::move(ctx), client, std::string(), nullptr);
#endif
  }

  uv_loop_t* loop_;
  conn::ConnectionHandler* handler_;
  RedirectOptions opts_;
  uv_tcp_t tcp_{};
  bool tcp_open_ = false;
  uint16_t bound_port_ = 0;
  uint64_t bad_ = 0;  // connections closed because their original destination was unusable
};

}  // namespace

InboundPtr makeRedirect(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                        const RedirectOptions& opts) {
  return std::make_unique<RedirectInbound>(std::move(tag), loop, handler, opts);
}

}  // namespace veer::inbound
