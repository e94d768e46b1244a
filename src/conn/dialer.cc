#include "conn/dialer.h"

#include <algorithm>

#include <net/if.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "loop/uv_util.h"

namespace veer::conn {

struct Dialer::Attempt {
  Dialer* owner = nullptr;
  uv_tcp_t* tcp = nullptr;
  uv_connect_t req{};
  SocketAddress addr;
  uint64_t deadline = 0;  // loop time when this attempt gives up
  bool finished = false;
};

// Close callback of an attempt's handle: frees the handle and the attempt, then the Dialer once
// nothing of it is open any more.
void Dialer::onAttemptClosed(uv_handle_t* h) {
  auto* at = static_cast<Attempt*>(h->data);
  Dialer* d = at->owner;
  delete reinterpret_cast<uv_tcp_t*>(h);
  delete at;
  --d->open_handles_;
  d->maybeFree();
}

std::vector<SocketAddress> interleaveFamilies(const std::vector<SocketAddress>& in) {
  if (in.empty()) return {};
  std::vector<SocketAddress> first, second;
  bool first_v6 = in[0].ip().isV6();
  for (const auto& a : in) (a.ip().isV6() == first_v6 ? first : second).push_back(a);
  std::vector<SocketAddress> out;
  out.reserve(in.size());
  size_t i = 0, j = 0;
  while (i < first.size() || j < second.size()) {
    if (i < first.size()) out.push_back(first[i++]);
    if (j < second.size()) out.push_back(second[j++]);
  }
  return out;
}

Status applySocketOptions(int fd, int family, const DialOptions& opts) {
#ifdef SO_MARK
  if (opts.routing_mark != 0) {
    int mark = static_cast<int>(opts.routing_mark);
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
      return unexpected(Error(std::string("set SO_MARK: ") + strerror(errno), -errno));
    }
  }
#endif
#ifdef SO_BINDTODEVICE
  if (!opts.bind_interface.empty()) {
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, opts.bind_interface.c_str(),
                   static_cast<socklen_t>(opts.bind_interface.size())) != 0) {
      return unexpected(Error("bind to interface " + opts.bind_interface + ": " + strerror(errno),
                              -errno));
    }
  }
#endif
  const IpAddress& bind = family == AF_INET6 ? opts.inet6_bind_address : opts.inet4_bind_address;
  if (bind.valid()) {
    SocketAddress sa(bind, 0);
    if (::bind(fd, sa.sa(), sa.len()) != 0) {
      return unexpected(Error("bind " + bind.toString() + ": " + strerror(errno), -errno));
    }
  }
#ifdef TCP_FASTOPEN_CONNECT
  if (opts.tcp_fast_open) {
    int one = 1;
    // Best effort: kernels without client TFO support simply connect normally.
    (void)setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one));
  }
#endif
  return {};
}

Dialer::Dialer(uv_loop_t* loop, std::vector<SocketAddress> addresses, const DialOptions& opts,
               Callback cb)
    : loop_(loop), addresses_(interleaveFamilies(addresses)), opts_(opts), cb_(std::move(cb)) {}

Dialer* Dialer::start(uv_loop_t* loop, std::vector<SocketAddress> addresses,
                      const DialOptions& opts, Callback cb) {
  auto* d = new Dialer(loop, std::move(addresses), opts, std::move(cb));
  // The loop's clock is cached per iteration; a dial started after a long synchronous stretch
  // (a config load, a burst of accepts) would otherwise time its fallback from a stale "now".
  uv_update_time(loop);
  uv_timer_init(loop, &d->fallback_timer_);
  uv_timer_init(loop, &d->deadline_timer_);
  uv_timer_init(loop, &d->attempt_timer_);
  d->fallback_timer_.data = d;
  d->deadline_timer_.data = d;
  d->attempt_timer_.data = d;
  d->open_handles_ = 3;
  d->deadline_ = uv_now(loop) + opts.connect_timeout_ms;
  if (d->addresses_.empty()) {
    d->last_error_ = Error("no addresses to dial");
    // Report on the next loop iteration: callbacks never run inside start().
    uv_timer_start(&d->deadline_timer_, [](uv_timer_t* t) {
      static_cast<Dialer*>(t->data)->finish(unexpected(static_cast<Dialer*>(t->data)->last_error_));
    }, 0, 0);
    return d;
  }
  uv_timer_start(&d->deadline_timer_, [](uv_timer_t* t) {
    static_cast<Dialer*>(t->data)->onDeadline();
  }, opts.connect_timeout_ms, 0);
  d->startNext();
  return d;
}

void Dialer::startNext() {
  while (next_ < addresses_.size() && !done_) {
    const SocketAddress addr = addresses_[next_++];
    int family = addr.sa()->sa_family;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_error_ = Error(std::string("socket: ") + strerror(errno), -errno);
      continue;
    }
    Status st = applySocketOptions(fd, family, opts_);
    if (!st) {
      ::close(fd);
      last_error_ = st.error();
      continue;
    }
    auto* a = new Attempt;
    a->owner = this;
    a->addr = addr;
    a->tcp = new uv_tcp_t;
    uv_tcp_init(loop_, a->tcp);
    a->tcp->data = a;
    ++open_handles_;
    int rc = uv_tcp_open(a->tcp, fd);
    if (rc == 0) {
      if (opts_.tcp_nodelay) uv_tcp_nodelay(a->tcp, 1);
      a->req.data = a;
      rc = uv_tcp_connect(&a->req, a->tcp, addr.sa(), [](uv_connect_t* req, int status) {
        auto* at = static_cast<Attempt*>(req->data);
        at->owner->onAttemptDone(at, status);
      });
    } else {
      ::close(fd);
    }
    if (rc != 0) {
      last_error_ = loop::uvError(rc, "dial " + addr.toString());
      a->finished = true;
      loop::closeHandle(a->tcp, onAttemptClosed);
      continue;
    }
    // Each attempt gets its share of the time left (Go's partialDeadline: the remaining time
    // divided by the addresses remaining, at least 2 s), so one black-holed address cannot use
    // up the whole connect_timeout when the fallback delay is long.
    uint64_t now = uv_now(loop_);
    uint64_t left = deadline_ > now ? deadline_ - now : 0;
    uint64_t share = left / (addresses_.size() - next_ + 1);
    a->deadline = now + std::min(left, std::max<uint64_t>(share, 2000));
    attempts_.push_back(a);
    armAttemptTimer();
    // The next address gets its turn after the fallback delay unless this attempt fails first.
    if (next_ < addresses_.size()) {
      uv_timer_start(&fallback_timer_, [](uv_timer_t* t) {
        static_cast<Dialer*>(t->data)->onFallbackTimer();
      }, opts_.fallback_delay_ms, 0);
    }
    return;
  }
  // Nothing left to start: if nothing is in flight either, the dial has failed.
  bool any_pending = false;
  for (auto* a : attempts_) any_pending |= !a->finished;
  if (!any_pending && !done_) finish(unexpected(last_error_));
}

void Dialer::armAttemptTimer() {
  uint64_t first = 0;
  for (auto* a : attempts_) {
    if (!a->finished && (first == 0 || a->deadline < first)) first = a->deadline;
  }
  if (first == 0) {
    uv_timer_stop(&attempt_timer_);
    return;
  }
  uint64_t now = uv_now(loop_);
  uv_timer_start(&attempt_timer_, [](uv_timer_t* t) {
    static_cast<Dialer*>(t->data)->onAttemptTimer();
  }, first > now ? first - now : 0, 0);
}

void Dialer::onAttemptTimer() {
  if (done_) return;
  uint64_t now = uv_now(loop_);
  bool expired = false;
  for (auto it = attempts_.begin(); it != attempts_.end();) {
    Attempt* a = *it;
    if (!a->finished && a->deadline <= now) {
      a->finished = true;
      last_error_ = Error("dial " + a->addr.toString() + ": connect timeout (no answer within this address's share of connect_timeout)",
                          UV_ETIMEDOUT);
      LOG_DEBUG("%s", last_error_.message().c_str());
      it = attempts_.erase(it);
      loop::closeHandle(a->tcp, onAttemptClosed);
      expired = true;
    } else {
      ++it;
    }
  }
  if (expired) {
    uv_timer_stop(&fallback_timer_);
    startNext();
  }
  if (!done_) armAttemptTimer();
}

void Dialer::onFallbackTimer() {
  if (!done_) startNext();
}

void Dialer::onAttemptDone(Attempt* a, int status) {
  a->finished = true;
  if (done_ || status == UV_ECANCELED) return;
  if (status == 0) {
    uv_tcp_t* winner = a->tcp;
    a->tcp = nullptr;  // ownership moves to the callback's receiver
    winner->data = nullptr;
    std::erase(attempts_, a);
    delete a;
    --open_handles_;
    finish(winner);
    return;
  }
  last_error_ = loop::uvError(status, "dial " + a->addr.toString());
  LOG_DEBUG("%s", last_error_.message().c_str());
  std::erase(attempts_, a);
  loop::closeHandle(a->tcp, onAttemptClosed);
  uv_timer_stop(&fallback_timer_);
  startNext();
}

void Dialer::onDeadline() {
  if (done_) return;
  finish(unexpected(Error("dial timeout after " + std::to_string(opts_.connect_timeout_ms) +
                              "ms" + (last_error_.message().empty() ? "" : " (last error: " +
                                                                               last_error_.message() + ")"),
                          UV_ETIMEDOUT)));
}

void Dialer::finish(Result<uv_tcp_t*> r) {
  if (done_) return;
  done_ = true;
  Callback cb = std::move(cb_);
  cancel();  // closes the losers and the timers; frees this when they are closed
  if (cb) cb(std::move(r));
}

void Dialer::cancel() {
  done_ = true;
  cb_ = nullptr;
  uv_timer_stop(&fallback_timer_);
  uv_timer_stop(&deadline_timer_);
  uv_timer_stop(&attempt_timer_);
  for (auto* a : attempts_) {
    if (a->tcp == nullptr) continue;
    loop::closeHandle(a->tcp, onAttemptClosed);
  }
  attempts_.clear();
  auto timer_closed = [](uv_handle_t* h) {
    auto* d = static_cast<Dialer*>(h->data);
    --d->open_handles_;
    d->maybeFree();
  };
  loop::closeHandle(&fallback_timer_, timer_closed);
  loop::closeHandle(&deadline_timer_, timer_closed);
  loop::closeHandle(&attempt_timer_, timer_closed);
}

void Dialer::maybeFree() {
  if (done_ && open_handles_ == 0) delete this;
}

}  // namespace veer::conn
