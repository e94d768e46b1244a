// The direct inbound (sing-box's port forward): every TCP connection and UDP datagram that
// arrives goes to override_address:override_port (or, without them, to the listen address,
// which only makes sense behind a redirect), through the router.
#include <unordered_map>

#include "base/log.h"
#include "inbound/inbound.h"
#include "inbound/sink_table.h"
#include "loop/buffer_pool.h"
#include "loop/uv_util.h"

namespace veer::inbound {

namespace {

class DirectInbound;

class DirectSink : public conn::UdpReplySink {
 public:
  DirectSink(uv_udp_t* udp, SocketAddress client) : udp_(udp), client_(client) {}
  void sendReply(const Destination&, const char* data, size_t len) override {
    uv_buf_t b = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
    int rc = uv_udp_try_send(udp_, &b, 1, client_.sa());
    if (rc < 0) LOG_DEBUG("direct udp reply to %s: %s", client_.toString().c_str(), uv_strerror(rc));
  }

 private:
  uv_udp_t* udp_;
  SocketAddress client_;
};

class DirectInbound : public Inbound {
 public:
  DirectInbound(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                const DirectInboundOptions& opts)
      : Inbound("direct", std::move(tag)), loop_(loop), handler_(handler), opts_(opts) {}
  ~DirectInbound() override { stop(); }

  Status start() override {
    if (opts_.tcp) {
      uv_tcp_init(loop_, &tcp_);
      tcp_.data = this;
      tcp_open_ = true;
      Status st = listenTcp(&tcp_, opts_.listen, [](uv_stream_t* server, int status) {
                              if (status == 0) static_cast<DirectInbound*>(server->data)->accept();
                            });
      if (!st) return unexpected(st.error().wrap("inbound/direct[" + tag() + "]"));
    }
    if (opts_.udp) {
      auto ip = IpAddress::parse(opts_.listen.listen);
      if (!ip) return unexpected(Error("inbound/direct[" + tag() + "]: bad listen address"));
      uint16_t port = opts_.listen.listen_port;
      if (port == 0 && opts_.tcp) {
        if (auto b = boundAddress()) port = b->port();
      }
      SocketAddress sa(*ip, port);
      uv_udp_init(loop_, &udp_);
      udp_.data = this;
      udp_open_ = true;
      int rc = uv_udp_bind(&udp_, sa.sa(), 0);
      if (rc == 0) {
        rc = uv_udp_recv_start(
            &udp_,
            [](uv_handle_t*, size_t, uv_buf_t* buf) {
              buf->base = loop::BufferPool::local().acquire(65536);
              buf->len = 65536;
            },
            [](uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* addr, unsigned) {
              auto* self = static_cast<DirectInbound*>(h->data);
              if (n > 0 && addr) {
                if (auto from = SocketAddress::fromSockaddr(addr)) {
                  self->onDatagram(buf->base, static_cast<size_t>(n), *from);
                }
              }
              if (buf->base) loop::BufferPool::local().release(buf->base, buf->len);
            });
      }
      if (rc != 0) {
        return unexpected(loop::uvError(rc, "inbound/direct[" + tag() + "]: udp " + sa.toString()));
      }
    }
    LOG_INFO("inbound/direct[%s]: listening on %s:%u -> %s", tag().c_str(),
             opts_.listen.listen.c_str(), boundAddress() ? boundAddress()->port() : opts_.listen.listen_port,
             target(Destination{}).toString().c_str());
    return {};
  }

  void stop() override {
    if (tcp_open_) {
      tcp_open_ = false;
      loop::closeHandle(&tcp_, nullptr);
    }
    if (udp_open_) {
      udp_open_ = false;
      sinks_.clear();
      uv_udp_recv_stop(&udp_);
      loop::closeHandle(&udp_, nullptr);
    }
  }

  std::optional<SocketAddress> boundAddress() const override {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (tcp_open_ && uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
    }
    if (udp_open_ && uv_udp_getsockname(&udp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
    }
    return std::nullopt;
  }

 private:
  Destination target(const Destination& fallback) const {
    Destination d = fallback;
    if (!opts_.override_address.empty()) d = Destination::fromHost(opts_.override_address, d.port);
    if (opts_.override_port != 0) d.port = opts_.override_port;
    return d;
  }

  void accept() {
    auto* client = new uv_tcp_t;
    uv_tcp_init(loop_, client);
    if (uv_accept(reinterpret_cast<uv_stream_t*>(&tcp_), reinterpret_cast<uv_stream_t*>(client)) != 0) {
      loop::closeHandle(client, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
      return;
    }
    uv_tcp_nodelay(client, 1);
    conn::InboundContext ctx;
    ctx.inbound_tag = tag();
    ctx.inbound_type = "direct";
    ctx.network = "tcp";
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(client, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) ctx.source = *sa;
    }
    Destination local;
    len = sizeof(ss);
    if (uv_tcp_getsockname(client, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) {
        local.ip = sa->ip();
        local.port = sa->port();
      }
    }
    ctx.destination = target(local);
    opts_.listen.applyTo(ctx);
    handler_->handleTcp(std::move(ctx), client, std::string(), nullptr);
  }

  void onDatagram(const char* data, size_t len, const SocketAddress& from) {
    DirectSink* sink =
        sinks_.get(from, [&] { return std::make_unique<DirectSink>(&udp_, from); });
    conn::InboundContext ctx;
    ctx.inbound_tag = tag();
    ctx.inbound_type = "direct";
    ctx.network = "udp";
    ctx.source = from;
    Destination local;
    if (auto b = boundAddress()) {
      local.ip = b->ip();
      local.port = b->port();
    }
    ctx.destination = target(local);
    opts_.listen.applyTo(ctx);
    handler_->handleUdp(ctx, data, len, sink);
  }

  uv_loop_t* loop_;
  conn::ConnectionHandler* handler_;
  DirectInboundOptions opts_;
  uv_tcp_t tcp_{};
  uv_udp_t udp_{};
  bool tcp_open_ = false, udp_open_ = false;
  SinkTable<DirectSink> sinks_{handler_, 4096};
};

}  // namespace

InboundPtr makeDirectInbound(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                             const DirectInboundOptions& opts) {
  return std::make_unique<DirectInbound>(std::move(tag), loop, handler, opts);
}

}  // namespace veer::inbound
