#include "dns/cares_transport.h"

#include <cassert>
#include <cstring>
#include <mutex>

#include "base/log.h"

namespace veer::dns {
namespace {

std::once_flag g_ares_init;

Error aresError(int status, const std::string& context) {
  return Error(context + ": " + ares_strerror(status), status);
}

}  // namespace

CaresTransport::CaresTransport(uv_loop_t* loop, std::string tag)
    : Transport(std::move(tag)), loop_(loop) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  ++open_handles_;
}

CaresTransport::~CaresTransport() {
  // Only onHandleClosed deletes us, after the channel is gone and every handle closed.
  assert(channel_ == nullptr && open_handles_ == 0);
}

Result<TransportPtr> CaresTransport::create(uv_loop_t* loop, const CaresOptions& options) {
  std::call_once(g_ares_init, [] { ares_library_init(ARES_LIB_INIT_ALL); });
  TransportPtr t(new CaresTransport(loop, options.tag));
  if (auto s = static_cast<CaresTransport*>(t.get())->init(options); !s) {
    return unexpected(s.error());  // the TransportPtr closes the timer and frees it
  }
  return t;
}

Status CaresTransport::init(const CaresOptions& o) {
  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
  opts.sock_state_cb = &CaresTransport::onSockState;
  opts.sock_state_cb_data = this;
  opts.timeout = static_cast<int>(o.timeout_ms);
  opts.tries = static_cast<int>(o.tries == 0 ? 1 : o.tries);
  // ares_send never searches or reads /etc/hosts, but the flags keep c-ares from trying.
  // NOCHECKRESP: a SERVFAIL or REFUSED answer is passed to the caller (hijacked clients must see
  // it) instead of being treated as a dead server; failover happens on timeouts.
  // EDNS: without it c-ares takes any UDP answer above 512 bytes for truncated and retries over
  // TCP, although our queries advertise kDefaultEdnsUdpSize (ares_send adds no OPT itself).
  opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP | ARES_FLAG_EDNS |
               (o.mode == CaresOptions::Mode::Tcp ? ARES_FLAG_USEVC : 0);
  mask |= ARES_OPT_EDNSPSZ;
  opts.ednspsz = kDefaultEdnsUdpSize;
  std::string resolv_conf = o.resolv_conf;
  if (o.mode == CaresOptions::Mode::System) {
    if (!resolv_conf.empty()) {
      mask |= ARES_OPT_RESOLVCONF;
      opts.resolvconf_path = resolv_conf.data();
    }
    if (o.system_port != 0) {
      mask |= ARES_OPT_UDP_PORT | ARES_OPT_TCP_PORT;
      opts.udp_port = o.system_port;
      opts.tcp_port = o.system_port;
    }
  }
  int rc = ares_init_options(&channel_, &opts, mask);
  if (rc != ARES_SUCCESS) {
    channel_ = nullptr;
    return unexpected(aresError(rc, "dns/" + tag() + ": c-ares init"));
  }
  if (o.mode != CaresOptions::Mode::System) {
    if (o.servers.empty()) return unexpected(Error("dns/" + tag() + ": no server address"));
    std::vector<ares_addr_port_node> nodes(o.servers.size());
    for (size_t i = 0; i < o.servers.size(); ++i) {
      const SocketAddress& sa = o.servers[i];
      ares_addr_port_node& n = nodes[i];
      n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      IpAddress ip = sa.ip();
      n.family = ip.isV4() ? AF_INET : AF_INET6;
      std::memcpy(ip.isV4() ? static_cast<void*>(&n.addr.addr4) : static_cast<void*>(&n.addr.addr6),
                  ip.data(), ip.size());
      n.udp_port = sa.port();
      n.tcp_port = sa.port();
    }
    rc = ares_set_servers_ports(channel_, nodes.data());
    if (rc != ARES_SUCCESS) return unexpected(aresError(rc, "dns/" + tag() + ": set servers"));
  }
  return {};
}

uint64_t CaresTransport::exchange(std::vector<uint8_t> query, Callback cb) {
  uint64_t id = next_id_++;
  if (closing_) return id;
  auto* q = new Query{this, id, peekId(query), std::move(cb)};
  queries_.emplace(id, q);
  ++queries_sent_;
  ++processing_;
  // ares_send may call onAnswer synchronously (e.g. no usable server); onAnswer handles that.
  ares_send(channel_, query.data(), static_cast<int>(query.size()), &CaresTransport::onAnswer, q);
  --processing_;
  if (destroy_pending_ && processing_ == 0) {
    finishClose();
    return id;
  }
  updateTimer();
  return id;
}

void CaresTransport::cancel(uint64_t id) {
  auto it = queries_.find(id);
  if (it == queries_.end()) return;
  // c-ares cannot cancel one query: detach the callback and let the query run out.
  it->second->cb = nullptr;
  queries_.erase(it);
}

void CaresTransport::onAnswer(void* arg, int status, int timeouts, unsigned char* abuf,
                              int alen) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  CaresTransport* self = q->self;
  if (q->cb) self->queries_.erase(q->id);
  if (!q->cb || self->closing_) return;
  Callback cb = std::move(q->cb);
  if (status != ARES_SUCCESS || abuf == nullptr || alen < 12) {
    LOG_DEBUG("dns/%s: query failed: %s (%d timeouts)", self->tag().c_str(), ares_strerror(status),
              timeouts);
    cb(unexpected(aresError(status, "dns/" + self->tag())));
    return;
  }
  std::vector<uint8_t> resp(abuf, abuf + alen);
  // c-ares may put its own ID on the wire; the caller gets its own back.
  setId(resp, q->original_id);
  cb(std::move(resp));
}

void CaresTransport::onSockState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<CaresTransport*>(data);
  auto it = self->polls_.find(fd);
  if (!readable && !writable) {
    if (it != self->polls_.end()) {
      Poll* p = it->second;
      self->polls_.erase(it);
      self->closePoll(p);
    }
    return;
  }
  Poll* p;
  if (it == self->polls_.end()) {
    p = new Poll{};
    p->owner = self;
    p->fd = fd;
    if (int rc = uv_poll_init_socket(self->loop_, &p->handle, fd); rc != 0) {
      // Without a poll c-ares never hears from this socket; its timeout fails the query.
      LOG_WARN("dns/%s: uv_poll_init_socket: %s", self->tag().c_str(), uv_strerror(rc));
      delete p;
      return;
    }
    p->handle.data = p;
    ++self->open_handles_;
    self->polls_.emplace(fd, p);
  } else {
    p = it->second;
  }
  int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  uv_poll_start(&p->handle, events, &CaresTransport::onPollEvent);
}

void CaresTransport::closePoll(Poll* p) {
  // uv_close stops the poll (removing the fd from epoll) before c-ares closes the fd.
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), &CaresTransport::onHandleClosed);
}

void CaresTransport::onPollEvent(uv_poll_t* h, int status, int events) {
  auto* p = static_cast<Poll*>(h->data);
  CaresTransport* self = p->owner;
  if (self->closing_) return;
  int fd = p->fd;
  // On a poll error let c-ares read and write: it then sees the socket error itself.
  bool rd = status < 0 || (events & UV_READABLE);
  bool wr = status < 0 || (events & UV_WRITABLE);
  self->process(rd ? fd : ARES_SOCKET_BAD, wr ? fd : ARES_SOCKET_BAD);
}

void CaresTransport::onTimer(uv_timer_t* h) {
  auto* self = static_cast<CaresTransport*>(h->data);
  if (self->closing_) return;
  self->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

void CaresTransport::process(ares_socket_t read_fd, ares_socket_t write_fd) {
  ++processing_;
  ares_process_fd(channel_, read_fd, write_fd);
  --processing_;
  // A callback may have closed us; c-ares forbids ares_destroy inside its own callbacks.
  if (destroy_pending_ && processing_ == 0) {
    finishClose();
    return;
  }
  updateTimer();
}

void CaresTransport::updateTimer() {
  if (closing_) return;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) != nullptr) {
    // Round up: a 0 ms timer would spin until the deadline really passes.
    uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + (static_cast<uint64_t>(tv.tv_usec) + 999) / 1000;
    uv_timer_start(&timer_, &CaresTransport::onTimer, ms == 0 ? 1 : ms, 0);
  } else {
    uv_timer_stop(&timer_);
  }
}

void CaresTransport::close() {
  if (closing_) return;
  closing_ = true;
  for (auto& [id, q] : queries_) q->cb = nullptr;
  queries_.clear();
  if (processing_ > 0) {
    destroy_pending_ = true;
    return;
  }
  finishClose();
}

void CaresTransport::finishClose() {
  destroy_pending_ = false;
  if (channel_) {
    // Runs every outstanding onAnswer with ARES_EDESTRUCTION (freeing the Query records) and
    // reports each socket closed through onSockState, which closes its poll.
    ares_channel ch = channel_;
    ares_destroy(ch);
    channel_ = nullptr;
  }
  for (auto& [fd, p] : polls_) closePoll(p);
  polls_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &CaresTransport::onHandleClosed);
}

void CaresTransport::onHandleClosed(uv_handle_t* h) {
  CaresTransport* self;
  if (h->type == UV_POLL) {
    auto* p = static_cast<Poll*>(h->data);
    self = p->owner;
    delete p;
  } else {
    self = static_cast<CaresTransport*>(h->data);
  }
  if (--self->open_handles_ == 0 && self->closing_) delete self;
}

}  // namespace veer::dns
