// The mixed inbound: SOCKS5 (no auth, username/password; CONNECT, UDP ASSOCIATE), SOCKS4/4a
// and HTTP (CONNECT, plain proxy requests with keep-alive) on one port, told apart by the first
// byte. SOCKS5 UDP uses a UDP socket on the same address and port, as sing-box does.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "base/log.h"
#include "inbound/http_codec.h"
#include "inbound/http_forward.h"
#include "inbound/inbound.h"
#include "inbound/sink_table.h"
#include "inbound/socks_codec.h"
#include "loop/buffer_pool.h"
#include "loop/uv_util.h"

namespace veer::inbound {

namespace {

constexpr size_t kMaxHandshake = http::kMaxHeadSize + 512;
constexpr size_t kMaxUdpClients = 4096;

std::string base64Decode(std::string_view in) {
  static const std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos) return {};
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

class MixedInbound;

// Per-client-address sinks would be needed to route replies; instead the relay keeps one sink
// per client source (a tiny object), created on the first datagram from that source.
class ClientSink : public conn::UdpReplySink {
 public:
  ClientSink(uv_udp_t* udp, SocketAddress client) : udp_(udp), client_(client) {}
  void sendReply(const Destination& from, const char* data, size_t len) override {
    // Header and payload go out as one datagram from two buffers: no copy of the payload.
    std::string header = socks::udpHeader(from);
    uv_buf_t b[2] = {uv_buf_init(header.data(), static_cast<unsigned>(header.size())),
                     uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len))};
    int rc = uv_udp_try_send(udp_, b, 2, client_.sa());
    if (rc < 0) LOG_DEBUG("socks udp reply to %s: %s", client_.toString().c_str(), uv_strerror(rc));
  }

 private:
  uv_udp_t* udp_;
  SocketAddress client_;
};

class MixedInbound : public Inbound {
 public:
  MixedInbound(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
               const MixedOptions& opts)
      : Inbound("mixed", std::move(tag)), loop_(loop), handler_(handler), opts_(opts) {}
  ~MixedInbound() override { stop(); }

  Status start() override;
  void stop() override;
  std::optional<SocketAddress> boundAddress() const override {
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
    return SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
  }

  uv_loop_t* loop() const { return loop_; }
  conn::ConnectionHandler* handler() const { return handler_; }
  const MixedOptions& opts() const { return opts_; }
  bool udpReady() const { return udp_open_; }
  void onDatagram(const char* data, size_t len, const SocketAddress& from);

 private:
  uv_loop_t* loop_;
  conn::ConnectionHandler* handler_;
  MixedOptions opts_;
  uv_tcp_t tcp_{};
  uv_udp_t udp_{};
  bool tcp_open_ = false, udp_open_ = false;
  SinkTable<ClientSink> sinks_{handler_, kMaxUdpClients};
};

// One client connection until its handshake is done and it has been handed to the router.
class MixedSession {
 public:
  MixedSession(MixedInbound* in, uv_tcp_t* client) : in_(in), client_(client) {
    client_->data = this;
    uv_timer_init(in->loop(), &timer_);
    timer_.data = this;
  }

  void start() {
    uv_timer_start(&timer_, [](uv_timer_t* t) {
      static_cast<MixedSession*>(t->data)->fail("handshake timeout");
    }, in_->opts().listen.handshake_timeout_ms, 0);
    int rc = uv_read_start(
        reinterpret_cast<uv_stream_t*>(client_),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          buf->base = loop::BufferPool::local().acquire(4096);
          buf->len = 4096;
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* self = static_cast<MixedSession*>(s->data);
          if (n > 0) self->in_buf_.append(buf->base, static_cast<size_t>(n));
          if (buf->base) loop::BufferPool::local().release(buf->base, buf->len);
          if (n < 0) {
            self->fail(n == UV_EOF ? "client closed during handshake" : uv_strerror(static_cast<int>(n)));
            return;
          }
          if (n > 0) self->process();
        });
    if (rc != 0) fail(uv_strerror(rc));
  }

 private:
  enum class State { Detect, Socks5Greeting, Socks5Auth, Socks5Request, Socks4, Http, UdpHold, Done };

  void process() {
    if (done_) return;
    if (in_buf_.size() > kMaxHandshake) {
      fail("handshake too large");
      return;
    }
    while (!done_) {
      ByteView v = asBytes(in_buf_);
      if (v.empty()) return;
      size_t consumed = 0;
      std::string why;
      switch (state_) {
        case State::Detect:
          state_ = v[0] == 5 ? State::Socks5Greeting : v[0] == 4 ? State::Socks4 : State::Http;
          continue;
        case State::Socks5Greeting: {
          socks::Greeting g;
          auto p = socks::parseGreeting(v, g, consumed, why);
          if (p == socks::Parse::NeedMore) return;
          if (p == socks::Parse::Bad) return fail("socks5: " + why);
          in_buf_.erase(0, consumed);
          uint8_t want = in_->opts().users.empty() ? 0x00 : 0x02;
          bool offered = std::find(g.methods.begin(), g.methods.end(), want) != g.methods.end();
          if (!offered) {
            writeThenClose(std::string({5, static_cast<char>(0xff)}),
                           "socks5: no acceptable authentication method");
            return;
          }
          write(std::string({5, static_cast<char>(want)}));
          state_ = want == 0x02 ? State::Socks5Auth : State::Socks5Request;
          continue;
        }
        case State::Socks5Auth: {
          socks::UserPass up;
          auto p = socks::parseUserPass(v, up, consumed, why);
          if (p == socks::Parse::NeedMore) return;
          if (p == socks::Parse::Bad) return fail("socks5: " + why);
          in_buf_.erase(0, consumed);
          if (!checkUser(up.user, up.pass)) {
            writeThenClose(std::string({1, 1}), "socks5: authentication failed for user \"" +
                                                     up.user + "\"");
            return;
          }
          user_ = up.user;
          write(std::string({1, 0}));
          state_ = State::Socks5Request;
          continue;
        }
        case State::Socks5Request: {
          socks::Request req;
          auto p = socks::parseRequest(v, req, consumed, why);
          if (p == socks::Parse::NeedMore) return;
          if (p == socks::Parse::Bad) {
            writeThenClose(socks::reply5(socks::kAddressTypeNotSupported, Destination{}),
                           "socks5: " + why);
            return;
          }
          in_buf_.erase(0, consumed);
          if (req.command == socks::kConnect) {
            handOff(req.dst, "socks", [](conn::DialFailure f) {
              Destination bound;
              bound.ip = IpAddress::v4(0u);
              return socks::reply5(socks5Code(f), bound);
            });
            return;
          }
          if (req.command == socks::kUdpAssociate && in_->udpReady()) {
            startUdpHold();
            return;
          }
          writeThenClose(socks::reply5(socks::kCommandNotSupported, Destination{}),
                         "socks5: unsupported command " + std::to_string(req.command));
          return;
        }
        case State::Socks4: {
          socks::Request4 req;
          auto p = socks::parseRequest4(v, req, consumed, why);
          if (p == socks::Parse::NeedMore) return;
          if (p == socks::Parse::Bad) return fail("socks4: " + why);
          in_buf_.erase(0, consumed);
          if (req.command != socks::kConnect) {
            writeThenClose(socks::reply4(false), "socks4: unsupported command");
            return;
          }
          if (!in_->opts().users.empty()) {
            // SOCKS4 carries no password: with users configured it is refused.
            writeThenClose(socks::reply4(false), "socks4: authentication required");
            return;
          }
          handOff(req.dst, "socks",
                  [](conn::DialFailure f) { return socks::reply4(f == conn::DialFailure::None); });
          return;
        }
        case State::Http: {
          http::RequestHead head;
          auto p = http::parseRequestHead(v, head, why);
          if (p == http::Parse::NeedMore) return;
          if (p == http::Parse::Bad) {
            writeThenClose(http::simpleResponse(400, "Bad Request", why + "\n"), "http: " + why);
            return;
          }
          if (!in_->opts().users.empty()) {
            const std::string* auth = head.header("Proxy-Authorization");
            std::string user;
            if (auth == nullptr || !checkBasic(*auth, user)) {
              std::string resp =
                  "HTTP/1.1 407 Proxy Authentication Required\r\n"
                  "Proxy-Authenticate: Basic realm=\"veer\"\r\nContent-Length: 0\r\n"
                  "Connection: close\r\n\r\n";
              writeThenClose(resp, "http: proxy authentication required");
              return;
            }
            user_ = user;
          }
          std::string origin;
          auto dst = http::proxyDestination(head, origin, why);
          if (!dst) {
            writeThenClose(http::simpleResponse(400, "Bad Request", why + "\n"), "http: " + why);
            return;
          }
          if (head.method == "CONNECT") {
            in_buf_.erase(0, head.head_len);
            handOff(*dst, "http", [](conn::DialFailure f) -> std::string {
              switch (f) {
                case conn::DialFailure::None:
                  return "HTTP/1.1 200 Connection established\r\n\r\n";
                case conn::DialFailure::Blocked:
                  return http::simpleResponse(403, "Forbidden", "blocked by veer\n");
                case conn::DialFailure::Timeout:
                  return http::simpleResponse(504, "Gateway Timeout", "connect timeout\n");
                default:
                  return http::simpleResponse(502, "Bad Gateway", "connect failed\n");
              }
            });
            return;
          }
          // Plain proxy request: the forwarding session takes the connection and the bytes.
          stopAndDetach();
          HttpForwardSession::start(in_->loop(), in_->handler(), in_->tag(), client_,
                                    std::move(in_buf_), user_);
          client_ = nullptr;
          finishSelf();
          return;
        }
        case State::UdpHold:
          // Data on the control connection of a UDP association is ignored.
          in_buf_.clear();
          return;
        case State::Done: return;
      }
    }
  }

  static uint8_t socks5Code(conn::DialFailure f) {
    switch (f) {
      case conn::DialFailure::None: return socks::kSucceeded;
      case conn::DialFailure::Blocked: return socks::kNotAllowed;
      case conn::DialFailure::Refused: return socks::kConnectionRefused;
      case conn::DialFailure::Unreachable: return socks::kHostUnreachable;
      case conn::DialFailure::Timeout: return socks::kTtlExpired;
      case conn::DialFailure::Other: return socks::kGeneralFailure;
    }
    return socks::kGeneralFailure;
  }

  bool checkUser(const std::string& u, const std::string& p) const {
    for (const auto& user : in_->opts().users) {
      if (user.username == u && user.password == p) return true;
    }
    return false;
  }

  bool checkBasic(const std::string& header, std::string& user) const {
    std::string_view h = header;
    if (h.size() < 6 || (h.substr(0, 6) != "Basic " && h.substr(0, 6) != "basic ")) return false;
    std::string decoded = base64Decode(h.substr(6));
    size_t colon = decoded.find(':');
    if (colon == std::string::npos) return false;
    user = decoded.substr(0, colon);
    return checkUser(user, decoded.substr(colon + 1));
  }

  conn::InboundContext makeCtx(const Destination& dst, const std::string& type) {
    conn::InboundContext ctx;
    ctx.id = in_->handler()->nextConnectionId();
    ctx.inbound_tag = in_->tag();
    ctx.inbound_type = "mixed";
    ctx.network = "tcp";
    ctx.destination = dst;
    ctx.user = user_;
    in_->opts().listen.applyTo(ctx);
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(client_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) ctx.source = *sa;
    }
    (void)type;
    return ctx;
  }

  void handOff(const Destination& dst, const std::string& type, conn::ReplyBuilder reply) {
    conn::InboundContext ctx = makeCtx(dst, type);
    stopAndDetach();
    uv_tcp_t* c = client_;
    client_ = nullptr;
    std::string early = std::move(in_buf_);
    in_->handler()->handleTcp(std::move(ctx), c, std::move(early), std::move(reply));
    finishSelf();
  }

  void startUdpHold() {
    // The association lives as long as this control connection; replies carry the UDP
    // socket's address, which is the listener's address and port.
    state_ = State::UdpHold;
    uv_timer_stop(&timer_);
    sockaddr_storage ss{};
    int len = sizeof(ss);
    Destination bound;
    bound.ip = IpAddress::v4(0u);
    if (uv_tcp_getsockname(client_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) {
        bound.ip = sa->ip().unmap();
        bound.port = sa->port();
      }
    }
    write(socks::reply5(socks::kSucceeded, bound));
  }

  void write(std::string bytes) {
    struct W {
      uv_write_t req;
      std::string data;
    };
    auto* w = new W{{}, std::move(bytes)};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(client_), &b, 1,
                 [](uv_write_t* req, int) { delete static_cast<W*>(req->data); }) != 0) {
      delete w;
    }
  }

  void writeThenClose(std::string bytes, const std::string& why) {
    LOG_DEBUG("[mixed/%s] %s", in_->tag().c_str(), why.c_str());
    done_ = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(client_));
    struct W {
      uv_write_t req;
      std::string data;
      MixedSession* s;
    };
    auto* w = new W{{}, std::move(bytes), this};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(client_), &b, 1,
                      [](uv_write_t* req, int) {
                        auto* ww = static_cast<W*>(req->data);
                        MixedSession* s = ww->s;
                        delete ww;
                        s->closeAll();
                      });
    if (rc != 0) {
      delete w;
      closeAll();
    }
  }

  void fail(const std::string& why) {
    if (done_ && state_ != State::UdpHold) return;
    LOG_DEBUG("[mixed/%s] %s", in_->tag().c_str(), why.c_str());
    done_ = true;
    closeAll();
  }

  void stopAndDetach() {
    done_ = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(client_));
  }

  void closeAll() {
    if (client_ != nullptr) {
      uv_tcp_t* c = client_;
      client_ = nullptr;
      loop::closeHandle(c, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    }
    finishSelf();
  }

  void finishSelf() {
    if (timer_closing_) return;
    timer_closing_ = true;
    loop::closeHandle(&timer_, [](uv_handle_t* h) { delete static_cast<MixedSession*>(h->data); });
  }

  MixedInbound* in_;
  uv_tcp_t* client_;
  uv_timer_t timer_{};
  std::string in_buf_;
  std::string user_;
  State state_ = State::Detect;
  bool done_ = false;
  bool timer_closing_ = false;
};

Status MixedInbound::start() {
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  tcp_open_ = true;
  Status st = listenTcp(&tcp_, opts_.listen, [](uv_stream_t* server, int status) {
                          auto* self = static_cast<MixedInbound*>(server->data);
                          if (status != 0) return;
                          auto* client = new uv_tcp_t;
                          uv_tcp_init(self->loop_, client);
                          if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
                            loop::closeHandle(client, [](uv_handle_t* h) {
                              delete reinterpret_cast<uv_tcp_t*>(h);
                            });
                            return;
                          }
                          uv_tcp_nodelay(client, 1);
                          (new MixedSession(self, client))->start();
                        });
  if (!st) return unexpected(st.error().wrap("inbound/mixed[" + tag() + "]"));
  // SOCKS5 UDP relay on the same address and port as the TCP listener.
  auto bound = boundAddress();
  uv_udp_init(loop_, &udp_);
  udp_.data = this;
  if (bound && uv_udp_bind(&udp_, bound->sa(), 0) == 0) {
    udp_open_ = true;
    uv_udp_recv_start(
        &udp_,
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          buf->base = loop::BufferPool::local().acquire(65536);
          buf->len = 65536;
        },
        [](uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* addr, unsigned) {
          auto* self = static_cast<MixedInbound*>(h->data);
          if (n > 0 && addr) {
            if (auto from = SocketAddress::fromSockaddr(addr)) {
              self->onDatagram(buf->base, static_cast<size_t>(n), *from);
            }
          }
          if (buf->base) loop::BufferPool::local().release(buf->base, buf->len);
        });
  } else {
    LOG_WARN("inbound/mixed[%s]: UDP relay unavailable; UDP ASSOCIATE will be refused",
             tag().c_str());
    uv_close(reinterpret_cast<uv_handle_t*>(&udp_), nullptr);
  }
  LOG_INFO("inbound/mixed[%s]: listening on %s", tag().c_str(),
           bound ? bound->toString().c_str() : "?");
  return {};
}

void MixedInbound::onDatagram(const char* data, size_t len, const SocketAddress& from) {
  socks::UdpHeader h;
  std::string why;
  if (socks::parseUdpHeader(ByteView(reinterpret_cast<const uint8_t*>(data), len), h, why) !=
      socks::Parse::Done) {
    LOG_DEBUG("[mixed/%s] socks udp from %s: %s", tag().c_str(), from.toString().c_str(),
              why.c_str());
    return;
  }
  if (h.frag != 0) return;  // fragmentation is optional in RFC 1928; dropped like most servers
  ClientSink* sink = sinks_.get(from, [&] { return std::make_unique<ClientSink>(&udp_, from); });
  conn::InboundContext ctx;
  ctx.inbound_tag = tag();
  ctx.inbound_type = "mixed";
  ctx.network = "udp";
  ctx.source = from;
  ctx.destination = h.dst;
  opts_.listen.applyTo(ctx);
  handler_->handleUdp(ctx, data + h.header_len, len - h.header_len, sink);
}

void MixedInbound::stop() {
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

}  // namespace

InboundPtr makeMixed(std::string tag, uv_loop_t* loop, conn::ConnectionHandler* handler,
                     const MixedOptions& opts) {
  return std::make_unique<MixedInbound>(std::move(tag), loop, handler, opts);
}

}  // namespace veer::inbound
