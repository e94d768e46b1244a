// Shadowsocks AEAD client outbound: TCP through a ShadowsocksStream over the connection `via`
// dials to the server, UDP through sealed datagrams over `via`'s PacketConn.
#include "outbound/shadowsocks.h"

#include <unordered_map>

#include "base/log.h"
#include "loop/defer.h"

namespace veer::outbound {

namespace {

class ShadowsocksPacketConn : public PacketConn {
 public:
  ShadowsocksPacketConn(uv_loop_t* loop, const ss::Cipher& c, Destination server, ReceiveFn fn)
      : loop_(loop), cipher_(c), server_(std::move(server)), on_receive_(std::move(fn)) {}

  Status open(Outbound& via, const conn::InboundContext& ctx) {
    conn::InboundContext c = ctx;
    c.destination = server_;
    c.original_destination = server_;
    c.destination_addresses.clear();
    c.network = "udp";
    auto inner = via.listenUdp(c, [this](const SocketAddress&, const char* d, size_t n) {
      onDatagram(d, n);
    });
    if (!inner) return unexpected(inner.error());
    inner_ = *inner;
    return {};
  }

  void send(const Destination& dst, const char* data, size_t len) override {
    if (closed_) return;
    plain_.clear();
    if (!ss::appendAddress(plain_, dst)) return;
    plain_.append(data, len);
    if (!ss::sealPacket(cipher_, asBytes(plain_), packet_)) return;
    inner_->send(server_, packet_.data(), packet_.size());
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    if (inner_) inner_->close();
    inner_ = nullptr;
    loop::defer(loop_, [this] { delete this; });
  }

 private:
  void onDatagram(const char* d, size_t n) {
    if (closed_) return;
    if (!ss::openPacket(cipher_, ByteView(reinterpret_cast<const uint8_t*>(d), n), reply_)) {
      // Logged once per session: a flood of bad datagrams must not flood the log.
      if (!warned_) {
        warned_ = true;
        LOG_WARN("shadowsocks UDP: decryption failed (wrong password or corrupted data) from "
                 "server %s; dropped",
                 server_.toString().c_str());
      }
      return;
    }
    Destination from;
    size_t used = 0;
    if (!ss::parseAddress(asBytes(reply_), from, used) || from.isDomain()) return;
    on_receive_(SocketAddress(from.ip.unmap(), from.port), reply_.data() + used,
                reply_.size() - used);
  }

  uv_loop_t* loop_;
  ss::Cipher cipher_;
  Destination server_;
  ReceiveFn on_receive_;
  PacketConn* inner_ = nullptr;
  std::string plain_, packet_, reply_;
  bool closed_ = false;
  bool warned_ = false;
};

class ShadowsocksOutbound : public Outbound {
 public:
  ShadowsocksOutbound(std::string tag, uv_loop_t* loop, SharedOutbound via,
                      const ShadowsocksOptions& o)
      : Outbound("shadowsocks", std::move(tag)),
        loop_(loop),
        via_(std::move(via)),
        o_(o),
        server_(Destination::fromHost(o.server, o.server_port)) {
    auto c = ss::makeCipher(o.method, o.password);
    if (c) {
      cipher_ = std::move(*c);
    } else {
      bad_ = c.error();
    }
  }

  ~ShadowsocksOutbound() override {
    *alive_ = false;
    for (auto& [id, op] : ops_) {
      if (op.via_id) via_->cancelDial(op.via_id);
    }
  }

  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    if (!bad_.message().empty()) return refuse(std::move(cb), bad_);
    if (!o_.tcp) {
      return refuse(std::move(cb),
                    Error("shadowsocks outbound: TCP is disabled by \"network\": \"udp\""));
    }
    if (ctx.destination.isDomain() && ctx.destination.domain.size() > 255) {
      return refuse(std::move(cb), Error("shadowsocks: domain name longer than 255 bytes"));
    }
    uint64_t id = next_id_++;
    ops_[id].cb = std::move(cb);
    conn::InboundContext c = ctx;
    c.destination = server_;
    c.original_destination = server_;
    c.destination_addresses.clear();
    Destination target = ctx.destination;
    ops_[id].via_id = via_->dialTcp(c, [this, id, target](Result<conn::StreamPtr> r) {
      auto it = ops_.find(id);
      if (it == ops_.end()) return;  // cancelled: the connection closes with `r`
      it->second.via_id = 0;
      if (!r) {
        complete(id, unexpected(r.error().wrap("shadowsocks server " + server_.toString())));
        return;
      }
      ShadowsocksStreamOptions so;
      so.label = "server " + server_.toString() + " (outbound " + tag() + ")";
      so.reply_timeout_ms = o_.reply_timeout_ms;
      complete(id, makeShadowsocksStream(loop_, std::move(*r), cipher_, target, so));
    });
    return id;
  }

  void cancelDial(uint64_t id) override {
    auto it = ops_.find(id);
    if (it == ops_.end()) return;
    if (it->second.via_id) via_->cancelDial(it->second.via_id);
    ops_.erase(it);
  }

  Result<PacketConn*> listenUdp(const conn::InboundContext& ctx,
                                PacketConn::ReceiveFn fn) override {
    if (!bad_.message().empty()) return unexpected(bad_);
    if (!o_.udp) {
      return unexpected(Error("shadowsocks outbound: UDP is disabled by \"network\": \"tcp\""));
    }
    auto* pc = new ShadowsocksPacketConn(loop_, cipher_, server_, std::move(fn));
    Status st = pc->open(*via_, ctx);
    if (!st) {
      delete pc;
      return unexpected(st.error().wrap("shadowsocks server " + server_.toString()));
    }
    return static_cast<PacketConn*>(pc);
  }

 private:
  struct Op {
    DialCallback cb;
    uint64_t via_id = 0;
  };

  uint64_t refuse(DialCallback cb, Error e) {
    uint64_t id = next_id_++;
    ops_[id].cb = std::move(cb);
    loop::defer(loop_, [this, alive = alive_, id, e] {
      if (*alive) complete(id, unexpected(e));
    });
    return id;
  }

  void complete(uint64_t id, Result<conn::StreamPtr> r) {
    auto it = ops_.find(id);
    if (it == ops_.end()) return;
    DialCallback cb = std::move(it->second.cb);
    ops_.erase(it);
    cb(std::move(r));
  }

  uv_loop_t* loop_;
  SharedOutbound via_;
  ShadowsocksOptions o_;
  Destination server_;
  ss::Cipher cipher_{};
  Error bad_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Op> ops_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

OutboundPtr makeShadowsocks(std::string tag, uv_loop_t* loop, SharedOutbound via,
                            const ShadowsocksOptions& opts) {
  return std::make_unique<ShadowsocksOutbound>(std::move(tag), loop, std::move(via), opts);
}

}  // namespace veer::outbound
