// The tproxy inbound (sing-box protocol/redirect/tproxy.go, common/redir/tproxy_linux.go):
// TCP and UDP that the firewall delivered to the listener with TPROXY (nft `tproxy to :port`,
// iptables `-j TPROXY`), plus the policy routing that makes the foreign destination local
// (`ip rule add fwmark 1 lookup 100; ip route add local 0.0.0.0/0 dev lo table 100`).
//
// - Listening sockets are IP_TRANSPARENT (IPV6_TRANSPARENT on "::", which also serves IPv4:
//   IPV6_V6ONLY is off). They are plain TCP sockets, never MPTCP, whose IP_TRANSPARENT is what
//   fails with "operation not supported" in SagerNet/sing-box#2907.
// - TCP: the original destination is the accepted socket's local address.
// - UDP: the socket is our own non-blocking fd read with recvmsg() from a uv_poll_t, because the
//   original destination comes in a control message: IP_ORIGDSTADDR for IPv4 packets (also on
//   the dual-stack socket: sing-box only asks for IPV6_RECVORIGDSTADDR there and loses IPv4,
//   #3045), IPV6_ORIGDSTADDR for IPv6. v4-mapped addresses are unmapped.
// - UDP replies must reach the client from the address it sent to, so they are sent from a
//   transparent socket bound to that address. sing-box opens one per session and runs out of
//   ports under real phone traffic (#1505); here one socket per original destination is shared
//   by every client and session, the cache is bounded (least recently used closed first), and a
//   socket is closed when no reply has used it for the inbound's udp_timeout, i.e. once the NAT
//   sessions that used it have expired.
// - Each client source address is one reply sink (the router's NAT keys sessions by sink and
//   source). Sinks are bounded too and are closed when idle.
//
// Bad input (a datagram without an original destination, one addressed to the listener itself,
// a TCP connection to the listener's own address) is dropped or closed on its own and counted.
#include <ifaddrs.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <unordered_map>
#include <vector>

#include "base/log.h"
#include "inbound/inbound.h"
#include "loop/buffer_pool.h"
#include "loop/uv_util.h"

namespace veer::inbound {

namespace {

struct SockHash {
  size_t operator()(const SocketAddress& a) const {
    IpAddress ip = a.ip();
    size_t h = a.port();
    for (size_t i = 0; i < ip.size(); ++i) h = h * 131 + ip.data()[i];
    return h;
  }
};

SocketAddress unmapped(const SocketAddress& a) { return SocketAddress(a.ip().unmap(), a.port()); }

#ifdef __linux__

Error sockError(const std::string& what, int e) {
  std::string msg = what + ": " + std::strerror(e);
  if (e == EPERM || e == EACCES) msg += " (transparent sockets need CAP_NET_ADMIN: run as root)";
  if (e == ENOPROTOOPT || e == EOPNOTSUPP) {
    msg += " (the kernel lacks transparent proxy support: nf_tproxy / xt_TPROXY)";
  }
  return Error(msg, -e);
}

Status setOpt(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return unexpected(sockError(std::string("setsockopt ") + what, errno));
  }
  return {};
}

// Options every transparent listening socket needs before bind().
Status makeTransparent(int fd, int family, bool udp) {
  if (family == AF_INET6) {
    Status st = setOpt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
    if (!st) return st;
    if (udp) {
      st = setOpt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, 1, "IPV6_RECVORIGDSTADDR");
      // IPv4 datagrams on a dual-stack socket carry IP_ORIGDSTADDR, which needs the IPv4 flag.
      if (st) st = setOpt(fd, SOL_IP, IP_RECVORIGDSTADDR, 1, "IP_RECVORIGDSTADDR");
    }
    return st;
  }
  Status st = setOpt(fd, SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
  if (st && udp) st = setOpt(fd, SOL_IP, IP_RECVORIGDSTADDR, 1, "IP_RECVORIGDSTADDR");
  return st;
}

#endif

class TproxyInbound;

class TproxySink : public conn::UdpReplySink {
 public:
  TproxySink(TproxyInbound* in, const SocketAddress& client) : in_(in), client_(client) {}
  void sendReply(const Destination& from, const char* data, size_t len) override;

  SocketAddress client() const { return client_; }
  uint64_t last_active = 0;
  std::list<TproxySink*>::iterator lru;

 private:
  TproxyInbound* in_;
  SocketAddress client_;
};

class TproxyInbound : public Inbound {
 public:
  TproxyInbound(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                const TproxyOptions& opts)
      : Inbound("tproxy", std::move(tag)), loop_(loop), handler_(handler), opts_(opts) {
    opts_.max_reply_sockets = std::max<size_t>(opts_.max_reply_sockets, 1);
    opts_.max_udp_clients = std::max<size_t>(opts_.max_udp_clients, 1);
  }
  ~TproxyInbound() override { stop(); }

  Status start() override {
#ifndef __linux__
    return unexpected(Error("inbound/tproxy[" + tag() +
                            "]: the tproxy inbound needs Linux (IP_TRANSPARENT)"));
#else
    auto ip = IpAddress::parse(opts_.listen.listen);
    if (!ip) return unexpected(Error("inbound/tproxy[" + tag() + "]: bad listen address"));
    int family = ip->isV6() ? AF_INET6 : AF_INET;
    if (opts_.tcp) {
      int rc = uv_tcp_init_ex(loop_, &tcp_, family);
      if (rc != 0) return unexpected(loop::uvError(rc, "inbound/tproxy[" + tag() + "]: tcp"));
      tcp_.data = this;
      tcp_open_ = true;
      uv_os_fd_t fd;
      uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd);
      Status st = makeTransparent(fd, family, false);
      if (st) {
        st = listenTcp(&tcp_, opts_.listen, [](uv_stream_t* server, int status) {
          if (status == 0) static_cast<TproxyInbound*>(server->data)->accept();
        });
      }
      if (!st) return unexpected(st.error().wrap("inbound/tproxy[" + tag() + "]: tcp"));
    }
    uint16_t port = opts_.listen.listen_port;
    if (port == 0 && opts_.tcp) {
      if (auto b = boundAddress()) port = b->port();
    }
    if (opts_.udp) {
      SocketAddress sa(*ip, port);
      Status st = openUdp(sa, family);
      if (!st) return unexpected(st.error().wrap("inbound/tproxy[" + tag() + "]: udp " + sa.toString()));
      if (port == 0) {
        sockaddr_storage ss{};
        socklen_t len = sizeof(ss);
        if (getsockname(udp_fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
          if (auto b = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) port = b->port();
        }
      }
    }
    bound_port_ = port;
    sweep_ms_ = std::clamp<uint64_t>(opts_.listen.udp_timeout_ms / 2, 1000, 30000);
    LOG_INFO("inbound/tproxy[%s]: listening on %s (%s%s%s)", tag().c_str(),
             SocketAddress(*ip, port).toString().c_str(), opts_.tcp ? "tcp" : "",
             opts_.tcp && opts_.udp ? "+" : "", opts_.udp ? "udp" : "");
    return {};
#endif
  }

  void stop() override {
    if (tcp_open_) {
      tcp_open_ = false;
      loop::closeHandle(&tcp_, nullptr);
    }
    if (udp_fd_ >= 0) {
      uv_poll_stop(&poll_);
      loop::closeHandle(&poll_, nullptr);
      // The poll handle is stopped, so the fd may be closed now (libuv never closes it).
      ::close(udp_fd_);
      udp_fd_ = -1;
    }
    if (timer_open_) {
      timer_open_ = false;
      loop::closeHandle(&timer_, nullptr);
    }
    for (auto& [k, s] : sinks_) handler_->udpSinkClosed(s.get());
    sinks_.clear();
    sink_lru_.clear();
    for (auto& [k, r] : replies_) ::close(r.fd);
    replies_.clear();
    reply_lru_.clear();
    if (stats_.no_orig_dst || stats_.not_redirected || stats_.reply_sockets_evicted) {
      LOG_INFO("inbound/tproxy[%s]: dropped %llu datagram(s) without original destination, "
               "%llu not redirected; %llu reply socket(s) evicted",
               tag().c_str(), static_cast<unsigned long long>(stats_.no_orig_dst),
               static_cast<unsigned long long>(stats_.not_redirected),
               static_cast<unsigned long long>(stats_.reply_sockets_evicted));
    }
  }

  std::optional<SocketAddress> boundAddress() const override {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (tcp_open_ && uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
    }
    socklen_t slen = sizeof(ss);
    if (udp_fd_ >= 0 && getsockname(udp_fd_, reinterpret_cast<sockaddr*>(&ss), &slen) == 0) {
      return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
    }
    return std::nullopt;
  }

  // Called by a sink: one reply for `client`, which must appear to come from `from`.
  void sendReply(TproxySink* sink, const Destination& from, const char* data, size_t len) {
#ifdef __linux__
    touchSink(sink);
    if (from.isDomain() || !from.ip.valid()) {
      LOG_DEBUG("inbound/tproxy[%s]: reply for %s from %s has no address; dropped", tag().c_str(),
                sink->client().toString().c_str(), from.toString().c_str());
      return;
    }
    SocketAddress src(from.ip.unmap(), from.port);
    SocketAddress client = sink->client();
    if (src.ip().isV4() != client.ip().isV4()) {
      LOG_DEBUG("inbound/tproxy[%s]: reply from %s cannot reach %s (address families differ)",
                tag().c_str(), src.toString().c_str(), client.toString().c_str());
      return;
    }
    int fd = replySocket(src);
    if (fd < 0) return;
    ssize_t n = ::sendto(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, client.sa(), client.len());
    if (n < 0) {
      LOG_DEBUG("inbound/tproxy[%s]: udp reply %s -> %s: %s", tag().c_str(), src.toString().c_str(),
                client.toString().c_str(), std::strerror(errno));
    }
#else
    (void)sink, (void)from, (void)data, (void)len;
#endif
  }

 private:
  struct ReplySocket {
    int fd = -1;
    uint64_t last_used = 0;
    std::list<SocketAddress>::iterator lru;
  };
  struct Stats {
    uint64_t no_orig_dst = 0;      // datagrams without IP(V6)_ORIGDSTADDR
    uint64_t not_redirected = 0;   // datagrams/connections addressed to the listener itself
    uint64_t reply_sockets_evicted = 0;
  };

#ifdef __linux__
  Status openUdp(const SocketAddress& sa, int family) {
    int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return unexpected(sockError("socket", errno));
    Status st = setOpt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    if (st && family == AF_INET6) st = setOpt(fd, SOL_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
    if (st) st = makeTransparent(fd, family, true);
    if (st && ::bind(fd, sa.sa(), sa.len()) != 0) st = unexpected(sockError("bind", errno));
    if (!st) {
      ::close(fd);
      return st;
    }
    int rc = uv_poll_init_socket(loop_, &poll_, fd);
    if (rc != 0) {
      ::close(fd);
      return unexpected(loop::uvError(rc, "poll"));
    }
    poll_.data = this;
    udp_fd_ = fd;
    rc = uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* h, int status, int) {
      auto* self = static_cast<TproxyInbound*>(h->data);
      if (status == 0) self->onReadable();
    });
    if (rc != 0) return unexpected(loop::uvError(rc, "poll"));
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    timer_open_ = true;
    // The sweep keeps nothing alive by itself.
    uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
    return {};
  }

  void accept() {
    auto* client = new uv_tcp_t;
    uv_tcp_init(loop_, client);
    auto drop = [](uv_tcp_t* c) {
      loop::closeHandle(c, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    };
    if (uv_accept(reinterpret_cast<uv_stream_t*>(&tcp_), reinterpret_cast<uv_stream_t*>(client)) !=
        0) {
      drop(client);
      return;
    }
    uv_tcp_nodelay(client, 1);
    conn::InboundContext ctx;
    ctx.inbound_tag = tag();
    ctx.inbound_type = "tproxy";
    ctx.network = "tcp";
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(client, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) {
        ctx.source = unmapped(*sa);
      }
    }
    std::optional<SocketAddress> local;
    len = sizeof(ss);
    if (uv_tcp_getsockname(client, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      local = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
    }
    if (!local || isOwnListener(loop_, unmapped(*local), bound_port_)) {
      ++stats_.not_redirected;
      LOG_WARN("inbound/tproxy[%s]: tcp %s -> %s was not sent by TPROXY (no original "
               "destination); closed",
               tag().c_str(), ctx.source.toString().c_str(),
               local ? unmapped(*local).toString().c_str() : "?");
      drop(client);
      return;
    }
    SocketAddress dst = unmapped(*local);
    ctx.destination.ip = dst.ip();
    ctx.destination.port = dst.port();
    opts_.listen.applyTo(ctx);
    handler_->handleTcp(std::move(ctx), client, std::string(), nullptr);
  }

  void onReadable() {
    // A bounded batch per wakeup, so that a flood cannot hold the loop.
    constexpr int kBatch = 64;
    constexpr size_t kBuf = 65536;
    char* buf = loop::BufferPool::local().acquire(kBuf);
    for (int i = 0; i < kBatch && udp_fd_ >= 0; ++i) {
      sockaddr_storage src{};
      alignas(cmsghdr) char control[256];
      iovec iov{buf, kBuf};
      msghdr msg{};
      msg.msg_name = &src;
      msg.msg_namelen = sizeof(src);
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = ::recvmsg(udp_fd_, &msg, MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          // ICMP errors queued on the socket and the like: not fatal for the listener.
          LOG_DEBUG("inbound/tproxy[%s]: recvmsg: %s", tag().c_str(), std::strerror(errno));
          continue;
        }
        break;
      }
      auto from = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&src));
      if (!from) continue;
      std::optional<SocketAddress> dst;
      if (!(msg.msg_flags & MSG_CTRUNC)) {
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
          if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR &&
              c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in))) {
            sockaddr_in sin;
            std::memcpy(&sin, CMSG_DATA(c), sizeof(sin));
            dst = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&sin));
          } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR &&
                     c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in6))) {
            sockaddr_in6 sin6;
            std::memcpy(&sin6, CMSG_DATA(c), sizeof(sin6));
            dst = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&sin6));
          }
        }
      }
      SocketAddress client = unmapped(*from);
      if (!dst) {
        ++stats_.no_orig_dst;
        LOG_DEBUG("inbound/tproxy[%s]: udp from %s without original destination; dropped (%llu)",
                  tag().c_str(), client.toString().c_str(),
                  static_cast<unsigned long long>(stats_.no_orig_dst));
        continue;
      }
      SocketAddress orig = unmapped(*dst);
      if (isOwnListener(loop_, orig, bound_port_)) {
        ++stats_.not_redirected;
        LOG_DEBUG("inbound/tproxy[%s]: udp from %s to the listener itself (%s, not sent by "
                  "TPROXY: no original destination); dropped (%llu)",
                  tag().c_str(), client.toString().c_str(), orig.toString().c_str(),
                  static_cast<unsigned long long>(stats_.not_redirected));
        continue;
      }
      onDatagram(buf, static_cast<size_t>(n), client, orig);
    }
    loop::BufferPool::local().release(buf, kBuf);
  }

  void onDatagram(const char* data, size_t len, const SocketAddress& client,
                  const SocketAddress& orig) {
    TproxySink* sink = nullptr;
    auto it = sinks_.find(client);
    if (it != sinks_.end()) {
      sink = it->second.get();
    } else {
      while (sinks_.size() >= opts_.max_udp_clients && !sink_lru_.empty()) {
        closeSink(sink_lru_.back());
      }
      auto s = std::make_unique<TproxySink>(this, client);
      sink = s.get();
      sink_lru_.push_front(sink);
      sink->lru = sink_lru_.begin();
      sinks_.emplace(client, std::move(s));
      armSweep();
    }
    touchSink(sink);
    conn::InboundContext ctx;
    ctx.inbound_tag = tag();
    ctx.inbound_type = "tproxy";
    ctx.network = "udp";
    ctx.source = client;
    ctx.destination.ip = orig.ip();
    ctx.destination.port = orig.port();
    opts_.listen.applyTo(ctx);
    handler_->handleUdp(ctx, data, len, sink);
    // The router may have called back into us; nothing below touches `sink`.
  }

  void touchSink(TproxySink* s) {
    s->last_active = uv_now(loop_);
    if (s->lru != sink_lru_.begin()) sink_lru_.splice(sink_lru_.begin(), sink_lru_, s->lru);
  }

  void closeSink(TproxySink* s) {
    handler_->udpSinkClosed(s);
    sink_lru_.erase(s->lru);
    sinks_.erase(s->client());
  }

  // The transparent socket bound to `src`, opened on first use.
  int replySocket(const SocketAddress& src) {
    uint64_t now = uv_now(loop_);
    auto it = replies_.find(src);
    if (it != replies_.end()) {
      it->second.last_used = now;
      reply_lru_.splice(reply_lru_.begin(), reply_lru_, it->second.lru);
      return it->second.fd;
    }
    while (replies_.size() >= opts_.max_reply_sockets && !reply_lru_.empty()) {
      auto victim = replies_.find(reply_lru_.back());
      ::close(victim->second.fd);
      replies_.erase(victim);
      reply_lru_.pop_back();
      ++stats_.reply_sockets_evicted;
    }
    int family = src.ip().isV4() ? AF_INET : AF_INET6;
    int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      LOG_WARN("inbound/tproxy[%s]: reply socket for %s: %s", tag().c_str(), src.toString().c_str(),
               std::strerror(errno));
      return -1;
    }
    // SO_REUSEADDR: another process (or a TCP/other UDP socket of ours) may already hold the
    // address; the socket only sends.
    Status st = setOpt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    if (st && family == AF_INET6) st = setOpt(fd, SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
    if (st) {
      st = family == AF_INET6 ? setOpt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT")
                              : setOpt(fd, SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
    }
    // Nothing is ever read from it: keep its receive buffer minimal.
    if (st) (void)setOpt(fd, SOL_SOCKET, SO_RCVBUF, 1, "SO_RCVBUF");
    if (st && ::bind(fd, src.sa(), src.len()) != 0) st = unexpected(sockError("bind", errno));
    if (!st) {
      LOG_WARN("inbound/tproxy[%s]: reply socket for %s: %s", tag().c_str(), src.toString().c_str(),
               st.error().message().c_str());
      ::close(fd);
      return -1;
    }
    reply_lru_.push_front(src);
    ReplySocket r;
    r.fd = fd;
    r.last_used = now;
    r.lru = reply_lru_.begin();
    replies_.emplace(src, r);
    armSweep();
    LOG_DEBUG("inbound/tproxy[%s]: reply socket for %s opened (%zu open)", tag().c_str(),
              src.toString().c_str(), replies_.size());
    return fd;
  }

  void armSweep() {
    if (!timer_open_ || uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) return;
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<TproxyInbound*>(t->data)->sweep(); },
                   sweep_ms_, sweep_ms_);
  }

  // Closes reply sockets no reply has used for udp_timeout (the NAT sessions that used them
  // have expired by then) and client sinks idle for longer than any of their sessions can be.
  void sweep() {
    uint64_t now = uv_now(loop_);
    uint64_t reply_idle = opts_.listen.udp_timeout_ms;
    while (!reply_lru_.empty()) {
      auto it = replies_.find(reply_lru_.back());
      if (now - it->second.last_used < reply_idle) break;
      ::close(it->second.fd);
      replies_.erase(it);
      reply_lru_.pop_back();
    }
    // A route rule's udp_timeout may exceed the inbound's: sinks stay at least 5 minutes.
    uint64_t sink_idle = std::max<uint64_t>(opts_.listen.udp_timeout_ms, 300000);
    while (!sink_lru_.empty() && now - sink_lru_.back()->last_active >= sink_idle) {
      closeSink(sink_lru_.back());
    }
    if (sinks_.empty() && replies_.empty()) uv_timer_stop(&timer_);
  }
#else
  void accept() {}
  void onReadable() {}
  void touchSink(TproxySink*) {}
  void sweep() {}
#endif

  uv_loop_t* loop_;
  conn::ConnectionHandler* handler_;
  TproxyOptions opts_;
  uv_tcp_t tcp_{};
  bool tcp_open_ = false;
  int udp_fd_ = -1;
  uv_poll_t poll_{};
  uv_timer_t timer_{};
  bool timer_open_ = false;
  uint64_t sweep_ms_ = 1000;
  uint16_t bound_port_ = 0;
  std::unordered_map<SocketAddress, std::unique_ptr<TproxySink>, SockHash> sinks_;
  std::list<TproxySink*> sink_lru_;  // front = most recent
  std::unordered_map<SocketAddress, ReplySocket, SockHash> replies_;
  std::list<SocketAddress> reply_lru_;  // front = most recent
  Stats stats_;
};

void TproxySink::sendReply(const Destination& from, const char* data, size_t len) {
  in_->sendReply(this, from, data, len);
}

// This host's addresses, re-read at most every few seconds (they change rarely, and the
// check runs only for traffic addressed to the listener's own port).
struct LocalAddresses {
  std::vector<IpAddress> ips;
  uint64_t read_at = 0;
  bool valid = false;
};

}  // namespace

bool isOwnListener(uv_loop_t* loop, const SocketAddress& dst, uint16_t port) {
  if (port == 0 || dst.port() != port) return false;
  IpAddress ip = dst.ip().unmap();
  if (ip.isLoopback() || ip.isUnspecified()) return true;
  static thread_local LocalAddresses cache;
  uint64_t now = uv_now(loop);
  if (!cache.valid || now - cache.read_at > 5000) {
    cache.ips.clear();
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) == 0) {
      for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
        if (a->ifa_addr == nullptr) continue;
        if (auto sa = SocketAddress::fromSockaddr(a->ifa_addr)) cache.ips.push_back(sa->ip().unmap());
      }
      freeifaddrs(list);
    }
    cache.read_at = now;
    cache.valid = true;
  }
  return std::find(cache.ips.begin(), cache.ips.end(), ip) != cache.ips.end();
}

InboundPtr makeTproxy(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                      const TproxyOptions& opts) {
  return std::make_unique<TproxyInbound>(std::move(tag), loop, handler, opts);
}

}  // namespace veer::inbound
