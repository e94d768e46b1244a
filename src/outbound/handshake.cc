#include "outbound/handshake.h"

#include "loop/defer.h"
#include "tls/client.h"
#include "loop/uv_util.h"

namespace veer::outbound {

void appendSocksAddr(std::string& out, const Destination& d) {
  if (d.isDomain()) {
    out.push_back(3);
    out.push_back(static_cast<char>(d.domain.size()));
    out += d.domain;
  } else if (d.ip.isV4()) {
    out.push_back(1);
    out.append(reinterpret_cast<const char*>(d.ip.data()), 4);
  } else {
    out.push_back(4);
    out.append(reinterpret_cast<const char*>(d.ip.data()), 16);
  }
  out.push_back(static_cast<char>(d.port >> 8));
  out.push_back(static_cast<char>(d.port & 0xff));
}

Handshake::Handshake(uv_loop_t* loop, conn::StreamPtr stream, Done done)
    : loop_(loop), stream_(std::move(stream)), done_(std::move(done)) {}

Handshake* Handshake::start(uv_loop_t* loop, conn::StreamPtr stream, uint32_t timeout_ms,
                            Done done) {
  auto* h = new Handshake(loop, std::move(stream), std::move(done));
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
  // A failed write shows up as a failed read (or at the relay); nothing to do here.
  stream_->write(data.data(), data.size());
}

void Handshake::readUntil(size_t total, Step then) {
  if (finished_) return;
  if (buf_.size() >= total) {
    then();
    return;
  }
  then_ = std::move(then);
  want_ = total;
  if (reading_) return;
  reading_ = true;
  stream_->readStart([this](int status, const char* data, size_t len) {
    if (finished_) return;
    if (status < 0) {
      reading_ = false;
      fail(status == UV_EOF ? "the server closed the connection during the handshake"
                            : std::string("read: ") + uv_strerror(status));
      return;
    }
    buf_.append(data, len);
    if (buf_.size() >= want_ && then_) {
      stream_->readStop();
      reading_ = false;
      Step next = std::move(then_);
      then_ = nullptr;
      next();
    }
  });
}

void Handshake::succeed(size_t consumed) {
  if (finished_) return;
  stream_->readStop();
  reading_ = false;
  std::string rest = consumed < buf_.size() ? buf_.substr(consumed) : std::string();
  finish(conn::makePrefixedStream(loop_, std::move(stream_), std::move(rest)));
}

void Handshake::fail(const std::string& why) {
  if (finished_) return;
  stream_.reset();
  finish(unexpected(Error(why)));
}

void Handshake::abort() {
  if (finished_) return;
  done_ = nullptr;
  fail("aborted");
}

void Handshake::finish(Result<conn::StreamPtr> r) {
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
                             SharedOutbound via, const std::string& server, uint16_t port,
                             std::shared_ptr<const tls::ClientConfig> tls)
    : Outbound(std::move(type), std::move(tag)),
      loop_(loop),
      via_(std::move(via)),
      server_(Destination::fromHost(server, port)),
      tls_(std::move(tls)) {}

ProxyOutbound::~ProxyOutbound() {
  *alive_ = false;
  for (auto& [id, op] : ops_) {
    if (op.hs) op.hs->abort();
  }
  for (auto& [id, so] : server_ops_) {
    if (so.via_id) via_->cancelDial(so.via_id);
    if (so.tls_cancel) so.tls_cancel();
  }
}

conn::InboundContext ProxyOutbound::serverContext(const conn::InboundContext& ctx) const {
  conn::InboundContext c = ctx;
  c.destination = server_;
  c.original_destination = server_;
  c.destination_addresses.clear();
  return c;
}

uint64_t ProxyOutbound::connectServer(const conn::InboundContext& ctx, StreamCallback cb) {
  uint64_t id = next_id_++;
  server_ops_[id].cb = std::move(cb);
  conn::InboundContext sc = serverContext(ctx);
  sc.network = "tcp";
  server_ops_[id].via_id = via_->dialTcp(sc, [this, id](Result<conn::StreamPtr> r) {
    auto it = server_ops_.find(id);
    if (it == server_ops_.end()) return;
    it->second.via_id = 0;
    if (!r || !tls_) {
      serverDone(id, std::move(r));
      return;
    }
    it->second.tls_cancel = tls::connect(loop_, std::move(*r), tls_, handshake_timeout_ms_,
                                         [this, id](Result<conn::StreamPtr> tr) {
                                           auto jt = server_ops_.find(id);
                                           if (jt != server_ops_.end()) {
                                             jt->second.tls_cancel = nullptr;
                                           }
                                           serverDone(id, std::move(tr));
                                         });
  });
  return id;
}

void ProxyOutbound::serverDone(uint64_t id, Result<conn::StreamPtr> r) {
  auto it = server_ops_.find(id);
  if (it == server_ops_.end()) return;
  StreamCallback cb = std::move(it->second.cb);
  server_ops_.erase(it);
  if (!r) {
    cb(unexpected(r.error().wrap(type() + " server " + server_.toString())));
    return;
  }
  cb(std::move(r));
}

void ProxyOutbound::cancelServer(uint64_t id) {
  auto it = server_ops_.find(id);
  if (it == server_ops_.end()) return;
  if (it->second.via_id) via_->cancelDial(it->second.via_id);
  if (it->second.tls_cancel) it->second.tls_cancel();
  server_ops_.erase(it);
}

uint64_t ProxyOutbound::dialTcp(const conn::InboundContext& ctx, DialCallback cb) {
  uint64_t id = next_id_++;
  ops_[id].cb = std::move(cb);
  auto target = std::make_shared<conn::InboundContext>(ctx);
  ops_[id].server_id = connectServer(ctx, [this, id, target](Result<conn::StreamPtr> r) {
    auto it = ops_.find(id);
    if (it == ops_.end()) return;
    it->second.server_id = 0;
    if (!r) {
      complete(id, unexpected(r.error()));
      return;
    }
    if (!wantsHandshake()) {
      complete(id, wrapStream(std::move(*r), *target));
      return;
    }
    Handshake* hs = Handshake::start(loop_, std::move(*r), handshake_timeout_ms_,
                                     [this, id](Result<conn::StreamPtr> hr) {
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
  if (it->second.server_id) cancelServer(it->second.server_id);
  if (it->second.hs) it->second.hs->abort();
  ops_.erase(it);
}

void ProxyOutbound::complete(uint64_t id, Result<conn::StreamPtr> r) {
  auto it = ops_.find(id);
  if (it == ops_.end()) return;
  DialCallback cb = std::move(it->second.cb);
  ops_.erase(it);
  cb(std::move(r));
}

}  // namespace veer::outbound
