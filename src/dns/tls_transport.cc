#include "dns/tls_transport.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "dns/message.h"

namespace veer::dns {

namespace {

Error lostError(int status, conn::Stream* s) {
  if (status == UV_EOF) return Error("connection closed by the server");
  std::string t = s ? tls::errorOf(*s) : std::string();
  return Error(t.empty() ? std::string(uv_strerror(status)) : t);
}

}  // namespace

// ---- Connector ----------------------------------------------------------------------------

Connector::Connector(uv_loop_t* loop, const RemoteServerOptions& server, Deferrer* deferrer,
                     Done done)
    : loop_(loop),
      server_(server),
      deferrer_(deferrer),
      done_(std::move(done)),
      self_(std::make_shared<Connector*>(this)) {}

Connector::~Connector() {
  // Resolver callbacks hold a weak handle (self_) and find it gone. The resolver itself is
  // not told: it may already be closed when the DNS router shuts down.
  self_.reset();
  if (dialer_ != nullptr) dialer_->cancel();
  if (cancel_tls_) {
    auto c = std::move(cancel_tls_);
    c();
  }
}

void Connector::start() {
  if (!server_.addresses.empty()) {
    dial(server_.addresses);
    return;
  }
  if (server_.resolver == nullptr) {
    finish(unexpected(Error("server \"" + server_.server + "\" is a name and no resolver is set")));
    return;
  }
  lookups_left_ = 2;
  std::weak_ptr<Connector*> weak = self_;
  for (uint16_t type : {rrtype::kA, rrtype::kAaaa}) {
    auto wire = serializeMessage(makeQuery(static_cast<uint16_t>(uv_hrtime()), server_.server,
                                           type, Edns{}));
    if (!wire) {
      resolved(type, unexpected(wire.error()));
      continue;
    }
    // The resolver may answer synchronously (hosts): resolved() copes with that.
    server_.resolver->exchange(std::move(*wire), [weak, type](Result<std::vector<uint8_t>> r) {
      if (auto p = weak.lock()) (*p)->resolved(type, std::move(r));
    });
    if (weak.expired()) return;
  }
}

void Connector::resolved(uint16_t type, Result<std::vector<uint8_t>> r) {
  if (r) {
    auto m = parseMessage(ByteView(r->data(), r->size()));
    if (!m) {
      lookup_error_ = m.error().message();
    } else if (m->rcodeValue() != Rcode::NoError) {
      lookup_error_ = rcodeName(m->rcode);
    } else {
      for (const auto& rr : m->answers) {
        if (rr.type != type) continue;
        if (auto ip = rr.address()) (type == rrtype::kA ? v4_ : v6_).push_back(*ip);
      }
    }
  } else {
    lookup_error_ = r.error().message();
  }
  if (--lookups_left_ > 0) return;
  std::vector<SocketAddress> addrs;
  for (const auto& ip : v4_) addrs.emplace_back(ip, server_.port);
  for (const auto& ip : v6_) addrs.emplace_back(ip, server_.port);
  if (addrs.empty()) {
    finish(unexpected(Error("resolve " + server_.server + " via dns/" + server_.resolver->tag() +
                            ": " + (lookup_error_.empty() ? "no addresses" : lookup_error_))));
    return;
  }
  dial(std::move(addrs));
}

void Connector::dial(std::vector<SocketAddress> addrs) {
  std::weak_ptr<Connector*> weak = self_;
  dialer_ = conn::Dialer::start(
      loop_, std::move(addrs), server_.dial, [this, weak](Result<uv_tcp_t*> r) {
        if (weak.expired()) return;  // cannot happen: ~Connector cancels the dial
        dialer_ = nullptr;
        if (!r) {
          finish(unexpected(r.error().wrap("connect")));
          return;
        }
        cancel_tls_ = tls::connect(loop_, conn::makeTcpStream(*r), server_.tls,
                                   server_.handshake_timeout_ms,
                                   [this](Result<conn::StreamPtr> s) {
                                     cancel_tls_ = nullptr;
                                     finish(std::move(s));
                                   });
      });
}

void Connector::finish(Result<conn::StreamPtr> r) {
  if (finished_) return;
  finished_ = true;
  // Always from the deferrer: the owner destroys us in `done`, and some paths get here inside
  // start() or inside another library's callback.
  auto box = std::make_shared<Result<conn::StreamPtr>>(std::move(r));
  std::weak_ptr<Connector*> weak = self_;
  deferrer_->post([weak, box] {
    auto p = weak.lock();
    if (!p) return;
    Done d = std::move((*p)->done_);
    p.reset();
    d(std::move(*box));
  });
}

// ---- RemoteTransport ----------------------------------------------------------------------

RemoteTransport::RemoteTransport(uv_loop_t* loop, RemoteServerOptions opts)
    : Transport(opts.tag),
      loop_(loop),
      opts_(std::move(opts)),
      deferrer_(Deferrer::create(loop)),
      timer_(UvTimer::create(loop, [this] { onTimer(); })) {}

std::string RemoteTransport::where() const {
  std::string host = opts_.server;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "dns/" + tag() + " (" + scheme() + "://" + host + ":" + std::to_string(opts_.port) + ")";
}

uint64_t RemoteTransport::add(std::vector<uint8_t> query, Callback cb) {
  uint64_t id = next_id_++;
  if (query.size() < 12 || query.size() > 65535) {
    Error e(where() + ": query of " + std::to_string(query.size()) + " bytes");
    deferrer_->post([cb = std::move(cb), e] { cb(unexpected(e)); });
    return 0;
  }
  Pending p;
  p.original_id = peekId(ByteView(query.data(), query.size()));
  p.query = std::move(query);
  p.cb = std::move(cb);
  p.deadline = uv_now(loop_) + opts_.query_timeout_ms;
  pending_.emplace(id, std::move(p));
  return id;
}

void RemoteTransport::complete(uint64_t id, Result<std::vector<uint8_t>> r) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Callback cb = std::move(it->second.cb);
  uint16_t original = it->second.original_id;
  pending_.erase(it);
  if (!cb) return;
  if (r && r->size() >= 2) setId(*r, original);
  // From the deferrer: the caller may close this transport in the callback.
  deferrer_->post([cb = std::move(cb), r = std::move(r)]() mutable { cb(std::move(r)); });
}

void RemoteTransport::cancel(uint64_t id) {
  auto it = pending_.find(id);
  if (it != pending_.end()) it->second.cb = nullptr;
}

void RemoteTransport::close() {
  if (closing_) return;
  closing_ = true;
  closeConnections();
  pending_.clear();
  timer_.reset();
  deferrer_.reset();
  // Streams and handles free themselves in libuv's closing phase; nothing calls back into us
  // after this, and every callback of ours runs from the deferrer, never with us on the stack.
  delete this;
}

void RemoteTransport::holdLoop(conn::Stream* s, bool hold) {
  uv_tcp_t* tcp = s ? s->socket() : nullptr;
  if (tcp == nullptr) return;
  auto* h = reinterpret_cast<uv_handle_t*>(tcp);
  if (hold) {
    uv_ref(h);
  } else {
    uv_unref(h);
  }
}

void RemoteTransport::armTimer() {
  if (closing_) return;
  updateRefs();
  if (pending_.empty()) {
    timer_->unref();
  } else {
    timer_->ref();
  }
  uint64_t next = 0;
  for (const auto& [id, p] : pending_) {
    if (next == 0 || p.deadline < next) next = p.deadline;
    break;  // ordered by id: the first has the earliest deadline
  }
  uint64_t idle = idleDeadline();
  if (idle != 0 && (next == 0 || idle < next)) next = idle;
  if (next == 0) {
    timer_->stop();
    return;
  }
  uint64_t now = uv_now(loop_);
  timer_->start(next > now ? next - now : 1);
}

void RemoteTransport::onTimer() {
  uint64_t now = uv_now(loop_);
  std::vector<uint64_t> expired;
  for (const auto& [id, p] : pending_) {
    if (p.deadline > now) break;
    expired.push_back(id);
  }
  for (uint64_t id : expired) {
    if (pending_.count(id)) onTimeout(id);
  }
  closeIdle(now);
  armTimer();
}

// ---- DoT ----------------------------------------------------------------------------------

TransportPtr DotTransport::create(uv_loop_t* loop, RemoteServerOptions opts) {
  return TransportPtr(new DotTransport(loop, std::move(opts)));
}

uint64_t DotTransport::exchange(std::vector<uint8_t> query, Callback cb) {
  uint64_t id = add(std::move(query), std::move(cb));
  if (id == 0) return next_id_++;
  if (stream_) {
    send(id);
  } else if (!connector_) {
    connect();
  }
  armTimer();
  return id;
}

void DotTransport::connect() {
  ++connections_opened_;
  LOG_DEBUG("%s: connecting", where().c_str());
  connector_ = std::make_unique<Connector>(
      loop_, opts_, deferrer_.get(),
      [this](Result<conn::StreamPtr> r) { onConnected(std::move(r)); });
  connector_->start();
}

void DotTransport::onConnected(Result<conn::StreamPtr> r) {
  connector_.reset();
  if (!r) {
    Error e = r.error().wrap(where());
    LOG_WARN("%s", e.message().c_str());
    std::vector<uint64_t> ids;
    for (const auto& [id, p] : pending_) ids.push_back(id);
    for (uint64_t id : ids) complete(id, unexpected(e));
    armTimer();
    return;
  }
  stream_ = std::move(*r);
  rbuf_.clear();
  inflight_.clear();
  last_active_ = uv_now(loop_);
  LOG_DEBUG("%s: connected (%s)", where().c_str(), tls::versionOf(*stream_).c_str());
  stream_->readStart(
      [this](int status, const char* data, size_t len) { onRead(status, data, len); });
  std::vector<uint64_t> ids;
  for (const auto& [id, p] : pending_) {
    if (!p.sent) ids.push_back(id);
  }
  for (uint64_t id : ids) send(id);
  armTimer();
}

void DotTransport::send(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  if (!p.cb) {
    pending_.erase(it);  // cancelled before it went out
    return;
  }
  uint16_t wire = 0;
  for (int i = 0; i < 65536; ++i) {
    wire = next_wire_id_++;
    if (!inflight_.count(wire)) break;
  }
  std::string frame;
  frame.reserve(2 + p.query.size());
  frame.push_back(static_cast<char>(p.query.size() >> 8));
  frame.push_back(static_cast<char>(p.query.size()));
  frame.append(reinterpret_cast<const char*>(p.query.data()), p.query.size());
  frame[2] = static_cast<char>(wire >> 8);
  frame[3] = static_cast<char>(wire);
  p.sent = true;
  ++p.sends;
  inflight_[wire] = id;
  last_active_ = uv_now(loop_);
  stream_->write(frame.data(), frame.size());
}

void DotTransport::onRead(int status, const char* data, size_t len) {
  if (status < 0) {
    onLost(lostError(status, stream_.get()).message());
    return;
  }
  rbuf_.append(data, len);
  last_active_ = uv_now(loop_);
  while (rbuf_.size() >= 2) {
    size_t n = (static_cast<uint8_t>(rbuf_[0]) << 8) | static_cast<uint8_t>(rbuf_[1]);
    if (n < 12) {
      onLost("bad message length " + std::to_string(n));
      return;
    }
    if (rbuf_.size() < 2 + n) break;
    std::vector<uint8_t> msg(rbuf_.begin() + 2, rbuf_.begin() + static_cast<long>(2 + n));
    rbuf_.erase(0, 2 + n);
    uint16_t wire = static_cast<uint16_t>((msg[0] << 8) | msg[1]);
    auto it = inflight_.find(wire);
    if (it == inflight_.end()) {
      LOG_DEBUG("%s: answer with unknown ID %u dropped", where().c_str(), wire);
      continue;
    }
    uint64_t id = it->second;
    inflight_.erase(it);
    complete(id, std::move(msg));
  }
  armTimer();
}

void DotTransport::onLost(const std::string& why) {
  stream_.reset();
  rbuf_.clear();
  inflight_.clear();
  bool reconnect = false;
  std::vector<uint64_t> failed;
  for (auto& [id, p] : pending_) {
    if (!p.cb) continue;
    if (p.sent && p.sends >= 2) {
      failed.push_back(id);
    } else {
      // Sent once on a connection that died (an idle close racing the query, a restart):
      // RFC 7858 §3.4 lets the client send it again on a new connection.
      p.sent = false;
      reconnect = true;
    }
  }
  std::erase_if(pending_, [](const auto& kv) { return !kv.second.cb; });
  if (pending_.empty()) {
    LOG_DEBUG("%s: connection ended: %s", where().c_str(), why.c_str());
  } else {
    LOG_INFO("%s: connection ended with %zu queries in flight: %s", where().c_str(),
             pending_.size(), why.c_str());
  }
  Error e(where() + ": " + why);
  for (uint64_t id : failed) complete(id, unexpected(e));
  if (reconnect && !connector_) connect();
  armTimer();
}

void DotTransport::onTimeout(uint64_t id) {
  auto it = pending_.find(id);
  bool was_sent = it->second.sent;
  for (auto w = inflight_.begin(); w != inflight_.end(); ++w) {
    if (w->second == id) {
      inflight_.erase(w);
      break;
    }
  }
  complete(id, unexpected(Error(where() + ": no answer within " +
                                std::to_string(opts_.query_timeout_ms) + " ms")));
  // An unanswered query on an open connection: the path may be dead (a NAT forgot it), so
  // the next query starts over on a new connection; the others in flight move with it.
  if (was_sent && stream_) onLost("query timed out");
}

void DotTransport::closeIdle(uint64_t now) {
  if (stream_ && inflight_.empty() && now >= last_active_ + opts_.idle_timeout_ms) {
    LOG_DEBUG("%s: closing idle connection", where().c_str());
    stream_.reset();
  }
}

uint64_t DotTransport::idleDeadline() const {
  return stream_ && inflight_.empty() ? last_active_ + opts_.idle_timeout_ms : 0;
}

void DotTransport::closeConnections() {
  connector_.reset();
  stream_.reset();
  inflight_.clear();
}

// ---- DoH ----------------------------------------------------------------------------------

TransportPtr DohTransport::create(uv_loop_t* loop, RemoteServerOptions opts) {
  return TransportPtr(new DohTransport(loop, std::move(opts)));
}

uint64_t DohTransport::exchange(std::vector<uint8_t> query, Callback cb) {
  uint64_t id = add(std::move(query), std::move(cb));
  if (id == 0) return next_id_++;
  queue_.push_back(id);
  pump();
  return id;
}

void DohTransport::cancel(uint64_t id) {
  auto q = std::find(queue_.begin(), queue_.end(), id);
  if (q != queue_.end()) {
    queue_.erase(q);
    pending_.erase(id);
    return;
  }
  RemoteTransport::cancel(id);  // in flight: the answer is read and dropped
}

void DohTransport::pump() {
  while (!queue_.empty()) {
    uint64_t id = queue_.front();
    auto it = pending_.find(id);
    if (it == pending_.end() || !it->second.cb) {
      queue_.pop_front();
      if (it != pending_.end()) pending_.erase(it);
      continue;
    }
    Conn* idle = nullptr;
    size_t connecting = 0;
    for (auto& c : conns_) {
      if (c->stream && c->current == 0 && idle == nullptr) idle = c.get();
      if (c->connector) ++connecting;
    }
    if (idle != nullptr) {
      queue_.pop_front();
      send(idle, id);
      continue;
    }
    while (conns_.size() < opts_.max_connections && connecting < queue_.size()) {
      startConnection();
      ++connecting;
    }
    break;
  }
  armTimer();
}

void DohTransport::startConnection() {
  ++connections_opened_;
  LOG_DEBUG("%s: connecting", where().c_str());
  auto c = std::make_unique<Conn>();
  Conn* raw = c.get();
  c->connector = std::make_unique<Connector>(
      loop_, opts_, deferrer_.get(),
      [this, raw](Result<conn::StreamPtr> r) { onConnected(raw, std::move(r)); });
  conns_.push_back(std::move(c));
  raw->connector->start();
}

void DohTransport::onConnected(Conn* c, Result<conn::StreamPtr> r) {
  c->connector.reset();
  if (!r) {
    Error e = r.error().wrap(where());
    LOG_WARN("%s", e.message().c_str());
    drop(c, "");
    // Those waiting for a connection would only wait for the same failure.
    std::deque<uint64_t> waiting;
    waiting.swap(queue_);
    for (uint64_t id : waiting) complete(id, unexpected(e));
    armTimer();
    return;
  }
  c->stream = std::move(*r);
  c->last_active = uv_now(loop_);
  LOG_DEBUG("%s: connected (%s, ALPN \"%s\")", where().c_str(), tls::versionOf(*c->stream).c_str(),
            tls::alpnOf(*c->stream).c_str());
  c->stream->readStart(
      [this, c](int status, const char* data, size_t len) { onRead(c, status, data, len); });
  pump();
}

void DohTransport::send(Conn* c, uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  std::vector<uint8_t> msg = p.query;
  setId(msg, 0);  // RFC 8484 §4.1: ID 0 keeps answers cacheable by HTTP caches
  std::string req = buildDohRequest(opts_.host_header, opts_.path, opts_.headers,
                                    ByteView(msg.data(), msg.size()));
  c->current = id;
  c->reader.reset();
  c->last_active = uv_now(loop_);
  p.sent = true;
  ++p.sends;
  c->stream->write(req.data(), req.size());
}

void DohTransport::onRead(Conn* c, int status, const char* data, size_t len) {
  if (status < 0) {
    uint64_t id = c->current;
    if (id == 0) {
      drop(c, "");  // an idle keep-alive connection the server closed
      pump();
      return;
    }
    if (c->reader.finish() == DohResponseReader::State::Done) {
      onResponse(c);
      return;
    }
    auto pit = pending_.find(id);
    if (status == UV_EOF && c->reader.empty() && pit != pending_.end() && pit->second.sends < 2) {
      Pending& p = pit->second;
      // The server closed a keep-alive connection as we sent on it: try a new one.
      LOG_DEBUG("%s: connection closed before the answer; sending again", where().c_str());
      p.sent = false;
      queue_.push_front(id);
      c->current = 0;
      drop(c, "");
      pump();
      return;
    }
    std::string why = status == UV_EOF ? c->reader.error()
                                       : lostError(status, c->stream.get()).message();
    c->current = 0;
    drop(c, "");
    complete(id, unexpected(Error(where() + ": " + why)));
    pump();
    return;
  }
  if (c->current == 0) {
    drop(c, "data from the server with no request outstanding");
    pump();
    return;
  }
  auto state = c->reader.feed(ByteView(reinterpret_cast<const uint8_t*>(data), len));
  if (state == DohResponseReader::State::NeedMore) return;
  if (state == DohResponseReader::State::Bad) {
    uint64_t id = c->current;
    std::string why = c->reader.error();
    c->current = 0;
    drop(c, "");
    LOG_WARN("%s: %s", where().c_str(), why.c_str());
    complete(id, unexpected(Error(where() + ": " + why)));
    pump();
    return;
  }
  onResponse(c);
}

void DohTransport::onResponse(Conn* c) {
  uint64_t id = c->current;
  c->current = 0;
  bool keep = c->stream && c->reader.keepAlive() && c->reader.excess() == 0;
  std::vector<uint8_t> body = c->reader.body();
  c->reader.reset();
  c->last_active = uv_now(loop_);
  if (!keep) drop(c, "");
  complete(id, std::move(body));
  pump();
}

void DohTransport::drop(Conn* c, const std::string& why) {
  if (!why.empty()) LOG_DEBUG("%s: closing a connection: %s", where().c_str(), why.c_str());
  conns_.remove_if([c](const std::unique_ptr<Conn>& p) { return p.get() == c; });
}

void DohTransport::onTimeout(uint64_t id) {
  Error e(where() + ": no answer within " + std::to_string(opts_.query_timeout_ms) + " ms");
  for (auto& c : conns_) {
    if (c->current == id) {
      // HTTP/1.1 cannot abandon one request: the connection goes with it.
      c->current = 0;
      drop(c.get(), "request timed out");
      break;
    }
  }
  auto q = std::find(queue_.begin(), queue_.end(), id);
  if (q != queue_.end()) queue_.erase(q);
  complete(id, unexpected(e));
  pump();
}

void DohTransport::closeIdle(uint64_t now) {
  conns_.remove_if([&](const std::unique_ptr<Conn>& c) {
    return c->stream && c->current == 0 && now >= c->last_active + opts_.idle_timeout_ms;
  });
}

uint64_t DohTransport::idleDeadline() const {
  uint64_t next = 0;
  for (const auto& c : conns_) {
    if (!c->stream || c->current != 0) continue;
    uint64_t d = c->last_active + opts_.idle_timeout_ms;
    if (next == 0 || d < next) next = d;
  }
  return next;
}

void DohTransport::closeConnections() {
  conns_.clear();
  queue_.clear();
}

}  // namespace veer::dns
