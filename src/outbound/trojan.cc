// Trojan client outbound (trojan-gfw protocol; sing-box transport/trojan): over TLS to the
// server, a request of hex(SHA-224(password)) CRLF CMD ATYP ADDR PORT CRLF, then the payload.
// The server sends no reply. The request travels in the same write as the first payload (the
// client's cached early data), or alone after a short wait when the server speaks first.
// UDP: CMD 3 (UDP ASSOCIATE), then frames of ATYP ADDR PORT LENGTH CRLF PAYLOAD both ways.
#include <deque>

#include "base/log.h"
#include "crypto/sha224.h"
#include "loop/defer.h"
#include "loop/uv_util.h"
#include "outbound/handshake.h"
#include "outbound/outbound.h"

namespace veer::outbound {
namespace {

constexpr uint8_t kCmdConnect = 1;
constexpr uint8_t kCmdUdp = 3;
// How long a request waits for the first payload before it goes out alone (a server-first
// protocol would otherwise never hear from us).
constexpr uint64_t kHeaderWaitMs = 100;

std::string request(const std::string& key, uint8_t cmd, const Destination& dst) {
  std::string r = key;
  r += "\r\n";
  r.push_back(static_cast<char>(cmd));
  appendSocksAddr(r, dst);
  r += "\r\n";
  return r;
}

/// The TCP stream: prepends the request to the first write.
class TrojanStream final : public conn::Stream {
 public:
  TrojanStream(uv_loop_t* loop, conn::StreamPtr inner, std::string header)
      : inner_(std::move(inner)), header_(std::move(header)) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
  }

  void readStart(ReadFn fn) override {
    on_read_ = std::move(fn);
    inner_->readStart([this](int status, const char* d, size_t n) {
      if (!closed_ && on_read_) on_read_(status, d, n);
    });
    if (!header_.empty() && !uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) {
      uv_timer_start(
          &timer_, [](uv_timer_t* t) { static_cast<TrojanStream*>(t->data)->flushHeader(); },
          kHeaderWaitMs, 0);
    }
  }
  void readStop() override { inner_->readStop(); }

  void write(const char* data, size_t len, DoneFn done) override {
    if (closed_) return;
    if (!header_.empty()) {
      uv_timer_stop(&timer_);
      std::string first = std::move(header_);
      header_.clear();
      first.append(data, len);
      inner_->write(first.data(), first.size(), std::move(done));
      return;
    }
    inner_->write(data, len, std::move(done));
  }
  size_t writeQueueSize() const override { return header_.size() + inner_->writeQueueSize(); }
  void shutdown(DoneFn done) override {
    flushHeader();
    inner_->shutdown(std::move(done));
  }
  void close(bool reset) override {
    if (closed_) return;
    closed_ = true;
    inner_.release()->close(reset);
    loop::closeHandle(&timer_, [](uv_handle_t* h) { delete static_cast<TrojanStream*>(h->data); });
  }
  uv_tcp_t* socket() override { return inner_->socket(); }
  const char* kind() const override { return "trojan"; }

 private:
  void flushHeader() {
    if (closed_ || header_.empty()) return;
    uv_timer_stop(&timer_);
    std::string h = std::move(header_);
    header_.clear();
    inner_->write(h.data(), h.size());
  }

  conn::StreamPtr inner_;
  std::string header_;
  ReadFn on_read_;
  uv_timer_t timer_{};
  bool closed_ = false;
};

class TrojanOutbound;

/// UDP over one trojan stream: frames are ATYP ADDR PORT LENGTH(2, big-endian) CRLF PAYLOAD.
class TrojanPacketConn final : public PacketConn {
 public:
  TrojanPacketConn(uv_loop_t* loop, ProxyOutbound* owner, std::string key, ReceiveFn fn)
      : loop_(loop), owner_(owner), key_(std::move(key)), on_receive_(std::move(fn)) {}

  void open(const conn::InboundContext& ctx) {
    server_id_ = owner_->connectServer(ctx, [this](Result<conn::StreamPtr> r) {
      server_id_ = 0;
      if (!r) {
        fail(r.error().message());
        return;
      }
      stream_ = std::move(*r);
      stream_->readStart([this](int status, const char* d, size_t n) { onRead(status, d, n); });
      flush();
    });
  }

  void send(const Destination& dst, const char* data, size_t len) override {
    if (closed_ || failed_ || len > 0xffff) return;
    if (dst.isDomain() && dst.domain.size() > 255) return;
    std::string frame;
    if (!header_sent_ && first_dst_.port == 0 && !first_dst_.isDomain() && !first_dst_.ip.valid()) {
      first_dst_ = dst;
    }
    appendSocksAddr(frame, dst);
    frame.push_back(static_cast<char>(len >> 8));
    frame.push_back(static_cast<char>(len & 0xff));
    frame += "\r\n";
    frame.append(data, len);
    if (!stream_) {
      if (queue_.size() < 64) queue_.push_back(std::move(frame));
      return;
    }
    if (stream_->writeQueueSize() > (256u << 10)) return;  // a slow server drops, like UDP
    stream_->write(frame.data(), frame.size());
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    if (server_id_) owner_->cancelServer(server_id_);
    stream_.reset();
    loop::defer(loop_, [this] { delete this; });
  }

 private:
  void flush() {
    std::string out = request(key_, kCmdUdp, first_dst_);
    header_sent_ = true;
    for (auto& f : queue_) out += f;
    queue_.clear();
    stream_->write(out.data(), out.size());
  }

  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    queue_.clear();
    LOG_WARN("trojan UDP: %s", why.c_str());
    stream_.reset();
  }

  void onRead(int status, const char* d, size_t n) {
    if (closed_ || failed_) return;
    if (status < 0) {
      fail(status == UV_EOF ? "the server closed the UDP stream" : uv_strerror(status));
      return;
    }
    buf_.append(d, n);
    size_t off = 0;
    while (true) {
      const auto* p = reinterpret_cast<const uint8_t*>(buf_.data()) + off;
      size_t avail = buf_.size() - off;
      if (avail < 1) break;
      size_t alen;
      if (p[0] == 1) alen = 4;
      else if (p[0] == 4) alen = 16;
      else if (p[0] == 3) {
        if (avail < 2) break;
        alen = 1 + p[1];
      } else {
        fail("bad UDP frame from the server (address type " + std::to_string(p[0]) + ")");
        return;
      }
      size_t head = 1 + alen + 2 + 2 + 2;
      if (avail < head) break;
      size_t plen = static_cast<size_t>(p[1 + alen + 2]) << 8 | p[1 + alen + 3];
      if (p[1 + alen + 4] != '\r' || p[1 + alen + 5] != '\n') {
        fail("bad UDP frame from the server (missing CRLF)");
        return;
      }
      if (avail < head + plen) break;
      if (p[0] != 3) {
        IpAddress ip = p[0] == 1 ? IpAddress::v4(p + 1) : IpAddress::v6(p + 1);
        uint16_t port = static_cast<uint16_t>(p[1 + alen] << 8 | p[1 + alen + 1]);
        on_receive_(SocketAddress(ip.unmap(), port), reinterpret_cast<const char*>(p + head),
                    plen);
        if (closed_) return;
      }
      off += head + plen;
    }
    buf_.erase(0, off);
    if (buf_.size() > 70000) fail("UDP frame buffer overflow");
  }

  uv_loop_t* loop_;
  ProxyOutbound* owner_;
  std::string key_;
  ReceiveFn on_receive_;
  uint64_t server_id_ = 0;
  conn::StreamPtr stream_;
  Destination first_dst_;
  std::deque<std::string> queue_;
  std::string buf_;
  bool header_sent_ = false, closed_ = false, failed_ = false;
};

class TrojanOutbound : public ProxyOutbound {
 public:
  TrojanOutbound(std::string tag, uv_loop_t* loop, SharedOutbound via, const TrojanOptions& o)
      : ProxyOutbound("trojan", std::move(tag), loop, std::move(via), o.server, o.server_port,
                      o.tls),
        o_(o),
        key_(crypto::sha224Hex(o.password)) {}

  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    if (!o_.tcp) return refuse(std::move(cb), Error("trojan outbound: network is udp only"));
    if (ctx.destination.isDomain() && ctx.destination.domain.size() > 255) {
      return refuse(std::move(cb), Error("domain name too long for trojan"));
    }
    return ProxyOutbound::dialTcp(ctx, std::move(cb));
  }

  Result<PacketConn*> listenUdp(const conn::InboundContext& ctx,
                                PacketConn::ReceiveFn fn) override {
    if (!o_.udp) return unexpected(Error("trojan outbound: network is tcp only"));
    auto* pc = new TrojanPacketConn(loop_, this, key_, std::move(fn));
    pc->open(ctx);
    return static_cast<PacketConn*>(pc);
  }

 protected:
  bool wantsHandshake() const override { return false; }
  conn::StreamPtr wrapStream(conn::StreamPtr s, const conn::InboundContext& ctx) override {
    return conn::StreamPtr(
        new TrojanStream(loop_, std::move(s), request(key_, kCmdConnect, ctx.destination)));
  }

 private:
  TrojanOptions o_;
  std::string key_;
};

}  // namespace

OutboundPtr makeTrojan(std::string tag, uv_loop_t* loop, SharedOutbound via,
                       const TrojanOptions& opts) {
  return std::make_unique<TrojanOutbound>(std::move(tag), loop, std::move(via), opts);
}

}  // namespace veer::outbound
