// SOCKS4/4a/5 client outbound (RFC 1928, RFC 1929; sing-box protocol/socks/outbound.go).
// TCP: CONNECT, the handshake finished before the connection goes to the router. UDP: UDP
// ASSOCIATE, with the control connection kept open for the life of the PacketConn.
#include <cstring>
#include <deque>

#include "base/log.h"
#include "loop/defer.h"
#include "loop/uv_util.h"
#include "outbound/handshake.h"
#include "outbound/outbound.h"

namespace veer::outbound {

namespace {

const char* replyText(uint8_t rep) {
  switch (rep) {
    case 1: return "general SOCKS server failure";
    case 2: return "connection not allowed by ruleset";
    case 3: return "network unreachable";
    case 4: return "host unreachable";
    case 5: return "connection refused";
    case 6: return "TTL expired";
    case 7: return "command not supported";
    case 8: return "address type not supported";
    default: return "unknown reply code";
  }
}

uint8_t u8at(const std::string& b, size_t i) { return static_cast<uint8_t>(b[i]); }

/// Runs a SOCKS5 exchange for `cmd` to `dst`; `bound` receives BND.ADDR:BND.PORT, then the
/// handshake succeeds (the caller's done callback gets the connection).
void socks5(Handshake* hs, const SocksOptions& o, uint8_t cmd, const Destination& dst,
            std::function<void(const Destination&)> bound) {
  bool creds = !o.username.empty() || !o.password.empty();
  if (dst.isDomain() && dst.domain.size() > 255) {
    hs->fail("domain name too long for SOCKS5");
    return;
  }
  std::string greeting = creds ? std::string("\x05\x02\x00\x02", 4) : std::string("\x05\x01\x00", 3);
  std::string request("\x05", 1);
  request.push_back(static_cast<char>(cmd));
  request.push_back(0);
  appendSocksAddr(request, dst);
  hs->write(std::move(greeting));
  auto sendRequest = [hs, request, bound](size_t base) {
    hs->write(request);
    hs->readUntil(base + 5, [hs, base, bound] {
      const std::string& b = hs->buffer();
      if (u8at(b, base) != 5) return hs->fail("bad SOCKS5 reply (not a SOCKS5 server?)");
      uint8_t rep = u8at(b, base + 1);
      if (rep != 0) {
        return hs->fail(std::string("SOCKS5 request failed: ") + replyText(rep) + " (code " +
                        std::to_string(rep) + ")");
      }
      uint8_t atyp = u8at(b, base + 3);
      size_t addr_len;
      if (atyp == 1) addr_len = 4;
      else if (atyp == 4) addr_len = 16;
      else if (atyp == 3) addr_len = 1 + u8at(b, base + 4);
      else return hs->fail("bad SOCKS5 reply address type " + std::to_string(atyp));
      size_t total = base + 4 + addr_len + 2;
      hs->readUntil(total, [hs, base, atyp, addr_len, total, bound] {
        const std::string& r = hs->buffer();
        Destination d;
        const auto* p = reinterpret_cast<const uint8_t*>(r.data()) + base + 4;
        if (atyp == 1) d.ip = IpAddress::v4(p);
        else if (atyp == 4) d.ip = IpAddress::v6(p);
        else d.domain.assign(reinterpret_cast<const char*>(p + 1), addr_len - 1);
        d.port = static_cast<uint16_t>(u8at(r, total - 2) << 8 | u8at(r, total - 1));
        if (bound) bound(d);
        hs->succeed(total);
      });
    });
  };
  hs->readUntil(2, [hs, o, creds, sendRequest] {
    const std::string& b = hs->buffer();
    if (u8at(b, 0) != 5) return hs->fail("bad SOCKS5 method reply (not a SOCKS5 server?)");
    uint8_t m = u8at(b, 1);
    if (m == 0) return sendRequest(2);
    if (m == 2 && creds) {
      if (o.username.size() > 255 || o.password.size() > 255) {
        return hs->fail("SOCKS5 username or password longer than 255 bytes");
      }
      std::string auth("\x01", 1);
      auth.push_back(static_cast<char>(o.username.size()));
      auth += o.username;
      auth.push_back(static_cast<char>(o.password.size()));
      auth += o.password;
      hs->write(std::move(auth));
      hs->readUntil(4, [hs, sendRequest] {
        if (u8at(hs->buffer(), 3) != 0) {
          return hs->fail("SOCKS5 authentication failed (wrong username or password)");
        }
        sendRequest(4);
      });
      return;
    }
    if (m == 0xff) {
      return hs->fail(creds ? "the SOCKS5 server accepted none of our authentication methods"
                            : "the SOCKS5 server requires authentication (set username and "
                              "password)");
    }
    hs->fail("the SOCKS5 server chose an unsupported method " + std::to_string(m));
  });
}

void socks4(Handshake* hs, const SocksOptions& o, const conn::InboundContext& ctx) {
  Destination dst = ctx.destination;
  if (dst.isDomain() && !o.v4a) {
    for (const auto& ip : ctx.destination_addresses) {
      if (ip.isV4()) {
        dst.ip = ip;
        dst.domain.clear();
        break;
      }
    }
    if (dst.isDomain()) {
      return hs->fail("SOCKS4 cannot carry the domain " + dst.domain + " (use version \"4a\")");
    }
  }
  if (!dst.isDomain() && !dst.ip.isV4()) return hs->fail("SOCKS4 cannot carry an IPv6 address");
  std::string req("\x04\x01", 2);
  req.push_back(static_cast<char>(dst.port >> 8));
  req.push_back(static_cast<char>(dst.port & 0xff));
  if (dst.isDomain()) req.append("\x00\x00\x00\x01", 4);
  else req.append(reinterpret_cast<const char*>(dst.ip.data()), 4);
  req += o.username;
  req.push_back(0);
  if (dst.isDomain()) {
    req += dst.domain;
    req.push_back(0);
  }
  hs->write(std::move(req));
  hs->readUntil(8, [hs] {
    uint8_t cd = u8at(hs->buffer(), 1);
    if (cd != 0x5a) {
      return hs->fail("SOCKS4 request rejected (code " + std::to_string(cd) + ")");
    }
    hs->succeed(8);
  });
}

class SocksPacketConn : public PacketConn {
 public:
  SocksPacketConn(uv_loop_t* loop, SharedOutbound via, Destination server, SocksOptions o,
                  ReceiveFn fn)
      : loop_(loop), via_(std::move(via)), server_(std::move(server)), o_(std::move(o)),
        on_receive_(std::move(fn)) {}

  Status open(const conn::InboundContext& ctx) {
    conn::InboundContext c = ctx;
    c.destination = server_;
    c.original_destination = server_;
    c.destination_addresses.clear();
    c.network = "udp";
    auto inner = via_->listenUdp(c, [this](const SocketAddress&, const char* d, size_t n) {
      onDatagram(d, n);
    });
    if (!inner) return unexpected(inner.error());
    inner_ = *inner;
    c.network = "tcp";
    via_id_ = via_->dialTcp(c, [this](Result<conn::StreamPtr> r) {
      via_id_ = 0;
      if (!r) return fail(r.error().message());
      hs_ = Handshake::start(loop_, std::move(*r), 10000, [this](Result<conn::StreamPtr> hr) {
        hs_ = nullptr;
        if (!hr) return fail(hr.error().message());
        onAssociated(std::move(*hr));
      });
      Destination any;
      any.ip = IpAddress::v4(uint32_t{0});
      any.port = 0;
      socks5(hs_, o_, 3, any, [this](const Destination& b) { relay_ = b; });
    });
    return {};
  }

  void send(const Destination& dst, const char* data, size_t len) override {
    if (closed_ || failed_) return;
    if (dst.isDomain() && dst.domain.size() > 255) return;
    std::string frame("\x00\x00\x00", 3);
    appendSocksAddr(frame, dst);
    frame.append(data, len);
    if (!ready_) {
      if (queue_.size() < 16) queue_.push_back(std::move(frame));
      return;
    }
    inner_->send(relay_, frame.data(), frame.size());
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    if (via_id_) via_->cancelDial(via_id_);
    if (hs_) hs_->abort();
    if (inner_) inner_->close();
    closeControl();
    loop::defer(loop_, [this] { delete this; });
  }

 private:
  void fail(const std::string& why) {
    failed_ = true;
    queue_.clear();
    LOG_WARN("socks UDP ASSOCIATE via %s: %s", server_.toString().c_str(), why.c_str());
  }

  void onAssociated(conn::StreamPtr control) {
    control_ = std::move(control);
    if (relay_.ip.valid() && relay_.ip.isUnspecified()) relay_.ip = IpAddress();
    uv_tcp_t* tcp = control_->socket();
    if (!relay_.isDomain() && !relay_.ip.valid() && tcp != nullptr) {
      // BND.ADDR 0.0.0.0: the relay is on the server's address.
      sockaddr_storage ss{};
      int len = sizeof(ss);
      if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        if (auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) {
          relay_.ip = sa->ip().unmap();
        }
      }
    }
    // The association lives as long as the control connection: watch it.
    control_->readStart([this](int status, const char*, size_t) {
      if (status >= 0 || closed_) return;
      fail("the control connection closed");
      ready_ = false;
      closeControl();
    });
    ready_ = true;
    auto q = std::move(queue_);
    for (auto& f : q) inner_->send(relay_, f.data(), f.size());
  }

  void closeControl() { control_.reset(); }

  void onDatagram(const char* d, size_t n) {
    if (closed_ || !ready_ || n < 4) return;
    const auto* p = reinterpret_cast<const uint8_t*>(d);
    if (p[2] != 0) return;  // fragments are not supported (dropped, as RFC 1928 allows)
    size_t off = 4;
    IpAddress ip;
    if (p[3] == 1 && n >= off + 6) {
      ip = IpAddress::v4(p + off);
      off += 4;
    } else if (p[3] == 4 && n >= off + 18) {
      ip = IpAddress::v6(p + off);
      off += 16;
    } else {
      return;  // a domain source cannot be reported as a SocketAddress
    }
    uint16_t port = static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
    off += 2;
    on_receive_(SocketAddress(ip.unmap(), port), d + off, n - off);
  }

  uv_loop_t* loop_;
  SharedOutbound via_;
  Destination server_;
  SocksOptions o_;
  ReceiveFn on_receive_;
  PacketConn* inner_ = nullptr;
  uint64_t via_id_ = 0;
  Handshake* hs_ = nullptr;
  conn::StreamPtr control_;
  Destination relay_;
  std::deque<std::string> queue_;
  bool ready_ = false, failed_ = false, closed_ = false;
  char scratch_[256];
};

class SocksOutbound : public ProxyOutbound {
 public:
  SocksOutbound(std::string tag, uv_loop_t* loop, SharedOutbound via, const SocksOptions& o)
      : ProxyOutbound("socks", std::move(tag), loop, std::move(via), o.server, o.server_port),
        o_(o) {}

  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    if (!o_.tcp) {
      return refuse(std::move(cb), Error("socks outbound: TCP is disabled by \"network\": \"udp\""));
    }
    return ProxyOutbound::dialTcp(ctx, std::move(cb));
  }

  Result<PacketConn*> listenUdp(const conn::InboundContext& ctx,
                                PacketConn::ReceiveFn fn) override {
    if (!o_.udp) return unexpected(Error("socks outbound: UDP is disabled by \"network\": \"tcp\""));
    if (o_.version != 5) return unexpected(Error("socks outbound: UDP needs SOCKS version 5"));
    auto* pc = new SocksPacketConn(loop_, via_, server_, o_, std::move(fn));
    Status st = pc->open(ctx);
    if (!st) {
      delete pc;
      return unexpected(st.error().wrap("socks outbound"));
    }
    return static_cast<PacketConn*>(pc);
  }

 protected:
  void runHandshake(Handshake* hs, const conn::InboundContext& ctx) override {
    if (o_.version == 4) {
      socks4(hs, o_, ctx);
    } else {
      socks5(hs, o_, 1, ctx.destination, nullptr);
    }
  }

 private:
  SocksOptions o_;
};

}  // namespace

OutboundPtr makeSocks(std::string tag, uv_loop_t* loop, SharedOutbound via,
                      const SocksOptions& opts) {
  return std::make_unique<SocksOutbound>(std::move(tag), loop, std::move(via), opts);
}

}  // namespace veer::outbound
