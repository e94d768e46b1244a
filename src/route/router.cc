#include "route/router.h"

#include <cerrno>
#include <cstring>
#include <random>

#include "base/log.h"
#include "conn/tls_fragment.h"
#include "loop/buffer_pool.h"
#include "loop/defer.h"
#include "loop/uv_util.h"
#include "route/walk.h"
#include "sniff/sniff.h"

namespace veer::route {

outbound::Outbound* RouteState::find(const std::string& tag) const {
  auto it = outbounds.find(tag);
  return it == outbounds.end() ? nullptr : it->second.get();
}

namespace {

std::string describeCtx(const conn::InboundContext& ctx) {
  std::string s = "[C" + std::to_string(ctx.id) + " " + ctx.inbound_type + "/" + ctx.inbound_tag +
                  "] " + ctx.network + " " + ctx.source.toString() + " -> " +
                  ctx.destination.toString();
  if (!ctx.sniffed_domain.empty() && ctx.sniffed_domain != ctx.destination.domain) {
    s += " (" + ctx.sniffed_domain + ")";
  }
  if (!ctx.protocol.empty()) s += " [" + ctx.protocol + "]";
  return s;
}

// sing-box's `dns` outbound: a route to it is a hijack-dns.
void routeDnsOutbound(Decision& d, const RouteState& st) {
  if (d.kind != Decision::Kind::Route) return;
  const outbound::Outbound* o = st.find(d.outbound);
  if (o != nullptr && o->type() == "dns") {
    d.kind = Decision::Kind::HijackDns;
    d.rule += " => dns-out";
  }
}

void applyOverrides(conn::InboundContext& ctx, const Decision& d) {
  if (d.override_address.empty() && !d.override_port) return;
  if (!ctx.original_destination.valid()) ctx.original_destination = ctx.destination;
  if (!d.override_address.empty()) {
    Destination nd = Destination::fromHost(d.override_address, ctx.destination.port);
    ctx.destination = nd;
    ctx.destination_addresses.clear();
  }
  if (d.override_port) ctx.destination.port = *d.override_port;
}

conn::DomainStrategy strategyOf(const std::string& s) {
  if (s == "prefer_ipv4") return conn::DomainStrategy::PreferIpv4;
  if (s == "prefer_ipv6") return conn::DomainStrategy::PreferIpv6;
  if (s == "ipv4_only") return conn::DomainStrategy::Ipv4Only;
  if (s == "ipv6_only") return conn::DomainStrategy::Ipv6Only;
  return conn::DomainStrategy::AsIs;
}

uint32_t sniffTimeout(const Walk& w, const conn::InboundContext& ctx) {
  return w.pending ? w.pending->sniff_timeout_ms : ctx.sniff_timeout_ms;
}

const std::vector<std::string>& sniffers(const Walk& w) {
  static const std::vector<std::string> kAll;
  return w.pending ? w.pending->sniffers : kAll;
}

}  // namespace

// One routed TCP connection: rule walk (with sniffing and resolving), dial, reply, relay.
class Router::TcpSession : public conn::Closable {
 public:
  TcpSession(Router* r, std::shared_ptr<RouteState> st, conn::InboundContext ctx,
             uv_tcp_t* client, std::string early, conn::ReplyBuilder reply)
      : router_(r), state_(std::move(st)), ctx_(std::move(ctx)), client_(client),
        early_(std::move(early)), reply_(std::move(reply)) {
    client_->data = this;
  }

  void start() {
    router_->tracker_.add(ctx_.id, &ctx_, this);
    if (!router_->unmapDestination(ctx_, *state_)) {
      fail(conn::DialFailure::Unreachable, "missing fakeip record");
      return;
    }
    walk();
  }

  // conn::Closable
  void closeNow(const std::string& reason) override {
    if (relay_) {
      relay_->abort(reason);
      return;
    }
    if (dial_id_ && out_) {
      out_->cancelDial(dial_id_);
      dial_id_ = 0;
    }
    if (resolve_id_ && state_->resolver) {
      state_->resolver->cancel(resolve_id_);
      resolve_id_ = 0;
    }
    stopSniff();
    closeFragTimer();
    remote_.reset();
    closeClient(reason);
  }
  uint64_t bytesUp() const override { return relay_ ? relay_->up() : 0; }
  uint64_t bytesDown() const override { return relay_ ? relay_->down() : 0; }

 private:
  struct Write {
    uv_write_t req;
    std::string data;
    TcpSession* session;
    int then;  // 0 close, 1 relay, 2 sniff
  };

  void walk() {
    if (closing_ || !walk_) return;
    walk_->on_demand = state_->resolve_on_demand;
    switch (walk_->step(state_->engine.get(), ctx_, state_->final_outbound)) {
      case Walk::Step::Final: {
        // The walk's state is not needed once decided: a relayed connection does not keep it.
        Decision d = std::move(walk_->decision);
        walk_.reset();
        act(std::move(d));
        return;
      }
      case Walk::Step::Sniff:
        startSniff();
        return;
      case Walk::Step::Resolve:
        startResolve();
        return;
    }
  }

  // ---- sniff ----
  void startSniff() {
    // Bytes that came with the handshake may already be enough.
    if (!early_.empty() && sniffOnce() != sniff::Status::NeedMore) {
      walk();
      return;
    }
    if (reply_ && !replied_) {
      // A SOCKS or HTTP CONNECT client sends nothing before it is told the tunnel is up, so the
      // success reply goes first here (sing-box's lazy handshake does the same); a dial that
      // fails afterwards closes the connection.
      replied_ = true;
      writeClient(reply_(conn::DialFailure::None), 2);
      return;
    }
    beginSniffRead();
  }

  void beginSniffRead() {
    sniff_timer_ = new uv_timer_t;
    uv_timer_init(router_->loop_, sniff_timer_);
    sniff_timer_->data = this;
    uv_timer_start(sniff_timer_, [](uv_timer_t* t) {
      auto* s = static_cast<TcpSession*>(t->data);
      ++s->router_->stats_.sniff_timeouts;
      LOG_DEBUG("%s sniff timeout", describeCtx(s->ctx_).c_str());
      s->endSniff();
    }, sniffTimeout(*walk_, ctx_), 0);
    sniffing_ = true;
    int rc = uv_read_start(
        reinterpret_cast<uv_stream_t*>(client_),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          buf->base = loop::BufferPool::local().acquire(4096);
          buf->len = 4096;
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
          auto* s = static_cast<TcpSession*>(st->data);
          if (n > 0) s->early_.append(buf->base, static_cast<size_t>(n));
          if (buf->base) loop::BufferPool::local().release(buf->base, buf->len);
          if (n < 0) {
            // The client went away (or half-closed) before saying enough: route what we have.
            if (n == UV_EOF) {
              s->client_eof_ = true;
              s->endSniff();
            } else {
              s->closeNow(std::string("client: ") + uv_strerror(static_cast<int>(n)));
            }
            return;
          }
          if (n > 0 && (s->sniffOnce() != sniff::Status::NeedMore ||
                        s->early_.size() >= sniff::kMaxStreamSniffBytes)) {
            s->endSniff();
          }
        });
    if (rc != 0) closeNow(uv_strerror(rc));
  }

  sniff::Status sniffOnce() {
    sniff::Info info;
    sniff::Status st = sniff::sniffStream(asBytes(early_), sniffers(*walk_), info);
    if (st == sniff::Status::Match) {
      ++router_->stats_.sniffed;
      applySniff(ctx_, info.protocol, info.domain, info.client,
                 walk_->pending == nullptr && ctx_.sniff_override_destination);
      LOG_DEBUG("%s sniffed %s %s", describeCtx(ctx_).c_str(), info.protocol.c_str(),
                info.domain.c_str());
    }
    return st;
  }

  void stopSniff() {
    if (!sniffing_) return;
    sniffing_ = false;
    if (client_) uv_read_stop(reinterpret_cast<uv_stream_t*>(client_));
    if (sniff_timer_) {
      loop::closeHandle(sniff_timer_, [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      sniff_timer_ = nullptr;
    }
  }

  void endSniff() {
    if (!sniffing_) return;
    stopSniff();
    walk();
  }

  // ---- resolve ----
  void startResolve() {
    if (state_->resolver == nullptr) {
      walk();
      return;
    }
    std::string host = ctx_.destination.domain;
    resolve_id_ = state_->resolver->resolve(
        host, strategyOf(walk_->pending ? walk_->pending->resolve_strategy : ""),
        [this, host](Result<std::vector<IpAddress>> r) {
          resolve_id_ = 0;
          if (!r && walk_->pending == nullptr) {
            // On-demand resolution failed: IP rules simply do not match this name.
            LOG_DEBUG("%s on-demand resolve failed: %s", describeCtx(ctx_).c_str(),
                      r.error().message().c_str());
            walk_->resolve_failed = true;
            walk();
            return;
          }
          if (!r) {
            // sing-box: a failed resolve action fails the connection.
            LOG_INFO("%s resolve failed: %s", describeCtx(ctx_).c_str(),
                     r.error().message().c_str());
            fail(conn::DialFailure::Unreachable, r.error().message());
            return;
          }
          ctx_.destination_addresses = std::move(*r);
          walk();
        });
  }

  // ---- final action ----
  void act(Decision d) {
    routeDnsOutbound(d, *state_);
    frag_tcp_ = d.tls_fragment;
    frag_record_ = d.tls_record_fragment;
    frag_delay_ms_ = d.tls_fragment_fallback_delay_ms;
    ctx_.rule = d.rule;
    ctx_.outbound = d.outbound;
    applyOverrides(ctx_, d);
    if (d.kind == Decision::Kind::Reject) {
      ++router_->stats_.tcp_rejected;
      LOG_INFO("%s rejected by %s", describeCtx(ctx_).c_str(), d.rule.c_str());
      // "drop" sends nothing back; "default" answers with the inbound's refusal, then closes.
      fail(conn::DialFailure::Blocked, "rejected", d.reject_method != "drop");
      return;
    }
    if (d.kind == Decision::Kind::HijackDns) {
      if (!state_->dns) {
        LOG_WARN("%s hijack-dns needs a \"dns\" section; closing", describeCtx(ctx_).c_str());
        fail(conn::DialFailure::Other, "hijack-dns without dns");
        return;
      }
      LOG_INFO("%s hijacked by %s", describeCtx(ctx_).c_str(), d.rule.c_str());
      if (reply_ && !replied_) {
        replied_ = true;
        writeClient(reply_(conn::DialFailure::None), 3);
      } else {
        startDnsSession();
      }
      return;
    }
    out_ = state_->find(d.outbound);
    if (out_ == nullptr) {
      LOG_ERROR("%s outbound not found: %s", describeCtx(ctx_).c_str(), d.outbound.c_str());
      fail(conn::DialFailure::Other, "outbound not found");
      return;
    }
    LOG_INFO("%s matched %s => outbound/%s[%s]", describeCtx(ctx_).c_str(), d.rule.c_str(),
             out_->type().c_str(), out_->tag().c_str());
    dial_id_ = out_->dialTcp(ctx_, [this](Result<conn::StreamPtr> r) {
      dial_id_ = 0;
      if (!r) {
        LOG_INFO("%s dial failed: %s", describeCtx(ctx_).c_str(), r.error().message().c_str());
        ++router_->stats_.tcp_failed;
        fail(conn::classifyDialError(r.error()), r.error().message());
        return;
      }
      remote_ = std::move(*r);
      if (reply_ && !replied_) {
        replied_ = true;
        writeClient(reply_(conn::DialFailure::None), 1);
      } else {
        startRelay();
      }
    });
  }

  void writeClient(std::string bytes, int then) {
    if (bytes.empty()) {
      afterWrite(then);
      return;
    }
    auto* w = new Write{{}, std::move(bytes), this, then};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(client_), &b, 1,
                      [](uv_write_t* req, int status) {
                        auto* ww = static_cast<Write*>(req->data);
                        TcpSession* s = ww->session;
                        int then = ww->then;
                        delete ww;
                        if (s->closing_) return;
                        if (status != 0) {
                          s->closeNow(uv_strerror(status));
                          return;
                        }
                        s->afterWrite(then);
                      });
    if (rc != 0) {
      delete w;
      closeNow(uv_strerror(rc));
    }
  }

  void afterWrite(int then) {
    if (then == 3) {
      startDnsSession();
    } else if (then == 1) {
      startRelay();
    } else if (then == 2) {
      beginSniffRead();
    } else {
      closeNow("replied");
    }
  }

  // ---- TLS fragmentation (route options tls_fragment / tls_record_fragment) ----
  // Applies to the cached first bytes when they are a ClientHello (a sniff rule caches them).
  // Returns true when the pieces are being written one by one (startRelay runs again after).
  bool fragmentEarly() {
    if (!(frag_tcp_ || frag_record_)) return false;
    bool tcp = frag_tcp_;
    frag_tcp_ = frag_record_ = false;
    sniff::Info info;
    if (early_.empty() ||
        sniff::sniffStream(asBytes(early_), {"tls"}, info) != sniff::Status::Match ||
        info.domain.empty()) {
      LOG_DEBUG("%s tls fragment: no ClientHello with a server name cached (a sniff rule "
                "before this one caches it); sent unchanged", describeCtx(ctx_).c_str());
      return false;
    }
    std::mt19937 rng(static_cast<uint32_t>(uv_hrtime()));
    auto pieces = conn::fragmentClientHello(early_, info.domain, !tcp, rng);
    if (pieces.empty()) return false;
    if (!tcp) {
      LOG_DEBUG("%s ClientHello sent as %s", describeCtx(ctx_).c_str(), "several TLS records");
      early_ = std::move(pieces[0]);
      return false;
    }
    uv_tcp_t* sock = remote_->socket();
    if (sock == nullptr || std::string_view(remote_->kind()) != "tcp") {
      LOG_DEBUG("%s tls_fragment needs a plain TCP outbound connection; sent unchanged",
                describeCtx(ctx_).c_str());
      return false;
    }
    uv_tcp_nodelay(sock, 1);
    LOG_DEBUG("%s ClientHello sent in %zu TCP segments", describeCtx(ctx_).c_str(),
              pieces.size());
    early_.clear();
    frag_pieces_ = std::move(pieces);
    frag_next_ = 0;
    writeNextFragment();
    return true;
  }

  void writeNextFragment() {
    if (frag_next_ == frag_pieces_.size()) {
      frag_pieces_.clear();
      startRelay();
      return;
    }
    const std::string& p = frag_pieces_[frag_next_++];
    remote_->write(p.data(), p.size(), [this](int status) {
      if (status < 0) {
        closeNow(std::string("remote: ") + uv_strerror(status));
        return;
      }
      // The next piece goes once the peer acknowledged this one (so that they travel as
      // separate segments), or after the fallback delay where that cannot be observed.
      if (frag_next_ == frag_pieces_.size()) {
        writeNextFragment();
        return;
      }
      if (frag_timer_ == nullptr) {
        frag_timer_ = new uv_timer_t;
        uv_timer_init(router_->loop_, frag_timer_);
        frag_timer_->data = this;
      }
      frag_wait_start_ = uv_now(router_->loop_);
      uv_timer_start(frag_timer_, [](uv_timer_t* t) {
        auto* s = static_cast<TcpSession*>(t->data);
        bool acked = s->remote_ && conn::allAcked(s->remote_->socket());
        if (acked || uv_now(t->loop) - s->frag_wait_start_ >= s->frag_delay_ms_) {
          uv_timer_stop(t);
          s->writeNextFragment();
        }
      }, 1, 1);
    });
  }

  void closeFragTimer() {
    if (frag_timer_ == nullptr) return;
    loop::closeHandle(frag_timer_, [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    frag_timer_ = nullptr;
  }

  void startRelay() {
    if (fragmentEarly()) return;
    closeFragTimer();
    uv_tcp_t* client = client_;
    client_ = nullptr;
    relay_ = conn::startStreamRelay(router_->loop_, conn::makeTcpStream(client), std::move(remote_),
                              std::move(early_),
                              state_->relay, [this](const conn::RelayResult& r) {
                                     LOG_INFO("%s closed: %s, up %llu B, down %llu B",
                                              describeCtx(ctx_).c_str(), r.reason.c_str(),
                                              static_cast<unsigned long long>(r.up),
                                              static_cast<unsigned long long>(r.down));
                                     relay_ = nullptr;
                                     finish();
                                   });
    // A client that half-closed while we were sniffing: pass the EOF on now.
    if (client_eof_) LOG_DEBUG("%s client half-closed during sniffing", describeCtx(ctx_).c_str());
  }

  void startDnsSession();

  void fail(conn::DialFailure f, const std::string& why, bool send_reply = true) {
    std::string reply = send_reply && reply_ && !replied_ ? reply_(f) : std::string();
    replied_ = true;
    if (!reply.empty()) {
      writeClient(std::move(reply), 0);
      return;
    }
    closeNow(why);
  }

  void closeClient(const std::string& reason) {
    if (closing_) return;
    closing_ = true;
    if (client_ == nullptr) {
      finish();
      return;
    }
    LOG_DEBUG("%s closed: %s", describeCtx(ctx_).c_str(), reason.c_str());
    loop::closeHandle(client_, [](uv_handle_t* h) {
      auto* s = static_cast<TcpSession*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      s->client_ = nullptr;
      s->finish();
    });
  }

  void finish() {
    router_->tracker_.remove(ctx_.id);
    delete this;
  }

  Router* router_;
  std::shared_ptr<RouteState> state_;
  conn::InboundContext ctx_;
  uv_tcp_t* client_;
  conn::StreamPtr remote_;
  std::string early_;
  conn::ReplyBuilder reply_;
  std::unique_ptr<Walk> walk_ = std::make_unique<Walk>();  // until the decision
  outbound::Outbound* out_ = nullptr;
  uint64_t dial_id_ = 0;
  uint64_t resolve_id_ = 0;
  uv_timer_t* sniff_timer_ = nullptr;
  bool frag_tcp_ = false, frag_record_ = false;
  uint32_t frag_delay_ms_ = 500;
  std::vector<std::string> frag_pieces_;
  size_t frag_next_ = 0;
  uv_timer_t* frag_timer_ = nullptr;
  uint64_t frag_wait_start_ = 0;
  conn::Relay* relay_ = nullptr;
  bool sniffing_ = false;
  bool replied_ = false;
  bool client_eof_ = false;
  bool closing_ = false;
};

// A UDP flow whose route is being decided: its first datagrams are sniffed (QUIC ClientHellos
// span several), or its destination resolved. Datagrams are queued (bounded) meanwhile and all
// of them are sent once the session exists.
class Router::UdpPending {
 public:
  static constexpr size_t kMaxQueued = 16;

  UdpPending(Router* r, std::shared_ptr<RouteState> st, conn::InboundContext ctx,
             conn::UdpReplySink* sink, std::string key)
      : router_(r), state_(std::move(st)), ctx_(std::move(ctx)), sink_(sink),
        key_(std::move(key)) {}

  void start(const char* data, size_t len) {
    queued_.emplace_back(data, len);
    dests_.push_back(ctx_.destination);
    if (!router_->unmapDestination(ctx_, *state_)) {
      LOG_INFO("%s missing fakeip record; dropped", describeCtx(ctx_).c_str());
      router_->udp_pending_.erase({sink_, key_});
      delete this;
      return;
    }
    walk();
  }

  void more(const conn::InboundContext& pkt, const char* data, size_t len) {
    if (queued_.size() >= kMaxQueued) return;  // UDP may drop; memory may not grow
    queued_.emplace_back(data, len);
    dests_.push_back(pkt.destination);
    if (sniffing_) feed(queued_.back());
  }

  void abandon() {
    if (resolve_id_ && state_->resolver) state_->resolver->cancel(resolve_id_);
    resolve_id_ = 0;
    stopTimer();
    delete this;
  }

 private:
  void walk() {
    walk_.on_demand = state_->resolve_on_demand;
    switch (walk_.step(state_->engine.get(), ctx_, state_->final_outbound)) {
      case Walk::Step::Final: {
        Router* r = router_;
        auto st = state_;
        conn::InboundContext ctx = std::move(ctx_);
        Decision d = walk_.decision;
        std::vector<std::string> q = std::move(queued_);
        conn::UdpReplySink* sink = sink_;
        r->udp_pending_.erase({sink_, key_});
        stopTimer();
        delete this;
        routeDnsOutbound(d, *st);
        if (d.kind == Decision::Kind::HijackDns) {
          ctx.rule = d.rule;
          r->hijackUdp(ctx, st, sink, std::move(q));
          return;
        }
        r->startUdpSession(std::move(ctx), st, d, sink, std::move(q));
        return;
      }
      case Walk::Step::Sniff: {
        sniffing_ = true;
        sniffer_ = std::make_unique<sniff::PacketSniffer>(sniffers(walk_));
        for (const auto& p : queued_) {
          if (!sniffing_) break;
          feed(p);
        }
        if (sniffing_) startTimer(sniffTimeout(walk_, ctx_));
        return;
      }
      case Walk::Step::Resolve: {
        if (!state_->resolver) {
          walk();
          return;
        }
        resolve_id_ = state_->resolver->resolve(
            ctx_.destination.domain,
            strategyOf(walk_.pending ? walk_.pending->resolve_strategy : ""),
            [this](Result<std::vector<IpAddress>> r) {
              resolve_id_ = 0;
              if (!r && walk_.pending == nullptr) {
                walk_.resolve_failed = true;
                walk();
                return;
              }
              if (!r) {
                LOG_INFO("%s resolve failed: %s", describeCtx(ctx_).c_str(),
                         r.error().message().c_str());
                router_->udp_pending_.erase({sink_, key_});
                delete this;
                return;
              }
              ctx_.destination_addresses = std::move(*r);
              walk();
            });
        return;
      }
    }
  }

  void feed(const std::string& datagram) {
    sniff::Info info;
    sniff::Status st = sniffer_->feed(asBytes(datagram), info);
    if (st == sniff::Status::NeedMore) return;
    if (st == sniff::Status::Match) {
      ++router_->stats_.sniffed;
      applySniff(ctx_, info.protocol, info.domain, info.client,
                 walk_.pending == nullptr && ctx_.sniff_override_destination);
    }
    endSniff();
  }

  void endSniff() {
    sniffing_ = false;
    stopTimer();
    // Continue on the next loop turn: we may be inside feed() called from more().
    auto* self = this;
    loop::defer(router_->loop_, [self, r = router_, key = std::make_pair(sink_, key_)] {
      auto it = r->udp_pending_.find(key);
      if (it == r->udp_pending_.end() || it->second != self) return;
      self->walk();
    });
  }

  void startTimer(uint32_t ms) {
    timer_ = new uv_timer_t;
    uv_timer_init(router_->loop_, timer_);
    timer_->data = this;
    uv_timer_start(timer_, [](uv_timer_t* t) {
      auto* p = static_cast<UdpPending*>(t->data);
      ++p->router_->stats_.sniff_timeouts;
      p->sniffing_ = false;
      p->stopTimer();
      p->walk();
    }, ms, 0);
  }

  void stopTimer() {
    if (timer_ == nullptr) return;
    loop::closeHandle(timer_, [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }

  Router* router_;
  std::shared_ptr<RouteState> state_;
  conn::InboundContext ctx_;
  conn::UdpReplySink* sink_;
  std::string key_;
  Walk walk_;
  std::vector<std::string> queued_;
  std::vector<Destination> dests_;
  std::unique_ptr<sniff::PacketSniffer> sniffer_;
  uv_timer_t* timer_ = nullptr;
  uint64_t resolve_id_ = 0;
  bool sniffing_ = false;
};

// hijack-dns over TCP: length-prefixed DNS messages, answered one after another by veer's DNS,
// until the client closes or stays silent for 10 s (sing-box's read deadline).
class Router::DnsTcpSession : public conn::Closable {
 public:
  DnsTcpSession(Router* r, std::shared_ptr<RouteState> st, conn::InboundContext ctx,
                uv_tcp_t* client, std::string early)
      : router_(r), state_(std::move(st)), ctx_(std::move(ctx)), client_(client),
        buf_(std::move(early)) {
    client_->data = this;
  }

  void start() {
    router_->tracker_.add(ctx_.id, &ctx_, this);
    timer_ = new uv_timer_t;
    uv_timer_init(router_->loop_, timer_);
    timer_->data = this;
    arm();
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(client_),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          buf->base = loop::BufferPool::local().acquire(4096);
          buf->len = 4096;
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* self = static_cast<DnsTcpSession*>(s->data);
          if (n > 0) self->buf_.append(buf->base, static_cast<size_t>(n));
          if (buf->base) loop::BufferPool::local().release(buf->base, buf->len);
          if (n < 0) {
            self->eof_ = true;
            uv_read_stop(s);
            if (self->pending_.empty()) self->closeNow("client closed");
            return;
          }
          self->arm();
          self->process();
        });
    process();
  }

  void closeNow(const std::string& reason) override {
    if (closing_) return;
    closing_ = true;
    for (uint64_t id : pending_) state_->dns->cancel(id);
    pending_.clear();
    LOG_INFO("%s dns session closed: %s, %llu queries", describeCtx(ctx_).c_str(), reason.c_str(),
             static_cast<unsigned long long>(queries_));
    loop::closeHandle(timer_, [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    loop::closeHandle(client_, [](uv_handle_t* h) {
      auto* self = static_cast<DnsTcpSession*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      self->router_->tracker_.remove(self->ctx_.id);
      delete self;
    });
  }
  uint64_t bytesUp() const override { return up_; }
  uint64_t bytesDown() const override { return down_; }

 private:
  void arm() {
    uv_timer_start(timer_, [](uv_timer_t* t) {
      static_cast<DnsTcpSession*>(t->data)->closeNow("idle");
    }, 10000, 0);
  }

  void process() {
    while (!closing_ && buf_.size() >= 2) {
      size_t len = (static_cast<uint8_t>(buf_[0]) << 8) | static_cast<uint8_t>(buf_[1]);
      if (len < 12) {
        closeNow("malformed DNS message length");
        return;
      }
      if (buf_.size() < 2 + len) return;
      std::vector<uint8_t> q(buf_.begin() + 2, buf_.begin() + 2 + static_cast<long>(len));
      buf_.erase(0, 2 + len);
      up_ += len;
      ++queries_;
      ++router_->dns_hijacked_;
      // Bound the queries in flight per connection: a client cannot queue unbounded work.
      if (pending_.size() >= 64) {
        closeNow("too many queries in flight");
        return;
      }
      uint64_t id = state_->dns->exchange(
          std::move(q), dns::DnsRouter::Context{ctx_.inbound_tag}, true,
          [this](Result<std::vector<uint8_t>> r) {
            // Completed ids are removed lazily: the callback does not know its own id.
            pending_.erase(pending_.begin());
            if (closing_) return;
            if (r) {
              std::string out;
              out.push_back(static_cast<char>(r->size() >> 8));
              out.push_back(static_cast<char>(r->size() & 0xff));
              out.append(reinterpret_cast<const char*>(r->data()), r->size());
              down_ += r->size();
              write(std::move(out));
            }
            if (eof_ && pending_.empty()) closeNow("client closed");
          });
      pending_.push_back(id);
    }
    if (buf_.size() > 70000) closeNow("oversized DNS message");
  }

  void write(std::string data) {
    struct W {
      uv_write_t req;
      std::string data;
    };
    auto* w = new W{{}, std::move(data)};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(client_), &b, 1,
                 [](uv_write_t* req, int) { delete static_cast<W*>(req->data); }) != 0) {
      delete w;
    }
  }

  Router* router_;
  std::shared_ptr<RouteState> state_;
  conn::InboundContext ctx_;
  uv_tcp_t* client_;
  std::string buf_;
  uv_timer_t* timer_ = nullptr;
  std::vector<uint64_t> pending_;
  uint64_t up_ = 0, down_ = 0, queries_ = 0;
  bool eof_ = false;
  bool closing_ = false;
};

void Router::TcpSession::startDnsSession() {
  uv_tcp_t* c = client_;
  client_ = nullptr;
  router_->tracker_.remove(ctx_.id);
  auto* d = new DnsTcpSession(router_, state_, ctx_, c, std::move(early_));
  d->start();
  closing_ = true;
  delete this;
}

bool Router::unmapDestination(conn::InboundContext& ctx, const RouteState& st) {
  if (!st.dns || ctx.destination.isDomain() || !ctx.destination.ip.valid()) return true;
  IpAddress ip = ctx.destination.ip.unmap();
  bool fake = st.dns->isFakeIp(ip);
  auto domain = st.dns->lookupDomain(ip);
  if (fake) {
    if (!domain) return false;
    // A FakeIP stands for its domain: the connection goes to the domain (sing-box).
    ctx.original_destination = ctx.destination;
    Destination d;
    d.domain = *domain;
    d.port = ctx.destination.port;
    ctx.destination = d;
    return true;
  }
  // reverse_mapping: the name a recent answer gave this address, for matching only.
  if (domain && ctx.sniffed_domain.empty()) ctx.sniffed_domain = *domain;
  return true;
}

void Router::hijackUdp(const conn::InboundContext& ctx, const std::shared_ptr<RouteState>& st,
                       conn::UdpReplySink* sink, std::vector<std::string> queries) {
  if (!st->dns) {
    LOG_WARN("%s hijack-dns needs a \"dns\" section; dropped", describeCtx(ctx).c_str());
    return;
  }
  LOG_DEBUG("%s hijacked by %s", describeCtx(ctx).c_str(), ctx.rule.c_str());
  Destination from = ctx.original_destination.valid() ? ctx.original_destination : ctx.destination;
  for (auto& q : queries) {
    ++dns_hijacked_;
    auto id = std::make_shared<uint64_t>(0);
    *id = st->dns->exchange(std::vector<uint8_t>(q.begin(), q.end()),
                            dns::DnsRouter::Context{ctx.inbound_tag}, false,
                            [this, id, from](Result<std::vector<uint8_t>> r) {
                              auto it = hijack_ops_.find(*id);
                              if (it == hijack_ops_.end()) return;
                              conn::UdpReplySink* s = it->second.sink;
                              hijack_ops_.erase(it);
                              if (r) {
                                s->sendReply(from, reinterpret_cast<const char*>(r->data()),
                                             r->size());
                              }
                            });
    hijack_ops_[*id] = HijackOp{st->dns, sink};
  }
}

Router::Router(uv_loop_t* loop) : loop_(loop), nat_(loop, 4096) {
  nat_.on_close = [](const conn::UdpNat::Session& s, const std::string& reason) {
    LOG_INFO("%s closed: %s, up %llu B, down %llu B", describeCtx(s.ctx).c_str(), reason.c_str(),
             static_cast<unsigned long long>(s.up), static_cast<unsigned long long>(s.down));
  };
}

Router::~Router() { closeAll("shutdown"); }

void Router::handleTcp(conn::InboundContext ctx, uv_tcp_t* client, std::string early,
                       conn::ReplyBuilder reply) {
  if (ctx.id == 0) ctx.id = nextConnectionId();
  ctx.start_ms = uv_now(loop_);
  ++stats_.tcp_total;
  auto* s = new TcpSession(this, state_, std::move(ctx), client, std::move(early),
                           std::move(reply));
  s->start();
}

uint64_t Router::dialTcp(conn::InboundContext& ctx, DialCallback cb) {
  // Used by the plain HTTP proxy, which knows protocol and host already: no I/O actions apply
  // (sniff is skipped for a known protocol; a resolve action is not carried out here).
  if (ctx.id == 0) ctx.id = nextConnectionId();
  std::shared_ptr<RouteState> st = state_;
  Walk w;
  Walk::Step step;
  while ((step = w.step(st->engine.get(), ctx, st->final_outbound)) != Walk::Step::Final) {
  }
  const Decision& d = w.decision;
  ctx.rule = d.rule;
  ctx.outbound = d.outbound;
  applyOverrides(ctx, d);
  uint64_t id = next_dial_++;
  if (d.kind != Decision::Kind::Route) {
    LOG_INFO("%s rejected by %s", describeCtx(ctx).c_str(), d.rule.c_str());
    ++stats_.tcp_rejected;
    loop::defer(loop_, [cb = std::move(cb)] {
      cb(unexpected(Error("rejected by rule", UV_EPERM)), conn::DialFailure::Blocked);
    });
    return id;
  }
  outbound::Outbound* out = st->find(d.outbound);
  if (out == nullptr) {
    LOG_ERROR("%s outbound not found: %s", describeCtx(ctx).c_str(), d.outbound.c_str());
    loop::defer(loop_, [cb = std::move(cb), tag = d.outbound] {
      cb(unexpected(Error("outbound not found: " + tag)), conn::DialFailure::Other);
    });
    return id;
  }
  LOG_INFO("%s matched %s => outbound/%s[%s]", describeCtx(ctx).c_str(), d.rule.c_str(),
           out->type().c_str(), out->tag().c_str());
  PendingDial& pd = dials_[id];
  pd.state = st;
  pd.outbound = out;
  pd.outbound_dial = out->dialTcp(ctx, [this, id, cb = std::move(cb)](Result<conn::StreamPtr> r) {
    dials_.erase(id);
    if (!r) {
      ++stats_.tcp_failed;
      conn::DialFailure f = conn::classifyDialError(r.error());
      cb(std::move(r), f);
      return;
    }
    cb(std::move(r), conn::DialFailure::None);
  });
  return id;
}

void Router::cancelDial(uint64_t id) {
  auto it = dials_.find(id);
  if (it == dials_.end()) return;
  it->second.outbound->cancelDial(it->second.outbound_dial);
  dials_.erase(it);
}

void Router::handleUdp(const conn::InboundContext& in_ctx, const char* data, size_t len,
                       conn::UdpReplySink* sink) {
  conn::UdpNat::Session* s = nat_.find(sink, in_ctx.source);
  if (s != nullptr) {
    sendUdp(s, in_ctx.destination, data, len);
    return;
  }
  std::string key = in_ctx.source.toString();
  auto it = udp_pending_.find({sink, key});
  if (it != udp_pending_.end()) {
    it->second->more(in_ctx, data, len);
    return;
  }
  conn::InboundContext ctx = in_ctx;
  ctx.network = "udp";
  if (ctx.id == 0) ctx.id = nextConnectionId();
  ctx.start_ms = uv_now(loop_);
  auto* p = new UdpPending(this, state_, std::move(ctx), sink, key);
  udp_pending_[{sink, key}] = p;
  p->start(data, len);
}

void Router::startUdpSession(conn::InboundContext ctx, const std::shared_ptr<RouteState>& st,
                             const Decision& d, conn::UdpReplySink* sink,
                             std::vector<std::string> queued) {
  Destination client_dst = ctx.destination;
  ctx.rule = d.rule;
  ctx.outbound = d.outbound;
  applyOverrides(ctx, d);
  if (d.kind != Decision::Kind::Route) {
    ++stats_.udp_rejected;
    LOG_INFO("%s rejected by %s", describeCtx(ctx).c_str(), d.rule.c_str());
    return;
  }
  outbound::Outbound* out = st->find(d.outbound);
  if (out == nullptr) {
    LOG_ERROR("%s outbound not found: %s", describeCtx(ctx).c_str(), d.outbound.c_str());
    return;
  }
  // The receive callback finds its session through the NAT table, so a reply that races with
  // the session's removal is simply dropped.
  SocketAddress source = ctx.source;
  auto on_reply = [this, sink, source](const SocketAddress& from, const char* bytes, size_t n) {
    conn::UdpNat::Session* ss = nat_.find(sink, source);
    if (ss == nullptr) return;
    ss->down += n;
    nat_.touch(ss);
    ss->sink->sendReply(nat_.translate(ss, from), bytes, n);
  };
  auto pc = out->listenUdp(ctx, on_reply);
  if (!pc && (pc.error().code() == -EMFILE || pc.error().code() == -ENFILE) && nat_.size() > 0) {
    // Out of file descriptors: the oldest UDP session gives up its socket for this new one,
    // rather than every new flow failing until sessions expire.
    nat_.evictOldest("evicted (out of file descriptors)");
    pc = out->listenUdp(ctx, on_reply);
  }
  if (!pc) {
    LOG_INFO("%s udp failed: %s", describeCtx(ctx).c_str(), pc.error().message().c_str());
    return;
  }
  outbound::PacketConn* conn_ptr = *pc;
  conn::UdpRemote remote;
  remote.send = [conn_ptr](const Destination& dst, const char* bytes, size_t n) {
    conn_ptr->send(dst, bytes, n);
  };
  // The session keeps the routing state that made it (and so its outbound) alive, as a TCP
  // session does: after a reload the old outbounds live on until their sessions end.
  remote.close = [conn_ptr, keep = st] {
    (void)keep;
    conn_ptr->close();
  };
  // DNS gets a short timeout (sing-box C.ProtocolTimeouts), everything else the inbound's.
  uint32_t timeout = d.udp_timeout_ms.value_or(ctx.udp_timeout_ms ? ctx.udp_timeout_ms
                                                                   : st->udp_timeout_ms);
  if (!d.udp_timeout_ms && (ctx.destination.port == 53 || ctx.protocol == "dns" ||
                            ctx.protocol == "ntp" || ctx.protocol == "stun")) {
    timeout = 10000;
  }
  LOG_INFO("%s matched %s => outbound/%s[%s]", describeCtx(ctx).c_str(), d.rule.c_str(),
           out->type().c_str(), out->tag().c_str());
  ++stats_.udp_sessions;
  conn::UdpNat::Session* s = nat_.add(sink, source, std::move(ctx), std::move(remote), timeout);
  for (const auto& q : queued) sendUdp(s, client_dst, q.data(), q.size());
}

void Router::sendUdp(conn::UdpNat::Session* s, const Destination& client_dst, const char* data,
                     size_t len) {
  // Per-packet destinations, unless the session's destination was rewritten (override or the
  // legacy sniff_override_destination): then every packet goes there.
  Destination routed = s->ctx.original_destination.valid() ? s->ctx.destination : client_dst;
  if (!routed.isDomain()) {
    nat_.remember(s, SocketAddress(routed.ip, routed.port), client_dst);
  } else {
    nat_.rememberDomain(s, client_dst);
  }
  s->up += len;
  nat_.touch(s);
  s->remote.send(routed, data, len);
}

void Router::udpSinkClosed(conn::UdpReplySink* sink) {
  for (auto it = hijack_ops_.begin(); it != hijack_ops_.end();) {
    if (it->second.sink == sink) {
      it->second.dns->cancel(it->first);
      it = hijack_ops_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = udp_pending_.begin(); it != udp_pending_.end();) {
    if (it->first.first == sink) {
      it->second->abandon();
      it = udp_pending_.erase(it);
    } else {
      ++it;
    }
  }
  nat_.removeSink(sink);
}

void Router::logConnections() const {
  uint64_t now = uv_now(loop_);
  auto list = tracker_.list();
  LOG_INFO("connections: %zu TCP, %zu UDP sessions", list.size(), nat_.size());
  for (const auto& t : list) {
    LOG_INFO("  %s rule=%s outbound=%s up=%llu down=%llu age=%llus", describeCtx(t.ctx).c_str(),
             t.ctx.rule.empty() ? "-" : t.ctx.rule.c_str(),
             t.ctx.outbound.empty() ? "-" : t.ctx.outbound.c_str(),
             static_cast<unsigned long long>(t.up), static_cast<unsigned long long>(t.down),
             static_cast<unsigned long long>((now - t.ctx.start_ms) / 1000));
  }
  for (const conn::UdpNat::Session* s : nat_.sessions()) {
    LOG_INFO("  %s rule=%s outbound=%s up=%llu down=%llu age=%llus", describeCtx(s->ctx).c_str(),
             s->ctx.rule.c_str(), s->ctx.outbound.c_str(), static_cast<unsigned long long>(s->up),
             static_cast<unsigned long long>(s->down),
             static_cast<unsigned long long>((now - s->ctx.start_ms) / 1000));
  }
  const conn::NatStats& ns = nat_.stats();
  LOG_INFO("counters: tcp=%llu failed=%llu rejected=%llu sniffed=%llu sniff_timeouts=%llu "
           "udp_sessions=%llu udp_rejected=%llu nat_evicted=%llu nat_expired=%llu "
           "dns_hijacked=%llu",
           static_cast<unsigned long long>(stats_.tcp_total),
           static_cast<unsigned long long>(stats_.tcp_failed),
           static_cast<unsigned long long>(stats_.tcp_rejected),
           static_cast<unsigned long long>(stats_.sniffed),
           static_cast<unsigned long long>(stats_.sniff_timeouts),
           static_cast<unsigned long long>(stats_.udp_sessions),
           static_cast<unsigned long long>(stats_.udp_rejected),
           static_cast<unsigned long long>(ns.evicted), static_cast<unsigned long long>(ns.expired),
           static_cast<unsigned long long>(dns_hijacked_));
}

void Router::closeAll(const std::string& reason) {
  tracker_.closeAll(reason);
  for (auto& [id, op] : hijack_ops_) op.dns->cancel(id);
  hijack_ops_.clear();
  for (auto& [k, p] : udp_pending_) p->abandon();
  udp_pending_.clear();
  nat_.closeAll();
  for (auto& [id, pd] : dials_) pd.outbound->cancelDial(pd.outbound_dial);
  dials_.clear();
}

}  // namespace veer::route
