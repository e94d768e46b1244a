#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "base/log.h"
#include "loop/buffer_pool.h"
#include "loop/defer.h"
#include "loop/uv_util.h"
#include "outbound/outbound.h"

namespace veer::outbound {

namespace {

class DirectPacketConn : public PacketConn {
 public:
  DirectPacketConn(uv_loop_t* loop, conn::HostResolver* resolver, const DirectOptions& opts,
                   ReceiveFn fn)
      : loop_(loop), resolver_(resolver), opts_(opts), on_receive_(std::move(fn)) {}

  Status open() {
    // One dual-stack socket serves IPv4 and IPv6 destinations (IPv4 as ::ffff:a.b.c.d).
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    family_ = AF_INET6;
    if (fd >= 0) {
      int zero = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    } else {
      fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      family_ = AF_INET;
    }
    if (fd < 0) return unexpected(Error(std::string("udp socket: ") + strerror(errno), -errno));
    conn::DialOptions o = opts_.dial;
    if (family_ == AF_INET6) o.inet6_bind_address = {};  // a v6 bind would break v4 sends
    Status st = conn::applySocketOptions(fd, family_, o);
    if (!st) {
      ::close(fd);
      return st;
    }
    uv_udp_init(loop_, &udp_);
    udp_.data = this;
    int rc = uv_udp_open(&udp_, fd);
    if (rc != 0) {
      ::close(fd);
      uv_close(reinterpret_cast<uv_handle_t*>(&udp_), nullptr);
      return unexpected(loop::uvError(rc, "udp open"));
    }
    rc = uv_udp_recv_start(
        &udp_,
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          buf->base = loop::BufferPool::local().acquire(65536);
          buf->len = 65536;
        },
        [](uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* addr, unsigned) {
          auto* self = static_cast<DirectPacketConn*>(h->data);
          if (n > 0 && addr != nullptr && !self->closed_) {
            auto from = SocketAddress::fromSockaddr(addr);
            if (from) {
              SocketAddress unmapped(from->ip().unmap(), from->port());
              self->on_receive_(unmapped, buf->base, static_cast<size_t>(n));
            }
          }
          if (buf->base) loop::BufferPool::local().release(buf->base, buf->len);
        });
    if (rc != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&udp_), nullptr);
      return unexpected(loop::uvError(rc, "udp recv"));
    }
    return {};
  }

  void send(const Destination& dst, const char* data, size_t len) override {
    if (closed_) return;
    if (!dst.isDomain()) {
      sendTo(dst.ip, dst.port, data, len);
      return;
    }
    auto it = resolved_.find(dst.domain);
    if (it != resolved_.end()) {
      sendTo(it->second, dst.port, data, len);
      return;
    }
    auto& q = pending_[dst.domain];
    // Bounded queue while the name resolves: UDP may drop, memory may not grow.
    if (q.size() < 16) q.push_back(Pending{dst.port, std::string(data, len)});
    if (q.size() == 1) {
      std::string domain = dst.domain;
      ++resolving_;
      resolve_ids_.push_back(resolver_->resolve(
          domain, opts_.domain_strategy,
          [this, domain](Result<std::vector<IpAddress>> r) {
            --resolving_;
            auto queued = std::move(pending_[domain]);
            pending_.erase(domain);
            if (!r || r->empty()) {
              LOG_DEBUG("udp: %s", r ? "no address" : r.error().message().c_str());
            } else {
              resolved_[domain] = r->front();
              for (auto& p : queued) sendTo(r->front(), p.port, p.data.data(), p.data.size());
            }
            maybeFree();
          }));
    }
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    for (uint64_t id : resolve_ids_) resolver_->cancel(id);
    resolving_ = 0;
    uv_udp_recv_stop(&udp_);
    loop::closeHandle(&udp_, [](uv_handle_t* h) {
      auto* self = static_cast<DirectPacketConn*>(h->data);
      self->handle_closed_ = true;
      self->maybeFree();
    });
  }

 private:
  struct Pending {
    uint16_t port;
    std::string data;
  };

  void maybeFree() {
    if (closed_ && handle_closed_) delete this;
  }

  void sendTo(const IpAddress& ip, uint16_t port, const char* data, size_t len) {
    IpAddress target = ip;
    if (family_ == AF_INET6 && ip.isV4()) {
      uint8_t m[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      std::memcpy(m + 12, ip.data(), 4);
      target = IpAddress::v6(m);
    } else if (family_ == AF_INET && ip.isV6()) {
      return;  // no IPv6 on this host
    }
    SocketAddress sa(target, port);
    uv_buf_t b = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
    int rc = uv_udp_try_send(&udp_, &b, 1, sa.sa());
    if (rc < 0) LOG_DEBUG("udp send to %s: %s", sa.toString().c_str(), uv_strerror(rc));
  }

  uv_loop_t* loop_;
  conn::HostResolver* resolver_;
  DirectOptions opts_;
  ReceiveFn on_receive_;
  uv_udp_t udp_{};
  int family_ = AF_INET6;
  bool closed_ = false;
  bool handle_closed_ = false;
  int resolving_ = 0;
  std::vector<uint64_t> resolve_ids_;
  std::unordered_map<std::string, IpAddress> resolved_;
  std::unordered_map<std::string, std::deque<Pending>> pending_;
};

class DirectOutbound : public Outbound {
 public:
  DirectOutbound(std::string tag, uv_loop_t* loop, conn::HostResolver* resolver,
                 const DirectOptions& opts)
      : Outbound("direct", std::move(tag)), loop_(loop), resolver_(resolver), opts_(opts) {}

  ~DirectOutbound() override {
    for (auto& [id, op] : ops_) {
      if (op.dialer) op.dialer->cancel();
      if (op.resolve_id) resolver_->cancel(op.resolve_id);
    }
  }

  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    uint64_t id = next_id_++;
    Op& op = ops_[id];
    op.cb = std::move(cb);
    const Destination& dst = ctx.destination;
    if (!ctx.destination_addresses.empty()) {
      std::vector<SocketAddress> addrs;
      for (const auto& ip : conn::applyStrategy(ctx.destination_addresses, opts_.domain_strategy)) {
        addrs.emplace_back(ip, dst.port);
      }
      startDial(id, std::move(addrs), dst.toString());
    } else if (!dst.isDomain()) {
      startDial(id, {SocketAddress(dst.ip, dst.port)}, dst.toString());
    } else {
      uint16_t port = dst.port;
      std::string what = dst.toString();
      op.resolve_id = resolver_->resolve(
          dst.domain, opts_.domain_strategy,
          [this, id, port, what](Result<std::vector<IpAddress>> r) {
            auto it = ops_.find(id);
            if (it == ops_.end()) return;
            it->second.resolve_id = 0;
            if (!r) {
              complete(id, unexpected(r.error().wrap("dial " + what)));
              return;
            }
            std::vector<SocketAddress> addrs;
            for (const auto& ip : *r) addrs.emplace_back(ip, port);
            startDial(id, std::move(addrs), what);
          });
    }
    return id;
  }

  void cancelDial(uint64_t id) override {
    auto it = ops_.find(id);
    if (it == ops_.end()) return;
    if (it->second.dialer) it->second.dialer->cancel();
    if (it->second.resolve_id) resolver_->cancel(it->second.resolve_id);
    ops_.erase(it);
  }

  Result<PacketConn*> listenUdp(const conn::InboundContext&, PacketConn::ReceiveFn fn) override {
    auto* pc = new DirectPacketConn(loop_, resolver_, opts_, std::move(fn));
    Status st = pc->open();
    if (!st) {
      delete pc;
      return unexpected(st.error());
    }
    return static_cast<PacketConn*>(pc);
  }

 private:
  struct Op {
    DialCallback cb;
    conn::Dialer* dialer = nullptr;
    uint64_t resolve_id = 0;
  };

  void startDial(uint64_t id, std::vector<SocketAddress> addrs, const std::string& what) {
    ops_[id].dialer = conn::Dialer::start(loop_, std::move(addrs), opts_.dial,
                                          [this, id, what](Result<uv_tcp_t*> r) {
                                            auto it = ops_.find(id);
                                            if (it == ops_.end()) return;
                                            it->second.dialer = nullptr;
                                            complete(id, std::move(r));
                                          });
  }

  void complete(uint64_t id, Result<uv_tcp_t*> r) {
    auto it = ops_.find(id);
    if (it == ops_.end()) return;
    DialCallback cb = std::move(it->second.cb);
    ops_.erase(it);
    if (!r) {
      cb(unexpected(r.error()));
      return;
    }
    cb(conn::makeTcpStream(*r));
  }

  uv_loop_t* loop_;
  conn::HostResolver* resolver_;
  DirectOptions opts_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Op> ops_;
};

}  // namespace

OutboundPtr makeDirect(std::string tag, uv_loop_t* loop, conn::HostResolver* resolver,
                       const DirectOptions& opts) {
  return std::make_unique<DirectOutbound>(std::move(tag), loop, resolver, opts);
}

}  // namespace veer::outbound
