#include "route/router.h"

#include <cstring>

#include "base/log.h"
#include "loop/defer.h"
#include "loop/uv_util.h"

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
  return s;
}

const char* failureName(conn::DialFailure f) {
  switch (f) {
    case conn::DialFailure::None: return "ok";
    case conn::DialFailure::Blocked: return "blocked";
    case conn::DialFailure::Refused: return "refused";
    case conn::DialFailure::Unreachable: return "unreachable";
    case conn::DialFailure::Timeout: return "timeout";
    case conn::DialFailure::Other: return "failed";
  }
  return "failed";
}

void applyOverrides(conn::InboundContext& ctx, const Decision& d) {
  if (d.override_address.empty() && !d.override_port) return;
  ctx.original_destination = ctx.destination;
  if (!d.override_address.empty()) {
    Destination nd = Destination::fromHost(d.override_address, ctx.destination.port);
    ctx.destination = nd;
    ctx.destination_addresses.clear();
  }
  if (d.override_port) ctx.destination.port = *d.override_port;
}

}  // namespace

// One routed TCP connection from dial to close.
class Router::TcpSession : public conn::Closable {
 public:
  TcpSession(Router* r, std::shared_ptr<RouteState> st, conn::InboundContext ctx,
             uv_tcp_t* client, std::string early, conn::ReplyBuilder reply)
      : router_(r), state_(std::move(st)), ctx_(std::move(ctx)), client_(client),
        early_(std::move(early)), reply_(std::move(reply)) {
    client_->data = this;
  }

  void start(const Decision& d) {
    router_->tracker_.add(ctx_.id, ctx_, this);
    if (d.kind == Decision::Kind::Reject) {
      ++router_->stats_.tcp_rejected;
      LOG_INFO("%s rejected by %s", describeCtx(ctx_).c_str(), d.rule.c_str());
      // "drop" sends nothing back; "default" closes (after the inbound's refusal reply).
      if (d.reject_method == "drop") {
        fail(conn::DialFailure::Blocked, "rejected (drop)", false);
      } else {
        fail(conn::DialFailure::Blocked, "rejected", true);
      }
      return;
    }
    if (d.kind == Decision::Kind::HijackDns) {
      LOG_WARN("%s hijack-dns over TCP is not available in this build; closing",
               describeCtx(ctx_).c_str());
      fail(conn::DialFailure::Other, "hijack-dns unavailable", true);
      return;
    }
    out_ = state_->find(d.outbound);
    if (out_ == nullptr) {
      LOG_ERROR("%s outbound not found: %s", describeCtx(ctx_).c_str(), d.outbound.c_str());
      fail(conn::DialFailure::Other, "outbound not found", true);
      return;
    }
    LOG_INFO("%s matched %s => outbound/%s[%s]", describeCtx(ctx_).c_str(), d.rule.c_str(),
             out_->type().c_str(), out_->tag().c_str());
    dial_id_ = out_->dialTcp(ctx_, [this](Result<uv_tcp_t*> r) {
      dial_id_ = 0;
      if (!r) {
        conn::DialFailure f = conn::classifyDialError(r.error());
        LOG_INFO("%s dial failed: %s", describeCtx(ctx_).c_str(), r.error().message().c_str());
        ++router_->stats_.tcp_failed;
        fail(f, r.error().message(), true);
        return;
      }
      onConnected(*r);
    });
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
    if (remote_) {
      loop::closeHandle(remote_, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
      remote_ = nullptr;
    }
    closeClient(reason);
  }
  uint64_t bytesUp() const override { return relay_ ? relay_->up() : 0; }
  uint64_t bytesDown() const override { return relay_ ? relay_->down() : 0; }

 private:
  struct Write {
    uv_write_t req;
    std::string data;
    TcpSession* session;
    bool then_relay;
  };

  void onConnected(uv_tcp_t* remote) {
    remote_ = remote;
    std::string reply = reply_ ? reply_(conn::DialFailure::None) : std::string();
    if (reply.empty()) {
      startRelay();
      return;
    }
    writeClient(std::move(reply), true);
  }

  void writeClient(std::string bytes, bool then_relay) {
    auto* w = new Write{{}, std::move(bytes), this, then_relay};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(client_), &b, 1,
                      [](uv_write_t* req, int status) {
                        auto* ww = static_cast<Write*>(req->data);
                        TcpSession* s = ww->session;
                        bool relay = ww->then_relay;
                        delete ww;
                        if (s->closing_) return;
                        if (status != 0 || !relay) {
                          s->closeNow(status != 0 ? uv_strerror(status) : "replied");
                          return;
                        }
                        s->startRelay();
                      });
    if (rc != 0) {
      delete w;
      closeNow(uv_strerror(rc));
    }
  }

  void startRelay() {
    uv_tcp_t* client = client_;
    uv_tcp_t* remote = remote_;
    client_ = nullptr;
    remote_ = nullptr;
    relay_ = conn::TcpRelay::start(router_->loop_, client, remote, std::move(early_),
                                   state_->relay, [this](const conn::RelayResult& r) {
                                     LOG_INFO("%s closed: %s, up %llu B, down %llu B",
                                              describeCtx(ctx_).c_str(), r.reason.c_str(),
                                              static_cast<unsigned long long>(r.up),
                                              static_cast<unsigned long long>(r.down));
                                     relay_ = nullptr;
                                     finish();
                                   });
  }

  void fail(conn::DialFailure f, const std::string& why, bool send_reply) {
    std::string reply = send_reply && reply_ ? reply_(f) : std::string();
    if (!reply.empty()) {
      writeClient(std::move(reply), false);
      return;
    }
    closeNow(why);
    (void)failureName;
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
  uv_tcp_t* remote_ = nullptr;
  std::string early_;
  conn::ReplyBuilder reply_;
  outbound::Outbound* out_ = nullptr;
  uint64_t dial_id_ = 0;
  conn::TcpRelay* relay_ = nullptr;
  bool closing_ = false;
};

Router::Router(uv_loop_t* loop) : loop_(loop), nat_(loop, 4096) {
  nat_.on_close = [](const conn::UdpNat::Session& s, const std::string& reason) {
    LOG_INFO("%s closed: %s, up %llu B, down %llu B", describeCtx(s.ctx).c_str(), reason.c_str(),
             static_cast<unsigned long long>(s.up), static_cast<unsigned long long>(s.down));
  };
}

Router::~Router() { closeAll("shutdown"); }

Decision Router::decide(conn::InboundContext& ctx, RouteState& st) {
  Decision d;
  if (st.decider) {
    d = st.decider->decide(ctx);
  } else {
    d.outbound = st.final_outbound;
    d.rule = "final";
  }
  if (d.kind == Decision::Kind::Route && d.outbound.empty()) d.outbound = st.final_outbound;
  ctx.rule = d.rule;
  ctx.outbound = d.outbound;
  applyOverrides(ctx, d);
  return d;
}

void Router::handleTcp(conn::InboundContext ctx, uv_tcp_t* client, std::string early,
                       conn::ReplyBuilder reply) {
  if (ctx.id == 0) ctx.id = nextConnectionId();
  ctx.start_ms = uv_now(loop_);
  ++stats_.tcp_total;
  std::shared_ptr<RouteState> st = state_;
  Decision d = decide(ctx, *st);
  auto* s = new TcpSession(this, st, std::move(ctx), client, std::move(early), std::move(reply));
  s->start(d);
}

uint64_t Router::dialTcp(conn::InboundContext& ctx, DialCallback cb) {
  if (ctx.id == 0) ctx.id = nextConnectionId();
  std::shared_ptr<RouteState> st = state_;
  Decision d = decide(ctx, *st);
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
  pd.outbound_dial = out->dialTcp(ctx, [this, id, cb = std::move(cb)](Result<uv_tcp_t*> r) {
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
  if (s == nullptr) {
    conn::InboundContext ctx = in_ctx;
    ctx.network = "udp";
    if (ctx.id == 0) ctx.id = nextConnectionId();
    ctx.start_ms = uv_now(loop_);
    std::shared_ptr<RouteState> st = state_;
    Decision d = decide(ctx, *st);
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
    // The receive callback finds its session through the NAT table, so a reply that races
    // with the session's removal is simply dropped.
    SocketAddress source = ctx.source;
    auto pc = out->listenUdp(ctx, [this, sink, source](const SocketAddress& from,
                                                       const char* bytes, size_t n) {
      conn::UdpNat::Session* ss = nat_.find(sink, source);
      if (ss == nullptr) return;
      ss->down += n;
      nat_.touch(ss);
      ss->sink->sendReply(nat_.translate(ss, from), bytes, n);
    });
    if (!pc) {
      LOG_INFO("%s udp failed: %s", describeCtx(ctx).c_str(), pc.error().message().c_str());
      return;
    }
    outbound::PacketConn* conn_ptr = *pc;
    conn::UdpRemote remote;
    remote.send = [conn_ptr](const Destination& dst, const char* bytes, size_t n) {
      conn_ptr->send(dst, bytes, n);
    };
    remote.close = [conn_ptr] { conn_ptr->close(); };
    // DNS gets a short timeout (sing-box C.ProtocolTimeouts), everything else the inbound's.
    uint32_t timeout = d.udp_timeout_ms.value_or(ctx.udp_timeout_ms ? ctx.udp_timeout_ms
                                                                     : st->udp_timeout_ms);
    if (!d.udp_timeout_ms && (ctx.destination.port == 53 || ctx.protocol == "dns")) {
      timeout = 10000;
    }
    LOG_INFO("%s matched %s => outbound/%s[%s]", describeCtx(ctx).c_str(), d.rule.c_str(),
             out->type().c_str(), out->tag().c_str());
    ++stats_.udp_sessions;
    s = nat_.add(sink, source, std::move(ctx), std::move(remote), timeout);
  }
  // Per-packet destination: the session's override applies, otherwise the packet's own.
  Destination client_dst = in_ctx.destination;
  Destination routed = client_dst;
  if (!s->ctx.original_destination.valid()) {
    routed = client_dst;
  } else {
    routed = s->ctx.destination;
  }
  if (!routed.isDomain()) {
    nat_.remember(s, SocketAddress(routed.ip, routed.port), client_dst);
  } else {
    nat_.rememberDomain(s, client_dst);
  }
  s->up += len;
  nat_.touch(s);
  s->remote.send(routed, data, len);
}

void Router::udpSinkClosed(conn::UdpReplySink* sink) { nat_.removeSink(sink); }

void Router::closeAll(const std::string& reason) {
  tracker_.closeAll(reason);
  nat_.closeAll();
  for (auto& [id, pd] : dials_) pd.outbound->cancelDial(pd.outbound_dial);
  dials_.clear();
}

}  // namespace veer::route
