#include "outbound/handshake.h"

#include "loop/defer.h"
#include "loop/uv_util.h"

namespace veer::outbound {

namespace {
struct WriteReq {
  uv_write_t req;
  std::string data;
};
void closeTcp(uv_tcp_t* tcp) {
  loop::closeHandle(tcp, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}
}  // namespace

Handshake::Handshake(uv_loop_t* loop, uv_tcp_t* tcp, Done done)
    : loop_(loop), tcp_(tcp), done_(std::move(done)) {}

Handshake* Handshake::start(uv_loop_t* loop, uv_tcp_t* tcp, uint32_t timeout_ms, Done done) {
  auto* h = new Handshake(loop, tcp, std::move(done));
  tcp->data = h;
  uv_timer_init(loop, &h->timer_);
  h->timer_.data = h;
  uv_timer_start(
      &h->timer_,
      [](uv_timer_t* t) { static_cast<Handshake*>(t->data)->fail("handshake timed out"); },
      timeout_ms == 0 ? 5000 : timeout_ms, 0);
  return h;
}

void Handshake::write(std::string data) {
  if (finished_) return;
  auto* w = new WriteReq;
  w->data = std::move(data);
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  // The write callback only frees the request: it may run after the connection was handed
  // over or closed; a failed write shows up as a failed read.
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &b, 1,
                    [](uv_write_t* r, int) { delete reinterpret_cast<WriteReq*>(r); });
  if (rc != 0) {
    delete w;
    fail(std::string("write: ") + uv_strerror(rc));
  }
}

void Handshake::readUntil(size_t total, Step then) {
  if (finished_) return;
  if (buf_.size() >= total) {
    then();
    return;
  }
  then_ = std::move(then);
  want_ = total;
  int rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Handshake*>(h->data);
        size_t have = self->buf_.size();
        size_t need = self->want_ > have ? self->want_ - have : 1;
        buf->base = self->scratch_;
        buf->len = need < sizeof(self->scratch_) ? need : sizeof(self->scratch_);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
        auto* self = static_cast<Handshake*>(s->data);
        if (self == nullptr || self->finished_) return;
        if (n < 0) {
          self->fail(n == UV_EOF ? "the server closed the connection during the handshake"
                                 : std::string("read: ") + uv_strerror(static_cast<int>(n)));
          return;
        }
        if (n == 0) return;
        self->buf_.append(b->base, static_cast<size_t>(n));
        if (self->buf_.size() >= self->want_) {
          uv_read_stop(s);
          Step next = std::move(self->then_);
          next();
        }
      });
  if (rc != 0) fail(std::string("read: ") + uv_strerror(rc));
}

void Handshake::succeed() {
  if (finished_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
  tcp_->data = nullptr;
  uv_tcp_t* t = tcp_;
  tcp_ = nullptr;
  finish(t);
}

void Handshake::fail(const std::string& why) {
  if (finished_) return;
  closeTcp(tcp_);
  tcp_ = nullptr;
  finish(unexpected(Error(why)));
}

void Handshake::abort() {
  if (finished_) return;
  done_ = nullptr;
  fail("aborted");
}

void Handshake::finish(Result<uv_tcp_t*> r) {
  finished_ = true;
  Done d = std::move(done_);
  done_ = nullptr;
  release();
  if (d) d(std::move(r));
}

void Handshake::release() {
  loop::closeHandle(&timer_, [](uv_handle_t* h) { delete static_cast<Handshake*>(h->data); });
}

}  // namespace veer::outbound

namespace veer::outbound {

ProxyOutbound::ProxyOutbound(std::string type, std::string tag, uv_loop_t* loop,
                             SharedOutbound via, const std::string& server, uint16_t port)
    : Outbound(std::move(type), std::move(tag)),
      loop_(loop),
      via_(std::move(via)),
      server_(Destination::fromHost(server, port)) {}

ProxyOutbound::~ProxyOutbound() {
  *alive_ = false;
  for (auto& [id, op] : ops_) {
    if (op.via_id) via_->cancelDial(op.via_id);
    if (op.hs) op.hs->abort();
  }
}

conn::InboundContext ProxyOutbound::serverContext(const conn::InboundContext& ctx) const {
  conn::InboundContext c = ctx;
  c.destination = server_;
  c.original_destination = server_;
  c.destination_addresses.clear();
  return c;
}

uint64_t ProxyOutbound::dialTcp(const conn::InboundContext& ctx, DialCallback cb) {
  uint64_t id = next_id_++;
  ops_[id].cb = std::move(cb);
  auto target = std::make_shared<conn::InboundContext>(ctx);
  ops_[id].via_id = via_->dialTcp(serverContext(ctx), [this, id, target](Result<uv_tcp_t*> r) {
    auto it = ops_.find(id);
    if (it == ops_.end()) {
      if (r) loop::closeHandle(*r, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
      return;
    }
    it->second.via_id = 0;
    if (!r) {
      complete(id, unexpected(r.error().wrap(type() + " server " + server_.toString())));
      return;
    }
    Handshake* hs = Handshake::start(loop_, *r, handshake_timeout_ms_,
                                     [this, id](Result<uv_tcp_t*> hr) {
                                       auto jt = ops_.find(id);
                                       if (jt != ops_.end()) jt->second.hs = nullptr;
                                       if (!hr) {
                                         complete(id, unexpected(hr.error().wrap(
                                                          type() + " server " +
                                                          server_.toString())));
                                       } else {
                                         complete(id, std::move(hr));
                                       }
                                     });
    it->second.hs = hs;
    runHandshake(hs, *target);
  });
  return id;
}

uint64_t ProxyOutbound::refuse(DialCallback cb, Error e) {
  uint64_t id = next_id_++;
  ops_[id].cb = std::move(cb);
  loop::defer(loop_, [this, alive = alive_, id, e] {
    if (*alive) complete(id, unexpected(e));
  });
  return id;
}

void ProxyOutbound::cancelDial(uint64_t id) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  if (it->second.via_id) via_->cancelDial(it->second.via_id);
  if (it->second.hs) it->second.hs->abort();
  ops_.erase(it);
}

void ProxyOutbound::complete(uint64_t id, Result<uv_tcp_t*> r) {
  auto it = ops_.find(id);
  if (it == ops_.end()) {
    if (r) loop::closeHandle(*r, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  DialCallback cb = std::move(it->second.cb);
  ops_.erase(it);
  cb(std::move(r));
}

}  // namespace veer::outbound
